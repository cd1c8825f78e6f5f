"""Types of the optional C extension built from ``_speedups.c``; see ``ledger._native``."""

from ledger.commitment import CommittedVersion, Leaf, LeafStatus
from ledger.receipts import BatchRef, ChainAnchor, Disclosure, Receipt
from ledger.records import Record

def merkle_root(leaf_hashes: list[bytes], /) -> bytes: ...
def merkle_levels(leaf_hashes: list[bytes], /) -> list[list[bytes]]: ...
def fold_proof(
    seed: bytes,
    proof: list[bytes] | tuple[bytes, ...],
    index: int,
    inner: int,
    right_only: bool,
    /,
) -> bytes: ...
def configure(
    record_cls: type[Record],
    record_slots: tuple[object, object, object, object, object],
    leaf_cls: type[Leaf],
    leaf_slots: tuple[object, object, object, object, object],
    version_cls: type[CommittedVersion],
    version_slots: tuple[object, object, object],
    active: LeafStatus,
    zero_hash: bytes,
    /,
) -> None: ...
def hmac_states(key: bytes, /) -> bytes: ...
def commit_batch(records: list[Record], hmac_states: bytes, /) -> list[CommittedVersion]: ...
def configure_records(*args: object) -> None: ...
def parse_record(obj: object, /) -> Record | None: ...
def configure_receipts(
    receipt_cls: type[Receipt],
    receipt_slots: tuple[object, ...],
    chain_cls: type[ChainAnchor],
    chain_slots: tuple[object, ...],
    batch_cls: type[BatchRef],
    batch_slots: tuple[object, ...],
    disclosure_cls: type[Disclosure],
    disclosure_slots: tuple[object, ...],
    statuses: dict[str, LeafStatus],
    format: str,
    hash_alg: str,
    max_proof_nodes: int,
    max_json_int: int,
    max_batch_size: int,
    max_version: int,
    /,
) -> None: ...
def parse_receipt(obj: object, /) -> Receipt | None: ...
def parse_disclosure(obj: object, /) -> Disclosure | None: ...
def parse_disclosure_json(text: object, /) -> Disclosure | None: ...
def check_offline(item: object, /) -> bytes | None: ...
