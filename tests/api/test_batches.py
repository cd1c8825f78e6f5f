"""GET /v1/batches, GET /v1/batches/{seq} and POST /v1/anchor."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from node_harness import OPERATOR, VERIFIER, Node

import ledger
from node_api.batches import manifest_hash
from node_api.config import Settings
from node_api.db.tables import record_versions, records
from node_api.testing import LocalConsortium, sample_record


def test_anchor_with_nothing_pending_does_nothing(node: Node) -> None:
    assert node.anchor() == {"requested": False, "sealed": [], "anchored": []}


def test_batches_are_listed_newest_first_with_manifest_and_leaves(
    node: Node, consortium: LocalConsortium
) -> None:
    first_seq = consortium.anchor().next_seq(110000)
    keys = [r["record_key"] for r in node.submit([sample_record() for _ in range(3)])["records"]]
    result = node.anchor()
    assert result["sealed"] == [first_seq]
    (anchored,) = result["anchored"]
    assert anchored["seq"] == first_seq and anchored["size"] == 3 and anchored["gas_used"] > 0
    node.submit(sample_record())
    node.anchor()
    listing = node.client.get("/v1/batches", headers=VERIFIER).json()
    assert [b["seq"] for b in listing["batches"]] == [first_seq + 1, first_seq]
    assert listing["next_before_seq"] is None
    page = node.client.get("/v1/batches", params={"limit": 1}, headers=VERIFIER).json()
    assert page["next_before_seq"] == first_seq + 1
    rest = node.client.get(
        "/v1/batches", params={"before_seq": first_seq + 1}, headers=VERIFIER
    ).json()
    assert [b["seq"] for b in rest["batches"]] == [first_seq]

    batch = node.client.get(f"/v1/batches/{first_seq}?leaves=true", headers=VERIFIER).json()
    assert batch["state"] == "anchored" and batch["tx_hash"] == anchored["tx_hash"]
    leaves = [bytes.fromhex(h) for h in batch["leaves"]]
    assert ledger.merkle_root(leaves).hex() == batch["root"]
    manifest = batch["manifest"]
    assert manifest["leaves_digest"] == hashlib.sha256(b"".join(leaves)).hexdigest()
    assert manifest_hash(manifest).hex() == batch["manifest_hash"]
    receipts = [node.receipt(k) for k in keys]
    assert sorted(r["leaf"]["index"] for r in receipts) == [0, 1, 2]
    onchain = consortium.anchor().batch_of(110000, first_seq)
    assert (onchain.root.hex(), onchain.manifest_hash.hex()) == (
        batch["root"],
        batch["manifest_hash"],
    )


def test_unknown_batch_is_404_and_bad_filters_422(node: Node) -> None:
    assert node.client.get("/v1/batches/999999", headers=VERIFIER).status_code == 404
    assert node.client.get("/v1/batches?state=lost", headers=VERIFIER).status_code == 422


def test_anchor_splits_pending_versions_into_batches_of_batch_size(
    make_settings: Callable[..., Settings], start_node: Callable[[Settings], Node]
) -> None:
    node = start_node(make_settings(batch_size=4))
    node.submit([sample_record() for _ in range(10)])
    result = node.anchor()
    assert [b["size"] for b in result["anchored"]] == [4, 4, 2]
    seqs = [b["seq"] for b in result["anchored"]]
    assert seqs == list(range(seqs[0], seqs[0] + 3)) and result["sealed"] == seqs
    assert node.client.get("/v1/batches", headers=OPERATOR).json()["batches"][0]["seq"] == seqs[-1]


def test_a_batch_carries_at_most_max_heads_per_batch_corrections(
    make_settings: Callable[..., Settings],
    start_node: Callable[[Settings], Node],
    consortium: LocalConsortium,
) -> None:
    node = start_node(make_settings(max_heads_per_batch=2))
    records = [sample_record() for _ in range(5)]
    keys = [r["record_key"] for r in node.submit(records)["records"]]
    node.anchor()
    for record, key in zip(records, keys, strict=True):
        corrected = dict(record, data={**record["data"], "listed_on": "2024-07-06"})
        response = node.client.put(f"/v1/records/{key}", json=corrected, headers=OPERATOR)
        assert response.status_code == 202
    node.submit(sample_record())
    result = node.anchor()
    assert [b["size"] for b in result["anchored"]] == [2, 2, 2]
    moves = consortium.anchor().heads_moved(110000)
    per_batch = {b["seq"]: sum(1 for m in moves if m.seq == b["seq"]) for b in result["anchored"]}
    assert list(per_batch.values()) == [2, 2, 1]


def test_sealing_numbers_leaves_in_submission_order_with_or_without_id_gaps(node: Node) -> None:
    # SQLite seals a contiguous run of pending ids with one UPDATE, anything else row by row.
    keys = [r["record_key"] for r in node.submit([sample_record() for _ in range(6)])["records"]]
    gone = bytes.fromhex(keys[2])
    with node.services.db.write() as conn:  # a gap in the pending ids
        conn.execute(record_versions.delete().where(record_versions.c.record_key == gone))
        conn.execute(records.delete().where(records.c.record_key == gone))
    node.anchor()
    kept = keys[:2] + keys[3:]
    receipts = [node.receipt(k) for k in kept]
    assert [r["leaf"]["index"] for r in receipts] == [0, 1, 2, 3, 4]
    more = [r["record_key"] for r in node.submit([sample_record() for _ in range(3)])["records"]]
    node.anchor()
    receipts += [node.receipt(k) for k in more]
    assert [r["leaf"]["index"] for r in receipts[5:]] == [0, 1, 2]
    for receipt in receipts:
        response = node.client.post("/v1/verify", json=receipt, headers=VERIFIER)
        assert response.json()["status"] == "valid", response.text
