"""Process-wide policies of the node's processes: CPUs, garbage collector,
and the end of a child whose parent died.
"""

from __future__ import annotations

import gc
import os
import threading
import time

__all__ = ["usable_cpus", "tune_gc", "exit_with_parent"]


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's or taskset's limit), not the host's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# A bulk submission allocates millions of small objects (parsed records, rows, results) that
# live until the request ends and hold no reference cycles. With CPython's default
# thresholds the collector ran every 700 allocations and kept walking them: 9.2 s of the
# node's 51.7 s of CPU over a 1,000,000-record import (gc.callbacks, bench/findings.md).
# Now a young collection every 50,000 allocations, the older generations in proportion
# (an old collection after about 100 million). Cycles are still collected, only later: the
# same import kept its peak RSS.
_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Collect less often. Process-wide and idempotent: the node calls it at start-up, an
    intake process when it starts. (Not the importer: off the critical path, it saved
    CPU but its peak RSS went from 331 to 809 MiB over a 1M import.)

    Nothing is frozen (``gc.freeze``): a test process builds and drops many nodes, and
    frozen objects in a cycle would never be collected.
    """
    gc.set_threshold(*_THRESHOLDS)


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """End this process once its parent is gone (for a worker process of the node).

    A pool's worker waits on a pipe whose other end it holds itself, so a node killed with
    SIGKILL or by the OOM killer would leave it waiting forever, and each restart would add
    more. (PR_SET_PDEATHSIG fires when the *thread* that started the child ends, here a
    request thread that the server retires when idle.)
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
