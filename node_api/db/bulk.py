"""Bulk inserts through the driver's executemany, without per-row SQLAlchemy processing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table

__all__ = ["insert_many"]


def insert_many(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) with one driver-level executemany.

    SQLAlchemy's executemany spends more time binding 10,000 rows of hashes than SQLite
    spends storing them; the values here are plain ints, str and bytes, which both drivers
    (sqlite3, psycopg) take as they are.
    """
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.paramstyle == "qmark":
        marks = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", list(rows))
    else:  # psycopg: format / pyformat
        marks = ", ".join("%s" for _ in columns)
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", list(rows))
