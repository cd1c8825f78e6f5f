"""One error hierarchy for the ledger library: every failure a caller can act on."""

from __future__ import annotations

__all__ = [
    "LedgerError",
    "RecordError",
    "ProofError",
    "RootMismatchError",
    "ReceiptError",
    "ChainError",
    "ContractError",
    "CompileError",
]


class LedgerError(Exception):
    """Base class of every error raised by the ledger library."""


# Reasons quote the offending value; a hostile value can be megabytes long, and the message
# ends up in HTTP answers and logs. The field path and reason are cut to these lengths.
MAX_FIELD_CHARS = 200
MAX_REASON_CHARS = 500


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}… ({len(text):,} characters in all)"


class RecordError(LedgerError):
    """A credit record, identifier or payload is invalid.

    ``field`` names the offending field (dotted path, e.g. ``data.amount_fen``) and
    ``reason`` says why, so that an API or CLI can report both without parsing text.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = _bounded(field, MAX_FIELD_CHARS)
        self.reason = _bounded(reason, MAX_REASON_CHARS)
        super().__init__(f"{self.field}: {self.reason}")

    def __reduce__(self) -> tuple[type[RecordError], tuple[str, str]]:
        # Picklable with its own arguments: another process may raise it.
        return type(self), (self.field, self.reason)


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof does not verify."""


class RootMismatchError(ProofError):
    """A proof folds to a root other than the expected one."""

    def __init__(self, expected: bytes, calculated: bytes) -> None:
        self.expected = expected
        self.calculated = calculated
        super().__init__(f"root mismatch: expected {expected.hex()}, calculated {calculated.hex()}")


class ReceiptError(LedgerError):
    """A receipt or disclosure is malformed (unknown format, wrong length, bad hex...)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = _bounded(field, MAX_FIELD_CHARS)
        self.reason = _bounded(reason, MAX_REASON_CHARS)
        super().__init__(f"{self.field}: {self.reason}")


class ChainError(LedgerError):
    """Talking to the Ethereum node failed (transport, timeout, unexpected answer)."""


class ContractError(ChainError):
    """A contract call reverted; ``name`` and ``args`` are the decoded custom error."""

    def __init__(self, name: str, args: dict[str, object], message: str | None = None) -> None:
        self.name = name
        self.args_by_name = args
        rendered = ", ".join(f"{k}={v!r}" for k, v in args.items())
        super().__init__(message or f"{name}({rendered})")


class CompileError(LedgerError):
    """The Solidity toolchain is missing or the sources do not compile."""
