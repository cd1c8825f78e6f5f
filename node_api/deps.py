"""FastAPI dependencies as ``Annotated`` aliases: services, the caller, role checks, bodies."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from node_api.auth import Principal
from node_api.errors import BadRequest, Forbidden, PayloadTooLarge
from node_api.services import Services

__all__ = [
    "get_services",
    "ServicesDep",
    "CallerDep",
    "require",
    "Operator",
    "AnyRole",
    "RecordReader",
    "HistoryReader",
    "Auditor",
    "JsonBody",
]


def get_services(request: Request) -> Services:
    """The node's services, built at start-up."""
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


async def read_json_body(request: Request, services: ServicesDep) -> Any:
    """The request body parsed as JSON, bounded by ``max_body_bytes``."""
    limit = services.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadRequest(f"body is not JSON: {e}") from None


JsonBody = Annotated[Any, Depends(read_json_body)]
