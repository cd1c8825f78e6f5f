"""CreditAnchor.verifyInclusion against every RFC 6962 inclusion vector (transparency-dev).

One batch is anchored per distinct (root, treeSize) pair and all cases are checked with
batched ``eth_call``s. Vectors whose values cannot exist on chain are mapped explicitly:
a field that is not 32 bytes is zero-padded on the right to a word (so it can never equal a
real hash), and a tree of size 0 or with an empty root cannot be anchored (EmptyBatch /
ZeroRoot), so those cases are asked of a never-anchored sequence number, which must answer
false like every other wantErr case.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from contract_helpers import BEIJING, BJ, TIANJIN, TJ, Env, reverts

from ledger.chain import InclusionQuery

pytestmark = pytest.mark.chain

MANIFEST = b"\x4d" * 32
# Sequence number that is never anchored: the stand-in for trees that cannot exist on chain.
UNANCHORED_SEQ = 2**63


def vectors_dir() -> Path:
    """shared/vectors/rfc6962 next to the repository, or $CREDIT_LEDGER_VECTORS."""
    override = os.environ.get("CREDIT_LEDGER_VECTORS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "rfc6962"


@dataclass(frozen=True)
class Vector:
    """One inclusion case as the chain sees it."""

    name: str
    index: int
    size: int
    root: bytes
    leaf_hash: bytes
    proof: tuple[bytes, ...]
    want_err: bool

    @property
    def anchorable(self) -> bool:
        return self.size > 0 and self.root != bytes(32)


def _word(value: bytes) -> bytes:
    if len(value) > 32:
        raise AssertionError(f"vector value longer than a word: {value.hex()}")
    return value + bytes(32 - len(value))


def load_vectors() -> list[Vector]:
    """Every inclusion vector file; fails (never skips) if the folder is missing or empty."""
    folder = vectors_dir() / "inclusion"
    files = sorted(folder.rglob("*.json"))
    if not files:
        raise FileNotFoundError(
            f"no RFC 6962 inclusion vectors under {folder} (set CREDIT_LEDGER_VECTORS)"
        )
    vectors = []
    for path in files:
        case = json.loads(path.read_text(encoding="utf-8"))
        vectors.append(
            Vector(
                name=path.relative_to(folder).as_posix(),
                index=int(case["leafIdx"]),
                size=int(case["treeSize"]),
                root=_word(base64.b64decode(case["root"])),
                leaf_hash=_word(base64.b64decode(case["leafHash"])),
                proof=tuple(_word(base64.b64decode(p)) for p in case["proof"] or []),
                want_err=bool(case["wantErr"]),
            )
        )
    return vectors


def test_vectors_are_present_and_complete() -> None:
    vectors = load_vectors()
    assert len(vectors) >= 98
    assert sum(not v.want_err for v in vectors) >= 6  # happy paths of every tree shape
    assert any(not v.anchorable for v in vectors)  # the mapped cases are exercised


def _anchor_trees(env: Env, vectors: Sequence[Vector]) -> dict[tuple[bytes, int], int]:
    anchor = env.anchor(BJ)
    seqs: dict[tuple[bytes, int], int] = {}
    for v in vectors:
        key = (v.root, v.size)
        if v.anchorable and key not in seqs:
            seqs[key] = len(seqs)
            anchor.anchor_batch(BEIJING, seqs[key], v.root, v.size, MANIFEST)
    return seqs


def test_verify_inclusion_matches_every_vector(env: Env) -> None:
    vectors = load_vectors()
    seqs = _anchor_trees(env, vectors)
    queries = [
        InclusionQuery(
            BEIJING,
            seqs[(v.root, v.size)] if v.anchorable else UNANCHORED_SEQ,
            v.leaf_hash,
            v.index,
            v.proof,
        )
        for v in vectors
    ]
    results = env.anchor(BJ).verify_inclusion_many(queries)
    wrong = [v.name for v, ok in zip(vectors, results, strict=True) if ok == v.want_err]
    assert wrong == [], f"verifyInclusion disagrees with the vectors: {wrong}"


def test_trees_that_cannot_exist_on_chain_cannot_be_anchored(env: Env) -> None:
    unanchorable = [v for v in load_vectors() if not v.anchorable]
    assert unanchorable and all(v.want_err for v in unanchorable)
    anchor = env.anchor(TJ)
    for v in unanchorable:
        if v.size == 0:
            with reverts("EmptyBatch", region=TIANJIN, seq=0):
                anchor.anchor_batch(TIANJIN, 0, v.root, v.size, MANIFEST)
        else:
            with reverts("ZeroRoot", region=TIANJIN, seq=0):
                anchor.anchor_batch(TIANJIN, 0, v.root, v.size, MANIFEST)
