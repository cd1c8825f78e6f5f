"""Crash safety of the anchoring pipeline with a real uvicorn process killed mid-flight.

The node runs as ``python -m uvicorn node_api.main:app`` configured by environment only.
It dies (``os._exit`` through CREDIT_LEDGER_TEST_CRASH_AT, or SIGKILL from outside) after
records were accepted: while sealing, after sealing, after sending, or at a random moment
under load. After a restart every accepted version must be anchored exactly once, and the
region's sequence numbers on chain must have no gaps or duplicates.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import ledger
from ledger.chain.localnode import free_port
from node_api.testing import LocalConsortium, sample_record, start_local_consortium

pytestmark = [pytest.mark.integration, pytest.mark.chain]

REPO = Path(__file__).resolve().parents[2]
OPERATOR_KEY = "crash-operator-key-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {OPERATOR_KEY}"}
REGION = 110000


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    """A chain of its own for the crash tests."""
    chain = start_local_consortium(tmp_path_factory.mktemp("crash-chain"))
    yield chain
    chain.stop()


class NodeProcess:
    """One uvicorn process of a node, configured through CREDIT_LEDGER_* variables."""

    def __init__(self, data_dir: Path, consortium: LocalConsortium, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "node.log"
        variables = {
            key: value for key, value in os.environ.items() if not key.startswith("CREDIT_LEDGER_")
        }
        variables.update(
            {
                "PYTHONPATH": str(REPO),
                "CREDIT_LEDGER_RPC_URL": consortium.rpc_url,
                "CREDIT_LEDGER_DEPLOYMENT_FILE": str(consortium.deployment_file),
                "CREDIT_LEDGER_REGION": str(REGION),
                "CREDIT_LEDGER_DATA_DIR": str(data_dir),
                "CREDIT_LEDGER_SIGNER_KEY": consortium.signer_key(REGION),
                "CREDIT_LEDGER_OPERATOR_KEYS": OPERATOR_KEY,
                "CREDIT_LEDGER_WORKER_POLL_SECONDS": "0.1",
                "CREDIT_LEDGER_BATCH_MAX_AGE_SECONDS": "3600",
            }
        )
        variables.update({f"CREDIT_LEDGER_{k.upper()}": v for k, v in env.items()})
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "node_api.main:app", "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-level", "warning"],
                cwd=REPO,
                env=variables,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.http = httpx.Client(base_url=self.url, headers=HEADERS, timeout=60)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"node exited at start:\n{self.log.read_text()[-3000:]}")
            try:
                if self.http.get("/v1/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("node did not start")

    def submit(self, records: list[dict[str, Any]]) -> list[str]:
        """Submit; the keys of the records, once the node answered 202."""
        response = self.http.post("/v1/records", json=records)
        assert response.status_code == 202, response.text
        return [r["record_key"] for r in response.json()["records"]]

    def wait_exit(self, timeout: float = 60.0) -> int:
        """Wait for the process to die on its own (a crash point)."""
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL, as a power cut or the OOM killer would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        """Clean shutdown."""
        self.http.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def _wait_all_anchored(node: NodeProcess, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = node.http.get("/v1/health").json()
        pipeline = health["pipeline"]
        if pipeline["pending_versions"] == 0 and pipeline["anchoring_lag_seconds"] == 0:
            return health  # type: ignore[no-any-return]
        assert not health["worker"]["blocked"], health["worker"]
        time.sleep(0.1)
    raise AssertionError(f"not anchored in time: {node.http.get('/v1/health').json()}")


def _assert_exactly_once(
    node: NodeProcess, consortium: LocalConsortium, first_seq: int, accepted: list[str]
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
    node = NodeProcess(
        tmp_path, consortium, worker_mode="off", batch_size="50", test_crash_at=crash_at
    )
    accepted = node.submit([sample_record() for _ in range(60)])
    accepted += node.submit([sample_record() for _ in range(60)])
    with pytest.raises(httpx.TransportError):
        node.http.post("/v1/anchor")
    assert node.wait_exit() == 137
    node.stop()
    chain_after_crash = consortium.anchor().next_seq(REGION)
    assert chain_after_crash == first_seq + (1 if crash_at == "after_send" else 0)

    restarted = NodeProcess(tmp_path, consortium, worker_mode="inprocess", batch_size="50")
    try:
        restarted.http.post("/v1/anchor")  # the remainder; the sealed batch was reconciled at start
        _wait_all_anchored(restarted)
        _assert_exactly_once(restarted, consortium, first_seq, accepted)
        sizes = [b["size"] for b in restarted.http.get("/v1/batches").json()["batches"]]
        assert sorted(sizes) == [20, 50, 50]
    finally:
        restarted.stop()


def test_sigkill_at_a_random_moment_under_load_loses_nothing(
    tmp_path: Path, consortium: LocalConsortium
) -> None:
    first_seq = consortium.anchor().next_seq(REGION)
    node = NodeProcess(
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

    restarted = NodeProcess(
        tmp_path, consortium, worker_mode="inprocess", batch_size="25", batch_max_age_seconds="0.2"
    )
    try:
        _wait_all_anchored(restarted)
        _assert_exactly_once(restarted, consortium, first_seq, accepted)
    finally:
        restarted.stop()


def test_external_worker_process_anchors_what_the_api_process_accepts(
    tmp_path: Path, consortium: LocalConsortium
) -> None:
    api = NodeProcess(tmp_path, consortium, worker_mode="external")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_LEDGER_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "CREDIT_LEDGER_RPC_URL": consortium.rpc_url,
            "CREDIT_LEDGER_DEPLOYMENT_FILE": str(consortium.deployment_file),
            "CREDIT_LEDGER_DATA_DIR": str(tmp_path),
            "CREDIT_LEDGER_SIGNER_KEY": consortium.signer_key(REGION),
            "CREDIT_LEDGER_WORKER_POLL_SECONDS": "0.1",
            "CREDIT_LEDGER_BATCH_MAX_AGE_SECONDS": "3600",
        }
    )
    with (tmp_path / "worker.log").open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "node_api.worker"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        first_seq = consortium.anchor().next_seq(REGION)
        deadline = time.monotonic() + 60
        while api.http.get("/v1/health").json()["worker"]["lease_owner"] is None:
            assert time.monotonic() < deadline and worker.poll() is None, (
                tmp_path / "worker.log"
            ).read_text()
            time.sleep(0.1)
        accepted = api.submit([sample_record() for _ in range(30)])
        answer = api.http.post("/v1/anchor").json()
        assert answer["requested"] is True and answer["lease_owner"].split(":")[1] == str(
            worker.pid
        )
        _wait_all_anchored(api)
        _assert_exactly_once(api, consortium, first_seq, accepted)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        assert worker.wait(30) == 0
        api.stop()
