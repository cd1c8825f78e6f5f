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
import urllib.parse
from pathlib import Path
from typing import Any

_IDLE_SECONDS = 2.0


class _Http:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, for this generator only.

    httpx's AsyncClient cost about 4 ms of CPU per request here, more than the node spent
    answering it; generator and node share two cores, so the generator's own CPU showed
    up as the node's latency. This sends fixed requests and reads Content-Length bodies,
    which is all a uvicorn node answers with.
    """

    def __init__(self, url: str, headers: dict[str, str], connections: int, timeout: float):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise SystemExit(f"the load generator speaks plain http only, not {url!r}")
        self._host, self._port = parts.hostname, parts.port or 80
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"Host: {parts.netloc}\r\n{head}".encode("latin-1")
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._slots = asyncio.Semaphore(connections)
        self._timeout = timeout

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body``; (status, response body). Raises OSError/ValueError/TimeoutError."""
        async with self._slots:
            reader, writer = None, None
            while self._idle:
                reader, writer, used = self._idle.pop()
                # uvicorn closes a keep-alive connection idle for 5 s; don't race it.
                if time.monotonic() - used < _IDLE_SECONDS:
                    break
                writer.close()
                reader, writer = None, None
            if reader is None or writer is None:
                reader, writer = await asyncio.open_connection(self._host, self._port)
            try:
                writer.write(
                    b"POST " + path.encode() + b" HTTP/1.1\r\n" + self._head
                    + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )  # fmt: skip
                status, answer, keep = await asyncio.wait_for(_response(reader), self._timeout)
            except BaseException:
                writer.close()
                raise
            if keep:
                self._idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()
            return status, answer

    async def close(self) -> None:
        """Close the idle connections."""
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    if "content-length" not in fields:
        raise ValueError("response without Content-Length")
    body = await reader.readexactly(int(fields["content-length"]))
    return status, body, fields.get("connection", "").lower() != "close"


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    bodies = [line.rstrip(b"\n") for line in Path(args.bodies).open("rb") if line.strip()]
    total = max(1, int(args.rate * args.duration))
    if args.unique and total > len(bodies):
        total = len(bodies)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    client = _Http(
        args.url,
        {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"},
        args.connections,
        args.timeout,
    )
    try:
        # Warm the connections and the server's caches outside the measurement.
        await asyncio.gather(
            *(client.post(args.path, bodies[i % len(bodies)]) for i in range(args.warmup))
        )

        async def one(index: int, due: float) -> None:
            try:
                status, _ = await client.post(args.path, bodies[index % len(bodies)])
                if status >= 300:
                    errors[str(status)] = errors.get(str(status), 0) + 1
                    return
            except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError) as e:
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
    finally:
        await client.close()
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
