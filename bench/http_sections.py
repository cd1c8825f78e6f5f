"""Sections that run against node processes: scale import, integrity check, verification
through the API, and open-loop latency."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import OPERATOR_KEY, REPO, VERIFIER_KEY, load, pid_peak_rss_mib, self_peak_rss_mib
from bench.nodes import NodeProcess

BULK = 10_000  # records per POST /v1/records: the API's limit


def _bodies(path: Path, per_request: int) -> Any:
    """Request bodies of ``per_request`` records from a JSON Lines file, as raw bytes."""
    with path.open("rb") as lines:
        chunk: list[bytes] = []
        for line in lines:
            chunk.append(line.rstrip(b"\n"))
            if len(chunk) == per_request:
                yield b"[" + b",".join(chunk) + b"]"
                chunk = []
        if chunk:
            yield b"[" + b",".join(chunk) + b"]"


def scale_import(
    node: NodeProcess, path: Path, records: int, *, concurrency: int = 2, keep_keys: int = 2000
) -> dict[str, Any]:
    """Bulk-import a JSON Lines file over HTTP and wait until all of it is anchored."""
    keys: list[str] = []
    lock = threading.Lock()
    accepted = 0
    http = [node.client() for _ in range(concurrency)]
    local = threading.local()
    counter = iter(range(10**9))

    def post(body: bytes) -> None:
        nonlocal accepted
        if not hasattr(local, "client"):
            local.client = http[next(counter) % concurrency]
        response = local.client.post(
            "/v1/records", content=body, headers={"Content-Type": "application/json"}
        )
        response.raise_for_status()
        answer = response.json()
        with lock:
            accepted += answer["accepted"]
            if len(keys) < keep_keys:
                keys.extend(r["record_key"] for r in answer["records"][: keep_keys - len(keys)])

    load_before = load()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        # A bounded window: at most 2 x concurrency bodies in memory at once.
        window: list[Any] = []
        for body in _bodies(path, BULK):
            window.append(pool.submit(post, body))
            if len(window) >= 2 * concurrency:
                window.pop(0).result()
        for future in window:
            future.result()
    intake_done = time.perf_counter()
    with node.client() as client:
        # Seal the last partial batch now rather than after batch_max_age_seconds, as an
        # operator ends an import.
        client.post("/v1/anchor").raise_for_status()
    node.wait_anchored()
    anchored = time.perf_counter()
    for client in http:
        client.close()
    assert accepted == records, (accepted, records)
    figures = _import_figures(
        node, records, started, intake_done, anchored, self_peak_rss_mib(), load_before
    )
    via = "bench/http_sections.py bulk client, 2 requests in flight"
    return {"via": via, **figures, "keys": keys}


def _import_figures(
    node: NodeProcess,
    records: int,
    started: float,
    intake_done: float,
    anchored: float,
    importer_peak_rss_mib: float,
    load_before: list[float],
) -> dict[str, Any]:
    """The figures both importers report, from their clock readings and the node's state."""
    with node.client() as client:
        batches = client.get("/v1/batches", params={"limit": 1}).json()["batches"]
    elapsed = anchored - started
    return {
        "records": records,
        "seconds": elapsed,
        "intake_seconds": intake_done - started,
        "anchor_tail_seconds": anchored - intake_done,
        "records_per_second": records / elapsed,
        "intake_records_per_second": records / (intake_done - started),
        "database_bytes": node.database_bytes(),
        "node_peak_rss_mib": node.peak_rss_mib(),
        "importer_peak_rss_mib": importer_peak_rss_mib,
        "last_seq": batches[0]["seq"] if batches else None,
        "load_before": load_before,
        "load_after": load(),
    }


def cli_import(node: NodeProcess, path: Path, records: int) -> dict[str, Any]:
    """``credit-ledger import FILE --anchor`` (the CLI, as a bureau runs it), until anchored."""
    command = [
        sys.executable, "-m", "node_api.cli", "import", str(path), "--node", node.url,
        "--api-key", OPERATOR_KEY, "--anchor", "--quiet", "--json",
        "--checkpoint", str(path) + ".checkpoint.json", "--restart",
    ]  # fmt: skip
    load_before = load()
    peak = 0.0
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    while process.poll() is None:
        peak = max(peak, pid_peak_rss_mib(process.pid) or 0.0)
        time.sleep(0.5)
    output = process.stdout.read() if process.stdout else ""
    # Exit code 3: some rows were rejected (reported below), the rest imported.
    if process.returncode not in (0, 3):
        raise RuntimeError(f"credit-ledger import exited {process.returncode}: {output[-2000:]}")
    intake_done = time.perf_counter()
    node.wait_anchored()
    anchored = time.perf_counter()
    summary = json.loads(output)
    records = summary["counts"]["created"]
    figures = _import_figures(node, records, started, intake_done, anchored, peak, load_before)
    return {
        "via": "credit-ledger import FILE --anchor",
        **figures,
        "rows": summary["counts"]["rows"],
        "rejected": summary["counts"]["rejected"],
        "cli_summary": {k: v for k, v in summary.items() if k != "anchor"},
    }


def first_keys(node: NodeProcess, path: Path, count: int) -> list[str]:
    """Record keys of the first ``count`` records of a file (an idempotent resubmission)."""
    with path.open("rb") as lines:
        first = [line.rstrip(b"\n") for _, line in zip(range(count), lines, strict=False)]
    body = b"[" + b",".join(first) + b"]"
    with node.client() as client:
        response = client.post(
            "/v1/records", content=body, headers={"Content-Type": "application/json"}
        )
        response.raise_for_status()
        return [r["record_key"] for r in response.json()["records"]]


def integrity_check(
    checker: NodeProcess, region: int, from_seq: int, to_seq: int
) -> dict[str, Any]:
    """``POST /v1/integrity/check`` of ``region``'s batches; time and records/s."""
    load_before = load()
    with checker.auditor() as http:
        started = time.perf_counter()
        response = http.post(
            "/v1/integrity/check",
            json={"region": region, "from_seq": from_seq, "to_seq": to_seq},
        )
        elapsed = time.perf_counter() - started
    response.raise_for_status()
    report = response.json()
    counts = report["counts"]
    checked = sum(counts.values())
    return {
        "records": checked,
        "seconds": elapsed,
        "records_per_second": checked / elapsed,
        "counts": counts,
        "clean": report.get("clean"),
        "problems": report.get("problems", [])[:5],
        "checker_peak_rss_mib": checker.peak_rss_mib(),
        "load_before": load_before,
    }


def fetch_disclosures(node: NodeProcess, keys: list[str]) -> list[dict[str, Any]]:
    """Disclosures of ``keys`` from the node (operator)."""
    with node.client() as http:
        return [
            http.get(f"/v1/records/{k}/receipt", params={"disclose": "true"}).json() for k in keys
        ]


def verify_throughput(
    node: NodeProcess, materials: list[dict[str, Any]], requests: int, concurrency: int = 4
) -> dict[str, Any]:
    """Closed loop: ``concurrency`` clients posting disclosures to /v1/verify back to back."""
    bodies = [json.dumps(m).encode() for m in materials]
    clients = [node.verifier() for _ in range(concurrency)]
    for client in clients:  # warm the node's root cache and the connections
        for body in bodies[:5]:
            client.post("/v1/verify", content=body, headers={"Content-Type": "application/json"})
    statuses: dict[str, int] = {}

    def worker(index: int) -> None:
        client = clients[index]
        for i in range(index, requests, concurrency):
            answer = client.post(
                "/v1/verify", content=bodies[i % len(bodies)],
                headers={"Content-Type": "application/json"},
            ).json()  # fmt: skip
            statuses[answer["status"]] = statuses.get(answer["status"], 0) + 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    return {
        "requests": requests,
        "concurrency": concurrency,
        "seconds": elapsed,
        "disclosures_per_second": requests / elapsed,
        "statuses": statuses,
        "load": load(),
    }


def open_loop(
    node: NodeProcess,
    path: str,
    bodies_file: Path,
    rates: list[float],
    duration: float,
    out_dir: Path,
    *,
    key: str,
    unique: bool = False,
    stop_after_saturation: bool = True,
    always_up_to: float = 0.0,
) -> list[dict[str, Any]]:
    """Run the load generator process at each rate in turn; stop once saturated.

    Rates up to ``always_up_to`` (a target's rate) run even after saturation, so the
    report shows the target's rate measured rather than skipped.
    """
    results = []
    for rate in rates:
        out = out_dir / f"loadgen-{path.strip('/').replace('/', '-')}-{rate:g}.json"
        command = [
            sys.executable, "-m", "bench.loadgen", "--url", node.url, "--key", key,
            "--path", path, "--bodies", str(bodies_file), "--rate", str(rate),
            "--duration", str(duration), "--out", str(out), "--drain", str(max(30, duration)),
        ]  # fmt: skip
        if unique:
            command.append("--unique")
        load_before = load()
        subprocess.run(command, cwd=REPO, check=True)
        result = json.loads(out.read_text())
        result["load_before"] = load_before
        results.append(result)
        print(
            f"    {path} at {rate:g}/s: p50 {result['p50_ms'] or 0:.1f} ms, "
            f"p99 {result['p99_ms'] or 0:.1f} ms, "
            f"achieved {result['achieved_rate']:.1f}/s, errors {result['errors']}",
            flush=True,
        )
        saturated = result["achieved_rate"] < 0.9 * rate or result["unfinished"] > 0
        if saturated and stop_after_saturation and rate >= always_up_to:
            break
    return results


__all__ = [
    "BULK",
    "OPERATOR_KEY",
    "VERIFIER_KEY",
    "scale_import",
    "integrity_check",
    "fetch_disclosures",
    "verify_throughput",
    "open_loop",
]
