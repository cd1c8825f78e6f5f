"""Helpers for tests, demos and benchmarks: sample records, a local consortium on anvil, and
nodes and workers as real processes.

Development only: a local consortium uses the well-known development keys.
"""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import ledger

__all__ = [
    "REGIONS",
    "sample_uscc",
    "sample_record",
    "LocalConsortium",
    "start_local_consortium",
    "node_environment",
    "NodeProcess",
    "WorkerProcess",
]

_REPO = Path(__file__).resolve().parents[1]

REGIONS = {110000: "Beijing", 120000: "Tianjin", 130000: "Hebei"}

_counter = itertools.count(1)

_SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "registration": {
        "enterprise_name": "北京示例科技有限公司",
        "legal_representative": "张三",
        "entity_type": "limited_liability_company",
        "established_on": "2015-03-18",
        "address": "北京市海淀区中关村大街1号",
        "business_scope": "技术开发、技术咨询",
        "registered_capital_fen": 100000000,
    },
    "administrative_penalty": {
        "decision_number": "京市监罚〔2024〕101号",
        "violation": "虚假宣传",
        "legal_basis": "《中华人民共和国反不正当竞争法》第八条",
        "penalty_kinds": ["fine"],
        "amount_fen": 5000000,
        "decision_date": "2024-04-02",
        "authority": "北京市市场监督管理局",
    },
    "business_abnormality": {
        "reason": "annual_report_not_filed",
        "listing_authority": "北京市市场监督管理局",
        "listed_on": "2024-07-01",
    },
    "serious_violation": {
        "reason": "提交虚假材料取得公司登记",
        "listing_authority": "北京市市场监督管理局",
        "listed_on": "2024-08-15",
    },
    "credit_risk_class": {"risk_class": "B", "assessed_at": "2024-06-30"},
}


def sample_uscc(region: int = 110000, n: int | None = None) -> str:
    """A valid USCC registered in ``region`` (unique per call unless ``n`` is given)."""
    number = next(_counter) if n is None else n
    return ledger.make_uscc(region, f"{number % 10**9:09d}")


def sample_record(
    region: int = 110000,
    uscc: str | None = None,
    record_type: str = "business_abnormality",
    record_id: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    """A valid record JSON object; ``data`` overrides payload fields."""
    return {
        "schema": "credit-ledger/record/v1",
        "region": region,
        "uscc": uscc or sample_uscc(region),
        "record_type": record_type,
        "record_id": record_id or f"DOC-{secrets.token_hex(6)}",
        "issued_by": "北京市市场监督管理局",
        "issued_at": "2024-09-01",
        "data": {**_SAMPLE_DATA[record_type], **data},
    }


@dataclass
class LocalConsortium:
    """An anvil chain with Consortium and CreditAnchor deployed for the three pilot regions.

    Signers: ``dev_keys[1]`` Beijing, ``[2]`` Tianjin, ``[3]`` Hebei; ``[0]`` deployed.
    """

    node: Any  # ledger.chain.localnode.LocalNode
    deployment: Any  # ledger.chain.Deployment
    deployment_file: Path

    @property
    def rpc_url(self) -> str:
        """JSON-RPC URL of the chain."""
        return str(self.node.rpc_url)

    @property
    def keys(self) -> tuple[str, ...]:
        """Development private keys."""
        return tuple(self.node.dev_keys)

    def signer_key(self, region: int) -> str:
        """Private key of the founding signer of ``region``."""
        return self.keys[1 + list(REGIONS).index(region)]

    def client(self, key: str | None = None) -> Any:
        """A ChainClient signing with ``key`` (read-only without)."""
        from ledger.chain import ChainClient

        return ChainClient(self.rpc_url, key, chain_id=self.deployment.chain_id)

    def anchor(self, key: str | None = None) -> Any:
        """An AnchorClient."""
        return self.deployment.anchor_client(self.client(key))

    def consortium(self, key: str | None = None) -> Any:
        """A ConsortiumClient."""
        return self.deployment.consortium_client(self.client(key))

    def stop(self) -> None:
        """Stop the chain."""
        self.node.stop()


def start_local_consortium(
    directory: Path, *, kind: str = "anvil", threshold: int = 2, state_dir: Path | None = None
) -> LocalConsortium:
    """Start a chain, deploy the contracts, and write ``directory/deployment.json``."""
    from ledger.chain import ChainClient, deploy_contracts
    from ledger.chain.localnode import LocalNode

    node = LocalNode(kind, state_dir=state_dir).start()  # type: ignore[arg-type]
    try:
        keys = node.dev_keys
        from eth_account import Account

        signers = [Account.from_key(keys[1 + i]).address for i in range(len(REGIONS))]
        with ChainClient(node.rpc_url, keys[0]) as client:
            deployment = deploy_contracts(
                client, list(REGIONS), list(REGIONS.values()), signers, threshold
            )
        path = Path(directory) / "deployment.json"
        deployment.save(path)
    except BaseException:
        node.stop()
        raise
    return LocalConsortium(node=node, deployment=deployment, deployment_file=path)


def node_environment(
    consortium: LocalConsortium, data_dir: Path, region: int = 110000, **settings: object
) -> dict[str, str]:
    """Environment of a node or worker process of ``region`` on ``consortium``.

    This process's environment without its CREDIT_LEDGER_* variables (a developer's shell
    must not leak into a test node), then the chain, region, data directory and signer key,
    then ``settings`` as ``CREDIT_LEDGER_<NAME>`` (``worker_mode="off"`` and so on).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_LEDGER_")}
    env.update(
        {
            "PYTHONPATH": str(_REPO),
            "CREDIT_LEDGER_RPC_URL": consortium.rpc_url,
            "CREDIT_LEDGER_DEPLOYMENT_FILE": str(consortium.deployment_file),
            "CREDIT_LEDGER_REGION": str(region),
            "CREDIT_LEDGER_DATA_DIR": str(data_dir),
            "CREDIT_LEDGER_SIGNER_KEY": consortium.signer_key(region),
        }
    )
    env.update({f"CREDIT_LEDGER_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class _ProcessGroup:
    """A command run from the repository as its own process group, output appended to ``log``.

    Its own group, so a signal reaches everything the command started, and a SIGKILL is
    what a power cut or the OOM killer would do to the whole service.
    """

    stop_timeout = 30.0

    def __init__(self, command: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                list(command), cwd=_REPO, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        """Process id (and process group id)."""
        return self.process.pid

    def tail(self, chars: int = 4000) -> str:
        """The end of the process log."""
        return self.log.read_text(errors="replace")[-chars:]

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process group, unless the process has exited."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    def wait_exit(self, timeout: float = 60.0) -> int:
        """Wait for the process to exit on its own (a crash point); its exit code."""
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the process group, as a power cut would; wait for it."""
        self.signal(signal.SIGKILL)
        self.process.wait(30)

    def _terminate(self) -> int:
        """SIGCONT (a stopped process cannot act on SIGTERM), SIGTERM, SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                return self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
        return self.process.wait(30)


class NodeProcess(_ProcessGroup):
    """``python -m uvicorn node_api.main:app`` as its own process group, configured by
    environment only (``env``, e.g. from :func:`node_environment`).

    ``http`` is a client of the node with ``headers``; unless ``wait`` is false, the
    constructor returns once ``GET /v1/health`` answers 200.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        log: Path,
        *,
        port: int | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        uvicorn_args: Sequence[str] = (),
        wait: bool = True,
        ready_timeout: float = 120.0,
    ) -> None:
        from ledger.chain.localnode import free_port

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [sys.executable, "-m", "uvicorn", "node_api.main:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", *uvicorn_args],
            env,
            log,
        )  # fmt: skip
        self.http = httpx.Client(base_url=self.url, headers=dict(headers or {}), timeout=timeout)
        if wait:
            self.wait_ready(ready_timeout)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until /v1/health answers 200; RuntimeError with the log's end if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited at start:\n{self.tail()}")
            try:
                if self.http.get("/v1/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node did not start in {timeout:g} s:\n{self.tail()}")

    def health(self) -> dict[str, Any]:
        """GET /v1/health."""
        body: dict[str, Any] = self.http.get("/v1/health").json()
        return body

    def wait_anchored(self, timeout: float = 180.0, poll: float = 0.1) -> dict[str, Any]:
        """Wait until nothing is pending and every sealed batch is on chain; the health report.

        RuntimeError at once if the worker reports itself blocked (that needs an operator,
        waiting cannot help), or after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        health: dict[str, Any] = {}
        while True:
            try:
                health = self.health()
            except httpx.HTTPError:
                pass  # restarting, or too busy to answer: ask again
            else:
                pipeline = health.get("pipeline") or {}
                worker = health.get("worker") or {}
                if worker.get("blocked"):
                    raise RuntimeError(f"anchoring is blocked: {worker}")
                if (
                    pipeline.get("pending_versions") == 0
                    and pipeline.get("anchoring_lag_seconds") == 0
                ):
                    return health
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all anchored in {timeout:g} s: {health}\n{self.tail()}")
            time.sleep(poll)

    def stop(self) -> None:
        """Clean shutdown (SIGTERM), SIGKILL if it hangs after ``stop_timeout`` seconds."""
        self.http.close()
        self._terminate()


class WorkerProcess(_ProcessGroup):
    """``python -m node_api.worker`` (the external anchoring worker) as its own process group,
    logging to ``data_dir/<name>.log``."""

    stop_timeout = 60.0

    def __init__(self, data_dir: Path, env: Mapping[str, str], name: str = "worker") -> None:
        super().__init__([sys.executable, "-m", "node_api.worker"], env, data_dir / f"{name}.log")

    def stop(self) -> int:
        """SIGCONT then SIGTERM, SIGKILL if it hangs; the exit code."""
        return self._terminate()
