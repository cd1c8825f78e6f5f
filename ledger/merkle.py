"""RFC 6962 / RFC 9162 Merkle tree math over leaf hashes: roots, proofs and their checks.

Pure proof math, no I/O. Inputs are RFC 6962 leaf hashes (SHA-256(0x00 || leaf_bytes)),
32 bytes each; interior nodes are SHA-256(0x01 || left || right). Verification follows
RFC 9162 §2.1.3.2 and §2.1.4.2 as transparency-dev/merkle implements them, and raises
``ProofError`` (``RootMismatchError`` with both roots when the proof folds to another
root); it never returns a bare False.

Empty tree: RFC 6962 defines MTH({}) = SHA-256(""), which ``merkle_root([])`` returns
(``EMPTY_ROOT``). No proof exists in an empty tree, and a consistency proof from size 0
proves nothing, so both are rejected. Batches on chain are never empty.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Final

from ledger import _native
from ledger.errors import ProofError, RootMismatchError

__all__ = [
    "HASH_SIZE",
    "EMPTY_ROOT",
    "hash_leaf",
    "hash_children",
    "merkle_root",
    "MerkleTree",
    "inclusion_proof",
    "consistency_proof",
    "root_from_inclusion_proof",
    "verify_inclusion",
    "verify_consistency",
]

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""MTH of the empty tree per RFC 6962 §2.1: SHA-256 of the empty string."""

_sha256 = hashlib.sha256
_NODE_PREFIX: Final = b"\x01"


def hash_leaf(leaf_bytes: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || leaf_bytes)."""
    return _sha256(b"\x00" + leaf_bytes).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _checked_leaf_hashes(leaf_hashes: Iterable[bytes]) -> list[bytes]:
    leaves = leaf_hashes if type(leaf_hashes) is list else list(leaf_hashes)
    # set(map(...)) runs in C: ~30 ns a leaf instead of ~150 ns for a Python-level loop.
    if leaves and (set(map(type, leaves)) != {bytes} or set(map(len, leaves)) != {HASH_SIZE}):
        for index, leaf in enumerate(leaves):
            if type(leaf) is not bytes or len(leaf) != HASH_SIZE:
                raise ProofError(f"leaf hash {index} is not {HASH_SIZE} bytes")
    return leaves


def _parent_level(level: list[bytes]) -> list[bytes]:
    """Hash adjacent pairs; an odd last node moves up unchanged (RFC 6962's split rule)."""
    sha256 = _sha256
    prefix = _NODE_PREFIX
    pairs = iter(level)  # zip(pairs, pairs) walks the level two at a time without copies
    parents = [
        sha256(prefix + left + right).digest() for left, right in zip(pairs, pairs, strict=False)
    ]
    if len(level) & 1:
        parents.append(level[-1])
    return parents


def merkle_root(leaf_hashes: Iterable[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash over leaf hashes, in order; ``EMPTY_ROOT`` for none."""
    level = _checked_leaf_hashes(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    native = _native.speedups
    if native is not None:  # the same loop in C: several times the rate of hashlib calls
        root: bytes = native.merkle_root(level)
        return root
    while len(level) > 1:
        level = _parent_level(level)
    return level[0]


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 6962 §2.1: the largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_size(value: object, name: str) -> int:
    if type(value) is not int:
        raise ProofError(f"{name} must be an integer, not {type(value).__name__}")
    if value < 0:
        raise ProofError(f"{name} must not be negative: {value}")
    return value


class MerkleTree:
    """All levels of one batch's tree, built once: O(n) hashes, then O(log n) per proof.

    ``levels[0]`` are the leaf hashes; node ``i`` of ``levels[k]`` is the root of the
    leaves ``[i·2^k, min((i+1)·2^k, size))``, an odd last node carried up unchanged,
    which is exactly the RFC 6962 subtree hash of that range.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes]) -> None:
        level = _checked_leaf_hashes(leaf_hashes)
        levels = [list(level)]
        native = _native.speedups
        if native is not None and level:
            levels += native.merkle_levels(levels[0])
        else:
            while len(level) > 1:
                level = _parent_level(level)
                levels.append(level)
        self._levels = levels

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    @property
    def root(self) -> bytes:
        """The Merkle Tree Hash of all leaves (``EMPTY_ROOT`` for an empty tree)."""
        return self._levels[-1][0] if self.size else EMPTY_ROOT

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        return self._levels[0][self._check_index(index, self.size)]

    def root_at(self, tree_size: int) -> bytes:
        """The root of the tree made of the first ``tree_size`` leaves."""
        tree_size = self._check_tree_size(tree_size)
        return self._range_hash(0, tree_size) if tree_size else EMPTY_ROOT

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.1 audit path of leaf ``index`` in the first ``tree_size`` leaves."""
        size = self.size if tree_size is None else self._check_tree_size(tree_size)
        index = self._check_index(index, size)
        if size == self.size:
            proof = []
            for level in self._levels[:-1]:
                sibling = index ^ 1
                if sibling < len(level):
                    proof.append(level[sibling])
                index >>= 1
            return proof
        return self._path(index, 0, size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.2 proof that the first ``size1`` leaves prefix the first ``size2``."""
        size2 = self.size if size2 is None else self._check_tree_size(size2)
        size1 = _check_size(size1, "size1")
        if size1 > size2:
            raise ProofError(f"size1 {size1} is greater than size2 {size2}")
        if size1 == 0:
            raise ProofError("a consistency proof from the empty tree proves nothing")
        return self._subproof(size1, 0, size2, complete=True)

    def _check_tree_size(self, tree_size: int) -> int:
        tree_size = _check_size(tree_size, "tree_size")
        if tree_size > self.size:
            raise ProofError(f"tree_size {tree_size} is greater than the tree ({self.size})")
        return tree_size

    @staticmethod
    def _check_index(index: int, size: int) -> int:
        index = _check_size(index, "index")
        if index >= size:
            raise ProofError(f"index {index} is outside a tree of size {size}")
        return index

    def _range_hash(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end): a stored node when aligned, else split per RFC 6962."""
        width = end - start
        level = (width - 1).bit_length()  # smallest k with 2^k >= width
        if start & ((1 << level) - 1) == 0 and (width == 1 << level or end == self.size):
            return self._levels[level][start >> level]
        split = _largest_power_of_two_below(width)
        return hash_children(
            self._range_hash(start, start + split), self._range_hash(start + split, end)
        )

    def _path(self, index: int, start: int, end: int) -> list[bytes]:
        """PATH(index, D[start:end]) of RFC 6962 §2.1.1, bottom-up."""
        siblings = []
        while end - start > 1:
            split = _largest_power_of_two_below(end - start)
            if index < split:
                siblings.append(self._range_hash(start + split, end))
                end = start + split
            else:
                siblings.append(self._range_hash(start, start + split))
                start += split
                index -= split
        siblings.reverse()
        return siblings

    def _subproof(self, size1: int, start: int, end: int, *, complete: bool) -> list[bytes]:
        """SUBPROOF(size1, D[start:end], complete) of RFC 6962 §2.1.2, bottom-up."""
        nodes = []
        while size1 != end - start:
            split = _largest_power_of_two_below(end - start)
            if size1 <= split:
                nodes.append(self._range_hash(start + split, end))
                end = start + split
            else:
                nodes.append(self._range_hash(start, start + split))
                start += split
                size1 -= split
                complete = False
        if not complete:
            nodes.append(self._range_hash(start, end))
        nodes.reverse()
        return nodes


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path of leaf ``index`` in the tree over ``leaf_hashes`` (RFC 6962 §2.1.1).

    Builds the tree: use ``MerkleTree`` to prove many leaves of one batch.
    """
    return MerkleTree(leaf_hashes).inclusion_proof(index)


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int, size2: int) -> list[bytes]:
    """Proof that the tree of the first ``size1`` leaves prefixes that of the first ``size2``.

    ``leaf_hashes`` needs at least ``size2`` leaves; requires 0 < size1 <= size2.
    """
    size2 = _check_size(size2, "size2")
    if size2 > len(leaf_hashes):
        raise ProofError(f"size2 {size2} is greater than the {len(leaf_hashes)} leaf hashes given")
    return MerkleTree(leaf_hashes[:size2]).consistency_proof(size1)


# --- verification (RFC 9162 §2.1.3.2, §2.1.4.2; transparency-dev/merkle proof/verify.go) ---


def _checked_proof(proof: Sequence[bytes]) -> Sequence[bytes]:
    if set(map(type, proof)) <= {bytes} and set(map(len, proof)) <= {HASH_SIZE}:
        return proof
    for position, node in enumerate(proof):
        if type(node) is not bytes or len(node) != HASH_SIZE:
            raise ProofError(f"proof node {position} is not {HASH_SIZE} bytes")
    raise AssertionError("unreachable")  # pragma: no cover


def _decompose_inclusion_proof(index: int, size: int) -> tuple[int, int]:
    """Split an audit path into its inner part and its right-border part."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


# The three folds below inline hash_children: they run once per proof node verified. The C
# fold_proof does all three (over list and tuple proofs, and indices that fit in 64 bits).
_FOLDABLE: Final = frozenset({list, tuple})
_MAX_U64: Final = 2**64 - 1


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    sha256, prefix = _sha256, _NODE_PREFIX
    for node in proof:  # bit k of index: is the seed the right child at level k?
        if index & 1:
            seed = sha256(prefix + node + seed).digest()
        else:
            seed = sha256(prefix + seed + node).digest()
        index >>= 1
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    sha256, prefix = _sha256, _NODE_PREFIX
    for node in proof:
        if index & 1:
            seed = sha256(prefix + node + seed).digest()
        index >>= 1
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    sha256, prefix = _sha256, _NODE_PREFIX
    for node in proof:
        seed = sha256(prefix + node + seed).digest()
    return seed


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes:
    """Fold an audit path into the root it implies (RFC 9162 §2.1.3.2); ProofError if malformed."""
    if not (  # the common, valid case in one expression; the checks below name the problem
        type(index) is int
        and type(tree_size) is int
        and 0 <= index < tree_size
        and type(leaf_hash) is bytes
        and len(leaf_hash) == HASH_SIZE
    ):
        index = _check_size(index, "index")
        tree_size = _check_size(tree_size, "tree_size")
        if index >= tree_size:
            raise ProofError(f"index {index} is outside a tree of size {tree_size}")
        if type(leaf_hash) is not bytes or len(leaf_hash) != HASH_SIZE:
            raise ProofError(f"leaf hash is not {HASH_SIZE} bytes")
    proof = _checked_proof(proof)
    inner = (index ^ (tree_size - 1)).bit_length()  # _decompose_inclusion_proof, inlined
    border = (index >> inner).bit_count()
    if len(proof) != inner + border:
        raise ProofError(
            f"proof has {len(proof)} nodes, a tree of size {tree_size} needs {inner + border}"
        )
    native = _native.speedups
    if native is not None and type(proof) in _FOLDABLE and index <= _MAX_U64:
        folded: bytes = native.fold_proof(leaf_hash, proof, index, inner, False)
        return folded
    root = _chain_inner(leaf_hash, proof[:inner], index)
    return _chain_border_right(root, proof[inner:])


def _check_root(root: object, name: str) -> None:
    # Any length: a root of the wrong size simply never matches (as in the RFC 6962 vectors).
    if type(root) is not bytes:
        raise ProofError(f"{name} must be bytes, not {type(root).__name__}")


def _verify_match(calculated: bytes, expected: bytes) -> None:
    if calculated != expected:
        raise RootMismatchError(expected, calculated)


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``tree_size`` with ``root``.

    Raises ProofError for a malformed proof and RootMismatchError(expected=root,
    calculated=...) when it folds to another root.
    """
    _check_root(root, "root")
    _verify_match(root_from_inclusion_proof(leaf_hash, index, tree_size, proof), root)


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (size1, root1) is a prefix of the tree (size2, root2).

    Raises ProofError; sizes must satisfy 0 < size1 <= size2, and equal sizes need an empty
    proof and equal roots.
    """
    size1 = _check_size(size1, "size1")
    size2 = _check_size(size2, "size2")
    _check_root(root1, "root1")
    _check_root(root2, "root2")
    if size2 < size1:
        raise ProofError(f"size2 {size2} is smaller than size1 {size1}")
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError("size1 equals size2 but the proof is not empty")
        _verify_match(root1, root2)
        return
    if not proof:
        raise ProofError("empty consistency proof")
    proof = _checked_proof(proof)

    inner, border = _decompose_inclusion_proof(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    inner -= shift  # shift < inner because size1 < size2

    # The proof starts with the root of the subtree of size 2^shift, unless size1 is that
    # very subtree, in which case root1 is the seed.
    if size1 == 1 << shift:
        seed, start = root1, 0
    else:
        seed, start = proof[0], 1
    if len(proof) != start + inner + border:
        raise ProofError(f"proof has {len(proof)} nodes, expected {start + inner + border}")
    path = proof[start:]
    mask = (size1 - 1) >> shift

    native = _native.speedups
    if (
        native is not None
        and type(path) in _FOLDABLE
        and mask <= _MAX_U64
        and len(seed) == HASH_SIZE  # root1 may have any length; it then never matches
    ):
        _verify_match(native.fold_proof(seed, path, mask, inner, True), root1)
        _verify_match(native.fold_proof(seed, path, mask, inner, False), root2)
        return

    hash1 = _chain_inner_right(seed, path[:inner], mask)
    hash1 = _chain_border_right(hash1, path[inner:])
    _verify_match(hash1, root1)

    hash2 = _chain_inner(seed, path[:inner], mask)
    hash2 = _chain_border_right(hash2, path[inner:])
    _verify_match(hash2, root2)
