"""In-process figures: the bare SHA-256 rate and offline verification of disclosures."""

from __future__ import annotations

import gc
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ledger
from bench.common import median
from ledger import AnchoredBatch, RecordHead


def _rates(count: int, operation: Callable[[], object], repeat: int = 5) -> tuple[float, float]:
    """Items per wall second and per CPU second of this thread, medians of ``repeat`` runs.

    The machine is shared: wall time counts whatever else ran meanwhile, while the thread's
    own CPU time (``time.thread_time``) is what one core spends, so the per-CPU-second rate
    is the figure to hold against a per-core target. The collector is paused while timing.
    """
    walls, cpus = [], []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            wall, cpu = time.perf_counter(), time.thread_time()
            operation()
            cpus.append(time.thread_time() - cpu)
            walls.append(time.perf_counter() - wall)
        finally:
            gc.enable()
    return count / median(walls), count / median(cpus)


def _best_of(count: int, operation: Callable[[], object], repeat: int = 3) -> float:
    """Items per wall second, median of ``repeat`` timed runs with the collector paused."""
    return _rates(count, operation, repeat)[0]


def sha256_limit(path: Path, count: int = 100_000) -> dict[str, Any]:
    """Bare hashlib SHA-256 rates on this machine: commitment-sized and tree-node inputs."""
    bodies = []
    with path.open("rb") as lines:
        for line, _ in zip(lines, range(count), strict=False):
            bodies.append(b"credit-ledger:commit:v1" + bytes(32) + line.rstrip(b"\n"))
    nodes = [b"\x01" + hashlib.sha256(b).digest() * 2 for b in bodies]
    sha = hashlib.sha256
    return {
        "input_bytes_mean": sum(map(len, bodies)) / len(bodies),
        "commitment_inputs_per_second": _best_of(
            len(bodies), lambda: [sha(b).digest() for b in bodies]
        ),
        "tree_nodes_per_second": _best_of(len(nodes), lambda: [sha(n).digest() for n in nodes]),
    }


class SnapshotReader:
    """AnchorReader over batch roots and record heads read from the chain once, up front."""

    def __init__(self, anchor: Any, disclosures: list[dict[str, Any]]) -> None:
        self.chain_id = anchor.chain_id
        self.anchor_address = anchor.anchor_address
        wanted = {
            (d["receipt"]["batch"]["region"], d["receipt"]["batch"]["seq"]) for d in disclosures
        }
        self._batches: dict[tuple[int, int], AnchoredBatch] = {
            key: anchor.batch_of(*key) for key in sorted(wanted)
        }
        keys = sorted(
            {
                (d["receipt"]["batch"]["region"], bytes.fromhex(d["receipt"]["leaf"]["record_key"]))
                for d in disclosures
            }
        )
        answers = []
        for start in range(0, len(keys), 1000):
            answers += anchor.call_many("headOf", keys[start : start + 1000])
        self._heads = {
            key: RecordHead(bytes(h[0]), int(h[1]), int(h[2]), int(h[3]))
            for key, h in zip(keys, answers, strict=True)
        }

    def batch_of(self, region: int, seq: int) -> AnchoredBatch:
        """The cached batch."""
        return self._batches[(region, seq)]

    def head_of(self, region: int, record_key: bytes) -> RecordHead:
        """The prefetched head."""
        return self._heads[(region, record_key)]


def offline_verification(anchor: Any, path: Path) -> dict[str, Any]:
    """Disclosures/s on one core: steps 1-2 alone, and 1-4 against cached roots and heads.

    Only the public API (``ledger.verify_disclosure`` and an ``ledger.AnchorReader``) is
    timed, on JSON objects as a verifier holds them and, separately, from their bytes:
    ``json.loads`` then ``verify_disclosure``, and ``ledger.verify_disclosure_json``, which
    gives the same verdicts and, with the C speedups, reads the bytes without ``json.loads``.
    """
    disclosures = [json.loads(line) for line in path.open(encoding="utf-8")]
    reader = SnapshotReader(anchor, disclosures)
    lines = [json.dumps(d).encode() for d in disclosures]
    statuses = {ledger.verify_disclosure(d, reader).status.value for d in disclosures}
    statuses |= {ledger.verify_disclosure_json(b, reader).status.value for b in lines}
    assert statuses == {"valid"}, statuses
    n = len(disclosures)
    verify = ledger.verify_disclosure
    verify_json = ledger.verify_disclosure_json
    results: dict[str, Any] = {"disclosures": n, "repeats": 5}
    for name, operation in (
        ("steps_1_4_cached", lambda: [verify(d, reader) for d in disclosures]),
        ("steps_1_2", lambda: [verify(d) for d in disclosures]),
        ("steps_1_4_cached_from_bytes", lambda: [verify(json.loads(b), reader) for b in lines]),
        ("steps_1_4_cached_verify_json", lambda: [verify_json(b, reader) for b in lines]),
    ):
        wall, cpu = _rates(n, operation)
        results[f"{name}_per_second"] = wall
        results[f"{name}_per_cpu_second"] = cpu
    results["bytes_per_disclosure"] = sum(map(len, lines)) / n
    return results
