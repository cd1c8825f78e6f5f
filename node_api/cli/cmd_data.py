"""``credit-ledger generate`` (synthetic data) and ``credit-ledger import`` (bulk import)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from node_api.cli.common import (
    DEFAULT_NODE_URL,
    ApiKey,
    CliError,
    ExitCode,
    JsonFlag,
    NodeUrl,
    err,
    error_body,
    node_http,
    out,
    print_json,
    request,
    response_error,
)

__all__ = ["generate", "import_", "print_import_summary", "import_with_progress"]


def generate(
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="File to write (one region), or directory for region-<code>.<format> files "
            "(several regions). Default: stdout (one region only).",
        ),
    ] = None,
    count: Annotated[
        int,
        typer.Option(
            "--count", "-n", min=10, max=10_000_000, help="Rows in all (split over regions)."
        ),
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same data.")] = 0,
    region: Annotated[
        list[int] | None,
        typer.Option("--region", help="110000, 120000 or 130000 (repeat; default: all three)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    invalid_rate: Annotated[
        float, typer.Option("--invalid-rate", min=0, max=0.5, help="Share of invalid rows.")
    ] = 0.0,
    correction_rate: Annotated[
        float, typer.Option("--correction-rate", min=0, max=0.5, help="Share of corrections.")
    ] = 0.02,
    revocation_rate: Annotated[
        float, typer.Option("--revocation-rate", min=0, max=0.5, help="Share of revocations.")
    ] = 0.03,
) -> None:
    """Generate realistic synthetic credit records (deterministic by seed, streamed)."""
    from node_api.datagen import REGIONS, generate_items, split_count, write_items

    if fmt not in ("jsonl", "csv"):
        raise CliError(f"--format must be jsonl or csv, not {fmt!r}", ExitCode.USAGE)
    regions = list(dict.fromkeys(region or REGIONS))
    for code in regions:
        if code not in REGIONS:
            raise CliError(f"--region must be one of {sorted(REGIONS)}, not {code}", ExitCode.USAGE)
    counts = split_count(count, regions)
    rates: dict[str, Any] = {
        "invalid_rate": invalid_rate,
        "correction_rate": correction_rate,
        "revocation_rate": revocation_rate,
    }
    if len(regions) == 1 and (out_path is None or not out_path.is_dir()):
        code = regions[0]
        items = generate_items(code, counts[code], seed, **rates)
        if out_path is None:
            write_items(items, sys.stdout, fmt)
            return
        with _open_text(out_path) as f:
            write_items(items, f, fmt)
        err.print(f"wrote {counts[code]} rows of region {code} to {out_path}")
        return
    if out_path is None:
        raise CliError("several regions need --out DIRECTORY", ExitCode.USAGE)
    out_path.mkdir(parents=True, exist_ok=True)
    for code in regions:
        target = out_path / f"region-{code}.{fmt}"
        with _open_text(target) as f:
            write_items(generate_items(code, counts[code], seed, **rates), f, fmt)
        err.print(f"wrote {counts[code]} rows of region {code} to {target}")


def _open_text(path: Path) -> Any:
    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}") from e


def import_with_progress(options: Any, *, label: str = "", quiet: bool = False) -> Any:
    """Run an import with a Rich progress bar on stderr; return the summary."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from node_api.cli.importer import run_import

    size = options.path.stat().st_size if options.path.is_file() else 0
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[counts]}"),
        console=err,
        transient=False,
        disable=quiet,
    )

    def describe(counts: dict[str, int]) -> str:
        accepted = counts["created"] + counts["unchanged"] + counts["corrected"] + counts["revoked"]
        return f"rows {counts['rows']:,} accepted {accepted:,} rejected {counts['rejected']:,}"

    with progress:
        task = progress.add_task(label or f"import {options.path.name}", total=size, counts="")

        def on_progress(offset: int, counts: dict[str, int]) -> None:
            progress.update(task, completed=offset, counts=describe(counts))

        summary = run_import(options, progress=on_progress, log=lambda m: err.print(m))
        progress.update(task, completed=size, counts=describe(summary.counts))
    return summary


def print_import_summary(summary: Any) -> None:
    """The human summary of an import."""
    from rich.table import Table

    c = summary.counts
    table = Table(title=f"import of {summary.file} into region {summary.region}", min_width=60)
    table.add_column("rows", justify="right")
    table.add_column("accepted", justify="right")
    table.add_column("new", justify="right")
    table.add_column("already there", justify="right")
    table.add_column("corrected", justify="right")
    table.add_column("revoked", justify="right")
    table.add_column("rejected", justify="right")
    table.add_row(
        f"{c['rows']:,}",
        f"{summary.accepted:,}",
        f"{c['created']:,}",
        f"{c['unchanged']:,}",
        f"{c['corrected']:,}",
        f"{c['revoked']:,}",
        f"{c['rejected']:,}",
    )
    out.print(table)
    if summary.resumed_at_line:
        out.print(
            f"resumed at line {summary.resumed_at_line:,}: {summary.rows_this_run:,} rows sent "
            "in this run, the earlier ones per the checkpoint"
        )
    if c["rejected"]:
        out.print(f"rejected rows (row, field, reason): {summary.rejects_file}")
    rate = summary.rows_this_run / summary.seconds if summary.seconds else 0.0
    out.print(f"{summary.rows_this_run:,} rows in {summary.seconds:.1f} s ({rate:,.0f} rows/s)")


_ANCHOR_WAIT_SECONDS = 4 * 3600


def _anchor_all(node: str, api_key: str | None, *, quiet: bool) -> Any:
    """POST /v1/anchor until it answers; while the worker is busy anchoring, ask again.

    After a large import the worker may still be anchoring a backlog in one long cycle;
    the node then answers 503 "worker_busy" after waiting ANCHOR_WAIT_SECONDS for it.
    That is progress, not a failure: ask again (for up to four hours). Any other answer
    ends the wait.
    """
    deadline = time.monotonic() + _ANCHOR_WAIT_SECONDS
    with node_http(node, api_key, timeout=600) as http:
        while True:
            response = request(http, "POST", "/v1/anchor", "anchoring")
            body = error_body(response) if response.status_code == 503 else None
            busy = body is not None and body.get("reason") == "worker_busy"
            if not busy or time.monotonic() > deadline:
                break
            if not quiet:
                err.print("the anchoring worker is still busy with earlier batches; waiting")
            time.sleep(1)
    if response.status_code != 200:
        raise response_error(response, "anchoring")
    return response.json()


def import_(
    file: Annotated[Path, typer.Argument(help="JSON Lines or CSV file of records.")],
    node: NodeUrl = DEFAULT_NODE_URL,
    api_key: ApiKey = "",
    fmt: Annotated[str, typer.Option("--format", help="auto, jsonl or csv.")] = "auto",
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, max=10_000, help="New records per request.")
    ] = 10_000,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Rejects file (default FILE.rejects.csv).")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="Checkpoint file (default FILE.checkpoint.json)."),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore the checkpoint; start from line 1.")
    ] = False,
    anchor: Annotated[
        bool, typer.Option("--anchor", help="Seal and anchor everything pending afterwards.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Import records into a node in bulk (operator key); resumable, with a rejects file.

    Rows: a record object per line (JSON Lines), or CSV with the columns region, uscc,
    record_type, record_id, issued_by, issued_at, data (JSON) and optionally op (create,
    correct, revoke), reason, schema. Corrections and revocations in JSON Lines are
    {"op": "correct", "record": {...}} and {"op": "revoke", "record": {...}, "reason": "..."}.
    Exit code 0 when every row was accepted, 3 when some were rejected.
    """
    from node_api.cli.importer import ImportOptions

    options = ImportOptions(
        path=file,
        node_url=node,
        api_key=api_key,
        fmt=fmt,
        chunk_size=chunk_size,
        rejects_path=rejects,
        checkpoint_path=checkpoint,
        restart=restart,
    )
    summary = import_with_progress(options, quiet=quiet or as_json)
    anchored = None
    if anchor:
        anchored = _anchor_all(node, api_key, quiet=quiet or as_json)
    if as_json:
        print_json({**summary.to_json(), "anchor": anchored})
    else:
        print_import_summary(summary)
        if anchored is not None:
            batches = anchored.get("anchored") or []
            out.print(
                f"anchored {len(batches)} batch(es): "
                + ", ".join(f"seq {b['seq']} ({b['size']} versions)" for b in batches)
                if batches
                else "anchored: nothing was pending"
            )
    if summary.counts["rejected"]:
        raise typer.Exit(ExitCode.INVALID)
