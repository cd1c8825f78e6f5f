"""Migration steps of the node core, and the list of components the runner applies.

Each step defines the tables it creates with its own MetaData, as they were at that step:
later changes to ``tables.py`` must not alter what an old step creates, or an upgraded
database would differ from a fresh one.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)

from node_api.db.exchange_schema import EXCHANGE
from node_api.db.migrations import Component, Migration, SchemaError, add_column
from node_api.db.tables import AutoId

__all__ = ["CORE", "COMPONENTS"]


def _v1_version_columns() -> list[Column]:  # type: ignore[type-arg]
    """The columns of record_versions as v1 created them (new objects on every call)."""
    return [
        Column("id", AutoId, primary_key=True, autoincrement=True),
        Column("record_key", LargeBinary(32), ForeignKey("records.record_key"), nullable=False),
        Column("version", Integer, nullable=False),
        Column("status", SmallInteger, nullable=False),
        Column("record_json", Text, nullable=False),
        Column("salt", LargeBinary(32), nullable=False),
        Column("commitment", LargeBinary(32), nullable=False),
        Column("prev_leaf", LargeBinary(32), nullable=False),
        Column("leaf_hash", LargeBinary(32), nullable=False),
        Column("reason", Text),
        Column("submitted_at", Float, nullable=False),
        Column("batch_seq", BigInteger),
        Column("leaf_index", Integer),
    ]


def _v1_records_and_batches(conn: Connection) -> None:
    meta = MetaData()
    Table(
        "node_meta",
        meta,
        Column("key", String(64), primary_key=True),
        Column("value", Text, nullable=False),
    )
    Table(
        "records",
        meta,
        Column("record_key", LargeBinary(32), primary_key=True),
        Column("region", BigInteger, nullable=False),
        Column("uscc", String(18), nullable=False, index=True),
        Column("record_type", String(40), nullable=False),
        Column("record_id", Text, nullable=False),
        Column("latest_version", Integer, nullable=False),
        Column("created_at", Float, nullable=False),
        Column("updated_at", Float, nullable=False),
    )
    versions = Table(
        "record_versions",
        meta,
        *_v1_version_columns(),
        UniqueConstraint("record_key", "version", name="uq_record_versions_key_version"),
        Index("ix_record_versions_batch", "batch_seq", "leaf_index"),
    )
    # The worker's "what is pending, oldest first" scan reads only unsealed rows.
    Index(
        "ix_record_versions_pending",
        versions.c.id,
        sqlite_where=versions.c.batch_seq.is_(None),
        postgresql_where=versions.c.batch_seq.is_(None),
    )
    Table(
        "batches",
        meta,
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("size", Integer, nullable=False),
        Column("root", LargeBinary(32), nullable=False),
        Column("manifest_hash", LargeBinary(32), nullable=False),
        Column("leaves_digest", LargeBinary(32), nullable=False),
        Column("state", String(16), nullable=False),
        Column("sealed_at", Float, nullable=False),
        Column("tx_hash", String(66)),
        Column("block_number", BigInteger),
        Column("anchored_at", Float),
        Column("gas_used", BigInteger),
    )
    meta.create_all(conn)


def _v2_auth_and_audit(conn: Connection) -> None:
    meta = MetaData()
    Table(
        "api_keys",
        meta,
        Column("key_hash", String(64), primary_key=True),
        Column("role", String(16), nullable=False),
        Column("label", String(200), nullable=False),
        Column("source", String(16), nullable=False),
        Column("created_at", Float, nullable=False),
    )
    Table(
        "member_nonces",
        meta,
        Column("address", String(42), primary_key=True),
        Column("nonce", String(64), primary_key=True),
        Column("seen_at", Float, nullable=False, index=True),
    )
    Table(
        "access_log",
        meta,
        Column("id", AutoId, primary_key=True, autoincrement=True),
        Column("at", Float, nullable=False, index=True),
        Column("principal", String(200), nullable=False),
        Column("role", String(40), nullable=False),
        Column("action", String(40), nullable=False),
        Column("record_key", LargeBinary(32)),
        Column("uscc", String(18), index=True),
        Column("version", Integer),
        Column("purpose", Text, nullable=False),
        Column("remote_addr", String(64)),
    )
    meta.create_all(conn)


def _v3_worker_lease_and_send_state(conn: Connection) -> None:
    meta = MetaData()
    Table(
        "leases",
        meta,
        Column("name", String(64), primary_key=True),
        Column("owner", String(200), nullable=False),
        Column("expires_at", Float, nullable=False),
        Column("acquired_at", Float, nullable=False),
    )
    meta.create_all(conn)
    add_column(
        conn, "batches", Column("send_attempts", Integer, nullable=False, server_default=text("0"))
    )
    add_column(conn, "batches", Column("last_error", Text))
    add_column(conn, "batches", Column("submitter", String(42)))
    add_column(conn, "batches", Column("last_sent_at", Float))


def _v4_versions_keyed_by_record_number(conn: Connection) -> None:
    """Number the records in order of arrival and key versions by (number, version).

    The unique index on (record_key, version) put every new version at a random place of
    a large B-tree; (rec_no, version) puts it at the end (bench/findings.md). Versions keep
    their record_key column.
    """
    if conn.dialect.name == "sqlite":
        _v4_sqlite(conn)
    else:
        _v4_postgresql(conn)


def _v4_postgresql(conn: Connection) -> None:
    sql = conn.exec_driver_sql
    sql("ALTER TABLE records ADD COLUMN rec_no BIGINT")
    sql(
        "UPDATE records SET rec_no = numbered.n FROM (SELECT record_key, row_number() "
        "OVER (ORDER BY created_at, record_key) AS n FROM records) AS numbered "
        "WHERE records.record_key = numbered.record_key"
    )
    sql("ALTER TABLE records ALTER COLUMN rec_no SET NOT NULL")
    sql("CREATE UNIQUE INDEX ix_records_rec_no ON records (rec_no)")
    # Submissions run concurrently on PostgreSQL: they draw numbers from a sequence.
    sql("CREATE SEQUENCE records_rec_no_seq")
    sql("SELECT setval('records_rec_no_seq', coalesce(max(rec_no), 0) + 1, false) FROM records")
    sql("ALTER TABLE record_versions ADD COLUMN rec_no BIGINT")
    sql(
        "UPDATE record_versions SET rec_no = records.rec_no FROM records "
        "WHERE records.record_key = record_versions.record_key"
    )
    sql("ALTER TABLE record_versions ALTER COLUMN rec_no SET NOT NULL")
    sql("ALTER TABLE record_versions DROP CONSTRAINT uq_record_versions_key_version")
    sql(
        "ALTER TABLE record_versions ADD CONSTRAINT uq_record_versions_rec_version "
        "UNIQUE (rec_no, version)"
    )


def _v4_sqlite(conn: Connection) -> None:
    # SQLite cannot drop a table constraint: record_versions is rebuilt with its rows, ids
    # and indexes, in the step's one transaction.
    sql = conn.exec_driver_sql
    sql("ALTER TABLE records ADD COLUMN rec_no BIGINT NOT NULL DEFAULT 0")
    sql("UPDATE records SET rec_no = rowid")
    sql("CREATE UNIQUE INDEX ix_records_rec_no ON records (rec_no)")
    meta = MetaData()
    Table("records", meta, Column("record_key", LargeBinary(32), primary_key=True))
    Table(
        "record_versions_v4",
        meta,
        *_v1_version_columns(),
        Column("rec_no", BigInteger, nullable=False),
        UniqueConstraint("rec_no", "version", name="uq_record_versions_rec_version"),
    ).create(conn)
    copied = tuple(column.name for column in _v1_version_columns())
    found = {c["name"] for c in inspect(conn).get_columns("record_versions")}
    if found != set(copied):
        raise SchemaError(f"record_versions has columns {sorted(found)}, v4 copies {copied}")
    sql(
        f"INSERT INTO record_versions_v4 ({', '.join(copied)}, rec_no) "
        f"SELECT {', '.join('v.' + name for name in copied)}, r.rec_no "
        "FROM record_versions AS v JOIN records AS r ON r.record_key = v.record_key ORDER BY v.id"
    )
    count = "SELECT count(*) FROM {}"
    before, after = (
        sql(count.format(t)).scalar() for t in ("record_versions", "record_versions_v4")
    )
    if before != after:  # a version without its record (foreign keys were off at some time)
        raise SchemaError(f"{before} versions, {after} of them with their record: not migrated")
    sql("DROP TABLE record_versions")
    sql("ALTER TABLE record_versions_v4 RENAME TO record_versions")
    sql("CREATE INDEX ix_record_versions_batch ON record_versions (batch_seq, leaf_index)")
    sql("CREATE INDEX ix_record_versions_pending ON record_versions (id) WHERE batch_seq IS NULL")


CORE = Component(
    "node",
    (
        Migration(1, "records, versions and batches", _v1_records_and_batches),
        Migration(2, "api keys, member nonces and access log", _v2_auth_and_audit),
        Migration(3, "worker lease and batch send state", _v3_worker_lease_and_send_state),
        Migration(4, "versions keyed by record number", _v4_versions_keyed_by_record_number),
    ),
)

# Components migrated at start, in this order. Another part of the node (e.g. the exchange
# and integrity checks) adds its tables by appending its own Component here; its steps are
# numbered independently of the core's, and it may reference core tables.
COMPONENTS: tuple[Component, ...] = (CORE, EXCHANGE)
