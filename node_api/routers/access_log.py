"""The access log: who read which record payloads, when, and for what stated purpose."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from node_api.db.tables import access_log
from node_api.deps import MAX_ROW_ID, RECORD_KEY_PATTERN, USCC_PATTERN, Auditor, ServicesDep

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/access-log")
def list_access_log(
    services: ServicesDep,
    caller: Auditor,
    uscc: Annotated[str | None, Query(pattern=USCC_PATTERN)] = None,
    record_key: Annotated[str | None, Query(pattern=RECORD_KEY_PATTERN)] = None,
    principal: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[
        float | None, Query(description="unix seconds", ge=0, le=1e11, allow_inf_nan=False)
    ] = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Reads of record payloads by non-operators, newest first (auditors)."""
    query = select(access_log).order_by(access_log.c.id.desc()).limit(limit)
    if uscc is not None:
        query = query.where(access_log.c.uscc == uscc)
    if record_key is not None:
        query = query.where(access_log.c.record_key == bytes.fromhex(record_key))
    if principal is not None:
        query = query.where(access_log.c.principal == principal)
    if since is not None:
        query = query.where(access_log.c.at >= since)
    if before_id is not None:
        query = query.where(access_log.c.id < before_id)
    with services.db.read() as conn:
        rows = conn.execute(query).all()
    entries = [
        {
            "id": r.id,
            "at": r.at,
            "principal": r.principal,
            "role": r.role,
            "action": r.action,
            "record_key": bytes(r.record_key).hex() if r.record_key is not None else None,
            "uscc": r.uscc,
            "version": r.version,
            "purpose": r.purpose,
            "remote_addr": r.remote_addr,
        }
        for r in rows
    ]
    return {
        "entries": entries,
        "next_before_id": entries[-1]["id"] if len(entries) == limit else None,
    }
