"""Large submissions are parsed and validated in an intake process (node_api.intake_pool).

A real node (``python -m uvicorn node_api.main:app``) with one intake process: what it
stores from a large body must verify like anything else, what it refuses must be refused
as the node's own process refuses it, and an intake process that dies must cost nothing.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ledger
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
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A node with one intake process, anchoring whatever waits for half a second."""
    consortium: LocalConsortium = start_local_consortium(tmp_path_factory.mktemp("intake-chain"))
    data_dir = tmp_path_factory.mktemp("intake-node")
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
    process = NodeProcess(
        env, data_dir / "node.log", headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
    )
    yield process
    process.stop()
    consortium.stop()


def _children(pid: int) -> set[int]:
    """Process ids of the children of ``pid`` (the intake processes, once started)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


def _large_body(records: list[dict[str, Any]]) -> bytes:
    body = json.dumps(records, ensure_ascii=False).encode("utf-8")
    assert len(body) >= POOLED_BODY_BYTES, "the body must be large enough for an intake process"
    return body


def _post(node: NodeProcess, body: bytes) -> Any:
    return node.http.post("/v1/records", content=body, headers={"Content-Type": "application/json"})


def test_a_large_submission_is_validated_in_an_intake_process_and_verifies(
    node: NodeProcess,
) -> None:
    before = _children(node.pid)
    records = [sample_record() for _ in range(800)]
    response = _post(node, _large_body(records))
    assert response.status_code == 202, response.text
    assert response.json()["created"] == 800
    assert _children(node.pid) - before, "no intake process was started"

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


def test_a_deeply_nested_large_body_is_refused_and_the_node_goes_on(node: NodeProcess) -> None:
    depth = POOLED_BODY_BYTES  # brackets: far past the node's recursion limit
    response = _post(node, b"[" * depth + b"]" * depth)
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["message"]
    records = [sample_record() for _ in range(800)]
    assert _post(node, _large_body(records)).status_code == 202


def test_a_killed_intake_process_loses_no_submission(node: NodeProcess) -> None:
    assert _post(node, _large_body([sample_record() for _ in range(800)])).status_code == 202
    killed = _children(node.pid)
    assert killed
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _children(node.pid) & killed and time.monotonic() < deadline:
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
    assert _children(node.pid) - killed, "no new intake process was started"
    assert "intake process died" in node.tail(200_000)
