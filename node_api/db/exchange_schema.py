"""Tables of the exchange part of the node: integrity reports and other regions' disclosures.

They form their own migration component (``exchange``), numbered independently of the
core's steps. As in ``schema.py``, each step builds the tables as they were at that step
with its own MetaData; the module-level tables below are the current shape, for queries.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

from node_api.db.migrations import Component, Migration
from node_api.db.tables import AutoId

__all__ = ["EXCHANGE", "integrity_reports", "foreign_disclosures"]

_COUNT_COLUMNS = (
    "verified",
    "tampered",
    "unanchored",
    "superseded",
    "revoked",
    "wrong_region",
    "missing",
)


# While step 1 is the component's head, the step and the query tables share these builders;
# a later step that changes a table must first freeze step 1's shape inside its function.
def _integrity_reports(meta: MetaData) -> Table:
    return Table(
        "integrity_reports",
        meta,
        Column("id", AutoId, primary_key=True, autoincrement=True),
        Column("kind", String(16), nullable=False),  # import | check
        Column("region", BigInteger),  # the region whose package was checked
        Column("from_seq", BigInteger),
        Column("to_seq", BigInteger),
        # running | completed | rejected | unavailable
        Column("status", String(16), nullable=False),
        Column("requested_by", String(200), nullable=False),
        Column("created_at", Float, nullable=False),
        Column("finished_at", Float),
        *(Column(name, BigInteger, nullable=False, default=0) for name in _COUNT_COLUMNS),
        Column("endorsed", Integer, nullable=False, default=0),
        Column("report_json", Text),
        Index("ix_integrity_reports_region_created", "region", "created_at"),
    )


def _foreign_disclosures(meta: MetaData) -> Table:
    # Keyed by the leaf's position, which the chain fixes: the same leaf imported twice is
    # one row, and a row can only ever hold a disclosure that verified against that leaf.
    return Table(
        "foreign_disclosures",
        meta,
        Column("region", BigInteger, primary_key=True, autoincrement=False),
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("leaf_index", Integer, primary_key=True, autoincrement=False),
        Column("record_key", LargeBinary(32), nullable=False),
        Column("version", Integer, nullable=False),
        Column("status", SmallInteger, nullable=False),
        Column("uscc", String(18), nullable=False, index=True),
        Column("record_type", String(40), nullable=False),
        Column("leaf_hash", LargeBinary(32), nullable=False),
        Column("disclosure_json", Text, nullable=False),
        Column("verdict", String(16), nullable=False),
        Column("report_id", BigInteger),
        Column("stored_at", Float, nullable=False),
        Index("ix_foreign_disclosures_key", "region", "record_key", "version"),
    )


def _v1_reports_and_foreign_disclosures(conn: Connection) -> None:
    meta = MetaData()
    _integrity_reports(meta)
    _foreign_disclosures(meta)
    meta.create_all(conn)


EXCHANGE = Component(
    "exchange",
    (
        Migration(
            1, "integrity reports and foreign disclosures", _v1_reports_and_foreign_disclosures
        ),
    ),
)

_metadata = MetaData()
integrity_reports = _integrity_reports(_metadata)
foreign_disclosures = _foreign_disclosures(_metadata)
