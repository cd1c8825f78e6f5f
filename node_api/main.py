"""The ASGI application of a regional node: ``node_api.main:app``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node_api.config import Settings
from node_api.errors import install_error_handlers
from node_api.federation import start_federation
from node_api.routers import ROUTERS
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


def create_app(settings: Settings | None = None, **build_options: Any) -> FastAPI:
    """A node application; services are built at start-up from ``settings`` (or the env)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.build(settings or Settings(), **build_options)
        app.state.services = services
        federation = start_federation(services)
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
        app.include_router(router)
    app.add_middleware(_TimingMiddleware, fastapi_app=app)
    return app


app = create_app()
