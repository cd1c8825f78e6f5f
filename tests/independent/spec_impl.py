"""Independent reference for DESIGN.md §3 (encodings) and §5 (offline receipt checks).

Written from DESIGN.md, RFC 6962 §2.1 and RFC 9162 §2.1.3.2/§2.1.4.2 only, without
looking at the library under test. Deliberately naive (recursive MTH, no caching):
it is the yardstick, not a product.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import rfc8785

# --- §3 identifiers -----------------------------------------------------------------

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

RECORD_TYPES = {
    "registration": 1,
    "administrative_license": 2,
    "administrative_penalty": 3,
    "business_abnormality": 4,
    "serious_violation": 5,
    "credit_risk_class": 6,
    "annual_report": 7,
    "credit_commitment": 8,
    "red_list": 9,
}
STATUSES = {"active": 1, "revoked": 2, "expired": 3}
REGIONS = (110000, 120000, 130000)
ZERO32 = bytes(32)


class SpecError(Exception):
    """Raised by the reference whenever an input or a proof fails a §3/§5 rule."""


def uscc_check_char(first17: str) -> str:
    """GB 32100-2015 check character for the first 17 characters."""
    if len(first17) != 17 or any(c not in USCC_CHARSET for c in first17):
        raise SpecError(f"bad USCC body {first17!r}")
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def uscc_is_valid(code: object) -> bool:
    """18 characters of the charset (no lower case) with a correct check character."""
    if not isinstance(code, str) or len(code) != 18:
        return False
    if any(c not in USCC_CHARSET for c in code):
        return False
    return uscc_check_char(code[:17]) == code[17]


def _u8(n: int) -> bytes:
    return n.to_bytes(1, "big")


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def record_key(region: int, uscc: str, record_type: str | int, record_id: str) -> bytes:
    """SHA-256("credit-ledger:key:v1" || u32be(region) || ascii(uscc) || u8(type) || utf8(id))."""
    code = RECORD_TYPES[record_type] if isinstance(record_type, str) else record_type
    return hashlib.sha256(
        b"credit-ledger:key:v1"
        + _u32(region)
        + uscc.encode("ascii")
        + _u8(code)
        + record_id.encode("utf-8")
    ).digest()


def record_key_of(record: dict[str, Any]) -> bytes:
    return record_key(record["region"], record["uscc"], record["record_type"], record["record_id"])


def canonical(record: dict[str, Any]) -> bytes:
    """RFC 8785 JCS, UTF-8."""
    return rfc8785.dumps(record)


def commitment(salt: bytes, record: dict[str, Any]) -> bytes:
    return hashlib.sha256(b"credit-ledger:commit:v1" + salt + canonical(record)).digest()


def recommended_salt(node_secret: bytes, rkey: bytes, version: int) -> bytes:
    return hmac.new(node_secret, rkey + _u32(version), hashlib.sha256).digest()


def leaf_bytes(
    rkey: bytes, version: int, status: int | str, prev_leaf: bytes, commit: bytes
) -> bytes:
    code = STATUSES[status] if isinstance(status, str) else status
    return b"credit-ledger:leaf:v1" + rkey + _u32(version) + _u8(code) + prev_leaf + commit


# --- RFC 6962 §2.1 ------------------------------------------------------------------


def hash_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def hash_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hash(
    rkey: bytes, version: int, status: int | str, prev_leaf: bytes, commit: bytes
) -> bytes:
    return hash_leaf(leaf_bytes(rkey, version, status, prev_leaf, commit))


def _k(n: int) -> int:
    """Largest power of two strictly smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hashes: list[bytes]) -> bytes:
    """MTH over entries that are already RFC 6962 leaf hashes (MTH({d0}) = leaf hash)."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = _k(n)
    return hash_node(mth(hashes[:k]), mth(hashes[k:]))


def mth_of_data(entries: list[bytes]) -> bytes:
    return mth([hash_leaf(e) for e in entries])


def path(m: int, hashes: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 6962 §2.1.1."""
    n = len(hashes)
    if not 0 <= m < n:
        raise SpecError("index out of range")
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return path(m, hashes[:k]) + [mth(hashes[k:])]
    return path(m - k, hashes[k:]) + [mth(hashes[:k])]


def _subproof(m: int, hashes: list[bytes], b: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if b else [mth(hashes)]
    k = _k(n)
    if m <= k:
        return _subproof(m, hashes[:k], b) + [mth(hashes[k:])]
    return _subproof(m - k, hashes[k:], False) + [mth(hashes[:k])]


def proof(m: int, hashes: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]), RFC 6962 §2.1.2, for 0 < m <= n (m == n gives [])."""
    if not 0 < m <= len(hashes):
        raise SpecError("bad sizes")
    return _subproof(m, hashes, True)


# --- RFC 9162 verification ----------------------------------------------------------


def root_from_inclusion(
    leaf: bytes, index: int, tree_size: int, inclusion_path: list[bytes]
) -> bytes:
    """RFC 9162 §2.1.3.2 steps 1-4; returns r, raises if sn != 0 at the end."""
    if len(leaf) != 32:
        raise SpecError("leaf hash must be 32 bytes")
    if not 0 <= index < tree_size:
        raise SpecError("index >= tree_size")
    fn, sn, r = index, tree_size - 1, leaf
    for p in inclusion_path:
        if sn == 0:
            raise SpecError("proof too long")
        if fn & 1 or fn == sn:
            r = hash_node(p, r)
            if not fn & 1:
                while not (fn & 1) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise SpecError("proof too short")
    return r


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, inclusion_path: list[bytes], root: bytes
) -> None:
    if root_from_inclusion(leaf, index, tree_size, inclusion_path) != root:
        raise SpecError("root mismatch")


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, consistency_path: list[bytes]
) -> None:
    """RFC 9162 §2.1.4.2, plus the edge rules the shared vectors fix:
    size 0 is never a valid tree here; equal sizes need equal roots and an empty proof."""
    if size1 <= 0 or size2 <= 0 or size1 > size2:
        raise SpecError("bad sizes")
    if size1 == size2:
        if consistency_path:
            raise SpecError("non-empty proof for equal sizes")
        if root1 != root2:
            raise SpecError("roots differ")
        return
    if not consistency_path:
        raise SpecError("empty proof")
    cp = list(consistency_path)
    if size1 & (size1 - 1) == 0:
        cp = [root1] + cp
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = cp[0]
    for c in cp[1:]:
        if sn == 0:
            raise SpecError("proof too long")
        if fn & 1 or fn == sn:
            fr = hash_node(c, fr)
            sr = hash_node(c, sr)
            if not fn & 1:
                while not (fn & 1) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_node(sr, c)
        fn >>= 1
        sn >>= 1
    if not (fr == root1 and sr == root2 and sn == 0):
        raise SpecError("consistency proof does not verify")


# --- §5 receipts --------------------------------------------------------------------


def make_disclosure(
    records: list[dict[str, Any]],
    salts: list[bytes],
    index: int,
    *,
    seq: int = 3,
    versions: list[int] | None = None,
    statuses: list[str] | None = None,
    prev_leaves: list[bytes] | None = None,
    chain_id: int = 31337,
    contract: str = "0x" + "ab" * 20,
    tx_hash: str = "0x" + "cd" * 32,
    block_number: int = 12,
) -> dict[str, Any]:
    """A §5 disclosure for records[index] in a batch made of all the given records."""
    n = len(records)
    versions = versions or [1] * n
    statuses = statuses or ["active"] * n
    prev_leaves = prev_leaves or [ZERO32] * n
    keys = [record_key_of(r) for r in records]
    commits = [commitment(s, r) for s, r in zip(salts, records, strict=True)]
    leaves = [
        leaf_hash(keys[i], versions[i], statuses[i], prev_leaves[i], commits[i]) for i in range(n)
    ]
    region = records[index]["region"]
    receipt = {
        "format": "credit-ledger/receipt/v1",
        "hash_alg": "sha256",
        "chain": {
            "chain_id": chain_id,
            "anchor_contract": contract,
            "tx_hash": tx_hash,
            "block_number": block_number,
        },
        "batch": {"region": region, "seq": seq, "root": mth(leaves).hex(), "size": n},
        "leaf": {
            "index": index,
            "record_key": keys[index].hex(),
            "version": versions[index],
            "status": statuses[index],
            "prev_leaf": prev_leaves[index].hex(),
            "commitment": commits[index].hex(),
        },
        "proof": [p.hex() for p in path(index, leaves)],
    }
    return {"receipt": receipt, "record": records[index], "salt": salts[index].hex()}


def verify_disclosure_offline(disclosure: dict[str, Any]) -> None:
    """§5 steps 1-2. Raises SpecError("step N: ...") on the first failure."""
    receipt = disclosure["receipt"]
    record = disclosure["record"]
    leaf = receipt["leaf"]
    batch = receipt["batch"]
    salt = bytes.fromhex(disclosure["salt"])
    if len(salt) != 32:
        raise SpecError("step 1: salt must be 32 bytes")
    if commitment(salt, record).hex() != leaf["commitment"]:
        raise SpecError("step 1: commitment mismatch")
    if record_key_of(record).hex() != leaf["record_key"]:
        raise SpecError("step 1: record_key mismatch")
    if record["region"] != batch["region"]:
        raise SpecError("step 1: region mismatch")
    lh = leaf_hash(
        bytes.fromhex(leaf["record_key"]),
        leaf["version"],
        leaf["status"],
        bytes.fromhex(leaf["prev_leaf"]),
        bytes.fromhex(leaf["commitment"]),
    )
    try:
        verify_inclusion(
            lh,
            leaf["index"],
            batch["size"],
            [bytes.fromhex(p) for p in receipt["proof"]],
            bytes.fromhex(batch["root"]),
        )
    except SpecError as e:
        raise SpecError(f"step 2: {e}") from e
