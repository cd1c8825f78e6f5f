"""What the CLI commands share: exit codes, the one-line error, consoles, node access options."""

from __future__ import annotations

import json
import os
import sys
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

__all__ = [
    "ExitCode",
    "CliError",
    "fail",
    "out",
    "err",
    "NodeUrl",
    "ApiKey",
    "Purpose",
    "JsonFlag",
    "RpcUrl",
    "DeploymentFile",
    "node_http",
    "error_body",
    "response_error",
    "print_json",
    "read_json_file",
]


class ExitCode(IntEnum):
    """Exit codes of every command; ``verify`` uses 3-7 for its verdicts."""

    OK = 0  # done; for verify: valid and current
    ERROR = 1  # the command could not do its job (unreadable file, node refused, ...)
    USAGE = 2  # bad arguments (reported by the argument parser)
    INVALID = 3  # verify: tampered, forged, malformed or of the wrong region;
    # import-package / integrity check: the report is not clean
    SUPERSEDED = 4  # verify: authentic, but a correction superseded this version
    REVOKED = 5  # verify: authentic, but the record was revoked later (credit repair...)
    UNANCHORED = 6  # verify: the receipt's batch is not on chain
    UNAVAILABLE = 7  # the chain or the node could not be reached (nothing was checked)
    INTERRUPTED = 130  # Ctrl-C


class CliError(Exception):
    """An error the CLI reports as one line on stderr, exiting with ``code``."""

    def __init__(self, message: str, code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str, code: ExitCode = ExitCode.ERROR) -> NoReturn:
    """Raise a CliError."""
    raise CliError(message, code)


def _width() -> int | None:
    # Not a terminal (pipes, CI logs): wide enough for 64-digit record keys in tables.
    return None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))


out = Console(width=_width(), soft_wrap=False, highlight=False)
err = Console(stderr=True, width=_width(), highlight=False)

NodeUrl = Annotated[
    str,
    typer.Option(
        "--node",
        envvar="CREDIT_LEDGER_NODE_URL",
        help="Base URL of a regional node.",
        show_default=True,
    ),
]
ApiKey = Annotated[
    str,
    typer.Option(
        "--api-key",
        envvar="CREDIT_LEDGER_API_KEY",
        help="API key of the node (operator, verifier or auditor, as the command needs).",
        show_default=False,
    ),
]
Purpose = Annotated[
    str,
    typer.Option(
        "--purpose",
        envvar="CREDIT_LEDGER_PURPOSE",
        help="X-Purpose header: why payloads are read (written to the node's access log).",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
RpcUrl = Annotated[
    str,
    typer.Option("--rpc-url", envvar="CREDIT_LEDGER_RPC_URL", help="JSON-RPC URL of the chain."),
]
DeploymentFile = Annotated[
    Path,
    typer.Option(
        "--deployment-file",
        envvar="CREDIT_LEDGER_DEPLOYMENT_FILE",
        help="Deployment record (chain id and contract addresses).",
    ),
]

DEFAULT_NODE_URL = "http://127.0.0.1:8000"


def node_http(
    node_url: str, api_key: str | None, *, purpose: str | None = None, timeout: float = 300.0
) -> Any:
    """An httpx client for a node, with the API key and purpose headers."""
    import httpx

    headers = {"User-Agent": "credit-ledger-cli"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if purpose:
        headers["X-Purpose"] = purpose
    return httpx.Client(base_url=node_url.rstrip("/"), headers=headers, timeout=timeout)


def error_body(response: Any) -> dict[str, Any] | None:
    """The JSON object of a node's error response, or None if it is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def response_error(response: Any, what: str) -> CliError:
    """A one-line CliError for a failed node response."""
    body = error_body(response)
    detail = response.text[:300].strip()
    if body is not None:
        if body.get("error") == "invalid_record":
            detail = f"invalid record: {body.get('field')}: {body.get('reason')}"
        else:
            detail = str(body.get("message") or body.get("reason") or body.get("error") or detail)
    code = ExitCode.UNAVAILABLE if response.status_code in (502, 503, 504) else ExitCode.ERROR
    return CliError(f"{what}: HTTP {response.status_code}: {detail}", code)


def request(client: Any, method: str, path: str, what: str, **kwargs: Any) -> Any:
    """Send one request; connection failures become a CliError (UNAVAILABLE)."""
    import httpx

    try:
        return client.request(method, path, **kwargs)
    except httpx.HTTPError as e:
        raise CliError(
            f"{what}: cannot reach the node at {client.base_url}: {e}", ExitCode.UNAVAILABLE
        ) from e


def print_json(value: Any) -> None:
    """Print JSON to stdout (plain, so it can be piped)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def read_json_file(path: Path, what: str) -> Any:
    """Parse a JSON file (``-`` is stdin); a CliError names the problem."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as e:
        raise CliError(f"cannot read {what} {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise CliError(f"{what} {path} is not UTF-8 text: {e}", ExitCode.INVALID) from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CliError(f"{what} {path} is not JSON: {e}", ExitCode.INVALID) from e
