"""Open-loop load generator, run as its own process: requests at a constant rate.

Request i is due at ``start + i / rate`` whether or not earlier ones have answered, and its
latency is counted from that due time: queueing in the server (or in this client's
connection pool) shows up in the figures instead of slowing the generator down (no
coordinated omission).

``python -m bench.loadgen --url URL --key KEY --path /v1/verify --bodies FILE --rate R
--duration S --out RESULT.json`` (FILE: one request body per line, used in turn).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    bodies = [line.rstrip(b"\n") for line in Path(args.bodies).open("rb") if line.strip()]
    total = max(1, int(args.rate * args.duration))
    if args.unique and total > len(bodies):
        total = len(bodies)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(
        max_connections=args.connections, max_keepalive_connections=args.connections
    )
    async with httpx.AsyncClient(
        base_url=args.url,
        headers={"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"},
        timeout=args.timeout,
        limits=limits,
    ) as client:
        # Warm the connections and the server's caches outside the measurement.
        await asyncio.gather(
            *(client.post(args.path, content=bodies[i % len(bodies)]) for i in range(args.warmup))
        )

        async def one(index: int, due: float) -> None:
            try:
                response = await client.post(args.path, content=bodies[index % len(bodies)])
                if response.status_code >= 300:
                    errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
                    return
            except httpx.HTTPError as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                return
            latencies.append(time.perf_counter() - due)

        start = time.perf_counter() + 0.05
        tasks = []
        offset = args.warmup if args.unique else 0
        for i in range(total):
            due = start + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(offset + i, due)))
        sent = time.perf_counter()
        done, pending = await asyncio.wait(tasks, timeout=args.drain)
        for task in pending:
            task.cancel()
        finished = time.perf_counter()
    ms = sorted(x * 1000 for x in latencies)

    def pct(q: float) -> float | None:
        if not ms:
            return None
        return ms[min(len(ms) - 1, max(0, int(q * len(ms) + 0.999999) - 1))]

    return {
        "path": args.path,
        "target_rate": args.rate,
        "duration": args.duration,
        "requests": total,
        "ok": len(ms),
        "errors": errors,
        "unfinished": len(pending),
        "send_lag_seconds": round(sent - (start + (total - 1) / args.rate), 3),
        "achieved_rate": len(ms) / max(args.duration, finished - start),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": ms[-1] if ms else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the load, write the result JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--bodies", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--drain", type=float, default=60, help="wait for stragglers this long")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--unique", action="store_true", help="never reuse a body")
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args))
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
