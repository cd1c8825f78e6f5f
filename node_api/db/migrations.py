"""A small versioned migration runner: ordered steps per component, recorded in schema_version.

Each component (the node core, and later e.g. the exchange) owns an ordered list of
``Migration`` steps numbered 1, 2, 3...; ``schema_version`` holds one row per applied step.
Components are independent, so two teams can add steps without renumbering each other's.
Every step runs in its own transaction under a lock (PostgreSQL advisory lock, SQLite's
write lock), so an API process and a worker process starting together migrate once.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    inspect,
    select,
)
from sqlalchemy.exc import OperationalError

from node_api.db.engine import Database

__all__ = ["Migration", "Component", "migrate", "current_versions", "add_column", "SchemaError"]

_log = logging.getLogger("node_api.db.migrations")

_T = TypeVar("_T")
# How long a process starting with others waits for their migration on SQLite.
_WAIT_FOR_MIGRATION_SECONDS = 3600.0
# Arbitrary constant key for pg_advisory_xact_lock ("CL" "MIGR").
_PG_LOCK_KEY = 0x434C_4D49_4752

_meta = MetaData()
schema_version = Table(
    "schema_version",
    _meta,
    Column("component", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("applied_at", Float, nullable=False),
)


class SchemaError(RuntimeError):
    """The database schema is newer than this code, or a migration step is malformed."""


@dataclass(frozen=True)
class Migration:
    """One step: ``upgrade(conn)`` moves a component from ``version - 1`` to ``version``."""

    version: int
    name: str
    upgrade: Callable[[Connection], None]


@dataclass(frozen=True)
class Component:
    """A named, ordered list of migrations (versions 1..n without gaps)."""

    name: str
    migrations: tuple[Migration, ...]

    def __post_init__(self) -> None:
        versions = [m.version for m in self.migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise SchemaError(f"{self.name}: migration versions must be 1..n, got {versions}")

    @property
    def head(self) -> int:
        """The version this code expects."""
        return len(self.migrations)


def current_versions(db: Database) -> dict[str, int]:
    """Applied version per component (empty for a fresh database)."""
    with db.read() as conn:
        if not inspect(conn).has_table("schema_version"):
            return {}
        rows = conn.execute(select(schema_version.c.component, schema_version.c.version)).all()
    versions: dict[str, int] = {}
    for component, version in rows:
        versions[component] = max(versions.get(component, 0), version)
    return versions


def _lock(conn: Connection, db: Database) -> None:
    db.lock(conn, _PG_LOCK_KEY)


def _applied(conn: Connection, component: str) -> int:
    value = conn.execute(
        select(schema_version.c.version)
        .where(schema_version.c.component == component)
        .order_by(schema_version.c.version.desc())
        .limit(1)
    ).scalar()
    return int(value or 0)


def migrate(
    db: Database, components: Iterable[Component], *, target: dict[str, int] | None = None
) -> dict[str, int]:
    """Apply every pending step (up to ``target[component]`` if given); return the versions."""

    def create_table() -> None:
        with db.write() as conn:
            _lock(conn, db)
            schema_version.create(conn, checkfirst=True)

    _waiting_for_others(db, create_table)
    result: dict[str, int] = {}
    for component in components:
        goal = component.head if target is None else target.get(component.name, component.head)
        apply_next = functools.partial(_apply_next, db, component, goal)
        applied = None
        while applied is None:
            applied = _waiting_for_others(db, apply_next)
        result[component.name] = applied
    return result


def _waiting_for_others(db: Database, action: Callable[[], _T]) -> _T:
    """``action()``; on SQLite, again while another process holds the write lock.

    A step may take minutes on a large database (v4 rewrites a table); the other processes
    of the node, started with it, wait for it instead of failing after the lock timeout.
    """
    deadline = time.monotonic() + _WAIT_FOR_MIGRATION_SECONDS
    while True:
        try:
            return action()
        except OperationalError as e:
            if not db.is_sqlite or "locked" not in str(e) or time.monotonic() > deadline:
                raise
            _log.warning("schema migration waits for another process holding the database")


def _apply_next(db: Database, component: Component, goal: int) -> int | None:
    """Apply the next step of ``component``; None, or the version if there is nothing to do."""
    with db.write() as conn:
        _lock(conn, db)
        applied = _applied(conn, component.name)
        if applied > component.head:
            raise SchemaError(
                f"database has {component.name} schema v{applied}, this code knows "
                f"v{component.head}: upgrade the node software"
            )
        if applied >= goal:
            return applied
        step = component.migrations[applied]
        # A step may rewrite a table (v4 on SQLite): say what the node is doing.
        _log.info(
            "schema migrating",
            extra={"component": component.name, "version": step.version, "step": step.name},
        )
        started = time.monotonic()
        step.upgrade(conn)
        conn.execute(
            schema_version.insert().values(
                component=component.name,
                version=step.version,
                name=step.name,
                applied_at=time.time(),
            )
        )
    _log.info(
        "schema migrated",
        extra={
            "component": component.name,
            "version": step.version,
            "step": step.name,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return None


def add_column(conn: Connection, table: str, column: Column) -> None:  # type: ignore[type-arg]
    """``ALTER TABLE ... ADD COLUMN`` with the column type rendered for the connection's dialect."""
    type_sql = column.type.compile(dialect=conn.dialect)
    ddl = f"ALTER TABLE {table} ADD COLUMN {column.name} {type_sql}"
    if column.server_default is not None:
        default = column.server_default.arg  # type: ignore[attr-defined]
        ddl += f" DEFAULT {default.text if hasattr(default, 'text') else repr(default)}"
    if not column.nullable:
        ddl += " NOT NULL"
    conn.exec_driver_sql(ddl)
