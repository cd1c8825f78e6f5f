"""HTTP mapping of errors: node errors and one exception handler per ledger error class."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ledger.errors import (
    ChainError,
    CompileError,
    ContractError,
    LedgerError,
    ProofError,
    ReceiptError,
    RecordError,
    RootMismatchError,
)

__all__ = [
    "NodeError",
    "Unauthenticated",
    "Forbidden",
    "NotFound",
    "Conflict",
    "NotAnchored",
    "BadRequest",
    "PayloadTooLarge",
    "Unavailable",
    "NotImplementedYet",
    "IntakeRecordError",
    "install_error_handlers",
]

_log = logging.getLogger("node_api.errors")


class NodeError(Exception):
    """An error of the node service itself, carrying its HTTP status and a stable code."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"error": self.code, "message": self.message, **self.details}


class Unauthenticated(NodeError):
    """No or invalid credentials (missing key, bad signature, stale timestamp, replay)."""

    status_code = 401
    code = "unauthenticated"


class Forbidden(NodeError):
    """Valid credentials, but the role may not do this."""

    status_code = 403
    code = "forbidden"


class NotFound(NodeError):
    """No such record, version or batch at this node."""

    status_code = 404
    code = "not_found"


class Conflict(NodeError):
    """The request contradicts the stored state (e.g. new content without PUT)."""

    status_code = 409
    code = "conflict"


class NotAnchored(Conflict):
    """The version exists but has no receipt yet because its batch is not anchored."""

    code = "not_anchored"


class BadRequest(NodeError):
    """Malformed request outside the record schema (missing header, bad JSON)."""

    status_code = 400
    code = "bad_request"


class PayloadTooLarge(NodeError):
    """Too many records or bytes in one request."""

    status_code = 413
    code = "payload_too_large"


class Unavailable(NodeError):
    """A dependency (chain, deployment, signer key) the request needs is missing."""

    status_code = 503
    code = "unavailable"


class NotImplementedYet(NodeError):
    """A feature this node build does not provide (yet)."""

    status_code = 501
    code = "not_implemented"


class IntakeRecordError(RecordError):
    """Record ``index`` of a submission is invalid; ``errors`` lists every invalid record."""

    def __init__(self, index: int, field: str, reason: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(field, reason)
        self.index = index
        self.errors = errors


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


async def _node_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NodeError)
    headers = (
        {"WWW-Authenticate": 'Bearer realm="credit-ledger"'} if exc.status_code == 401 else None
    )
    return _json(exc.status_code, exc.body(), headers)


async def _record_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RecordError)
    body: dict[str, Any] = {"error": "invalid_record", "field": exc.field, "reason": exc.reason}
    if isinstance(exc, IntakeRecordError):
        body["index"] = exc.index
        body["errors"] = exc.errors
    return _json(422, body)


async def _receipt_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ReceiptError)
    return _json(422, {"error": "invalid_receipt", "field": exc.field, "reason": exc.reason})


async def _root_mismatch(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RootMismatchError)
    return _json(
        422,
        {
            "error": "root_mismatch",
            "expected": exc.expected.hex(),
            "calculated": exc.calculated.hex(),
        },
    )


async def _proof_error(_: Request, exc: Exception) -> JSONResponse:
    return _json(422, {"error": "invalid_proof", "message": str(exc)})


# Reverts that mean "the state moved on" (the caller can retry or reconcile) are conflicts;
# anything else is the chain refusing what this node believed valid: a bad gateway.
_CONFLICT_REVERTS = {
    "BatchOutOfOrder",
    "AlreadyEndorsed",
    "AlreadyApproved",
    "VersionNotIncreasing",
    "VersionGap",
    "RootMismatch",
    "SelfEndorsement",
    "UnknownBatch",
    "SignerExists",
    "RegionExists",
}


async def _contract_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ContractError)
    status = 409 if exc.name in _CONFLICT_REVERTS else 502
    args = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in exc.args_by_name.items()}
    return _json(status, {"error": "contract_revert", "revert": exc.name, "args": args})


async def _chain_error(_: Request, exc: Exception) -> JSONResponse:
    _log.warning("chain unavailable", extra={"error": str(exc)})
    return _json(503, {"error": "chain_unavailable", "message": str(exc)}, {"Retry-After": "5"})


async def _compile_error(_: Request, exc: Exception) -> JSONResponse:
    return _json(500, {"error": "toolchain", "message": str(exc)})


async def _ledger_error(_: Request, exc: Exception) -> JSONResponse:
    _log.error("unexpected ledger error", exc_info=exc)
    return _json(500, {"error": "ledger_error", "message": str(exc)})


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; Starlette picks the most specific class along the MRO."""
    app.add_exception_handler(NodeError, _node_error)
    app.add_exception_handler(RecordError, _record_error)
    app.add_exception_handler(ReceiptError, _receipt_error)
    app.add_exception_handler(RootMismatchError, _root_mismatch)
    app.add_exception_handler(ProofError, _proof_error)
    app.add_exception_handler(ContractError, _contract_error)
    app.add_exception_handler(ChainError, _chain_error)
    app.add_exception_handler(CompileError, _compile_error)
    app.add_exception_handler(LedgerError, _ledger_error)
