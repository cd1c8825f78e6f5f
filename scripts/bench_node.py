#!/usr/bin/env python3
"""Benchmark one regional node: bulk intake, verification latency, gas per anchored record.

Starts anvil with the contracts deployed, runs ``uvicorn node_api.main:app`` on SQLite with
the default batch size and in-process worker, and measures through HTTP:

* records/s accepted by ``POST /v1/records`` in bulk (10,000 records per request);
* p50/p99 of ``POST /v1/verify`` for receipts and for disclosures (against the chain);
* gas per anchored record at the default batch size, and gas per correction (head update);
* in process: sealing time of a 65,536-version batch.

Usage: ``.venv/bin/python scripts/bench_node.py [--requests 5] [--verify 1000]``.
Prints a JSON summary; with ``--out FILE`` also writes it there.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from ledger.chain.localnode import free_port  # noqa: E402
from node_api.testing import sample_record, start_local_consortium  # noqa: E402

OPERATOR_KEY = "bench-operator-key-0123456789abcdef"
VERIFIER_KEY = "bench-verifier-key-0123456789abcdef"


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _latency(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {
        "n": len(ms),
        "p50_ms": round(_percentile(ms, 0.50), 2),
        "p99_ms": round(_percentile(ms, 0.99), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "max_ms": round(max(ms), 2),
    }


def _start_node(data_dir: Path, consortium: Any, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_LEDGER_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "CREDIT_LEDGER_RPC_URL": consortium.rpc_url,
            "CREDIT_LEDGER_DEPLOYMENT_FILE": str(consortium.deployment_file),
            "CREDIT_LEDGER_DATA_DIR": str(data_dir),
            "CREDIT_LEDGER_SIGNER_KEY": consortium.signer_key(110000),
            "CREDIT_LEDGER_OPERATOR_KEYS": OPERATOR_KEY,
            "CREDIT_LEDGER_VERIFIER_KEYS": VERIFIER_KEY,
            "CREDIT_LEDGER_LOG_LEVEL": "WARNING",
        }
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir / "node.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "node_api.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("node exited at start")
        try:
            if httpx.get(f"{url}/v1/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("node did not start")


def _wait_anchored(http: httpx.Client, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipeline = http.get("/v1/health").json()["pipeline"]
        if pipeline["pending_versions"] == 0 and pipeline["anchoring_lag_seconds"] == 0:
            return
        time.sleep(0.25)
    raise SystemExit("anchoring did not finish")


def bench_intake(http: httpx.Client, requests: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """POST /v1/records with 10,000 records per request, one request at a time."""
    bodies = []
    all_records: list[dict[str, Any]] = []
    for _ in range(requests):
        batch = [sample_record() for _ in range(10_000)]
        all_records += batch
        bodies.append(json.dumps(batch, ensure_ascii=False).encode())
    http.post("/v1/records", json=[sample_record() for _ in range(100)])  # warm-up
    durations = []
    started = time.perf_counter()
    for body in bodies:
        t = time.perf_counter()
        response = http.post(
            "/v1/records", content=body, headers={"Content-Type": "application/json"}
        )
        response.raise_for_status()
        durations.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    return (
        {
            "records": 10_000 * requests,
            "records_per_request": 10_000,
            "seconds": round(elapsed, 2),
            "records_per_second": round(10_000 * requests / elapsed),
            "request_seconds": [round(d, 2) for d in durations],
            "mb_per_request": round(len(bodies[0]) / 1e6, 2),
        },
        all_records,
    )


def bench_verify(
    http: httpx.Client, verifier: httpx.Client, keys: list[str], n: int
) -> dict[str, Any]:
    """Sequential POST /v1/verify of receipts and of disclosures."""
    sample = random.sample(keys, min(200, len(keys)))
    receipts = [http.get(f"/v1/records/{k}/receipt").json() for k in sample]
    disclosures = [
        http.get(f"/v1/records/{k}/receipt", params={"disclose": "true"}).json() for k in sample
    ]
    results: dict[str, Any] = {}
    for name, materials in (("receipt", receipts), ("disclosure", disclosures)):
        for material in materials[:20]:  # warm the root cache and connections
            verifier.post("/v1/verify", json=material)
        samples = []
        for i in range(n):
            material = materials[i % len(materials)]
            t = time.perf_counter()
            response = verifier.post("/v1/verify", json=material)
            samples.append(time.perf_counter() - t)
            assert response.json()["status"] == "valid", response.text
        results[name] = _latency(samples)
    return results


def gas_per_record(http: httpx.Client) -> dict[str, Any]:
    """Gas of the anchored batches of default size."""
    batches = http.get("/v1/batches", params={"limit": 1000}).json()["batches"]
    full = [b for b in batches if b["size"] == 4096 and b["gas_used"]]
    per_record = [b["gas_used"] / b["size"] for b in full]
    return {
        "batch_size": 4096,
        "batches": len(full),
        "gas_per_batch": round(statistics.fmean(b["gas_used"] for b in full)) if full else None,
        "gas_per_record": round(statistics.fmean(per_record), 2) if per_record else None,
        "all_batches": [(b["seq"], b["size"], b["gas_used"]) for b in batches[:20]],
    }


def gas_per_correction(
    http: httpx.Client, records: list[dict[str, Any]], keys: list[str]
) -> dict[str, Any]:
    """Correct 256 records (one batch at the default head cap) and report its gas."""
    for record, key in zip(records[:256], keys[:256], strict=True):
        corrected = dict(record, data={**record["data"], "listed_on": "2024-07-31"})
        http.put(f"/v1/records/{key}", json=corrected).raise_for_status()
    result = http.post("/v1/anchor").json()
    batches = result["anchored"]
    gas = sum(b["gas_used"] for b in batches)
    size = sum(b["size"] for b in batches)
    return {
        "corrections": size,
        "batches": len(batches),
        "gas": gas,
        "gas_per_correction": round(gas / size),
    }


def bench_seal(versions: int = 65_536) -> dict[str, Any]:
    """In process: seal one batch of ``versions`` pending versions on SQLite."""
    from node_api.batches import seal_batch
    from node_api.db import COMPONENTS, Database, migrate
    from node_api.intake import prepare_records, submit_records

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/seal.db")
        migrate(db, COMPONENTS)
        for start in range(0, versions, 10_000):
            chunk = [sample_record() for _ in range(min(10_000, versions - start))]
            submit_records(db, b"s" * 32, prepare_records(chunk, 110000))
        t = time.perf_counter()
        with db.write() as conn:
            batch = seal_batch(conn, 110000, 0, versions, time.time())
        elapsed = time.perf_counter() - t
        db.dispose()
    assert batch is not None and batch.size == versions
    return {"versions": versions, "seconds": round(elapsed, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5, help="bulk requests of 10,000 records")
    parser.add_argument("--verify", type=int, default=1000, help="POST /v1/verify calls per kind")
    parser.add_argument("--skip-seal", action="store_true", help="skip the 65,536 sealing run")
    parser.add_argument("--out", type=Path, help="also write the JSON summary here")
    args = parser.parse_args()

    summary: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}}
    with tempfile.TemporaryDirectory(prefix="bench-node-") as tmp:
        consortium = start_local_consortium(Path(tmp))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = _start_node(Path(tmp) / "node", consortium, port)
        try:
            _wait(url, process)
            http = httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {OPERATOR_KEY}"}, timeout=600
            )
            verifier = httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {VERIFIER_KEY}"}, timeout=60
            )
            summary["intake"], records = bench_intake(http, args.requests)
            print(f"intake: {summary['intake']['records_per_second']} records/s", file=sys.stderr)
            http.post("/v1/anchor").raise_for_status()
            _wait_anchored(http)
            summary["gas"] = gas_per_record(http)
            keys = [
                r["record_key"]
                for r in http.post("/v1/records", json=records[:1000]).json()["records"]
            ]  # idempotent resubmission: gives the keys back
            summary["verify"] = bench_verify(http, verifier, keys, args.verify)
            summary["gas_corrections"] = gas_per_correction(http, records, keys)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(60)
            consortium.stop()
    if not args.skip_seal:
        summary["seal"] = bench_seal()
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
