"""Integrity checks of other regions: pull a peer's package and verify it; stored reports.

``POST /v1/integrity/check`` finds the peer's endpoint in the Consortium contract, pulls its
exchange package with a request signed as this region, and verifies it exactly as an import
does (``node_api.exchange``), against the range the chain holds rather than the range the
peer chose to send: a peer that omits anchored batches has their leaves counted missing.
Nothing is endorsed, and the peer's disclosures are stored only when asked.
"""

from __future__ import annotations

import logging
import time
from tempfile import SpooledTemporaryFile
from typing import Any, Final

from sqlalchemy import select

from node_api.auth import Principal
from node_api.db.exchange_schema import integrity_reports
from node_api.errors import BadRequest, NotFound
from node_api.exchange import (
    OUTCOMES,
    PackageStream,
    finish_report,
    report_json,
    run_stored,
    start_report,
    verify_absent_package,
)
from node_api.federation import PeerUnavailable, fetch_package

__all__ = ["integrity_check", "list_reports", "load_report"]

_log = logging.getLogger("node_api.integrity")

_SPOOL_IN_MEMORY: Final = 16 * 1024 * 1024


def integrity_check(
    services: Any,
    principal: Principal,
    region: int,
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
    store: bool = False,
) -> dict[str, Any]:
    """Check ``region``'s batches ``[from_seq, to_seq]`` (default: all it anchored)."""
    own = services.settings.region
    if region == own:
        raise BadRequest("an integrity check is of another region; this node is that region")
    chain = services.chain
    active = chain.rpc("activeRegions", chain.consortium.active_regions)
    if region not in active:
        raise NotFound(f"region {region} is not an active region of the consortium", region=region)
    next_seq = chain.next_seq(region)
    low = 0 if from_seq is None else from_seq
    high = next_seq - 1 if to_seq is None else to_seq
    if high < low:
        if to_seq is not None:
            raise BadRequest(f"to_seq {to_seq} is below from_seq {low}")
        high = low  # nothing anchored from low on: an empty range, checked all the same
    report_id = start_report(services, "check", principal, region=region, from_seq=low, to_seq=high)
    if low >= next_seq:
        body = verify_absent_package(services, region, low, high)
        body["problems"] = [f"region {region} has no anchored batch from seq {low} on"]
        return finish_report(services, report_id, "completed", body)
    endpoint = chain.rpc("endpointOf", lambda: chain.consortium.endpoint_of(region))
    purpose = f"integrity check of region {region} by {principal.name} at region {own}"
    started = time.monotonic()
    with (
        SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool,
        # Stored disclosures are written only after the signature checked out, so a check
        # with ``store`` verifies after the download.
        PackageStream(
            services, spool, region=region, check_from=low, check_to=high, speculate=not store
        ) as stream,
    ):
        try:
            if not endpoint:
                raise PeerUnavailable(
                    f"region {region} has no endpoint registered on chain", region=region
                )
            fetch_package(services, region, endpoint, low, high, stream, purpose=purpose)
        except PeerUnavailable as e:
            e.details["report"] = finish_report(
                services,
                report_id,
                "unavailable",
                {"region": region, "from_seq": low, "to_seq": high, "reason": e.message},
            )
            raise
        if spool.tell() == 0:
            body = verify_absent_package(services, region, low, high)
            return finish_report(services, report_id, "completed", body)
        fetched = time.monotonic()
        report = run_stored(
            services,
            report_id,
            spool,
            expected_region=region,
            check_from=low,
            check_to=high,
            store=store,
            stream=stream,
        )
    _log.info(
        "integrity check done",
        extra={
            "report_id": report_id,
            "region": region,
            "counts": report.get("counts"),
            "download_seconds": round(fetched - started, 2),  # verifying as it arrives
            "after_download_seconds": round(time.monotonic() - fetched, 2),
        },
    )
    return report


def _summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "region": row.region,
        "from_seq": row.from_seq,
        "to_seq": row.to_seq,
        "requested_by": row.requested_by,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "counts": {o: getattr(row, o) for o in OUTCOMES},
        "endorsed": row.endorsed,
    }


def list_reports(
    services: Any,
    *,
    region: int | None = None,
    kind: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Stored reports, newest first, without their item lists."""
    ir = integrity_reports
    query = select(*(c for c in ir.c if c.name != "report_json")).order_by(ir.c.id.desc())
    if region is not None:
        query = query.where(ir.c.region == region)
    if kind is not None:
        query = query.where(ir.c.kind == kind)
    if before_id is not None:
        query = query.where(ir.c.id < before_id)
    with services.db.read() as conn:
        rows = conn.execute(query.limit(limit)).all()
    items = [_summary(r) for r in rows]
    return {
        "reports": items,
        "next_before_id": items[-1]["id"] if len(items) == limit else None,
    }


def load_report(services: Any, report_id: int) -> dict[str, Any]:
    """One stored report in full; NotFound if there is none."""
    with services.db.read() as conn:
        row = conn.execute(
            select(integrity_reports).where(integrity_reports.c.id == report_id)
        ).first()
    if row is None:
        raise NotFound(f"no integrity report {report_id}", report_id=report_id)
    return report_json(row)
