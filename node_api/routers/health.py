"""Liveness and readiness: database, chain, worker; and the Prometheus endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from node_api.db import current_versions
from node_api.deps import ServicesDep
from node_api.metrics import pipeline_snapshot

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/v1/health")
def health(services: ServicesDep) -> Any:
    """Chain reachable, contracts found, database reachable, worker lag and pending counts."""
    report: dict[str, Any] = {"region": services.settings.region}
    try:
        services.db.ping()
        report["database"] = {
            "ok": True,
            "url": services.db.describe(),
            "schema": current_versions(services.db),
        }
        report["pipeline"] = pipeline_snapshot(services.db)
    except Exception as e:  # health must answer whatever is broken
        report["database"] = {"ok": False, "url": services.db.describe(), "error": str(e)}
    chain = services.chain.health()
    if services.signer_error:
        chain = {**chain, "signer_error": services.signer_error}
    report["chain"] = chain
    report["worker"] = services.worker.status() if services.worker else None
    worker_ok = report["worker"] is None or not report["worker"]["blocked"]
    if not report["database"]["ok"]:
        report["status"] = "down"
        return JSONResponse(report, status_code=503)
    ok = chain["reachable"] and chain["contracts_ok"] and worker_ok
    report["status"] = "ok" if ok else "degraded"
    return report


@router.get("/metrics", include_in_schema=False)
def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
