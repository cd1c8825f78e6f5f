"""GET /v1/exchange/export and POST /v1/exchange/import: packages, verification, endorsement."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from exchange_env import (
    BEIJING,
    HEBEI,
    TIANJIN,
    UNREGISTERED_KEY,
    Cluster,
    RegionNode,
    flip_hex,
    join_package,
    resign,
    run_cluster,
    split_package,
)
from node_harness import OPERATOR, Node
from sqlalchemy import func, inspect, select

import ledger
from node_api.db import COMPONENTS, CORE, Database, migrate
from node_api.db.exchange_schema import EXCHANGE, foreign_disclosures
from node_api.exchange import ExchangeManifest, recover_manifest_signer
from node_api.testing import sample_record

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


def _report(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _stored_rows(node: RegionNode, region: int) -> int:
    with node.services.db.read() as conn:
        count = conn.execute(
            select(func.count())
            .select_from(foreign_disclosures)
            .where(foreign_disclosures.c.region == region)
        ).scalar_one()
    return int(count)


def _not_verified(report: dict[str, Any]) -> dict[tuple[int, int], dict[str, Any]]:
    return {(i["seq"], i["index"]): i for i in report["items"]}


# --------------------------------------------------------------------------- export


def test_export_is_a_signed_package_of_every_leaf_of_the_anchored_batches(
    cluster: Cluster,
) -> None:
    package = cluster.beijing.export()
    disclosures, trailer = split_package(package)
    manifest = trailer["manifest"]
    assert (manifest["region"], manifest["from_seq"], manifest["to_seq"]) == (BEIJING, 0, 1)
    assert [(b["seq"], b["size"]) for b in manifest["batches"]] == [(0, 5), (1, 2)]
    assert manifest["disclosures"] == len(disclosures) == 7
    body = package[: package.rindex(b"\n", 0, len(package) - 1) + 1]
    assert hashlib.sha256(body).hexdigest() == manifest["body_sha256"]
    deployment = cluster.chain.deployment
    signer = recover_manifest_signer(
        ExchangeManifest.from_json(manifest),
        trailer["signature"],
        deployment.chain_id,
        deployment.anchor,
    )
    assert signer == trailer["signer"] == Account.from_key(cluster.beijing.signer_key).address
    anchor = cluster.chain.anchor()
    for batch in manifest["batches"]:
        onchain = anchor.batch_of(BEIJING, batch["seq"])
        assert (onchain.root.hex(), onchain.size) == (batch["root"], batch["size"])
    assert [(d["receipt"]["batch"]["seq"], d["receipt"]["leaf"]["index"]) for d in disclosures] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (0, 3),
        (0, 4),
        (1, 0),
        (1, 1),
    ]
    for line, disclosure in zip(body.splitlines(keepends=True), disclosures, strict=True):
        assert line == ledger.canonicalize(disclosure) + b"\n"
        assert ledger.verify_disclosure(disclosure).status is ledger.VerdictStatus.VALID_OFFLINE


def test_export_range_is_clipped_to_the_anchored_batches(cluster: Cluster) -> None:
    second, trailer = split_package(cluster.beijing.export(from_seq=1))
    assert (trailer["manifest"]["from_seq"], trailer["manifest"]["to_seq"]) == (1, 1)
    assert len(second) == 2
    first, trailer = split_package(cluster.beijing.export(to_seq=0))
    assert (trailer["manifest"]["to_seq"], len(first)) == (0, 5)
    _, trailer = split_package(cluster.beijing.export(from_seq=0, to_seq=99))
    assert trailer["manifest"]["to_seq"] == 1
    with cluster.beijing.client() as http:
        beyond = http.get("/v1/exchange/export", params={"from_seq": 2})
        assert beyond.status_code == 404 and beyond.json()["error"] == "not_found"
        backwards = http.get("/v1/exchange/export", params={"from_seq": 1, "to_seq": 0})
        assert backwards.status_code == 400
        assert http.get("/v1/exchange/export", params={"from_seq": -1}).status_code == 422


def test_export_is_for_operators_and_member_nodes_only(cluster: Cluster) -> None:
    beijing, tianjin = cluster.beijing, cluster.tianjin
    for role in ("verifier", "auditor"):
        with beijing.client(role) as http:
            assert http.get("/v1/exchange/export").status_code == 403
    assert httpx.get(f"{beijing.url}/v1/exchange/export").status_code == 401
    with beijing.member_client(tianjin, purpose="nightly exchange") as http:
        response = http.get("/v1/exchange/export")
    assert response.status_code == 200
    assert split_package(response.content)[1]["manifest"]["region"] == BEIJING
    with beijing.member_client(tianjin, purpose=None) as http:
        assert http.get("/v1/exchange/export").status_code == 400  # no stated purpose
    with beijing.client("auditor") as http:
        log = http.get("/v1/access-log").json()["entries"]
    exports = [e for e in log if e["action"] == "exchange_export"]
    assert exports and exports[0]["role"] == f"member:{TIANJIN}"
    assert exports[0]["purpose"] == "nightly exchange"


# --------------------------------------------------------------------------- import


def test_import_verifies_every_disclosure_and_stores_the_report(cluster: Cluster) -> None:
    tianjin = cluster.tianjin
    report = _report(tianjin.import_package(cluster.beijing.export()))
    assert report["kind"] == "import" and report["status"] == "completed"
    assert report["region"] == BEIJING and report["checked_by"] == TIANJIN
    assert report["counts"] == CLEAN_COUNTS
    assert report["clean"] is True and report["problems"] == []
    assert report["package"]["signature_ok"] and report["package"]["body_hash_ok"]
    assert (report["disclosures"], report["leaves"]) == (7, 7)
    assert [(b["seq"], b["fully_verified"], b["endorsement"]) for b in report["batches"]] == [
        (0, True, None),
        (1, True, None),
    ]
    items = _not_verified(report)
    listing, penalty = items[(0, 0)], items[(0, 2)]
    assert listing["outcome"] == "revoked" and listing["record_key"] == cluster.seed.listing
    assert (listing["head_version"], listing["head_status"]) == (2, "revoked")
    assert penalty["outcome"] == "superseded" and penalty["record_key"] == cluster.seed.penalty
    assert len(items) == 2  # every other disclosure verified as current
    with tianjin.client() as http:
        stored = http.get(f"/v1/integrity/reports/{report['id']}")
    assert stored.status_code == 200 and stored.json() == report
    assert report["stored_disclosures"] == 7 and _stored_rows(tianjin, BEIJING) == 7
    again = _report(tianjin.import_package(cluster.beijing.export()))
    assert again["id"] != report["id"] and _stored_rows(tianjin, BEIJING) == 7


def test_import_without_store_keeps_no_payloads(cluster: Cluster) -> None:
    report = _report(cluster.hebei.import_package(cluster.tianjin.export(), store=False))
    assert report["counts"]["verified"] == 2 and report["stored_disclosures"] == 0
    assert _stored_rows(cluster.hebei, TIANJIN) == 0


def test_import_with_endorse_endorses_fully_verified_batches_once(cluster: Cluster) -> None:
    package = cluster.beijing.export()
    report = _report(cluster.tianjin.import_package(package, endorse=True))
    assert report["endorsed"] == 2
    assert [b["endorsement"]["status"] for b in report["batches"]] == ["endorsed", "endorsed"]
    assert cluster.endorsers(BEIJING, 0) == [TIANJIN] == cluster.endorsers(BEIJING, 1)
    again = _report(cluster.tianjin.import_package(package, endorse=True))
    assert again["endorsed"] == 0
    assert [b["endorsement"]["status"] for b in again["batches"]] == ["already_endorsed"] * 2
    assert cluster.endorsers(BEIJING, 0) == [TIANJIN]


def _tamper(disclosure: dict[str, Any], variant: str) -> None:
    receipt = disclosure["receipt"]
    if variant == "payload":
        disclosure["record"]["issued_by"] += "（已修改）"
    elif variant == "salt":
        disclosure["salt"] = flip_hex(disclosure["salt"])
    elif variant == "proof":
        receipt["proof"][0] = flip_hex(receipt["proof"][0])
    elif variant == "root":
        receipt["batch"]["root"] = flip_hex(receipt["batch"]["root"])
    else:
        raise AssertionError(variant)


@pytest.mark.parametrize(
    ("variant", "step"), [("payload", 1), ("salt", 1), ("proof", 2), ("root", 2)]
)
def test_a_disclosure_tampered_in_transit_is_reported_and_nothing_is_endorsed(
    cluster: Cluster, variant: str, step: int
) -> None:
    disclosures, trailer = split_package(cluster.beijing.export())
    _tamper(disclosures[1], variant)  # the serious violation, leaf 1 of batch 0
    response = cluster.hebei.import_package(join_package(disclosures, trailer), endorse=True)
    report = _report(response)
    assert report["counts"] == {**CLEAN_COUNTS, "verified": 4, "tampered": 1}
    tampered = _not_verified(report)[(0, 1)]
    assert tampered["outcome"] == "tampered" and tampered["failed_step"] == step
    assert tampered["record_key"] == cluster.seed.violation and tampered["version"] == 1
    assert tampered["reason"]
    assert report["package"]["body_hash_ok"] is False and report["clean"] is False
    assert any("body hash" in p for p in report["problems"])
    assert report["endorsed"] == 0
    assert [b["endorsement"]["status"] for b in report["batches"]] == ["not_eligible"] * 2
    assert HEBEI not in cluster.endorsers(BEIJING, 0)


def test_a_tampered_leaf_blocks_only_its_own_batch_when_the_exporter_signed_it(
    cluster: Cluster,
) -> None:
    disclosures, trailer = split_package(cluster.beijing.export())
    _tamper(disclosures[3], "payload")
    package = resign(disclosures, trailer, cluster.beijing.signer_key)
    report = _report(cluster.hebei.import_package(package, endorse=True, store=False))
    assert report["package"]["body_hash_ok"] is True and report["problems"] == []
    assert report["counts"]["tampered"] == 1 and _not_verified(report)[(0, 3)]["failed_step"] == 1
    assert [b["endorsement"]["status"] for b in report["batches"]] == ["not_eligible", "endorsed"]
    assert HEBEI not in cluster.endorsers(BEIJING, 0)
    assert HEBEI in cluster.endorsers(BEIJING, 1)


def test_an_omitted_disclosure_is_missing_and_a_duplicate_is_tampered(cluster: Cluster) -> None:
    disclosures, trailer = split_package(cluster.beijing.export())
    key = cluster.beijing.signer_key
    omitted = [d for i, d in enumerate(disclosures) if i != 3]
    report = _report(cluster.tianjin.import_package(resign(omitted, trailer, key), store=False))
    assert report["counts"] == {**CLEAN_COUNTS, "verified": 4, "missing": 1}
    missing = _not_verified(report)[(0, 3)]
    assert missing["outcome"] == "missing" and missing["step_name"] == "package"
    assert report["batches"][0]["missing"] == 1 and not report["batches"][0]["fully_verified"]
    assert report["batches"][1]["fully_verified"] and not report["clean"]

    duplicated = [*disclosures, disclosures[4]]
    report = _report(cluster.tianjin.import_package(resign(duplicated, trailer, key), store=False))
    assert report["counts"] == {**CLEAN_COUNTS, "tampered": 1}
    duplicate = next(i for i in report["items"] if i["outcome"] == "tampered")
    assert (duplicate["seq"], duplicate["index"], duplicate["line"]) == (0, 4, 8)
    assert "second disclosure" in duplicate["reason"]


def test_a_disclosure_of_a_batch_the_chain_lacks_is_unanchored(cluster: Cluster) -> None:
    disclosures, trailer = split_package(cluster.beijing.export())
    moved = disclosures[4]
    moved["receipt"]["batch"]["seq"] = 7
    batches = [*trailer["manifest"]["batches"], {**trailer["manifest"]["batches"][0], "seq": 7}]
    package = resign(disclosures, trailer, cluster.beijing.signer_key, to_seq=7, batches=batches)
    report = _report(cluster.tianjin.import_package(package, store=False))
    assert report["counts"] == {**CLEAN_COUNTS, "verified": 4, "unanchored": 1, "missing": 1}
    unanchored = _not_verified(report)[(7, 4)]
    assert unanchored["outcome"] == "unanchored" and unanchored["failed_step"] == 3
    batch7 = next(b for b in report["batches"] if b["seq"] == 7)
    assert batch7["anchored"] is False and batch7["problems"] == ["not anchored on chain"]


def test_another_regions_disclosure_in_a_package_is_wrong_region(cluster: Cluster) -> None:
    beijing_disclosures, _ = split_package(cluster.beijing.export())
    disclosures, trailer = split_package(cluster.tianjin.export())
    package = resign([*disclosures, beijing_disclosures[1]], trailer, cluster.tianjin.signer_key)
    report = _report(cluster.hebei.import_package(package, store=False))
    assert report["region"] == TIANJIN
    assert report["counts"]["verified"] == 2 and report["counts"]["wrong_region"] == 1
    wrong = next(i for i in report["items"] if i["outcome"] == "wrong_region")
    assert wrong["record_key"] == cluster.seed.violation
    assert f"region {BEIJING} in a package of region {TIANJIN}" in wrong["reason"]


def test_a_manifest_root_that_differs_from_the_chain_is_a_batch_problem(cluster: Cluster) -> None:
    disclosures, trailer = split_package(cluster.beijing.export())
    batches = [dict(b) for b in trailer["manifest"]["batches"]]
    batches[1]["root"] = flip_hex(batches[1]["root"])
    package = resign(disclosures, trailer, cluster.beijing.signer_key, batches=batches)
    report = _report(cluster.tianjin.import_package(package, store=False))
    assert report["counts"] == CLEAN_COUNTS  # each disclosure is checked against the chain
    assert report["batches"][1]["matches_chain"] is False
    assert "differs from the chain" in report["batches"][1]["problems"][0]
    assert report["batches"][1]["fully_verified"] is False and report["clean"] is False


# --------------------------------------------------------------------------- rejection


def _rejected(node: RegionNode, package: bytes, match: str) -> dict[str, Any]:
    response = node.import_package(package)
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == "package_rejected" and match in body["message"], body
    assert body["report"]["status"] == "rejected"
    return body


def test_a_package_signed_by_an_unregistered_key_is_rejected(cluster: Cluster) -> None:
    disclosures, trailer = split_package(cluster.beijing.export())
    forged = resign(disclosures, trailer, UNREGISTERED_KEY)
    body = _rejected(cluster.tianjin, forged, f"is not a signer of active region {BEIJING}")
    assert body["signer"] == Account.from_key(UNREGISTERED_KEY).address
    with cluster.tianjin.client("auditor") as http:
        listed = http.get("/v1/integrity/reports", params={"kind": "import"}).json()["reports"]
    assert listed[0]["id"] == body["report"]["id"] and listed[0]["status"] == "rejected"


def test_a_package_signed_by_another_regions_signer_is_rejected(cluster: Cluster) -> None:
    disclosures, trailer = split_package(cluster.beijing.export())
    forged = resign(disclosures, trailer, cluster.hebei.signer_key)
    _rejected(cluster.tianjin, forged, f"is not a signer of active region {BEIJING}")


def test_an_altered_manifest_is_rejected(cluster: Cluster) -> None:
    disclosures, trailer = split_package(cluster.beijing.export())
    trailer["manifest"]["batches"][0]["root"] = flip_hex(trailer["manifest"]["batches"][0]["root"])
    _rejected(cluster.tianjin, join_package(disclosures, trailer), "does not recover")


def test_a_package_for_another_deployment_is_rejected(cluster: Cluster) -> None:
    disclosures, trailer = split_package(cluster.beijing.export())
    domain = {**trailer["domain"], "chainId": 1}
    forged = resign(disclosures, trailer, cluster.beijing.signer_key, domain=domain)
    _rejected(cluster.tianjin, forged, "another EIP-712 domain")


@pytest.mark.parametrize(
    ("package", "match"),
    [
        (b"", "empty"),
        (b'{"receipt": {}}\nnot json\n', "not a JSON trailer"),
        (b'{"manifest": {}}\n', "trailer.domain"),
    ],
)
def test_malformed_packages_are_rejected(cluster: Cluster, package: bytes, match: str) -> None:
    _rejected(cluster.tianjin, package, match)


def test_import_is_for_operators_only(cluster: Cluster) -> None:
    package = cluster.beijing.export()
    tianjin = cluster.tianjin
    for role in ("verifier", "auditor"):
        with tianjin.client(role) as http:
            assert http.post("/v1/exchange/import", content=package).status_code == 403
    with tianjin.member_client(cluster.beijing) as http:
        assert http.post("/v1/exchange/import", content=package).status_code == 403
    assert httpx.post(f"{tianjin.url}/v1/exchange/import", content=package).status_code == 401


# --------------------------------------------------------------------------- entity disclosures


def test_entity_disclosures_serve_members_and_auditors_with_salts(cluster: Cluster) -> None:
    beijing, uscc = cluster.beijing, cluster.seed.uscc
    with beijing.member_client(cluster.tianjin, purpose="federated history") as http:
        body = _report(http.get(f"/v1/exchange/entities/{uscc}"))
    assert body["region"] == BEIJING
    versions = sorted((i["record_key"], i["version"], i["status"]) for i in body["items"])
    seed = cluster.seed
    assert versions == sorted(
        [
            (seed.listing, 1, "active"),
            (seed.listing, 2, "revoked"),
            (seed.violation, 1, "active"),
            (seed.penalty, 1, "active"),
            (seed.penalty, 2, "active"),
        ]
    )
    for item in body["items"]:
        verdict = ledger.verify_disclosure(item["disclosure"])
        assert verdict.status is ledger.VerdictStatus.VALID_OFFLINE
    with beijing.client("verifier") as http:
        assert http.get(f"/v1/exchange/entities/{uscc}").status_code == 403
    with beijing.member_client(cluster.tianjin, purpose=None) as http:
        assert http.get(f"/v1/exchange/entities/{uscc}").status_code == 400


# --------------------------------------------------------------------------- a late database


def test_a_node_whose_database_starts_late_exports_from_its_first_batch(node: Node) -> None:
    """On the shared chain of the core tests a fresh database starts at the chain's nextSeq."""
    empty = node.client.get("/v1/exchange/export", headers=OPERATOR)
    assert empty.status_code == 404
    node.submit([sample_record(), sample_record()])
    seq = node.anchor()["anchored"][0]["seq"]
    response = node.client.get("/v1/exchange/export", headers=OPERATOR)
    assert response.status_code == 200, response.text
    disclosures, trailer = split_package(response.content)
    assert (trailer["manifest"]["from_seq"], trailer["manifest"]["to_seq"]) == (seq, seq)
    assert len(disclosures) == 2


def test_the_exchange_tables_are_a_migration_component_of_their_own(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'n.db'}")
    assert migrate(db, COMPONENTS, target={"exchange": 0}) == {"node": CORE.head, "exchange": 0}
    with db.read() as conn:
        assert "integrity_reports" not in inspect(conn).get_table_names()
    assert migrate(db, COMPONENTS) == {"node": CORE.head, "exchange": EXCHANGE.head}
    with db.read() as conn:
        tables = set(inspect(conn).get_table_names())
    assert {"integrity_reports", "foreign_disclosures"} <= tables
    db.dispose()
