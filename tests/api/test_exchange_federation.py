"""GET /v1/entities/{uscc}/history?federated=true: every region's history, verified here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from exchange_env import (
    BEIJING,
    HEBEI,
    TIANJIN,
    Cluster,
    FakePeer,
    endpoint_replaced,
    run_cluster,
)

from ledger.chain.localnode import free_port
from node_api.federation import register_endpoint

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three regions serving HTTP with seeded records (see exchange_env)."""
    yield from run_cluster(tmp_path_factory)


def _federated(cluster: Cluster, role: str = "auditor") -> dict[str, Any]:
    with cluster.tianjin.client(role, purpose="credit audit") as http:
        response = http.get(
            f"/v1/entities/{cluster.seed.uscc}/history", params={"federated": "true"}
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _verdicts(body: dict[str, Any]) -> dict[tuple[int, str, int], str | None]:
    return {
        (i["region"], i["record_key"], i["version"]): (i["verdict"] or {}).get("status")
        for i in body["timeline"]
    }


def test_federated_history_merges_all_regions_verified_against_the_chain(
    cluster: Cluster,
) -> None:
    body = _federated(cluster)
    seed = cluster.seed
    assert body["federated"] is True and body["complete"] is True and body["unavailable"] == []
    assert [(r["region"], r["status"]) for r in body["regions"]] == [
        (TIANJIN, "ok"),
        (BEIJING, "ok"),
        (HEBEI, "ok"),
    ]
    assert _verdicts(body) == {
        (BEIJING, seed.listing, 1): "revoked",
        (BEIJING, seed.listing, 2): "valid",
        (BEIJING, seed.violation, 1): "valid",
        (BEIJING, seed.penalty, 1): "superseded",
        (BEIJING, seed.penalty, 2): "valid",
        (TIANJIN, seed.tianjin_penalty, 1): "valid",
        (HEBEI, seed.hebei_listing, 1): "valid",
        (HEBEI, seed.hebei_pending, 1): None,
    }
    by_key = {(i["region"], i["record_key"], i["version"]): i for i in body["timeline"]}
    pending = by_key[(HEBEI, seed.hebei_pending, 1)]
    assert pending["state"] == "queued" and "cannot be verified" in pending["verdict_error"]
    assert by_key[(TIANJIN, seed.tianjin_penalty, 1)]["source"] == "local"
    assert by_key[(BEIJING, seed.penalty, 2)]["source"] == "peer"
    assert by_key[(BEIJING, seed.penalty, 2)]["record"]["data"]["amount_fen"] == 2000000
    times = [i["time"] for i in body["timeline"]]
    assert times == sorted(times)
    assert by_key[(BEIJING, seed.listing, 1)]["time_source"] == "chain"
    assert body["verdicts"] == {"valid": 5, "revoked": 1, "superseded": 1, "unverified": 1}


def test_federated_history_is_for_auditors_and_members(cluster: Cluster) -> None:
    with cluster.tianjin.client("verifier") as http:
        response = http.get(
            f"/v1/entities/{cluster.seed.uscc}/history", params={"federated": "true"}
        )
    assert response.status_code == 403
    with cluster.tianjin.member_client(cluster.hebei, purpose="audit") as http:
        response = http.get(
            f"/v1/entities/{cluster.seed.uscc}/history", params={"federated": "true"}
        )
    assert response.status_code == 200 and response.json()["complete"] is True


def test_a_region_that_does_not_answer_is_reported_unavailable(cluster: Cluster) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with endpoint_replaced(cluster, HEBEI, dead):
        body = _federated(cluster)
    assert body["complete"] is False and body["unavailable"] == [HEBEI]
    hebei = next(r for r in body["regions"] if r["region"] == HEBEI)
    assert hebei["status"] == "unavailable" and hebei["endpoint"] == dead
    assert "ConnectError" in hebei["error"]
    assert all(i["region"] != HEBEI for i in body["timeline"])
    assert {i["region"] for i in body["timeline"]} == {BEIJING, TIANJIN}


def test_stored_disclosures_stand_in_for_an_unavailable_region(cluster: Cluster) -> None:
    imported = cluster.tianjin.import_package(cluster.beijing.export(), store=True)
    assert imported.status_code == 200
    with endpoint_replaced(cluster, BEIJING, f"http://127.0.0.1:{free_port()}"):
        body = _federated(cluster)
    beijing = next(r for r in body["regions"] if r["region"] == BEIJING)
    assert beijing["status"] == "unavailable" and beijing["stored_items"] == 5
    stored = [i for i in body["timeline"] if i["region"] == BEIJING]
    assert {i["source"] for i in stored} == {"stored"}
    assert sorted(i["verdict"]["status"] for i in stored) == [
        "revoked",
        "superseded",
        "valid",
        "valid",
        "valid",
    ]


def test_a_peer_serving_altered_records_is_caught(cluster: Cluster) -> None:
    path = f"/v1/exchange/entities/{cluster.seed.uscc}"
    with cluster.beijing.member_client(cluster.tianjin) as http:
        genuine = http.get(path).json()
    forged = next(i for i in genuine["items"] if i["record_key"] == cluster.seed.violation)
    forged["disclosure"]["record"]["issued_by"] = "某不存在的机关"
    with FakePeer() as peer, endpoint_replaced(cluster, BEIJING, peer.url):
        peer.serve(path, genuine)
        body = _federated(cluster)
    assert peer.requests and peer.requests[0]["x-credit-ledger-signature"].startswith(
        f"region={TIANJIN};"
    )
    verdicts = _verdicts(body)
    assert verdicts[(BEIJING, cluster.seed.violation, 1)] == "invalid"
    assert verdicts[(BEIJING, cluster.seed.penalty, 2)] == "valid"
    item = next(i for i in body["timeline"] if i["record_key"] == cluster.seed.violation)
    assert item["verdict"]["failed_step"] == 1


def test_a_peer_answering_garbage_is_reported_not_dropped(cluster: Cluster) -> None:
    with FakePeer() as peer, endpoint_replaced(cluster, BEIJING, peer.url):
        peer.serve(f"/v1/exchange/entities/{cluster.seed.uscc}", {"error": "boom"}, status=500)
        body = _federated(cluster)
    beijing = next(r for r in body["regions"] if r["region"] == BEIJING)
    assert beijing["status"] == "error" and beijing["http_status"] == 500
    assert body["complete"] is False


def test_register_endpoint_is_idempotent_and_moves_the_endpoint(cluster: Cluster) -> None:
    services = cluster.hebei.services
    assert register_endpoint(services) == "unchanged"
    cluster.set_endpoint(HEBEI, "http://old.example")
    assert register_endpoint(services) == "registered"
    assert cluster.chain.consortium().endpoint_of(HEBEI) == cluster.hebei.url
    assert httpx.get(f"{cluster.hebei.url}/v1/health").json()["status"] == "ok"
