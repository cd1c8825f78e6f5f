"""Verification of receipts and disclosures (DESIGN §5 steps 1-4) into a Verdict.

Steps: 1 ``record`` (disclosures only: commitment, record key and region match the leaf),
2 ``inclusion`` (the audit path folds to the batch root), 3 ``anchor`` (CreditAnchor's
``batchOf`` holds the same root and size), 4 ``currency`` (``headOf`` says whether a later
version superseded this one). Steps 3-4 need an ``AnchorReader``; the chain layer
implements it. Without one the best verdict is ``valid_offline``, whose ``valid`` is
False: a partial check is never reported as valid.

Malformed input (a receipt or record that does not parse) gives a ``malformed`` verdict
at step 0; a failing chain read raises ``ChainError`` from the reader, since it says
nothing about the receipt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Final, Protocol, runtime_checkable

from ledger import _native
from ledger._unchecked import unchecked_constructor
from ledger.canonical import JsonObject
from ledger.commitment import COMMIT_DOMAIN, ZERO_HASH, LeafStatus, record_key_of
from ledger.errors import ProofError, ReceiptError, RecordError
from ledger.merkle import root_from_inclusion_proof
from ledger.receipts import Disclosure, Receipt, _loads_json

__all__ = [
    "AnchoredBatch",
    "RecordHead",
    "AnchorReader",
    "CachingAnchorReader",
    "VerdictStatus",
    "Verdict",
    "STEP_NAMES",
    "verify_receipt",
    "verify_disclosure",
    "verify_disclosures",
    "verify_disclosure_json",
    "verify_disclosures_json",
]


@dataclass(frozen=True)
class AnchoredBatch:
    """What ``CreditAnchor.batchOf(region, seq)`` returns; root is 32 zero bytes if unknown."""

    root: bytes
    size: int
    anchored_at: int
    block_number: int
    submitter: str
    manifest_hash: bytes


@dataclass(frozen=True)
class RecordHead:
    """What ``CreditAnchor.headOf(region, recordKey)`` returns; version 0: never superseded."""

    leaf_hash: bytes
    seq: int
    version: int
    status: int


@runtime_checkable
class AnchorReader(Protocol):
    """Read access to one CreditAnchor contract, implemented by the chain layer."""

    @property
    def chain_id(self) -> int:
        """EIP-155 chain id of the network the contract lives on."""
        ...

    @property
    def anchor_address(self) -> str:
        """Checksummed 0x address of the CreditAnchor contract."""
        ...

    def batch_of(self, region: int, seq: int) -> AnchoredBatch:
        """``batchOf(region, seq)``; root is 32 zero bytes when the batch is not anchored."""
        ...

    def head_of(self, region: int, record_key: bytes) -> RecordHead:
        """``headOf(region, recordKey)``; version 0 when the record was never superseded."""
        ...


class CachingAnchorReader:
    """An AnchorReader that remembers anchored batches, which can never change.

    A sequence number is never reused (DESIGN §4), so a non-zero ``batchOf`` answer is final;
    a not-yet-anchored batch and every record head are always read afresh. At most
    ``max_batches`` answers are kept, the oldest dropped first.
    """

    def __init__(self, reader: AnchorReader, *, max_batches: int = 65_536) -> None:
        self._reader = reader
        self._max_batches = max_batches
        self._batches: dict[tuple[int, int], AnchoredBatch] = {}

    @property
    def chain_id(self) -> int:
        """The wrapped reader's chain id."""
        return self._reader.chain_id

    @property
    def anchor_address(self) -> str:
        """The wrapped reader's CreditAnchor address."""
        return self._reader.anchor_address

    def batch_of(self, region: int, seq: int) -> AnchoredBatch:
        """``batchOf``, from the cache once the batch is anchored."""
        cached = self._batches.get((region, seq))
        if cached is not None:
            return cached
        batch = self._reader.batch_of(region, seq)
        if batch.root != ZERO_HASH:
            if len(self._batches) >= self._max_batches:
                del self._batches[next(iter(self._batches))]  # dicts keep insertion order
            self._batches[(region, seq)] = batch
        return batch

    def head_of(self, region: int, record_key: bytes) -> RecordHead:
        """``headOf``, always read from the chain (heads move)."""
        return self._reader.head_of(region, record_key)


class VerdictStatus(StrEnum):
    """Outcome of a verification."""

    VALID = "valid"  # all four steps (three for a receipt) passed; the version is current
    SUPERSEDED = "superseded"  # authentic and anchored, but a later version is the head
    REVOKED = "revoked"  # authentic and anchored, but a later revoked version is the head
    VALID_OFFLINE = "valid_offline"  # the offline steps passed; the chain was not consulted
    WRONG_REGION = "wrong_region"  # step 1: the record belongs to another region's batch
    UNANCHORED = "unanchored"  # step 3: no batch with this sequence number on chain
    INVALID = "invalid"  # some step failed: tampered, forged or inconsistent
    MALFORMED = "malformed"  # step 0: the input does not parse


STEP_NAMES: Final = {0: "parse", 1: "record", 2: "inclusion", 3: "anchor", 4: "currency"}
_ON_CHAIN_VALID: Final = frozenset(
    {VerdictStatus.VALID, VerdictStatus.SUPERSEDED, VerdictStatus.REVOKED}
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of verifying a receipt or a disclosure.

    ``valid`` is True only after a complete check (the chain consulted) in which every step
    passed; ``current`` is None unless step 4 ran. ``expected``/``computed`` are hex: the
    value the trusted side holds (leaf, batch root, chain) and the one computed from the
    presented material. ``field`` names the offending field of a malformed input.
    """

    status: VerdictStatus
    checked_steps: tuple[int, ...]
    failed_step: int | None = None
    reason: str | None = None
    expected: str | None = None
    computed: str | None = None
    field: str | None = None
    current: bool | None = None
    record_key: str | None = None
    version: int | None = None
    leaf_status: str | None = None
    leaf_hash: str | None = None
    head_version: int | None = None
    head_status: str | None = None

    @property
    def valid(self) -> bool:
        """Every step passed and the check was complete (on chain)."""
        return self.status in _ON_CHAIN_VALID

    @property
    def step_name(self) -> str | None:
        """Name of the failed step (``record``, ``inclusion``, ``anchor``, ``currency``...)."""
        return None if self.failed_step is None else STEP_NAMES[self.failed_step]

    def to_json(self) -> JsonObject:
        """The verdict as a JSON object (e.g. the body of ``POST /v1/verify``)."""
        return {
            "valid": self.valid,
            "status": self.status.value,
            "checked_steps": list(self.checked_steps),
            "failed_step": self.failed_step,
            "step_name": self.step_name,
            "reason": self.reason,
            "expected": self.expected,
            "computed": self.computed,
            "field": self.field,
            "current": self.current,
            "record_key": self.record_key,
            "version": self.version,
            "leaf_status": self.leaf_status,
            "leaf_hash": self.leaf_hash,
            "head_version": self.head_version,
            "head_status": self.head_status,
        }


def _status_name(code: int) -> str:
    try:
        return LeafStatus(code).status_name
    except ValueError:
        return f"unknown({code})"


class _Check:
    """One verification run: accumulates the steps passed and builds the verdict."""

    __slots__ = ("receipt", "leaf_hash", "steps")

    def __init__(
        self, receipt: Receipt, leaf_hash: bytes | None = None, steps: list[int] | None = None
    ) -> None:
        self.receipt = receipt
        # computed once, used by steps 2 and 4; given when the C check has run steps 1-2
        self.leaf_hash = receipt.leaf.leaf_hash if leaf_hash is None else leaf_hash
        self.steps: list[int] = [] if steps is None else steps

    def verdict(
        self,
        status: VerdictStatus,
        *,
        failed_step: int | None = None,
        reason: str | None = None,
        expected: str | None = None,
        computed: str | None = None,
        current: bool | None = None,
        head_version: int | None = None,
        head_status: str | None = None,
    ) -> Verdict:
        leaf = self.receipt.leaf
        # Verdict has no checks to run; _new_verdict only skips its fourteen frozen
        # assignments. ``field`` is only ever set for a malformed input (_malformed).
        return _new_verdict(
            status,
            tuple(self.steps),
            failed_step,
            reason,
            expected,
            computed,
            None,
            current,
            leaf.record_key.hex(),
            leaf.version,
            leaf.status.status_name,
            self.leaf_hash.hex(),
            head_version,
            head_status,
        )

    def fail(
        self,
        step: int,
        reason: str,
        *,
        expected: bytes | None = None,
        computed: bytes | None = None,
        status: VerdictStatus = VerdictStatus.INVALID,
    ) -> Verdict:
        return self.verdict(
            status,
            failed_step=step,
            reason=reason,
            expected=None if expected is None else expected.hex(),
            computed=None if computed is None else computed.hex(),
        )

    def record(self, disclosure: Disclosure) -> Verdict | None:
        """Step 1: the disclosed record and salt are what the leaf commits to."""
        leaf = self.receipt.leaf
        record = disclosure.record
        computed_key = record_key_of(record)
        if computed_key != leaf.record_key:
            return self.fail(
                1,
                "record_key of the record differs from the leaf's",
                expected=leaf.record_key,
                computed=computed_key,
            )
        computed_commitment = hashlib.sha256(
            COMMIT_DOMAIN + disclosure.salt + record.canonical_bytes()
        ).digest()
        if computed_commitment != leaf.commitment:
            return self.fail(
                1,
                "commitment of record and salt differs from the leaf's",
                expected=leaf.commitment,
                computed=computed_commitment,
            )
        if record.region != self.receipt.batch.region:
            return self.fail(
                1,
                f"record.region {record.region} is not batch.region {self.receipt.batch.region}",
                status=VerdictStatus.WRONG_REGION,
            )
        self.steps.append(1)
        return None

    def inclusion(self) -> Verdict | None:
        """Step 2: the audit path folds the leaf hash to the batch root."""
        receipt = self.receipt
        try:
            root = root_from_inclusion_proof(
                self.leaf_hash, receipt.leaf_index, receipt.batch.size, receipt.proof
            )
        except ProofError as error:
            return self.fail(2, str(error))
        if root != receipt.batch.root:
            return self.fail(
                2,
                "the proof does not fold to batch.root",
                expected=receipt.batch.root,
                computed=root,
            )
        self.steps.append(2)
        return None

    def anchor(self, chain: AnchorReader) -> Verdict | None:
        """Step 3: CreditAnchor holds the same root and size for (region, seq)."""
        receipt = self.receipt
        if chain.chain_id != receipt.chain.chain_id:
            return self.fail(
                3,
                f"receipt is for chain {receipt.chain.chain_id}, "
                f"the reader is on chain {chain.chain_id}",
            )
        if chain.anchor_address.lower() != receipt.chain.anchor_contract:
            return self.fail(
                3,
                f"receipt names contract {receipt.chain.anchor_contract}, "
                f"the reader reads {chain.anchor_address}",
            )
        batch = receipt.batch
        anchored = chain.batch_of(batch.region, batch.seq)
        if anchored.root == ZERO_HASH:
            return self.fail(
                3,
                f"batch {batch.seq} of region {batch.region} is not anchored",
                status=VerdictStatus.UNANCHORED,
            )
        if anchored.root != batch.root:
            return self.fail(
                3,
                "the anchored root differs from batch.root",
                expected=anchored.root,
                computed=batch.root,
            )
        if anchored.size != batch.size:
            return self.fail(
                3, f"the anchored batch has {anchored.size} leaves, the receipt says {batch.size}"
            )
        self.steps.append(3)
        return None

    def currency(self, chain: AnchorReader) -> Verdict:
        """Step 4: is this version the record's head, or which version superseded it?"""
        leaf = self.receipt.leaf
        head = chain.head_of(self.receipt.batch.region, leaf.record_key)
        if (head.version == 0 and leaf.version == 1) or head.leaf_hash == self.leaf_hash:
            self.steps.append(4)
            return self.verdict(VerdictStatus.VALID, current=True)
        if head.version > leaf.version:
            self.steps.append(4)
            status = (
                VerdictStatus.REVOKED
                if head.status == LeafStatus.REVOKED
                else VerdictStatus.SUPERSEDED
            )
            return self.verdict(
                status,
                current=False,
                head_version=head.version,
                head_status=_status_name(head.status),
            )
        if head.version == 0:
            return self.fail(4, f"no head on chain for version {leaf.version} > 1 of this record")
        return self.verdict(
            VerdictStatus.INVALID,
            failed_step=4,
            reason=f"the head is version {head.version} with another leaf hash",
            expected=head.leaf_hash.hex(),
            computed=self.leaf_hash.hex(),
            head_version=head.version,
            head_status=_status_name(head.status),
        )


assert [field.name for field in fields(Verdict)] == [
    "status", "checked_steps", "failed_step", "reason", "expected", "computed", "field",
    "current", "record_key", "version", "leaf_status", "leaf_hash", "head_version",
    "head_status",
]  # fmt: skip
_new_verdict: Final = unchecked_constructor(Verdict)


def _malformed(error: ReceiptError | RecordError) -> Verdict:
    return Verdict(
        status=VerdictStatus.MALFORMED,
        checked_steps=(),
        failed_step=0,
        reason=error.reason,
        field=error.field,
    )


def _run(receipt: Receipt, disclosure: Disclosure | None, chain: AnchorReader | None) -> Verdict:
    check = _Check(receipt)
    if disclosure is not None and (failed := check.record(disclosure)) is not None:
        return failed
    if (failed := check.inclusion()) is not None:
        return failed
    return _run_online(check, chain)


def _run_online(check: _Check, chain: AnchorReader | None) -> Verdict:
    """Steps 3-4 once the offline steps have passed, or the offline verdict."""
    if chain is None:
        return check.verdict(VerdictStatus.VALID_OFFLINE)
    if (failed := check.anchor(chain)) is not None:
        return failed
    return check.currency(chain)


# The C speedups run steps 1-2 (hashes, proof fold) in one call and return the leaf hash when
# they pass, None otherwise; then the Python steps above run from the start and name the
# failure. Either way the verdict is the one the Python steps give.


def verify_receipt(
    receipt: Receipt | Mapping[str, object], chain: AnchorReader | None = None
) -> Verdict:
    """Verify a receipt (a ``Receipt`` or its JSON object): DESIGN §5 steps 2-4.

    Without ``chain`` only step 2 runs and the best status is ``valid_offline``.
    """
    native = _native.speedups
    if native is not None:
        parsed = receipt if type(receipt) is Receipt else native.parse_receipt(receipt)
        if parsed is not None:
            leaf_hash = native.check_offline(parsed)
            if leaf_hash is not None:
                return _run_online(_Check(parsed, leaf_hash, [2]), chain)
            receipt = parsed
    if not isinstance(receipt, Receipt):
        try:
            receipt = Receipt.from_json(receipt)
        except ReceiptError as error:
            return _malformed(error)
    return _run(receipt, None, chain)


def verify_disclosure(
    disclosure: Disclosure | Mapping[str, object], chain: AnchorReader | None = None
) -> Verdict:
    """Verify a disclosure (a ``Disclosure`` or its JSON object): DESIGN §5 steps 1-4.

    Without ``chain`` steps 1-2 run and the best status is ``valid_offline``.
    """
    native = _native.speedups
    if native is not None:
        parsed = (
            disclosure if type(disclosure) is Disclosure else native.parse_disclosure(disclosure)
        )
        if parsed is not None:
            leaf_hash = native.check_offline(parsed)
            if leaf_hash is not None:
                return _run_online(_Check(parsed.receipt, leaf_hash, [1, 2]), chain)
            disclosure = parsed
    if not isinstance(disclosure, Disclosure):
        try:
            disclosure = Disclosure.from_json(disclosure)
        except (ReceiptError, RecordError) as error:
            return _malformed(error)
    return _run(disclosure.receipt, disclosure, chain)


def verify_disclosure_json(
    text: bytes | bytearray | str, chain: AnchorReader | None = None
) -> Verdict:
    """Verify a disclosure from its JSON text: ``verify_disclosure(json.loads(text), chain)``.

    The same verdict, faster: the C speedups read a disclosure straight from its text. Text
    that is not JSON gives a ``malformed`` verdict with field ``disclosure``.
    """
    native = _native.speedups
    if native is not None:
        parsed = native.parse_disclosure_json(text)
        if parsed is not None:  # verify_disclosure(parsed, chain), one call less
            leaf_hash = native.check_offline(parsed)
            if leaf_hash is not None:
                return _run_online(_Check(parsed.receipt, leaf_hash, [1, 2]), chain)
            return _run(parsed.receipt, parsed, chain)
    try:
        obj = _loads_json(text)
    except ReceiptError as error:
        return _malformed(error)
    return verify_disclosure(obj, chain)  # type: ignore[arg-type]  # any JSON value: malformed


def verify_disclosures(
    disclosures: Iterable[Disclosure | Mapping[str, object]], chain: AnchorReader | None = None
) -> list[Verdict]:
    """Verify many disclosures, reading each anchored batch from the chain only once."""
    if chain is not None and not isinstance(chain, CachingAnchorReader):
        chain = CachingAnchorReader(chain)
    return [verify_disclosure(disclosure, chain) for disclosure in disclosures]


def verify_disclosures_json(
    texts: Iterable[bytes | bytearray | str], chain: AnchorReader | None = None
) -> list[Verdict]:
    """Verify many disclosures from their JSON texts (say, the lines of a JSON Lines file),
    reading each anchored batch from the chain only once."""
    if chain is not None and not isinstance(chain, CachingAnchorReader):
        chain = CachingAnchorReader(chain)
    return [verify_disclosure_json(text, chain) for text in texts]
