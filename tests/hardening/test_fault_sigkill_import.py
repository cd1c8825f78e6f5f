"""SIGKILL at 20 random points of a 50,000-record import; nothing lost, nothing doubled.

A real node process (uvicorn, in-process anchoring worker) takes a 50,000-record import
in requests of 1,000 while it seals and anchors batches of 2,000. At a random moment
(fixed seed) the whole process group gets SIGKILL, twenty times over: during intake,
sealing, sending or waiting for a receipt. After each restart the importer resends from
the first request it has no 202 for (an identical resubmission is a no-op). In the end
every record the node ever acknowledged is anchored exactly once, the region's seqs on
chain are contiguous, each once, with the roots the node sealed.
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
from hardening_env import (
    BEIJING,
    NodeProcess,
    bearer,
    check_anchored_exactly_once,
    node_env,
    report_figures,
    wait_all_anchored,
)

from node_api.testing import LocalConsortium, sample_record, sample_uscc, start_local_consortium

pytestmark = [pytest.mark.chain, pytest.mark.integration, pytest.mark.slow]

RECORDS = 50_000
PER_REQUEST = 1_000
KILLS = 20
KILL_SEED = 50_020


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    consortium = start_local_consortium(tmp_path_factory.mktemp("sigkill-chain"))
    yield consortium
    consortium.stop()


def _records() -> list[list[dict[str, Any]]]:
    records = [
        sample_record(
            BEIJING,
            uscc=sample_uscc(BEIJING, n=700_000 + i // 3),
            record_type=("business_abnormality", "serious_violation", "registration")[i % 3],
            record_id=f"IMPORT-{i:06d}",
        )
        for i in range(RECORDS)
    ]
    return [records[i : i + PER_REQUEST] for i in range(0, RECORDS, PER_REQUEST)]


class Importer:
    """Sends the requests in order from ``position``; remembers what got a 202."""

    def __init__(self, requests: list[list[dict[str, Any]]]) -> None:
        self.requests = requests
        self.position = 0
        self.accepted: set[str] = set()
        self.in_flight_when_killed = 0

    def run(self, node: NodeProcess, stop: threading.Event) -> None:
        with httpx.Client(base_url=node.url, headers=bearer("operator"), timeout=120) as http:
            while self.position < len(self.requests) and not stop.is_set():
                try:
                    response = http.post("/v1/records", json=self.requests[self.position])
                except httpx.HTTPError:
                    self.in_flight_when_killed += 1
                    return  # killed under this request: resent after the restart
                assert response.status_code == 202, response.text[:300]
                self.accepted.update(r["record_key"] for r in response.json()["records"])
                self.position += 1


def test_sigkill_at_random_points_of_a_large_import_loses_nothing(
    chain: LocalConsortium, tmp_path: Path
) -> None:
    rng = random.Random(KILL_SEED)
    data_dir = tmp_path / "node"
    env = node_env(
        chain,
        data_dir,
        worker_mode="inprocess",
        batch_size="2000",
        batch_max_age_seconds="0.5",
        rpc_backoff_max_seconds="1",
    )
    first_seq = chain.anchor().next_seq(BEIJING)
    importer = Importer(_records())
    kills: list[dict[str, Any]] = []
    started = time.monotonic()
    for _ in range(KILLS):
        node = NodeProcess(data_dir, env)
        stop = threading.Event()
        thread = threading.Thread(target=importer.run, args=(node, stop), daemon=True)
        thread.start()
        delay = rng.uniform(0.3, 4.0)
        time.sleep(delay)
        pending = node.health()["pipeline"]
        node.kill()
        stop.set()
        thread.join(120)
        node.stop()
        kills.append({"after_s": round(delay, 2), "request": importer.position, "pending": pending})
    node = NodeProcess(data_dir, env)
    try:
        stop = threading.Event()
        importer.run(node, stop)
        assert importer.position == len(importer.requests)
        wait_all_anchored(node, timeout=300)
        counts = check_anchored_exactly_once(
            data_dir, chain.anchor(), BEIJING, first_seq, importer.accepted
        )
        assert counts["versions"] == RECORDS, counts
    finally:
        node.stop()
    report_figures(
        "sigkill_import",
        {
            "records": RECORDS,
            "kills": len(kills),
            "killed_mid_request": importer.in_flight_when_killed,
            "kills_with_versions_pending": sum(
                1 for k in kills if k["pending"]["pending_versions"] > 0
            ),
            "records_lost": counts["lost"],
            "seconds": round(time.monotonic() - started, 1),
            **counts,
        },
    )
