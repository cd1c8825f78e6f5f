"""Cross-check of the public `ledger` API against the independent reference in spec_impl.

The reference was written from DESIGN.md §3/§5 and RFC 6962/9162 alone; it is itself
checked against every shared RFC 6962 vector below before anything is compared with it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import rfc8785
import spec_impl as ref
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

PUBLIC_NAMES = (
    "validate_uscc",
    "record_key",
    "canonicalize",
    "commitment",
    "leaf_hash",
    "merkle_root",
    "inclusion_proof",
    "verify_inclusion",
    "consistency_proof",
    "verify_consistency",
    "verify_disclosure",
)
try:
    import ledger
    import ledger.errors as errors

    _MISSING = [n for n in PUBLIC_NAMES if not hasattr(ledger, n)]
except ImportError as e:  # the library is written in parallel with these tests
    _MISSING = [repr(e)]
needs_lib = pytest.mark.skipif(bool(_MISSING), reason=f"ledger lacks {_MISSING}")

SETTINGS = settings(
    derandomize=True,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

VECTORS = Path(
    os.environ.get(
        "CREDIT_LEDGER_VECTORS",
        Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "rfc6962",
    )
)
INCLUSION = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((VECTORS / "consistency").rglob("*.json"))

# The leaves behind transparency-dev/merkle's testdata (the CT reference tree).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]


def _b(s: str | None) -> bytes:
    return base64.b64decode(s or "")


def _proof(p: list[str] | None) -> list[bytes]:
    return [_b(x) for x in p or []]


def _id(p: Path) -> str:
    return str(p.relative_to(VECTORS))


def _hashes(n: int, seed: int = 0) -> list[bytes]:
    return [hashlib.sha256(f"{seed}/{i}".encode()).digest() for i in range(n)]


def _flip(b: bytes, bit: int) -> bytes:
    ba = bytearray(b)
    ba[bit // 8] ^= 1 << (bit % 8)
    return bytes(ba)


# =====================================================================================
# 1. The reference against the shared vectors (proves the yardstick).
# =====================================================================================


def test_vector_set_is_complete() -> None:
    assert len(INCLUSION) == 98 and len(CONSISTENCY) == 98


@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_reference_inclusion_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (_b(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v["proof"]), _b(v["root"]))
    if v["wantErr"]:
        with pytest.raises(ref.SpecError):
            ref.verify_inclusion(*args)
    else:
        ref.verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_reference_consistency_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (v["size1"], v["size2"], _b(v["root1"]), _b(v["root2"]), _proof(v["proof"]))
    if v["wantErr"]:
        with pytest.raises(ref.SpecError):
            ref.verify_consistency(*args)
    else:
        ref.verify_consistency(*args)


def _happy(kind: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((VECTORS / kind).glob("*/happy-path.json"))]


@pytest.mark.parametrize("v", _happy("inclusion"), ids=lambda v: f"{v['leafIdx']}of{v['treeSize']}")
def test_reference_generates_vector_inclusion_proofs(v: dict[str, Any]) -> None:
    hashes = [ref.hash_leaf(x) for x in CT_LEAVES[: v["treeSize"]]]
    assert ref.mth(hashes) == _b(v["root"])
    assert hashes[v["leafIdx"]] == _b(v["leafHash"])
    assert ref.path(v["leafIdx"], hashes) == _proof(v["proof"])


@pytest.mark.parametrize("v", _happy("consistency"), ids=lambda v: f"{v['size1']}to{v['size2']}")
def test_reference_generates_vector_consistency_proofs(v: dict[str, Any]) -> None:
    hashes = [ref.hash_leaf(x) for x in CT_LEAVES[: v["size2"]]]
    assert ref.mth(hashes[: v["size1"]]) == _b(v["root1"])
    assert ref.mth(hashes) == _b(v["root2"])
    assert ref.proof(v["size1"], hashes) == _proof(v["proof"])


def test_reference_known_ct_roots() -> None:
    want = {
        1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    }
    for n, root in want.items():
        assert ref.mth_of_data(CT_LEAVES[:n]).hex() == root


def test_reference_paths_and_proofs_verify_for_small_trees() -> None:
    for n in range(1, 33):
        hashes = _hashes(n, seed=99)
        root = ref.mth(hashes)
        for i in range(n):
            ref.verify_inclusion(hashes[i], i, n, ref.path(i, hashes), root)
        for m in range(1, n + 1):
            ref.verify_consistency(m, n, ref.mth(hashes[:m]), root, ref.proof(m, hashes))


def test_reference_uscc_worked_example() -> None:
    # The worked example of GB 32100-2015.
    assert ref.uscc_is_valid("91350100M000100Y43")
    assert not ref.uscc_is_valid("91350100M000100Y44")
    assert not ref.uscc_is_valid("91350100m000100Y43")
    assert not ref.uscc_is_valid("91350100I000100Y43")  # I is not in the charset


def test_reference_record_key_layout() -> None:
    k = ref.record_key(110000, "91350100M000100Y43", "serious_violation", "京市监罚〔2024〕1号")
    want = hashlib.sha256(
        b"credit-ledger:key:v1"
        + bytes.fromhex("0001adb0")
        + b"91350100M000100Y43"
        + b"\x05"
        + "京市监罚〔2024〕1号".encode()
    ).digest()
    assert k == want


# =====================================================================================
# 2. Merkle functions of the library against the reference.
# =====================================================================================


def _raises_proof_error(fn: Any, *args: Any) -> BaseException | None:
    """Run fn; return the exception if it raised ProofError, None if it returned.
    Anything else (a bare False, another exception type) fails the test."""
    try:
        out = fn(*args)
    except errors.ProofError as e:
        return e
    assert out is None, f"verification returned {out!r} instead of None/raise"
    return None


@needs_lib
@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_library_inclusion_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (_b(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v["proof"]), _b(v["root"]))
    err = _raises_proof_error(ledger.verify_inclusion, *args)
    assert (err is not None) == v["wantErr"], (v["desc"], err)


@needs_lib
@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_library_consistency_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (v["size1"], v["size2"], _b(v["root1"]), _b(v["root2"]), _proof(v["proof"]))
    err = _raises_proof_error(ledger.verify_consistency, *args)
    assert (err is not None) == v["wantErr"], (v["desc"], err)


@needs_lib
def test_merkle_root_matches_mth_for_sizes_1_to_300() -> None:
    hashes = _hashes(300, seed=1)
    for n in range(1, 301):
        assert ledger.merkle_root(hashes[:n]) == ref.mth(hashes[:n]), n


@needs_lib
def test_every_inclusion_proof_of_the_section7_function_for_sizes_1_to_80() -> None:
    hashes = _hashes(80, seed=2)
    for n in range(1, 81):
        tree = hashes[:n]
        for i in range(n):
            assert list(ledger.inclusion_proof(tree, i)) == ref.path(i, tree), (n, i)


@needs_lib
def test_merkle_tree_every_index_and_every_consistency_pair_for_sizes_1_to_300() -> None:
    # ledger.inclusion_proof rebuilds the tree per call (O(n)); the library's MerkleTree
    # proves every prefix of one 300-leaf tree, which keeps this sweep fast. A proof that
    # folds to the reference MTH under the RFC 9162 verifier *is* PATH(m, D[n]) / PROOF(m,
    # D[n]) (anything else would be a SHA-256 collision); small sizes are compared exactly.
    hashes = _hashes(300, seed=4)
    tree = ledger.MerkleTree(hashes)
    roots = [b""] + [ref.mth(hashes[:n]) for n in range(1, 301)]
    for n in range(1, 301):
        assert tree.root_at(n) == roots[n], n
        for i in range(n):
            p = list(tree.inclusion_proof(i, n))
            ref.verify_inclusion(hashes[i], i, n, p, roots[n])
            if n <= 40:
                assert p == ref.path(i, hashes[:n]), (n, i)
        for m in range(1, n + 1):
            c = list(tree.consistency_proof(m, n))
            ref.verify_consistency(m, n, roots[m], roots[n], c)
            if n <= 40:
                assert c == ref.proof(m, hashes[:n]), (m, n)


@needs_lib
@SETTINGS
@given(
    st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
    st.integers(0, 2**16),
)
def test_inclusion_proof_equals_path(n_i: tuple[int, int], seed: int) -> None:
    n, i = n_i
    tree = _hashes(n, seed)
    root = ref.mth(tree)
    p = list(ledger.inclusion_proof(tree, i))
    assert p == ref.path(i, tree)
    assert _raises_proof_error(ledger.verify_inclusion, tree[i], i, n, p, root) is None


@needs_lib
def test_every_consistency_pair_for_small_trees() -> None:
    hashes = _hashes(48, seed=3)
    for n in range(1, 49):
        for m in range(1, n + 1):
            p = list(ledger.consistency_proof(hashes, m, n))
            assert p == ref.proof(m, hashes[:n]), (m, n)
            r1, r2 = ref.mth(hashes[:m]), ref.mth(hashes[:n])
            assert _raises_proof_error(ledger.verify_consistency, m, n, r1, r2, p) is None, (m, n)


@needs_lib
@SETTINGS
@given(
    st.integers(2, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))),
    st.integers(0, 2**16),
)
def test_consistency_proof_equals_proof(m_n: tuple[int, int], seed: int) -> None:
    m, n = m_n
    tree = _hashes(n, seed)
    p = list(ledger.consistency_proof(tree, m, n))
    assert p == ref.proof(m, tree)
    ref.verify_consistency(m, n, ref.mth(tree[:m]), ref.mth(tree), p)


def _inclusion_mutations(leaf: bytes, i: int, n: int, p: list[bytes], root: bytes):
    yield "root bit", (leaf, i, n, p, _flip(root, 7))
    yield "leaf bit", (_flip(leaf, 200), i, n, p, root)
    yield "index+1", (leaf, i + 1, n, p, root)
    if i > 0:
        yield "index-1", (leaf, i - 1, n, p, root)
    yield "index^1", (leaf, i ^ 1, n, p, root)
    yield "size+1", (leaf, i, n + 1, p, root)
    yield "size*2", (leaf, i, n * 2, p, root)
    if n > 1:
        yield "size-1", (leaf, i, n - 1, p, root)
    yield "size/2", (leaf, i, n // 2, p, root)
    yield "trailing", (leaf, i, n, p + [root], root)
    yield "preceding", (leaf, i, n, [leaf] + p, root)
    if p:
        yield "truncated", (leaf, i, n, p[:-1], root)
        yield "proof bit", (leaf, i, n, [_flip(p[0], 3)] + p[1:], root)
        yield "short elt", (leaf, i, n, [p[0][:31]] + p[1:], root)
        yield "reversed", (leaf, i, n, p[::-1], root)
    yield "negative index", (leaf, -1, n, p, root)


@needs_lib
@SETTINGS
@given(
    st.integers(1, 200).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
    st.integers(0, 2**16),
)
def test_inclusion_rejections_agree(n_i: tuple[int, int], seed: int) -> None:
    n, i = n_i
    tree = _hashes(n, seed)
    root = ref.mth(tree)
    p = ref.path(i, tree)
    for name, args in _inclusion_mutations(tree[i], i, n, p, root):
        try:
            ref.verify_inclusion(*args)
            want_ok = True
        except (ref.SpecError, ValueError):
            want_ok = False
        err = _raises_proof_error(ledger.verify_inclusion, *args)
        assert (err is None) == want_ok, (name, n, i, err)


@needs_lib
@SETTINGS
@given(
    st.integers(2, 120).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))),
    st.integers(0, 2**16),
)
def test_consistency_rejections_agree(m_n: tuple[int, int], seed: int) -> None:
    m, n = m_n
    tree = _hashes(n, seed)
    r1, r2 = ref.mth(tree[:m]), ref.mth(tree)
    p = ref.proof(m, tree)
    cases = [
        ("root1 bit", (m, n, _flip(r1, 1), r2, p)),
        ("root2 bit", (m, n, r1, _flip(r2, 1), p)),
        ("swapped", (m, n, r2, r1, p)),
        ("size1+1", (m + 1, n, r1, r2, p)),
        ("size1-1", (m - 1, n, r1, r2, p)),
        ("size2+1", (m, n + 1, r1, r2, p)),
        ("size2-1", (m, n - 1, r1, r2, p)),
        ("trailing", (m, n, r1, r2, p + [r1])),
        ("preceding", (m, n, r1, r2, [r1] + p)),
        ("truncated", (m, n, r1, r2, p[:-1])),
        ("empty", (m, n, r1, r2, [])),
        ("proof bit", (m, n, r1, r2, [_flip(p[0], 9)] + p[1:])),
        ("last bit", (m, n, r1, r2, p[:-1] + [_flip(p[-1], 9)])),
    ]
    for name, args in cases:
        try:
            ref.verify_consistency(*args)
            want_ok = True
        except ref.SpecError:
            want_ok = False
        err = _raises_proof_error(ledger.verify_consistency, *args)
        assert (err is None) == want_ok, (name, m, n, err)


# =====================================================================================
# 3. Identifiers, canonical JSON, commitments and leaves.
# =====================================================================================

# Six-digit GB/T 2260 codes with real provincial prefixes, in and outside the three regions.
DIVISIONS = (
    "110105",
    "110108",
    "120101",
    "120116",
    "130102",
    "130600",
    "310115",
    "440300",
    "350100",
    "510107",
    "650102",
    "110000",
)
RECORD_ID_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() == s and s.strip() != "")


@st.composite
def usccs(draw: st.DrawFn) -> str:
    head = draw(st.text(alphabet=ref.USCC_CHARSET, min_size=2, max_size=2))
    division = draw(st.sampled_from(DIVISIONS))
    body = draw(st.text(alphabet=ref.USCC_CHARSET, min_size=9, max_size=9))
    first17 = head + division + body
    return first17 + ref.uscc_check_char(first17)


record_ids = st.one_of(
    RECORD_ID_TEXT,
    st.builds(lambda n, t: f"京市监罚〔2024〕{n}号{t}", st.integers(1, 99999), RECORD_ID_TEXT),
    st.sampled_from(["津市监处字[2023]第0001号", "冀市监罚〔2024〕7号", "GZ-2024-𠀋-1", "No. 5"]),
)
text = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), min_size=1, max_size=30
).filter(lambda s: s.strip() == s)


def _payload(record_type: str, label: str, amount: int) -> dict[str, Any]:
    """JSON payloads in the shapes the library's public docs give for each record type."""
    return {
        "registration": {
            "enterprise_name": f"{label}有限公司",
            "legal_representative": "张三",
            "entity_type": "limited_liability_company",
            "established_on": "2015-03-02",
            "address": "北京市海淀区中关村大街1号",
            "business_scope": label,
            "registered_capital_fen": amount,
        },
        "administrative_license": {
            "license_number": "JY11108000000001",
            "license_name": "食品经营许可证",
            "content": label,
            "valid_from": "2023-01-01",
            "licensing_authority": "海淀区市场监管局",
        },
        "administrative_penalty": {
            "decision_number": "京海市监罚〔2024〕123号",
            "violation": label,
            "legal_basis": "《反不正当竞争法》第二十条",
            "penalty_kinds": ["warning", "fine"],
            "amount_fen": amount,
            "decision_date": "2024-05-06",
            "authority": "海淀区市场监管局",
        },
        "business_abnormality": {
            "reason": "annual_report_not_filed",
            "listing_authority": label,
            "listed_on": "2023-07-01",
        },
        "serious_violation": {
            "reason": label,
            "listing_authority": "河北省市场监督管理局",
            "listed_on": "2022-09-15",
        },
        "credit_risk_class": {
            "risk_class": "B",
            "assessed_at": "2024-01-10",
            "assessing_authority": label,
        },
        "annual_report": {
            "year": 2023,
            "submitted_on": "2024-04-30",
            "employees": 12,
            "revenue_fen": amount,
        },
        "credit_commitment": {
            "commitment_type": "credit_repair",
            "content": label,
            "committed_on": "2024-02-01",
        },
        "red_list": {"list_name": "守合同重信用企业", "reason": label, "listed_on": "2024-06-01"},
    }[record_type]


@st.composite
def records(draw: st.DrawFn, region: int | None = None) -> dict[str, Any]:
    record_type = draw(st.sampled_from(sorted(ref.RECORD_TYPES)))
    return {
        "schema": "credit-ledger/record/v1",
        "region": region if region is not None else draw(st.sampled_from(ref.REGIONS)),
        "uscc": draw(usccs()),
        "record_type": record_type,
        "record_id": draw(record_ids),
        "issued_by": draw(text),
        "issued_at": "2024-06-01",
        "data": _payload(record_type, draw(text), draw(st.integers(0, 2**53 - 1))),
    }


salts = st.binary(min_size=32, max_size=32)
hash32 = st.binary(min_size=32, max_size=32)


@needs_lib
def test_worked_example_uscc_accepted() -> None:
    assert ledger.validate_uscc("91350100M000100Y43") == "91350100M000100Y43"


@needs_lib
@SETTINGS
@given(usccs())
def test_validate_uscc_accepts_valid_codes(code: str) -> None:
    assert ledger.validate_uscc(code) == code
    assert ledger.uscc_check_char(code[:17]) == ref.uscc_check_char(code[:17])


def _uscc_mutants(code: str, pos: int, ch: str) -> list[str]:
    out = [
        code[:pos] + ch + code[pos + 1 :],
        code.lower(),
        code[:-1],
        code + "0",
        " " + code[1:],
        code[:17] + ref.USCC_CHARSET[(ref.USCC_CHARSET.index(code[17]) + 1) % 31],
    ]
    if pos < 17:
        out.append(code[:pos] + code[pos + 1] + code[pos] + code[pos + 2 :])
    return out


@needs_lib
@SETTINGS
@given(usccs(), st.integers(0, 17), st.sampled_from(list(ref.USCC_CHARSET + "IOSVZabcyio_ -")))
def test_validate_uscc_rejections_agree(code: str, pos: int, ch: str) -> None:
    for m in _uscc_mutants(code, pos, ch):
        want = ref.uscc_is_valid(m) and m[2:8].isdigit() and m[2:4] in {d[:2] for d in DIVISIONS}
        if not want and ref.uscc_is_valid(m):
            continue  # DESIGN leaves "plausible division code" open; see the report.
        try:
            ledger.validate_uscc(m)
            got = True
        except errors.RecordError:
            got = False
        assert got == want, (m, got, want)


@needs_lib
@SETTINGS
@given(st.sampled_from(ref.REGIONS), usccs(), st.sampled_from(sorted(ref.RECORD_TYPES)), record_ids)
def test_record_key_matches(region: int, uscc: str, record_type: str, record_id: str) -> None:
    want = ref.record_key(region, uscc, record_type, record_id)
    assert ledger.record_key(region, uscc, record_type, record_id) == want
    assert ledger.record_key(region, uscc, ref.RECORD_TYPES[record_type], record_id) == want


@needs_lib
@SETTINGS
@given(records(), salts)
def test_canonical_commitment_and_key_of_records(record: dict[str, Any], salt: bytes) -> None:
    parsed = ledger.parse_record(record)  # the generated records must be schema-valid
    assert ledger.canonicalize(record) == ref.canonical(record) == rfc8785.dumps(record)
    assert ledger.canonicalize(parsed) == ref.canonical(record)
    assert ledger.commitment(salt, record) == ref.commitment(salt, record)
    assert ledger.commitment(salt, parsed) == ref.commitment(salt, record)
    assert ledger.record_key_of(record) == ref.record_key_of(record)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(alphabet=st.characters(codec="utf-8")),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(codec="utf-8"), max_size=8), children, max_size=4
        )
    ),
    max_leaves=12,
)


@needs_lib
@SETTINGS
@given(
    st.dictionaries(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=8), json_values, max_size=6
    )
)
def test_canonicalize_any_json_object_is_jcs(obj: dict[str, Any]) -> None:
    assert ledger.canonicalize(obj) == rfc8785.dumps(obj)


@needs_lib
@pytest.mark.parametrize(
    "bad", [{"a": 1.5}, {"a": 1.0}, {"a": 2**53}, {"a": -(2**53)}, {"a": [0.1]}]
)
def test_canonicalize_rejects_floats_and_unsafe_integers(bad: dict[str, Any]) -> None:
    with pytest.raises(errors.LedgerError):
        ledger.canonicalize(bad)


@st.composite
def leaves(draw: st.DrawFn) -> tuple[bytes, int, int, bytes, bytes]:
    version = draw(st.one_of(st.just(1), st.integers(2, 10), st.integers(1, 2**32 - 1)))
    # The library refuses a zero prev_leaf for version > 1 (DESIGN: it is a leaf hash).
    prev = ref.ZERO32 if version == 1 else draw(hash32.filter(lambda h: h != ref.ZERO32))
    return draw(hash32), version, draw(st.sampled_from([1, 2, 3])), prev, draw(hash32)


@needs_lib
@SETTINGS
@given(leaves())
def test_leaf_hash_matches(leaf: tuple[bytes, int, int, bytes, bytes]) -> None:
    rk, version, status, prev, commit = leaf
    name = {v: k for k, v in ref.STATUSES.items()}[status]
    want = ref.leaf_hash(rk, version, status, prev, commit)
    assert ledger.leaf_hash(rk, version, status, prev, commit) == want
    assert ledger.leaf_hash(rk, version, name, prev, commit) == want
    assert ledger.leaf_bytes(rk, version, name, prev, commit) == ref.leaf_bytes(
        rk, version, status, prev, commit
    )


@needs_lib
@pytest.mark.parametrize(
    "version,status", [(0, 1), (2**32, 1), (-1, 1), (1, 0), (1, 4), (1, "deleted")]
)
def test_leaf_hash_rejects_unencodable_fields(version: int, status: int | str) -> None:
    with pytest.raises((errors.LedgerError, ValueError)):
        ledger.leaf_hash(bytes(32), version, status, bytes(32), bytes(32))


@needs_lib
@pytest.mark.parametrize("field", [1, 3, 4])
def test_leaf_hash_rejects_wrong_length_hashes(field: int) -> None:
    args: list[Any] = [bytes(32), 2, 1, bytes(32), bytes(32)]
    args[field] = bytes(31)
    with pytest.raises((errors.LedgerError, ValueError)):
        ledger.leaf_hash(*args)


@needs_lib
@SETTINGS
@given(hash32, hash32, st.integers(1, 2**32 - 1))
def test_derive_salt_is_the_recommended_hmac(secret: bytes, rk: bytes, version: int) -> None:
    assert ledger.derive_salt(secret, rk, version) == ref.recommended_salt(secret, rk, version)


# =====================================================================================
# 4. Disclosures built by the reference, verified offline by the library (§5 steps 1-2).
# =====================================================================================

BAD = {"invalid", "malformed"}
# Statuses a failed step 1/2 may carry: the library reports a region mismatch as its own
# status ("wrong_region", failed_step=1), which DESIGN §5 allows (the verdict names the step).
REJECTED = BAD | {"wrong_region"}


def _status(verdict: Any) -> str:
    s = getattr(verdict, "status", None)
    return str(getattr(s, "value", s))


@st.composite
def disclosures(draw: st.DrawFn, min_size: int = 1) -> tuple[dict[str, Any], list[bytes]]:
    region = draw(st.sampled_from(ref.REGIONS))
    n = draw(st.integers(min_size, 17))
    recs = [draw(records(region=region)) for _ in range(n)]
    # Distinct salts make distinct leaves, so moving the index must break the proof.
    salt_list = draw(st.lists(salts, min_size=n, max_size=n, unique=True))
    versions = [draw(st.one_of(st.just(1), st.integers(2, 50))) for _ in range(n)]
    statuses = [draw(st.sampled_from(["active", "active", "revoked", "expired"])) for _ in range(n)]
    prevs = [
        ref.ZERO32 if v == 1 else draw(hash32.filter(lambda h: h != ref.ZERO32)) for v in versions
    ]
    index = draw(st.integers(0, n - 1))
    d = ref.make_disclosure(
        recs,
        salt_list,
        index,
        seq=draw(st.integers(0, 2**32)),
        versions=versions,
        statuses=statuses,
        prev_leaves=prevs,
        chain_id=draw(st.sampled_from([1337, 31337, 2024])),
        contract="0x" + draw(hash32)[:20].hex(),
        tx_hash="0x" + draw(hash32).hex(),
        block_number=draw(st.integers(0, 10**7)),
    )
    ref.verify_disclosure_offline(d)  # the reference accepts what it built
    return d, prevs


@needs_lib
@settings(SETTINGS, max_examples=40, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(disclosures())
def test_library_accepts_reference_disclosures_offline(
    case: tuple[dict[str, Any], list[bytes]],
) -> None:
    d, _ = case
    verdict = ledger.verify_disclosure(copy.deepcopy(d))
    assert _status(verdict) not in BAD, repr(verdict)
    assert getattr(verdict, "failed_step", None) is None, repr(verdict)
    # Offline is never "valid": steps 3-4 did not run (§5 last sentence).
    assert getattr(verdict, "valid", False) is False, repr(verdict)
    assert _status(verdict) != "valid", repr(verdict)
    leaf = d["receipt"]["leaf"]
    want_leaf = ref.leaf_hash(
        bytes.fromhex(leaf["record_key"]),
        leaf["version"],
        leaf["status"],
        bytes.fromhex(leaf["prev_leaf"]),
        bytes.fromhex(leaf["commitment"]),
    )
    if getattr(verdict, "leaf_hash", None) is not None:
        assert verdict.leaf_hash == want_leaf.hex(), repr(verdict)
    if getattr(verdict, "record_key", None) is not None:
        assert verdict.record_key == leaf["record_key"], repr(verdict)


# A free-text (or count) field of each payload whose change keeps the record schema-valid.
TAMPER_FIELD = {
    "registration": "business_scope",
    "administrative_license": "content",
    "administrative_penalty": "violation",
    "business_abnormality": "listing_authority",
    "serious_violation": "reason",
    "credit_risk_class": "assessing_authority",
    "annual_report": "employees",
    "credit_commitment": "content",
    "red_list": "reason",
}


def _tampers(d: dict[str, Any]):
    """(name, step the reference fails, tampered disclosure)."""
    r = d["receipt"]

    def mut(f):
        x = copy.deepcopy(d)
        f(x)
        return x

    def payload(x):
        data = x["record"]["data"]
        k = TAMPER_FIELD[x["record"]["record_type"]]
        data[k] = data[k] + 1 if isinstance(data[k], int) else data[k] + "改"

    yield "record payload changed", 1, mut(payload)
    yield (
        "record_id changed",
        1,
        mut(lambda x: x["record"].update(record_id=x["record"]["record_id"] + "1")),
    )
    yield "salt changed", 1, mut(lambda x: x.update(salt=_flip(bytes.fromhex(x["salt"]), 77).hex()))
    yield (
        "commitment changed",
        1,
        mut(
            lambda x: x["receipt"]["leaf"].update(
                commitment=_flip(bytes.fromhex(r["leaf"]["commitment"]), 0).hex()
            )
        ),
    )
    other = next(g for g in ref.REGIONS if g != r["batch"]["region"])
    yield "batch region changed", 1, mut(lambda x: x["receipt"]["batch"].update(region=other))
    yield (
        "root changed",
        2,
        mut(
            lambda x: x["receipt"]["batch"].update(
                root=_flip(bytes.fromhex(r["batch"]["root"]), 255).hex()
            )
        ),
    )
    yield (
        "version changed",
        2,
        mut(
            lambda x: x["receipt"]["leaf"].update(
                version=r["leaf"]["version"] + 1,
                prev_leaf=r["leaf"]["prev_leaf"] if r["leaf"]["version"] > 1 else "11" * 32,
            )
        ),
    )
    new_status = "revoked" if r["leaf"]["status"] != "revoked" else "active"
    yield "status changed", 2, mut(lambda x: x["receipt"]["leaf"].update(status=new_status))
    if r["leaf"]["version"] > 1:
        yield (
            "prev_leaf changed",
            2,
            mut(
                lambda x: x["receipt"]["leaf"].update(
                    prev_leaf=_flip(bytes.fromhex(r["leaf"]["prev_leaf"]), 100).hex()
                )
            ),
        )
    if r["proof"]:
        for j in range(len(r["proof"])):
            yield (
                f"proof[{j}] bit flipped",
                2,
                mut(
                    lambda x, j=j: x["receipt"]["proof"].__setitem__(
                        j, _flip(bytes.fromhex(r["proof"][j]), 8 * j + 5).hex()
                    )
                ),
            )
        yield "proof truncated", 2, mut(lambda x: x["receipt"]["proof"].pop())
    yield "proof extended", 2, mut(lambda x: x["receipt"]["proof"].append("00" * 32))
    size, index = r["batch"]["size"], r["leaf"]["index"]
    if size > 1:
        yield (
            "index changed",
            2,
            mut(lambda x: x["receipt"]["leaf"].update(index=(index + 1) % size)),
        )
    # Not a required rejection: with some (index, size) pairs the audit path has the same
    # shape in both sizes, so steps 1-2 cannot tell; step 3 (batchOf size) does. The
    # library must merely agree with the reference.
    yield "size changed", None, mut(lambda x: x["receipt"]["batch"].update(size=size + 1))


@needs_lib
@settings(SETTINGS, max_examples=30, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(disclosures(min_size=1))
def test_library_rejects_tampered_disclosures_at_the_same_step(
    case: tuple[dict[str, Any], list[bytes]],
) -> None:
    d, _ = case
    for name, step, bad in _tampers(d):
        try:
            ref.verify_disclosure_offline(bad)
            ref_step = None
        except ref.SpecError as e:
            ref_step = int(str(e).split(":")[0].removeprefix("step "))
        if step is not None:
            assert ref_step == step, (name, ref_step)
        verdict = ledger.verify_disclosure(bad)
        got_step = getattr(verdict, "failed_step", None)
        assert got_step == ref_step, (name, ref_step, repr(verdict))
        if ref_step is not None:
            assert _status(verdict) in REJECTED, (name, repr(verdict))
        assert getattr(verdict, "valid", False) is False


@needs_lib
@pytest.mark.parametrize("field,value", [("index", 5), ("index", -1), ("size", 0)])
def test_out_of_range_index_or_size_is_rejected(field: str, value: int) -> None:
    # RFC 9162 §2.1.3.2 step 1 (leaf_index >= tree_size) belongs to §5 step 2; the library
    # classes these inputs as malformed before step 1 (failed_step 0). Either way: rejected.
    recs = [
        {
            "schema": "credit-ledger/record/v1",
            "region": 120000,
            "uscc": f"91120101MA0{i:05d}0" + ref.uscc_check_char(f"91120101MA0{i:05d}0"),
            "record_type": "serious_violation",
            "record_id": f"津市监〔2024〕{i}号",
            "issued_by": "天津市市场监督管理委员会",
            "issued_at": "2024-06-01",
            "data": _payload("serious_violation", "理由", 0),
        }
        for i in range(5)
    ]
    d = ref.make_disclosure(recs, [bytes([i]) * 32 for i in range(5)], 2)
    assert _status(ledger.verify_disclosure(d)) == "valid_offline"
    target = d["receipt"]["leaf"] if field == "index" else d["receipt"]["batch"]
    target[field] = value
    with pytest.raises(ref.SpecError, match="step 2"):
        ref.verify_disclosure_offline(d)
    verdict = ledger.verify_disclosure(d)
    assert _status(verdict) in REJECTED and getattr(verdict, "failed_step", None) in (0, 2), repr(
        verdict
    )
