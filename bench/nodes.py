"""Regional nodes as real processes (``uvicorn node_api.main:app``), as a bureau runs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from bench.common import AUDITOR_KEY, OPERATOR_KEY, VERIFIER_KEY, pid_peak_rss_mib
from ledger.chain.localnode import free_port
from node_api import testing


class NodeProcess(testing.NodeProcess):
    """One node of ``region``: its URL, process and data directory (log ``node.log`` there)."""

    # A node that has just imported millions of records may take a while to shut down.
    stop_timeout = 60.0

    def __init__(self, consortium: Any, region: int, data_dir: Path, **settings: str) -> None:
        self.region = region
        self.data_dir = data_dir
        port = free_port()
        env = testing.node_environment(
            consortium,
            data_dir,
            region,
            **{
                "operator_keys": OPERATOR_KEY,
                "verifier_keys": VERIFIER_KEY,
                "auditor_keys": AUDITOR_KEY,
                "public_url": f"http://127.0.0.1:{port}",
                "log_level": "WARNING",
                "peer_timeout_seconds": "600",
                **settings,
            },
        )
        super().__init__(
            env,
            data_dir / "node.log",
            port=port,
            headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
            timeout=600,
            uvicorn_args=("--no-access-log",),
        )

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
        """Peak RSS so far (VmHWM) of the node process plus each of its intake processes.

        A sum of peaks: an upper bound of the node's peak, whatever the moments they fell at.
        """
        own = pid_peak_rss_mib(self.process.pid)
        if own is None:
            return None
        children: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            try:
                children += [int(pid) for pid in task.read_text().split()]
            except OSError:
                pass  # the thread ended
        return own + sum(pid_peak_rss_mib(pid) or 0.0 for pid in children)

    def database_bytes(self) -> int:
        """Size of the SQLite files."""
        return sum(p.stat().st_size for p in self.data_dir.glob("node.db*"))

    def wait_anchored(self, timeout: float = 7200, poll: float = 0.25) -> dict[str, Any]:
        """Until nothing is pending and every sealed batch is on chain (a scale run's tail)."""
        return super().wait_anchored(timeout, poll)
