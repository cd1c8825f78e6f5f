"""The current node schema as SQLAlchemy Core tables, for queries (migrations create it).

Hashes are stored as raw 32-byte binaries (BLOB / BYTEA); times as unix seconds (float).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
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
)

__all__ = [
    "metadata",
    "node_meta",
    "records",
    "record_versions",
    "batches",
    "api_keys",
    "member_nonces",
    "access_log",
    "leases",
    "AutoId",
]

# BIGSERIAL on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" aliases the rowid.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

node_meta = Table(
    "node_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

records = Table(
    "records",
    metadata,
    Column("record_key", LargeBinary(32), primary_key=True),
    Column("region", BigInteger, nullable=False),
    Column("uscc", String(18), nullable=False, index=True),
    Column("record_type", String(40), nullable=False),
    Column("record_id", Text, nullable=False),
    Column("latest_version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # The record's number at this node, in order of arrival (schema v4): versions are
    # keyed by it, so their unique index grows at its end instead of at random places.
    Column("rec_no", BigInteger, nullable=False),
    Index("ix_records_rec_no", "rec_no", unique=True),
)

record_versions = Table(
    "record_versions",
    metadata,
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
    Column("rec_no", BigInteger, nullable=False),
    UniqueConstraint("rec_no", "version", name="uq_record_versions_rec_version"),
    Index("ix_record_versions_batch", "batch_seq", "leaf_index"),
)

batches = Table(
    "batches",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("size", Integer, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("manifest_hash", LargeBinary(32), nullable=False),
    Column("leaves_digest", LargeBinary(32), nullable=False),
    Column("state", String(16), nullable=False),  # sealed | anchored | conflict
    Column("sealed_at", Float, nullable=False),
    Column("tx_hash", String(66)),
    Column("block_number", BigInteger),
    Column("anchored_at", Float),
    Column("gas_used", BigInteger),
    # v3
    Column("send_attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("submitter", String(42)),
    Column("last_sent_at", Float),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("label", String(200), nullable=False),
    Column("source", String(16), nullable=False),  # config | cli
    Column("created_at", Float, nullable=False),
)

member_nonces = Table(
    "member_nonces",
    metadata,
    Column("address", String(42), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("seen_at", Float, nullable=False, index=True),
)

access_log = Table(
    "access_log",
    metadata,
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

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("acquired_at", Float, nullable=False),
)
