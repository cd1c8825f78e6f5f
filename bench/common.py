"""Shared helpers of the suite: records on disk, percentiles, process memory, load."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BEIJING, TIANJIN, HEBEI = 110000, 120000, 130000
OPERATOR_KEY = "bench-operator-key-0123456789abcdef"
VERIFIER_KEY = "bench-verifier-key-0123456789abcdef"
AUDITOR_KEY = "bench-auditor-key-0123456789abcdef"


def _bench_core_generator() -> Any:
    spec = importlib.util.spec_from_file_location("bench_core", REPO / "scripts" / "bench_core.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_records


def generator_name() -> str:
    """Which generator the suite uses: the CLI's (node_api.datagen), else bench_core's."""
    try:
        from node_api.datagen import generate_items  # noqa: F401
    except ImportError:
        return "scripts/bench_core.py"
    return "node_api.datagen"


def generate_records(count: int, region: int, seed: int) -> Iterator[dict[str, Any]]:
    """``count`` valid new records of ``region``, deterministic for a seed.

    Only new records: corrections and revocations go through other API calls, one record
    each, and are not what a throughput figure of bulk intake is about.
    """
    if generator_name() == "node_api.datagen":
        from node_api.datagen import generate_items

        yield from generate_items(region, count, seed, correction_rate=0.0, revocation_rate=0.0)
    else:
        yield from _bench_core_generator()(count, seed=seed, only_region=region)


def write_jsonl(path: Path, count: int, region: int, seed: int) -> Path:
    """Write ``count`` generated records as JSON Lines (UTF-8), unless already there."""
    done = path.with_suffix(path.suffix + ".done")
    stamp = f"{count} {region} {seed} {generator_name()}"
    if path.is_file() and done.is_file() and done.read_text() == stamp:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        lines = []
        for record in generate_records(count, region, seed):
            lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            if len(lines) >= 10_000:
                out.write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            out.write("\n".join(lines) + "\n")
    done.write_text(stamp)
    return path


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty sample."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    """The median."""
    return float(statistics.median(values))


def self_peak_rss_mib() -> float:
    """Peak resident set size of this process, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pid_peak_rss_mib(pid: int) -> float | None:
    """Peak RSS (VmHWM) of a live process, MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def load() -> list[float]:
    """1-, 5- and 15-minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


class Stopwatch:
    """Accumulates wall time per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        """Add ``seconds`` to ``stage``."""
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def time(self, stage: str) -> _Timer:
        """A context manager timing one stretch of ``stage``."""
        return _Timer(self, stage)


class _Timer:
    def __init__(self, watch: Stopwatch, stage: str) -> None:
        self.watch, self.stage = watch, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.watch.add(self.stage, time.perf_counter() - self.start)
