"""Tests for ledger._native and the C speedups: byte-identical to the pure-Python path.

Each property computes the same thing twice in one process, once with the extension and
once with ``ledger._native.speedups`` set to None, and compares bytes, objects and errors.
The whole module is skipped where the extension is not built; the pure path is then what
every other test runs.
"""

from __future__ import annotations

import copy
import hashlib
import os
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ledger_samples import NODE_SECRET, PROPERTY, RECORD_TYPE_NAMES, record_json, record_jsons
from test_records import MUTATION, _mutated_records

from ledger import _native
from ledger.commitment import SaltDeriver, commit_records, derive_salt, record_key_of
from ledger.errors import LedgerError, ProofError
from ledger.merkle import (
    MerkleTree,
    consistency_proof,
    merkle_root,
    root_from_inclusion_proof,
    verify_consistency,
)
from ledger.records import parse_record, parse_record_fast

native = _native.speedups
pytestmark = pytest.mark.skipif(native is None, reason=_native.describe())

_T = TypeVar("_T")


def _pure(function: Callable[..., _T], *args: Any) -> _T:
    """``function(*args)`` on the pure-Python path."""
    active = _native.speedups
    _native.speedups = None
    try:
        return function(*args)
    finally:
        _native.speedups = active


def _outcome(function: Callable[..., object], *args: Any) -> tuple[str, object]:
    """The result, or the error's type and message: what a caller can observe."""
    try:
        return "ok", function(*args)
    except LedgerError as error:
        return type(error).__name__, str(error)


def _leaves(size: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(size)]


@pytest.fixture
def restore_native() -> Iterator[None]:
    active = _native.speedups
    yield
    _native.speedups = active


# --- trees -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 1000, 1025, 4097])
def test_roots_and_levels_match_the_pure_path_at_edge_sizes(size: int) -> None:
    leaves = _leaves(size, size)
    assert merkle_root(leaves) == _pure(merkle_root, leaves)
    tree, pure_tree = MerkleTree(leaves), _pure(MerkleTree, leaves)
    assert tree._levels == pure_tree._levels
    assert tree.root == pure_tree.root


@PROPERTY
@given(st.integers(0, 300), st.integers(0, 2**32))
def test_roots_levels_and_proofs_match_the_pure_path(size: int, seed: int) -> None:
    leaves = _leaves(size, seed)
    assert merkle_root(leaves) == _pure(merkle_root, leaves)
    tree, pure_tree = MerkleTree(iter(leaves)), _pure(MerkleTree, iter(leaves))
    assert tree._levels == pure_tree._levels
    for index in {0, size // 2, size - 1} if size else set():
        proof = tree.inclusion_proof(index)
        assert proof == pure_tree.inclusion_proof(index)
        for nodes in (proof, tuple(proof)):
            assert root_from_inclusion_proof(leaves[index], index, size, nodes) == tree.root
            assert _pure(root_from_inclusion_proof, leaves[index], index, size, nodes) == tree.root


@PROPERTY
@given(st.integers(1, 80), st.integers(0, 2**32), st.data())
def test_folding_tampered_proofs_matches_the_pure_path(
    size: int, seed: int, data: st.DataObject
) -> None:
    leaves = _leaves(size, seed)
    tree = MerkleTree(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = tree.inclusion_proof(index)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        flipped = bytearray(proof[position])
        flipped[data.draw(st.integers(0, 31))] ^= 1 << data.draw(st.integers(0, 7))
        proof[position] = bytes(flipped)
    claimed_index = data.draw(st.integers(0, size - 1))
    claimed_size = data.draw(st.integers(claimed_index + 1, size + 3))
    args = (leaves[index], claimed_index, claimed_size, proof)
    assert _outcome(root_from_inclusion_proof, *args) == _pure(
        _outcome, root_from_inclusion_proof, *args
    )


@PROPERTY
@given(st.integers(2, 60), st.integers(0, 2**32), st.data())
def test_consistency_checks_match_the_pure_path(size2: int, seed: int, data: st.DataObject) -> None:
    leaves = _leaves(size2, seed)
    size1 = data.draw(st.integers(1, size2))
    proof = consistency_proof(leaves, size1, size2)
    assert proof == _pure(consistency_proof, leaves, size1, size2)
    root1, root2 = merkle_root(leaves[:size1]), merkle_root(leaves)
    if proof and data.draw(st.booleans()):
        position = data.draw(st.integers(0, len(proof) - 1))
        proof[position] = hashlib.sha256(proof[position]).digest()
    if data.draw(st.booleans()):
        root1 = data.draw(st.sampled_from([root1[:16], root1 + b"\x00", root2, bytes(32)]))
    nodes: list[bytes] | tuple[bytes, ...] = data.draw(st.sampled_from([proof, tuple(proof)]))
    args = (size1, size2, root1, root2, nodes)
    assert _outcome(verify_consistency, *args) == _pure(_outcome, verify_consistency, *args)


def test_indices_beyond_64_bits_take_the_pure_fold() -> None:
    leaf = bytes(32)
    index, size = 2**70, 2**71  # a hostile receipt: 70 inner nodes and one border node
    proof = [hashlib.sha256(bytes([i])).digest() for i in range(71)]
    assert root_from_inclusion_proof(leaf, index, size, proof) == _pure(
        root_from_inclusion_proof, leaf, index, size, proof
    )


def test_malformed_input_raises_the_same_proof_errors_on_both_paths() -> None:
    leaves = _leaves(5, 1)
    for bad in ([*leaves[:2], b"short"], [*leaves[:2], bytearray(32)], [leaves[0], "x" * 32]):
        assert _outcome(merkle_root, bad) == _pure(_outcome, merkle_root, bad)
        assert _outcome(MerkleTree, bad)[0] == "ProofError"
    proof = MerkleTree(leaves).inclusion_proof(2)
    for nodes in ([*proof[:-1], b"x"], [*proof, proof[0]], proof[:-1]):
        args = (leaves[2], 2, 5, nodes)
        assert _outcome(root_from_inclusion_proof, *args)[0] == "ProofError"
        assert _outcome(root_from_inclusion_proof, *args) == _pure(
            _outcome, root_from_inclusion_proof, *args
        )


# --- commit_records ---------------------------------------------------------------------------


@PROPERTY
@given(st.lists(record_jsons(), max_size=12), st.binary(min_size=16, max_size=100))
def test_commit_records_matches_the_pure_path(objs: list[dict[str, Any]], secret: bytes) -> None:
    records = [parse_record(obj) for obj in objs]
    derive = SaltDeriver(secret)
    committed = commit_records(records, derive)
    assert committed == _pure(commit_records, records, derive)
    for record, version in zip(records, committed, strict=True):
        assert version.salt == derive_salt(secret, record_key_of(record), 1)
        assert version.leaf.record_key == record_key_of(record)
        assert version.leaf_hash == version.leaf.leaf_hash


def test_commit_records_builds_ordinary_frozen_objects() -> None:
    records = [parse_record(record_json(kind)) for kind in ("registration", "red_list")]
    # Records built in code have no canonical bytes yet; the C path asks for them.
    records += [copy.copy(record) for record in records]
    committed = commit_records(records, SaltDeriver(NODE_SECRET))
    pure = _pure(commit_records, records, SaltDeriver(NODE_SECRET))
    assert committed == pure
    assert [hash(version) for version in committed] == [hash(version) for version in pure]
    assert repr(committed) == repr(pure)
    version = committed[0]
    with pytest.raises(AttributeError):
        version.salt = b""  # type: ignore[misc]
    assert copy.deepcopy(version) == version
    assert committed[0] == committed[2] and committed[1] == committed[3]


def test_commit_records_names_a_non_record_on_both_paths() -> None:
    records: list[Any] = [parse_record(record_json()), record_json()]
    derive = SaltDeriver(NODE_SECRET)
    assert _outcome(commit_records, records, derive) == _pure(
        _outcome, commit_records, records, derive
    )
    assert _outcome(commit_records, iter(records), derive)[0] == "RecordError"


def test_a_deriver_made_without_the_extension_still_commits() -> None:
    derive = _pure(SaltDeriver, NODE_SECRET)
    derive._states = None  # as if built where the extension is absent
    records = [parse_record(record_json())]
    assert commit_records(records, derive) == commit_records(records, SaltDeriver(NODE_SECRET))


# --- parse_record ----------------------------------------------------------------------------


def _same_record(native_record: object, obj: Any) -> None:
    """The C parse gives what the Python fast path gives, or None where that one does."""
    pure = _pure(parse_record_fast, obj)
    if native_record is None:
        return  # the Python paths decide; test_records runs them against the checked parse
    assert pure is not None, obj
    assert native_record == pure
    assert repr(native_record) == repr(pure)
    assert native_record.canonical_bytes() == pure.canonical_bytes()  # type: ignore[attr-defined]
    assert type(native_record.data) is type(pure.data)  # type: ignore[attr-defined]


@PROPERTY
@given(record_jsons())
def test_c_parser_accepts_every_valid_record_as_the_python_one_does(obj: dict[str, Any]) -> None:
    assert native is not None
    record = native.parse_record(obj)
    assert record is not None, obj
    _same_record(record, obj)


@MUTATION
@given(_mutated_records())
def test_c_parser_matches_the_python_one_on_damaged_records(obj: dict[str, Any]) -> None:
    assert native is not None
    _same_record(native.parse_record(obj), obj)


class _HostileKey(str):
    """A key whose comparisons empty the dict being searched (a hostile JSON library)."""

    def __hash__(self) -> int:
        return hash(str(self))

    def __eq__(self, other: object) -> bool:
        _HostileKey.target.clear()
        return str.__eq__(self, other)

    target: dict[str, Any] = {}


def test_c_parser_survives_a_dict_changed_during_lookup() -> None:
    assert native is not None
    obj = record_json()
    data = dict(obj["data"])
    key = _HostileKey("amount_fen")
    value = data.pop("amount_fen")
    data[key] = value
    _HostileKey.target = data
    obj["data"] = data
    native.parse_record(obj)  # any answer will do, as long as memory stays intact
    envelope = dict(obj)
    _HostileKey.target = envelope
    del envelope["uscc"]
    envelope[_HostileKey("uscc")] = record_json()["uscc"]
    native.parse_record(envelope)


class _Str(str):
    pass


class _Int(int):
    pass


def _hostile_values(original: object) -> list[object]:
    """Values a hostile or careless client sends in place of ``original``."""
    values: list[object] = [
        *(None, True, False, 0, -1, 1.0, float("nan"), b"x", (), [], {}, [None], {"a": 1}),
        *(2**53 - 1, 2**53, 2**63 - 1, 2**63, 2**64 + 1, -(2**63) - 1, 2**200, _Int(110000)),
        *("", " ", "x" * 100_000, "\ud800", "a\udfffb", "a\x00b", "a\tb", "a\nb", "a\x85b"),
        *("\x85a", "a\xa0", "\u3000a", "a\u2028b", "a\u200bb", "\ufeffa", 'a"b', "a\\b"),
        *("\U0001f600", "20240305", "2024-W10-2", "2024-03-05T00:00", "\uff12024-03-05"),
        *("1899-12-31", "2200-01-01", "2024-02-30", _Str("x")),
    ]
    if type(original) is str:
        values += [_Str(original), original + " ", original + "\x00", original * 200]
        values += [original + "\ud800", original.lower()]
    if type(original) is int:
        values += [_Int(original), bool(original), float(original), original + 2**64, -original]
        values += [str(original)]
    if type(original) is list:
        values += [tuple(original), original + original, [_Str(item) for item in original]]
        values += [original + [None], original + [1]]
    nested: list[Any] = []
    for _ in range(10_000):
        nested = [nested]
    values.append(nested)
    return values


@pytest.mark.parametrize("record_type", RECORD_TYPE_NAMES)
def test_c_parser_and_python_agree_on_hostile_member_values(record_type: str) -> None:
    """Each envelope and payload member replaced by hostile values, keys made str subclasses,
    members dropped and added: both paths give the same Record or the same RecordError."""
    assert native is not None
    sample = record_json(record_type)
    objs: list[Any] = []
    for key in [*sample, *sample["data"]]:
        in_data = key not in sample
        for value in _hostile_values(sample["data"][key] if in_data else sample[key]):
            obj = copy.deepcopy(sample)
            (obj["data"] if in_data else obj)[key] = value
            objs.append(obj)
        for target in ("envelope", "data"):
            obj = copy.deepcopy(sample)
            members = obj["data"] if target == "data" else obj
            if key in members:
                members[_Str(key)] = members.pop(key)
                objs.append(obj)
                objs.append({**obj, "extra": 1} if target == "envelope" else obj)
        obj = copy.deepcopy(sample)
        del (obj["data"] if in_data else obj)[key]
        objs.append(obj)
    objs += [{**sample, "data": {**sample["data"], "extra": 1}}, {**sample, 1: 1}]
    for obj in objs:
        _same_record(native.parse_record(obj), obj)
        assert _any_outcome(parse_record, obj) == _pure(_any_outcome, parse_record, obj)


def _any_outcome(function: Callable[..., object], *args: Any) -> tuple[str, object]:
    """``_outcome``, with any exception (a RecursionError from a deep value's repr)."""
    try:
        return "ok", function(*args)
    except Exception as error:  # noqa: BLE001 - both paths must fail alike, whatever it is
        return type(error).__name__, str(error)


def _run_isolated(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter: a memory error there cannot take the suite down."""
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def test_commit_batch_refuses_forged_hmac_states() -> None:
    # The states are raw SHA256_CTX structs (h[8], Nl, Nh, data[16], num, md_len) in bytes;
    # a forged num once made SHA256_Update copy out of bounds (a crash under ASan).
    script = """
import struct
from ledger import _native, commitment
from ledger.records import parse_record
from ledger_samples import record_json
native = _native.built
records = [parse_record(record_json())]
states = native.hmac_states(bytes(64))
native.commit_batch(records, states)
for offset, value in ((104, 100), (104, 2**31), (108, 4096), (32, 0), (36, 1), (216, 7)):
    forged = bytearray(states)
    struct.pack_into("<I", forged, offset, value)
    try:
        native.commit_batch(records, bytes(forged))
    except ValueError:
        continue
    raise SystemExit(f"accepted a forged state at {offset}")
print("refused")
"""
    result = _run_isolated(
        f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r})\n" + script
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "refused"


def test_a_configure_call_failing_half_way_disables_commit_batch() -> None:
    script = """
from ledger import _native, commitment
from ledger.records import Record
native = _native.built
try:
    native.configure(Record, (), int, (), int, (), None, bytes(32))
except TypeError:
    pass
try:
    native.commit_batch([], native.hmac_states(bytes(64)))
except RuntimeError:
    print("refused")
"""
    result = _run_isolated(script)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "refused"


# --- the extension's own guards -------------------------------------------------------------


def test_extension_functions_reject_wrong_types_and_sizes() -> None:
    assert native is not None
    leaf = bytes(32)
    cases: list[tuple[Callable[..., object], tuple[Any, ...], type[Exception]]] = [
        (native.merkle_root, ([],), ValueError),
        (native.merkle_root, ((leaf,),), TypeError),
        (native.merkle_root, ([leaf, b"x"],), ValueError),
        (native.merkle_levels, ([leaf, bytearray(32)],), ValueError),
        (native.fold_proof, (leaf, [leaf], 0, 1), TypeError),
        (native.fold_proof, (b"x", [leaf], 0, 1, False), ValueError),
        (native.fold_proof, (leaf, iter([leaf]), 0, 1, False), TypeError),
        (native.fold_proof, (leaf, [leaf], -1, 1, False), OverflowError),
        (native.fold_proof, (leaf, [leaf], 2**64, 1, False), OverflowError),
        (native.fold_proof, (leaf, [leaf], 0, 2, False), ValueError),
        (native.fold_proof, (leaf, [leaf], 0, -1, False), ValueError),
        (native.fold_proof, (leaf, [leaf, "x"], 0, 1, False), ValueError),
        (native.hmac_states, (b"k" * 63,), ValueError),
        (native.commit_batch, ([], b"short"), ValueError),
        (native.commit_batch, ((), native.hmac_states(bytes(64))), TypeError),
        (native.commit_batch, ([record_json()], native.hmac_states(bytes(64))), TypeError),
        (native.configure, (1, 2, 3), TypeError),
        (native.configure_records, (), RuntimeError),  # configured once, at import,
        (native.configure_receipts, (), RuntimeError),
    ]
    for function, args, error in cases:
        with pytest.raises(error):
            function(*args)


def test_fold_proof_reads_the_proof_after_running_python_code() -> None:
    # right_only's __bool__ is the one Python call in fold_proof: the proof it empties must
    # be read after it, never through pointers taken before.
    assert native is not None
    leaf = bytes(32)
    proof = [hashlib.sha256(bytes([i])).digest() for i in range(40)]

    class Emptying:
        def __bool__(self) -> bool:
            proof.clear()
            return False

    with pytest.raises(ValueError, match="inner"):
        native.fold_proof(leaf, proof, 5, 40, Emptying())
    assert native.fold_proof(leaf, proof, 5, 0, Emptying()) == leaf


def test_extension_calls_leak_neither_references_nor_memory() -> None:
    assert native is not None
    leaves = _leaves(33, 3)
    records = [parse_record(record_json()), copy.copy(parse_record(record_json("red_list")))]
    states = native.hmac_states(bytes(64))
    proof = MerkleTree(leaves).inclusion_proof(7)
    counts = [sys.getrefcount(item) for item in (*leaves, *records)]

    def calls() -> None:
        native.merkle_levels(leaves)
        native.merkle_root(leaves)
        native.fold_proof(leaves[7], proof, 7, 6, False)
        native.commit_batch(records, states)
        try:  # not pytest.raises: its ExceptionInfo keeps tracebacks alive
            native.commit_batch([*records, leaves], states)
        except TypeError:
            pass
        else:
            raise AssertionError("commit_batch took a list for a Record")

    calls()  # first call: caches (UTF-8 of record_id, canonical bytes) are filled
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            calls()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 20_000, grown  # a leak of one object per call would be > 60,000 bytes
    assert [sys.getrefcount(item) for item in (*leaves, *records)] == counts


# --- choosing the path ------------------------------------------------------------------------


def test_pure_environment_variable_disables_the_extension() -> None:
    script = "from ledger import _native; print(_native.speedups is None, _native.describe())"
    env = {**os.environ, "CREDIT_LEDGER_PURE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("True pure Python")
    env["CREDIT_LEDGER_PURE"] = "0"
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("False C speedups")


def test_the_active_path_is_named(restore_native: None) -> None:
    assert _native.describe().startswith("C speedups")
    _native.speedups = None
    assert _native.describe() == "pure Python (C speedups built but disabled)"
    with pytest.raises(ProofError):
        merkle_root([b"x"])
