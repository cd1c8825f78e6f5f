"""The root of the ``credit-ledger`` command: sub-commands, ``--debug`` and error reporting."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from node_api.cli import cmd_chain, cmd_data, cmd_governance, cmd_node, cmd_records, cmd_verify
from node_api.cli.common import CliError, ExitCode

__all__ = ["app", "main"]

app = typer.Typer(
    name="credit-ledger",
    help=(
        "Credit data shared between regions on a permissioned Ethereum ledger: run a local "
        "consortium, deploy the contracts, serve a regional node, import records in bulk, "
        "verify receipts against the chain, trace histories, govern the consortium."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug = {"on": bool(os.environ.get("CREDIT_LEDGER_DEBUG"))}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"credit-ledger {version('credit-ledger')}")
        except PackageNotFoundError:
            typer.echo("credit-ledger (not installed)")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")
    ] = False,
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Credit data shared between regions on a permissioned Ethereum ledger."""
    if debug:
        _debug["on"] = True


app.add_typer(cmd_chain.chain_app, name="chain")
app.command("deploy")(cmd_chain.deploy)
app.add_typer(cmd_node.node_app, name="node")
app.command("generate")(cmd_data.generate)
app.command("import")(cmd_data.import_)
app.command("receipt")(cmd_records.receipt)
app.command("verify")(cmd_verify.verify)
app.command("history")(cmd_records.history)
app.command("status")(cmd_records.entity_status)
app.add_typer(cmd_records.integrity_app, name="integrity")
app.command("export")(cmd_records.export)
app.command("import-package")(cmd_records.import_package)
app.add_typer(cmd_governance.governance_app, name="governance")
app.add_typer(cmd_governance.keystore_app, name="keystore")


@app.command("demo")
def _demo(
    count: Annotated[
        int,
        typer.Option(
            "--count",
            envvar="DEMO_COUNT",
            min=30,
            max=10_000_000,
            help="Rows of synthetic data over the three regions.",
        ),
    ] = 6000,
    seed: Annotated[int, typer.Option("--seed", envvar="DEMO_SEED", help="Data seed.")] = 2024,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            envvar="DEMO_EXIT",
            help="Do everything, print, stop the nodes and exit 0 (for CI).",
        ),
    ] = False,
    chain: Annotated[str, typer.Option("--chain", help="anvil or ganache.")] = "anvil",
    chain_port: Annotated[int, typer.Option("--chain-port", envvar="CREDIT_LEDGER_CHAIN_PORT")] = (
        8545
    ),
    node_ports: Annotated[
        str,
        typer.Option("--node-ports", help="Ports of the Beijing, Tianjin and Hebei nodes."),
    ] = "8110,8120,8130",
    local_dir: Annotated[
        str | None,
        typer.Option(
            "--local-dir",
            envvar="CREDIT_LEDGER_LOCAL_DIR",
            help="State directory (default .local).",
        ),
    ] = None,
) -> None:
    """The three-region demo: chain, three nodes, data, anchoring, exchange, tamper check."""
    from pathlib import Path

    from node_api.cli.demo import DemoOptions, run_demo

    try:
        ports = tuple(int(p) for p in node_ports.split(","))
    except ValueError:
        ports = ()
    if len(ports) != 3:
        raise CliError("--node-ports needs three ports, e.g. 8110,8120,8130", ExitCode.USAGE)
    run_demo(
        DemoOptions(
            count=count,
            seed=seed,
            once=once,
            chain=chain,
            chain_port=chain_port,
            node_ports=(ports[0], ports[1], ports[2]),
            local_dir=Path(local_dir).resolve() if local_dir else None,
        )
    )


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    name = type(error).__name__
    return f"{name}: {first}" if first else name


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (errors are one line on stderr)."""
    args = sys.argv[1:] if argv is None else argv
    if "--debug" in args:
        _debug["on"] = True
    try:
        app(args=args, prog_name="credit-ledger", standalone_mode=True)
    except SystemExit as e:
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except CliError as e:
        if _debug["on"]:
            raise
        sys.stdout.flush()
        sys.stderr.write(f"error: {e.message}\n")
        return int(e.code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return int(ExitCode.INTERRUPTED)
    except Exception as e:
        if _debug["on"]:
            raise
        from ledger.errors import ChainError, ContractError

        sys.stdout.flush()
        sys.stderr.write(f"error: {_describe(e)} (run with --debug for the traceback)\n")
        if isinstance(e, ChainError) and not isinstance(e, ContractError):
            return int(ExitCode.UNAVAILABLE)  # a revert is an answer; anything else: no chain
        return int(ExitCode.ERROR)
    return 0
