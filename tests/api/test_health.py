"""Start-up on defaults, /v1/health, /metrics, OpenAPI, and signer key loading."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from node_harness import Node

from ledger.chain.localnode import free_port
from node_api.config import Settings
from node_api.main import create_app
from node_api.testing import LocalConsortium, sample_record


def test_starts_with_no_configuration_and_reports_the_missing_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("CREDIT_LEDGER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    with TestClient(create_app()) as client:
        response = client.get("/v1/health")
        assert response.status_code == 200
        health = response.json()
        assert health["status"] == "degraded" and health["region"] == 110000
        assert health["database"]["ok"] is True
        assert health["chain"]["reachable"] is False
        assert "no deployment file" in health["chain"]["error"]
        assert health["worker"]["mode"] == "inprocess"
        assert client.get("/metrics").status_code == 200
        assert client.get("/v1/batches").status_code == 401  # no keys configured: nobody gets in
    secret = tmp_path / ".local" / "node-110000" / "node-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert (tmp_path / ".local" / "node-110000" / "node.db").is_file()


def test_module_level_app_is_the_default_application() -> None:
    from node_api.main import app

    assert set(app.openapi()["paths"]) >= {"/v1/records", "/v1/verify", "/v1/health"}


def test_health_reports_an_unreachable_rpc(
    make_settings: Callable[..., Settings], start_node: Callable[[Settings], Node]
) -> None:
    node = start_node(make_settings(rpc_url=f"http://127.0.0.1:{free_port()}"))
    chain = node.client.get("/v1/health").json()["chain"]
    assert chain["reachable"] is False and chain["contracts_ok"] is False
    assert "failed" in chain["error"]


def test_health_is_ok_with_chain_contracts_and_signer(
    node: Node, consortium: LocalConsortium
) -> None:
    health = node.client.get("/v1/health").json()
    assert health["status"] == "ok", health
    chain = health["chain"]
    assert chain["contracts_ok"] and chain["signer_authorised"]
    assert chain["anchor"] == consortium.deployment.anchor
    assert health["database"]["schema"]["node"] >= 3
    assert health["pipeline"]["pending_versions"] == 0


def test_metrics_name_the_pipeline(node: Node) -> None:
    node.submit(sample_record())
    text = node.client.get("/metrics").text
    for name in (
        'credit_ledger_records_accepted_total{outcome="created"} 1.0',
        "credit_ledger_pending_versions 1.0",
        "credit_ledger_anchoring_lag_seconds",
        'credit_ledger_batches{state="anchored"}',
        "credit_ledger_http_request_seconds_bucket",
    ):
        assert name in text, name


def test_openapi_describes_every_route_in_one_line(node: Node) -> None:
    spec = node.client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("description"), (method, path)
    assert node.client.get("/docs").status_code == 200


def test_encrypted_keystore_signer_anchors(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    start_node: Callable[[Settings], Node],
    consortium: LocalConsortium,
) -> None:
    keystore = Account.encrypt(
        consortium.signer_key(110000), "s3cret", kdf="pbkdf2", iterations=1000
    )
    import json

    (tmp_path / "key.json").write_text(json.dumps(keystore))
    (tmp_path / "password").write_text("s3cret\n")
    node = start_node(
        make_settings(
            signer_key=None,
            signer_keystore=tmp_path / "key.json",
            signer_password_file=tmp_path / "password",
        )
    )
    node.submit(sample_record())
    assert len(node.anchor()["anchored"]) == 1


def test_wrong_keystore_password_keeps_the_node_up_and_says_why(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    start_node: Callable[[Settings], Node],
    consortium: LocalConsortium,
) -> None:
    import json

    keystore = Account.encrypt(
        consortium.signer_key(110000), "right", kdf="pbkdf2", iterations=1000
    )
    (tmp_path / "key.json").write_text(json.dumps(keystore))
    (tmp_path / "password").write_text("wrong")
    node = start_node(
        make_settings(
            signer_key=None,
            signer_keystore=tmp_path / "key.json",
            signer_password_file=tmp_path / "password",
        )
    )
    health = node.client.get("/v1/health").json()
    assert "cannot decrypt" in health["chain"]["signer_error"] and health["chain"]["signer"] is None
    node.submit(sample_record())
    response = node.client.post("/v1/anchor", headers={"Authorization": "Bearer op-" + "a" * 40})
    assert response.status_code == 503 and "no signer key" in response.json()["message"]
