"""Node-side commands: receipts, histories, entity status, exchange packages, integrity checks."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from node_api.cli.common import (
    DEFAULT_NODE_URL,
    ApiKey,
    CliError,
    ExitCode,
    JsonFlag,
    NodeUrl,
    Purpose,
    err,
    node_http,
    out,
    print_json,
    request,
    response_error,
)

__all__ = [
    "receipt",
    "history",
    "entity_status",
    "export",
    "import_package",
    "integrity_app",
    "print_history",
    "print_report",
    "report_is_clean",
]

integrity_app = typer.Typer(
    help="Integrity checks of other regions' data (operator or auditor key).",
    no_args_is_help=True,
)

OUTCOMES = (
    "verified",
    "superseded",
    "revoked",
    "tampered",
    "unanchored",
    "wrong_region",
    "missing",
)
_FAILURES = ("tampered", "unanchored", "wrong_region", "missing")


def _ok_json(response: Any, what: str, status: int = 200) -> Any:
    if response.status_code != status:
        raise response_error(response, what)
    return response.json()


def receipt(
    record_key: Annotated[str, typer.Argument(help="64 hex digits.")],
    node: NodeUrl = DEFAULT_NODE_URL,
    api_key: ApiKey = "",
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="Default: the latest.")
    ] = None,
    disclose: Annotated[
        bool, typer.Option("--disclose", help="A disclosure: with record and salt (not verifiers).")
    ] = False,
    purpose: Purpose = "receipt",
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Fetch the receipt (or disclosure) of an anchored record version from its node."""
    params: dict[str, Any] = {}
    if version is not None:
        params["version"] = version
    if disclose:
        params["disclose"] = "true"
    with node_http(node, api_key, purpose=purpose) as http:
        response = request(
            http, "GET", f"/v1/records/{record_key}/receipt", "receipt", params=params
        )
    body = _ok_json(response, "receipt")
    import json

    text = json.dumps(body, ensure_ascii=False, indent=2) + "\n"
    if out_file is None:
        sys.stdout.write(text)
        return
    out_file.write_text(text, encoding="utf-8")
    err.print(f"wrote the {'disclosure' if disclose else 'receipt'} to {out_file}")


def _when(item: dict[str, Any]) -> str:
    record = item.get("record") or {}
    return str(record.get("issued_at") or "")


def _time(seconds: Any) -> str:
    if not seconds:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(seconds)))


def _unverified(item: dict[str, Any]) -> str:
    """Why an item has no verdict: not anchored yet (its state), or the verification error."""
    state = item.get("state")
    if state and state != "anchored":
        return f"({state})"
    return str(item.get("verdict_error") or "unverified")


def print_history(body: dict[str, Any], *, limit: int | None = None) -> None:
    """A history (local or federated) as a table, by issue date."""
    items = sorted(
        body.get("timeline") or [],
        key=lambda i: (_when(i), i.get("region") or 0, i.get("record_key") or "", i.get("version")),
    )
    name = ""
    for item in items:
        data = (item.get("record") or {}).get("data") or {}
        name = name or data.get("enterprise_name", "")
    title = f"history of {body.get('uscc')} {name}".strip()
    if body.get("federated"):
        title += " across regions"
    table = Table(title=title)
    for column in ("issued", "region", "type", "document", "v", "status", "verdict", "anchored"):
        table.add_column(column, no_wrap=column in ("issued", "region", "v"))
    shown = items if limit is None else items[:limit]
    for item in shown:
        verdict = item.get("verdict") or {}
        table.add_row(
            _when(item),
            str(item.get("region") or ""),
            str(item.get("record_type") or ""),
            str(item.get("record_id") or ""),
            str(item.get("version") or ""),
            str(item.get("status") or ""),
            str(verdict.get("status") or _unverified(item)),
            _time(item.get("anchored_at")),
        )
    out.print(table)
    if limit is not None and len(items) > limit:
        out.print(f"... {len(items) - limit} more (use --json for everything)")
    regions = body.get("regions")
    if regions:
        states = ", ".join(f"{r['region']}: {r['status']} ({r.get('items', 0)})" for r in regions)
        out.print(f"regions: {states}")
    if body.get("verdicts"):
        out.print(f"verdicts: {body['verdicts']}")


def history(
    uscc: Annotated[str, typer.Argument(help="Unified Social Credit Code of the entity.")],
    node: NodeUrl = DEFAULT_NODE_URL,
    api_key: ApiKey = "",
    federated: Annotated[
        bool, typer.Option("--federated", help="Merge every region's history (from chain).")
    ] = False,
    purpose: Purpose = "audit",
    as_json: JsonFlag = False,
) -> None:
    """Every version of every record of an entity, with chain verdicts (auditor key)."""
    params = {"federated": "true"} if federated else {}
    with node_http(node, api_key, purpose=purpose) as http:
        response = request(http, "GET", f"/v1/entities/{uscc}/history", "history", params=params)
    body = _ok_json(response, "history")
    if as_json:
        print_json(body)
    else:
        print_history(body)


def entity_status(
    uscc: Annotated[str, typer.Argument(help="Unified Social Credit Code of the entity.")],
    node: NodeUrl = DEFAULT_NODE_URL,
    api_key: ApiKey = "",
    as_json: JsonFlag = False,
) -> None:
    """Is the entity on the abnormality or serious-violation list now? (verifier key)

    Exit code 0 when not listed, 3 when listed.
    """
    with node_http(node, api_key) as http:
        response = request(http, "GET", f"/v1/entities/{uscc}/status", "status")
    body = _ok_json(response, "entity status")
    if as_json:
        print_json(body)
    else:
        lists = body.get("lists") or {}
        listed = [name for name, on in lists.items() if on]
        out.print(
            f"{uscc} at region {body.get('region')}: "
            + (f"LISTED on {', '.join(listed)}" if listed else "not listed")
        )
        for item in body.get("listings") or []:
            verdict = (item.get("verdict") or {}).get("status") or item.get("verdict_error")
            out.print(
                f"  {item['record_type']} v{item['version']} {item['status']}"
                f" current={item['current']} verdict={verdict}"
            )
    if body.get("listed"):
        raise typer.Exit(ExitCode.INVALID)


def export(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Package file to write.")],
    node: NodeUrl = DEFAULT_NODE_URL,
    api_key: ApiKey = "",
    from_seq: Annotated[int, typer.Option("--from-seq", min=0, help="First batch.")] = 0,
    to_seq: Annotated[
        int | None, typer.Option("--to-seq", min=0, help="Last batch (default: last anchored).")
    ] = None,
    purpose: Purpose = "exchange",
) -> None:
    """Download the node's exchange package (signed disclosures of its batches)."""
    import httpx

    params: dict[str, Any] = {"from_seq": from_seq}
    if to_seq is not None:
        params["to_seq"] = to_seq
    written = 0
    with node_http(node, api_key, purpose=purpose, timeout=600) as http:
        try:
            with http.stream("GET", "/v1/exchange/export", params=params) as response:
                if response.status_code != 200:
                    response.read()
                    raise response_error(response, "export")
                seq_range = response.headers.get("X-Credit-Ledger-Seq-Range", "?")
                tmp = out_file.with_name(out_file.name + ".part")
                with tmp.open("wb") as f:
                    for chunk in response.iter_bytes():
                        f.write(chunk)
                        written += len(chunk)
                tmp.replace(out_file)
        except httpx.HTTPError as e:
            raise CliError(f"export: cannot reach {node}: {e}", ExitCode.UNAVAILABLE) from e
    err.print(f"wrote {written:,} bytes (batches {seq_range}) to {out_file}")


def report_is_clean(report: dict[str, Any]) -> bool:
    """No tampered, unanchored, wrong-region or missing item, and no package problem."""
    counts = report.get("counts") or {}
    return report.get("status") == "completed" and not any(counts.get(k) for k in _FAILURES)


def print_report(report: dict[str, Any], *, title: str) -> None:
    """An integrity report's counts, batches and first failing items."""
    counts = report.get("counts") or {}
    table = Table(title=title)
    for outcome in OUTCOMES:
        table.add_column(outcome, justify="right")
    table.add_row(*(f"{counts.get(o, 0):,}" for o in OUTCOMES))
    out.print(table)
    batches = report.get("batches") or []
    endorsements: dict[str, int] = {}
    for batch in batches:
        state = (batch.get("endorsement") or {}).get("status") or "-"
        endorsements[state] = endorsements.get(state, 0) + 1
    endorsed = f"; endorsements {endorsements}" if set(endorsements) - {"-"} else ""
    out.print(
        f"report #{report.get('id')} {report.get('status')}: region {report.get('region')}, "
        f"batches {report.get('from_seq')}-{report.get('to_seq')}, "
        f"{report.get('disclosures', 0)} disclosures; clean={report_is_clean(report)}{endorsed}"
    )
    for problem in report.get("problems") or []:
        out.print(f"  problem: {problem}")
    for item in (report.get("items") or [])[:5]:
        if item.get("outcome") in ("superseded", "revoked"):
            continue
        out.print(
            f"  {item.get('outcome')}: line {item.get('line')} seq {item.get('seq')} "
            f"index {item.get('index')}: {item.get('reason')}"
        )


def import_package(
    file: Annotated[Path, typer.Argument(help="Exchange package of another region.")],
    node: NodeUrl = DEFAULT_NODE_URL,
    api_key: ApiKey = "",
    endorse: Annotated[
        bool, typer.Option("--endorse", help="Endorse fully verified batches on chain.")
    ] = False,
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="Keep the authentic disclosures.")
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Have a node verify another region's package against the chain (operator key).

    Exit code 0 when the report is clean, 3 when something was tampered, unanchored, of the
    wrong region or missing, or the package was rejected.
    """
    if not file.is_file():
        raise CliError(f"no such file: {file}")
    report = post_package(node, api_key, file.read_bytes(), endorse=endorse, store=store)
    if as_json:
        print_json(report)
    else:
        print_report(report, title=f"import of {file.name} at {node}")
    if not report_is_clean(report):
        raise typer.Exit(ExitCode.INVALID)


def post_package(
    node: str, api_key: str, package: bytes, *, endorse: bool, store: bool
) -> dict[str, Any]:
    """POST a package to /v1/exchange/import; a rejected package returns its stored report."""
    params = {"endorse": str(endorse).lower(), "store": str(store).lower()}
    with node_http(node, api_key, timeout=900) as http:
        response = request(
            http,
            "POST",
            "/v1/exchange/import",
            "package import",
            params=params,
            content=package,
            headers={"Content-Type": "application/x-ndjson"},
        )
    if response.status_code == 422:
        body = response.json()
        report = body.get("report")
        if isinstance(report, dict):
            return report
    result: dict[str, Any] = _ok_json(response, "package import")
    return result


@integrity_app.command("check")
def integrity_check(
    region: Annotated[int, typer.Argument(help="Region whose batches to check.")],
    node: NodeUrl = DEFAULT_NODE_URL,
    api_key: ApiKey = "",
    from_seq: Annotated[int | None, typer.Option("--from-seq", min=0)] = None,
    to_seq: Annotated[int | None, typer.Option("--to-seq", min=0)] = None,
    store: Annotated[bool, typer.Option("--store", help="Keep the disclosures.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Have a node pull a region's package from its registered endpoint and verify it.

    Exit code 0 when clean, 3 when not, 7 when the region's node could not be reached.
    """
    body: dict[str, Any] = {"region": region, "store": store}
    if from_seq is not None:
        body["from_seq"] = from_seq
    if to_seq is not None:
        body["to_seq"] = to_seq
    with node_http(node, api_key, timeout=900) as http:
        response = request(http, "POST", "/v1/integrity/check", "integrity check", json=body)
    if response.status_code != 200:
        error = response_error(response, "integrity check")
        if response.status_code in (502, 503, 504):  # 502: the region's node (peer_unavailable)
            error.code = ExitCode.UNAVAILABLE
        raise error
    report = response.json()
    if as_json:
        print_json(report)
    else:
        print_report(report, title=f"integrity check of region {region} by {node}")
    if not report_is_clean(report):
        raise typer.Exit(ExitCode.INVALID)


@integrity_app.command("reports")
def integrity_reports(
    node: NodeUrl = DEFAULT_NODE_URL,
    api_key: ApiKey = "",
    region: Annotated[int | None, typer.Option("--region")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Stored integrity reports (imports and checks), newest first."""
    params: dict[str, Any] = {"limit": limit}
    if region is not None:
        params["region"] = region
    with node_http(node, api_key) as http:
        response = request(http, "GET", "/v1/integrity/reports", "reports", params=params)
    body = _ok_json(response, "reports")
    if as_json:
        print_json(body)
        return
    table = Table(title=f"integrity reports at {node}")
    for column in ("id", "kind", "status", "region", "seqs", *OUTCOMES):
        table.add_column(column)
    for report in body.get("reports") or []:
        counts = report.get("counts") or report
        table.add_row(
            str(report.get("id")),
            str(report.get("kind")),
            str(report.get("status")),
            str(report.get("region")),
            f"{report.get('from_seq')}-{report.get('to_seq')}",
            *(str(counts.get(o, "")) for o in OUTCOMES),
        )
    out.print(table)
