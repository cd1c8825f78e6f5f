"""POST /v1/integrity/check and the stored integrity reports."""

from __future__ import annotations

import json
import os
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
from node_api import exchange

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


# -- parallel verification (worker processes) and verification during the download

_RUN_FIELDS = ("counts", "clean", "disclosures", "leaves", "problems", "batches", "items")


@pytest.fixture
def parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify every package in worker processes, two disclosures per task, so that even
    this cluster's seven disclosures make several tasks in flight at once."""
    monkeypatch.setattr(exchange, "_PARALLEL_MIN_LINES", 0)
    monkeypatch.setattr(exchange, "_CHUNK_LINES", 2)


def _run_part(report: dict[str, Any]) -> dict[str, Any]:
    return {name: report[name] for name in _RUN_FIELDS}


def _checks(cluster: Cluster, package: bytes | None = None, **body: Any) -> dict[str, Any]:
    """The report of a check, from the real peer or from an impostor serving ``package``."""
    if package is None:
        return _report(_check(cluster, **body))
    with FakePeer() as peer, endpoint_replaced(cluster, BEIJING, peer.url):
        peer.serve("/v1/exchange/export", package)
        return _report(_check(cluster, **body))


def _variants(cluster: Cluster) -> list[tuple[bytes | None, dict[str, Any]]]:
    """Packages and requests whose reports the parallel path must reproduce."""
    disclosures, trailer = split_package(cluster.beijing.export())
    tampered = [dict(d) for d in disclosures]
    tampered[3] = {**tampered[3], "salt": "00" * 32}  # in the middle, not in the first task
    duplicated = disclosures[:4] + [disclosures[2]] + disclosures[5:]
    upper_key = json.loads(json.dumps(disclosures[1]))
    upper_key["receipt"]["leaf"]["record_key"] = upper_key["receipt"]["leaf"]["record_key"].upper()
    hostile = [
        b"not JSON",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps(upper_key).encode(),
        json.dumps(split_package(cluster.hebei.export())[0][0]).encode(),
        b"",
        *(json.dumps(d, indent=1).replace("\n", " ").encode() for d in disclosures),
        json.dumps(disclosures[0]).encode(),
    ]
    return [
        (b"\n".join(hostile) + b"\n" + json.dumps(trailer).encode() + b"\n\n", {}),
        (None, {}),
        (None, {"operator": True, "store": True}),  # no verification during the download
        (join_package(tampered, trailer), {}),
        (resign(duplicated, trailer, cluster.beijing.signer_key), {}),
        # withholds batch 1: the download's assumption fails, the package is verified again
        (
            resign(
                disclosures[:5],
                trailer,
                cluster.beijing.signer_key,
                to_seq=0,
                batches=trailer["manifest"]["batches"][:1],
            ),
            {},
        ),
    ]


def test_parallel_check_gives_the_sequential_report(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = []
    for package, body in _variants(cluster):
        role = "operator" if body.pop("operator", False) else "auditor"
        expected.append(_run_part(_checks(cluster, package, role=role, **body)))
    monkeypatch.setattr(exchange, "_PARALLEL_MIN_LINES", 0)
    monkeypatch.setattr(exchange, "_CHUNK_LINES", 2)
    adopted: list[bool] = []
    adopt = exchange._Verification.adopt

    def spy(run: Any, speculative: Any) -> bool:
        adopted.append(adopt(run, speculative))
        return adopted[-1]

    monkeypatch.setattr(exchange._Verification, "adopt", spy)
    for (package, body), sequential in zip(_variants(cluster), expected, strict=True):
        role = "operator" if body.pop("operator", False) else "auditor"
        assert _run_part(_checks(cluster, package, role=role, **body)) == sequential
    # Verified during the download except with storage (no speculation at all) and when
    # the manifest withholds a batch the chain holds (verified again after the download).
    assert adopted == [True, True, True, True, False]
    # The line with an upper-case record_key names leaf 1 of batch 0: the genuine
    # disclosure of that leaf after it is a second one.
    hostile = {**CLEAN_COUNTS, "verified": 4, "tampered": 6, "wrong_region": 1}
    assert expected[0]["counts"] == hostile
    assert expected[3]["counts"] == {**CLEAN_COUNTS, "verified": 4, "tampered": 1}
    assert expected[4]["counts"]["tampered"] == 1 and expected[4]["counts"]["missing"] == 1
    assert expected[5]["counts"]["missing"] == 2


def test_parallel_check_catches_a_disclosure_tampered_in_the_middle(
    cluster: Cluster, parallel: None
) -> None:
    disclosures, trailer = split_package(cluster.beijing.export())
    record = disclosures[4]["record"]
    disclosures[4] = {**disclosures[4], "record": {**record, "issued_by": "someone else"}}
    # Re-signed by the region's own key: the body hash matches, only the disclosure lies.
    report = _checks(cluster, resign(disclosures, trailer, cluster.beijing.signer_key))
    assert report["counts"] == {**CLEAN_COUNTS, "verified": 4, "tampered": 1}
    tampered = next(i for i in report["items"] if i["outcome"] == "tampered")
    assert (tampered["line"], tampered["failed_step"], tampered["step_name"]) == (5, 1, "record")
    assert report["package"]["body_hash_ok"] is True and report["clean"] is False


def _die(lines: list[tuple[int, bytes]]) -> None:
    os._exit(3)  # a worker killed mid-task (out of memory, a crash in C code)


def test_a_worker_crash_fails_the_check_instead_of_passing_it(
    cluster: Cluster, parallel: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exchange, "_CHUNK_TASK", _die)
    response = _check(cluster)
    assert response.status_code == 500, response.text
    assert response.json()["error"] == "verification_failed"
    with cluster.tianjin.client("auditor") as http:
        latest = http.get("/v1/integrity/reports", params={"limit": 1}).json()["reports"][0]
    assert latest["status"] == "failed" and latest["counts"]["verified"] == 0


def test_heads_read_in_one_multicall_are_those_of_one_eth_call_each(cluster: Cluster) -> None:
    services = cluster.tianjin.services
    disclosures, _ = split_package(cluster.beijing.export())
    keys = sorted(
        {(BEIJING, bytes.fromhex(d["receipt"]["leaf"]["record_key"])) for d in disclosures}
        | {(HEBEI, bytes(32)), (BEIJING, b"\x01" * 32)}
    )
    view = exchange._ChainView(
        rpc_url=services.settings.rpc_url,
        timeout=10.0,
        chain_id=services.chain.deployment.chain_id,
        anchor_address=services.chain.deployment.anchor,
        head_selector=services.chain.anchor.abi.encode_call("headOf", (0, bytes(32)))[:4],
        batches={},
        store=False,
    )
    rpc = exchange._RpcConnection(view.rpc_url, view.timeout)
    heads = exchange._multicall_heads(rpc, view, keys)
    assert heads == services.chain.heads_of(keys)
    assert any(head.version > 1 for head in heads)  # the corrected and the revoked record
