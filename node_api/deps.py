"""FastAPI dependencies as ``Annotated`` aliases: services, the caller, role checks, bodies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Final

from fastapi import Depends, Request

from node_api.auth import Principal
from node_api.errors import Forbidden, PayloadTooLarge, UnsupportedMediaType
from node_api.services import Services

__all__ = [
    "MAX_SEQ",
    "MAX_ROW_ID",
    "MAX_VERSION",
    "RECORD_KEY_PATTERN",
    "USCC_PATTERN",
    "get_services",
    "ServicesDep",
    "CallerDep",
    "require",
    "Operator",
    "AnyRole",
    "RecordReader",
    "HistoryReader",
    "Auditor",
    "JsonBytes",
    "require_media_type",
]


# Bounds of numbers taken from requests. Seqs are uint64 on chain but the database stores
# signed 64-bit integers: an unbounded query parameter reached SQLite as an OverflowError
# (HTTP 500) before these bounds were declared.
MAX_SEQ: Final = 2**63 - 1
MAX_ROW_ID: Final = 2**63 - 1
MAX_VERSION: Final = 2**32 - 1  # uint32 on chain
RECORD_KEY_PATTERN: Final = "^[0-9a-f]{64}$"
# GB 32100-2015 characters; the check character is verified by ledger.validate_uscc.
USCC_PATTERN: Final = "^[0-9A-HJ-NPQRTUWXY]{18}$"


async def get_services(request: Request) -> Services:
    """The node's services, built at start-up."""
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, a hop per request
    # that every route paid (measured with /v1/verify, bench/findings.md).
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_caller(request: Request, services: ServicesDep) -> Principal:
    """The authenticated caller (401 without valid credentials)."""
    return await services.authenticator.authenticate(request)


CallerDep = Annotated[Principal, Depends(get_caller)]


def require(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only ``roles`` (``member`` = any region's signed node)."""

    async def check(caller: CallerDep) -> Principal:
        if caller.role not in roles:
            raise Forbidden(
                f"role {caller.role_label} may not do this; allowed: {', '.join(roles)}",
                role=caller.role_label,
            )
        return caller

    return check


Operator = Annotated[Principal, Depends(require("operator"))]
AnyRole = Annotated[Principal, Depends(require("operator", "verifier", "auditor", "member"))]
# Roles that may see record payloads: verifiers get "usable, not visible" (DESIGN §6).
RecordReader = Annotated[Principal, Depends(require("operator", "auditor", "member"))]
HistoryReader = Annotated[Principal, Depends(require("operator", "auditor", "member"))]
Auditor = Annotated[Principal, Depends(require("auditor"))]


def require_media_type(request: Request, *accepted: str) -> None:
    """Raise UnsupportedMediaType if the body is declared as anything but ``accepted``.

    A body without a Content-Type is read as the route's type (clients and scripts post
    them); one declared as something else (a form, XML, text) is refused, not guessed at.
    """
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media_type = declared.split(";", 1)[0].strip().lower()
    if media_type not in accepted:
        raise UnsupportedMediaType(
            f"send the body as {' or '.join(accepted)}, not {media_type or 'an empty type'}",
            accepted=list(accepted),
        )


async def read_json_bytes(request: Request, services: ServicesDep) -> bytes:
    """The request body, declared as JSON (or undeclared), bounded by ``max_body_bytes``.

    Left unparsed: the route parses it, in its worker thread or an intake process, so that
    decoding a large body never holds up the event loop.
    """
    require_media_type(request, "application/json")
    limit = services.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes")
    chunks: list[bytes] = []
    received = 0
    # Read as it arrives and stop at the limit: a chunked body has no Content-Length, and
    # request.body() would buffer all of it first.
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


JsonBytes = Annotated[bytes, Depends(read_json_bytes)]
