"""Regional nodes as real processes (``uvicorn node_api.main:app``), as a bureau runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import AUDITOR_KEY, OPERATOR_KEY, REPO, VERIFIER_KEY, pid_peak_rss_mib
from ledger.chain.localnode import free_port


class NodeProcess:
    """One node: its URL, process and data directory."""

    def __init__(self, consortium: Any, region: int, data_dir: Path, **settings: str) -> None:
        self.region = region
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_LEDGER_")}
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "CREDIT_LEDGER_RPC_URL": consortium.rpc_url,
                "CREDIT_LEDGER_DEPLOYMENT_FILE": str(consortium.deployment_file),
                "CREDIT_LEDGER_REGION": str(region),
                "CREDIT_LEDGER_DATA_DIR": str(data_dir),
                "CREDIT_LEDGER_SIGNER_KEY": consortium.signer_key(region),
                "CREDIT_LEDGER_OPERATOR_KEYS": OPERATOR_KEY,
                "CREDIT_LEDGER_VERIFIER_KEYS": VERIFIER_KEY,
                "CREDIT_LEDGER_AUDITOR_KEYS": AUDITOR_KEY,
                "CREDIT_LEDGER_PUBLIC_URL": self.url,
                "CREDIT_LEDGER_LOG_LEVEL": "WARNING",
                "CREDIT_LEDGER_PEER_TIMEOUT_SECONDS": "600",
            }
        )
        env.update({f"CREDIT_LEDGER_{k.upper()}": v for k, v in settings.items()})
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = (data_dir / "node.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "node_api.main:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log"],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self._wait()

    def _wait(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node {self.region} exited at start; see {self.data_dir}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"node {self.region} did not start")

    def client(self, key: str = OPERATOR_KEY, timeout: float = 600) -> httpx.Client:
        """An HTTP client with a role's API key."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout
        )

    def verifier(self) -> httpx.Client:
        """A client with the verifier key."""
        return self.client(VERIFIER_KEY, 60)

    def auditor(self) -> httpx.Client:
        """A client with the auditor key."""
        return self.client(AUDITOR_KEY, 3600)

    def peak_rss_mib(self) -> float | None:
        """Peak RSS of the node process so far (VmHWM)."""
        return pid_peak_rss_mib(self.process.pid)

    def database_bytes(self) -> int:
        """Size of the SQLite files."""
        return sum(p.stat().st_size for p in self.data_dir.glob("node.db*"))

    def wait_anchored(self, timeout: float = 7200) -> None:
        """Until nothing is pending and every sealed batch is on chain."""
        with self.client() as http:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                pipeline = http.get("/v1/health").json()["pipeline"]
                if pipeline["pending_versions"] == 0 and pipeline["anchoring_lag_seconds"] == 0:
                    return
                time.sleep(0.25)
        raise RuntimeError("anchoring did not finish")

    def stop(self) -> None:
        """SIGTERM the process group, wait."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
