"""One router per resource of the node API (DESIGN §6)."""

from node_api.routers import (
    access_log,
    batches,
    entities,
    exchange,
    health,
    integrity,
    records,
    verify,
)

ROUTERS = (
    records.router,
    verify.router,
    entities.router,
    batches.router,
    access_log.router,
    exchange.router,
    integrity.router,
    health.router,
)

__all__ = ["ROUTERS"]
