"""`make run`'s job: the local consortium comes up, deploys once, and reuses its state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.chain.client import ChainClient
from ledger.chain.deploy import Deployment
from ledger.chain.localnode import free_port, rpc_call

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "consortium.py"

pytestmark = [pytest.mark.chain, pytest.mark.integration]


def _run(local_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CREDIT_LEDGER_LOCAL_DIR": str(local_dir)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("chain", ["anvil", "ganache"])
def test_up_deploys_once_then_reuses_state_across_restarts(tmp_path: Path, chain: str) -> None:
    port = str(free_port())
    first = _run(tmp_path, "up", "--detach", "--chain", chain, "--port", port)
    try:
        assert first.returncode == 0, first.stderr
        assert "deployment file" in first.stdout and "(new)" in first.stdout
        deployment = Deployment.load(tmp_path / "deployment.json")
        rpc_url = f"http://127.0.0.1:{port}"
        with ChainClient(rpc_url, None) as client:
            deployment.verify_on_chain(client)
            consortium = deployment.consortium_client(client)
            assert sorted(consortium.active_regions()) == [110000, 120000, 130000]
            assert consortium.threshold() == 2

        # A second `up` while the chain runs reuses both.
        again = _run(tmp_path, "up", "--detach", "--chain", chain, "--port", port)
        assert again.returncode == 0, again.stderr
        assert "reusing running" in again.stdout and "(reused)" in again.stdout
    finally:
        down = _run(tmp_path, "down")
    assert down.returncode == 0, down.stderr
    block_before = deployment.deployed_block

    # After a stop, `up` restarts the chain from its saved state: same contracts, no redeploy.
    restarted = _run(tmp_path, "up", "--detach", "--chain", chain, "--port", port)
    try:
        assert restarted.returncode == 0, restarted.stderr
        assert "(reused)" in restarted.stdout, restarted.stdout
        assert Deployment.load(tmp_path / "deployment.json") == deployment
        code = rpc_call(f"http://127.0.0.1:{port}", "eth_getCode", [deployment.anchor, "latest"])
        assert isinstance(code, str) and len(code) > 1000
        status = _run(tmp_path, "status")
        assert status.returncode == 0 and json.loads(status.stdout.split("\n", 1)[1])["anchor"]
    finally:
        _run(tmp_path, "down")
    assert block_before >= 1
    assert _run(tmp_path, "status").returncode == 1
