"""Receipts and disclosures of stored versions (DESIGN §5), built from the database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, select, update

import ledger
from ledger.errors import ChainError
from node_api.db.tables import batches, record_versions, records
from node_api.errors import NotAnchored, NotFound, Unavailable
from node_api.intake import STATUS_NAMES, version_state

__all__ = ["VersionRow", "load_version", "load_versions", "build_receipt", "build_disclosure"]


@dataclass(frozen=True, slots=True)
class VersionRow:
    """One stored version with its record identity and batch."""

    record_key: bytes
    region: int
    uscc: str
    record_type: str
    record_id: str
    version: int
    status: int
    record_json: str
    salt: bytes
    commitment: bytes
    prev_leaf: bytes
    leaf_hash: bytes
    reason: str | None
    submitted_at: float
    batch_seq: int | None
    leaf_index: int | None
    batch_state: str | None
    batch_root: bytes | None
    batch_size: int | None
    tx_hash: str | None
    block_number: int | None
    anchored_at: float | None

    @property
    def state(self) -> str:
        """queued, sealed, anchored or conflict."""
        return version_state(self.batch_seq, self.batch_state)

    @property
    def anchored(self) -> bool:
        """Whether the version's batch is confirmed on chain."""
        return self.batch_state == "anchored"

    def summary(self) -> dict[str, Any]:
        """JSON of the version without its payload (what verifiers may see)."""
        return {
            "record_key": self.record_key.hex(),
            "record_type": self.record_type,
            "version": self.version,
            "status": STATUS_NAMES[self.status],
            "state": self.state,
            "submitted_at": self.submitted_at,
            "commitment": self.commitment.hex(),
            "prev_leaf": self.prev_leaf.hex(),
            "leaf_hash": self.leaf_hash.hex(),
            "batch": None
            if self.batch_seq is None
            else {"seq": self.batch_seq, "index": self.leaf_index, "state": self.batch_state},
            "tx_hash": self.tx_hash,
            "anchored_at": self.anchored_at,
        }

    def detail(self) -> dict[str, Any]:
        """JSON of the version with payload and revocation reason (for roles that may see it)."""
        return {**self.summary(), "record": json.loads(self.record_json), "reason": self.reason}


def _version_query() -> Any:
    rv = record_versions
    return select(
        rv.c.record_key,
        records.c.region,
        records.c.uscc,
        records.c.record_type,
        records.c.record_id,
        rv.c.version,
        rv.c.status,
        rv.c.record_json,
        rv.c.salt,
        rv.c.commitment,
        rv.c.prev_leaf,
        rv.c.leaf_hash,
        rv.c.reason,
        rv.c.submitted_at,
        rv.c.batch_seq,
        rv.c.leaf_index,
        batches.c.state.label("batch_state"),
        batches.c.root.label("batch_root"),
        batches.c.size.label("batch_size"),
        batches.c.tx_hash,
        batches.c.block_number,
        batches.c.anchored_at,
    ).select_from(
        rv.join(records, records.c.rec_no == rv.c.rec_no).outerjoin(
            batches, batches.c.seq == rv.c.batch_seq
        )
    )


def _row(row: Any) -> VersionRow:
    data = row._asdict()
    for name in ("record_key", "salt", "commitment", "prev_leaf", "leaf_hash", "batch_root"):
        if data[name] is not None:
            data[name] = bytes(data[name])
    return VersionRow(**data)


def load_version(conn: Connection, record_key: bytes, version: int | None = None) -> VersionRow:
    """A version of a record (the latest if ``version`` is None); NotFound if absent."""
    rv = record_versions
    query = _version_query().where(records.c.record_key == record_key)
    if version is None:
        query = query.where(rv.c.version == records.c.latest_version)
    else:
        query = query.where(rv.c.version == version)
    row = conn.execute(query).first()
    if row is None:
        what = "record" if version is None else f"version {version} of record"
        raise NotFound(f"no {what} {record_key.hex()} at this node", record_key=record_key.hex())
    return _row(row)


def load_versions(
    conn: Connection,
    *,
    record_key: bytes | None = None,
    uscc: str | None = None,
    record_types: tuple[str, ...] = (),
) -> list[VersionRow]:
    """Every version of one record or of every record of an entity, oldest first."""
    rv = record_versions
    query = _version_query()
    if record_key is not None:
        query = query.where(records.c.record_key == record_key)
    if uscc is not None:
        query = query.where(records.c.uscc == uscc)
    if record_types:
        query = query.where(records.c.record_type.in_(record_types))
    rows = conn.execute(query.order_by(rv.c.id)).all()
    return [_row(r) for r in rows]


def latest_versions_of(
    conn: Connection, uscc: str, record_types: tuple[str, ...]
) -> list[VersionRow]:
    """The latest version of each record of ``uscc`` with one of ``record_types``."""
    rv = record_versions
    query = (
        _version_query()
        .where(
            and_(
                records.c.uscc == uscc,
                records.c.record_type.in_(record_types),
                rv.c.version == records.c.latest_version,
            )
        )
        .order_by(rv.c.id)
    )
    return [_row(r) for r in conn.execute(query).all()]


def _tx_hash(services: Any, row: VersionRow) -> str:
    """The anchoring transaction; looked up by its event if the worker could not record it."""
    if row.tx_hash:
        return row.tx_hash
    events = services.chain.rpc(
        "getLogs",
        lambda: services.chain.anchor.batches_anchored(
            row.region,
            from_seq=row.batch_seq,
            to_seq=row.batch_seq,
            from_block=row.block_number,
            to_block=row.block_number,
        ),
    )
    if not events:
        raise Unavailable(
            f"the anchoring transaction of batch {row.batch_seq} is not found on chain"
        )
    with services.db.write() as write:
        write.execute(
            update(batches).where(batches.c.seq == row.batch_seq).values(tx_hash=events[0].tx_hash)
        )
    return str(events[0].tx_hash)


def build_receipt(conn: Connection, services: Any, row: VersionRow) -> ledger.Receipt:
    """The receipt of an anchored version; NotAnchored while its batch is not on chain."""
    if not row.anchored:
        raise NotAnchored(
            f"version {row.version} of {row.record_key.hex()} is {row.state}; "
            "its receipt exists once its batch is anchored",
            state=row.state,
            record_key=row.record_key.hex(),
            version=row.version,
        )
    assert row.batch_seq is not None and row.leaf_index is not None
    assert row.batch_root is not None and row.batch_size is not None
    try:
        deployment = services.chain.deployment
    except ChainError as e:
        raise Unavailable(f"receipts need the deployment file: {e}") from e
    tree = services.proof_cache.tree(conn, row.batch_seq)
    tx_hash = _tx_hash(services, row)
    return ledger.Receipt(
        chain=ledger.ChainAnchor(
            chain_id=deployment.chain_id,
            anchor_contract=deployment.anchor,
            tx_hash=bytes.fromhex(tx_hash.removeprefix("0x")),
            block_number=int(row.block_number or 0),
        ),
        batch=ledger.BatchRef(
            region=row.region, seq=row.batch_seq, root=row.batch_root, size=row.batch_size
        ),
        leaf_index=row.leaf_index,
        leaf=ledger.Leaf(
            record_key=row.record_key,
            version=row.version,
            status=ledger.LeafStatus(row.status),
            prev_leaf=row.prev_leaf,
            commitment=row.commitment,
        ),
        proof=tuple(tree.inclusion_proof(row.leaf_index)),
    )


def build_disclosure(conn: Connection, services: Any, row: VersionRow) -> ledger.Disclosure:
    """Receipt plus record and salt."""
    receipt = build_receipt(conn, services, row)
    return ledger.Disclosure(
        receipt=receipt, record=ledger.parse_record(json.loads(row.record_json)), salt=row.salt
    )
