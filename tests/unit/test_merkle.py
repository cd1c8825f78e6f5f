"""Tests for ledger.merkle: RFC 6962 known-answer vectors and properties over random trees."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ledger_samples import PROPERTY

from ledger.errors import ProofError, RootMismatchError
from ledger.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    consistency_proof,
    hash_children,
    hash_leaf,
    inclusion_proof,
    merkle_root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

# Every test here, the RFC 6962 vectors included, runs on the C speedups and on pure Python.
pytestmark = pytest.mark.usefixtures("core_path")


def _vectors_dir() -> Path:
    override = os.environ.get("CREDIT_LEDGER_VECTORS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "rfc6962"


def _load_cases(kind: str) -> list[tuple[str, dict[str, Any] | None]]:
    # Missing vectors must fail the suite, never skip it (pytest skips an empty parameter
    # set), so a missing folder yields one case that fails.
    folder = _vectors_dir() / kind
    if not folder.is_dir() or not any(folder.rglob("*.json")):
        return [(f"missing-{kind}-vectors", None)]
    return [
        (str(path.relative_to(folder)), json.loads(path.read_text("utf-8")))
        for path in sorted(folder.rglob("*.json"))
    ]


INCLUSION_CASES = _load_cases("inclusion")
CONSISTENCY_CASES = _load_cases("consistency")


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _proof(case: dict[str, Any]) -> list[bytes]:
    return [_b64(node) for node in case["proof"] or []]


def test_vector_folders_hold_enough_cases() -> None:
    folder = _vectors_dir()
    assert folder.is_dir(), f"RFC 6962 vectors not found at {folder} (set CREDIT_LEDGER_VECTORS)"
    cases = [case for _, case in INCLUSION_CASES + CONSISTENCY_CASES if case is not None]
    assert len(cases) > 150


@pytest.mark.parametrize(("name", "case"), INCLUSION_CASES, ids=[n for n, _ in INCLUSION_CASES])
def test_inclusion_vector(name: str, case: dict[str, Any] | None) -> None:
    assert case is not None, f"RFC 6962 vectors not found at {_vectors_dir()}"

    def run() -> None:
        verify_inclusion(
            _b64(case["leafHash"]),
            case["leafIdx"],
            case["treeSize"],
            _proof(case),
            _b64(case["root"]),
        )

    if case["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


@pytest.mark.parametrize(("name", "case"), CONSISTENCY_CASES, ids=[n for n, _ in CONSISTENCY_CASES])
def test_consistency_vector(name: str, case: dict[str, Any] | None) -> None:
    assert case is not None, f"RFC 6962 vectors not found at {_vectors_dir()}"

    def run() -> None:
        verify_consistency(
            case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), _proof(case)
        )

    if case["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


# --- reference implementation straight from RFC 6962 §2.1 -------------------------------


def _k(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _k(len(leaves))
    return hash_children(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) <= 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [_mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


def _leaves(count: int, seed: int = 0) -> list[bytes]:
    return [hash_leaf(f"{seed}:{i}".encode()) for i in range(count)]


def _flip(value: bytes, bit: int) -> bytes:
    position = bit % (8 * len(value))
    mutable = bytearray(value)
    mutable[position // 8] ^= 1 << (position % 8)
    return bytes(mutable)


# --- roots -------------------------------------------------------------------------------


def test_empty_tree_root_is_sha256_of_the_empty_string() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert MerkleTree([]).root == EMPTY_ROOT


def test_single_leaf_root_is_the_leaf_hash() -> None:
    leaf = hash_leaf(b"")
    assert merkle_root([leaf]) == leaf
    assert leaf.hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


def test_leaf_and_node_hashes_use_rfc6962_prefixes() -> None:
    assert hash_leaf(b"x") == hashlib.sha256(b"\x00x").digest()
    assert hash_children(b"l", b"r") == hashlib.sha256(b"\x01lr").digest()


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 100, 257])
def test_root_matches_rfc6962_definition(size: int) -> None:
    leaves = _leaves(size)
    assert merkle_root(leaves) == MerkleTree(leaves).root == _mth(leaves)


def test_rejects_leaf_hashes_that_are_not_32_bytes() -> None:
    with pytest.raises(ProofError, match="leaf hash 1"):
        merkle_root([bytes(32), bytes(31)])
    with pytest.raises(ProofError, match="leaf hash 0"):
        MerkleTree(["00" * 32])  # type: ignore[list-item]


def test_accepts_any_iterable_of_leaf_hashes() -> None:
    leaves = _leaves(5)
    assert merkle_root(iter(leaves)) == merkle_root(tuple(leaves)) == _mth(leaves)


# --- inclusion ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 33])
def test_inclusion_proofs_match_rfc6962_path_for_every_index_and_prefix(size: int) -> None:
    leaves = _leaves(size)
    tree = MerkleTree(leaves)
    for tree_size in range(1, size + 1):
        for index in range(tree_size):
            assert tree.inclusion_proof(index, tree_size) == _path(index, leaves[:tree_size])
    assert inclusion_proof(leaves, size - 1) == _path(size - 1, leaves)


@pytest.mark.parametrize(("index", "size"), [(-1, 4), (4, 4), (0, 0)])
def test_inclusion_proof_rejects_index_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        inclusion_proof(_leaves(size), index)


def test_inclusion_proof_rejects_tree_size_beyond_the_tree() -> None:
    with pytest.raises(ProofError, match="greater than the tree"):
        MerkleTree(_leaves(4)).inclusion_proof(0, 5)


def test_root_mismatch_carries_expected_and_calculated_roots() -> None:
    leaves = _leaves(6)
    proof = inclusion_proof(leaves, 2)
    wrong_root = bytes(32)
    with pytest.raises(RootMismatchError) as caught:
        verify_inclusion(leaves[2], 2, 6, proof, wrong_root)
    assert caught.value.expected == wrong_root
    assert caught.value.calculated == _mth(leaves)


def test_root_from_inclusion_proof_folds_to_the_root() -> None:
    leaves = _leaves(11)
    assert root_from_inclusion_proof(leaves[7], 7, 11, inclusion_proof(leaves, 7)) == _mth(leaves)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"proof_extra": True}, "proof has"),
        ({"proof_short": True}, "proof has"),
        ({"leaf": bytes(31)}, "leaf hash is not 32 bytes"),
        ({"index": 6}, "outside a tree"),
        ({"index": -1}, "must not be negative"),
        ({"index": True}, "must be an integer"),
        ({"node": b"\x00" * 33}, "proof node 0 is not 32 bytes"),
    ],
)
def test_verify_inclusion_rejects_malformed_input(change: dict[str, Any], message: str) -> None:
    leaves = _leaves(6)
    proof = inclusion_proof(leaves, 3)
    if change.get("proof_extra"):
        proof.append(bytes(32))
    if change.get("proof_short"):
        proof.pop()
    if "node" in change:
        proof[0] = change["node"]
    with pytest.raises(ProofError, match=message):
        verify_inclusion(
            change.get("leaf", leaves[3]), change.get("index", 3), 6, proof, _mth(leaves)
        )


@PROPERTY
@given(st.integers(1, 80), st.integers(0, 2**16))
def test_every_leaf_of_a_random_tree_has_a_verifying_proof(size: int, seed: int) -> None:
    leaves = _leaves(size, seed)
    tree = MerkleTree(leaves)
    for index in range(size):
        verify_inclusion(leaves[index], index, size, tree.inclusion_proof(index), tree.root)


@PROPERTY
@given(st.integers(2, 64), st.integers(0, 2**16), st.data())
def test_any_single_bit_flip_breaks_an_inclusion_proof(
    size: int, seed: int, data: st.DataObject
) -> None:
    leaves = _leaves(size, seed)
    tree = MerkleTree(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = tree.inclusion_proof(index)
    target = data.draw(st.sampled_from(["leaf", "root", "proof"] if proof else ["leaf", "root"]))
    bit = data.draw(st.integers(0, 255))
    leaf, root = leaves[index], tree.root
    if target == "leaf":
        leaf = _flip(leaf, bit)
    elif target == "root":
        root = _flip(root, bit)
    else:
        position = data.draw(st.integers(0, len(proof) - 1))
        proof[position] = _flip(proof[position], bit)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, root)


@PROPERTY
@given(st.integers(2, 64), st.data())
def test_a_proof_does_not_verify_for_another_index(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    tree = MerkleTree(leaves)
    index = data.draw(st.integers(0, size - 1))
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], other, size, tree.inclusion_proof(index), tree.root)


# --- consistency -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17])
def test_consistency_proofs_verify_for_all_size_pairs_in_small_trees(size: int) -> None:
    leaves = _leaves(size)
    tree = MerkleTree(leaves)
    for size1 in range(1, size + 1):
        for size2 in range(size1, size + 1):
            proof = tree.consistency_proof(size1, size2)
            assert proof == _subproof(size1, leaves[:size2], True)
            assert proof == consistency_proof(leaves, size1, size2)
            verify_consistency(size1, size2, _mth(leaves[:size1]), _mth(leaves[:size2]), proof)
            assert tree.root_at(size1) == _mth(leaves[:size1])


@pytest.mark.parametrize(("size1", "size2"), [(0, 3), (4, 3), (-1, 2)])
def test_consistency_proof_rejects_impossible_sizes(size1: int, size2: int) -> None:
    with pytest.raises(ProofError):
        consistency_proof(_leaves(4), size1, size2)


def test_consistency_proof_rejects_size2_beyond_the_leaves() -> None:
    with pytest.raises(ProofError, match="greater than the 4 leaf hashes"):
        consistency_proof(_leaves(4), 1, 5)


def test_consistency_rejects_a_tree_that_rewrote_history() -> None:
    old = _leaves(5)
    rewritten = [*old[:2], hash_leaf(b"forged"), *old[3:], *_leaves(3, seed=9)]
    proof = consistency_proof(rewritten, 5, 8)
    with pytest.raises(RootMismatchError):
        verify_consistency(5, 8, _mth(old), _mth(rewritten), proof)


@PROPERTY
@given(st.integers(2, 40), st.integers(0, 2**16), st.data())
def test_any_single_bit_flip_breaks_a_consistency_proof(
    size: int, seed: int, data: st.DataObject
) -> None:
    leaves = _leaves(size, seed)
    size1 = data.draw(st.integers(1, size - 1))
    proof = consistency_proof(leaves, size1, size)
    root1, root2 = _mth(leaves[:size1]), _mth(leaves)
    target = data.draw(st.sampled_from(["root1", "root2", "proof"]))
    bit = data.draw(st.integers(0, 255))
    if target == "root1":
        root1 = _flip(root1, bit)
    elif target == "root2":
        root2 = _flip(root2, bit)
    else:
        position = data.draw(st.integers(0, len(proof) - 1))
        proof[position] = _flip(proof[position], bit)
    with pytest.raises(ProofError):
        verify_consistency(size1, size, root1, root2, proof)


def test_many_proofs_from_one_tree_match_single_proofs() -> None:
    leaves = _leaves(1000)
    tree = MerkleTree(leaves)
    for index in (0, 1, 511, 512, 998, 999):
        assert tree.inclusion_proof(index) == inclusion_proof(leaves, index)
        assert tree.leaf_hash(index) == leaves[index]


def test_verification_rejects_roots_that_are_not_bytes() -> None:
    leaves = _leaves(4)
    with pytest.raises(ProofError, match="root must be bytes"):
        verify_inclusion(leaves[0], 0, 4, inclusion_proof(leaves, 0), _mth(leaves).hex())  # type: ignore[arg-type]
    with pytest.raises(ProofError, match="root2 must be bytes"):
        verify_consistency(1, 1, b"x", None, [])  # type: ignore[arg-type]
