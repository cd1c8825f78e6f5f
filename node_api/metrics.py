"""Prometheus metrics of a node: counters from this process, pipeline gauges from the database."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select

from node_api.db import Database
from node_api.db.tables import batches, record_versions

__all__ = ["NodeMetrics", "pipeline_snapshot"]

_log = logging.getLogger("node_api.metrics")

# The *_created series double every counter for no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]


def pipeline_snapshot(db: Database) -> dict[str, Any]:
    """Counts and ages of the anchoring pipeline, read from the database.

    ``anchoring_lag_seconds`` is the age of the oldest version that is not yet anchored
    (queued or in a sealed batch), 0 when everything is anchored.
    """
    rv = record_versions
    with db.read() as conn:
        pending, oldest_pending = conn.execute(
            select(func.count(), func.min(rv.c.submitted_at)).where(rv.c.batch_seq.is_(None))
        ).one()
        by_state: dict[str, int] = dict(
            conn.execute(select(batches.c.state, func.count()).group_by(batches.c.state)).all()
        )
        unanchored = select(batches.c.seq).where(batches.c.state != "anchored")
        oldest_unanchored = conn.execute(
            select(func.min(rv.c.submitted_at)).where(
                or_(rv.c.batch_seq.is_(None), rv.c.batch_seq.in_(unanchored))
            )
        ).scalar()
        last = conn.execute(
            select(batches.c.seq, batches.c.anchored_at)
            .where(batches.c.state == "anchored")
            .order_by(batches.c.seq.desc())
            .limit(1)
        ).first()
    now = time.time()
    return {
        "pending_versions": int(pending),
        "oldest_pending_age_seconds": round(now - oldest_pending, 3) if oldest_pending else 0.0,
        "anchoring_lag_seconds": round(now - oldest_unanchored, 3) if oldest_unanchored else 0.0,
        "batches": {state: int(n) for state, n in by_state.items()},
        "last_anchored_seq": last.seq if last else None,
        "last_anchored_at": last.anchored_at if last else None,
    }


class _PipelineCollector(Collector):
    """Gauges computed at scrape time, so they are right whichever process anchors."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            snap = self._snapshot()
        except Exception as e:  # a scrape must not fail because the DB is briefly away
            _log.warning("pipeline metrics unavailable", extra={"error": str(e)})
            return
        yield GaugeMetricFamily(
            "credit_ledger_pending_versions",
            "Record versions accepted but not sealed",
            snap["pending_versions"],
        )
        yield GaugeMetricFamily(
            "credit_ledger_anchoring_lag_seconds",
            "Age of the oldest accepted version that is not yet anchored",
            snap["anchoring_lag_seconds"],
        )
        family = GaugeMetricFamily("credit_ledger_batches", "Batches by state", labels=["state"])
        for state in ("sealed", "anchored", "conflict"):
            family.add_metric([state], snap["batches"].get(state, 0))
        yield family


class NodeMetrics:
    """The node's metrics in their own registry (several apps may live in one process)."""

    def __init__(self, db: Database | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.records_accepted = Counter(
            "credit_ledger_records_accepted",
            "Record versions accepted by intake",
            ["outcome"],  # created | unchanged | corrected | revoked
            registry=r,
        )
        self.batches_sealed = Counter("credit_ledger_batches_sealed", "Batches sealed", registry=r)
        self.batches_anchored = Counter(
            "credit_ledger_batches_anchored", "Batches confirmed on chain", registry=r
        )
        self.records_anchored = Counter(
            "credit_ledger_records_anchored", "Record versions confirmed on chain", registry=r
        )
        self.anchor_gas = Counter(
            "credit_ledger_anchor_gas", "Gas used by anchorBatch transactions", registry=r
        )
        self.verify_outcomes = Counter(
            "credit_ledger_verify", "POST /v1/verify verdicts", ["outcome"], registry=r
        )
        self.rpc_errors = Counter(
            "credit_ledger_rpc_errors", "Failed chain calls", ["operation"], registry=r
        )
        self.request_seconds = Histogram(
            "credit_ledger_http_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        if db is not None:
            r.register(_PipelineCollector(lambda: pipeline_snapshot(db)))
