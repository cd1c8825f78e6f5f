"""GET /v1/records/{key}/receipt and POST /v1/verify: receipts, disclosures, verdicts."""

from __future__ import annotations

import copy
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from node_harness import AUDITOR, OPERATOR, VERIFIER, Node

import ledger
from ledger.errors import ChainError
from node_api.chain import ChainGateway, HeadReader
from node_api.config import Settings
from node_api.testing import sample_record


def _anchored(node: Node, count: int = 3) -> tuple[list[dict[str, Any]], list[str]]:
    records = [sample_record() for _ in range(count)]
    keys = [r["record_key"] for r in node.submit(records)["records"]]
    node.anchor()
    return records, keys


def _verify(
    node: Node, material: dict[str, Any], headers: dict[str, str] = VERIFIER
) -> dict[str, Any]:
    response = node.client.post("/v1/verify", json=material, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_receipt_is_not_available_before_anchoring(node: Node) -> None:
    key = node.submit(sample_record())["records"][0]["record_key"]
    response = node.client.get(f"/v1/records/{key}/receipt", headers=VERIFIER)
    assert response.status_code == 409
    assert response.json()["error"] == "not_anchored" and response.json()["state"] == "queued"


def test_receipt_follows_design_section_5_and_verifies_offline_and_on_chain(node: Node) -> None:
    _, keys = _anchored(node, 5)
    deployment = node.services.chain.deployment
    for key in keys:
        receipt = node.receipt(key)
        assert receipt["format"] == "credit-ledger/receipt/v1" and receipt["hash_alg"] == "sha256"
        assert receipt["chain"]["chain_id"] == deployment.chain_id
        assert receipt["chain"]["anchor_contract"] == deployment.anchor.lower()
        assert receipt["chain"]["tx_hash"].startswith("0x")
        assert receipt["batch"]["region"] == 110000 and receipt["batch"]["size"] == 5
        assert receipt["leaf"]["record_key"] == key and receipt["leaf"]["status"] == "active"
        assert ledger.verify_receipt(receipt).status == ledger.VerdictStatus.VALID_OFFLINE
        verdict = _verify(node, receipt)
        assert verdict["valid"] is True and verdict["status"] == "valid"
        assert verdict["checked_steps"] == [2, 3, 4] and verdict["current"] is True


def test_disclosure_is_for_readers_only_and_verifies_all_four_steps(node: Node) -> None:
    records, keys = _anchored(node, 2)
    url = f"/v1/records/{keys[0]}/receipt?disclose=true"
    assert node.client.get(url, headers=VERIFIER).status_code == 403
    disclosure = node.client.get(url, headers=AUDITOR).json()
    assert disclosure["record"] == records[0]
    assert len(bytes.fromhex(disclosure["salt"])) == 32
    verdict = _verify(node, disclosure)
    assert verdict["status"] == "valid" and verdict["checked_steps"] == [1, 2, 3, 4]
    log = node.client.get("/v1/access-log", headers=AUDITOR).json()["entries"]
    assert (log[0]["action"], log[0]["version"]) == ("disclose", 1)


def test_tampered_material_names_the_failed_step(node: Node) -> None:
    _, keys = _anchored(node, 4)
    disclosure = node.client.get(
        f"/v1/records/{keys[1]}/receipt?disclose=true", headers=OPERATOR
    ).json()

    payload = copy.deepcopy(disclosure)
    payload["record"]["data"]["listing_authority"] = "某某局"
    assert (_verify(node, payload)["status"], _verify(node, payload)["failed_step"]) == (
        "invalid",
        1,
    )

    salt = copy.deepcopy(disclosure)
    salt["salt"] = "00" * 32
    assert _verify(node, salt)["failed_step"] == 1

    proof = copy.deepcopy(disclosure["receipt"])
    proof["proof"][0] = "11" * 32
    assert _verify(node, proof)["failed_step"] == 2

    root = copy.deepcopy(disclosure["receipt"])
    root["batch"]["root"] = "22" * 32
    assert _verify(node, root)["failed_step"] == 2

    unanchored = copy.deepcopy(disclosure["receipt"])
    unanchored["batch"]["seq"] = 10_000
    verdict = _verify(node, unanchored)
    assert (verdict["status"], verdict["failed_step"]) == ("unanchored", 3)

    other_chain = copy.deepcopy(disclosure["receipt"])
    other_chain["chain"]["chain_id"] = 1
    assert _verify(node, other_chain)["failed_step"] == 3


def test_malformed_material_is_422_with_field(node: Node) -> None:
    response = node.client.post("/v1/verify", json={"format": "nope"}, headers=VERIFIER)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_receipt" and response.json()["field"]
    response = node.client.post(
        "/v1/verify", json={"receipt": {}, "record": {}, "salt": ""}, headers=VERIFIER
    )
    assert response.status_code == 422


def test_correction_and_revocation_change_the_verdict_of_older_receipts(node: Node) -> None:
    record = sample_record()
    key = node.submit(record)["records"][0]["record_key"]
    node.anchor()
    first = node.receipt(key)
    corrected = copy.deepcopy(record)
    corrected["data"]["listed_on"] = "2024-07-03"
    node.client.put(f"/v1/records/{key}", json=corrected, headers=OPERATOR)
    node.anchor()
    verdict = _verify(node, first)
    assert (verdict["status"], verdict["head_version"], verdict["current"]) == (
        "superseded",
        2,
        False,
    )
    second = node.receipt(key, version=2)
    assert second["leaf"]["prev_leaf"] == verdict["leaf_hash"]
    assert _verify(node, second)["status"] == "valid"
    node.client.post(f"/v1/records/{key}/revoke", json={"reason": "repair"}, headers=OPERATOR)
    node.anchor()
    assert _verify(node, second)["status"] == "revoked"
    latest = node.receipt(key)
    assert latest["leaf"]["version"] == 3 and latest["leaf"]["status"] == "revoked"
    assert _verify(node, latest)["status"] == "valid"
    assert (
        node.client.get(f"/v1/records/{key}/receipt?version=9", headers=OPERATOR).status_code == 404
    )


def test_verify_outcomes_are_counted(node: Node) -> None:
    _, keys = _anchored(node, 1)
    receipt = node.receipt(keys[0])
    _verify(node, receipt)
    text = node.client.get("/metrics").text
    assert 'credit_ledger_verify_total{outcome="valid"} 1.0' in text


def test_concurrent_verifications_read_current_heads_in_shared_batches(node: Node) -> None:
    _, keys = _anchored(node, 6)
    receipts = [node.receipt(k) for k in keys]
    gateway = node.services.chain
    anchor = gateway.anchor
    wanted = [(110000, bytes.fromhex(k)) for k in keys] + [(110000, bytes(32))]
    # One batched read gives what six separate headOf calls give; an unknown key's head is zero.
    assert gateway.heads_of(wanted) == [anchor.head_of(r, k) for r, k in wanted]
    with ThreadPoolExecutor(6) as pool:
        verdicts = list(pool.map(lambda r: _verify(node, r), receipts * 3))
    assert {v["status"] for v in verdicts} == {"valid"}


def test_verify_answers_503_when_the_chain_does_not_answer_head_reads(
    make_settings: Callable[..., Settings], start_node: Callable[[Settings], Node]
) -> None:
    node = start_node(make_settings())
    _, keys = _anchored(node, 1)
    receipt = node.receipt(keys[0])
    assert _verify(node, receipt)["status"] == "valid"  # batch root now cached
    dead = ChainGateway(make_settings(rpc_url="http://127.0.0.1:9"), None, node.services.metrics)
    with pytest.raises(ChainError):
        dead.heads_of([(110000, bytes(32))])
    node.services.chain.heads = HeadReader(dead)
    response = node.client.post("/v1/verify", json=receipt, headers=VERIFIER)
    assert response.status_code == 503, response.text
