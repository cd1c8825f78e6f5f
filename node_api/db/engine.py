"""Database engine for SQLite (embedded default) and PostgreSQL, with explicit transactions."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

__all__ = ["Database"]

_log = logging.getLogger("node_api.db")
# Arbitrary constant key of pg_advisory_xact_lock for serialized writes ("CL" "SERIAL").
_SERIAL_KEY = 0x434C_5345_5249
# SQLite page cache of the one connection that does a process's writes (the others keep
# SQLite's default of 2 MiB). A bulk submission inserts 10,000 records into B-trees keyed
# by random values (records' key, USCC): with 2 MiB, pages it touched were evicted (dirty
# ones spilled to the WAL) and read again within the same transaction; one writing
# connection keeps its cache between transactions, so the next one finds the indexes' upper
# levels and recent leaves in memory (bench/findings.md).
_SQLITE_WRITE_CACHE_KIB = 256 * 1024
# Checkpoint the WAL into the database file at 250,000 pages (about 1 GiB) instead of
# SQLite's 1,000: an index page dirtied by several bulk submissions between two checkpoints
# is copied back once (bench/findings.md).
_SQLITE_CHECKPOINT_PAGES = 250_000


class Database:
    """An engine plus ``read()`` / ``write()`` transaction scopes.

    SQLite runs in WAL mode with ``synchronous=FULL``: a 202 promises that the version is
    committed, and in WAL mode ``NORMAL`` may lose the last commits on power loss (not on a
    process crash). ``FULL`` costs one fsync per commit, which bulk intake amortises over
    up to 10,000 records. Write scopes take SQLite's write lock up front (``BEGIN
    IMMEDIATE``): a deferred transaction that reads and then writes fails with
    SQLITE_BUSY_SNAPSHOT when another writer committed in between, and busy_timeout cannot
    retry that case. On SQLite a write waits up to ``lock_timeout`` seconds behind the other
    writers of its process, and as long again for another process holding the write lock,
    then fails with "database is locked" (a 503 at the API).

    ``engine`` serves reads; ``write_engine`` serves ``write()``: on a SQLite file, an
    engine of its own with one connection, whose page cache stays warm between writes.
    """

    def __init__(self, url: str, *, pool_size: int = 10, lock_timeout: float = 30.0) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            database = self.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            connect_args = {"check_same_thread": False, "timeout": lock_timeout}
            self.engine: Engine = create_engine(
                self.url, connect_args=connect_args, pool_size=pool_size, max_overflow=20
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
            # Every write of this process runs on this one connection (the write gate admits
            # one writer at a time), so its large page cache stays warm.
            self.write_engine: Engine = create_engine(
                self.url, connect_args=connect_args, pool_size=1, max_overflow=0
            )
            event.listen(self.write_engine, "connect", _sqlite_on_connect_writer)
            event.listen(self.write_engine, "begin", _sqlite_on_begin)
            self._write_gate: _WriteGate | None = _WriteGate(lock_timeout)
        elif self.dialect == "postgresql":
            self.engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True
            )
            self.write_engine = self.engine
            self._write_gate = None
        else:
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or postgresql")

    @property
    def is_sqlite(self) -> bool:
        """Whether the backend is SQLite."""
        return self.dialect == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot for all its statements.

        SQLite gives that to any transaction; PostgreSQL's default READ COMMITTED takes a
        new snapshot per statement, so a page built from several queries could mix states.
        """
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @contextmanager
    def write(self, *, serialized: bool = False, urgent: bool = False) -> Iterator[Connection]:
        """A write transaction, committed on normal exit and rolled back on an exception.

        SQLite's write transactions run one at a time (``BEGIN IMMEDIATE``); those of one
        process queue in this object first, ``urgent`` ones (the anchoring worker's short
        transactions) ahead of the others; between processes SQLite's busy handler decides.
        On PostgreSQL,
        ``serialized`` makes this one wait for every other serialized write of the database
        (a transaction-level advisory lock): for read-then-insert steps that processes
        starting together run at once, such as claiming the region or syncing API keys,
        which READ COMMITTED would otherwise let both insert (a unique violation).
        """
        gate = self._write_gate.hold(urgent) if self._write_gate else nullcontext()
        with gate, self.write_engine.connect() as conn:
            conn.execution_options(credit_ledger_immediate=True)
            with conn.begin():
                if serialized:
                    self.lock(conn, _SERIAL_KEY)
                yield conn

    def lock(self, conn: Connection, key: int) -> None:
        """Inside a write transaction: wait for every other holder of ``key`` to commit.

        A PostgreSQL advisory transaction lock; SQLite's write transaction already holds
        the database's only write lock (``BEGIN IMMEDIATE``).
        """
        if self.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def ping(self) -> None:
        """Run a trivial query; raises if the database is unreachable."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def describe(self) -> str:
        """The URL without password, for logs and health."""
        return self.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()


class _WriteGate:
    """One writer at a time in this process; urgent writers go before waiting others.

    SQLite's busy handler polls with sleeps of up to 100 ms: the write lock stayed idle
    while a waiting writer slept, and the anchoring worker, one short transaction at a
    time, fell millions of versions behind 10,000-record submissions (bench/findings.md).
    A writer waits at most ``timeout`` seconds, then fails as SQLite's busy timeout does.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._changed = threading.Condition()
        self._busy = False
        self._waiting = 0
        self._urgent_waiting = 0

    @contextmanager
    def hold(self, urgent: bool) -> Iterator[None]:
        with self._changed:
            self._waiting += 1
            self._urgent_waiting += urgent
            try:
                free = self._changed.wait_for(
                    lambda: not self._busy and (urgent or not self._urgent_waiting), self.timeout
                )
            finally:
                self._waiting -= 1
                self._urgent_waiting -= urgent
            if not free:
                raise OperationalError(
                    "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
                )
            self._busy = True
        try:
            yield
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Hand transaction control to SQLAlchemy's "begin" event (the pysqlite recipe): the
    # sqlite3 module would otherwise open transactions lazily on its own.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    _enable_wal(cursor)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA wal_autocheckpoint={_SQLITE_CHECKPOINT_PAGES}")
    cursor.close()


def _sqlite_on_connect_writer(dbapi_connection: Any, record: Any) -> None:
    _sqlite_on_connect(dbapi_connection, record)
    dbapi_connection.execute(f"PRAGMA cache_size=-{_SQLITE_WRITE_CACHE_KIB}")


def _enable_wal(cursor: Any, wait_seconds: float = 30.0) -> None:
    # Switching a new database to WAL takes an exclusive lock and answers "database is
    # locked" at once, without the busy handler, while another connection holds a lock:
    # nodes or migrations starting together on a fresh file failed that way (seen in CI).
    # WAL is persistent, so the first connection that gets through sets it for all.
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("credit_ledger_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
