"""Run the local consortium: a persistent local chain with Consortium and CreditAnchor deployed.

    python scripts/consortium.py up [--chain anvil|ganache] [--detach]
    python scripts/consortium.py status
    python scripts/consortium.py down

State lives in .local/ (ignored by git). Running `up` again reuses the chain state and the
deployment recorded in .local/deployment.json instead of deploying again.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ledger.chain.localnode import LocalNode, dev_keys, rpc_call  # noqa: E402
from ledger.errors import LedgerError  # noqa: E402

FOUNDING_REGIONS = (
    (110000, "北京市 Beijing"),
    (120000, "天津市 Tianjin"),
    (130000, "河北省 Hebei"),
)
THRESHOLD = 2
LOCAL_DIR = Path(os.environ.get("CREDIT_LEDGER_LOCAL_DIR", REPO_ROOT / ".local")).resolve()
CHAIN_DIR = LOCAL_DIR / "chain"
NODE_FILE = CHAIN_DIR / "node.json"
DEPLOYMENT_FILE = LOCAL_DIR / "deployment.json"


def _shown(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _running_chain() -> dict[str, object] | None:
    """The chain started by an earlier `up`, if its process is alive and answering."""
    try:
        info: dict[str, object] = json.loads(NODE_FILE.read_text())
        os.kill(int(str(info["pid"])), 0)
        rpc_call(str(info["rpc_url"]), "eth_chainId", timeout=2)
    except (OSError, ValueError, KeyError, LedgerError):
        return None
    return info


def _ensure_deployment(rpc_url: str) -> tuple[object, bool]:
    """Reuse the recorded deployment when its code is on this chain, else deploy anew."""
    from ledger.chain.client import ChainClient
    from ledger.chain.deploy import Deployment, deploy_contracts

    keys = dev_keys()
    client = ChainClient(rpc_url, keys[0])
    if DEPLOYMENT_FILE.is_file():
        deployment = Deployment.load(DEPLOYMENT_FILE)
        try:
            deployment.verify_on_chain(client)
            return deployment, True
        except LedgerError as e:
            print(f"recorded deployment not usable on this chain ({e}); deploying again")
    from eth_account import Account

    signers = [Account.from_key(k).address for k in keys[1 : 1 + len(FOUNDING_REGIONS)]]
    deployment = deploy_contracts(
        client,
        regions=[code for code, _ in FOUNDING_REGIONS],
        names=[name for _, name in FOUNDING_REGIONS],
        signers=signers,
        threshold=THRESHOLD,
    )
    deployment.verify_on_chain(client)
    deployment.save(DEPLOYMENT_FILE)
    return deployment, False


def _print_summary(rpc_url: str, kind: str, deployment: object, reused: bool) -> None:
    from eth_account import Account

    d = json.loads(DEPLOYMENT_FILE.read_text())
    keys = dev_keys()
    print()
    print("credit-ledger local consortium")
    print(f"  chain            {kind} at {rpc_url} (chain id {d['chain_id']})")
    print(f"  chain state      {_shown(CHAIN_DIR)}/")
    print(f"  deployment file  {_shown(DEPLOYMENT_FILE)} ({'reused' if reused else 'new'})")
    print(f"  Consortium       {d['consortium']}")
    print(f"  CreditAnchor     {d['anchor']}")
    print(f"  deployed at      block {d['deployed_block']}")
    print(f"  threshold        {THRESHOLD} of {len(FOUNDING_REGIONS)} regions")
    for i, (code, name) in enumerate(FOUNDING_REGIONS, start=1):
        print(
            f"  region {code}    {name}: "
            f"signer {Account.from_key(keys[i]).address} (dev account #{i})"
        )
    print("  dev keys         the standard 'test test ... junk' mnemonic (development only)")


def cmd_up(args: argparse.Namespace) -> int:
    """Start (or reuse) the chain, deploy (or reuse) the contracts, print where things are."""
    CHAIN_DIR.mkdir(parents=True, exist_ok=True)
    existing = _running_chain()
    node: LocalNode | None = None
    if existing:
        rpc_url, kind = str(existing["rpc_url"]), str(existing["kind"])
        print(f"reusing running {kind} at {rpc_url} (pid {existing['pid']})")
    else:
        node = LocalNode(args.chain, state_dir=CHAIN_DIR / args.chain, port=args.port)
        print(
            f"starting {args.chain} on {node.rpc_url} "
            f"with state in {_shown(CHAIN_DIR / args.chain)}"
        )
        node.start()
        rpc_url, kind = node.rpc_url, args.chain
        assert node._process is not None
        NODE_FILE.write_text(
            json.dumps({"kind": kind, "rpc_url": rpc_url, "pid": node._process.pid}, indent=1)
        )
    try:
        deployment, reused = _ensure_deployment(rpc_url)
    except LedgerError as e:
        print(f"error: {e}", file=sys.stderr)
        if node:
            node.stop()
        return 1
    _print_summary(rpc_url, kind, deployment, reused)
    if node is None or args.detach:
        if node is not None:
            atexit.unregister(node.stop)
        print("\nthe chain keeps running; stop it with `make down`")
        return 0
    print("\nrunning; Ctrl-C stops the chain (its state is kept for the next `make run`)")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stop and node.running:
        time.sleep(0.5)
    node.stop()
    NODE_FILE.unlink(missing_ok=True)
    print("stopped")
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    """Print the running chain and deployment, exit 1 if nothing runs."""
    info = _running_chain()
    if not info:
        print("no local chain is running (start one with `make run`)")
        return 1
    block = int(str(rpc_call(str(info["rpc_url"]), "eth_blockNumber")), 16)
    print(f"{info['kind']} at {info['rpc_url']} (pid {info['pid']}), block {block}")
    if DEPLOYMENT_FILE.is_file():
        print(DEPLOYMENT_FILE.read_text())
    return 0


def cmd_down(_: argparse.Namespace) -> int:
    """Stop a chain left running by `up --detach` (SIGINT, so anvil saves its state)."""
    info = _running_chain()
    if not info:
        print("no local chain is running")
        return 0
    pid = int(str(info["pid"]))
    os.killpg(pid, signal.SIGINT)
    for _ in range(150):
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    NODE_FILE.unlink(missing_ok=True)
    print(f"stopped {info['kind']} (pid {pid})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help=cmd_up.__doc__)
    up.add_argument("--chain", choices=["anvil", "ganache"], default="anvil")
    up.add_argument(
        "--port", type=int, default=int(os.environ.get("CREDIT_LEDGER_CHAIN_PORT", 8545))
    )
    up.add_argument("--detach", action="store_true", help="leave the chain running and return")
    sub.add_parser("status", help=cmd_status.__doc__)
    sub.add_parser("down", help=cmd_down.__doc__)
    args = parser.parse_args(argv)
    return {"up": cmd_up, "status": cmd_status, "down": cmd_down}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
