"""Crash safety of the anchoring pipeline with a real uvicorn process killed mid-flight.

The node runs as ``python -m uvicorn node_api.main:app`` configured by environment only.
It dies (``os._exit`` through CREDIT_LEDGER_TEST_CRASH_AT, or SIGKILL from outside) after
records were accepted: while sealing, after sealing, after sending, or at a random moment
under load. After a restart every accepted version must be anchored exactly once, and the
region's sequence numbers on chain must have no gaps or duplicates.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import ledger
from node_api.testing import (
    LocalConsortium,
    NodeProcess,
    WorkerProcess,
    node_environment,
    sample_record,
    start_local_consortium,
)

pytestmark = [pytest.mark.integration, pytest.mark.chain]

OPERATOR_KEY = "crash-operator-key-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {OPERATOR_KEY}"}
REGION = 110000


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    """A chain of its own for the crash tests."""
    chain = start_local_consortium(tmp_path_factory.mktemp("crash-chain"))
    yield chain
    chain.stop()


class Node(NodeProcess):
    """One uvicorn process of the region's node, configured through CREDIT_LEDGER_* variables,
    its log ``data_dir/node.log``."""

    def __init__(self, data_dir: Path, consortium: LocalConsortium, **settings: str) -> None:
        defaults = {
            "operator_keys": OPERATOR_KEY,
            "worker_poll_seconds": "0.1",
            "batch_max_age_seconds": "3600",
        }
        env = node_environment(consortium, data_dir, REGION, **{**defaults, **settings})
        super().__init__(env, data_dir / "node.log", headers=HEADERS, timeout=60, ready_timeout=60)

    def submit(self, records: list[dict[str, Any]]) -> list[str]:
        """Submit; the keys of the records, once the node answered 202."""
        response = self.http.post("/v1/records", json=records)
        assert response.status_code == 202, response.text
        return [r["record_key"] for r in response.json()["records"]]


def _assert_exactly_once(
    node: Node, consortium: LocalConsortium, first_seq: int, accepted: list[str]
) -> None:
    """Every accepted version anchored once; the region's seqs contiguous, each once on chain."""
    anchor = consortium.anchor()
    next_seq = anchor.next_seq(REGION)
    events = anchor.batches_anchored(REGION, from_seq=first_seq, to_seq=next_seq - 1)
    seqs = [e.seq for e in events]
    assert seqs == list(range(first_seq, next_seq)), "gaps or duplicates on chain"
    listed = node.http.get("/v1/batches", params={"limit": 1000}).json()["batches"]
    assert sorted(b["seq"] for b in listed) == seqs
    leaves: list[bytes] = []
    for event in events:
        batch = node.http.get(f"/v1/batches/{event.seq}", params={"leaves": "true"}).json()
        assert batch["state"] == "anchored" and batch["tx_hash"] == event.tx_hash
        assert (batch["root"], batch["size"]) == (event.root.hex(), event.size)
        hashes = [bytes.fromhex(h) for h in batch["leaves"]]
        assert ledger.merkle_root(hashes) == event.root
        leaves += hashes
    assert len(leaves) == len(set(leaves)), "a version is in two batches"
    reader = ledger.CachingAnchorReader(anchor)
    included: set[bytes] = set()
    for key in accepted:
        receipt = node.http.get(f"/v1/records/{key}/receipt", params={"version": 1}).json()
        verdict = ledger.verify_receipt(receipt, reader)
        assert verdict.status == ledger.VerdictStatus.VALID, verdict
        included.add(bytes.fromhex(verdict.leaf_hash or ""))
    assert included <= set(leaves)
    pending = node.http.get("/v1/health").json()["pipeline"]["pending_versions"]
    assert pending == 0
    # Nothing but accepted (or possibly accepted) versions was anchored.
    assert len(leaves) >= len(accepted)


@pytest.mark.parametrize("crash_at", ["during_seal", "after_seal", "after_send"])
def test_restart_after_a_crash_point_anchors_every_accepted_record_exactly_once(
    crash_at: str, tmp_path: Path, consortium: LocalConsortium
) -> None:
    first_seq = consortium.anchor().next_seq(REGION)
    # Sealing happens only on POST /v1/anchor here, so the crash comes after every 202.
    node = Node(tmp_path, consortium, worker_mode="off", batch_size="50", test_crash_at=crash_at)
    accepted = node.submit([sample_record() for _ in range(60)])
    accepted += node.submit([sample_record() for _ in range(60)])
    with pytest.raises(httpx.TransportError):
        node.http.post("/v1/anchor")
    assert node.wait_exit() == 137
    node.stop()
    chain_after_crash = consortium.anchor().next_seq(REGION)
    assert chain_after_crash == first_seq + (1 if crash_at == "after_send" else 0)

    restarted = Node(tmp_path, consortium, worker_mode="inprocess", batch_size="50")
    try:
        restarted.http.post("/v1/anchor")  # the remainder; the sealed batch was reconciled at start
        restarted.wait_anchored(60)
        _assert_exactly_once(restarted, consortium, first_seq, accepted)
        sizes = [b["size"] for b in restarted.http.get("/v1/batches").json()["batches"]]
        assert sorted(sizes) == [20, 50, 50]
    finally:
        restarted.stop()


def test_sigkill_at_a_random_moment_under_load_loses_nothing(
    tmp_path: Path, consortium: LocalConsortium
) -> None:
    first_seq = consortium.anchor().next_seq(REGION)
    node = Node(
        tmp_path, consortium, worker_mode="inprocess", batch_size="25", batch_max_age_seconds="0.2"
    )
    accepted: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                accepted.extend(node.submit([sample_record() for _ in range(15)]))
            except (httpx.TransportError, AssertionError):
                return  # the node died under this request: its records are "maybe accepted"

    submitter = threading.Thread(target=load)
    submitter.start()
    time.sleep(random.uniform(1.0, 2.5))
    node.kill()
    stop.set()
    submitter.join()
    node.stop()
    assert accepted, "nothing was accepted before the kill"

    restarted = Node(
        tmp_path, consortium, worker_mode="inprocess", batch_size="25", batch_max_age_seconds="0.2"
    )
    try:
        restarted.wait_anchored(60)
        _assert_exactly_once(restarted, consortium, first_seq, accepted)
    finally:
        restarted.stop()


def test_external_worker_process_anchors_what_the_api_process_accepts(
    tmp_path: Path, consortium: LocalConsortium
) -> None:
    api = Node(tmp_path, consortium, worker_mode="external")
    env = node_environment(
        consortium, tmp_path, REGION, worker_poll_seconds="0.1", batch_max_age_seconds="3600"
    )
    worker = WorkerProcess(tmp_path, env)
    try:
        first_seq = consortium.anchor().next_seq(REGION)
        deadline = time.monotonic() + 60
        while api.http.get("/v1/health").json()["worker"]["lease_owner"] is None:
            assert time.monotonic() < deadline and worker.process.poll() is None, worker.tail()
            time.sleep(0.1)
        accepted = api.submit([sample_record() for _ in range(30)])
        answer = api.http.post("/v1/anchor").json()
        assert answer["requested"] is True and answer["lease_owner"].split(":")[1] == str(
            worker.pid
        )
        api.wait_anchored(60)
        _assert_exactly_once(api, consortium, first_seq, accepted)
    finally:
        assert worker.stop() == 0
        api.stop()
