"""The anchoring worker: seals pending versions into batches and anchors them on chain.

Durability rules (DESIGN §6):

* A batch is sealed — seq, leaf order and indexes, root, state ``sealed`` — in one database
  transaction before its transaction is sent; the seq is the next one after the database's
  last batch (cross-checked with ``nextSeq`` on chain when the worker starts).
* Sealed batches are settled in seq order: if ``batchOf(region, seq)`` already holds our
  root the batch is marked anchored (the transaction is found through its
  ``BatchAnchored`` event); if the chain expects this seq it is (re)sent unchanged; any
  other root, or a chain that lost batches, blocks the worker loudly: nothing is
  overwritten and no seq is ever reused for other content.
* Only the holder of the region's lease (a row in ``leases`` with owner and expiry) seals
  or sends, and the sealing transaction re-checks the lease (fencing), so two worker
  processes of one region cannot seal different content under one seq.
* Chain failures are retried with capped exponential backoff; intake is unaffected.

Run in the API process (default) or alone: ``python -m node_api.worker``.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from ledger.chain import HeadUpdate as ChainHeadUpdate
from ledger.errors import ChainError, ContractError
from node_api.batches import SealedBatch, load_batch, seal_batch
from node_api.chain import ChainGateway
from node_api.config import Settings
from node_api.db import Database
from node_api.db.tables import batches, leases, node_meta, record_versions
from node_api.errors import Conflict, Unavailable
from node_api.metrics import NodeMetrics

__all__ = ["AnchoringWorker", "WorkerBlocked", "main"]

_log = logging.getLogger("node_api.worker")

_ANCHOR_REQUEST_KEY = "anchor_requested_at"
# Sealing several full batches in one write transaction: at most this many batches and
# versions (8 batches of the default 4,096; one of 65,536).
_SEAL_AHEAD = 8
_SEAL_AHEAD_VERSIONS = 32_768


class WorkerBlocked(RuntimeError):
    """The chain contradicts the database; anchoring stops until an operator intervenes."""


class _LeaseLost(RuntimeError):
    """Another worker holds the region's lease."""


@dataclass
class _Status:
    started: bool = False
    blocked: str | None = None
    last_error: str | None = None
    failures: int = 0
    retry_at: float = 0.0
    last_cycle_at: float | None = None
    anchored: list[int] = field(default_factory=list)


class AnchoringWorker:
    """Seals and anchors the batches of one region; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        chain: ChainGateway,
        metrics: NodeMetrics,
        *,
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.chain = chain
        self.metrics = metrics
        self.region = settings.region
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.lease_name = f"anchoring:{self.region}"
        self._status = _Status()
        self._first_seq: int | None = None
        self._lease_until = 0.0  # when our lease expires, as last written by _fence
        self._cycle_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Run the loop in a daemon thread (the in-process mode)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run, name=f"anchoring-{self.region}", daemon=True
        )
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the loop to end after the current cycle (safe from a signal handler)."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loop and give the lease back."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._release_lease()

    def trigger(self) -> None:
        """Wake the loop (new records arrived); it decides whether a batch is due."""
        self._wake.set()

    @property
    def running(self) -> bool:
        """Whether the loop thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """The loop: one cycle, then sleep until woken, the poll interval or the backoff."""
        _log.info("anchoring worker started", extra={"region": self.region, "owner": self.owner})
        while not self._stop.is_set():
            delay = self.settings.worker_poll_seconds
            try:
                with self._cycle_lock:
                    self._cycle(force=False)
                self._status.failures = 0
                self._status.last_error = None
            except _LeaseLost:
                delay = max(delay, 1.0)
            except WorkerBlocked as e:
                self._status.blocked = str(e)
                _log.error("anchoring blocked", extra={"region": self.region, "reason": str(e)})
                delay = 30.0
            except Exception as e:  # ChainError and anything unexpected: back off, keep going
                delay = self._backoff(e)
            self._wake.wait(delay)
            self._wake.clear()
        _log.info("anchoring worker stopped", extra={"region": self.region})

    def _backoff(self, error: Exception) -> float:
        self._status.failures += 1
        self._status.last_error = f"{type(error).__name__}: {error}"
        base = min(self.settings.rpc_backoff_max_seconds, 0.5 * 2.0 ** (self._status.failures - 1))
        delay = base * random.uniform(0.8, 1.0)  # jitter: nodes of a region should not sync up
        self._status.retry_at = time.time() + delay
        level = logging.WARNING if isinstance(error, ChainError) else logging.ERROR
        _log.log(
            level,
            "anchoring cycle failed; retrying",
            extra={"region": self.region, "error": str(error), "retry_in": round(delay, 2)},
            exc_info=not isinstance(error, ChainError),
        )
        return delay

    # ----------------------------------------------------------------- API entry points

    def anchor_now(self) -> dict[str, Any]:
        """Seal everything pending and anchor it (POST /v1/anchor)."""
        if not self._cycle_lock.acquire(timeout=self.settings.anchor_wait_seconds):
            # "reason" lets a client that asked to anchor everything wait (the CLI's
            # import --anchor): the worker is anchoring, only not for this request.
            raise Unavailable("the anchoring worker is busy; retry later", reason="worker_busy")
        try:
            if not self._hold_lease():
                self._request_anchor()
                return {
                    "requested": True,
                    "sealed": [],
                    "anchored": [],
                    "lease_owner": self._lease_owner(),
                }
            if self._status.blocked:
                raise Conflict(f"anchoring is blocked: {self._status.blocked}")
            before = len(self._status.anchored)
            sealed = self._cycle(force=True)
            anchored = self._status.anchored[before:]
        except WorkerBlocked as e:
            self._status.blocked = str(e)
            raise Conflict(f"anchoring is blocked: {e}") from e
        finally:
            if not self.running:
                # An API process without its own loop (external/off mode) must not keep the
                # external worker waiting for a lease it will not renew.
                self._release_lease()
                self._status.started = False
            self._cycle_lock.release()
        with self.db.read() as conn:
            rows = conn.execute(
                select(batches).where(batches.c.seq.in_(anchored)).order_by(batches.c.seq)
            ).all()
        return {
            "requested": False,
            "sealed": sealed,
            "anchored": [
                {
                    "seq": r.seq,
                    "size": r.size,
                    "root": bytes(r.root).hex(),
                    "tx_hash": r.tx_hash,
                    "block_number": r.block_number,
                    "gas_used": r.gas_used,
                }
                for r in rows
            ],
        }

    def status(self) -> dict[str, Any]:
        """Worker state for /v1/health."""
        s = self._status
        return {
            "mode": self.settings.worker_mode,
            "running": self.running,
            "owner": self.owner,
            "lease_owner": self._lease_owner(),
            "started": s.started,
            "blocked": s.blocked,
            "last_error": s.last_error,
            "consecutive_failures": s.failures,
            "retry_in_seconds": max(0.0, round(s.retry_at - time.time(), 2)) if s.failures else 0.0,
            "last_cycle_at": s.last_cycle_at,
        }

    # ----------------------------------------------------------------- the cycle

    def _cycle(self, force: bool) -> list[int]:
        """One pass: lease, start-up checks, settle sealed batches, seal and send due ones."""
        if self._status.blocked:
            raise WorkerBlocked(self._status.blocked)
        if not self._hold_lease():
            self._status.started = False
            raise _LeaseLost(self.lease_name)
        force = force or self._take_anchor_request()
        if not self._status.started:
            self._startup()
        self._settle_sealed()
        sealed: list[int] = []
        while not self._stop.is_set() or force:
            if not self._seal_due(force):
                break
            due = self._seal_next()
            if not due:
                break
            sealed.extend(batch.seq for batch in due)
            self._settle(due)
        self._status.last_cycle_at = time.time()
        return sealed

    def _startup(self) -> None:
        """Cross-check the database's batches with the chain before sealing anything."""
        chain_next = self.chain.next_seq(self.region)
        with self.db.read() as conn:
            conflict = conn.execute(
                select(batches.c.last_error).where(batches.c.state == "conflict").limit(1)
            ).first()
            if conflict is not None:
                # A restart must not seal past it: the next seq would follow a root that is
                # not ours, and the conflicting batch's versions would never be anchored.
                raise WorkerBlocked(conflict.last_error or "a batch is in conflict with the chain")
            max_seq = conn.execute(select(func.max(batches.c.seq))).scalar()
            last_anchored = conn.execute(
                select(batches.c.seq, batches.c.root)
                .where(batches.c.state == "anchored")
                .order_by(batches.c.seq.desc())
                .limit(1)
            ).first()
        if max_seq is None:
            if chain_next > 0:
                _log.warning(
                    "chain has batches this database does not know; starting after them",
                    extra={"region": self.region, "chain_next_seq": chain_next},
                )
            self._first_seq = chain_next
        elif chain_next > max_seq + 1:
            raise WorkerBlocked(
                f"chain expects seq {chain_next} for region {self.region} but this database's "
                f"last batch is {max_seq}: another node anchors for this region, or the database "
                "was restored from an old backup"
            )
        if last_anchored is not None:
            onchain = self.chain.batch_of(self.region, last_anchored.seq)
            if onchain.root != bytes(last_anchored.root):
                raise WorkerBlocked(
                    f"batch {last_anchored.seq} is anchored in the database with root "
                    f"{bytes(last_anchored.root).hex()} but the chain has "
                    f"{onchain.root.hex() or 'nothing'}: wrong chain or deployment?"
                )
        self._status.started = True
        _log.info(
            "anchoring worker checked the chain",
            extra={"region": self.region, "chain_next_seq": chain_next, "db_last_seq": max_seq},
        )

    def _settle_sealed(self) -> None:
        with self.db.read() as conn:
            seqs = (
                conn.execute(
                    select(batches.c.seq).where(batches.c.state == "sealed").order_by(batches.c.seq)
                )
                .scalars()
                .all()
            )
        for start in range(0, len(seqs), _SEAL_AHEAD):
            with self.db.read() as conn:
                group = [load_batch(conn, seq) for seq in seqs[start : start + _SEAL_AHEAD]]
            self._settle([batch for batch in group if batch is not None])

    def _settle(self, group: list[SealedBatch]) -> None:
        """Bring sealed batches (consecutive seqs) to ``anchored``, in seq order.

        A batch the chain has already is marked (after checking it is ours); the others are
        sent one after the other. One write transaction notes the sends before the first
        one goes out and one marks every batch settled here, also when a later send fails:
        during a bulk import each write waits for a 10,000-record submission to commit.
        """
        settled: list[tuple[SealedBatch, Any, Any]] = []
        noted = False
        try:
            for position, batch in enumerate(group):
                onchain = self.chain.batch_of(self.region, batch.seq)
                if onchain.size == 0:
                    if not noted:
                        self._check_sendable(batch)
                        self._note_send([b.seq for b in group[position:]])
                        noted = True
                    elif self._lease_until - time.time() < self.settings.worker_lease_seconds / 2:
                        self._renew_lease()  # a slow chain: keep the lease through the group
                    tx = self._send(batch)
                    onchain = self.chain.batch_of(self.region, batch.seq)
                else:
                    tx = None
                if (onchain.root, onchain.size, onchain.manifest_hash) != (
                    batch.root,
                    batch.size,
                    batch.manifest_hash,
                ):
                    self._mark_conflict(batch, onchain)
                settled.append((batch, onchain, tx))
        except BaseException:
            if settled:
                try:
                    self._mark_anchored(settled)
                except Exception:  # the error that stopped the group matters more
                    _log.exception("could not mark batches anchored; the next cycle will")
            raise
        if settled:
            self._mark_anchored(settled)

    def _check_sendable(self, batch: SealedBatch) -> None:
        chain_next = self.chain.next_seq(self.region)
        if batch.seq != chain_next:
            raise WorkerBlocked(
                f"sealed batch {batch.seq} cannot be sent: the chain expects seq {chain_next} "
                f"for region {self.region} (batches missing on chain?)"
            )
        if self.chain.signer is None:
            raise ChainError(
                "no signer key configured: set signer_keystore or signer_key to anchor"
            )

    def _send(self, batch: SealedBatch) -> Any:
        """Send one batch's transaction; None if it turns out to be on chain already."""
        heads = [
            ChainHeadUpdate(h.record_key, h.leaf_hash, h.version, h.status) for h in batch.heads
        ]
        try:
            tx = self.chain.rpc(
                "anchorBatch",
                lambda: self.chain.anchor.anchor_batch(
                    self.region, batch.seq, batch.root, batch.size, batch.manifest_hash, heads
                ),
            )
        except ContractError as e:
            if e.name == "BatchOutOfOrder" and self.chain.batch_of(self.region, batch.seq).size:
                return None  # someone (our earlier incarnation, most likely) anchored it
            self._note_error(batch.seq, f"{e.name}: {e}")
            raise
        except ChainError as e:
            self._note_error(batch.seq, str(e))
            raise
        _crash_point(self.settings, "after_send")
        return tx

    def _mark_anchored(self, settled: list[tuple[SealedBatch, Any, Any]]) -> None:
        """Mark settled batches anchored, with their transactions, in one write transaction."""
        marks = []
        for batch, onchain, tx in settled:
            tx_hash, gas_used = (
                (tx.tx_hash, tx.gas_used) if tx is not None else self._find_tx(batch, onchain)
            )
            marks.append((batch, onchain, tx_hash, gas_used, tx is None))
        with self.db.write(urgent=True) as conn:
            marked = [
                conn.execute(
                    update(batches)
                    .where(batches.c.seq == batch.seq, batches.c.state == "sealed")
                    .values(
                        state="anchored",
                        tx_hash=tx_hash,
                        block_number=onchain.block_number,
                        anchored_at=float(onchain.anchored_at),
                        gas_used=gas_used,
                        submitter=onchain.submitter,
                        last_error=None,
                    )
                ).rowcount
                for batch, onchain, tx_hash, gas_used, _ in marks
            ]
        for (batch, onchain, tx_hash, gas_used, found), rowcount in zip(marks, marked, strict=True):
            if not rowcount:
                continue
            self.metrics.batches_anchored.inc()
            self.metrics.records_anchored.inc(batch.size)
            if gas_used:
                self.metrics.anchor_gas.inc(gas_used)
            self._status.anchored.append(batch.seq)
            del self._status.anchored[:-1000]
            _log.info(
                "batch anchored",
                extra={
                    "region": self.region,
                    "seq": batch.seq,
                    "size": batch.size,
                    "tx_hash": tx_hash,
                    "block_number": onchain.block_number,
                    "gas_used": gas_used,
                    "found_on_chain": found,
                },
            )

    def _find_tx(self, batch: SealedBatch, onchain: Any) -> tuple[str | None, int | None]:
        """The anchoring transaction of a batch we did not see mined (after a crash)."""
        try:
            events = self.chain.rpc(
                "getLogs",
                lambda: self.chain.anchor.batches_anchored(
                    self.region,
                    from_seq=batch.seq,
                    to_seq=batch.seq,
                    from_block=onchain.block_number,
                    to_block=onchain.block_number,
                ),
            )
            if not events:
                return None, None
            receipt = self.chain.rpc(
                "getTransactionReceipt",
                lambda: self.chain.client.request("eth_getTransactionReceipt", [events[0].tx_hash]),
            )
            gas = int(str(receipt["gasUsed"]), 16) if receipt else None
            return events[0].tx_hash, gas
        except ChainError as e:
            _log.warning(
                "anchoring transaction not found", extra={"seq": batch.seq, "error": str(e)}
            )
            return None, None

    def _mark_conflict(self, batch: SealedBatch, onchain: Any) -> None:
        message = (
            f"batch {batch.seq} of region {self.region}: the chain holds root "
            f"{onchain.root.hex()} (size {onchain.size}), this database sealed "
            f"{batch.root.hex()} (size {batch.size}); refusing to overwrite or reuse the seq"
        )
        with self.db.write(urgent=True) as conn:
            conn.execute(
                update(batches)
                .where(batches.c.seq == batch.seq)
                .values(state="conflict", last_error=message)
            )
        raise WorkerBlocked(message)

    def _note_send(self, seqs: list[int]) -> None:
        """Count the sends about to begin, renewing the lease in the same transaction."""
        with self.db.write(urgent=True) as conn:
            self._fence(conn)
            conn.execute(
                update(batches)
                .where(batches.c.seq.in_(seqs))
                .values(send_attempts=batches.c.send_attempts + 1, last_sent_at=time.time())
            )

    def _note_error(self, seq: int, message: str) -> None:
        with self.db.write(urgent=True) as conn:
            conn.execute(
                update(batches).where(batches.c.seq == seq).values(last_error=message[:2000])
            )

    # ----------------------------------------------------------------- sealing

    def _seal_due(self, force: bool) -> bool:
        """Whether a batch should be sealed now: size reached, oldest too old, or forced."""
        rv = record_versions
        with self.db.read() as conn:
            first = conn.execute(
                select(rv.c.submitted_at).where(rv.c.batch_seq.is_(None)).order_by(rv.c.id).limit(1)
            ).first()
            if first is None:
                return False
            if force or time.time() - first.submitted_at >= self.settings.batch_max_age_seconds:
                return True
            return _full_batch_pending(conn, self.settings.batch_size)

    def _seal_next(self) -> list[SealedBatch]:
        """Seal the next batch, and up to ``_SEAL_AHEAD`` in all while full ones are pending.

        One write transaction for several batches: during a bulk import every write waits
        for SQLite's one write lock behind 10,000-record submissions, and a worker taking it
        once per step of each batch fell millions of versions behind the intake
        (bench/findings.md). Each batch is still sealed before its transaction is sent.
        """
        started = time.monotonic()
        sealed: list[SealedBatch] = []
        with self.db.write(urgent=True) as conn:
            self._fence(conn)
            max_seq = conn.execute(select(func.max(batches.c.seq))).scalar()
            if max_seq is None:
                if self._first_seq is None:
                    raise ChainError("first seq unknown: the chain was not reachable at start")
                seq = self._first_seq
            else:
                seq = max_seq + 1
            size = self.settings.batch_size
            while not sealed or (
                len(sealed) < _SEAL_AHEAD
                and sum(b.size for b in sealed) + size <= _SEAL_AHEAD_VERSIONS
                and _full_batch_pending(conn, size)
            ):
                batch = seal_batch(
                    conn,
                    self.region,
                    seq + len(sealed),
                    size,
                    time.time(),
                    max_heads=self.settings.max_heads_per_batch,
                )
                if batch is None:
                    break
                sealed.append(batch)
            _crash_point(self.settings, "during_seal")
        for batch in sealed:
            self.metrics.batches_sealed.inc()
            _log.info(
                "batch sealed",
                extra={
                    "region": self.region,
                    "seq": batch.seq,
                    "size": batch.size,
                    "root": batch.root.hex(),
                    "heads": len(batch.heads),
                    "seconds": round(time.monotonic() - started, 3),
                },
            )
        if sealed:
            _crash_point(self.settings, "after_seal")
        return sealed

    # ----------------------------------------------------------------- lease

    def _hold_lease(self) -> bool:
        """Acquire or renew the region's lease; False if another live worker holds it."""
        now = time.time()
        ttl = self.settings.worker_lease_seconds
        try:
            with self.db.write(urgent=True) as conn:
                query = select(leases).where(leases.c.name == self.lease_name)
                if not self.db.is_sqlite:
                    query = query.with_for_update()
                row = conn.execute(query).first()
                if row is None:
                    conn.execute(
                        leases.insert().values(
                            name=self.lease_name,
                            owner=self.owner,
                            expires_at=now + ttl,
                            acquired_at=now,
                        )
                    )
                    return True
                if row.owner != self.owner and row.expires_at > now and not _owner_died(row.owner):
                    return False
                if row.owner == self.owner and row.expires_at - now > ttl * 2 / 3:
                    return True  # renewed recently enough; spare the fsync
                values: dict[str, Any] = {"owner": self.owner, "expires_at": now + ttl}
                if row.owner != self.owner:
                    values["acquired_at"] = now
                    self._status.started = False
                    _log.info("took over the anchoring lease", extra={"previous": row.owner})
                conn.execute(
                    update(leases).where(leases.c.name == self.lease_name).values(**values)
                )
                return True
        except IntegrityError:
            return False  # another worker inserted the row first

    def _fence(self, conn: Connection) -> None:
        """Inside a write transaction: extend our lease or abort (fencing against a new owner)."""
        now = time.time()
        result = conn.execute(
            update(leases)
            .where(
                leases.c.name == self.lease_name,
                leases.c.owner == self.owner,
                leases.c.expires_at > now,
            )
            .values(expires_at=now + self.settings.worker_lease_seconds)
        )
        if result.rowcount != 1:
            self._status.started = False
            raise _LeaseLost(self.lease_name)
        self._lease_until = now + self.settings.worker_lease_seconds

    def _renew_lease(self) -> None:
        with self.db.write(urgent=True) as conn:
            self._fence(conn)

    def _release_lease(self) -> None:
        try:
            with self.db.write(urgent=True) as conn:
                conn.execute(
                    delete(leases).where(
                        leases.c.name == self.lease_name, leases.c.owner == self.owner
                    )
                )
        except Exception as e:  # shutting down: the lease expires on its own
            _log.warning("could not release the lease", extra={"error": str(e)})

    def _lease_owner(self) -> str | None:
        try:
            with self.db.read() as conn:
                row = conn.execute(select(leases).where(leases.c.name == self.lease_name)).first()
        except Exception:
            return None
        return row.owner if row is not None and row.expires_at > time.time() else None

    def _request_anchor(self) -> None:
        # Serialized: two API processes asked at once would both delete, then both insert.
        with self.db.write(serialized=True) as conn:
            conn.execute(delete(node_meta).where(node_meta.c.key == _ANCHOR_REQUEST_KEY))
            conn.execute(node_meta.insert().values(key=_ANCHOR_REQUEST_KEY, value=str(time.time())))

    def _take_anchor_request(self) -> bool:
        with self.db.read() as conn:
            requested = conn.execute(
                select(node_meta.c.value).where(node_meta.c.key == _ANCHOR_REQUEST_KEY)
            ).first()
        if requested is None:
            return False
        with self.db.write(urgent=True) as conn:
            conn.execute(delete(node_meta).where(node_meta.c.key == _ANCHOR_REQUEST_KEY))
        return True


def _full_batch_pending(conn: Connection, size: int) -> bool:
    rv = record_versions
    return (
        conn.execute(
            select(rv.c.id)
            .where(rv.c.batch_seq.is_(None))
            .order_by(rv.c.id)
            .offset(size - 1)
            .limit(1)
        ).first()
        is not None
    )


def _owner_died(owner: str) -> bool:
    """Whether a lease owner is a process of this host that no longer exists.

    Lets a restarted node take over at once instead of waiting out the lease of the process
    it replaces. Safety does not depend on it: sealing re-checks the lease inside its
    transaction, and a seq can be anchored only once on chain.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _crash_point(settings: Settings, name: str) -> None:
    """Test hook: die here without any cleanup, as SIGKILL would (CREDIT_LEDGER_TEST_CRASH_AT)."""
    if settings.test_crash_at == name:
        _log.warning("test crash point reached; exiting", extra={"point": name})
        for handler in logging.getLogger("node_api").handlers:
            handler.flush()
        os._exit(137)


def main(argv: list[str] | None = None) -> int:
    """``python -m node_api.worker``: the anchoring worker as its own process."""
    from node_api.services import Services

    parser = argparse.ArgumentParser(description="credit-ledger anchoring worker")
    parser.add_argument(
        "--once", action="store_true", help="one cycle (seal and send all), then exit"
    )
    args = parser.parse_args(argv)
    settings = Settings()
    services = Services.build(settings, start_worker=False, worker=True, api=False)
    assert services.worker is not None
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, registry=services.metrics.registry)
    if args.once:
        result = services.worker.anchor_now()
        _log.info("anchoring done", extra={"result": result})
        services.close()
        return 0
    worker = services.worker

    def _on_signal(signum: int, _frame: Any) -> None:
        _log.info("stopping on signal", extra={"signal": signum})
        worker.request_stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    worker.run()
    services.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
