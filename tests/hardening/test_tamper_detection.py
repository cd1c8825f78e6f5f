"""Tamper detection, property-based: every single-bit change is caught.

A region's node anchors two batches (new records, corrections, a revocation) on anvil and
exports them as a signed exchange package. Hypothesis (fixed seeds, no example database)
then flips one bit in one place: a record field, the salt, a leaf field, a proof node, the
batch root or another batch field, the chain fields, the receipt's format fields, a raw byte
of a disclosure line; or, at package level, a manifest field, the manifest signature, the
trailer's signer or domain, a raw byte of the package body.

A disclosure-level change must be caught by ``ledger.verify_disclosure`` against a real
``AnchorClient`` (the verdict is not valid, superseded or revoked), and by the integrity
check of another region's node (``POST /v1/exchange/import``): the changed line must come
out tampered, unanchored or wrong_region even though the package around it is re-signed
by the region's own signer, so only per-disclosure verification can catch it. A
package-level change must make the import verification reject the package or report it
not clean. Every case is counted; the suite asserts at least ``MIN_CASES`` and zero misses.

``receipt.chain.tx_hash`` and ``block_number`` are pointers, not evidence: DESIGN §5
verification (and so ``verify_disclosure``) never reads them, ``batchOf`` is the evidence.
Changes to them (category ``chain_pointer``, and raw-byte flips that land in them) are
therefore held to the integrity check only, which compares them with the chain.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
from eth_utils.address import to_checksum_address
from fastapi.testclient import TestClient
from hardening_env import (
    BEIJING,
    TIANJIN,
    account,
    bearer,
    node_settings,
    report_figures,
)
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st

import ledger
from node_api.exchange import (
    PACKAGE_MEDIA_TYPE,
    ExchangeManifest,
    PackageRejected,
    trailer_line,
    verify_package,
)
from node_api.main import create_app
from node_api.testing import LocalConsortium, sample_record, sample_uscc, start_local_consortium

pytestmark = [pytest.mark.chain]

MIN_CASES = 10_000
TAMPER_SEED = 6_962
AUTHENTIC = {
    ledger.VerdictStatus.VALID,
    ledger.VerdictStatus.SUPERSEDED,
    ledger.VerdictStatus.REVOKED,
}
DETECTED_OUTCOMES = {"tampered", "unanchored", "wrong_region"}
PACKAGE_LINES = 800  # under MAX_REPORTED_ITEMS, so every changed line is itemised
# Cases per category (disclosure level, then package level).
DISCLOSURE_CASES = {
    "record": 2900,
    "salt": 800,
    "leaf": 2600,
    "proof": 1100,
    "root": 700,
    "batch": 700,
    "chain": 400,
    "chain_pointer": 400,
    "receipt_format": 200,
    "raw_line": 700,
}
PACKAGE_CASES = {"manifest": 450, "signature": 300, "trailer": 200, "raw_body": 150}


@dataclass
class Corpus:
    """Authentic material: disclosures, the package they came in, who may import it."""

    chain: LocalConsortium
    disclosures: list[dict[str, Any]]
    trailer: dict[str, Any]
    package: bytes
    signer_key: str
    reader: Any  # ledger.CachingAnchorReader over a real AnchorClient
    importer: TestClient  # Tianjin's node
    first_line: int = 1  # how the import report numbers package lines
    figures: dict[str, Any] = field(default_factory=lambda: {"cases": {}, "missed": {}})

    @property
    def importer_services(self) -> Any:
        return self.importer.app.state.services  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    directory = tmp_path_factory.mktemp("tamper")
    chain = start_local_consortium(directory)
    beijing = TestClient(create_app(node_settings(chain, directory / "bj", BEIJING)))
    tianjin = TestClient(create_app(node_settings(chain, directory / "tj", TIANJIN)))
    try:
        with beijing, tianjin:
            ops = bearer("operator")
            uscc = sample_uscc(BEIJING)
            kinds = ("business_abnormality", "serious_violation", "administrative_penalty",
                     "registration", "credit_risk_class")  # fmt: skip
            records = [
                sample_record(BEIJING, uscc=uscc if n % 3 == 0 else None, record_type=kind)
                for n in range(6)
                for kind in kinds
            ]
            keys = [
                r["record_key"]
                for r in beijing.post("/v1/records", json=records, headers=ops).json()["records"]
            ]
            assert beijing.post("/v1/anchor", headers=ops).status_code == 200
            for key, record in list(zip(keys, records, strict=True))[:6]:
                if record["record_type"] == "administrative_penalty":
                    fixed = {**record, "data": {**record["data"], "amount_fen": 1234}}
                    assert (
                        beijing.put(f"/v1/records/{key}", json=fixed, headers=ops).status_code
                        == 202
                    )
                else:
                    revoked = beijing.post(
                        f"/v1/records/{key}/revoke", json={"reason": "credit repair"}, headers=ops
                    )
                    assert revoked.status_code == 202
            more = [sample_record(BEIJING) for _ in range(9)]
            assert beijing.post("/v1/records", json=more, headers=ops).status_code == 202
            assert beijing.post("/v1/anchor", headers=ops).status_code == 200
            package = beijing.get(
                "/v1/exchange/export", params={"from_seq": 0, "to_seq": 1}, headers=ops
            ).content
            lines = package.decode("utf-8").splitlines()
            disclosures = [json.loads(line) for line in lines[:-1]]
            assert len(disclosures) == 30 + 6 + 9
            result = Corpus(
                chain=chain,
                disclosures=disclosures,
                trailer=json.loads(lines[-1]),
                package=package,
                signer_key=chain.signer_key(BEIJING),
                reader=ledger.CachingAnchorReader(chain.anchor()),
                importer=tianjin,
            )
            # Report line numbers: the first superseded disclosure's item names its line.
            verdicts = [ledger.verify_disclosure(d, result.reader) for d in disclosures]
            first = next(
                i for i, v in enumerate(verdicts) if v.status is ledger.VerdictStatus.SUPERSEDED
            )
            items = _import(result, package)["items"]
            superseded = min(i["line"] for i in items if i["outcome"] == "superseded")
            result.first_line = superseded - first
            yield result
    finally:
        chain.stop()


# --------------------------------------------------------------------------- bit flips


def flip_hex(value: str, bit: int) -> str:
    """Lower-case hex ``value`` with bit ``bit`` of its bytes flipped."""
    raw = bytearray(bytes.fromhex(value))
    raw[bit // 8] ^= 1 << (bit % 8)
    return raw.hex()


def flip_address(value: str, bit: int) -> str:
    """A 0x address with one bit of its 20 bytes flipped, written as the original was."""
    flipped = "0x" + flip_hex(value[2:].lower(), bit)
    return flipped if value[2:] == value[2:].lower() else to_checksum_address(flipped)


def flip_text(value: str, position: int, bit: int) -> str:
    """``value`` with one bit of one character's code point flipped (a valid code point)."""
    code = ord(value[position]) ^ (1 << bit)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        code = ord(value[position]) ^ (1 << (bit % 7))
    return value[:position] + chr(code) + value[position + 1 :]


def flip_status(value: str, bit: int) -> str | int:
    """A leaf status (a name) with one bit of its code flipped: a name if the code has one."""
    code = ledger.STATUS[value] ^ (1 << bit)
    names = {code: name for name, code in ledger.STATUS.items()}
    return names.get(code, code)


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        obj = obj[part]
    return obj


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        obj = obj[part]
    obj[path[-1]] = value


def _scalar_paths(obj: Any, prefix: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """(path, kind) of every string or integer leaf under ``obj``."""
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _scalar_paths(v, (*prefix, k))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _scalar_paths(v, (*prefix, i))]
    if isinstance(obj, bool) or obj is None:
        return []
    if isinstance(obj, int):
        return [(prefix, "int")]
    if isinstance(obj, str) and obj:
        return [(prefix, "text")]
    return []


def _paths(disclosure: dict[str, Any], category: str) -> list[tuple[tuple[Any, ...], str]]:
    receipt = ("receipt",)
    if category == "record":
        return _scalar_paths(disclosure["record"], ("record",))
    if category == "salt":
        return [(("salt",), "hash")]
    if category == "leaf":
        leaf = (*receipt, "leaf")
        return [((*leaf, "index"), "int"), ((*leaf, "record_key"), "hash"),
                ((*leaf, "version"), "int"), ((*leaf, "status"), "status"),
                ((*leaf, "prev_leaf"), "hash"), ((*leaf, "commitment"), "hash")]  # fmt: skip
    if category == "proof":
        return [
            ((*receipt, "proof", i), "hash") for i in range(len(disclosure["receipt"]["proof"]))
        ]
    if category == "root":
        return [((*receipt, "batch", "root"), "hash")]
    if category == "batch":
        return [((*receipt, "batch", name), "int") for name in ("seq", "size", "region")]
    if category == "chain":
        return [((*receipt, "chain", "chain_id"), "int"),
                ((*receipt, "chain", "anchor_contract"), "address")]  # fmt: skip
    if category == "chain_pointer":
        return [((*receipt, "chain", "tx_hash"), "prefixed_hash"),
                ((*receipt, "chain", "block_number"), "int")]  # fmt: skip
    if category == "receipt_format":
        return [((*receipt, "format"), "text"), ((*receipt, "hash_alg"), "text")]
    raise ValueError(category)


@dataclass(frozen=True)
class Case:
    """One single-bit change."""

    category: str
    target: int  # which disclosure (disclosure level), -1 for the package
    where: str
    bit: int
    line: bytes  # the changed disclosure line, or the whole changed package


def _flip(value: Any, kind: str, draw: Callable[[st.SearchStrategy[int]], int]) -> tuple[Any, int]:
    if kind == "hash":
        bit = draw(st.integers(0, 8 * len(value) // 2 - 1))
        return flip_hex(value, bit), bit
    if kind == "prefixed_hash":
        bit = draw(st.integers(0, 8 * (len(value) - 2) // 2 - 1))
        return "0x" + flip_hex(value[2:], bit), bit
    if kind == "int":
        bit = draw(st.integers(0, 40))
        return value ^ (1 << bit), bit
    if kind == "address":
        bit = draw(st.integers(0, 159))
        return flip_address(value, bit), bit
    if kind == "status":
        bit = draw(st.integers(0, 7))
        return flip_status(value, bit), bit
    position = draw(st.integers(0, len(value) - 1))
    bit = draw(st.integers(0, 20))
    return flip_text(value, position, bit), position * 32 + bit


def disclosure_cases(corpus: Corpus, category: str) -> st.SearchStrategy[Case]:
    """Single-bit changes of one disclosure in ``category``."""
    candidates = (
        [i for i, d in enumerate(corpus.disclosures) if _paths(d, category)]
        if (category != "raw_line")
        else list(range(len(corpus.disclosures)))
    )

    @st.composite
    def build(draw: Any) -> Case:
        target = draw(st.sampled_from(candidates))
        original = corpus.disclosures[target]
        if category == "raw_line":
            raw = bytearray(ledger.canonicalize(original))
            bit = draw(st.integers(0, 8 * len(raw) - 1))
            raw[bit // 8] ^= 1 << (bit % 8)
            return Case(category, target, "line", bit, bytes(raw))
        path, kind = draw(st.sampled_from(_paths(original, category)))
        changed = copy.deepcopy(original)
        value, bit = _flip(_get(original, path), kind, draw)
        _set(changed, path, value)
        return Case(category, target, ".".join(map(str, path)), bit, _canonical(changed))

    return build()


def _canonical(obj: Any) -> bytes:
    try:
        return ledger.canonicalize(obj)
    except ledger.LedgerError:  # not canonicalisable (e.g. a changed status code): plain JSON
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _body(corpus: Corpus) -> bytes:
    return b"".join(ledger.canonicalize(d) + b"\n" for d in corpus.disclosures)


def package_cases(corpus: Corpus, category: str) -> st.SearchStrategy[Case]:
    """Single-bit changes of the package around authentic disclosures."""
    body = _body(corpus)
    trailer = corpus.trailer
    manifest_paths = [(("manifest", *p), k) for p, k in _scalar_paths(trailer["manifest"], ())]
    for i, (path, _) in enumerate(manifest_paths):
        if path[-1] in ("root", "body_sha256"):
            manifest_paths[i] = (path, "hash")
    trailer_paths = [(("signer",), "address"), (("domain", "chainId"), "int"),
                     (("domain", "verifyingContract"), "address"),
                     (("domain", "name"), "text"), (("domain", "version"), "text")]  # fmt: skip

    @st.composite
    def build(draw: Any) -> Case:
        if category == "raw_body":
            raw = bytearray(body)
            bit = draw(st.integers(0, 8 * len(raw) - 1))
            raw[bit // 8] ^= 1 << (bit % 8)
            return Case(category, -1, "body", bit, bytes(raw) + _trailer_bytes(trailer))
        changed = copy.deepcopy(trailer)
        if category == "signature":
            bit = draw(st.integers(0, 65 * 8 - 1))
            changed["signature"] = "0x" + flip_hex(trailer["signature"][2:], bit)
            where = "signature"
        else:
            paths = manifest_paths if category == "manifest" else trailer_paths
            path, kind = draw(st.sampled_from(paths))
            value, bit = _flip(_get(trailer, path), kind, draw)
            _set(changed, path, value)
            where = ".".join(map(str, path))
        return Case(category, -1, where, bit, body + _trailer_bytes(changed))

    return build()


def _trailer_bytes(trailer: dict[str, Any]) -> bytes:
    return json.dumps(trailer, separators=(",", ":"), sort_keys=True).encode("utf-8") + b"\n"


def _generate(strategy: st.SearchStrategy[Case], examples: int, seed: int) -> list[Case]:
    """``examples`` cases drawn by Hypothesis from a fixed seed, duplicates dropped."""
    cases: dict[tuple[Any, ...], Case] = {}

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(strategy)
    def draw(case: Case) -> None:
        cases.setdefault((case.category, case.target, case.where, case.bit, case.line), case)

    draw()
    return list(cases.values())


# --------------------------------------------------------------------------- checks


def _verify_line(corpus: Corpus, case: Case) -> ledger.Verdict | None:
    """The verdict of a changed disclosure line; None if it is not even JSON."""
    try:
        obj = json.loads(case.line)
    except ValueError:
        return None
    return ledger.verify_disclosure(obj, corpus.reader)


def _pointer_only(corpus: Corpus, case: Case) -> bool:
    """Whether the change touched nothing but receipt.chain.tx_hash / block_number."""
    try:
        obj = json.loads(case.line)
        original = copy.deepcopy(corpus.disclosures[case.target])
        for name in ("tx_hash", "block_number"):
            obj["receipt"]["chain"][name] = original["receipt"]["chain"][name]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(obj == original)


def _resigned_package(corpus: Corpus, lines: list[bytes]) -> bytes:
    """Lines under a manifest re-signed by the region's own signer (an insider's package)."""
    body = b"".join(line.rstrip(b"\n") + b"\n" for line in lines)
    manifest = {
        **corpus.trailer["manifest"],
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "disclosures": len(lines),
    }
    domain = corpus.trailer["domain"]
    return body + trailer_line(
        ExchangeManifest.from_json(manifest),
        account(corpus.signer_key),
        domain["chainId"],
        domain["verifyingContract"],
    )


def _import(corpus: Corpus, package: bytes) -> dict[str, Any]:
    response = corpus.importer.post(
        "/v1/exchange/import",
        params={"store": "false"},
        content=package,
        headers={**bearer("operator", TIANJIN), "Content-Type": PACKAGE_MEDIA_TYPE},
    )
    assert response.status_code in (200, 422), response.text[:500]
    body: dict[str, Any] = response.json()
    return body


def test_the_authentic_material_verifies(corpus: Corpus) -> None:
    verdicts = [ledger.verify_disclosure(d, corpus.reader).status for d in corpus.disclosures]
    assert set(verdicts) <= AUTHENTIC and ledger.VerdictStatus.VALID in verdicts
    assert ledger.VerdictStatus.SUPERSEDED in verdicts and ledger.VerdictStatus.REVOKED in verdicts
    report = _import(corpus, corpus.package)
    assert report["clean"], report
    resigned = _import(
        corpus, _resigned_package(corpus, [ledger.canonicalize(d) for d in corpus.disclosures])
    )
    assert resigned["clean"], resigned
    assert verify_package(corpus.importer_services, io.BytesIO(corpus.package))["clean"]


def test_every_single_bit_change_of_a_disclosure_is_detected(corpus: Corpus) -> None:
    cases: list[Case] = []
    for index, (category, examples) in enumerate(DISCLOSURE_CASES.items()):
        cases += _generate(disclosure_cases(corpus, category), examples, TAMPER_SEED + index)
    missed_verify = []
    pointer_only = 0
    for case in cases:
        if _pointer_only(corpus, case):
            pointer_only += 1  # not evidence for verify (see the module docstring)
            continue
        verdict = _verify_line(corpus, case)
        if verdict is not None and verdict.status in AUTHENTIC:
            missed_verify.append(case)
    # The integrity check: changed lines in packages re-signed by the region's own key.
    missed_import = []
    for start in range(0, len(cases), PACKAGE_LINES):
        chunk = cases[start : start + PACKAGE_LINES]
        report = _import(corpus, _resigned_package(corpus, [c.line for c in chunk]))
        assert not report.get("items_truncated"), "items were truncated: lower PACKAGE_LINES"
        items = report.get("items", [])
        outcomes = {i["line"]: i["outcome"] for i in items if i.get("line") is not None}
        for offset, case in enumerate(chunk):
            if outcomes.get(corpus.first_line + offset) not in DETECTED_OUTCOMES:
                missed_import.append(case)
    by_category = {c: sum(1 for x in cases if x.category == c) for c in DISCLOSURE_CASES}
    corpus.figures["cases"].update(by_category)
    corpus.figures["checked_by_verify"] = len(cases) - pointer_only
    corpus.figures["checked_by_integrity_check"] = len(cases)
    corpus.figures["missed"]["verify"] = len(missed_verify)
    corpus.figures["missed"]["integrity_check"] = len(missed_import)
    assert not missed_verify, [(c.category, c.where, c.bit) for c in missed_verify[:20]]
    assert not missed_import, [(c.category, c.where, c.bit) for c in missed_import[:20]]


def test_every_single_bit_change_of_the_package_is_detected(corpus: Corpus) -> None:
    services = corpus.importer_services
    missed = []
    counts = {}
    for index, (category, examples) in enumerate(PACKAGE_CASES.items()):
        cases = _generate(package_cases(corpus, category), examples, TAMPER_SEED + 100 + index)
        counts[category] = len(cases)
        for case in cases:
            try:
                report = verify_package(services, io.BytesIO(case.line))
            except PackageRejected:
                continue
            if report["clean"]:
                missed.append(case)
    corpus.figures["cases"].update(counts)
    corpus.figures["missed"]["package"] = len(missed)
    assert not missed, [(c.category, c.where, c.bit) for c in missed[:20]]


def test_the_case_count_reaches_the_minimum(corpus: Corpus) -> None:
    total = sum(corpus.figures["cases"].values())
    corpus.figures["total_cases"] = total
    corpus.figures["total_missed"] = sum(corpus.figures["missed"].values())
    report_figures("tamper_detection", corpus.figures)
    assert len(corpus.figures["cases"]) == len(DISCLOSURE_CASES) + len(PACKAGE_CASES)
    assert total >= MIN_CASES, corpus.figures
    # Each of the two checks on its own: verify (pointer-only changes aside, see above) and
    # the integrity check (every disclosure-level case).
    assert corpus.figures["checked_by_verify"] >= MIN_CASES, corpus.figures
    assert corpus.figures["checked_by_integrity_check"] >= MIN_CASES, corpus.figures
    assert corpus.figures["total_missed"] == 0
