"""Entities: current listing status (for verifiers) and full history (for auditors, members)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

import ledger
from ledger.errors import ChainError
from node_api.auth import record_access
from node_api.deps import USCC_PATTERN, AnyRole, HistoryReader, ServicesDep
from node_api.errors import NotImplementedYet
from node_api.receipts import VersionRow, build_receipt, latest_versions_of, load_versions

__all__ = ["router", "LISTING_TYPES"]

router = APIRouter(prefix="/v1/entities", tags=["entities"])

# The lists platforms check at onboarding (DESIGN §1).
LISTING_TYPES = ("business_abnormality", "serious_violation")


def _receipt_and_verdict(conn: Any, services: Any, row: VersionRow, reader: Any) -> dict[str, Any]:
    """Receipt JSON and its chain verdict; degrades to an error string if the chain is away."""
    if not row.anchored:
        return {"receipt": None, "verdict": None}
    receipt = build_receipt(conn, services, row)
    entry: dict[str, Any] = {"receipt": receipt.to_json(), "verdict": None}
    if reader is None:
        entry["verdict_error"] = "chain unavailable"
        return entry
    try:
        verdict = ledger.verify_receipt(receipt, reader)
        entry["verdict"] = verdict.to_json()
    except ChainError as e:
        entry["verdict_error"] = str(e)
    return entry


def _reader(services: Any) -> Any:
    try:
        return services.chain.reader()
    except ChainError:
        return None


@router.get("/{uscc}/status")
def status(
    uscc: Annotated[str, Path(pattern=USCC_PATTERN)], services: ServicesDep, caller: AnyRole
) -> dict[str, Any]:
    """Is the entity on the abnormality or serious-violation list now? Receipts, no payloads."""
    ledger.validate_uscc(uscc)
    reader = _reader(services)
    with services.db.read() as conn:
        latest = latest_versions_of(conn, uscc, LISTING_TYPES)
        listings = []
        for row in latest:
            current = row.status == ledger.LeafStatus.ACTIVE
            listings.append(
                {
                    **row.summary(),
                    "current": current,
                    **_receipt_and_verdict(conn, services, row, reader),
                }
            )
    lists = {
        t: any(item["current"] and item["record_type"] == t for item in listings)
        for t in LISTING_TYPES
    }
    return {
        "uscc": uscc,
        "region": services.settings.region,
        "listed": any(lists.values()),
        "lists": lists,
        "listings": listings,
        "as_of": time.time(),
    }


@router.get("/{uscc}/history")
def history(
    uscc: Annotated[str, Path(pattern=USCC_PATTERN)],
    services: ServicesDep,
    caller: HistoryReader,
    request: Request,
    federated: Annotated[
        bool, Query(description="merge the histories of all regions' nodes (exchange part)")
    ] = False,
) -> dict[str, Any]:
    """Every version of every record of the entity at this node, with chain verdicts."""
    ledger.validate_uscc(uscc)
    # Logged (and the purpose checked) before any payload is read.
    record_access(services.db, caller, request, "history", uscc=uscc)
    reader = _reader(services)
    with services.db.read() as conn:
        rows = load_versions(conn, uscc=uscc)
        timeline = [
            {
                **row.detail(),
                "region": row.region,
                "record_id": row.record_id,
                **_receipt_and_verdict(conn, services, row, reader),
            }
            for row in rows
        ]
    local = {
        "uscc": uscc,
        "region": services.settings.region,
        "federated": False,
        "records": len({item["record_key"] for item in timeline}),
        "timeline": timeline,
    }
    if not federated:
        return local
    if services.federated_history is None:
        raise NotImplementedYet("federated history is not available in this node build")
    return services.federated_history(services, uscc, local, caller)
