"""Large submissions are parsed and validated in an intake process (node_api.intake_pool).

A real node (``python -m uvicorn node_api.main:app``) with one intake process: what it
stores from a large body must verify like anything else, what it refuses must be refused
as the node's own process refuses it, and an intake process that dies must cost nothing.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ledger
from ledger.errors import RecordError
from node_api.errors import BadRequest, Conflict, IntakeRecordError, PayloadTooLarge
from node_api.intake_pool import POOLED_BODY_BYTES
from node_api.testing import (
    LocalConsortium,
    NodeProcess,
    node_environment,
    sample_record,
    start_local_consortium,
)

pytestmark = [pytest.mark.integration, pytest.mark.chain]

OPERATOR_KEY = "intake-operator-key-0123456789abcdef"
AUDITOR_KEY = "intake-auditor-key-0123456789abcdef"
VERIFIER_KEY = "intake-verifier-key-0123456789abcdef"
REGION = 110000


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    """A chain of its own."""
    chain = start_local_consortium(tmp_path_factory.mktemp("intake-chain"))
    yield chain
    chain.stop()


def _start_node(consortium: LocalConsortium, data_dir: Path) -> NodeProcess:
    """A node with one intake process, anchoring whatever waits for half a second."""
    env = node_environment(
        consortium,
        data_dir,
        REGION,
        operator_keys=OPERATOR_KEY,
        auditor_keys=AUDITOR_KEY,
        verifier_keys=VERIFIER_KEY,
        intake_processes=1,
        batch_max_age_seconds=0.5,
        worker_poll_seconds=0.1,
    )
    return NodeProcess(
        env, data_dir / "node.log", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
    )


@pytest.fixture(scope="module")
def node(
    consortium: LocalConsortium, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeProcess]:
    """The node of most tests here."""
    process = _start_node(consortium, tmp_path_factory.mktemp("intake-node"))
    yield process
    process.stop()


def _intake_processes(pid: int) -> set[int]:
    """Process ids of the intake processes of node ``pid`` (its children started by
    multiprocessing's spawn; not its resource tracker)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue  # the thread ended
        for child in children:
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.add(int(child))
            except OSError:
                continue  # the child ended
    return found


def _no_intake_process_died(node: NodeProcess) -> bool:
    return "intake process died" not in node.tail(1_000_000)


def _large_body(records: list[dict[str, Any]]) -> bytes:
    body = json.dumps(records, ensure_ascii=False).encode("utf-8")
    assert len(body) >= POOLED_BODY_BYTES, "the body must be large enough for an intake process"
    return body


def _post(node: NodeProcess, body: bytes) -> Any:
    return node.http.post("/v1/records", content=body, headers={"Content-Type": "application/json"})


def test_a_large_submission_is_validated_in_an_intake_process_and_verifies(
    node: NodeProcess,
) -> None:
    records = [sample_record() for _ in range(800)]
    response = _post(node, _large_body(records))
    assert response.status_code == 202, response.text
    assert response.json()["created"] == 800
    assert _intake_processes(node.pid), "no intake process was started"
    assert _no_intake_process_died(node)

    keys = [r["record_key"] for r in response.json()["records"]]
    assert keys == [ledger.record_key_of(ledger.parse_record(r)).hex() for r in records]
    node.wait_anchored(timeout=120)
    # The salt, commitment and leaf the intake process computed: all four steps must hold.
    for index in (0, 417, 799):
        disclosure = node.http.get(
            f"/v1/records/{keys[index]}/receipt",
            params={"disclose": "true"},
            headers={"Authorization": f"Bearer {AUDITOR_KEY}", "X-Purpose": "intake test"},
        ).json()
        assert disclosure["record"] == records[index]
        verdict = node.http.post(
            "/v1/verify", json=disclosure, headers={"Authorization": f"Bearer {VERIFIER_KEY}"}
        ).json()
        assert verdict["status"] == "valid" and verdict["checked_steps"] == [1, 2, 3, 4]


def test_an_invalid_record_in_a_large_body_stores_nothing_and_is_named(node: NodeProcess) -> None:
    assert _post(node, _large_body([sample_record() for _ in range(800)])).status_code == 202
    intake = _intake_processes(node.pid)
    records = [sample_record() for _ in range(800)]
    records[400]["uscc"] = records[400]["uscc"][:17] + "a"
    records[650]["data"]["listed_on"] = "2024-13-01"
    response = _post(node, _large_body(records))
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["error"], body["index"], body["field"]) == ("invalid_record", 400, "uscc")
    assert "lower case" in body["reason"]
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (400, "uscc"),
        (650, "data.listed_on"),
    ]
    first = ledger.record_key_of(ledger.parse_record(records[0])).hex()
    read = node.http.get(f"/v1/records/{first}", headers={"X-Purpose": "intake test"})
    assert read.status_code == 404, read.text
    # The intake process answered (the error crossed back whole) and is still the same one.
    assert _intake_processes(node.pid) == intake and _no_intake_process_died(node)


def test_a_deeply_nested_large_body_is_refused_and_the_node_goes_on(node: NodeProcess) -> None:
    assert _post(node, _large_body([sample_record() for _ in range(800)])).status_code == 202
    intake = _intake_processes(node.pid)
    depth = POOLED_BODY_BYTES  # brackets: far past the node's recursion limit
    response = _post(node, b"[" * depth + b"]" * depth)
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["message"]
    records = [sample_record() for _ in range(800)]
    assert _post(node, _large_body(records)).status_code == 202
    assert _intake_processes(node.pid) == intake and _no_intake_process_died(node)


def test_a_killed_intake_process_loses_no_submission(node: NodeProcess) -> None:
    assert _post(node, _large_body([sample_record() for _ in range(800)])).status_code == 202
    killed = _intake_processes(node.pid)
    assert killed
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _intake_processes(node.pid) & killed and time.monotonic() < deadline:
        time.sleep(0.05)  # reaped by the pool's management thread

    # The first body after the death is validated by the node itself; later ones by a new
    # intake process.
    for _ in range(2):
        records = [sample_record() for _ in range(800)]
        response = _post(node, _large_body(records))
        assert response.status_code == 202, response.text
        assert response.json()["created"] == 800
        key = response.json()["records"][-1]["record_key"]
        read = node.http.get(f"/v1/records/{key}", headers={"X-Purpose": "intake test"})
        assert read.json()["versions"][0]["version"] == 1
    assert _intake_processes(node.pid) - killed, "no new intake process was started"
    assert "intake process died" in node.tail(200_000)


def test_intake_processes_end_with_a_killed_node(
    consortium: LocalConsortium, tmp_path: Path
) -> None:
    node = _start_node(consortium, tmp_path / "node")
    try:
        assert _post(node, _large_body([sample_record() for _ in range(800)])).status_code == 202
        intake = _intake_processes(node.pid)
        assert intake
        # The node's process alone, as the OOM killer would: its intake processes are
        # orphaned, and must not wait for work forever.
        os.kill(node.pid, signal.SIGKILL)
        node.process.wait(30)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in intake) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in intake), "an intake process outlived its node"
    finally:
        node.kill()  # whatever is left of its process group


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_errors_raised_in_an_intake_process_cross_back_whole() -> None:
    errors = [
        IntakeRecordError(3, "uscc", "bad check character", [{"index": 3, "field": "uscc"}]),
        RecordError("data.listed_on", "not a date"),
        BadRequest("body is not JSON: Expecting value"),
        PayloadTooLarge("10001 records in one request; the limit is 10000"),
        Conflict("exists with different content", index=4, record_key="ab", version=2),
    ]
    for error in errors:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
        assert vars(back) == vars(error)
