"""The ASGI application of a regional node: ``node_api.main:app``."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node_api.config import Settings
from node_api.errors import ERROR_RESPONSES, PayloadTooLarge, install_error_handlers
from node_api.federation import start_federation
from node_api.processes import tune_gc
from node_api.routers import ROUTERS, health
from node_api.services import Services

__all__ = ["app", "create_app"]

_DESCRIPTION = """\
Regional node of the credit-ledger consortium: intake of credit records, durable
Merkle-batched anchoring on the consortium chain, receipts, verification against the chain,
entity status and history. Authenticate with `Authorization: Bearer <API key>` (operator,
verifier, auditor) or, for other regions' nodes, a request signed with a Consortium signer
key in `X-Credit-Ledger-Signature`. Reads of record payloads by non-operators need an
`X-Purpose` header and are written to the access log.
"""


_HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "the database is down: the same report with status 'down'",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


class _TimingMiddleware:
    """Request latency per route template into the node's Prometheus histogram."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            services = getattr(self.fastapi_app.state, "services", None)
            route = scope.get("route")
            if services is not None and route is not None:
                services.metrics.request_seconds.labels(
                    scope["method"], getattr(route, "path", "?"), str(status)
                ).observe(time.perf_counter() - started)


# py_ecc (imported by eth-account) raises the interpreter's recursion limit to 100,000. At
# that depth the C JSON decoder overflows a thread's stack: one request body of 100,000
# nested brackets killed the node process with SIGSEGV. Under this limit such a body fails
# to parse (400), and nothing the node parses legitimately comes near it.
_RECURSION_LIMIT = 2000
_IMPORT_PATH = "/v1/exchange/import"


class _BodyLimitMiddleware:
    """Refuse request bodies over the node's limits before they are buffered, or stalled.

    Starlette reads a whole body into memory for any route that parses one; this caps it at
    ``max_body_bytes`` (``max_package_bytes`` for package imports, which stream to disk):
    a declared Content-Length over the limit is answered 413 unread, and a chunked body is
    cut off with 413 as soon as it passes the limit. A body that stalls for
    ``request_body_timeout_seconds`` is answered 408 (slowloris); once the body is complete,
    ``receive`` is left alone (a streaming response waits on it for the disconnect).
    """

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(self.fastapi_app.state, "services", None)
        if scope["type"] != "http" or services is None:
            await self.app(scope, receive, send)
            return
        settings = services.settings
        limit = (
            settings.max_package_bytes if scope["path"] == _IMPORT_PATH else settings.max_body_bytes
        )
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                error = PayloadTooLarge(f"request body over {limit} bytes")
                await JSONResponse(error.body(), status_code=error.status_code)(
                    scope, receive, send
                )
                return
        received = 0
        complete = False
        timeout = settings.request_body_timeout_seconds

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except TimeoutError:
                raise HTTPException(408, f"no request body data for {timeout:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException, which FastAPI's body parsing lets through (it turns
                    # anything else raised while reading into a 400).
                    raise HTTPException(413, f"request body over {limit} bytes")
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        await self.app(scope, limited_receive, send)


def create_app(settings: Settings | None = None, **build_options: Any) -> FastAPI:
    """A node application; services are built at start-up from ``settings`` (or the env)."""
    if sys.getrecursionlimit() > _RECURSION_LIMIT:
        sys.setrecursionlimit(_RECURSION_LIMIT)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.build(settings or Settings(), **build_options)
        app.state.services = services
        federation = start_federation(services)
        tune_gc()
        try:
            yield
        finally:
            federation.stop()
            services.close()

    app = FastAPI(
        title="credit-ledger regional node",
        version="1.0.0",
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in ROUTERS:
        public = router is health.router  # health answers without credentials
        responses = _HEALTH_RESPONSES if public else ERROR_RESPONSES
        app.include_router(router, responses=responses)
    app.add_middleware(_BodyLimitMiddleware, fastapi_app=app)
    app.add_middleware(_TimingMiddleware, fastapi_app=app)
    return app


app = create_app()
