"""Faults with real processes: the chain's JSON-RPC down during intake and during
anchoring, the chain restarted from its saved state or rolled back, two worker processes
racing for one region, the database full or read-only, a transaction dropped from the pool.

Each test runs its own anvil and real node processes (uvicorn, ``python -m
node_api.worker``), injects the fault from outside, and then checks what the design
promises (DESIGN §6): every accepted record anchored exactly once, no seq skipped or
repeated on chain, nothing partially stored, clear errors while the fault lasts.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hardening_env import (
    BEIJING,
    NodeProcess,
    RpcLink,
    WorkerProcess,
    account,
    bearer,
    check_anchored_exactly_once,
    db_counts,
    db_path,
    db_query,
    node_env,
    node_settings,
    report_figures,
    wait_all_anchored,
    wait_until,
)
from sqlalchemy import event

import ledger
from ledger.chain.localnode import rpc_call
from node_api.main import create_app
from node_api.testing import LocalConsortium, sample_record, start_local_consortium

pytestmark = [pytest.mark.chain, pytest.mark.integration]

# Each outage (during intake, then with an anchoring transaction in flight) lasts 30 s, as
# issue 7 asks: with backoff capped at 2 s the worker fails many cycles in each.
OUTAGE_SECONDS = 30
# Each test asserts that every record it got a 202 for is anchored exactly once;
# records_lost sums what check_anchored_exactly_once counted before asserting.
FIGURES: dict[str, Any] = {"faults_injected": 0, "records_lost": 0}


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    report_figures("faults", FIGURES)


def _fault(name: str, **figures: Any) -> None:
    FIGURES["faults_injected"] += 1
    FIGURES["records_lost"] += figures.get("lost", 0)
    FIGURES[name] = figures


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[LocalConsortium]:
    """A chain of the test's own, persistent (anvil --state) so it can be restarted."""
    consortium = start_local_consortium(tmp_path / "chain", state_dir=tmp_path / "chain-state")
    yield consortium
    consortium.stop()


class Loader:
    """Submits small batches of records from a thread; keeps the keys of what got a 202."""

    def __init__(self, node: NodeProcess, per_request: int = 20, pause: float = 0.1) -> None:
        self.node = node
        self.per_request = per_request
        self.pause = pause
        self.accepted: set[str] = set()
        self.refused: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.node.url, headers=bearer("operator"), timeout=60) as http:
            while not self._stop.is_set():
                records = [sample_record() for _ in range(self.per_request)]
                try:
                    response = http.post("/v1/records", json=records)
                except httpx.HTTPError as e:
                    self.refused.append(repr(e))
                    continue
                if response.status_code == 202:
                    self.accepted.update(r["record_key"] for r in response.json()["records"])
                else:
                    self.refused.append(f"{response.status_code} {response.text[:200]}")
                self._stop.wait(self.pause)

    def __enter__(self) -> Loader:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(60)


def _fast_worker(**overrides: str) -> dict[str, str]:
    return {
        "worker_mode": "inprocess",
        "batch_size": "100",
        "batch_max_age_seconds": "0.5",
        "rpc_backoff_max_seconds": "2",
        "chain_timeout_seconds": "3",
        **overrides,
    }


# --------------------------------------------------------------------------- the chain


def test_chain_rpc_down_during_intake_and_during_anchoring_loses_nothing(
    chain: LocalConsortium, tmp_path: Path
) -> None:
    link = RpcLink(chain.node.port)
    data_dir = tmp_path / "node"
    node = NodeProcess(data_dir, node_env(chain, data_dir, rpc_url=link.url, **_fast_worker()))
    anchor = chain.anchor()  # the test reads the chain directly, not through the link
    first_seq = anchor.next_seq(BEIJING)
    try:
        with Loader(node) as loader:
            wait_until(lambda: anchor.next_seq(BEIJING) > first_seq, 60, "nothing anchored")
            # 1. Down while records keep arriving: intake must not need the chain.
            link.cut()
            time.sleep(OUTAGE_SECONDS)
            health = node.health()
            assert not health["chain"]["reachable"], health["chain"]
            accepted_during_outage = len(loader.accepted)
            link.restore()
            # 2. Down right after a transaction left: sent, but its sender never hears back.
            link.cut_after(b"eth_sendRawTransaction")
            assert link.cut_event.wait(60), "no anchoring transaction went out"
            seq_in_flight = anchor.next_seq(BEIJING) - 1
            time.sleep(OUTAGE_SECONDS)
            worker_status = node.health()["worker"]
            assert worker_status["consecutive_failures"] > 0, (worker_status, node.tail())
            link.restore()
            time.sleep(2)
        assert not loader.refused, loader.refused[:5]
        wait_all_anchored(node)
        counts = check_anchored_exactly_once(data_dir, anchor, BEIJING, first_seq, loader.accepted)
        # The batch whose answer was lost was found on chain and recorded with its real tx.
        (row,) = db_query(
            db_path(data_dir), "SELECT tx_hash FROM batches WHERE seq = ?", seq_in_flight
        )
        (found,) = anchor.batches_anchored(BEIJING, from_seq=seq_in_flight, to_seq=seq_in_flight)
        assert row[0] == found.tx_hash
        _fault(
            "rpc_down",
            outages=2,
            outage_seconds=OUTAGE_SECONDS,
            accepted_during_first_outage=accepted_during_outage,
            **counts,
        )
    finally:
        node.stop()
        link.close()


def test_chain_restarted_from_its_saved_state_resumes_anchoring(
    chain: LocalConsortium, tmp_path: Path
) -> None:
    data_dir = tmp_path / "node"
    node = NodeProcess(data_dir, node_env(chain, data_dir, **_fast_worker()))
    anchor = chain.anchor()
    first_seq = anchor.next_seq(BEIJING)
    try:
        with Loader(node) as loader:
            wait_until(lambda: anchor.next_seq(BEIJING) > first_seq + 1, 60, "nothing anchored")
            before_stop = anchor.next_seq(BEIJING)
            chain.node.stop()  # SIGINT: anvil dumps its state to the state file
            time.sleep(5)
            chain.node.start()  # same port, same state file
            assert anchor.next_seq(BEIJING) >= before_stop, "the restarted chain lost batches"
            time.sleep(2)
        assert not loader.refused, loader.refused[:5]
        wait_all_anchored(node)
        counts = check_anchored_exactly_once(data_dir, anchor, BEIJING, first_seq, loader.accepted)
        # Receipts issued before the restart still verify against the restarted chain.
        key = sorted(loader.accepted)[0]
        receipt = node.http.get(f"/v1/records/{key}/receipt").json()
        assert ledger.verify_receipt(receipt, anchor).status is ledger.VerdictStatus.VALID
        _fault("chain_restart", batches_before_restart=before_stop - first_seq, **counts)
    finally:
        node.stop()


def test_a_chain_that_lost_anchored_batches_blocks_the_worker_and_no_seq_is_reused(
    chain: LocalConsortium, tmp_path: Path
) -> None:
    data_dir = tmp_path / "node"
    env = node_env(chain, data_dir, worker_mode="off", chain_timeout_seconds="3")
    node = NodeProcess(data_dir, env)
    anchor = chain.anchor()
    try:
        node.http.post("/v1/records", json=[sample_record() for _ in range(10)])
        assert node.http.post("/v1/anchor").status_code == 200
        snapshot = rpc_call(chain.rpc_url, "evm_snapshot")  # tests only: roll the chain back
        node.http.post("/v1/records", json=[sample_record() for _ in range(10)])
        lost = node.http.post("/v1/anchor").json()["anchored"][0]
        assert rpc_call(chain.rpc_url, "evm_revert", [snapshot]) is True
        assert anchor.next_seq(BEIJING) == lost["seq"], "the rollback did not forget the batch"
        node.http.post("/v1/records", json=[sample_record() for _ in range(10)])
        blocked = node.http.post("/v1/anchor")
        assert blocked.status_code == 409 and "blocked" in blocked.json()["message"], blocked.text
        # Nothing was written over the lost seq, and the database still says what it sealed.
        assert anchor.next_seq(BEIJING) == lost["seq"]
        rows = db_query(db_path(data_dir), "SELECT seq, state FROM batches ORDER BY seq")
        assert rows[-2:] == [(lost["seq"], "anchored"), (lost["seq"] + 1, "sealed")], rows
        assert node.health()["worker"]["blocked"]
        node.stop()
        # A restart checks the chain first, and refuses too.
        restarted = NodeProcess(data_dir, {**env, "CREDIT_LEDGER_WORKER_MODE": "inprocess"})
        try:
            worker = wait_until(
                lambda: restarted.health()["worker"]["blocked"], 60, "restart did not block"
            )
            assert "root" in worker or "batch" in worker
            assert anchor.next_seq(BEIJING) == lost["seq"]
        finally:
            restarted.stop()
        _fault("chain_rolled_back", lost_seq=lost["seq"], blocked=True, seq_reused=False)
    finally:
        node.stop()


# --------------------------------------------------------------------------- workers


def test_two_worker_processes_racing_for_one_region(chain: LocalConsortium, tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    worker_env = {
        "worker_mode": "external",
        "batch_size": "40",
        "batch_max_age_seconds": "0.3",
        "worker_lease_seconds": "2",
        "rpc_backoff_max_seconds": "1",
    }
    api = NodeProcess(data_dir, node_env(chain, data_dir, **worker_env))
    env = node_env(chain, data_dir, **worker_env)
    workers = [WorkerProcess(data_dir, env, f"worker-{i}") for i in range(2)]
    anchor = chain.anchor()
    first_seq = anchor.next_seq(BEIJING)
    pauses = 0
    try:
        by_pid = {w.pid: w for w in workers}
        with Loader(api, per_request=15, pause=0.05) as loader:
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline:
                owner = api.health()["worker"]["lease_owner"]
                holder = by_pid.get(int(owner.split(":")[1])) if owner else None
                if holder is None:
                    time.sleep(0.2)
                    continue
                # Freeze the lease holder past its lease: the other takes over, and the frozen
                # one wakes up mid-cycle believing it still leads (fencing must stop it).
                holder.signal(signal.SIGSTOP)
                time.sleep(3)
                holder.signal(signal.SIGCONT)
                pauses += 1
                time.sleep(1)
        assert not loader.refused, loader.refused[:5]
        wait_all_anchored(api)
        counts = check_anchored_exactly_once(data_dir, anchor, BEIJING, first_seq, loader.accepted)
        conflicts = db_query(
            db_path(data_dir), "SELECT count(*) FROM batches WHERE state != 'anchored'"
        )
        assert conflicts == [(0,)]
        submitters = {e.submitter for e in anchor.batches_anchored(BEIJING, from_seq=first_seq)}
        assert len(submitters) == 1  # one region, one signer key
        _fault("racing_workers", workers=2, lease_holder_frozen=pauses, **counts)
    finally:
        for worker in workers:
            worker.stop()
        api.stop()
    assert pauses >= 3, "the race did not happen: the lease never changed hands"


# --------------------------------------------------------------------------- the database


def test_database_full_refuses_clearly_and_stores_nothing_partial(
    chain: LocalConsortium, tmp_path: Path
) -> None:
    data_dir = tmp_path / "node"
    env = node_env(chain, data_dir, **_fast_worker(batch_size="500"))
    node = NodeProcess(data_dir, env)
    anchor = chain.anchor()
    first_seq = anchor.next_seq(BEIJING)
    accepted: set[str] = set()
    try:
        response = node.http.post("/v1/records", json=[sample_record() for _ in range(200)])
        accepted.update(r["record_key"] for r in response.json()["records"])
        wait_all_anchored(node)
        before = db_counts(db_path(data_dir))
        # The file-size limit of the node process: what a full disk looks like to SQLite
        # (EFBIG, SQLITE_FULL). Python ignores SIGXFSZ, so writes fail instead of killing it.
        files = [p for p in data_dir.iterdir() if p.is_file()]
        limit = max(p.stat().st_size for p in files) + 64 * 1024
        # Only the soft limit: raising a hard limit again needs CAP_SYS_RESOURCE.
        resource.prlimit(node.process.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        big = [sample_record() for _ in range(5000)]
        refused = node.http.post("/v1/records", json=big)
        assert refused.status_code == 503, refused.text[:500]
        body = refused.json()
        # EFBIG reads as "disk I/O error" (a full disk, ENOSPC, as "database or disk is full").
        assert body["error"] == "storage_unavailable" and "disk" in body["message"], body
        assert refused.headers.get("Retry-After")
        assert db_counts(db_path(data_dir)) == before, "a refused request left rows behind"
        assert node.health()["database"]["ok"]  # reads still work
        # Storage back: the same request goes through, and everything gets anchored.
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.prlimit(node.process.pid, resource.RLIMIT_FSIZE, unlimited)
        retried = node.http.post("/v1/records", json=big)
        assert retried.status_code == 202, retried.text[:500]
        accepted.update(r["record_key"] for r in retried.json()["records"])
        wait_all_anchored(node)
        counts = check_anchored_exactly_once(data_dir, anchor, BEIJING, first_seq, accepted)
        _fault("database_full", refused_records=len(big), status=503, **counts)
    finally:
        node.stop()


def test_database_read_only_refuses_clearly_and_seals_no_partial_batch(
    chain: LocalConsortium, tmp_path: Path
) -> None:
    settings = node_settings(chain, tmp_path / "node", BEIJING, batch_size=50)
    read_only = threading.Event()
    with TestClient(create_app(settings)) as client:
        db = client.app.state.services.db  # type: ignore[attr-defined]

        def _maybe_read_only(dbapi_connection: Any, _: Any) -> None:
            if read_only.is_set():
                dbapi_connection.execute("PRAGMA query_only = ON")

        for engine in (db.engine, db.write_engine):  # reads' pool, and the writing connection
            event.listen(engine, "connect", _maybe_read_only)

        ops = bearer("operator")
        assert (
            client.post(
                "/v1/records", json=[sample_record() for _ in range(120)], headers=ops
            ).status_code
            == 202
        )
        before = db_counts(db_path(tmp_path / "node"))
        read_only.set()
        db.dispose()  # new connections come up read-only
        refused = client.post("/v1/records", json=[sample_record() for _ in range(10)], headers=ops)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "storage_unavailable"
        assert "readonly" in refused.json()["message"].replace("-", "")
        anchoring = client.post("/v1/anchor", headers=ops)
        assert anchoring.status_code == 503, anchoring.text
        assert db_counts(db_path(tmp_path / "node")) == before, "no batch may be sealed"
        read_only.clear()
        db.dispose()
        anchored = client.post("/v1/anchor", headers=ops)
        assert anchored.status_code == 200, anchored.text
        sizes = [b["size"] for b in anchored.json()["anchored"]]
        assert sizes == [50, 50, 20]
    _fault("database_read_only", status=503, partial_batches=0)


@contextmanager
def _own_filesystem(path: Path, size: str = "64m") -> Iterator[Path]:
    """A tmpfs of its own mounted at ``path`` (root only), so the test can fill it up or
    remount it read-only under a running node, as a failing disk or a remount would."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a filesystem here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextmanager
def _immutable(directory: Path) -> Iterator[None]:
    """Make ``directory`` and every file in it unwritable from outside the node, open file
    descriptors included (``chattr +i``, root only): what a database whose files went
    read-only under it sees (EPERM on write)."""
    paths = [directory, *sorted(p for p in directory.iterdir() if p.is_file())]
    done: list[Path] = []
    try:
        for path in paths:
            result = subprocess.run(
                ["chattr", "+i", str(path)], capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                pytest.skip(f"cannot make files immutable here: {result.stderr.strip()}")
            done.append(path)
        yield
    finally:
        for path in done:  # always: pytest could not even delete the files otherwise
            subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)


def test_database_files_read_only_under_a_running_node(
    chain: LocalConsortium, tmp_path: Path
) -> None:
    data_dir = tmp_path / "node"
    env = node_env(chain, data_dir, worker_mode="off", batch_size="50")
    node = NodeProcess(tmp_path / "logs", env)  # the log stays writable
    anchor = chain.anchor()
    first_seq = anchor.next_seq(BEIJING)
    try:
        first = node.http.post("/v1/records", json=[sample_record() for _ in range(120)])
        assert first.status_code == 202, first.text[:300]
        accepted = {r["record_key"] for r in first.json()["records"]}
        before = db_counts(db_path(data_dir))
        refused = [sample_record() for _ in range(10)]
        with _immutable(data_dir):
            answer = node.http.post("/v1/records", json=refused)
            assert answer.status_code == 503, answer.text[:500]
            assert answer.json()["error"] == "storage_unavailable", answer.text
            assert answer.headers.get("Retry-After")
            sealing = node.http.post("/v1/anchor")
            assert sealing.status_code == 503, sealing.text[:500]
            assert sealing.json()["error"] == "storage_unavailable", sealing.text
            assert anchor.next_seq(BEIJING) == first_seq, "anchored from a read-only node"
            assert node.process.poll() is None, node.tail()
            assert db_counts(db_path(data_dir)) == before, "a refused write left rows behind"
        retried = node.http.post("/v1/records", json=refused)
        assert retried.status_code == 202, retried.text[:500]
        accepted.update(r["record_key"] for r in retried.json()["records"])
        anchored = node.http.post("/v1/anchor")
        assert anchored.status_code == 200, anchored.text[:500]
        assert [b["size"] for b in anchored.json()["anchored"]] == [50, 50, 30]
        counts = check_anchored_exactly_once(data_dir, anchor, BEIJING, first_seq, accepted)
        _fault("database_files_read_only", status=503, partial_batches=0, **counts)
    finally:
        node.stop()


def test_database_disk_full_under_a_running_node(chain: LocalConsortium, tmp_path: Path) -> None:
    with _own_filesystem(tmp_path / "disk", size="16m") as disk:
        data_dir = disk / "node"
        env = node_env(chain, data_dir, worker_mode="off", batch_size="500")
        node = NodeProcess(tmp_path / "logs", env)  # the log stays on a working disk
        anchor = chain.anchor()
        first_seq = anchor.next_seq(BEIJING)
        filler = disk / "filler"
        try:
            first = node.http.post("/v1/records", json=[sample_record() for _ in range(200)])
            assert first.status_code == 202, first.text[:300]
            accepted = {r["record_key"] for r in first.json()["records"]}
            before = db_counts(db_path(data_dir))
            # Fill the disk to the last few kilobytes: ENOSPC, "database or disk is full".
            with filler.open("wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            big = [sample_record() for _ in range(3000)]
            refused = node.http.post("/v1/records", json=big)
            assert refused.status_code == 503, refused.text[:500]
            assert refused.json()["error"] == "storage_unavailable", refused.text
            assert "full" in refused.json()["message"], refused.text
            assert node.process.poll() is None, node.tail()
            filler.unlink()
            assert db_counts(db_path(data_dir)) == before, "a refused write left rows behind"
            retried = node.http.post("/v1/records", json=big)
            assert retried.status_code == 202, retried.text[:500]
            accepted.update(r["record_key"] for r in retried.json()["records"])
            assert node.http.post("/v1/anchor").status_code == 200
            counts = check_anchored_exactly_once(data_dir, anchor, BEIJING, first_seq, accepted)
            _fault("disk_full_enospc", status=503, refused_records=len(big), **counts)
        finally:
            node.stop()


# --------------------------------------------------------------------------- the pool


def test_a_transaction_dropped_from_the_pool_is_detected_and_resent(
    chain: LocalConsortium, tmp_path: Path
) -> None:
    data_dir = tmp_path / "node"
    env = node_env(
        chain,
        data_dir,
        **_fast_worker(batch_size="1000", chain_receipt_timeout_seconds="4"),
    )
    node = NodeProcess(data_dir, env)
    anchor = chain.anchor()
    first_seq = anchor.next_seq(BEIJING)
    signer = account(chain.signer_key(BEIJING)).address
    try:
        assert rpc_call(chain.rpc_url, "evm_setAutomine", [False]) is None
        response = node.http.post("/v1/records", json=[sample_record() for _ in range(30)])
        accepted = {r["record_key"] for r in response.json()["records"]}

        def pending_tx() -> str | None:
            pool = rpc_call(chain.rpc_url, "txpool_content")
            assert isinstance(pool, dict)
            for sender, by_nonce in pool.get("pending", {}).items():
                if sender.lower() == signer.lower():
                    return str(next(iter(by_nonce.values()))["hash"])
            return None

        dropped = wait_until(pending_tx, 60, "the anchoring transaction never reached the pool")
        rpc_call(chain.rpc_url, "anvil_dropTransaction", [dropped])
        assert pending_tx() is None
        rpc_call(chain.rpc_url, "evm_setAutomine", [True])
        wait_all_anchored(node, timeout=120)
        counts = check_anchored_exactly_once(data_dir, anchor, BEIJING, first_seq, accepted)
        ((attempts, tx_hash),) = db_query(
            db_path(data_dir), "SELECT send_attempts, tx_hash FROM batches WHERE seq = ?", first_seq
        )
        # Resent as it was (same nonce, same data: often the same hash), and mined this time.
        assert attempts >= 2, attempts
        receipt = rpc_call(chain.rpc_url, "eth_getTransactionReceipt", [tx_hash])
        assert isinstance(receipt, dict) and receipt["status"] == "0x1", receipt
        assert "dropped" in node.tail(20_000)  # what the worker logged when it noticed
        _fault("dropped_transaction", send_attempts=attempts, **counts)
    finally:
        rpc_call(chain.rpc_url, "evm_setAutomine", [True])
        node.stop()
