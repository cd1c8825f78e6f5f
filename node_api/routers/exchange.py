"""Exchange between regions: signed export packages, verified imports, entity disclosures."""

from __future__ import annotations

import json
from tempfile import SpooledTemporaryFile
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

import ledger
from node_api.auth import Principal, record_access
from node_api.deps import (
    MAX_SEQ,
    USCC_PATTERN,
    HistoryReader,
    Operator,
    ServicesDep,
    require,
    require_media_type,
)
from node_api.errors import PayloadTooLarge
from node_api.exchange import PACKAGE_MEDIA_TYPE, import_package, plan_export, stream_package
from node_api.receipts import build_disclosure, load_versions

__all__ = ["router"]

router = APIRouter(prefix="/v1/exchange", tags=["exchange"])

Exporter = Annotated[Principal, Depends(require("member", "operator"))]

_SPOOL_IN_MEMORY: Final = 16 * 1024 * 1024
_PACKAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            PACKAGE_MEDIA_TYPE: {
                "schema": {
                    "type": "string",
                    "description": "an exchange package as GET /v1/exchange/export returns it",
                }
            }
        },
    }
}


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {PACKAGE_MEDIA_TYPE: {}}, "description": "the package"}},
)
def export(
    services: ServicesDep,
    caller: Exporter,
    request: Request,
    from_seq: Annotated[int, Query(ge=0, le=MAX_SEQ, description="first batch")] = 0,
    to_seq: Annotated[
        int | None,
        Query(ge=0, le=MAX_SEQ, description="last batch (default: the last anchored)"),
    ] = None,
) -> StreamingResponse:
    """Stream this region's anchored batches as disclosures with an EIP-712 signed manifest."""
    plan = plan_export(services, from_seq, to_seq)
    record_access(services.db, caller, request, "exchange_export")
    return StreamingResponse(
        stream_package(services, plan),
        media_type=PACKAGE_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{plan.filename}"',
            "X-Credit-Ledger-Region": str(plan.region),
            "X-Credit-Ledger-Seq-Range": f"{plan.from_seq}-{plan.to_seq}",
        },
    )


@router.post("/import", openapi_extra=_PACKAGE_BODY)
async def import_(
    request: Request,
    services: ServicesDep,
    caller: Operator,
    endorse: Annotated[
        bool, Query(description="endorse fully verified batches on chain with this node's signer")
    ] = False,
    store: Annotated[
        bool, Query(description="keep the authentic disclosures of the other region")
    ] = True,
) -> dict[str, Any]:
    """Verify another region's package against the chain; store and return the report."""
    require_media_type(request, PACKAGE_MEDIA_TYPE)
    limit = services.settings.max_package_bytes
    with SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise PayloadTooLarge(f"package over {limit} bytes")
            spool.write(chunk)
        return await run_in_threadpool(
            import_package, services, caller, spool, endorse=endorse, store=store
        )


@router.get("/entities/{uscc}")
def entity_disclosures(
    uscc: Annotated[str, Path(pattern=USCC_PATTERN)],
    services: ServicesDep,
    caller: HistoryReader,
    request: Request,
) -> dict[str, Any]:
    """Every version of the entity's records here: disclosures where anchored (federation)."""
    ledger.validate_uscc(uscc)
    items = []
    with services.db.read() as conn:
        for row in load_versions(conn, uscc=uscc):
            item: dict[str, Any] = {
                "record_key": row.record_key.hex(),
                "record_type": row.record_type,
                "record_id": row.record_id,
                "version": row.version,
                "status": ledger.LeafStatus(row.status).status_name,
                "state": row.state,
                "submitted_at": row.submitted_at,
                "reason": row.reason,
            }
            if row.anchored:
                item["disclosure"] = build_disclosure(conn, services, row).to_json()
            else:
                item["disclosure"] = None
                item["record"] = json.loads(row.record_json)
            items.append(item)
    record_access(services.db, caller, request, "exchange_entity", uscc=uscc)
    return {"uscc": uscc, "region": services.settings.region, "items": items}
