"""``credit-ledger governance`` (Consortium proposals on chain) and ``keystore new``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from node_api.cli.common import (
    CliError,
    DeploymentFile,
    ExitCode,
    JsonFlag,
    RpcUrl,
    out,
    print_json,
)

__all__ = ["governance_app", "keystore_app"]

governance_app = typer.Typer(
    help="Consortium governance on chain: regions, signers, auditors and the threshold change "
    "only by proposals that enough regions approve.",
    no_args_is_help=True,
)
keystore_app = typer.Typer(
    help="Encrypted signer keys (eth-account keystores).", no_args_is_help=True
)

KINDS = {
    "add-region": "ADD_REGION",
    "remove-region": "REMOVE_REGION",
    "add-signer": "ADD_SIGNER",
    "remove-signer": "REMOVE_SIGNER",
    "set-threshold": "SET_THRESHOLD",
    "add-auditor": "ADD_AUDITOR",
    "remove-auditor": "REMOVE_AUDITOR",
}

SignerKeystore = Annotated[
    Path | None,
    typer.Option(
        "--signer-keystore",
        envvar="CREDIT_LEDGER_SIGNER_KEYSTORE",
        help="Keystore of a signer of your region.",
    ),
]
SignerPasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--signer-password-file",
        envvar="CREDIT_LEDGER_SIGNER_PASSWORD_FILE",
        help="Password of the keystore.",
    ),
]
SignerKey = Annotated[
    str | None,
    typer.Option(
        "--signer-key",
        envvar="CREDIT_LEDGER_SIGNER_KEY",
        help="Raw private key (development only; prefer the environment variable).",
        show_default=False,
    ),
]
GasPrice = Annotated[
    int | None, typer.Option("--gas-price", min=0, help="Fixed gas price in wei (0: free gas).")
]


def _consortium(
    rpc_url: str,
    deployment_file: Path,
    *,
    keystore: Path | None = None,
    password_file: Path | None = None,
    key: str | None = None,
    gas_price: int | None = None,
) -> Any:
    from pydantic import SecretStr

    from ledger.chain import ChainClient, Deployment
    from ledger.errors import ChainError
    from node_api.config import Settings
    from node_api.keys import SignerConfigError, load_signer

    try:
        deployment = Deployment.load(deployment_file)
    except ChainError as e:
        raise CliError(str(e)) from e
    account = None
    if keystore or key:
        settings = Settings.model_construct(
            signer_keystore=keystore,
            signer_password_file=password_file,
            signer_key=SecretStr(key) if key else None,
        )
        try:
            account = load_signer(settings)
        except (SignerConfigError, ValueError) as e:
            raise CliError(f"signer key: {e}") from e
    client = ChainClient(rpc_url, account, chain_id=None, gas_price=gas_price)
    try:
        if client.chain_id != deployment.chain_id:
            raise CliError(
                f"{rpc_url} is chain {client.chain_id}; the deployment is for chain "
                f"{deployment.chain_id}",
                ExitCode.UNAVAILABLE,
            )
    except ChainError as e:
        raise CliError(f"cannot reach {rpc_url}: {e}", ExitCode.UNAVAILABLE) from e
    return deployment.consortium_client(client)


def _signing_consortium(
    rpc_url: str,
    deployment_file: Path,
    *,
    keystore: Path | None,
    password_file: Path | None,
    key: str | None,
    gas_price: int | None,
) -> Any:
    """``_consortium`` for a command that sends transactions: a signer key is required."""
    consortium = _consortium(
        rpc_url,
        deployment_file,
        keystore=keystore,
        password_file=password_file,
        key=key,
        gas_price=gas_price,
    )
    if consortium.client.account is None:
        raise CliError("a signer key is needed: --signer-keystore or CREDIT_LEDGER_SIGNER_KEY")
    return consortium


def _format_args(proposal: Any) -> str:
    try:
        return ", ".join(str(a) for a in proposal.args)
    except Exception:  # undecodable data: show it raw
        return "0x" + bytes(proposal.data).hex()


@governance_app.command("list")
def list_(
    rpc_url: RpcUrl = "http://127.0.0.1:8545",
    deployment_file: DeploymentFile = Path(".local/deployment.json"),
    as_json: JsonFlag = False,
) -> None:
    """Regions, signers' endpoints, threshold, auditors and every proposal."""
    consortium = _consortium(rpc_url, deployment_file)
    regions = consortium.active_regions()
    info = {
        "threshold": consortium.threshold(),
        "regions": [
            {
                "region": code,
                "name": consortium.region_name(code),
                "endpoint": consortium.endpoint_of(code),
                "signers": consortium.signer_count(code),
            }
            for code in regions
        ],
        "auditors": consortium.auditors(),
        "proposals": [],
    }
    now = int(time.time())
    for proposal_id in range(1, consortium.proposal_count() + 1):
        p = consortium.proposal(proposal_id)
        state = "executed" if p.executed else ("expired" if p.expires_at < now else "open")
        info["proposals"].append(
            {
                "id": p.id,
                "kind": p.kind.name.lower().replace("_", "-"),
                "args": _format_args(p),
                "proposer": p.proposer,
                "approvals": p.approvals,
                "state": state,
                "expires_at": p.expires_at,
            }
        )
    if as_json:
        print_json(info)
        return
    out.print(f"threshold: {info['threshold']} of {len(regions)} active regions")
    table = Table(title="regions")
    for column in ("region", "name", "signers", "endpoint"):
        table.add_column(column)
    for r in info["regions"]:
        table.add_row(str(r["region"]), r["name"], str(r["signers"]), r["endpoint"] or "-")
    out.print(table)
    out.print(f"auditors: {', '.join(info['auditors']) or 'none'}")
    if not info["proposals"]:
        out.print("no proposals")
        return
    table = Table(title="proposals")
    for column in ("id", "kind", "arguments", "approvals", "state"):
        table.add_column(column)
    for p in info["proposals"]:
        table.add_row(str(p["id"]), p["kind"], p["args"], str(p["approvals"]), p["state"])
    out.print(table)


@governance_app.command("propose")
def propose(
    kind: Annotated[str, typer.Argument(help=" | ".join(KINDS))],
    region: Annotated[int | None, typer.Option("--region", help="Region code.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name of a new region.")] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Signer or auditor address (0x...).")
    ] = None,
    threshold: Annotated[int | None, typer.Option("--threshold", min=1)] = None,
    rpc_url: RpcUrl = "http://127.0.0.1:8545",
    deployment_file: DeploymentFile = Path(".local/deployment.json"),
    signer_keystore: SignerKeystore = None,
    signer_password_file: SignerPasswordFile = None,
    signer_key: SignerKey = None,
    gas_price: GasPrice = None,
) -> None:
    """Propose a change; your region's approval is counted at once."""
    if kind not in KINDS:
        raise CliError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}", ExitCode.USAGE)

    def need(value: Any, option: str) -> Any:
        if value is None:
            raise CliError(f"{kind} needs {option}", ExitCode.USAGE)
        return value

    consortium = _signing_consortium(
        rpc_url,
        deployment_file,
        keystore=signer_keystore,
        password_file=signer_password_file,
        key=signer_key,
        gas_price=gas_price,
    )
    if kind == "add-region":
        result = consortium.propose_add_region(
            need(region, "--region"), need(name, "--name"), need(account, "--account")
        )
    elif kind == "remove-region":
        result = consortium.propose_remove_region(need(region, "--region"))
    elif kind == "add-signer":
        result = consortium.propose_add_signer(need(account, "--account"), need(region, "--region"))
    elif kind == "remove-signer":
        result = consortium.propose_remove_signer(
            need(account, "--account"), need(region, "--region")
        )
    elif kind == "set-threshold":
        result = consortium.propose_set_threshold(need(threshold, "--threshold"))
    elif kind == "add-auditor":
        result = consortium.propose_add_auditor(need(account, "--account"))
    else:
        result = consortium.propose_remove_auditor(need(account, "--account"))
    _print_outcome("proposal", result)


def _print_outcome(what: str, result: Any) -> None:
    out.print(
        f"{what} #{result.proposal_id}: {result.approvals} approval(s)"
        + (", executed" if result.executed else ", waiting for more regions")
        + f" (tx {result.tx.tx_hash}, block {result.tx.block_number})"
    )


@governance_app.command("approve")
def approve(
    proposal_id: Annotated[int, typer.Argument(help="Proposal id (see governance list).")],
    rpc_url: RpcUrl = "http://127.0.0.1:8545",
    deployment_file: DeploymentFile = Path(".local/deployment.json"),
    signer_keystore: SignerKeystore = None,
    signer_password_file: SignerPasswordFile = None,
    signer_key: SignerKey = None,
    gas_price: GasPrice = None,
) -> None:
    """Approve a proposal for your region; it executes once the threshold is met."""
    consortium = _signing_consortium(
        rpc_url,
        deployment_file,
        keystore=signer_keystore,
        password_file=signer_password_file,
        key=signer_key,
        gas_price=gas_price,
    )
    _print_outcome("proposal", consortium.approve(proposal_id))


@keystore_app.command("new")
def keystore_new(
    out_file: Annotated[Path, typer.Option("--out", help="Keystore file to create.")],
    password_file: Annotated[
        Path, typer.Option("--password-file", help="File holding the password.")
    ],
) -> None:
    """Create a new signer key in an encrypted keystore; print its address."""
    from eth_account import Account

    if out_file.exists():
        raise CliError(f"{out_file} exists; not overwriting a key")
    try:
        password = password_file.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as e:
        raise CliError(f"cannot read {password_file}: {e.strerror or e}") from e
    if len(password) < 12:
        raise CliError("use a password of at least 12 characters")
    account = Account.create()
    keystore = Account.encrypt(account.key, password)
    fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keystore, f)
    out.print(f"{account.address} (keystore {out_file})")
