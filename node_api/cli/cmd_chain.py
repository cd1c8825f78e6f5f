"""``credit-ledger chain up/down/status`` (the local consortium) and ``credit-ledger deploy``."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from node_api.cli.common import CliError, ExitCode, RpcUrl
from node_api.cli.localchain import (
    FOUNDING_REGIONS,
    THRESHOLD,
    LocalPaths,
    default_local_dir,
    ensure_deployment,
    running_chain,
    start_chain,
    stop_chain,
    stop_started,
    summary_lines,
)

__all__ = ["chain_app", "deploy"]

chain_app = typer.Typer(
    help="The local development consortium: a persistent anvil (or ganache) with the "
    "contracts deployed for Beijing, Tianjin and Hebei.",
    no_args_is_help=True,
)

_state: dict[str, LocalPaths] = {}


@chain_app.callback()
def _chain(
    local_dir: Annotated[
        Path | None,
        typer.Option(
            "--local-dir",
            envvar="CREDIT_LEDGER_LOCAL_DIR",
            help="State directory of the local consortium (default .local).",
        ),
    ] = None,
) -> None:
    """The local development consortium."""
    _state["paths"] = LocalPaths(local_dir.resolve() if local_dir else default_local_dir())


def _paths() -> LocalPaths:
    return _state.get("paths") or LocalPaths(default_local_dir())


@chain_app.command("up")
def up(
    chain: Annotated[str, typer.Option("--chain", help="anvil (default) or ganache.")] = "anvil",
    port: Annotated[
        int, typer.Option("--port", envvar="CREDIT_LEDGER_CHAIN_PORT", help="RPC port.")
    ] = 8545,
    detach: Annotated[
        bool, typer.Option("--detach", help="Leave the chain running and return.")
    ] = False,
) -> None:
    """Start (or reuse) the chain, deploy (or reuse) the contracts, print where things are."""
    if chain not in ("anvil", "ganache"):
        raise CliError(f"--chain must be anvil or ganache, not {chain!r}", ExitCode.USAGE)
    paths = _paths()
    existing = running_chain(paths)
    if existing:
        print(f"reusing running {existing.kind} at {existing.rpc_url} (pid {existing.pid})")
        running = existing
    else:
        print(f"starting {chain} on 127.0.0.1:{port} with state in {paths.chain_dir / chain}")
        running = start_chain(paths, chain, port)
    try:
        _, reused = ensure_deployment(paths, running.rpc_url)
    except BaseException:
        stop_started(paths, running)
        raise
    print("\n".join(summary_lines(paths, running, reused)), flush=True)
    if not running.started_here or detach:
        if running.node is not None:
            import atexit

            atexit.unregister(running.node.stop)
        print("\nthe chain keeps running; stop it with `credit-ledger chain down` (make down)")
        return
    print("\nrunning; Ctrl-C stops the chain (its state is kept for the next start)", flush=True)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stop and running.node.running:
        time.sleep(0.5)
    stop_started(paths, running)
    print("stopped")


@chain_app.command("status")
def status() -> None:
    """Print the running chain and the deployment; exit 1 if no chain runs."""
    from ledger.chain.localnode import rpc_call

    paths = _paths()
    info = running_chain(paths)
    if not info:
        print("no local chain is running (start one with `credit-ledger chain up`)")
        raise typer.Exit(ExitCode.ERROR)
    block = int(str(rpc_call(info.rpc_url, "eth_blockNumber")), 16)
    print(f"{info.kind} at {info.rpc_url} (pid {info.pid}), block {block}")
    if paths.deployment_file.is_file():
        print(paths.deployment_file.read_text(), end="")


@chain_app.command("down")
def down() -> None:
    """Stop a chain left running by ``chain up --detach`` (its state is kept)."""
    stopped = stop_chain(_paths())
    if stopped is None:
        print("no local chain is running")
        return
    print(f"stopped {stopped.kind} (pid {stopped.pid})")


def _parse_region(spec: str) -> tuple[int, str, str]:
    from eth_utils.address import to_checksum_address

    try:
        code, name, signer = spec.split(":", 2)
        return int(code), name, to_checksum_address(signer)
    except ValueError as e:
        raise CliError(
            f"--region expects CODE:NAME:FIRST_SIGNER_ADDRESS, got {spec!r}", ExitCode.USAGE
        ) from e


def _wait_for_rpc(rpc_url: str, seconds: float) -> None:
    from ledger.chain.localnode import rpc_call
    from ledger.errors import ChainError

    deadline = time.monotonic() + seconds
    while True:
        try:
            rpc_call(rpc_url, "eth_chainId", timeout=2)
            return
        except (OSError, ValueError, ChainError) as e:
            if time.monotonic() >= deadline:
                raise CliError(f"no chain answers at {rpc_url}: {e}", ExitCode.UNAVAILABLE) from e
            time.sleep(1)


def deploy(
    out: Annotated[Path, typer.Option("--out", help="Deployment file to write.")],
    rpc_url: RpcUrl = "http://127.0.0.1:8545",
    region: Annotated[
        list[str] | None,
        typer.Option(
            "--region",
            help="Founding region as CODE:NAME:FIRST_SIGNER_ADDRESS (repeat for each).",
        ),
    ] = None,
    threshold: Annotated[
        int | None, typer.Option("--threshold", min=1, help="Approvals that pass a proposal.")
    ] = None,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="The development consortium: Beijing, Tianjin, Hebei, threshold 2, the dev "
            "mnemonic's accounts #1-#3 as signers and #0 as deployer (local chains only).",
        ),
    ] = False,
    deployer_key: Annotated[
        str | None,
        typer.Option(
            "--deployer-key",
            envvar="CREDIT_LEDGER_DEPLOYER_KEY",
            help="Private key of the deploying account (better: the environment variable).",
            show_default=False,
        ),
    ] = None,
    deployer_keystore: Annotated[
        Path | None, typer.Option("--deployer-keystore", help="Encrypted keystore instead.")
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="Password of the keystore.")
    ] = None,
    gas_price: Annotated[
        int | None,
        typer.Option("--gas-price", min=0, help="Fixed gas price in wei (0 on free-gas QBFT)."),
    ] = None,
    reuse: Annotated[
        bool,
        typer.Option(
            "--reuse/--no-reuse",
            help="Keep an existing --out file whose contracts are on this chain.",
        ),
    ] = True,
    wait: Annotated[
        float, typer.Option("--wait", min=0, help="Seconds to wait for the RPC to answer.")
    ] = 0.0,
) -> None:
    """Deploy Consortium and CreditAnchor and write the deployment file."""
    from eth_account import Account

    from ledger.chain.client import ChainClient
    from ledger.chain.deploy import Deployment, deploy_contracts
    from ledger.chain.localnode import dev_keys

    if dev:
        if region or threshold:
            raise CliError("--dev fixes the regions and threshold; drop --region/--threshold")
        keys = dev_keys()
        regions = [
            (code, name, Account.from_key(keys[i]).address)
            for i, (code, name) in enumerate(FOUNDING_REGIONS, start=1)
        ]
        threshold = THRESHOLD
        deployer_key = deployer_key or keys[0]
    else:
        if not region or threshold is None:
            raise CliError("give every founding --region and the --threshold (or --dev)")
        regions = [_parse_region(spec) for spec in region]
    key: object = deployer_key
    if deployer_keystore is not None:
        if password_file is None:
            raise CliError("--deployer-keystore needs --password-file")
        try:
            password = password_file.read_text(encoding="utf-8").rstrip("\r\n")
            key = Account.decrypt(json.loads(deployer_keystore.read_text()), password)
        except (OSError, ValueError) as e:
            raise CliError(f"cannot decrypt {deployer_keystore}: {e}") from e
    if not key:
        raise CliError("no deployer key: set CREDIT_LEDGER_DEPLOYER_KEY or --deployer-keystore")
    if wait:
        _wait_for_rpc(rpc_url, wait)
    with ChainClient(rpc_url, key, gas_price=gas_price) as client:  # type: ignore[arg-type]
        if reuse and out.is_file():
            existing = Deployment.load(out)
            try:
                existing.verify_on_chain(client)
            except Exception as e:  # anything wrong with it: deploy anew
                print(f"{out} is not usable on this chain ({e}); deploying")
            else:
                print(f"reusing the deployment in {out}: CreditAnchor {existing.anchor}")
                return
        deployment = deploy_contracts(
            client,
            [r[0] for r in regions],
            [r[1] for r in regions],
            [r[2] for r in regions],
            threshold,
        )
        deployment.verify_on_chain(client)
    deployment.save(out)
    print(deployment.to_json(), end="")
