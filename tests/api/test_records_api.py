"""POST/PUT /v1/records, revoke and GET /v1/records/{key}: intake rules and reads."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from node_harness import AUDITOR, OPERATOR, VERIFIER, Node
from sqlalchemy import func, select

import ledger
from node_api.config import Settings
from node_api.db.tables import access_log, record_versions, records
from node_api.intake import PreparedRecord, prepare_records, submit_records
from node_api.testing import sample_record, sample_uscc


def _count_versions(node: Node) -> int:
    with node.services.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(record_versions)).scalar_one())


def test_accepts_one_record_and_returns_queued_version(node: Node) -> None:
    record = sample_record()
    body = node.submit(record)
    (item,) = body["records"]
    expected_key = ledger.record_key(
        110000, record["uscc"], record["record_type"], record["record_id"]
    )
    assert item == {
        "index": 0,
        "record_key": expected_key.hex(),
        "version": 1,
        "status": "active",
        "state": "queued",
        "created": True,
    }
    assert (body["accepted"], body["created"], body["unchanged"]) == (1, 1, 0)


def test_bulk_of_ten_thousand_records_is_one_transaction(node: Node) -> None:
    batch = [sample_record() for _ in range(10_000)]
    body = node.submit(batch)
    assert body["created"] == 10_000
    assert [r["index"] for r in body["records"]] == list(range(10_000))
    assert _count_versions(node) == 10_000


def test_one_invalid_record_rejects_the_whole_request_naming_index_field_and_reason(
    node: Node,
) -> None:
    batch = [sample_record() for _ in range(5)]
    # Lower-casing a USCC whose check character is a digit changes nothing (order-dependent).
    batch[3]["uscc"] = batch[3]["uscc"][:17] + "a"
    batch[4]["data"]["listed_on"] = "2024-13-01"
    response = node.client.post("/v1/records", json=batch, headers=OPERATOR)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_record"
    assert (body["index"], body["field"]) == (3, "uscc")
    assert "lower case" in body["reason"]
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (3, "uscc"),
        (4, "data.listed_on"),
    ]
    assert _count_versions(node) == 0


def test_rejects_floats_unknown_fields_and_other_regions(node: Node) -> None:
    cases = [
        (dict(sample_record(), extra=1), "extra"),
        (sample_record(record_type="administrative_penalty", amount_fen=1.5), "data.amount_fen"),
        (sample_record(region=120000), "region"),
    ]
    for record, field in cases:
        response = node.client.post("/v1/records", json=record, headers=OPERATOR)
        assert response.status_code == 422, record
        assert response.json()["field"].startswith(field), response.json()
    assert _count_versions(node) == 0


def test_resubmitting_identical_content_is_a_no_op_returning_the_existing_version(
    node: Node,
) -> None:
    record = sample_record()
    first = node.submit(record)["records"][0]
    again = node.submit([record, sample_record()])
    assert again["records"][0] == {**first, "created": False}
    assert (again["created"], again["unchanged"]) == (1, 1)
    node.anchor()
    third = node.submit(record)["records"][0]
    assert (third["version"], third["state"], third["created"]) == (1, "anchored", False)
    assert _count_versions(node) == 2


def test_changed_content_for_an_existing_key_is_a_conflict_and_stores_nothing(node: Node) -> None:
    record = sample_record()
    node.submit(record)
    changed = copy.deepcopy(record)
    changed["data"]["listing_authority"] = "天津市市场监督管理局"
    response = node.client.post("/v1/records", json=[sample_record(), changed], headers=OPERATOR)
    assert response.status_code == 409
    body = response.json()
    assert body["index"] == 1 and body["version"] == 1
    assert "PUT" in body["message"]
    assert _count_versions(node) == 1


def test_same_key_twice_in_one_request(node: Node) -> None:
    record = sample_record()
    twice = node.submit([record, record])
    assert [r["created"] for r in twice["records"]] == [True, False]
    changed = copy.deepcopy(record)
    changed["record_id"] = record["record_id"]
    changed["data"]["listed_on"] = "2024-07-02"
    other = sample_record()
    response = node.client.post("/v1/records", json=[other, other | {}, changed], headers=OPERATOR)
    assert response.status_code == 409
    assert _count_versions(node) == 1


def test_request_limits_and_malformed_bodies(
    make_settings: Callable[..., Settings], start_node: Callable[[Settings], Node]
) -> None:
    node = start_node(make_settings(max_records_per_request=3))
    response = node.client.post(
        "/v1/records", json=[sample_record() for _ in range(4)], headers=OPERATOR
    )
    assert response.status_code == 413
    as_json = OPERATOR | {"Content-Type": "application/json"}
    for content in (b"{not json", b"42", b"[]"):
        response = node.client.post("/v1/records", content=content, headers=as_json)
        assert response.status_code == 400, content
    assert _count_versions(node) == 0


def test_correction_creates_a_new_active_version_chained_to_the_previous(node: Node) -> None:
    record = sample_record()
    key = node.submit(record)["records"][0]["record_key"]
    corrected = copy.deepcopy(record)
    corrected["data"]["listed_on"] = "2024-07-02"
    response = node.client.put(f"/v1/records/{key}", json=corrected, headers=OPERATOR)
    assert response.status_code == 202
    assert response.json() == {
        "record_key": key,
        "version": 2,
        "status": "active",
        "state": "queued",
        "created": True,
    }
    same = node.client.put(f"/v1/records/{key}", json=corrected, headers=OPERATOR)
    assert (same.json()["version"], same.json()["created"]) == (2, False)
    versions = node.client.get(f"/v1/records/{key}", headers=OPERATOR).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["prev_leaf"] == versions[0]["leaf_hash"]
    assert versions[0]["prev_leaf"] == "00" * 32
    assert versions[1]["record"] == corrected


def test_correction_must_keep_the_record_identity(node: Node) -> None:
    record = sample_record()
    key = node.submit(record)["records"][0]["record_key"]
    moved = dict(record, record_id="ANOTHER-DOC")
    response = node.client.put(f"/v1/records/{key}", json=moved, headers=OPERATOR)
    assert response.status_code == 422
    assert response.json()["field"] == "record_key"
    unknown = sample_record()
    unknown_key = ledger.record_key(
        110000, unknown["uscc"], unknown["record_type"], unknown["record_id"]
    )
    response = node.client.put(f"/v1/records/{unknown_key.hex()}", json=unknown, headers=OPERATOR)
    assert response.status_code == 404
    response = node.client.put("/v1/records/XYZ", json=record, headers=OPERATOR)
    assert response.status_code == 422 and response.json()["field"] == "record_key"


def test_revocation_keeps_the_payload_stores_the_reason_and_is_idempotent(node: Node) -> None:
    record = sample_record()
    key = node.submit(record)["records"][0]["record_key"]
    response = node.client.post(
        f"/v1/records/{key}/revoke", json={"reason": "信用修复"}, headers=OPERATOR
    )
    assert response.status_code == 202
    assert response.json()["version"] == 2 and response.json()["status"] == "revoked"
    again = node.client.post(
        f"/v1/records/{key}/revoke", json={"reason": "again"}, headers=OPERATOR
    )
    assert (again.json()["version"], again.json()["created"]) == (2, False)
    body = node.client.get(f"/v1/records/{key}", headers=OPERATOR).json()
    assert body["status"] == "revoked"
    revoked = body["versions"][1]
    assert revoked["record"] == record and revoked["reason"] == "信用修复"
    assert revoked["commitment"] != body["versions"][0]["commitment"]  # a fresh salt per version
    empty = node.client.post(f"/v1/records/{key}/revoke", json={"reason": ""}, headers=OPERATOR)
    assert empty.status_code == 422


def test_a_revoked_record_can_be_reinstated_by_a_correction(node: Node) -> None:
    record = sample_record()
    key = node.submit(record)["records"][0]["record_key"]
    node.client.post(f"/v1/records/{key}/revoke", json={"reason": "lifted"}, headers=OPERATOR)
    response = node.client.put(f"/v1/records/{key}", json=record, headers=OPERATOR)
    assert (response.json()["version"], response.json()["status"]) == (3, "active")


def test_reads_by_auditors_are_logged_with_purpose_and_verifiers_get_403(node: Node) -> None:
    record = sample_record()
    key = node.submit(record)["records"][0]["record_key"]
    assert node.client.get(f"/v1/records/{key}", headers=VERIFIER).status_code == 403
    no_purpose = {"Authorization": AUDITOR["Authorization"]}
    response = node.client.get(f"/v1/records/{key}", headers=no_purpose)
    assert response.status_code == 400 and "X-Purpose" in response.json()["message"]
    response = node.client.get(f"/v1/records/{key}", headers=AUDITOR)
    assert response.status_code == 200
    assert response.json()["versions"][0]["record"] == record
    node.client.get(f"/v1/records/{key}", headers=OPERATOR)  # operators are not logged
    with node.services.db.read() as conn:
        rows = conn.execute(select(access_log)).all()
    assert [(r.role, r.action, bytes(r.record_key).hex(), r.uscc, r.purpose) for r in rows] == [
        ("auditor", "read_record", key, record["uscc"], "annual audit")
    ]
    log = node.client.get("/v1/access-log", headers=AUDITOR).json()["entries"]
    assert log[0]["record_key"] == key and log[0]["principal"].startswith("auditor:")


def test_unknown_record_is_404(node: Node) -> None:
    response = node.client.get(f"/v1/records/{'ab' * 32}", headers=OPERATOR)
    assert response.status_code == 404


def test_records_of_an_entity_are_indexed_by_uscc(node: Node) -> None:
    uscc = sample_uscc()
    node.submit(
        [sample_record(uscc=uscc), sample_record(uscc=uscc, record_type="serious_violation")]
    )
    with node.services.db.read() as conn:
        count = conn.execute(select(func.count()).where(records.c.uscc == uscc)).scalar_one()
    assert count == 2


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_concurrent_submissions_number_every_record_once(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    start_node: Callable[[Settings], Node],
) -> None:
    # Record numbers key the versions (schema v4): four writers at once must never draw the
    # same one (SQLite: the write lock; PostgreSQL: a sequence).
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'node.db'}"
    else:
        url = request.getfixturevalue("pg_schema_url")()
    node = start_node(make_settings(database_url=url))
    services = node.services
    bodies = [prepare_records([sample_record() for _ in range(50)], 110000) for _ in range(8)]
    start = threading.Barrier(4)

    def submit(mine: list[list[PreparedRecord]]) -> None:
        start.wait()
        for prepared in mine:
            submit_records(services.db, services.node_secret, prepared)

    threads = [threading.Thread(target=submit, args=(bodies[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with services.db.read() as conn:
        numbered = dict(conn.execute(select(records.c.record_key, records.c.rec_no)).all())
        versions = conn.execute(
            select(record_versions.c.record_key, record_versions.c.rec_no)
        ).all()
    assert len(numbered) == 400 and len(set(numbered.values())) == 400
    assert sorted((bytes(k), n) for k, n in versions) == sorted(
        (bytes(k), n) for k, n in numbered.items()
    )
    key = bodies[5][7].record_key.hex()
    body = node.client.get(f"/v1/records/{key}", headers=OPERATOR).json()
    assert body["versions"][0]["version"] == 1
