"""The garbage collector's policy for the node's processes and the importer.

A bulk submission allocates millions of small objects (parsed records, rows, results) that
live until the request ends and hold no reference cycles. With CPython's default
thresholds the collector ran every 700 allocations and kept walking them: 9.2 s of the
node's 51.7 s of CPU over a 1,000,000-record import (gc.callbacks, bench/findings.md).
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]

# A young collection every 50,000 allocations instead of 700; the older generations in
# proportion (an old collection after about 100 million allocations). Cycles are still
# collected, only later: the same import kept its peak RSS.
_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Collect less often. Process-wide and idempotent: the node calls it at start-up, an
    intake process and the importer when they start.

    Nothing is frozen (``gc.freeze``): a test process builds and drops many nodes, and
    frozen objects in a cycle would never be collected.
    """
    gc.set_threshold(*_THRESHOLDS)
