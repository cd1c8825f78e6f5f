"""GET /v1/entities/{uscc}/status and /history: listings, no payloads, verdicts, federation hook."""

from __future__ import annotations

import json
from typing import Any

from node_harness import AUDITOR, OPERATOR, VERIFIER, Node

import ledger
from node_api.testing import sample_record, sample_uscc


def _status(node: Node, uscc: str) -> dict[str, Any]:
    response = node.client.get(f"/v1/entities/{uscc}/status", headers=VERIFIER)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_status_of_an_unknown_entity_is_not_listed(node: Node) -> None:
    body = _status(node, sample_uscc())
    assert body["listed"] is False and body["listings"] == []


def test_status_reports_current_listings_with_receipts_and_no_payloads(node: Node) -> None:
    uscc = sample_uscc()
    abnormality = sample_record(uscc=uscc)
    violation = sample_record(uscc=uscc, record_type="serious_violation")
    penalty = sample_record(uscc=uscc, record_type="administrative_penalty")
    keys = [r["record_key"] for r in node.submit([abnormality, violation, penalty])["records"]]
    queued = _status(node, uscc)
    assert queued["listed"] is True
    assert {item["state"] for item in queued["listings"]} == {"queued"}
    assert all(item["receipt"] is None for item in queued["listings"])
    node.anchor()
    body = _status(node, uscc)
    assert body["lists"] == {"business_abnormality": True, "serious_violation": True}
    assert [item["record_key"] for item in body["listings"]] == keys[:2]  # not the penalty
    for item in body["listings"]:
        assert item["current"] is True and item["verdict"]["status"] == "valid"
        assert ledger.verify_receipt(item["receipt"]).status == ledger.VerdictStatus.VALID_OFFLINE
        assert "record" not in item
    text = json.dumps(body, ensure_ascii=False)
    payload_values = [
        abnormality["record_id"],
        abnormality["data"]["reason"],
        violation["data"]["reason"],
    ]
    for secret in [*payload_values, '"record"', '"data"', '"salt"', abnormality["issued_by"]]:
        assert secret not in text


def test_lifted_listing_is_not_current_and_carries_the_revocation_receipt(node: Node) -> None:
    uscc = sample_uscc()
    key = node.submit(sample_record(uscc=uscc))["records"][0]["record_key"]
    node.anchor()
    node.client.post(f"/v1/records/{key}/revoke", json={"reason": "信用修复"}, headers=OPERATOR)
    body = _status(node, uscc)
    assert body["listed"] is False
    (item,) = body["listings"]
    assert (item["version"], item["status"], item["state"], item["current"]) == (
        2,
        "revoked",
        "queued",
        False,
    )
    node.anchor()
    (item,) = _status(node, uscc)["listings"]
    assert item["receipt"]["leaf"]["status"] == "revoked" and item["verdict"]["status"] == "valid"


def test_status_rejects_invalid_uscc(node: Node) -> None:
    response = node.client.get("/v1/entities/91110000000000001x/status", headers=VERIFIER)
    assert response.status_code == 422 and response.json()["field"] == "uscc"


def test_history_lists_every_version_with_payload_and_chain_verdict(node: Node) -> None:
    uscc = sample_uscc()
    record = sample_record(uscc=uscc)
    other = sample_record(uscc=uscc, record_type="registration")
    key = node.submit([record, other])["records"][0]["record_key"]
    node.anchor()
    node.client.post(f"/v1/records/{key}/revoke", json={"reason": "lifted"}, headers=OPERATOR)
    response = node.client.get(f"/v1/entities/{uscc}/history", headers=AUDITOR)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["records"] == 2 and body["federated"] is False
    summary = [
        (t["record_key"] == key, t["version"], t["status"], t["state"]) for t in body["timeline"]
    ]
    assert summary == [
        (True, 1, "active", "anchored"),
        (False, 1, "active", "anchored"),
        (True, 2, "revoked", "queued"),
    ]
    first, registration, revocation = body["timeline"]
    assert first["record"] == record and registration["record"] == other
    assert first["verdict"]["status"] == "valid"  # the revocation is not on chain yet
    assert revocation["receipt"] is None and revocation["reason"] == "lifted"
    node.anchor()
    body = node.client.get(f"/v1/entities/{uscc}/history", headers=AUDITOR).json()
    assert [t["verdict"]["status"] for t in body["timeline"]] == ["revoked", "valid", "valid"]
    log = node.client.get("/v1/access-log", params={"uscc": uscc}, headers=AUDITOR).json()[
        "entries"
    ]
    assert [e["action"] for e in log] == ["history", "history"]


def test_history_is_refused_to_verifiers_and_federation_is_a_hook(node: Node) -> None:
    uscc = sample_uscc()
    assert node.client.get(f"/v1/entities/{uscc}/history", headers=VERIFIER).status_code == 403
    node.services.federated_history = None  # a build without the exchange part
    response = node.client.get(f"/v1/entities/{uscc}/history?federated=true", headers=AUDITOR)
    assert response.status_code == 501 and response.json()["error"] == "not_implemented"

    calls: list[tuple[str, int]] = []

    def federated(
        services: Any, uscc: str, local: dict[str, Any], principal: Any
    ) -> dict[str, Any]:
        calls.append((uscc, len(local["timeline"])))
        return {**local, "federated": True, "regions": [services.settings.region]}

    node.services.federated_history = federated
    response = node.client.get(f"/v1/entities/{uscc}/history?federated=true", headers=AUDITOR)
    assert response.json()["federated"] is True and calls == [(uscc, 0)]
