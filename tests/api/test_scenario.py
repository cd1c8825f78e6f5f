"""The main scenario of one node, end to end, on SQLite and on PostgreSQL."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from node_harness import AUDITOR, OPERATOR, VERIFIER, Node, stop_node

import ledger
from node_api.client import MemberAuth
from node_api.config import Settings
from node_api.testing import LocalConsortium, sample_record, sample_uscc


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'scenario.db'}"
    make: Callable[[], str] = request.getfixturevalue("pg_schema_url")
    return make()


def _wait_anchored(node: Node, timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipeline = node.client.get("/v1/health").json()["pipeline"]
        if pipeline["pending_versions"] == 0 and pipeline["anchoring_lag_seconds"] == 0:
            return pipeline  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError("versions not anchored in time")


def test_submit_correct_revoke_anchor_verify_trace_restart(
    database_url: str,
    make_settings: Callable[..., Settings],
    start_node: Callable[[Settings], Node],
    consortium: LocalConsortium,
) -> None:
    settings = make_settings(
        database_url=database_url,
        worker_mode="inprocess",
        batch_size=64,
        batch_max_age_seconds=0.3,
        worker_poll_seconds=0.1,
    )
    node = start_node(settings)
    entities = [sample_uscc() for _ in range(20)]
    records = [sample_record(uscc=entities[i % 20]) for i in range(150)]
    records += [sample_record(uscc=u, record_type="administrative_penalty") for u in entities]
    body = node.submit(records)
    keys = [r["record_key"] for r in body["records"]]
    assert body["created"] == 170
    assert node.submit(records[:10])["unchanged"] == 10  # idempotent

    corrected = copy.deepcopy(records[0])
    corrected["data"]["listed_on"] = "2024-07-09"
    assert (
        node.client.put(f"/v1/records/{keys[0]}", json=corrected, headers=OPERATOR).json()[
            "version"
        ]
        == 2
    )
    revoked = node.client.post(
        f"/v1/records/{keys[1]}/revoke", json={"reason": "信用修复"}, headers=OPERATOR
    )
    assert revoked.json()["version"] == 2

    pipeline = _wait_anchored(node)
    batches = node.client.get("/v1/batches", params={"limit": 1000}, headers=VERIFIER).json()[
        "batches"
    ]
    assert sum(b["size"] for b in batches) == 172 and {b["state"] for b in batches} == {"anchored"}
    seqs = sorted(b["seq"] for b in batches)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert pipeline["batches"] == {"anchored": len(seqs)}
    anchor = consortium.anchor()
    for batch in batches:
        onchain = anchor.batch_of(110000, batch["seq"])
        assert onchain.root.hex() == batch["root"] and onchain.size == batch["size"]

    # Verifiers: receipts verify against the chain; listings are current or lifted.
    first = node.receipt(keys[0], version=1)
    assert (
        node.client.post("/v1/verify", json=first, headers=VERIFIER).json()["status"]
        == "superseded"
    )
    current = node.receipt(keys[0])
    assert (
        node.client.post("/v1/verify", json=current, headers=VERIFIER).json()["status"] == "valid"
    )
    status = node.client.get(f"/v1/entities/{entities[1]}/status", headers=VERIFIER).json()
    lifted = [item for item in status["listings"] if item["record_key"] == keys[1]]
    assert lifted[0]["current"] is False and lifted[0]["verdict"]["status"] == "valid"

    # Auditors and members trace the entity; every payload read is logged.
    history = node.client.get(f"/v1/entities/{entities[0]}/history", headers=AUDITOR).json()
    assert {t["verdict"]["status"] for t in history["timeline"]} <= {"valid", "superseded"}
    assert len(history["timeline"]) == 8 + 1 + 1  # 8 listings + correction + penalty
    tianjin = Account.from_key(consortium.signer_key(120000))
    disclosure = node.client.get(
        f"/v1/records/{keys[5]}/receipt",
        params={"disclose": "true"},
        auth=MemberAuth(tianjin, 120000, 110000),
        headers={"X-Purpose": "cross-region check"},
    ).json()
    assert (
        ledger.verify_disclosure(disclosure, consortium.anchor()).status
        == ledger.VerdictStatus.VALID
    )
    log = node.client.get("/v1/access-log", headers=AUDITOR).json()["entries"]
    assert [e["role"] for e in log] == ["member:120000", "auditor"]

    # Restart on the same database: nothing is re-anchored, new intake continues the seqs.
    stop_node(node)
    restarted = start_node(settings)
    restarted.submit(sample_record())
    _wait_anchored(restarted)
    after = restarted.client.get("/v1/batches", params={"limit": 1000}, headers=VERIFIER).json()[
        "batches"
    ]
    assert max(b["seq"] for b in after) == seqs[-1] + 1
    assert anchor.next_seq(110000) == seqs[-1] + 2
