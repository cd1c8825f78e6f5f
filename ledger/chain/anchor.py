"""Typed client of the CreditAnchor contract; implements ledger.verify's AnchorReader protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.chain.client import (
    BlockId,
    BoundContract,
    ChainClient,
    ChainEvent,
    TxResult,
    artifact_abi,
    topic_uint,
)
from ledger.verify import AnchoredBatch, RecordHead

__all__ = [
    "AnchorClient",
    "BatchAnchoredEvent",
    "BatchEndorsedEvent",
    "HeadMovedEvent",
    "HeadUpdate",
    "InclusionQuery",
]

# Above this many sequence numbers a seq range is filtered locally rather than as a topic
# OR-list, which nodes cap (and which grows the request linearly).
_MAX_TOPIC_ALTERNATIVES = 256


def _bytes32(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise ValueError(f"{what} must be 32 bytes, got {value!r}")
    return bytes(value)


@dataclass(frozen=True)
class HeadUpdate:
    """The new head of a record superseded in a batch (every version > 1 it contains).

    ``version`` must be the record's current head version + 1 (2 for a first supersession),
    and ``leaf_hash`` must be a leaf of the batch: the contract cannot check the latter, so a
    verifier proves it with an inclusion proof against the batch named by ``headOf``.
    """

    record_key: bytes
    leaf_hash: bytes
    version: int
    status: int

    def as_abi(self) -> tuple[bytes, bytes, int, int]:
        """The Solidity struct as an ABI tuple."""
        return (
            _bytes32(self.record_key, "record_key"),
            _bytes32(self.leaf_hash, "leaf_hash"),
            self.version,
            self.status,
        )


@dataclass(frozen=True)
class InclusionQuery:
    """One ``verifyInclusion`` question (for batched checks)."""

    region: int
    seq: int
    leaf_hash: bytes
    index: int
    proof: Sequence[bytes]


@dataclass(frozen=True)
class BatchAnchoredEvent:
    """A BatchAnchored log."""

    region: int
    seq: int
    root: bytes
    size: int
    manifest_hash: bytes
    submitter: str
    block_number: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class HeadMovedEvent:
    """A HeadMoved log."""

    region: int
    record_key: bytes
    leaf_hash: bytes
    seq: int
    version: int
    status: int
    block_number: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class BatchEndorsedEvent:
    """A BatchEndorsed log."""

    region: int
    seq: int
    endorser_region: int
    endorser: str
    block_number: int
    tx_hash: str
    log_index: int


def _where(event: ChainEvent) -> dict[str, Any]:
    return {
        "block_number": event.block_number,
        "tx_hash": event.tx_hash,
        "log_index": event.log_index,
    }


class AnchorClient(BoundContract):
    """The CreditAnchor contract at ``address``, through ``client``.

    Structurally an ``ledger.verify.AnchorReader`` (``chain_id``, ``anchor_address``,
    ``batch_of``, ``head_of``).
    """

    def __init__(self, client: ChainClient, address: str, *, deployed_block: int = 0) -> None:
        """Bind to a deployed CreditAnchor; ``deployed_block`` starts event queries."""
        super().__init__(
            client, address, artifact_abi("CreditAnchor"), deployed_block=deployed_block
        )

    # ----------------------------------------------------------------- AnchorReader

    @property
    def chain_id(self) -> int:
        """Chain id (cached by the client)."""
        return self.client.chain_id

    @property
    def anchor_address(self) -> str:
        """Checksum address of the CreditAnchor contract."""
        return self.address

    def batch_of(self, region: int, seq: int) -> AnchoredBatch:
        """Batch ``seq`` of ``region``; all fields zero (size 0) if it was never anchored."""
        root, size, anchored_at, block_number, submitter, manifest_hash = self.call(
            "batchOf", region, seq
        )
        return AnchoredBatch(
            root=bytes(root),
            size=int(size),
            anchored_at=int(anchored_at),
            block_number=int(block_number),
            submitter=submitter,
            manifest_hash=bytes(manifest_hash),
        )

    def head_of(self, region: int, record_key: bytes) -> RecordHead:
        """Head of ``record_key`` in ``region``'s namespace (version 0: never superseded)."""
        leaf_hash, seq, version, status = self.call(
            "headOf", region, _bytes32(record_key, "record_key")
        )
        return RecordHead(
            leaf_hash=bytes(leaf_hash), seq=int(seq), version=int(version), status=int(status)
        )

    # ----------------------------------------------------------------- other views

    def consortium_address(self) -> str:
        """The Consortium contract this anchor consults."""
        return str(self.call("consortium")[0])

    def next_seq(self, region: int) -> int:
        """Sequence number the next batch of ``region`` must carry."""
        return int(self.call("nextSeq", region)[0])

    def endorsers_of(self, region: int, seq: int) -> list[int]:
        """Regions that endorsed batch ``seq`` of ``region``, in order."""
        return [int(r) for r in self.call("endorsersOf", region, seq)[0]]

    def verify_inclusion(
        self, region: int, seq: int, leaf_hash: bytes, index: int, proof: Sequence[bytes]
    ) -> bool:
        """The contract's RFC 6962 check: is ``leaf_hash`` at ``index`` of the batch?"""
        args = self._inclusion_args(InclusionQuery(region, seq, leaf_hash, index, proof))
        return bool(self.call("verifyInclusion", *args)[0])

    def verify_inclusion_many(self, queries: Sequence[InclusionQuery]) -> list[bool]:
        """Many ``verifyInclusion`` calls in one JSON-RPC batch."""
        results = self.call_many("verifyInclusion", [self._inclusion_args(q) for q in queries])
        return [bool(r[0]) for r in results]

    @staticmethod
    def _inclusion_args(query: InclusionQuery) -> tuple[int, int, bytes, int, list[bytes]]:
        return (
            query.region,
            query.seq,
            _bytes32(query.leaf_hash, "leaf_hash"),
            query.index,
            [_bytes32(p, "proof element") for p in query.proof],
        )

    # ----------------------------------------------------------------- writes

    def anchor_batch(
        self,
        region: int,
        seq: int,
        root: bytes,
        size: int,
        manifest_hash: bytes,
        heads: Sequence[HeadUpdate] = (),
        *,
        gas: int | None = None,
    ) -> TxResult:
        """Anchor batch ``seq`` of ``region``; reverts surface as ContractError."""
        return self.transact(
            "anchorBatch",
            region,
            seq,
            _bytes32(root, "root"),
            size,
            _bytes32(manifest_hash, "manifest_hash"),
            [h.as_abi() for h in heads],
            gas=gas,
        )

    def endorse(self, region: int, seq: int, root: bytes, *, gas: int | None = None) -> TxResult:
        """Endorse batch ``seq`` of another region after verifying all of its records."""
        return self.transact("endorse", region, seq, _bytes32(root, "root"), gas=gas)

    # ----------------------------------------------------------------- events

    def batches_anchored(
        self,
        region: int | None = None,
        *,
        from_seq: int | None = None,
        to_seq: int | None = None,
        from_block: int | None = None,
        to_block: BlockId = "latest",
    ) -> list[BatchAnchoredEvent]:
        """BatchAnchored events, optionally of one region and a seq range (inclusive)."""
        seq_topic: list[bytes] | None = None
        if (
            region is not None
            and from_seq is not None
            and to_seq is not None
            and 0 <= to_seq - from_seq < _MAX_TOPIC_ALTERNATIVES
        ):
            seq_topic = [topic_uint(s) for s in range(from_seq, to_seq + 1)]
        topics: list[bytes | list[bytes] | None] = [
            topic_uint(region) if region is not None else None,
            seq_topic,
        ]
        found = []
        for e in self.events("BatchAnchored", topics, from_block=from_block, to_block=to_block):
            seq = int(e.args["seq"])
            if (from_seq is not None and seq < from_seq) or (to_seq is not None and seq > to_seq):
                continue
            found.append(
                BatchAnchoredEvent(
                    region=int(e.args["region"]),
                    seq=seq,
                    root=bytes(e.args["root"]),
                    size=int(e.args["size"]),
                    manifest_hash=bytes(e.args["manifestHash"]),
                    submitter=e.args["submitter"],
                    **_where(e),
                )
            )
        return found

    def heads_moved(
        self,
        region: int | None = None,
        record_key: bytes | None = None,
        *,
        from_block: int | None = None,
        to_block: BlockId = "latest",
    ) -> list[HeadMovedEvent]:
        """HeadMoved events, optionally of one region and/or one record key."""
        topics: list[bytes | None] = [
            topic_uint(region) if region is not None else None,
            _bytes32(record_key, "record_key") if record_key is not None else None,
        ]
        return [
            HeadMovedEvent(
                region=int(e.args["region"]),
                record_key=bytes(e.args["recordKey"]),
                leaf_hash=bytes(e.args["leafHash"]),
                seq=int(e.args["seq"]),
                version=int(e.args["version"]),
                status=int(e.args["status"]),
                **_where(e),
            )
            for e in self.events("HeadMoved", topics, from_block=from_block, to_block=to_block)
        ]

    def endorsements(
        self,
        region: int | None = None,
        seq: int | None = None,
        endorser_region: int | None = None,
        *,
        from_block: int | None = None,
        to_block: BlockId = "latest",
    ) -> list[BatchEndorsedEvent]:
        """BatchEndorsed events, filtered by batch region, seq and/or endorsing region."""
        topics: list[bytes | None] = [
            topic_uint(region) if region is not None else None,
            topic_uint(seq) if seq is not None else None,
            topic_uint(endorser_region) if endorser_region is not None else None,
        ]
        return [
            BatchEndorsedEvent(
                region=int(e.args["region"]),
                seq=int(e.args["seq"]),
                endorser_region=int(e.args["endorserRegion"]),
                endorser=e.args["endorser"],
                **_where(e),
            )
            for e in self.events("BatchEndorsed", topics, from_block=from_block, to_block=to_block)
        ]
