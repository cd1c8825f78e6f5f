"""Tests for ledger.commitment: the DESIGN §3 byte encodings, recomputed independently."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st
from ledger_samples import BEIJING_USCC, NODE_SECRET, PROPERTY, record_json, record_jsons

from ledger.commitment import (
    STATUS,
    ZERO_HASH,
    Leaf,
    LeafStatus,
    SaltDeriver,
    commit_records,
    commitment,
    derive_salt,
    leaf_bytes,
    leaf_hash,
    record_key,
    record_key_of,
    status_of,
)
from ledger.errors import RecordError
from ledger.records import RecordType, parse_record

# Every test here runs on the C speedups and again on pure Python (see conftest.py).
pytestmark = pytest.mark.usefixtures("core_path")

KEY = hashlib.sha256(b"some record").digest()
COMMITMENT = hashlib.sha256(b"some commitment").digest()
PREV = hashlib.sha256(b"previous leaf").digest()


def _field_of(call: Any, *args: Any) -> RecordError:
    with pytest.raises(RecordError) as caught:
        call(*args)
    return caught.value


# --- record_key ----------------------------------------------------------------------------


def test_record_key_is_sha256_of_the_design_encoding() -> None:
    expected = hashlib.sha256(
        b"credit-ledger:key:v1"
        + struct.pack(">I", 110000)
        + BEIJING_USCC.encode("ascii")
        + bytes([3])
        + "京海罚〔2024〕1号".encode()
    ).digest()
    assert (
        record_key(110000, BEIJING_USCC, "administrative_penalty", "京海罚〔2024〕1号") == expected
    )


def test_record_key_takes_the_record_type_as_name_code_or_member() -> None:
    keys = {
        record_key(110000, BEIJING_USCC, value, "1")
        for value in ("red_list", 9, RecordType.RED_LIST)
    }
    assert len(keys) == 1


def test_record_key_of_a_record_equals_record_key_of_its_fields() -> None:
    obj = record_json()
    expected = record_key(110000, BEIJING_USCC, "administrative_penalty", obj["record_id"])
    assert record_key_of(parse_record(obj)) == expected
    assert record_key_of(obj) == expected


def test_record_key_separates_region_type_and_id() -> None:
    base = record_key(110000, BEIJING_USCC, 3, "1")
    assert record_key(120000, BEIJING_USCC, 3, "1") != base
    assert record_key(110000, BEIJING_USCC, 4, "1") != base
    assert record_key(110000, BEIJING_USCC, 3, "11") != base


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((190000, BEIJING_USCC, 3, "1"), "region"),
        ((110000.0, BEIJING_USCC, 3, "1"), "region"),
        ((True, BEIJING_USCC, 3, "1"), "region"),
        ((110000, BEIJING_USCC.lower(), 3, "1"), "uscc"),
        ((110000, BEIJING_USCC, 10, "1"), "record_type"),
        ((110000, BEIJING_USCC, "penalty", "1"), "record_type"),
        ((110000, BEIJING_USCC, 3, ""), "record_id"),
        ((110000, BEIJING_USCC, 3, 17), "record_id"),
        ((110000, BEIJING_USCC, 3, "\ud800"), "record_id"),
    ],
)
def test_record_key_rejects_bad_inputs_naming_the_field(args: tuple[Any, ...], field: str) -> None:
    assert _field_of(record_key, *args).field == field


# --- salts -------------------------------------------------------------------------------


def test_derive_salt_is_hmac_sha256_of_key_and_version() -> None:
    expected = hmac.new(NODE_SECRET, KEY + (7).to_bytes(4, "big"), hashlib.sha256).digest()
    assert derive_salt(NODE_SECRET, KEY, 7) == expected


def test_derive_salt_is_deterministic_and_version_specific() -> None:
    assert derive_salt(NODE_SECRET, KEY, 1) == derive_salt(NODE_SECRET, KEY, 1)
    assert derive_salt(NODE_SECRET, KEY, 1) != derive_salt(NODE_SECRET, KEY, 2)


@PROPERTY
@given(
    st.binary(min_size=16, max_size=100),
    st.binary(min_size=32, max_size=32),
    st.integers(1, 2**32 - 1),
)
def test_salt_deriver_equals_derive_salt(secret: bytes, key: bytes, version: int) -> None:
    assert SaltDeriver(secret)(key, version) == derive_salt(secret, key, version)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((b"short", KEY, 1), "node_secret"),
        (("x" * 32, KEY, 1), "node_secret"),
        ((NODE_SECRET, KEY[:31], 1), "record_key"),
        ((NODE_SECRET, KEY.hex(), 1), "record_key"),
        ((NODE_SECRET, KEY, 0), "version"),
        ((NODE_SECRET, KEY, 2**32), "version"),
        ((NODE_SECRET, KEY, True), "version"),
    ],
)
def test_derive_salt_rejects_bad_inputs(args: tuple[Any, ...], field: str) -> None:
    assert _field_of(derive_salt, *args).field == field


def test_salt_deriver_rejects_short_secret_and_bad_key() -> None:
    assert _field_of(SaltDeriver, b"x" * 15).field == "node_secret"
    assert _field_of(SaltDeriver(NODE_SECRET), KEY[:5], 1).field == "record_key"


# --- commitment --------------------------------------------------------------------------


def test_commitment_is_sha256_of_domain_salt_and_canonical_record() -> None:
    obj = record_json()
    salt = derive_salt(NODE_SECRET, record_key_of(obj), 1)
    expected = hashlib.sha256(b"credit-ledger:commit:v1" + salt + rfc8785.dumps(obj)).digest()
    assert commitment(salt, obj) == expected
    assert commitment(salt, parse_record(obj)) == expected


def test_commitment_changes_with_salt_and_with_any_record_member() -> None:
    obj = record_json()
    salt = bytes(32)
    changed = record_json()
    changed["data"]["amount_fen"] += 1
    assert commitment(salt, obj) != commitment(salt, changed)
    assert commitment(salt, obj) != commitment(b"\x01" * 32, obj)


@pytest.mark.parametrize("salt", [b"", bytes(31), bytes(33), "00" * 32])
def test_commitment_rejects_salt_that_is_not_32_bytes(salt: Any) -> None:
    assert _field_of(commitment, salt, record_json()).field == "salt"


def test_commitment_rejects_floats_in_the_record() -> None:
    obj = record_json()
    obj["data"]["amount_fen"] = 1.0
    assert _field_of(commitment, bytes(32), obj).field == "data.amount_fen"


# --- leaves ------------------------------------------------------------------------------


def test_status_map_is_the_design_map() -> None:
    assert dict(STATUS) == {"active": 1, "revoked": 2, "expired": 3}


@pytest.mark.parametrize(("value", "expected"), [("active", 1), (2, 2), (LeafStatus.EXPIRED, 3)])
def test_status_of_accepts_names_and_codes(value: Any, expected: int) -> None:
    assert status_of(value) == expected


@pytest.mark.parametrize("value", ["ACTIVE", "deleted", 0, 4, True, None, 1.0])
def test_status_of_rejects_unknown_statuses(value: Any) -> None:
    assert _field_of(status_of, value).field == "status"


def test_leaf_bytes_layout_is_the_design_layout() -> None:
    encoded = leaf_bytes(KEY, 2, "revoked", PREV, COMMITMENT)
    assert (
        encoded
        == b"credit-ledger:leaf:v1" + KEY + b"\x00\x00\x00\x02" + b"\x02" + PREV + COMMITMENT
    )
    assert len(encoded) == 21 + 32 + 4 + 1 + 32 + 32


def test_leaf_hash_is_rfc6962_leaf_hash_of_leaf_bytes() -> None:
    encoded = leaf_bytes(KEY, 1, 1, ZERO_HASH, COMMITMENT)
    expected = hashlib.sha256(b"\x00" + encoded).digest()
    assert leaf_hash(KEY, 1, "active", ZERO_HASH, COMMITMENT) == expected
    assert Leaf(KEY, 1, LeafStatus.ACTIVE, ZERO_HASH, COMMITMENT).leaf_hash == expected


def test_leaf_dataclass_normalises_status_and_matches_leaf_bytes() -> None:
    leaf = Leaf(KEY, 3, "expired", PREV, COMMITMENT)  # type: ignore[arg-type]
    assert leaf.status is LeafStatus.EXPIRED
    assert leaf.to_bytes() == leaf_bytes(KEY, 3, 3, PREV, COMMITMENT)


@pytest.mark.parametrize(
    ("args", "field", "reason"),
    [
        ((KEY, 1, 1, PREV, COMMITMENT), "prev_leaf", "zero bytes for version 1"),
        ((KEY, 2, 1, ZERO_HASH, COMMITMENT), "prev_leaf", "previous version's leaf hash"),
        ((KEY, 0, 1, ZERO_HASH, COMMITMENT), "version", "between 1 and"),
        ((KEY, 2**32, 1, PREV, COMMITMENT), "version", "between 1 and"),
        ((KEY, 1.0, 1, ZERO_HASH, COMMITMENT), "version", "must be an integer"),
        ((KEY, 1, 4, ZERO_HASH, COMMITMENT), "status", "unknown status"),
        ((KEY, 1, "ACTIVE", ZERO_HASH, COMMITMENT), "status", "unknown status"),
        ((KEY[:31], 1, 1, ZERO_HASH, COMMITMENT), "record_key", "got 31"),
        ((KEY, 1, 1, ZERO_HASH[:31], COMMITMENT), "prev_leaf", "got 31"),
        ((KEY, 1, 1, ZERO_HASH, COMMITMENT + b"\x00"), "commitment", "got 33"),
        ((KEY, 1, 1, ZERO_HASH, bytearray(COMMITMENT)), "commitment", "not bytearray"),
    ],
)
def test_leaf_rejects_bad_fields(args: tuple[Any, ...], field: str, reason: str) -> None:
    for build in (leaf_bytes, leaf_hash, Leaf):
        error = _field_of(build, *args)
        assert error.field == field
        assert reason in error.reason


def test_largest_version_is_accepted() -> None:
    assert leaf_bytes(KEY, 2**32 - 1, 1, PREV, COMMITMENT)[53:57] == b"\xff\xff\xff\xff"


# --- commit_records: the batch form of the commit path ---------------------------------------


@PROPERTY
@given(st.lists(record_jsons(), min_size=1, max_size=8))
def test_commit_records_equals_the_per_value_functions(objs: list[dict[str, Any]]) -> None:
    derive = SaltDeriver(NODE_SECRET)
    records = [parse_record(obj) for obj in objs]
    committed = commit_records(records, derive)
    assert len(committed) == len(records)
    for record, version in zip(records, committed, strict=True):
        key = record_key_of(record)
        salt = derive_salt(NODE_SECRET, key, 1)
        expected = Leaf(key, 1, LeafStatus.ACTIVE, ZERO_HASH, commitment(salt, record))
        assert version.salt == salt
        assert version.leaf == expected and type(version.leaf) is Leaf
        assert version.leaf_hash == leaf_hash(key, 1, "active", ZERO_HASH, expected.commitment)
        assert version.leaf_hash == expected.leaf_hash


def test_commit_records_accepts_any_iterable_and_records_built_in_code() -> None:
    record = parse_record(record_json())
    built = dataclasses.replace(record)  # no canonical bytes written yet
    committed = commit_records(iter([record, built]), SaltDeriver(NODE_SECRET))
    assert committed[0] == committed[1]
    assert commit_records([], SaltDeriver(NODE_SECRET)) == []


def test_commit_records_rejects_record_json_and_a_bare_secret() -> None:
    with pytest.raises(RecordError) as caught:
        commit_records([record_json()], SaltDeriver(NODE_SECRET))  # type: ignore[list-item]
    assert caught.value.field == "record"
    with pytest.raises(RecordError) as caught:
        commit_records([parse_record(record_json())], NODE_SECRET)  # type: ignore[arg-type]
    assert caught.value.field == "derive"
