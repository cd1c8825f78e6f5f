"""Intake processes: large submissions are parsed and validated outside the node's process.

The node's process holds the database's write lock and serves every request; parsing,
validating and hashing a 10,000-record body was about a quarter of its CPU per imported
record (bench/findings.md), and Python runs it on one core at a time. An intake process
does that work on another core while the node stores the previous request.

Nothing is stored by an intake process: it returns the validated records, and the node
stores them. When one dies (the OOM killer, a crash), its request is validated by the
node's own process, as it would have been without intake processes, and the next large
body starts new ones.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
import threading
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from node_api.intake import Submission, prepare_submission
from node_api.processes import exit_with_parent, tune_gc, usable_cpus

__all__ = ["IntakePool", "default_processes", "POOLED_BODY_BYTES"]

_log = logging.getLogger("node_api.intake")

# Smaller bodies (a single record, a few dozen) are validated in the node's own process:
# the trip to another process (about a millisecond) would cost more than it saves.
POOLED_BODY_BYTES = 256 * 1024


def default_processes() -> int:
    """One intake process per usable CPU but the node's own, at most four; none on one CPU.

    Per API process: ``uvicorn --workers N`` starts N pools.
    """
    return max(0, min(usable_cpus() - 1, 4))


def _initialise(recursion_limit: int) -> None:
    # The node's own bound on JSON nesting (node_api.main): the C decoder must fail with a
    # RecursionError (400) before it overflows the stack of this process too.
    sys.setrecursionlimit(recursion_limit)
    tune_gc()
    exit_with_parent()


class IntakePool:
    """``processes`` intake processes, started with the first large submission.

    With ``processes=0`` everything is validated in the node's process.
    """

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False

    def prepare(self, body: bytes, region: int, secret: bytes, limit: int) -> Submission:
        """:func:`node_api.intake.prepare_submission` of ``body``, in an intake process if
        it is large. Raises what that raises (BadRequest, IntakeRecordError...)."""
        executor = self._executor_for(len(body))
        if executor is None:
            return prepare_submission(body, region, secret, limit)
        try:
            future = executor.submit(prepare_submission, body, region, secret, limit)
            return future.result()
        except BrokenProcessPool:
            # An intake process died. The pool is unusable: drop it, and validate this body
            # here; the next large body starts new processes.
            _log.error(
                "intake process died; starting new ones",
                exc_info=True,
                extra={"body_bytes": len(body)},
            )
            self._discard(executor)
        except (CancelledError, RuntimeError):
            # The node is stopping (close() cancelled the task, or submit() came after it):
            # the request still gets its answer.
            if not self._closed:
                raise
        return prepare_submission(body, region, secret, limit)

    def close(self) -> None:
        """Stop the intake processes; a request waiting for one is validated here."""
        with self._lock:
            executor, self._executor = self._executor, None
            self._closed = True
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _executor_for(self, body_bytes: int) -> ProcessPoolExecutor | None:
        if self.processes <= 0 or body_bytes < POOLED_BODY_BYTES:
            return None
        with self._lock:
            if self._closed:
                return None
            if self._executor is None:
                # spawn, not fork: the node's process has threads (the anchoring worker, the
                # server's), and a forked child would inherit their locks held. (Not the
                # exchange's forkserver: its server is started with that module preloaded.)
                self._executor = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_initialise,
                    initargs=(sys.getrecursionlimit(),),
                )
            return self._executor

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)
