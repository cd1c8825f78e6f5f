"""credit-ledger end to end at one batch size, in its own process (for a clean peak RSS).

JSON Lines file → the node's intake (``prepare_records``, ``submit_records``, 10,000 records
per call, as a bulk ``POST /v1/records`` does) → the node's anchoring worker sealing batches
of ``--batch-size`` and anchoring each on chain → receipts retrievable. The product's own
functions run unchanged; timers wrapped around them give the time spent in each stage.

``python -m bench.pipeline --rpc URL --deployment FILE --signer-key KEY --region R
--batch-size B --file F --out RESULT.json [--disclosures N --disclosures-out FILE]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ledger
import ledger.records
import node_api.batches
import node_api.intake
import node_api.worker
from bench.common import Stopwatch, self_peak_rss_mib
from ledger.chain.anchor import AnchorClient

CHUNK = 10_000  # records per intake call: the API's bulk limit

# Stage → (owner object, attribute) of the product function timed as that stage.
_STAGES: dict[str, list[tuple[Any, str]]] = {
    "validate": [(ledger, "parse_record")],
    "canonicalise": [(ledger.records.Record, "canonical_bytes")],
    "commit": [(ledger, "record_key"), (ledger, "record_key_of"), (node_api.intake, "_material")],
    "database (intake)": [(node_api.intake, "_submit_once")],
    "seal (database + tree)": [(node_api.worker, "seal_batch")],
    "tree": [(ledger, "merkle_root")],
    "transaction": [(AnchorClient, "anchor_batch")],
}


def _timed(function: Callable[..., Any], watch: Stopwatch, stage: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            watch.add(stage, time.perf_counter() - start)

    return wrapper


class StageTimers:
    """Wraps the product's stage functions with timers; restores them on exit."""

    def __init__(self, watch: Stopwatch) -> None:
        self.watch = watch
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> StageTimers:
        for stage, places in _STAGES.items():
            for owner, name in places:
                original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
                self._saved.append((owner, name, original))
                setattr(owner, name, _timed(original, self.watch, stage))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Import the file, anchor it, check receipts; figures as a dict."""
    from node_api.config import Settings
    from node_api.intake import prepare_records, submit_records
    from node_api.receipts import build_disclosure, build_receipt, load_version
    from node_api.services import Services

    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-b{args.batch_size}-", dir=args.work_dir))
    settings = Settings(
        rpc_url=args.rpc,
        deployment_file=Path(args.deployment),
        region=args.region,
        data_dir=data_dir,
        signer_key=args.signer_key,
        batch_size=args.batch_size,
        batch_max_age_seconds=3600,
        anchor_wait_seconds=3600,
        worker_mode="off",
        log_level="WARNING",
        proof_cache_batches=4,
    )
    services = Services.build(settings, start_worker=False)
    assert services.worker is not None
    watch = Stopwatch()
    keys: list[bytes] = []
    records = 0
    with StageTimers(watch):
        started = time.perf_counter()
        cpu_started = time.process_time()
        with open(args.file, encoding="utf-8") as lines:
            while True:
                want = min(CHUNK, args.limit - records) if args.limit else CHUNK
                with watch.time("read (JSON Lines)"):
                    chunk = [json.loads(line) for _, line in zip(range(want), lines, strict=False)]
                if not chunk:
                    break
                prepared = prepare_records(chunk, args.region)
                results = submit_records(services.db, services.node_secret, prepared)
                records += len(results)
                if len(keys) < args.disclosures:
                    keys += [r.record_key for r in results[: args.disclosures - len(keys)]]
        intake_done = time.perf_counter()
        result = services.worker.anchor_now()
        anchored = time.perf_counter()
        cpu = time.process_time() - cpu_started
    elapsed = anchored - started
    # Retrievable: a receipt of the first and the last record, each checked offline.
    with services.db.read() as conn:
        for key in {keys[0], keys[-1]} if keys else ():
            verdict = ledger.verify_receipt(build_receipt(conn, services, load_version(conn, key)))
            assert verdict.status is ledger.VerdictStatus.VALID_OFFLINE, verdict
    assert result["sealed"], "nothing was anchored"
    from sqlalchemy import func, select

    from node_api.db.tables import batches as batches_table

    with services.db.read() as conn:
        batch_count, anchored_records, gas = conn.execute(
            select(
                func.count(), func.sum(batches_table.c.size), func.sum(batches_table.c.gas_used)
            ).where(batches_table.c.state == "anchored")
        ).one()
    assert anchored_records == records, (anchored_records, records)
    disclosure_seconds = None
    if args.disclosures_out and keys:
        t = time.perf_counter()
        with services.db.read() as conn, open(args.disclosures_out, "w", encoding="utf-8") as out:
            for key in keys:
                disclosure = build_disclosure(conn, services, load_version(conn, key))
                out.write(json.dumps(disclosure.to_json(), ensure_ascii=False) + "\n")
        disclosure_seconds = time.perf_counter() - t
    stages = dict(watch.seconds)
    stages["database (seal)"] = stages.pop("seal (database + tree)", 0.0) - stages.get("tree", 0.0)
    stages["database"] = stages.pop("database (intake)", 0.0) + stages.pop("database (seal)")
    accounted = sum(stages.values())
    stages["other (glue, worker bookkeeping, chain reads)"] = max(0.0, elapsed - accounted)
    db_bytes = sum(p.stat().st_size for p in data_dir.glob("node.db*"))
    services.close()
    return {
        "batch_size": args.batch_size,
        "records": records,
        "batches": batch_count,
        "seconds": elapsed,
        "intake_seconds": intake_done - started,
        "anchor_seconds": anchored - intake_done,
        "records_per_second": records / elapsed,
        "cpu_seconds": cpu,
        "cpu_us_per_record": cpu / records * 1e6,
        "gas_total": gas,
        "gas_per_record": gas / records,
        "gas_per_batch": gas / max(1, batch_count),
        "stage_seconds": stages,
        "stage_records_per_second": {
            stage: (records / seconds if seconds > 0 else None) for stage, seconds in stages.items()
        },
        "peak_rss_mib": self_peak_rss_mib(),
        "database_bytes": db_bytes,
        "disclosures_written": len(keys) if args.disclosures_out else 0,
        "disclosure_build_seconds": disclosure_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpc", required=True)
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--signer-key", required=True)
    parser.add_argument("--region", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--limit", type=int, default=0, help="first N records only")
    parser.add_argument("--disclosures", type=int, default=2)
    parser.add_argument("--disclosures-out", default=None)
    args = parser.parse_args(argv)
    result = run(args)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
