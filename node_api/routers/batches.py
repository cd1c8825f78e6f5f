"""Batches: listing, one batch with its manifest, and anchoring on demand."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from node_api.batches import batch_manifest, load_leaf_hashes
from node_api.db.tables import batches
from node_api.deps import MAX_SEQ, AnyRole, Operator, ServicesDep
from node_api.errors import NotFound

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["batches"])


def _batch_json(row: Any) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "size": row.size,
        "root": bytes(row.root).hex(),
        "manifest_hash": bytes(row.manifest_hash).hex(),
        "state": row.state,
        "sealed_at": row.sealed_at,
        "tx_hash": row.tx_hash,
        "block_number": row.block_number,
        "anchored_at": row.anchored_at,
        "gas_used": row.gas_used,
        "send_attempts": row.send_attempts,
        "last_error": row.last_error,
    }


@router.get("/batches")
def list_batches(
    services: ServicesDep,
    caller: AnyRole,
    state: Annotated[str | None, Query(pattern="^(sealed|anchored|conflict)$")] = None,
    before_seq: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="page: batches below this seq")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """This region's batches, newest first."""
    query = select(batches).order_by(batches.c.seq.desc()).limit(limit)
    if state is not None:
        query = query.where(batches.c.state == state)
    if before_seq is not None:
        query = query.where(batches.c.seq < before_seq)
    with services.db.read() as conn:
        rows = conn.execute(query).all()
    items = [_batch_json(r) for r in rows]
    return {
        "region": services.settings.region,
        "batches": items,
        "next_before_seq": items[-1]["seq"] if len(items) == limit else None,
    }


@router.get("/batches/{seq}")
def get_batch(
    seq: Annotated[int, Path(ge=0, le=MAX_SEQ)],
    services: ServicesDep,
    caller: AnyRole,
    leaves: Annotated[bool, Query(description="include the leaf hashes in batch order")] = False,
) -> dict[str, Any]:
    """One batch with its manifest (and optionally its leaf hashes)."""
    with services.db.read() as conn:
        row = conn.execute(select(batches).where(batches.c.seq == seq)).first()
        if row is None:
            raise NotFound(f"no batch {seq} at this node", seq=seq)
        leaf_hashes = load_leaf_hashes(conn, seq) if leaves else None
    body = _batch_json(row)
    body["manifest"] = batch_manifest(
        services.settings.region, row.seq, bytes(row.root), row.size, bytes(row.leaves_digest)
    )
    if leaf_hashes is not None:
        body["leaves"] = [h.hex() for h in leaf_hashes]
    return body


@router.post("/anchor")
def anchor(services: ServicesDep, caller: Operator) -> dict[str, Any]:
    """Seal everything pending now and anchor it; waits for the transactions."""
    assert services.worker is not None
    return services.worker.anchor_now()
