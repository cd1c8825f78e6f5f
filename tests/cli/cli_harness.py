"""Helpers of the CLI tests: run ``credit-ledger`` as a process, start node processes.

Kept out of conftest.py because test modules import them (several test folders have a
conftest.py, and an import of ``conftest`` would pick whichever came first).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import ledger
from ledger.chain.localnode import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).with_name("credit-ledger")
# The console script installed by `pip install -e .`; `python -m node_api.cli` otherwise.
CLI = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "node_api.cli"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI process: no CREDIT_LEDGER_* from the caller, wide output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_LEDGER_")}
    env.update(COLUMNS="200", PYTHONPATH=str(REPO_ROOT))
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``credit-ledger ARGS`` and capture its output."""
    return subprocess.run(
        [*CLI, *args],
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO_ROOT,
    )


def key(role: str, region: int) -> str:
    """The API key of ``role`` at the test node of ``region``."""
    return f"{role}-{region}-" + "k" * 24


@dataclass
class NodeServer:
    """A ``credit-ledger node serve`` process."""

    region: int
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def database(self) -> Path:
        """The node's SQLite file."""
        return self.data_dir / "node.db"

    def log_tail(self) -> str:
        """The end of the node's output."""
        return (self.data_dir / "node.log").read_text(errors="replace")[-4000:]

    def args(self, role: str = "operator") -> list[str]:
        """``--node URL --api-key KEY`` for a CLI command."""
        return ["--node", self.url, "--api-key", key(role, self.region)]

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a read-only query of the node's database."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as conn:
            return conn.execute(sql).fetchall()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_node(
    chain: Any, region: int, data_dir: Path, *, worker_mode: str = "off", **settings: str
) -> NodeServer:
    """Start a node of ``region`` on the test chain through the CLI; wait until healthy."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = cli_env(
        CREDIT_LEDGER_RPC_URL=chain.rpc_url,
        CREDIT_LEDGER_DEPLOYMENT_FILE=str(chain.deployment_file),
        CREDIT_LEDGER_REGION=str(region),
        CREDIT_LEDGER_SIGNER_KEY=chain.signer_key(region),
        CREDIT_LEDGER_DATA_DIR=str(data_dir),
        CREDIT_LEDGER_OPERATOR_KEYS=key("operator", region),
        CREDIT_LEDGER_VERIFIER_KEYS=key("verifier", region),
        CREDIT_LEDGER_AUDITOR_KEYS=key("auditor", region),
        CREDIT_LEDGER_WORKER_MODE=worker_mode,
        CREDIT_LEDGER_SIGNER_CACHE_SECONDS="0",
        CREDIT_LEDGER_LOG_LEVEL="WARNING",
        **{f"CREDIT_LEDGER_{name.upper()}": value for name, value in settings.items()},
    )
    with (data_dir / "node.log").open("ab") as log:
        process = subprocess.Popen(
            [*CLI, "node", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=data_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    node = NodeServer(region, f"http://127.0.0.1:{port}", data_dir, process)
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"node {region} exited:\n{node.log_tail()}")
        try:
            health = httpx.get(f"{node.url}/v1/health", timeout=2)
            if health.status_code == 200 and health.json()["status"] == "ok":
                return node
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            node.stop()
            raise RuntimeError(f"node {region} not healthy:\n{node.log_tail()}")
        time.sleep(0.2)


def expected_import(path: Path, region: int) -> tuple[dict[int, tuple[str, str]], dict[str, int]]:
    """What importing the JSON Lines file ``path`` once into ``region``'s node must give.

    Returns the rejects, line -> (field, reason) as the real record parser decides, and
    record key -> latest version the node must then hold, simulating the node's rules: a
    new record is version 1 and an identical resubmission a no-op; a correction adds a
    version unless identical to the current active version; revoking adds a version unless
    the record is revoked already.
    """
    rejects: dict[int, tuple[str, str]] = {}
    state: dict[str, tuple[int, bytes, bool]] = {}  # key -> (version, canonical, revoked)
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except ValueError:
                rejects[line_no] = ("", "not valid JSON")
                continue
            op = item.get("op", "create")
            record = item.get("record", item) if "op" in item else item
            if op == "revoke":
                record_key = ledger.record_key_of(record).hex()
                current = state.get(record_key)
                assert current is not None, f"line {line_no} revokes an unknown record"
                if not current[2]:
                    state[record_key] = (current[0] + 1, current[1], True)
                continue
            try:
                parsed = ledger.parse_record(record)
            except ledger.RecordError as e:
                assert op == "create", f"line {line_no}: the generator's {op} is invalid"
                rejects[line_no] = (e.field, e.reason)
                continue
            if parsed.region != region:
                rejects[line_no] = ("region", f"record of region {parsed.region}")
                continue
            record_key = ledger.record_key_of(parsed).hex()
            canonical = parsed.canonical_bytes()
            current = state.get(record_key)
            if op == "create":
                if current is None:
                    state[record_key] = (1, canonical, False)
                continue
            assert current is not None, f"line {line_no} corrects an unknown record"
            if current[2] or canonical != current[1]:
                state[record_key] = (current[0] + 1, canonical, False)
    return rejects, {k: v[0] for k, v in state.items()}


def read_rejects(path: Path) -> list[tuple[int, str, str]]:
    """The rows of a rejects file (row, field, reason)."""
    import csv

    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["row", "field", "reason"], rows[:1]
    return [(int(r[0]), r[1], r[2]) for r in rows[1:]]
