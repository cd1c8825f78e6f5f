"""The local consortium: a persistent dev chain with Consortium and CreditAnchor deployed.

Shared by ``credit-ledger chain up/down/status``, ``credit-ledger demo`` and
``scripts/consortium.py``. State lives in a local directory (``.local/`` by default, or
``$CREDIT_LEDGER_LOCAL_DIR``): ``chain/<kind>/`` holds the chain's state, ``chain/node.json``
the running chain process, ``deployment.json`` the contracts. Bringing the consortium up
again reuses a running chain, restarts a stopped one from its saved state, and reuses the
recorded deployment when its code is on the chain instead of deploying again.

Development only: the keys are those of the well-known ``test test … junk`` mnemonic.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import LedgerError

__all__ = [
    "FOUNDING_REGIONS",
    "THRESHOLD",
    "LocalPaths",
    "RunningChain",
    "default_local_dir",
    "running_chain",
    "start_chain",
    "ensure_deployment",
    "stop_chain",
    "summary_lines",
    "signer_key",
]

FOUNDING_REGIONS: tuple[tuple[int, str], ...] = (
    (110000, "北京市 Beijing"),
    (120000, "天津市 Tianjin"),
    (130000, "河北省 Hebei"),
)
THRESHOLD = 2


def default_local_dir() -> Path:
    """``$CREDIT_LEDGER_LOCAL_DIR``, else ``.local`` in the working directory."""
    return Path(os.environ.get("CREDIT_LEDGER_LOCAL_DIR") or ".local").resolve()


@dataclass(frozen=True)
class LocalPaths:
    """Where the local consortium keeps its state."""

    local_dir: Path

    @property
    def chain_dir(self) -> Path:
        """State of the chain processes (one subdirectory per chain kind)."""
        return self.local_dir / "chain"

    @property
    def node_file(self) -> Path:
        """Kind, RPC URL and pid of the chain started by ``up``."""
        return self.chain_dir / "node.json"

    @property
    def deployment_file(self) -> Path:
        """The deployment record of the contracts."""
        return self.local_dir / "deployment.json"


@dataclass
class RunningChain:
    """A local chain: started by this process (``node`` set) or found running."""

    kind: str
    rpc_url: str
    pid: int
    node: Any | None = None  # ledger.chain.localnode.LocalNode when started here

    @property
    def started_here(self) -> bool:
        """Whether this process started the chain (and so should stop it)."""
        return self.node is not None


def signer_key(region: int) -> str:
    """Private key of a founding region's development signer (dev accounts #1-#3)."""
    from ledger.chain.localnode import dev_keys

    codes = [code for code, _ in FOUNDING_REGIONS]
    return dev_keys()[1 + codes.index(region)]


def running_chain(paths: LocalPaths) -> RunningChain | None:
    """The chain started by an earlier ``up``, if its process is alive and answering."""
    from ledger.chain.localnode import rpc_call

    try:
        info: dict[str, object] = json.loads(paths.node_file.read_text())
        pid = int(str(info["pid"]))
        os.kill(pid, 0)
        rpc_call(str(info["rpc_url"]), "eth_chainId", timeout=2)
    except (OSError, ValueError, KeyError, LedgerError):
        return None
    return RunningChain(str(info["kind"]), str(info["rpc_url"]), pid)


def start_chain(paths: LocalPaths, kind: str = "anvil", port: int = 8545) -> RunningChain:
    """Reuse the running chain, or start ``kind`` on ``port`` from its saved state."""
    existing = running_chain(paths)
    if existing is not None:
        return existing
    from ledger.chain.localnode import LocalNode

    paths.chain_dir.mkdir(parents=True, exist_ok=True)
    node = LocalNode(kind, state_dir=paths.chain_dir / kind, port=port)  # type: ignore[arg-type]
    node.start()
    assert node._process is not None
    pid = node._process.pid
    paths.node_file.write_text(
        json.dumps({"kind": kind, "rpc_url": node.rpc_url, "pid": pid}, indent=1)
    )
    return RunningChain(kind, node.rpc_url, pid, node)


def ensure_deployment(
    paths: LocalPaths, rpc_url: str, *, log: Callable[[str], None] = print
) -> tuple[Any, bool]:
    """Reuse the recorded deployment when its code is on this chain, else deploy anew.

    Returns ``(Deployment, reused)``.
    """
    from eth_account import Account

    from ledger.chain.client import ChainClient
    from ledger.chain.deploy import Deployment, deploy_contracts
    from ledger.chain.localnode import dev_keys

    keys = dev_keys()
    with ChainClient(rpc_url, keys[0]) as client:
        if paths.deployment_file.is_file():
            deployment = Deployment.load(paths.deployment_file)
            try:
                deployment.verify_on_chain(client)
                return deployment, True
            except LedgerError as e:
                log(f"recorded deployment not usable on this chain ({e}); deploying again")
        signers = [Account.from_key(k).address for k in keys[1 : 1 + len(FOUNDING_REGIONS)]]
        deployment = deploy_contracts(
            client,
            regions=[code for code, _ in FOUNDING_REGIONS],
            names=[name for _, name in FOUNDING_REGIONS],
            signers=signers,
            threshold=THRESHOLD,
        )
        deployment.verify_on_chain(client)
    deployment.save(paths.deployment_file)
    return deployment, False


def stop_chain(paths: LocalPaths, timeout: float = 15.0) -> RunningChain | None:
    """Stop the chain recorded in ``node.json`` (SIGINT, so anvil saves its state)."""
    chain = running_chain(paths)
    if chain is None:
        paths.node_file.unlink(missing_ok=True)
        return None
    try:
        os.killpg(chain.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(chain.pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    else:
        try:
            os.killpg(chain.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    paths.node_file.unlink(missing_ok=True)
    return chain


def stop_started(paths: LocalPaths, chain: RunningChain) -> None:
    """Stop a chain this process started, keeping its state for the next start."""
    if chain.node is not None:
        chain.node.stop()
        paths.node_file.unlink(missing_ok=True)


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is inside it."""
    cwd = Path.cwd()
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)


def summary_lines(paths: LocalPaths, chain: RunningChain, reused: bool) -> list[str]:
    """What ``chain up`` prints: chain, state, deployment, contracts, regions and signers."""
    from eth_account import Account

    from ledger.chain.localnode import dev_keys

    d = json.loads(paths.deployment_file.read_text())
    keys = dev_keys()
    lines = [
        "",
        "credit-ledger local consortium",
        f"  chain            {chain.kind} at {chain.rpc_url} (chain id {d['chain_id']})",
        f"  chain state      {_shown(paths.chain_dir)}/",
        f"  deployment file  {_shown(paths.deployment_file)} ({'reused' if reused else 'new'})",
        f"  Consortium       {d['consortium']}",
        f"  CreditAnchor     {d['anchor']}",
        f"  deployed at      block {d['deployed_block']}",
        f"  threshold        {THRESHOLD} of {len(FOUNDING_REGIONS)} regions",
    ]
    for i, (code, name) in enumerate(FOUNDING_REGIONS, start=1):
        lines.append(
            f"  region {code}    {name}: "
            f"signer {Account.from_key(keys[i]).address} (dev account #{i})"
        )
    lines.append("  dev keys         the standard 'test test ... junk' mnemonic (development only)")
    return lines
