"""Tests for ledger.receipts: the DESIGN §5 receipt and disclosure JSON, strictly parsed."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_samples import ANCHOR_ADDRESS, PROPERTY, SealedBatch, record_json, seal_batch

from ledger.commitment import ZERO_HASH, Leaf
from ledger.errors import ReceiptError, RecordError
from ledger.receipts import (
    BatchRef,
    ChainAnchor,
    Disclosure,
    Receipt,
    _disclosure_fast,
    _keccak256,
    _receipt_fast,
    checksum_address,
    normalize_address,
)

# Every test here runs on the C speedups and again on pure Python (see conftest.py).
pytestmark = pytest.mark.usefixtures("core_path")

DELETE = object()


@pytest.fixture(scope="module")
def batch() -> SealedBatch:
    return seal_batch(
        [record_json(t) for t in ("registration", "administrative_penalty", "red_list")]
    )


@pytest.fixture
def receipt_json(batch: SealedBatch) -> dict[str, Any]:
    return batch.receipt(1).to_json()


def _mutated(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    *parents, last = path.split(".")
    target: Any = result
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    elif value is DELETE:
        del target[last]
    else:
        target[last] = value
    return result


# --- shape -------------------------------------------------------------------------------


def test_receipt_json_has_exactly_the_design_members(receipt_json: dict[str, Any]) -> None:
    assert list(receipt_json) == ["format", "hash_alg", "chain", "batch", "leaf", "proof"]
    assert receipt_json["format"] == "credit-ledger/receipt/v1"
    assert receipt_json["hash_alg"] == "sha256"
    assert set(receipt_json["chain"]) == {"chain_id", "anchor_contract", "tx_hash", "block_number"}
    assert set(receipt_json["batch"]) == {"region", "seq", "root", "size"}
    assert set(receipt_json["leaf"]) == {
        "index", "record_key", "version", "status", "prev_leaf", "commitment"
    }  # fmt: skip
    assert receipt_json["leaf"]["status"] == "active"
    assert receipt_json["leaf"]["prev_leaf"] == "00" * 32
    assert receipt_json["chain"]["tx_hash"] == "0x" + "ab" * 32
    assert all(len(node) == 64 for node in receipt_json["proof"])


def test_receipt_round_trips_through_json(batch: SealedBatch, receipt_json: dict[str, Any]) -> None:
    parsed = Receipt.from_json(json.loads(json.dumps(receipt_json)))
    assert parsed == batch.receipt(1)
    assert parsed.to_json() == receipt_json


def test_receipt_keeps_bytes_inside(batch: SealedBatch, receipt_json: dict[str, Any]) -> None:
    receipt = Receipt.from_json(receipt_json)
    assert receipt.batch.root == batch.tree.root
    assert receipt.leaf == batch.leaves[1]
    assert receipt.leaf_hash == batch.tree.leaf_hash(1)
    assert receipt.proved_root() == batch.tree.root


def test_stores_the_anchor_contract_in_lower_case(receipt_json: dict[str, Any]) -> None:
    receipt = Receipt.from_json(receipt_json)
    assert receipt.chain.anchor_contract == ANCHOR_ADDRESS.lower()
    upper = _mutated(receipt_json, "chain.anchor_contract", "0x" + ANCHOR_ADDRESS[2:].upper())
    assert Receipt.from_json(upper).chain.anchor_contract == ANCHOR_ADDRESS.lower()


# --- rejections --------------------------------------------------------------------------

HEX64 = "ab" * 32


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        ("format", "credit-ledger/receipt/v2", "format", "unsupported format"),
        ("format", None, "format", "unsupported format"),
        ("hash_alg", "sm3", "hash_alg", "unsupported hash algorithm"),
        ("extra", 1, "extra", "unknown field"),
        ("proof", DELETE, "proof", "required field is missing"),
        ("chain", [], "chain", "must be a JSON object"),
        ("chain.gas", 1, "chain.gas", "unknown field"),
        ("chain.block_number", DELETE, "chain.block_number", "required field is missing"),
        ("chain.chain_id", 0, "chain.chain_id", "at least 1"),
        ("chain.chain_id", True, "chain.chain_id", "not a boolean"),
        ("chain.chain_id", 31337.0, "chain.chain_id", "not float"),
        ("chain.chain_id", "31337", "chain.chain_id", "not str"),
        ("chain.block_number", -1, "chain.block_number", "at least 0"),
        ("chain.block_number", 2**53, "chain.block_number", "at most"),
        ("chain.tx_hash", HEX64, "chain.tx_hash", "must start with 0x"),
        ("chain.tx_hash", "0X" + HEX64, "chain.tx_hash", "must start with 0x"),
        ("chain.tx_hash", "0x" + HEX64.upper(), "chain.tx_hash", "lower case"),
        ("chain.tx_hash", "0x" + HEX64[:-2], "chain.tx_hash", "64 hex digits, got 62"),
        (
            "chain.anchor_contract",
            "5fbdb2315678afecb367f032d93f642f64180aa3",
            "chain.anchor_contract",
            "0x-prefixed",
        ),
        (
            "chain.anchor_contract",
            "0x5fbdb2315678afecb367f032d93f642f64180aa",
            "chain.anchor_contract",
            "40 hex digits",
        ),
        (
            "chain.anchor_contract",
            "0x5FbDB2315678afecb367f032d93F642f64180aA3",
            "chain.anchor_contract",
            "EIP-55",
        ),
        (
            "chain.anchor_contract",
            "0xzfbdb2315678afecb367f032d93f642f64180aa3",
            "chain.anchor_contract",
            "40 hex digits",
        ),
        ("batch.region", 190000, "batch.region", "not a GB/T 2260 division code"),
        ("batch.region", -110000, "batch.region", "at least 0"),
        ("batch.seq", -1, "batch.seq", "at least 0"),
        ("batch.seq", False, "batch.seq", "not a boolean"),
        ("batch.size", 0, "batch.size", "at least 1"),
        ("batch.size", 2**32, "batch.size", "at most 4294967295"),
        ("batch.root", "0x" + HEX64, "batch.root", "without 0x"),
        ("batch.root", HEX64.upper(), "batch.root", "lower case"),
        ("batch.root", HEX64 + "ab", "batch.root", "64 hex digits, got 66"),
        ("batch.root", "zz" * 32, "batch.root", "not hexadecimal"),
        ("batch.root", 5, "batch.root", "must be a hex string"),
        ("leaf.index", 3, "leaf.index", "not below batch.size 3"),
        ("leaf.index", -1, "leaf.index", "at least 0"),
        ("leaf.index", 1.0, "leaf.index", "not float"),
        ("leaf.version", 0, "leaf.version", "at least 1"),
        ("leaf.version", 2**32, "leaf.version", "at most 4294967295"),
        ("leaf.version", 2, "leaf.prev_leaf", "not zero"),
        ("leaf.prev_leaf", HEX64, "leaf.prev_leaf", "zero bytes for version 1"),
        ("leaf.status", "ACTIVE", "leaf.status", "unknown status"),
        ("leaf.status", 1, "leaf.status", "must be a status name"),
        ("leaf.record_key", HEX64[:-1], "leaf.record_key", "got 63"),
        ("leaf.commitment", "0x" + HEX64, "leaf.commitment", "without 0x"),
        ("leaf.extra", 1, "leaf.extra", "unknown field"),
        ("proof", HEX64, "proof", "must be an array"),
        ("proof", [HEX64] * 33, "proof", "more than 32 nodes"),
        ("proof.0", HEX64.upper(), "proof[0]", "lower case"),
        ("proof.1", None, "proof[1]", "must be a hex string"),
    ],
)
def test_rejects_malformed_receipt(
    receipt_json: dict[str, Any], path: str, value: Any, field: str, reason: str
) -> None:
    with pytest.raises(ReceiptError) as caught:
        Receipt.from_json(_mutated(receipt_json, path, value))
    assert caught.value.field == field
    assert reason in caught.value.reason, caught.value.reason


@pytest.mark.parametrize("obj", [None, [], "receipt"])
def test_rejects_receipt_that_is_not_an_object(obj: Any) -> None:
    with pytest.raises(ReceiptError, match="must be a JSON object"):
        Receipt.from_json(obj)


def test_typed_construction_validates_parts(batch: SealedBatch) -> None:
    good = batch.receipt(0)
    with pytest.raises(ReceiptError) as caught:
        Receipt(good.chain, good.batch, 5, good.leaf, good.proof)
    assert caught.value.field == "leaf.index"
    with pytest.raises(ReceiptError) as caught:
        Receipt(good.chain, good.batch, 0, good.leaf, (b"\x00" * 31,))
    assert caught.value.field == "proof[0]"
    with pytest.raises(ReceiptError) as caught:
        BatchRef(110000, 0, b"\x00" * 31, 3)
    assert caught.value.field == "batch.root"
    with pytest.raises(ReceiptError) as caught:
        ChainAnchor(31337, ANCHOR_ADDRESS, b"\x00" * 31, 1)
    assert caught.value.field == "chain.tx_hash"


def test_receipt_accepts_a_proof_list_and_stores_a_tuple(batch: SealedBatch) -> None:
    good = batch.receipt(0)
    receipt = Receipt(good.chain, good.batch, 0, good.leaf, list(good.proof))  # type: ignore[arg-type]
    assert receipt.proof == good.proof


# --- addresses ---------------------------------------------------------------------------


def test_keccak256_matches_known_answers() -> None:
    assert (
        _keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    assert (
        _keccak256(b"abc").hex()
        == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    )
    assert len(_keccak256(b"x" * 200)) == 32  # more than one 136-byte block


@pytest.mark.parametrize(
    "address",
    [  # the test vectors of EIP-55
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ],
)
def test_checksum_address_follows_eip55(address: str) -> None:
    assert checksum_address(address.lower()) == address
    assert normalize_address(address) == address.lower()


def test_normalize_address_rejects_a_mistyped_checksum() -> None:
    with pytest.raises(ReceiptError, match="EIP-55"):
        normalize_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "chain.anchor_contract")


# --- disclosures -------------------------------------------------------------------------


def test_disclosure_round_trips_through_json(batch: SealedBatch) -> None:
    disclosure = batch.disclosure(2)
    obj = json.loads(json.dumps(disclosure.to_json(), ensure_ascii=False))
    assert list(obj) == ["receipt", "record", "salt"]
    assert obj["record"] == record_json("red_list")
    assert Disclosure.from_json(obj) == disclosure


@pytest.mark.parametrize(
    ("path", "value", "error", "field"),
    [
        ("salt", "00" * 31, ReceiptError, "salt"),
        ("salt", "0x" + "00" * 32, ReceiptError, "salt"),
        ("salt", DELETE, ReceiptError, "salt"),
        ("note", "x", ReceiptError, "note"),
        ("receipt.leaf.index", 9, ReceiptError, "receipt.leaf.index"),
        ("receipt", None, ReceiptError, "receipt"),
        ("record.data.amount_fen", 1.5, RecordError, "record.data.amount_fen"),
        ("record.uscc", "x", RecordError, "record.uscc"),
        ("record", [], RecordError, "record"),
    ],
)
def test_rejects_malformed_disclosure(
    batch: SealedBatch, path: str, value: Any, error: type[Exception], field: str
) -> None:
    obj = _mutated(batch.disclosure(1).to_json(), path, value)
    with pytest.raises(error) as caught:
        Disclosure.from_json(obj)
    assert caught.value.field == field  # type: ignore[attr-defined]


def test_disclosure_construction_checks_salt_length(batch: SealedBatch) -> None:
    good = batch.disclosure(0)
    with pytest.raises(ReceiptError) as caught:
        Disclosure(good.receipt, good.record, b"\x00" * 16)
    assert caught.value.field == "salt"


def test_leaf_of_a_later_version_carries_its_previous_leaf() -> None:
    first = seal_batch([record_json()])
    second = seal_batch([record_json()], seq=1, version=2, prev_leaves=[first.tree.leaf_hash(0)])
    receipt = second.receipt(0).to_json()
    assert receipt["leaf"]["prev_leaf"] == first.tree.leaf_hash(0).hex()
    assert Receipt.from_json(receipt).leaf == second.leaves[0]
    assert second.leaves[0].prev_leaf != ZERO_HASH
    assert isinstance(second.leaves[0], Leaf)


# --- the fast path ---------------------------------------------------------------------------
#
# Receipt.from_json and Disclosure.from_json first try _receipt_fast/_disclosure_fast, which
# must accept nothing the checked parse rejects and give equal objects when they accept.

_HEX = "ab" * 32
_ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(
        [
            0,
            1,
            2**32 - 1,
            2**32,
            2**53 - 1,
            2**53,
            1.0,
            "",
            "active",
            "revoked",
            "expired",
            "Active",
            _HEX,
            _HEX.upper(),
            "0x" + _HEX,
            "0X" + _HEX,
            _HEX[:-2],
            _HEX + "ab",
            _HEX[:-2] + " a",
            _HEX[:-2] + "0g",
            " " + _HEX[:-1],
            "00" * 32,
            ANCHOR_ADDRESS,
            ANCHOR_ADDRESS.lower(),
            ANCHOR_ADDRESS.upper().replace("0X", "0x"),
            ANCHOR_ADDRESS[:-1] + ("a" if ANCHOR_ADDRESS[-1] != "a" else "b"),
            "0x" + "ab" * 20,
            "0x" + "ab" * 19,
            "credit-ledger/receipt/v1",
            "sha256",
            110000,
            190000,
            [],
            [_HEX],
            [_HEX.upper()],
            [_HEX] * 33,
            {},
        ]
    ),
)
_RECEIPT_PATHS = [
    "format",
    "hash_alg",
    "chain",
    "chain.chain_id",
    "chain.anchor_contract",
    "chain.tx_hash",
    "chain.block_number",
    "batch",
    "batch.region",
    "batch.seq",
    "batch.root",
    "batch.size",
    "leaf",
    "leaf.index",
    "leaf.record_key",
    "leaf.version",
    "leaf.status",
    "leaf.prev_leaf",
    "leaf.commitment",
    "proof",
    "proof.0",
    "extra",
    "leaf.extra",
]


@st.composite
def _damaged_disclosures(draw: st.DrawFn) -> dict[str, Any]:
    batch = seal_batch(
        [record_json(t) for t in ("registration", "administrative_penalty", "red_list")]
    )
    obj = batch.disclosure(draw(st.integers(0, 2))).to_json()
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from([*("receipt." + p for p in _RECEIPT_PATHS), "salt", "x"]))
        parent: Any = obj
        *parents, last = path.split(".")
        for part in parents:
            parent = parent[int(part)] if type(parent) is list else parent.get(part)
        if type(parent) is list and parent:
            parent[0] = draw(_ODD_VALUES)
        elif type(parent) is dict:
            if draw(st.booleans()) and last in parent:
                del parent[last]
            else:
                parent[last] = draw(_ODD_VALUES)
    return obj


def _parse_outcome(parse: Any, obj: Any) -> Any:
    try:
        return parse(obj)
    except (ReceiptError, RecordError) as error:
        return type(error), error.field, error.reason


@settings(PROPERTY, max_examples=600)
@given(_damaged_disclosures())
def test_fast_paths_agree_with_the_checked_parse_on_damaged_disclosures(
    obj: dict[str, Any],
) -> None:
    checked = _parse_outcome(Disclosure._from_json_checked, obj)
    fast = _disclosure_fast(obj)
    assert _parse_outcome(Disclosure.from_json, obj) == checked
    if isinstance(checked, tuple):
        assert fast is None
    elif fast is not None:
        assert fast == checked

    receipt = obj.get("receipt")
    checked_receipt = _parse_outcome(Receipt._from_json_checked, receipt)
    assert _parse_outcome(Receipt.from_json, receipt) == checked_receipt
    fast_receipt = _receipt_fast(receipt, ())
    if isinstance(checked_receipt, tuple):
        assert fast_receipt is None
    elif fast_receipt is not None:
        assert fast_receipt == (checked_receipt, b"")


def test_fast_path_reads_every_disclosure_of_a_batch(batch: SealedBatch) -> None:
    for index in range(batch.tree.size):
        expected = batch.disclosure(index)
        parsed = _disclosure_fast(expected.to_json())
        assert parsed == expected
        assert type(parsed) is Disclosure and type(parsed.receipt.leaf) is Leaf


def test_fast_path_keeps_the_anchor_contract_in_lower_case(receipt_json: dict[str, Any]) -> None:
    parsed = _receipt_fast(receipt_json, ())
    assert parsed is not None
    assert parsed[0].chain.anchor_contract == ANCHOR_ADDRESS.lower()
    receipt_json["chain"]["anchor_contract"] = ANCHOR_ADDRESS.lower()
    assert _receipt_fast(receipt_json, ()) == parsed


def test_fast_path_reads_a_receipt_without_proof_nodes() -> None:
    single = seal_batch([record_json()])
    expected = single.receipt(0)
    assert expected.proof == ()
    assert _receipt_fast(expected.to_json(), ()) == (expected, b"")
