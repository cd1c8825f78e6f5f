"""Integrity checks of other regions' packages, and the stored integrity reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from node_api.auth import Principal
from node_api.deps import MAX_ROW_ID, MAX_SEQ, ServicesDep, require
from node_api.integrity import integrity_check, list_reports, load_report

__all__ = ["router"]

router = APIRouter(prefix="/v1/integrity", tags=["integrity"])

Checker = Annotated[Principal, Depends(require("operator", "auditor"))]


class CheckRequest(BaseModel):
    """Which region's batches to check (default: every batch it anchored)."""

    region: int = Field(ge=1, le=2**32 - 1, description="GB/T 2260 code of the region")
    from_seq: int | None = Field(None, ge=0, le=MAX_SEQ)
    to_seq: int | None = Field(None, ge=0, le=MAX_SEQ)
    store: bool = Field(False, description="keep the region's authentic disclosures")


@router.post("/check")
def check(services: ServicesDep, caller: Checker, request: CheckRequest) -> dict[str, Any]:
    """Pull a region's package from its registered endpoint, verify it, store the report."""
    return integrity_check(
        services,
        caller,
        request.region,
        from_seq=request.from_seq,
        to_seq=request.to_seq,
        store=request.store,
    )


@router.get("/reports")
def reports(
    services: ServicesDep,
    caller: Checker,
    region: Annotated[int | None, Query(ge=1, le=2**32 - 1)] = None,
    kind: Annotated[str | None, Query(pattern="^(import|check)$")] = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="page: reports below this id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Stored integrity reports (imports and checks), newest first, without item lists."""
    return list_reports(services, region=region, kind=kind, before_id=before_id, limit=limit)


@router.get("/reports/{report_id}")
def report(
    report_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)], services: ServicesDep, caller: Checker
) -> dict[str, Any]:
    """One stored integrity report with its batches and failing items."""
    return load_report(services, report_id)
