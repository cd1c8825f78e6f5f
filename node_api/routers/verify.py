"""Verification of receipts and disclosures against the chain (DESIGN §5)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

import ledger
from ledger.errors import ReceiptError
from node_api.deps import AnyRole, ServicesDep

__all__ = ["router", "verify_against_chain"]

router = APIRouter(prefix="/v1", tags=["verify"])


def verify_against_chain(services: Any, material: dict[str, Any]) -> ledger.Verdict:
    """Verdict of a receipt or disclosure JSON object, read against the chain."""
    reader = services.chain.reader()
    if "receipt" in material:
        return ledger.verify_disclosure(material, reader)
    return ledger.verify_receipt(material, reader)


@router.post("/verify")
def verify(
    services: ServicesDep,
    caller: AnyRole,
    material: Annotated[dict[str, Any], Body(description="a receipt or a disclosure (DESIGN §5)")],
) -> dict[str, Any]:
    """Verify a receipt or disclosure against the chain (not this node's database)."""
    verdict = verify_against_chain(services, material)
    services.metrics.verify_outcomes.labels(verdict.status.value).inc()
    if verdict.status is ledger.VerdictStatus.MALFORMED:
        raise ReceiptError(verdict.field or "", verdict.reason or "malformed")
    return verdict.to_json()
