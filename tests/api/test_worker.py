"""The anchoring worker: sealing by size and age, chain events, reconciliation, lease, outage."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import uvicorn
from node_harness import OPERATOR, Node, stop_node
from sqlalchemy import select

from ledger.chain.localnode import free_port
from ledger.errors import ChainError
from node_api.batches import SealedBatch, load_batch
from node_api.cli.cmd_data import _anchor_all
from node_api.config import Settings
from node_api.db.tables import batches
from node_api.main import create_app
from node_api.services import Services
from node_api.testing import LocalConsortium, sample_record

StartNode = Callable[[Settings], Node]


def _wait(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _batch_states(node: Node) -> list[tuple[int, int, str]]:
    with node.services.db.read() as conn:
        rows = conn.execute(
            select(batches.c.seq, batches.c.size, batches.c.state).order_by(batches.c.seq)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _seal_without_sending(node: Node) -> SealedBatch:
    """What the worker has done when a crash hits between sealing and sending."""
    worker = node.services.worker
    assert worker is not None and worker._hold_lease()
    worker._startup()
    sealed = worker._seal_next()
    assert len(sealed) == 1
    return sealed[0]


def test_worker_seals_full_batches_and_anchors_them(
    make_settings: Callable[..., Settings], start_node: StartNode, consortium: LocalConsortium
) -> None:
    node = start_node(make_settings(worker_mode="inprocess", batch_size=5, worker_poll_seconds=0.1))
    node.submit([sample_record() for _ in range(12)])
    _wait(
        lambda: (
            [s for s in _batch_states(node) if s[2] == "anchored"] and len(_batch_states(node)) == 2
        ),
        what="2 batches",
    )
    time.sleep(0.3)
    states = _batch_states(node)
    assert [(size, state) for _, size, state in states] == [(5, "anchored"), (5, "anchored")]
    assert node.services.worker is not None and node.services.worker.running
    anchor = consortium.anchor()
    for seq, size, _ in states:
        (event,) = anchor.batches_anchored(110000, from_seq=seq, to_seq=seq)
        with node.services.db.read() as conn:
            stored = load_batch(conn, seq)
        assert stored is not None
        assert (event.root, event.size, event.manifest_hash) == (
            stored.root,
            size,
            stored.manifest_hash,
        )
        assert event.tx_hash == stored.tx_hash
    pipeline = node.client.get("/v1/health").json()["pipeline"]
    assert pipeline["pending_versions"] == 2


def test_worker_seals_when_the_oldest_pending_version_is_old_enough(
    make_settings: Callable[..., Settings], start_node: StartNode
) -> None:
    node = start_node(
        make_settings(worker_mode="inprocess", batch_max_age_seconds=0.5, worker_poll_seconds=0.1)
    )
    started = time.monotonic()
    key = node.submit([sample_record() for _ in range(3)])["records"][0]["record_key"]
    _wait(
        lambda: _batch_states(node) and _batch_states(node)[0][2] == "anchored",
        what="age-sealed batch",
    )
    assert time.monotonic() - started >= 0.5
    assert _batch_states(node)[0][1] == 3
    assert node.client.get(f"/v1/records/{key}/receipt", headers=OPERATOR).status_code == 200
    text = node.client.get("/metrics").text
    assert "credit_ledger_batches_anchored_total 1.0" in text
    assert "credit_ledger_anchoring_lag_seconds 0.0" in text


def test_versions_of_one_record_in_one_batch_move_the_head_in_order(
    node: Node, consortium: LocalConsortium
) -> None:
    record = sample_record()
    key = node.submit(record)["records"][0]["record_key"]
    corrected = copy.deepcopy(record)
    corrected["data"]["listed_on"] = "2024-07-05"
    node.client.put(f"/v1/records/{key}", json=corrected, headers=OPERATOR)
    node.client.post(f"/v1/records/{key}/revoke", json={"reason": "repair"}, headers=OPERATOR)
    (anchored,) = node.anchor()["anchored"]
    assert anchored["size"] == 3
    moves = consortium.anchor().heads_moved(110000, bytes.fromhex(key))
    assert [(m.version, m.status, m.seq) for m in moves] == [
        (2, 1, anchored["seq"]),
        (3, 2, anchored["seq"]),
    ]
    head = consortium.anchor().head_of(110000, bytes.fromhex(key))
    latest = node.receipt(key)
    assert latest["leaf"]["version"] == 3
    assert head.version == 3 and head.status == 2


def test_a_sealed_batch_is_sent_unchanged_after_a_restart(
    make_settings: Callable[..., Settings], start_node: StartNode, consortium: LocalConsortium
) -> None:
    settings = make_settings()
    node = start_node(settings)
    node.submit([sample_record() for _ in range(4)])
    sealed = _seal_without_sending(node)
    assert consortium.anchor().batch_of(110000, sealed.seq).size == 0
    node.submit(sample_record())  # arrives after the seal: must not join the sealed batch
    stop_node(node)

    restarted = start_node(make_settings(worker_mode="inprocess", worker_poll_seconds=0.1))
    _wait(lambda: _batch_states(restarted)[0][2] == "anchored", what="reconciled batch")
    onchain = consortium.anchor().batch_of(110000, sealed.seq)
    assert (onchain.root, onchain.size, onchain.manifest_hash) == (
        sealed.root,
        4,
        sealed.manifest_hash,
    )
    assert _batch_states(restarted)[0] == (sealed.seq, 4, "anchored")
    assert restarted.client.get("/v1/health").json()["pipeline"]["pending_versions"] == 1


def test_a_backlog_is_sealed_several_full_batches_per_transaction(
    make_settings: Callable[..., Settings], start_node: StartNode, consortium: LocalConsortium
) -> None:
    node = start_node(make_settings(batch_size=5))
    node.submit([sample_record() for _ in range(58)])
    worker = node.services.worker
    assert worker is not None and worker._hold_lease()
    worker._startup()
    first = worker._seal_next()
    # Eight full batches at most in one transaction; the rest waits for the next one.
    start = first[0].seq  # the chain is shared with other tests
    assert [(b.seq, b.size) for b in first] == [(start + i, 5) for i in range(8)]
    assert _batch_states(node) == [(start + i, 5, "sealed") for i in range(8)]
    result = node.anchor()
    # The cycle settles what was sealed, seals the other full batches and, forced, the 3 left.
    assert result["sealed"] == [start + 8, start + 9, start + 10, start + 11]
    assert [(size, state) for _, size, state in _batch_states(node)] == [(5, "anchored")] * 11 + [
        (3, "anchored")
    ]
    assert consortium.anchor().next_seq(110000) == start + 12


def test_a_send_failing_inside_a_group_keeps_the_batches_sent_before_it(
    make_settings: Callable[..., Settings],
    start_node: StartNode,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = start_node(make_settings(batch_size=5))
    node.submit([sample_record() for _ in range(20)])
    worker = node.services.worker
    assert worker is not None
    contract = worker.chain.anchor
    send = contract.anchor_batch
    sent: list[int] = []

    def third_send_fails(region: int, seq: int, *args: Any) -> Any:
        sent.append(seq)
        if len(sent) == 3:
            raise ChainError("connection reset (injected by the test)")
        return send(region, seq, *args)

    monkeypatch.setattr(contract, "anchor_batch", third_send_fails)
    response = node.client.post("/v1/anchor", headers=OPERATOR)
    assert response.status_code == 503, response.text
    states = _batch_states(node)
    assert [state for _, _, state in states] == ["anchored", "anchored", "sealed", "sealed"]
    with node.services.db.read() as conn:
        errors = conn.execute(select(batches.c.last_error).order_by(batches.c.seq)).scalars()
        assert ["injected by the test" in (e or "") for e in errors] == [False, False, True, False]
    # The next cycle sends the rest, in seq order, nothing twice.
    result = node.anchor()
    assert [b["seq"] for b in result["anchored"]] == [states[2][0], states[3][0]]
    assert sent == [states[0][0], states[1][0], states[2][0], states[2][0], states[3][0]]
    assert [state for _, _, state in _batch_states(node)] == ["anchored"] * 4


def test_a_batch_anchored_before_the_crash_is_marked_not_resent(
    make_settings: Callable[..., Settings], start_node: StartNode, consortium: LocalConsortium
) -> None:
    node = start_node(make_settings())
    keys = [r["record_key"] for r in node.submit([sample_record() for _ in range(3)])["records"]]
    sealed = _seal_without_sending(node)
    stop_node(node)
    # The transaction went out, then the node died before recording it.
    tx = consortium.anchor(consortium.signer_key(110000)).anchor_batch(
        110000, sealed.seq, sealed.root, sealed.size, sealed.manifest_hash, []
    )
    restarted = start_node(make_settings())
    result = restarted.anchor()
    assert result["sealed"] == []  # nothing new sealed or sent: the batch was only marked
    assert [(b["seq"], b["tx_hash"]) for b in result["anchored"]] == [(sealed.seq, tx.tx_hash)]
    with restarted.services.db.read() as conn:
        stored = load_batch(conn, sealed.seq)
    assert stored is not None and (stored.state, stored.tx_hash, stored.block_number) == (
        "anchored",
        tx.tx_hash,
        tx.block_number,
    )
    assert consortium.anchor().next_seq(110000) == sealed.seq + 1
    receipt = restarted.receipt(keys[0])
    assert receipt["chain"]["tx_hash"] == tx.tx_hash
    verdict = restarted.client.post("/v1/verify", json=receipt, headers=OPERATOR).json()
    assert verdict["status"] == "valid"


def test_a_different_root_on_chain_blocks_the_worker_and_is_never_overwritten(
    make_settings: Callable[..., Settings], start_node: StartNode, consortium: LocalConsortium
) -> None:
    node = start_node(make_settings())
    node.submit([sample_record() for _ in range(2)])
    sealed = _seal_without_sending(node)
    stop_node(node)
    foreign_root = bytes.fromhex("ab" * 32)
    consortium.anchor(consortium.signer_key(110000)).anchor_batch(
        110000, sealed.seq, foreign_root, 7, bytes(32), []
    )
    restarted = start_node(make_settings())
    response = restarted.client.post("/v1/anchor", headers=OPERATOR)
    assert response.status_code == 409 and "refusing to overwrite" in response.json()["message"]
    assert _batch_states(restarted) == [(sealed.seq, 2, "conflict")]
    health = restarted.client.get("/v1/health").json()
    assert health["status"] == "degraded" and "refusing" in health["worker"]["blocked"]
    restarted.submit(sample_record())  # intake goes on
    assert consortium.anchor().batch_of(110000, sealed.seq).root == foreign_root
    assert _batch_states(restarted) == [(sealed.seq, 2, "conflict")]  # no seq reused
    # Still blocked after another restart: nothing sealed after the conflicting batch.
    stop_node(restarted)
    again = start_node(make_settings())
    response = again.client.post("/v1/anchor", headers=OPERATOR)
    assert response.status_code == 409 and "refusing to overwrite" in response.json()["message"]
    assert _batch_states(again) == [(sealed.seq, 2, "conflict")]
    assert consortium.anchor().next_seq(110000) == sealed.seq + 1


def test_chain_ahead_of_the_database_blocks_sealing(
    make_settings: Callable[..., Settings], start_node: StartNode, consortium: LocalConsortium
) -> None:
    node = start_node(make_settings())
    node.submit(sample_record())
    sealed = _seal_without_sending(node)
    stop_node(node)
    signer = consortium.anchor(consortium.signer_key(110000))
    signer.anchor_batch(110000, sealed.seq, sealed.root, sealed.size, sealed.manifest_hash, [])
    signer.anchor_batch(110000, sealed.seq + 1, bytes.fromhex("cd" * 32), 1, bytes(32), [])
    restarted = start_node(make_settings())
    response = restarted.client.post("/v1/anchor", headers=OPERATOR)
    assert response.status_code == 409 and "another node anchors" in response.json()["message"]


def test_only_the_lease_holder_anchors_and_others_request_it(
    make_settings: Callable[..., Settings], start_node: StartNode
) -> None:
    holder = start_node(make_settings(worker_mode="inprocess", worker_poll_seconds=0.1))
    _wait(lambda: holder.client.get("/v1/health").json()["worker"]["lease_owner"], what="lease")
    other = start_node(make_settings(worker_mode="off"))
    other.submit([sample_record() for _ in range(2)])
    answer = other.anchor()
    assert answer["requested"] is True
    assert answer["lease_owner"] == holder.services.worker.owner  # type: ignore[union-attr]
    _wait(
        lambda: _batch_states(other) and _batch_states(other)[0][2] == "anchored",
        what="requested batch",
    )


def test_intake_continues_while_the_chain_is_unreachable(
    make_settings: Callable[..., Settings], start_node: StartNode
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    node = start_node(
        make_settings(
            rpc_url=dead,
            worker_mode="inprocess",
            worker_poll_seconds=0.1,
            batch_max_age_seconds=0.1,
        )
    )
    node.submit([sample_record() for _ in range(3)])
    health = _wait(
        lambda: (
            (h := node.client.get("/v1/health").json())["worker"]["consecutive_failures"] >= 2 and h
        ),
        what="worker backoff",
    )
    assert health["status"] == "degraded" and health["chain"]["reachable"] is False
    assert "failed" in health["worker"]["last_error"]
    response = node.client.post("/v1/anchor", headers=OPERATOR)
    assert response.status_code == 503 and response.json()["error"] == "chain_unavailable"
    node.submit(sample_record())
    assert health["pipeline"]["pending_versions"] >= 3
    assert 'credit_ledger_rpc_errors_total{operation="nextSeq"}' in node.client.get("/metrics").text
    stop_node(node)
    recovered = start_node(make_settings())
    assert sum(b["size"] for b in recovered.anchor()["anchored"]) == 4


def test_import_anchor_waits_while_the_worker_is_busy(
    make_settings: Callable[..., Settings],
) -> None:
    # After a 10M-record import the worker was still anchoring a backlog in one long cycle;
    # POST /v1/anchor answered 503 after its wait and `import --anchor` failed (exit 7)
    # with everything stored and being anchored. The CLI now asks again while the node
    # says "worker_busy". A real node over real HTTP; the test holds the worker's cycle.
    app = create_app(make_settings(anchor_wait_seconds=0.3))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait(lambda: server.started, what="the node to start")
    url = f"http://127.0.0.1:{server.config.port}"
    services: Services = app.state.services
    assert services.worker is not None
    cycle = services.worker._cycle_lock
    try:
        with httpx.Client(base_url=url, headers=OPERATOR, timeout=30) as http:
            assert http.post("/v1/records", json=sample_record()).status_code == 202
            assert cycle.acquire(timeout=10)
            busy = http.post("/v1/anchor")
            assert busy.status_code == 503
            assert busy.json()["reason"] == "worker_busy"
            released = threading.Timer(1.5, cycle.release)
            released.start()
            started = time.monotonic()
            answer = _anchor_all(url, OPERATOR["Authorization"].removeprefix("Bearer "), quiet=True)
            assert time.monotonic() - started >= 1.4  # it waited for the cycle to end
            released.join()
        assert [b["size"] for b in answer["anchored"]] == [1]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
