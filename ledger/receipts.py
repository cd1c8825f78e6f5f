"""Receipts and disclosures (DESIGN §5): frozen models, strict JSON parsing, JSON output.

Bytes inside, hex at the edges: hashes are lower-case hex without 0x, the transaction
hash is 0x + lower-case hex, and the anchor contract address is 0x + 40 hex digits,
accepted in lower case or as a valid EIP-55 checksum and kept in lower case. Every
rejection raises ``ReceiptError(field, reason)`` with a dotted field path such as
``leaf.record_key`` (record problems inside a disclosure raise ``RecordError`` with
``record.`` in front of the field).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from types import ModuleType
from typing import Any, ClassVar, Final

from ledger import _native
from ledger._unchecked import slot_of, unchecked_constructor
from ledger.canonical import JsonObject
from ledger.commitment import HASH_SIZE, MAX_VERSION, Leaf, LeafStatus, status_of
from ledger.errors import ReceiptError, RecordError
from ledger.merkle import root_from_inclusion_proof
from ledger.records import Record, parse_record, parse_record_fast
from ledger.regions import PROVINCES, is_division_code

__all__ = [
    "RECEIPT_FORMAT",
    "HASH_ALG",
    "MAX_PROOF_NODES",
    "ChainAnchor",
    "BatchRef",
    "Receipt",
    "Disclosure",
    "normalize_address",
    "checksum_address",
]

RECEIPT_FORMAT: Final = "credit-ledger/receipt/v1"
HASH_ALG: Final = "sha256"
MAX_PROOF_NODES: Final = 32
"""A batch holds at most 2^32 − 1 leaves (``uint32 size``), so no audit path is longer."""

_MAX_JSON_INT: Final = 2**53 - 1
_MAX_BATCH_SIZE: Final = 2**32 - 1
_HEX_DIGITS: Final = frozenset("0123456789abcdef")
_BARE_HASH: Final = re.compile("([0-9a-f]{64})")
_LOWER_HEX: Final = re.compile("[0-9a-f]*")
_PREFIXED_HASH: Final = re.compile("0x([0-9a-f]{64})")
_HEX_ANY_CASE: Final = frozenset("0123456789abcdefABCDEF")


# --- hex and integer fields --------------------------------------------------------------


def _hex_bytes(value: object, field: str, size: int, *, prefixed: bool) -> bytes:
    if type(value) is str and size == HASH_SIZE:
        match = (_PREFIXED_HASH if prefixed else _BARE_HASH).fullmatch(value)
        if match is not None:
            return bytes.fromhex(match[1])
    if type(value) is not str:
        raise ReceiptError(field, "must be a hex string")
    if prefixed and not value.startswith("0x"):
        raise ReceiptError(field, "must start with 0x")
    if not prefixed and value[:2] in ("0x", "0X"):
        raise ReceiptError(field, "hashes are hex without 0x")
    digits = value[2:] if prefixed else value
    if len(digits) != 2 * size:
        raise ReceiptError(field, f"must be {2 * size} hex digits, got {len(digits)}")
    if not _HEX_DIGITS.issuperset(digits):
        if _HEX_ANY_CASE.issuperset(digits):
            raise ReceiptError(field, "hex must be lower case")
        raise ReceiptError(field, "not hexadecimal")
    return bytes.fromhex(digits)


def _integer(value: object, field: str, minimum: int, maximum: int = _MAX_JSON_INT) -> int:
    if type(value) is not int:
        kind = "a boolean" if isinstance(value, bool) else type(value).__name__
        raise ReceiptError(field, f"must be an integer, not {kind}")
    if value < minimum:
        raise ReceiptError(field, f"must be at least {minimum}")
    if value > maximum:
        raise ReceiptError(field, f"must be at most {maximum}")
    return value


def _members(
    obj: object, field: str, expected: frozenset[str], *, document: str = "receipt"
) -> Mapping[str, Any]:
    if type(obj) is not dict:
        raise ReceiptError(field or document, "must be a JSON object")
    keys = obj.keys()
    if keys != expected:
        unknown = sorted(str(key) for key in keys - expected)
        if unknown:
            raise ReceiptError(_join(field, unknown[0]), "unknown field")
        raise ReceiptError(_join(field, sorted(expected - keys)[0]), "required field is missing")
    return obj


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


# --- addresses (EIP-55) -------------------------------------------------------------------

_KECCAK_ROUND_CONSTANTS: Final = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)  # fmt: skip
_KECCAK_ROTATIONS: Final = (
    (0, 36, 3, 41, 18),
    (1, 44, 10, 45, 2),
    (62, 6, 43, 15, 61),
    (28, 55, 25, 21, 56),
    (27, 20, 39, 8, 14),
)
_LANE_MASK: Final = (1 << 64) - 1


def _rotate(lane: int, shift: int) -> int:
    return ((lane << shift) | (lane >> (64 - shift))) & _LANE_MASK if shift else lane


def _keccak_f1600(lanes: list[list[int]]) -> None:
    for round_constant in _KECCAK_ROUND_CONSTANTS:
        columns = [
            lanes[x][0] ^ lanes[x][1] ^ lanes[x][2] ^ lanes[x][3] ^ lanes[x][4] for x in range(5)
        ]
        for x in range(5):
            theta = columns[(x - 1) % 5] ^ _rotate(columns[(x + 1) % 5], 1)
            for y in range(5):
                lanes[x][y] ^= theta
        moved = [[0] * 5 for _ in range(5)]
        for x in range(5):
            for y in range(5):
                moved[y][(2 * x + 3 * y) % 5] = _rotate(lanes[x][y], _KECCAK_ROTATIONS[x][y])
        for x in range(5):
            for y in range(5):
                lanes[x][y] = moved[x][y] ^ (~moved[(x + 1) % 5][y] & moved[(x + 2) % 5][y])
        lanes[0][0] ^= round_constant


def _keccak256(data: bytes) -> bytes:
    """Ethereum's Keccak-256 (original padding, not SHA3-256); only EIP-55 needs it here."""
    rate = 136
    padded = bytearray(data) + b"\x01" + bytes(-(len(data) + 1) % rate)
    padded[-1] |= 0x80
    lanes = [[0] * 5 for _ in range(5)]
    for offset in range(0, len(padded), rate):
        block = padded[offset : offset + rate]
        for index in range(rate // 8):
            lanes[index % 5][index // 5] ^= int.from_bytes(
                block[8 * index : 8 * index + 8], "little"
            )
        _keccak_f1600(lanes)
    return b"".join(lanes[index % 5][index // 5].to_bytes(8, "little") for index in range(4))


@lru_cache(maxsize=256)
def checksum_address(address: str) -> str:
    """EIP-55 mixed-case form of a 0x-prefixed 20-byte address given in any case."""
    digits = address[2:].lower()
    digest = _keccak256(digits.encode("ascii")).hex()
    return "0x" + "".join(
        char.upper() if char.isalpha() and int(digest[i], 16) >= 8 else char
        for i, char in enumerate(digits)
    )


def normalize_address(value: object, field: str = "address") -> str:
    """Return a 0x address in lower case; accept lower, upper or valid EIP-55 mixed case."""
    if type(value) is not str or not value.startswith("0x"):
        raise ReceiptError(field, "must be a 0x-prefixed address")
    digits = value[2:]
    if len(digits) != 40 or not _HEX_ANY_CASE.issuperset(digits):
        raise ReceiptError(field, "must be 0x followed by 40 hex digits")
    lower = digits.lower()
    # Mixed case carries an EIP-55 checksum, and a wrong one means a mistyped address.
    if digits not in (lower, digits.upper()) and checksum_address(value) != value:
        raise ReceiptError(field, "EIP-55 checksum does not match")
    return "0x" + lower


# --- the receipt --------------------------------------------------------------------------

_RECEIPT_MEMBERS: Final = frozenset({"format", "hash_alg", "chain", "batch", "leaf", "proof"})
_CHAIN_MEMBERS: Final = frozenset({"chain_id", "anchor_contract", "tx_hash", "block_number"})
_BATCH_MEMBERS: Final = frozenset({"region", "seq", "root", "size"})
_LEAF_MEMBERS: Final = frozenset(
    {"index", "record_key", "version", "status", "prev_leaf", "commitment"}
)


@dataclass(frozen=True, slots=True)
class ChainAnchor:
    """Where a batch was anchored: chain, CreditAnchor contract, transaction and block."""

    chain_id: int
    anchor_contract: str
    tx_hash: bytes
    block_number: int

    def __post_init__(self) -> None:
        _integer(self.chain_id, "chain.chain_id", 1)
        object.__setattr__(
            self,
            "anchor_contract",
            normalize_address(self.anchor_contract, "chain.anchor_contract"),
        )
        if type(self.tx_hash) is not bytes or len(self.tx_hash) != HASH_SIZE:
            raise ReceiptError("chain.tx_hash", f"must be {HASH_SIZE} bytes")
        _integer(self.block_number, "chain.block_number", 0)

    @classmethod
    def from_json(cls, obj: object) -> ChainAnchor:
        """Parse the receipt's ``chain`` object strictly."""
        members = _members(obj, "chain", _CHAIN_MEMBERS)
        return cls(
            chain_id=_integer(members["chain_id"], "chain.chain_id", 1),
            anchor_contract=members["anchor_contract"],
            tx_hash=_hex_bytes(members["tx_hash"], "chain.tx_hash", HASH_SIZE, prefixed=True),
            block_number=_integer(members["block_number"], "chain.block_number", 0),
        )

    def to_json(self) -> JsonObject:
        """The ``chain`` object of the receipt."""
        return {
            "chain_id": self.chain_id,
            "anchor_contract": self.anchor_contract,
            "tx_hash": "0x" + self.tx_hash.hex(),
            "block_number": self.block_number,
        }


@dataclass(frozen=True, slots=True)
class BatchRef:
    """The batch a leaf belongs to: region, sequence number, Merkle root and size."""

    region: int
    seq: int
    root: bytes
    size: int

    def __post_init__(self) -> None:
        _integer(self.region, "batch.region", 0)
        if not is_division_code(self.region):
            raise ReceiptError("batch.region", f"{self.region} is not a GB/T 2260 division code")
        _integer(self.seq, "batch.seq", 0)
        if type(self.root) is not bytes or len(self.root) != HASH_SIZE:
            raise ReceiptError("batch.root", f"must be {HASH_SIZE} bytes")
        _integer(self.size, "batch.size", 1, _MAX_BATCH_SIZE)

    @classmethod
    def from_json(cls, obj: object) -> BatchRef:
        """Parse the receipt's ``batch`` object strictly."""
        members = _members(obj, "batch", _BATCH_MEMBERS)
        return cls(
            region=_integer(members["region"], "batch.region", 0),
            seq=_integer(members["seq"], "batch.seq", 0),
            root=_hex_bytes(members["root"], "batch.root", HASH_SIZE, prefixed=False),
            size=_integer(members["size"], "batch.size", 1, _MAX_BATCH_SIZE),
        )

    def to_json(self) -> JsonObject:
        """The ``batch`` object of the receipt."""
        return {"region": self.region, "seq": self.seq, "root": self.root.hex(), "size": self.size}


def _leaf_from_json(obj: object) -> tuple[int, Leaf]:
    members = _members(obj, "leaf", _LEAF_MEMBERS)
    index = _integer(members["index"], "leaf.index", 0)
    status = members["status"]
    if type(status) is not str:
        raise ReceiptError("leaf.status", "must be a status name")
    try:
        leaf = Leaf(
            record_key=_hex_bytes(
                members["record_key"], "leaf.record_key", HASH_SIZE, prefixed=False
            ),
            version=_integer(members["version"], "leaf.version", 1, MAX_VERSION),
            status=status_of(status, field="leaf.status"),
            prev_leaf=_hex_bytes(members["prev_leaf"], "leaf.prev_leaf", HASH_SIZE, prefixed=False),
            commitment=_hex_bytes(
                members["commitment"], "leaf.commitment", HASH_SIZE, prefixed=False
            ),
        )
    except RecordError as error:
        field = error.field if error.field.startswith("leaf.") else f"leaf.{error.field}"
        raise ReceiptError(field, error.reason) from None
    return index, leaf


def _proof_nodes(proof: list[Any]) -> tuple[bytes, ...]:
    # One regex and one fromhex over the whole path: a disclosure's proof has ~16 nodes,
    # and parsing them one by one was the larger part of reading a receipt.
    if set(map(type, proof)) <= {str} and set(map(len, proof)) <= {2 * HASH_SIZE}:
        joined = "".join(proof)
        if _LOWER_HEX.fullmatch(joined):
            raw = bytes.fromhex(joined)
            return tuple(raw[i : i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE))
    return tuple(
        _hex_bytes(node, f"proof[{position}]", HASH_SIZE, prefixed=False)
        for position, node in enumerate(proof)
    )


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof that one record version is leaf ``leaf_index`` of an anchored batch (DESIGN §5)."""

    chain: ChainAnchor
    batch: BatchRef
    leaf_index: int
    leaf: Leaf
    proof: tuple[bytes, ...]

    format: ClassVar[str] = RECEIPT_FORMAT
    hash_alg: ClassVar[str] = HASH_ALG

    def __post_init__(self) -> None:
        if type(self.chain) is not ChainAnchor:
            raise ReceiptError("chain", "must be a ChainAnchor")
        if type(self.batch) is not BatchRef:
            raise ReceiptError("batch", "must be a BatchRef")
        if type(self.leaf) is not Leaf:
            raise ReceiptError("leaf", "must be a Leaf")
        _integer(self.leaf_index, "leaf.index", 0)
        if self.leaf_index >= self.batch.size:
            raise ReceiptError(
                "leaf.index", f"{self.leaf_index} is not below batch.size {self.batch.size}"
            )
        proof = self.proof if type(self.proof) is tuple else tuple(self.proof)
        if len(proof) > MAX_PROOF_NODES:
            raise ReceiptError("proof", f"more than {MAX_PROOF_NODES} nodes")
        for position, node in enumerate(proof):
            if type(node) is not bytes or len(node) != HASH_SIZE:
                raise ReceiptError(f"proof[{position}]", f"must be {HASH_SIZE} bytes")
        object.__setattr__(self, "proof", proof)

    @classmethod
    def from_json(cls, obj: object) -> Receipt:
        """Parse a receipt's JSON object strictly; raise ReceiptError(field, reason)."""
        if cls is Receipt:
            native = _native.speedups
            if native is not None:  # the same checks in C; None sends it on to the Python
                receipt: Receipt | None = native.parse_receipt(obj)
                if receipt is not None:
                    return receipt
            parsed = _receipt_fast(obj, ())
            if parsed is not None:
                return parsed[0]
        return cls._from_json_checked(obj)

    @classmethod
    def _from_json_checked(cls, obj: object) -> Receipt:
        """The member-by-member parse: slower than the fast path, names every rejection."""
        members = _members(obj, "", _RECEIPT_MEMBERS)
        if members["format"] != RECEIPT_FORMAT or type(members["format"]) is not str:
            raise ReceiptError("format", f"unsupported format {members['format']!r}")
        if members["hash_alg"] != HASH_ALG or type(members["hash_alg"]) is not str:
            raise ReceiptError("hash_alg", f"unsupported hash algorithm {members['hash_alg']!r}")
        chain = ChainAnchor.from_json(members["chain"])
        batch = BatchRef.from_json(members["batch"])
        index, leaf = _leaf_from_json(members["leaf"])
        proof = members["proof"]
        if type(proof) is not list:
            raise ReceiptError("proof", "must be an array of hex hashes")
        if len(proof) > MAX_PROOF_NODES:
            raise ReceiptError("proof", f"more than {MAX_PROOF_NODES} nodes")
        return cls(chain=chain, batch=batch, leaf_index=index, leaf=leaf, proof=_proof_nodes(proof))

    def to_json(self) -> JsonObject:
        """The receipt's JSON object (DESIGN §5)."""
        leaf = self.leaf
        return {
            "format": RECEIPT_FORMAT,
            "hash_alg": HASH_ALG,
            "chain": self.chain.to_json(),
            "batch": self.batch.to_json(),
            "leaf": {
                "index": self.leaf_index,
                "record_key": leaf.record_key.hex(),
                "version": leaf.version,
                "status": LeafStatus(leaf.status).status_name,
                "prev_leaf": leaf.prev_leaf.hex(),
                "commitment": leaf.commitment.hex(),
            },
            "proof": [node.hex() for node in self.proof],
        }

    @property
    def leaf_hash(self) -> bytes:
        """RFC 6962 leaf hash of the receipt's leaf."""
        return self.leaf.leaf_hash

    def proved_root(self) -> bytes:
        """The root the audit path folds to; raises ProofError if the path is malformed."""
        return root_from_inclusion_proof(
            self.leaf_hash, self.leaf_index, self.batch.size, self.proof
        )


# --- the disclosure -----------------------------------------------------------------------


def _loads_json(text: bytes | bytearray | str) -> object:
    """``json.loads(text)``, raising ReceiptError("disclosure", "not JSON: ...") if it fails.

    RecursionError counts as not JSON: json.loads raises it for nesting deeper than the
    interpreter's recursion limit.
    """
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise ReceiptError("disclosure", f"not JSON: {error}") from None


_DISCLOSURE_MEMBERS: Final = frozenset({"receipt", "record", "salt"})


@dataclass(frozen=True, slots=True)
class Disclosure:
    """A receipt with the record and salt behind its commitment (DESIGN §5)."""

    receipt: Receipt
    record: Record
    salt: bytes

    def __post_init__(self) -> None:
        if type(self.receipt) is not Receipt:
            raise ReceiptError("receipt", "must be a Receipt")
        if type(self.record) is not Record:
            raise ReceiptError("record", "must be a Record")
        if type(self.salt) is not bytes or len(self.salt) != HASH_SIZE:
            raise ReceiptError("salt", f"must be {HASH_SIZE} bytes")

    @classmethod
    def from_json(cls, obj: object) -> Disclosure:
        """Parse a disclosure strictly: ReceiptError for receipt/salt, RecordError for record."""
        if cls is Disclosure:
            native = _native.speedups
            disclosure: Disclosure | None = None
            if native is not None:  # the same checks in C; None sends it on to the Python
                disclosure = native.parse_disclosure(obj)
            if disclosure is None:
                disclosure = _disclosure_fast(obj)
            if disclosure is not None:
                return disclosure
        return cls._from_json_checked(obj)

    @classmethod
    def from_json_text(cls, text: bytes | bytearray | str) -> Disclosure:
        """Parse a disclosure from its JSON text: ``from_json(json.loads(text))``, faster.

        Text that is not JSON raises ReceiptError("disclosure", "not JSON: ..."); the C
        speedups read the common, valid case straight from the text.
        """
        if cls is Disclosure:
            native = _native.speedups
            if native is not None:
                disclosure: Disclosure | None = native.parse_disclosure_json(text)
                if disclosure is not None:
                    return disclosure
        return cls.from_json(_loads_json(text))

    @classmethod
    def _from_json_checked(cls, obj: object) -> Disclosure:
        """The member-by-member parse: slower than the fast path, names every rejection."""
        members = _members(obj, "", _DISCLOSURE_MEMBERS, document="disclosure")
        try:
            receipt = Receipt.from_json(members["receipt"])
        except ReceiptError as error:
            field = "receipt" if error.field == "receipt" else f"receipt.{error.field}"
            raise ReceiptError(field, error.reason) from None
        try:
            record = parse_record(members["record"])
        except RecordError as error:
            field = "record" if error.field == "record" else f"record.{error.field}"
            raise RecordError(field, error.reason) from None
        salt = _hex_bytes(members["salt"], "salt", HASH_SIZE, prefixed=False)
        return cls(receipt=receipt, record=record, salt=salt)

    def to_json(self) -> JsonObject:
        """The disclosure's JSON object."""
        return {
            "receipt": self.receipt.to_json(),
            "record": self.record.to_json(),
            "salt": self.salt.hex(),
        }


# --- fast path ------------------------------------------------------------------------------
#
# Verifying a disclosure from JSON was mostly parsing: ~40 µs, against ~10 µs for its 19
# hashes. The fast path accepts exactly what the checked parse above accepts; it checks all
# hex members of a receipt (and the salt) with one regex over their concatenation, decodes
# them with one bytes.fromhex, and builds the frozen objects without running their
# __post_init__ checks again. At the first doubt it returns None and the checked parse
# runs, which names the field and reason of any rejection.

_unchecked_chain: Final = unchecked_constructor(ChainAnchor)
_unchecked_batch: Final = unchecked_constructor(BatchRef)
_unchecked_leaf: Final = unchecked_constructor(Leaf)
_unchecked_receipt: Final = unchecked_constructor(Receipt)
_unchecked_disclosure: Final = unchecked_constructor(Disclosure)
# Split n concatenated 32-byte hashes (tx hash, 4 leaf and batch hashes, salt, proof) in one
# C call: a quarter of the instructions of slicing them one by one.
_SPLIT_HASHES: Final = tuple(
    struct.Struct(f"{HASH_SIZE}s" * count).unpack for count in range(6 + MAX_PROOF_NODES + 1)
)
_LOWER_ADDRESS: Final = re.compile("0x[0-9a-f]{40}").fullmatch
_STATUS_NAMES: Final = {status.status_name: status for status in LeafStatus}
_ONLY_STR: Final = {str}
_HASH_HEX: Final = {2 * HASH_SIZE}
_ZERO_HASH: Final = bytes(HASH_SIZE)
_PROVINCE_PREFIXES: Final = frozenset(PROVINCES)


def _receipt_fast(obj: object, extra_hex: tuple[object, ...]) -> tuple[Receipt, bytes] | None:
    """The receipt if the checked parse accepts ``obj``, and ``extra_hex`` (strings that
    must be 64 lower-case hex digits) decoded and joined; None to let the checked parse decide.
    """
    if type(obj) is not dict or len(obj) != len(_RECEIPT_MEMBERS):
        return None
    try:
        chain, batch, leaf, proof = obj["chain"], obj["batch"], obj["leaf"], obj["proof"]
        if not (
            obj["format"] == RECEIPT_FORMAT
            and type(obj["format"]) is str
            and obj["hash_alg"] == HASH_ALG
            and type(obj["hash_alg"]) is str
            and type(chain) is dict
            and len(chain) == len(_CHAIN_MEMBERS)
            and type(batch) is dict
            and len(batch) == len(_BATCH_MEMBERS)
            and type(leaf) is dict
            and len(leaf) == len(_LEAF_MEMBERS)
        ):
            return None
        chain_id, address = chain["chain_id"], chain["anchor_contract"]
        tx_hash, block_number = chain["tx_hash"], chain["block_number"]
        region, seq, root, size = batch["region"], batch["seq"], batch["root"], batch["size"]
        index, record_key, version = leaf["index"], leaf["record_key"], leaf["version"]
        status, prev_leaf, commitment = leaf["status"], leaf["prev_leaf"], leaf["commitment"]
    except KeyError:
        return None
    hex_members = (root, record_key, prev_leaf, commitment, *extra_hex)
    if not (
        type(chain_id) is int
        and 1 <= chain_id <= _MAX_JSON_INT
        and type(block_number) is int
        and 0 <= block_number <= _MAX_JSON_INT
        and type(tx_hash) is str
        and len(tx_hash) == 2 + 2 * HASH_SIZE
        and tx_hash.startswith("0x")
        and type(region) is int
        and 100000 <= region <= 999999
        and region // 10000 in _PROVINCE_PREFIXES  # is_division_code, inlined
        and type(seq) is int
        and 0 <= seq <= _MAX_JSON_INT
        and type(size) is int
        and 1 <= size <= _MAX_BATCH_SIZE
        and type(index) is int
        and 0 <= index < size
        and type(version) is int
        and 1 <= version <= MAX_VERSION
        and type(status) is str
        and type(proof) is list
        and len(proof) <= MAX_PROOF_NODES
        and set(map(type, hex_members)) == _ONLY_STR
        and set(map(len, hex_members)) == _HASH_HEX
        and (
            not proof or (set(map(type, proof)) == _ONLY_STR and set(map(len, proof)) == _HASH_HEX)
        )
    ):
        return None
    leaf_status = _STATUS_NAMES.get(status)
    if leaf_status is None:
        return None
    if type(address) is not str or _LOWER_ADDRESS(address) is None:
        try:  # upper or EIP-55 mixed case: normalize_address checks the checksum
            address = normalize_address(address, "chain.anchor_contract")
        except ReceiptError:
            return None
    digits = tx_hash[2:] + "".join(hex_members) + "".join(proof)
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        return None
    # fromhex also takes upper case and spaces; only lower-case hex comes back unchanged.
    # Measured on the ~1,400 digits of a disclosure: a regex 9 µs, isalnum() and islower()
    # 10 µs (no ASCII fast path), this round trip 2 µs.
    if raw.hex() != digits:
        return None
    hashes = _SPLIT_HASHES[len(raw) // HASH_SIZE](raw)
    tx_hash_bytes, root_bytes, key_bytes, prev_bytes, commitment_bytes = hashes[:5]
    if (version == 1) != (prev_bytes == _ZERO_HASH):
        return None
    proof_start = 1 + len(hex_members)
    receipt = _unchecked_receipt(
        _unchecked_chain(chain_id, address, tx_hash_bytes, block_number),
        _unchecked_batch(region, seq, root_bytes, size),
        index,
        _unchecked_leaf(key_bytes, version, leaf_status, prev_bytes, commitment_bytes),
        hashes[proof_start:],
    )
    return receipt, b"".join(hashes[5:proof_start])


def _disclosure_fast(obj: object) -> Disclosure | None:
    """The disclosure if the checked parse accepts ``obj``; None to let it decide."""
    if type(obj) is not dict or len(obj) != len(_DISCLOSURE_MEMBERS):
        return None
    try:
        receipt_json, record_json, salt = obj["receipt"], obj["record"], obj["salt"]
    except KeyError:
        return None
    parsed = _receipt_fast(receipt_json, (salt,))
    if parsed is None:
        return None
    record = parse_record_fast(record_json)
    if record is None:
        return None
    receipt, salt_bytes = parsed
    return _unchecked_disclosure(receipt, record, salt_bytes)


# --- the C fast path (ledger._speedups) ---------------------------------------------------


def _configure_native(native: ModuleType) -> None:
    """Hand the C receipt parser and offline check the classes, statuses and bounds here."""
    classes = (Receipt, ChainAnchor, BatchRef, Disclosure)
    configuration: list[object] = []
    for cls in classes:
        configuration += [cls, tuple(slot_of(cls, field.name) for field in fields(cls))]
    native.configure_receipts(
        *configuration,
        _STATUS_NAMES,
        RECEIPT_FORMAT,
        HASH_ALG,
        MAX_PROOF_NODES,
        _MAX_JSON_INT,
        _MAX_BATCH_SIZE,
        MAX_VERSION,
    )


if _native.built is not None:
    _configure_native(_native.built)
