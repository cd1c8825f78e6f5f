"""``credit-ledger node serve`` (a regional node under uvicorn) and ``node status``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from node_api.cli.common import (
    DEFAULT_NODE_URL,
    CliError,
    ExitCode,
    JsonFlag,
    NodeUrl,
    node_http,
    out,
    print_json,
    request,
)

__all__ = ["node_app"]

node_app = typer.Typer(help="Run or inspect a regional node.", no_args_is_help=True)


@node_app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    region: Annotated[int | None, typer.Option("--region", help="GB/T 2260 code.")] = None,
    rpc_url: Annotated[str | None, typer.Option("--rpc-url", help="Chain JSON-RPC URL.")] = None,
    deployment_file: Annotated[
        Path | None, typer.Option("--deployment-file", help="Deployment record.")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Node files.")] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="SQLAlchemy URL (SQLite default).")
    ] = None,
    signer_keystore: Annotated[
        Path | None, typer.Option("--signer-keystore", help="Encrypted signer keystore.")
    ] = None,
    signer_password_file: Annotated[
        Path | None, typer.Option("--signer-password-file", help="Password of the keystore.")
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option("--public-url", help="This node's URL for other regions (set on chain)."),
    ] = None,
    operator_keys_file: Annotated[
        Path | None, typer.Option("--operator-keys-file", help="Operator API keys, one a line.")
    ] = None,
    verifier_keys_file: Annotated[
        Path | None, typer.Option("--verifier-keys-file", help="Verifier API keys.")
    ] = None,
    auditor_keys_file: Annotated[
        Path | None, typer.Option("--auditor-keys-file", help="Auditor API keys.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Seal a batch at this many versions.")
    ] = None,
    batch_max_age_seconds: Annotated[
        float | None, typer.Option("--batch-max-age", help="…or when the oldest is this old.")
    ] = None,
    worker_mode: Annotated[
        str | None, typer.Option("--worker-mode", help="inprocess, external or off.")
    ] = None,
    log_level: Annotated[str | None, typer.Option("--log-level", help="INFO, DEBUG...")] = None,
    log_format: Annotated[str | None, typer.Option("--log-format", help="json or text.")] = None,
) -> None:
    """Serve a regional node (``node_api.main:app``) with uvicorn.

    Every setting also comes from its CREDIT_LEDGER_* environment variable (see the README's
    configuration table); a flag given here wins. API keys and a raw development signer key
    are taken from the environment only, so that they do not show in the process list.
    """
    import uvicorn
    from pydantic import ValidationError

    from node_api.config import Settings

    flags: dict[str, Any] = {
        "region": region,
        "rpc_url": rpc_url,
        "deployment_file": deployment_file,
        "data_dir": data_dir,
        "database_url": database_url,
        "signer_keystore": signer_keystore,
        "signer_password_file": signer_password_file,
        "public_url": public_url,
        "operator_keys_file": operator_keys_file,
        "verifier_keys_file": verifier_keys_file,
        "auditor_keys_file": auditor_keys_file,
        "batch_size": batch_size,
        "batch_max_age_seconds": batch_max_age_seconds,
        "worker_mode": worker_mode,
        "log_level": log_level,
        "log_format": log_format,
    }
    for name, value in flags.items():
        if value is not None:
            os.environ[f"CREDIT_LEDGER_{name.upper()}"] = str(value)
    try:
        settings = Settings()
        settings.api_keys()
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CliError(f"invalid setting {where}: {first['msg']}", ExitCode.USAGE) from e
    except OSError as e:
        raise CliError(f"cannot read an API key file: {e}") from e
    uvicorn.run(
        "node_api.main:app",
        host=host,
        port=port,
        log_level=(settings.log_level or "info").lower(),
        access_log=False,
        timeout_graceful_shutdown=30,
    )


@node_app.command("status")
def status(node: NodeUrl = DEFAULT_NODE_URL, as_json: JsonFlag = False) -> None:
    """Health of a node: chain, contracts, signer, database, anchoring pipeline."""
    with node_http(node, None, timeout=15) as http:
        response = request(http, "GET", "/v1/health", "health")
    try:
        health = response.json()
    except ValueError as e:
        raise CliError(f"{node} did not answer with JSON (HTTP {response.status_code})") from e
    if as_json:
        print_json(health)
    else:
        chain = health.get("chain") or {}
        worker = health.get("worker") or {}
        pipeline = health.get("pipeline") or {}
        out.print(f"node {node}: region {health.get('region')}, status {health.get('status')}")
        out.print(
            f"  chain     {chain.get('rpc_url')} reachable={chain.get('reachable')} "
            f"contracts_ok={chain.get('contracts_ok')} block={chain.get('block_number')}"
        )
        out.print(f"  signer    {chain.get('signer')} authorised={chain.get('signer_authorised')}")
        out.print(f"  database  {(health.get('database') or {}).get('url')}")
        out.print(f"  worker    mode={worker.get('mode')} blocked={worker.get('blocked')}")
        if pipeline:
            out.print(f"  pipeline  {pipeline}")
    if health.get("status") != "ok":
        raise typer.Exit(ExitCode.UNAVAILABLE)
