"""HTTP mapping of errors: node errors and one exception handler per ledger error class."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

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
    "UnsupportedMediaType",
    "Unavailable",
    "NotImplementedYet",
    "IntakeRecordError",
    "ErrorBody",
    "ERROR_RESPONSES",
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

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in an intake process, it is pickled back to the node; Exception's own
        # reduction would rebuild it from the message alone, without its details.
        return _rebuilt_node_error, (type(self), self.message, self.details)

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


class UnsupportedMediaType(NodeError):
    """The body is not of the media type the route reads."""

    status_code = 415
    code = "unsupported_media_type"


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

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in an intake process: pickled with its own arguments (Exception's reduction
        # would call it with the message only, and unpickling would fail).
        return type(self), (self.index, self.field, self.reason, self.errors)


def _rebuilt_node_error(cls: type[NodeError], message: str, details: dict[str, Any]) -> NodeError:
    return cls(message, **details)


class ErrorBody(BaseModel):
    """The body of every error answer: a stable machine-readable code, then details."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="stable error code, e.g. forbidden, invalid_record")
    message: str | None = Field(None, description="what went wrong, for humans")


def _error_response(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Documented on every API route (the OpenAPI schema is what clients and the fuzz suite
# hold the node to): each status the node answers with an ErrorBody.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error_response("malformed request: not JSON, wrong shape, missing X-Purpose"),
    401: _error_response("no or invalid credentials (API key, member signature, replay)"),
    403: _error_response("authenticated, but this role may not do this"),
    404: _error_response("no such record, version, batch, report or region"),
    408: _error_response("the request body stalled; the connection is closed"),
    409: _error_response("conflicts with the stored state, or not anchored yet"),
    413: _error_response("too many records or bytes in one request"),
    415: _error_response("the request body is not of a supported media type"),
    422: _error_response("the request or a record, receipt or package in it is invalid"),
    502: _error_response("another region's node or the chain refused what this node sent"),
    503: _error_response("the chain or the database is unavailable; retry later"),
}


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


async def _storage_error(_: Request, exc: Exception) -> JSONResponse:
    # Disk full, database read-only, I/O error, connection lost: the transaction was rolled
    # back as a whole, so the client can retry the same request once storage is back.
    assert isinstance(exc, OperationalError)
    reason = str(exc.orig) if exc.orig is not None else str(exc)
    _log.error("database refused the request", extra={"error": reason})
    return _json(
        503,
        {
            "error": "storage_unavailable",
            "message": f"the database refused the operation ({reason}); rolled back, retry later",
        },
        {"Retry-After": "30"},
    )


async def _compile_error(_: Request, exc: Exception) -> JSONResponse:
    return _json(500, {"error": "toolchain", "message": str(exc)})


async def _ledger_error(_: Request, exc: Exception) -> JSONResponse:
    _log.error("unexpected ledger error", exc_info=exc)
    return _json(500, {"error": "ledger_error", "message": str(exc)})


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only where and what: echoing "input" would reflect (and re-serialise, recursively)
    # whatever the client sent, however large or deeply nested.
    errors = [
        {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")}
        for e in exc.errors()
    ]
    errors = jsonable_encoder(errors)
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ())]
    where = ".".join(location)
    return _json(
        422,
        {
            "error": "invalid_request",
            # The parameter or body field, named as the record errors name theirs.
            "field": ".".join(location[1:]) or where,
            "message": f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request",
            "detail": errors,
        },
    )


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
}


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return _json(exc.status_code, {"error": code, "message": str(exc.detail)}, exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; Starlette picks the most specific class along the MRO."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(NodeError, _node_error)
    app.add_exception_handler(RecordError, _record_error)
    app.add_exception_handler(ReceiptError, _receipt_error)
    app.add_exception_handler(RootMismatchError, _root_mismatch)
    app.add_exception_handler(ProofError, _proof_error)
    app.add_exception_handler(ContractError, _contract_error)
    app.add_exception_handler(ChainError, _chain_error)
    app.add_exception_handler(CompileError, _compile_error)
    app.add_exception_handler(OperationalError, _storage_error)
    app.add_exception_handler(LedgerError, _ledger_error)
