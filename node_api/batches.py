"""Batches: sealing pending versions into a batch, the batch manifest, and proofs of a batch.

Batch manifest (what ``manifestHash`` on chain commits to)::

    manifest = {"format": "credit-ledger/batch-manifest/v1", "region": <int>, "seq": <int>,
                "root": "<hex>", "size": <int>, "leaves_digest": "<hex>"}
    leaves_digest = SHA-256(leaf_hash[0] || leaf_hash[1] || ... || leaf_hash[size-1])
    manifestHash  = SHA-256(JCS(manifest))

Hashes are lower-case hex without 0x. The digest fixes the leaf order independently of the
tree, so an exchange package can be checked against the chain before any proof is folded.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

import ledger
from node_api.db.tables import batches, record_versions

__all__ = [
    "MANIFEST_FORMAT",
    "HeadUpdate",
    "SealedBatch",
    "batch_manifest",
    "manifest_hash",
    "leaves_digest",
    "seal_batch",
    "load_batch",
    "load_leaf_hashes",
    "ProofCache",
]

MANIFEST_FORMAT = "credit-ledger/batch-manifest/v1"


@dataclass(frozen=True, slots=True)
class HeadUpdate:
    """``CreditAnchor.HeadUpdate``: the new head of a record superseded in a batch."""

    record_key: bytes
    leaf_hash: bytes
    version: int
    status: int


@dataclass(frozen=True, slots=True)
class SealedBatch:
    """A batch as sealed in the database: everything ``anchorBatch`` needs."""

    seq: int
    root: bytes
    size: int
    manifest_hash: bytes
    heads: tuple[HeadUpdate, ...]
    state: str = "sealed"
    tx_hash: str | None = None
    block_number: int | None = None


def leaves_digest(leaf_hashes: Sequence[bytes]) -> bytes:
    """SHA-256 over the concatenated leaf hashes in batch order."""
    return hashlib.sha256(b"".join(leaf_hashes)).digest()


def batch_manifest(region: int, seq: int, root: bytes, size: int, digest: bytes) -> dict[str, Any]:
    """The canonical batch manifest (see the module docstring)."""
    return {
        "format": MANIFEST_FORMAT,
        "region": region,
        "seq": seq,
        "root": root.hex(),
        "size": size,
        "leaves_digest": digest.hex(),
    }


def manifest_hash(manifest: dict[str, Any]) -> bytes:
    """SHA-256 of the JCS serialisation of a manifest."""
    return hashlib.sha256(ledger.canonicalize(manifest)).digest()


def seal_batch(
    conn: Connection,
    region: int,
    seq: int,
    limit: int,
    now: float,
    *,
    max_heads: int | None = None,
) -> SealedBatch | None:
    """Assign the oldest ``limit`` pending versions to batch ``seq`` and store the batch.

    Runs inside the caller's write transaction, which must also have checked the worker
    lease and chosen ``seq``: the order, the indexes and the root become durable together,
    before any transaction is sent. Returns None if nothing is pending.

    ``max_heads`` ends the batch early before its (max_heads + 1)-th version > 1: each head
    update costs about 50,000 gas, so a batch of thousands of corrections would not fit in
    a block (30M gas on anvil) and could never be anchored.

    Rows are updated by explicit id, so the batch is exactly the rows read here even if
    (on PostgreSQL) other intake transactions commit meanwhile; only sealing ever changes
    an existing version, and sealing is serialised by the lease.
    """
    rv = record_versions
    picked = conn.execute(
        select(rv.c.id, rv.c.leaf_hash, rv.c.version)
        .where(rv.c.batch_seq.is_(None))
        .order_by(rv.c.id)
        .limit(limit)
    ).all()
    if max_heads is not None:
        heads = 0
        for position, row in enumerate(picked):
            if row[2] > 1:
                heads += 1
                if heads > max_heads:
                    picked = picked[:position]
                    break
    if not picked:
        return None
    ids = [row[0] for row in picked]
    leaves = [bytes(row[1]) for row in picked]
    if conn.dialect.name == "postgresql":
        # One statement instead of one per row: 65,536 rows in a fraction of a second.
        conn.exec_driver_sql(
            "UPDATE record_versions AS rv SET batch_seq = %(seq)s, leaf_index = v.idx "
            "FROM unnest(%(ids)s::bigint[], %(idxs)s::integer[]) AS v(id, idx) WHERE rv.id = v.id",
            {"seq": seq, "ids": ids, "idxs": list(range(len(ids)))},
        )
    elif ids[-1] - ids[0] == len(ids) - 1:
        # The usual case on SQLite: the pending versions are a contiguous run of ids, so
        # one statement assigns them all; per-row updates were 6% of a bulk import's node
        # CPU (bench/findings.md). The run holds exactly the rows picked above.
        conn.exec_driver_sql(
            "UPDATE record_versions SET batch_seq = ?, leaf_index = id - ? "
            "WHERE id BETWEEN ? AND ?",
            (seq, ids[0], ids[0], ids[-1]),
        )
    else:
        conn.exec_driver_sql(
            "UPDATE record_versions SET batch_seq = ?, leaf_index = ? WHERE id = ?",
            [(seq, index, row_id) for index, row_id in enumerate(ids)],
        )
    root = ledger.merkle_root(leaves)
    digest = leaves_digest(leaves)
    mhash = manifest_hash(batch_manifest(region, seq, root, len(leaves), digest))
    conn.execute(
        batches.insert().values(
            seq=seq,
            size=len(leaves),
            root=root,
            manifest_hash=mhash,
            leaves_digest=digest,
            state="sealed",
            sealed_at=now,
        )
    )
    return SealedBatch(seq, root, len(leaves), mhash, _head_updates(conn, seq))


def _head_updates(conn: Connection, seq: int) -> tuple[HeadUpdate, ...]:
    """Head updates of a batch: every version > 1, in leaf order (DESIGN §4)."""
    rv = record_versions
    rows = conn.execute(
        select(rv.c.record_key, rv.c.leaf_hash, rv.c.version, rv.c.status)
        .where(rv.c.batch_seq == seq, rv.c.version > 1)
        .order_by(rv.c.leaf_index)
    ).all()
    return tuple(HeadUpdate(bytes(h[0]), bytes(h[1]), h[2], h[3]) for h in rows)


def load_batch(conn: Connection, seq: int) -> SealedBatch | None:
    """A stored batch with its head updates (versions > 1, in leaf order)."""
    row = conn.execute(select(batches).where(batches.c.seq == seq)).first()
    if row is None:
        return None
    return SealedBatch(
        seq=row.seq,
        root=bytes(row.root),
        size=row.size,
        manifest_hash=bytes(row.manifest_hash),
        heads=_head_updates(conn, seq),
        state=row.state,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
    )


def load_leaf_hashes(conn: Connection, seq: int) -> list[bytes]:
    """Leaf hashes of batch ``seq`` in batch order."""
    rv = record_versions
    rows = conn.execute(
        select(rv.c.leaf_hash).where(rv.c.batch_seq == seq).order_by(rv.c.leaf_index)
    ).scalars()
    return [bytes(h) for h in rows]


class ProofCache:
    """Merkle trees of recently used batches (a sealed batch never changes), LRU-bounded."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._trees: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Lock()

    def tree(self, conn: Connection, seq: int) -> Any:
        """The MerkleTree of batch ``seq`` (built from the database on a miss)."""
        with self._lock:
            tree = self._trees.get(seq)
            if tree is not None:
                self._trees.move_to_end(seq)
                return tree
        tree = ledger.MerkleTree(load_leaf_hashes(conn, seq))
        if self.capacity:
            with self._lock:
                self._trees[seq] = tree
                while len(self._trees) > self.capacity:
                    self._trees.popitem(last=False)
        return tree
