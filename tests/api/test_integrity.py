"""POST /v1/integrity/check and the stored integrity reports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from exchange_env import (
    BEIJING,
    HEBEI,
    TIANJIN,
    UNREGISTERED_KEY,
    Cluster,
    FakePeer,
    endpoint_replaced,
    join_package,
    resign,
    run_cluster,
    split_package,
)

from ledger.chain.localnode import free_port

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three regions serving HTTP with seeded records (see exchange_env)."""
    yield from run_cluster(tmp_path_factory)


CLEAN_COUNTS = {
    "verified": 5,
    "tampered": 0,
    "unanchored": 0,
    "superseded": 1,
    "revoked": 1,
    "wrong_region": 0,
    "missing": 0,
}


def _check(cluster: Cluster, role: str = "auditor", **body: Any) -> httpx.Response:
    with cluster.tianjin.client(role) as http:
        return http.post("/v1/integrity/check", json={"region": BEIJING, **body})


def _report(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def test_check_pulls_the_peers_package_and_verifies_it(cluster: Cluster) -> None:
    report = _report(_check(cluster))
    assert report["kind"] == "check" and report["status"] == "completed"
    assert (report["region"], report["from_seq"], report["to_seq"]) == (BEIJING, 0, 1)
    assert report["counts"] == CLEAN_COUNTS and report["clean"] is True
    assert report["stored_disclosures"] == 0 and report["endorsed"] == 0
    assert [b["endorsement"] for b in report["batches"]] == [None, None]
    outcomes = {(i["seq"], i["index"]): i["outcome"] for i in report["items"]}
    assert outcomes == {(0, 0): "revoked", (0, 2): "superseded"}
    with cluster.tianjin.client("auditor") as http:
        assert http.get(f"/v1/integrity/reports/{report['id']}").json() == report
        listed = http.get("/v1/integrity/reports", params={"region": BEIJING}).json()
    assert listed["reports"][0]["id"] == report["id"]
    assert listed["reports"][0]["counts"] == CLEAN_COUNTS
    with cluster.beijing.client("auditor") as http:
        log = http.get("/v1/access-log").json()["entries"]
    pulled = next(e for e in log if e["action"] == "exchange_export")
    assert pulled["role"] == f"member:{TIANJIN}" and "integrity check" in pulled["purpose"]


def test_check_of_a_range_and_with_storage(cluster: Cluster) -> None:
    report = _report(_check(cluster, "operator", from_seq=1, store=True))
    assert (report["from_seq"], report["to_seq"], report["leaves"]) == (1, 1, 2)
    assert report["counts"] == {**CLEAN_COUNTS, "verified": 2, "superseded": 0, "revoked": 0}
    assert report["stored_disclosures"] == 2
    assert _check(cluster, "operator", from_seq=1, to_seq=0).status_code == 400


def test_check_is_for_operators_and_auditors(cluster: Cluster) -> None:
    assert _check(cluster, "verifier").status_code == 403
    with cluster.tianjin.member_client(cluster.hebei) as http:
        response = http.post("/v1/integrity/check", json={"region": BEIJING})
    assert response.status_code == 403
    with cluster.tianjin.client("verifier") as http:
        assert http.get("/v1/integrity/reports").status_code == 403
    assert httpx.get(f"{cluster.tianjin.url}/v1/integrity/reports").status_code == 401


def test_check_refuses_its_own_and_unknown_regions(cluster: Cluster) -> None:
    own = _check(cluster, region=TIANJIN)
    assert own.status_code == 400
    unknown = _check(cluster, region=140000)
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    assert _check(cluster, region=0).status_code == 422
    with cluster.tianjin.client("auditor") as http:
        assert http.get("/v1/integrity/reports/999999").status_code == 404


def test_check_of_a_peer_that_does_not_answer_is_stored_as_unavailable(cluster: Cluster) -> None:
    with endpoint_replaced(cluster, BEIJING, f"http://127.0.0.1:{free_port()}"):
        response = _check(cluster)
    assert response.status_code == 502 and response.json()["error"] == "peer_unavailable"
    report = response.json()["report"]
    assert report["status"] == "unavailable" and "did not answer" in report["reason"]
    with cluster.tianjin.client("auditor") as http:
        stored = http.get(f"/v1/integrity/reports/{report['id']}").json()
    assert stored["status"] == "unavailable"


def test_check_counts_batches_a_peer_withholds_as_missing(cluster: Cluster) -> None:
    disclosures, trailer = split_package(cluster.beijing.export())
    first_batch_only = resign(
        disclosures[:5],
        trailer,
        cluster.beijing.signer_key,
        to_seq=0,
        batches=trailer["manifest"]["batches"][:1],
    )
    with FakePeer() as peer, endpoint_replaced(cluster, BEIJING, peer.url):
        peer.serve("/v1/exchange/export", first_batch_only)
        report = _report(_check(cluster))
    assert report["counts"] == {**CLEAN_COUNTS, "verified": 3, "missing": 2}
    withheld = report["batches"][1]
    assert withheld["in_manifest"] is False and withheld["missing"] == 2
    assert withheld["problems"] == ["anchored on chain but not in the manifest"]
    assert report["clean"] is False


def test_check_of_a_peer_that_exports_nothing_counts_every_leaf_missing(
    cluster: Cluster,
) -> None:
    with FakePeer() as peer, endpoint_replaced(cluster, BEIJING, peer.url):
        report = _report(_check(cluster))  # the impostor answers 404 to the export
    assert report["counts"] == {**dict.fromkeys(CLEAN_COUNTS, 0), "missing": 7}
    assert "exported no package" in report["problems"][0]


def test_check_reports_a_package_tampered_on_the_way(cluster: Cluster) -> None:
    disclosures, trailer = split_package(cluster.beijing.export())
    disclosures[5]["salt"] = "00" * 32
    with FakePeer() as peer, endpoint_replaced(cluster, BEIJING, peer.url):
        peer.serve("/v1/exchange/export", join_package(disclosures, trailer))
        report = _report(_check(cluster))
    assert report["counts"] == {**CLEAN_COUNTS, "verified": 4, "tampered": 1}
    tampered = next(i for i in report["items"] if i["outcome"] == "tampered")
    assert (tampered["seq"], tampered["index"], tampered["failed_step"]) == (1, 0, 1)
    assert report["package"]["body_hash_ok"] is False


def test_check_rejects_a_package_signed_by_an_unregistered_key(cluster: Cluster) -> None:
    disclosures, trailer = split_package(cluster.beijing.export())
    with FakePeer() as peer, endpoint_replaced(cluster, BEIJING, peer.url):
        peer.serve("/v1/exchange/export", resign(disclosures, trailer, UNREGISTERED_KEY))
        response = _check(cluster)
    assert response.status_code == 422 and response.json()["error"] == "package_rejected"
    assert response.json()["report"]["status"] == "rejected"


def test_check_rejects_another_regions_package(cluster: Cluster) -> None:
    hebei_package = cluster.hebei.export()
    with FakePeer() as peer, endpoint_replaced(cluster, BEIJING, peer.url):
        peer.serve("/v1/exchange/export", hebei_package)
        response = _check(cluster)
    assert response.status_code == 422
    assert f"got one of region {HEBEI}" in response.json()["message"]
