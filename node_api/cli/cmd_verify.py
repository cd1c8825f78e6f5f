"""``credit-ledger verify``: a receipt or disclosure against the chain, with no node involved."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from node_api.cli.common import (
    CliError,
    DeploymentFile,
    ExitCode,
    JsonFlag,
    RpcUrl,
    out,
    print_json,
    read_json_file,
)

__all__ = ["verify", "verdict_exit_code", "check_against_chain"]


def verdict_exit_code(status: str) -> ExitCode:
    """The exit code of a verdict status (see ``ExitCode``)."""
    return {
        "valid": ExitCode.OK,
        "superseded": ExitCode.SUPERSEDED,
        "revoked": ExitCode.REVOKED,
        "unanchored": ExitCode.UNANCHORED,
    }.get(status, ExitCode.INVALID)


def check_against_chain(material: Any, rpc_url: str, deployment_file: Path) -> Any:
    """The ledger.Verdict of a receipt or disclosure JSON object, read from the chain.

    CliError UNAVAILABLE when the chain cannot answer for the deployment (unreachable RPC,
    another chain, no contracts at the recorded addresses).
    """
    import ledger
    from ledger.chain import ChainClient, Deployment
    from ledger.errors import ChainError

    try:
        deployment = Deployment.load(deployment_file)
    except ChainError as e:
        raise CliError(str(e)) from e
    if not isinstance(material, dict):
        return ledger.verify_receipt({})  # malformed: a receipt is a JSON object
    client = ChainClient(rpc_url, None, request_timeout=10)
    try:
        try:
            deployment.verify_on_chain(client)
        except ChainError as e:
            raise CliError(f"cannot check against {rpc_url}: {e}", ExitCode.UNAVAILABLE) from e
        anchor = deployment.anchor_client(client)
        try:
            if "receipt" in material:
                return ledger.verify_disclosure(material, anchor)
            return ledger.verify_receipt(material, anchor)
        except ChainError as e:
            raise CliError(
                f"the chain at {rpc_url} failed during the check: {e}", ExitCode.UNAVAILABLE
            ) from e
    finally:
        client.close()


def _describe(verdict: Any) -> str:
    status = verdict.status.value
    if status == "valid":
        return "VALID and current: this is the record's latest version on chain"
    if status == "superseded":
        return (
            f"SUPERSEDED: authentic, but version {verdict.head_version} "
            f"({verdict.head_status}) is now the record's head"
        )
    if status == "revoked":
        return (
            f"REVOKED: authentic, but version {verdict.head_version} revoked the record "
            "(credit repair, delisting or withdrawal)"
        )
    if status == "unanchored":
        return "UNANCHORED: the receipt's batch is not on chain"
    if status == "malformed":
        return f"MALFORMED: {verdict.field}: {verdict.reason}"
    return f"INVALID at step {verdict.failed_step} ({verdict.step_name}): {verdict.reason}"


def verify(
    file: Annotated[Path, typer.Argument(help="Receipt or disclosure JSON file ('-': stdin).")],
    rpc_url: RpcUrl = "http://127.0.0.1:8545",
    deployment_file: DeploymentFile = Path(".local/deployment.json"),
    as_json: JsonFlag = False,
) -> None:
    """Verify a receipt or disclosure against the chain (DESIGN §5); no node is asked.

    Exit codes: 0 valid and current; 3 invalid (tampered, forged, malformed, wrong region);
    4 superseded by a correction; 5 revoked; 6 its batch is not anchored; 7 the chain could
    not be reached or holds no contracts at the deployment's addresses (nothing checked);
    1 other errors (unreadable file or deployment file).
    """
    material = read_json_file(file, "receipt")
    verdict = check_against_chain(material, rpc_url, deployment_file)
    code = verdict_exit_code(verdict.status.value)
    if as_json:
        print_json({**verdict.to_json(), "exit_code": int(code)})
    else:
        out.print(_describe(verdict))
        kind = "disclosure" if isinstance(material, dict) and "receipt" in material else "receipt"
        receipt = material.get("receipt", material) if isinstance(material, dict) else {}
        batch = receipt.get("batch") if isinstance(receipt, dict) else None
        if verdict.record_key:
            out.print(f"  {kind:<12}{file}")
            out.print(f"  record_key  {verdict.record_key}")
            out.print(f"  version     {verdict.version} ({verdict.leaf_status})")
        if isinstance(batch, dict):
            out.print(f"  batch       region {batch.get('region')}, seq {batch.get('seq')}")
        steps = ", ".join(str(s) for s in verdict.checked_steps) or "none"
        out.print(f"  steps ok    {steps} (1 record, 2 inclusion, 3 anchor, 4 currency)")
        if verdict.expected or verdict.computed:
            out.print(f"  expected    {verdict.expected}")
            out.print(f"  computed    {verdict.computed}")
    raise typer.Exit(code)
