"""Types of the optional C extension built from ``_speedups.c``; see ``ledger._native``."""

from ledger.commitment import CommittedVersion, Leaf, LeafStatus
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
