"""Two costs the other sections do not show: gas per correction (a PUT making version 2, then
its anchoring with the head update) and the time to seal one large batch."""

from __future__ import annotations

import tempfile
import time
from typing import Any

import ledger
from bench.common import load, percentile
from bench.nodes import NodeProcess
from node_api.testing import sample_record


def _anchor_all(node: NodeProcess) -> int:
    """Seal and anchor whatever is pending now; the seq of the newest batch (-1 if none)."""
    with node.client() as http:
        http.post("/v1/anchor").raise_for_status()
        node.wait_anchored()
        newest = http.get("/v1/batches", params={"limit": 1}).json()["batches"]
    return int(newest[0]["seq"]) if newest else -1


def _batches_after(node: NodeProcess, seq: int) -> list[dict[str, Any]]:
    with node.client() as http:
        listed = http.get("/v1/batches", params={"limit": 1000}).json()["batches"]
    return [b for b in listed if b["seq"] > seq]


def _gas(batches: list[dict[str, Any]], expected_size: int, what: str) -> dict[str, Any]:
    size = sum(b["size"] for b in batches)
    # Anything else in these batches would blur the figure: the suite runs one thing at a time.
    assert size == expected_size, f"{what}: batches hold {size} versions, not {expected_size}"
    gas = sum(b["gas_used"] for b in batches)
    return {"batches": len(batches), "gas": gas, "gas_per_version": gas / size}


def correction_gas(node: NodeProcess, count: int) -> dict[str, Any]:
    """Gas per correction next to gas per new record, at the same batch size on one node.

    ``count`` new records are anchored in their own batch, then each is corrected by a PUT
    (version 2) and the corrections are anchored in a batch of their own: the difference per
    version is the record head update (``max_heads_per_batch``, 256 by default, caps the
    corrections in one batch, so 256 is the batch of corrections a node really sends).
    """
    load_before = load()
    region = node.region
    records = [sample_record(region) for _ in range(count)]
    before = _anchor_all(node)
    with node.client() as http:
        answer = http.post("/v1/records", json=records)
        answer.raise_for_status()
        keys = [r["record_key"] for r in answer.json()["records"]]
    created = _anchor_all(node)
    new_records = _gas(_batches_after(node, before), count, "new records")
    put_seconds = []
    with node.client() as http:
        for record, key in zip(records, keys, strict=True):
            corrected = dict(record, data={**record["data"], "listed_on": "2024-07-31"})
            started = time.perf_counter()
            response = http.put(f"/v1/records/{key}", json=corrected)
            put_seconds.append(time.perf_counter() - started)
            response.raise_for_status()
            assert response.json()["version"] == 2, response.text
    _anchor_all(node)
    corrections = _gas(_batches_after(node, created), count, "corrections")
    return {
        "corrections": count,
        "batches": corrections["batches"],
        "gas": corrections["gas"],
        "gas_per_correction": corrections["gas_per_version"],
        "gas_per_new_record": new_records["gas_per_version"],
        "head_update_gas": corrections["gas_per_version"] - new_records["gas_per_version"],
        "put_p50_ms": percentile(put_seconds, 0.5) * 1000,
        "put_p99_ms": percentile(put_seconds, 0.99) * 1000,
        "load_before": load_before,
    }


def seal_time(versions: int) -> dict[str, Any]:
    """Seal one batch of ``versions`` pending versions on a fresh SQLite database, in process.

    The time covers what the worker's write transaction does before any transaction is sent:
    pick the versions, assign batch and leaf index, compute the root, store the batch, commit.
    The tree alone (``ledger.merkle_root`` of the same leaves) is timed apart for comparison.
    """
    from node_api.batches import load_leaf_hashes, seal_batch
    from node_api.db import COMPONENTS, Database, migrate
    from node_api.intake import prepare_records, submit_records

    region = 110000
    load_before = load()
    with tempfile.TemporaryDirectory(prefix="bench-seal-") as tmp:
        db = Database(f"sqlite:///{tmp}/seal.db")
        try:
            migrate(db, COMPONENTS)
            for start in range(0, versions, 10_000):
                chunk = [sample_record(region) for _ in range(min(10_000, versions - start))]
                submit_records(db, b"s" * 32, prepare_records(chunk, region))
            started = time.perf_counter()
            with db.write() as conn:
                batch = seal_batch(conn, region, 0, versions, time.time())
            seconds = time.perf_counter() - started
            with db.read() as conn:
                leaves = load_leaf_hashes(conn, 0)
        finally:
            db.dispose()
    assert batch is not None and batch.size == versions, batch
    started = time.perf_counter()
    assert ledger.merkle_root(leaves) == batch.root
    tree_seconds = time.perf_counter() - started
    return {
        "versions": versions,
        "seconds": seconds,
        "versions_per_second": versions / seconds,
        "tree_seconds": tree_seconds,
        "load_before": load_before,
    }
