"""Benchmark of the ledger core on one core: commit path, Merkle trees, proofs, disclosures.

Usage: ``python scripts/bench_core.py [--records N] [--repeat R]`` (default 1,000,000
records, 3 repetitions; ``--records 20000`` for a quick run). Every figure is the median
over the repetitions, printed next to the bare hashlib SHA-256 rate measured in the same
run on the same inputs, so results from different machines can be compared. Not a test.
"""

from __future__ import annotations

import argparse
import copy
import gc
import hashlib
import itertools
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger import _native  # noqa: E402
from ledger.canonical import canonicalize  # noqa: E402
from ledger.commitment import (  # noqa: E402
    COMMIT_DOMAIN,
    ZERO_HASH,
    CommittedVersion,
    Leaf,
    LeafStatus,
    SaltDeriver,
    commit_records,
    leaf_hash,
    record_key_of,
)
from ledger.merkle import MerkleTree, merkle_root, verify_inclusion  # noqa: E402
from ledger.receipts import BatchRef, ChainAnchor, Disclosure, Receipt  # noqa: E402
from ledger.records import Record, parse_record  # noqa: E402
from ledger.regions import BEIJING, HEBEI, TIANJIN  # noqa: E402
from ledger.uscc import USCC_CHARSET, make_uscc  # noqa: E402
from ledger.verify import (  # noqa: E402
    AnchoredBatch,
    RecordHead,
    VerdictStatus,
    verify_disclosure,
    verify_disclosure_json,
)

CHUNK = 100_000  # records held in memory at once
NODE_SECRET = b"bench-node-secret-32-bytes-long!"
_sha256 = hashlib.sha256

# --- realistic records --------------------------------------------------------------------

_DISTRICTS = {BEIJING: [110101, 110105, 110108], TIANJIN: [120101, 120116], HEBEI: [130102, 130602]}
_REGION_NAMES = {BEIJING: "北京市", TIANJIN: "天津市", HEBEI: "河北省"}
_TRADE_NAMES = ["星河", "华信", "瑞丰", "金桥", "恒通", "宏达", "永安", "天成", "中联", "博远"]
_INDUSTRIES = ["数据科技", "商贸", "餐饮管理", "建筑工程", "物流", "医药", "文化传媒", "电子"]
_SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"]
_GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰"]
_VIOLATIONS = [
    ("未按规定明码标价", "《中华人民共和国价格法》第十三条"),
    ("销售过期食品", "《中华人民共和国食品安全法》第一百二十四条"),
    ("发布虚假广告", "《中华人民共和国广告法》第五十五条"),
    ("未按规定办理变更登记", "《市场主体登记管理条例》第四十六条"),
]
_TYPE_WEIGHTS = {
    "administrative_penalty": 25,
    "administrative_license": 20,
    "annual_report": 20,
    "registration": 10,
    "business_abnormality": 10,
    "serious_violation": 3,
    "credit_risk_class": 6,
    "credit_commitment": 4,
    "red_list": 2,
}


def _day(rng: random.Random, first_year: int = 2015, last_year: int = 2024) -> str:
    return f"{rng.randint(first_year, last_year)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _data(record_type: str, rng: random.Random, bureau: str, serial: int) -> dict[str, Any]:
    if record_type == "administrative_penalty":
        violation, basis = rng.choice(_VIOLATIONS)
        fine = rng.randint(1, 2000) * 10_000
        return {
            "decision_number": f"市监罚〔{rng.randint(2018, 2024)}〕{serial}号",
            "violation": violation,
            "legal_basis": basis,
            "penalty_kinds": ["warning", "fine"] if rng.random() < 0.5 else ["fine"],
            "amount_fen": fine,
            "decision_date": _day(rng),
            "authority": bureau,
        }
    if record_type == "administrative_license":
        return {
            "license_number": f"JY1{rng.randint(10**13, 10**14 - 1)}",
            "license_name": "食品经营许可证",
            "content": "预包装食品销售（含冷藏冷冻食品）；热食类食品制售",
            "valid_from": _day(rng, 2018, 2020),
            "valid_to": _day(rng, 2023, 2026),
            "licensing_authority": bureau,
        }
    if record_type == "annual_report":
        year = rng.randint(2018, 2023)
        assets = rng.randint(10**6, 10**11)
        return {
            "year": year,
            "submitted_on": f"{year + 1}-{rng.randint(1, 6):02d}-{rng.randint(1, 28):02d}",
            "employees": rng.randint(1, 5000),
            "total_assets_fen": assets,
            "total_liabilities_fen": rng.randint(0, assets),
            "revenue_fen": rng.randint(0, 10**11),
            "net_profit_fen": rng.randint(-(10**9), 10**10),
            "tax_paid_fen": rng.randint(0, 10**9),
        }
    if record_type == "registration":
        return {
            "enterprise_name": f"{rng.choice(_TRADE_NAMES)}{rng.choice(_INDUSTRIES)}有限公司",
            "legal_representative": rng.choice(_SURNAMES) + rng.choice(_GIVEN),
            "entity_type": "limited_liability_company",
            "established_on": _day(rng, 1995, 2020),
            "address": f"中关村大街{rng.randint(1, 999)}号",
            "business_scope": "技术开发、技术咨询、技术服务；销售电子产品、计算机软硬件。",
            "registered_capital_fen": rng.randint(1, 10**4) * 1_000_000,
            "registration_status": "in_business",
        }
    if record_type == "business_abnormality":
        return {
            "reason": rng.choice(["annual_report_not_filed", "unreachable_at_registered_address"]),
            "listing_authority": bureau,
            "listed_on": _day(rng),
        }
    if record_type == "serious_violation":
        return {
            "reason": "被列入经营异常名录届满3年仍未履行相关义务",
            "listing_authority": bureau,
            "listed_on": _day(rng),
        }
    if record_type == "credit_risk_class":
        return {"risk_class": rng.choice("ABCD"), "assessed_at": _day(rng)}
    if record_type == "credit_commitment":
        return {
            "commitment_type": "license_notification",
            "content": "本单位承诺所提交材料真实有效，如有虚假愿承担相应法律责任。",
            "committed_on": _day(rng),
        }
    return {
        "list_name": "守合同重信用企业",
        "reason": "连续两年公示守合同重信用",
        "listed_on": _day(rng),
    }


def generate_records(
    count: int, seed: int = 20240305, only_region: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield ``count`` valid record JSON objects, deterministically, ~40 per entity.

    Records come from the three pilot regions, or only from ``only_region`` if given.
    """
    rng = random.Random(seed)
    regions = [only_region] if only_region is not None else list(_DISTRICTS)
    entities = []
    for _ in range(max(1, count // 40)):
        region = rng.choice(regions)
        body = "".join(rng.choice(USCC_CHARSET) for _ in range(9))
        entities.append((region, make_uscc(rng.choice(_DISTRICTS[region]), body)))
    types, weights = list(_TYPE_WEIGHTS), list(_TYPE_WEIGHTS.values())
    for serial in range(count):
        region, uscc = entities[rng.randrange(len(entities))]
        record_type = rng.choices(types, weights)[0]
        bureau = _REGION_NAMES[region] + "市场监督管理局"
        yield {
            "schema": "credit-ledger/record/v1",
            "region": region,
            "uscc": uscc,
            "record_type": record_type,
            "record_id": f"{record_type[:4].upper()}-{region}-{serial:09d}",
            "issued_by": bureau,
            "issued_at": _day(rng),
            "data": _data(record_type, rng, bureau, serial),
        }


# --- timing helpers -----------------------------------------------------------------------


def _timed(operation: Callable[[], object]) -> float:
    gc.collect()
    gc.disable()  # collector pauses are noise here, not part of the work
    try:
        start = time.perf_counter()
        operation()
        return time.perf_counter() - start
    finally:
        gc.enable()


def _median_rate(items: int, operation: Callable[[], object], repeat: int) -> float:
    return items / statistics.median(_timed(operation) for _ in range(repeat))


def _cpu_timed(operation: Callable[[], object]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.thread_time()
        operation()
        return time.thread_time() - start
    finally:
        gc.enable()


def _median_cpu_rate(items: int, operation: Callable[[], object], repeat: int) -> float:
    """Items per CPU second of this thread: on a shared machine, the per-core figure."""
    return items / statistics.median(_cpu_timed(operation) for _ in range(repeat))


class Report:
    """Rows of (what, rate, unit, hashlib rate on the same inputs)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str, float | None]] = []

    def add(self, what: str, rate: float, unit: str, sha_rate: float | None = None) -> None:
        self.rows.append((what, rate, unit, sha_rate))
        ratio = f"{rate / sha_rate:6.3f}" if sha_rate else "     -"
        sha = f"{sha_rate:>14,.0f}" if sha_rate else f"{'-':>14}"
        print(f"  {what:<44} {rate:>14,.0f} {unit:<13} {sha} {ratio}", flush=True)


# --- the stages ---------------------------------------------------------------------------


def _commit_path(objects: Sequence[dict[str, Any]], derive: SaltDeriver) -> list[CommittedVersion]:
    """validate → canonicalise → commit → leaf hash, as a node's intake does.

    parse_record validates each record and writes its canonical bytes; commit_records then
    derives salt, commitment and leaf hash of each version 1.
    """
    return commit_records([parse_record(obj) for obj in objects], derive)


def _commit_path_per_record(objects: Sequence[dict[str, Any]], derive: SaltDeriver) -> list[bytes]:
    """The same, one record at a time through the per-value functions of DESIGN §7."""
    leaf_hashes = []
    active = LeafStatus.ACTIVE
    for obj in objects:
        record = parse_record(obj)
        key = record_key_of(record)
        salt = derive(key, 1)
        commitment = _sha256(COMMIT_DOMAIN + salt + record.canonical_bytes()).digest()
        leaf_hashes.append(leaf_hash(key, 1, active, ZERO_HASH, commitment))
    return leaf_hashes


def _chunk_stages(
    chunk: list[dict[str, Any]], derive: SaltDeriver, repeat: int
) -> dict[str, Callable[[], object]]:
    """The commit path and each of its stages over one chunk, inputs precomputed."""
    records: list[Record] = [parse_record(obj) for obj in chunk]
    canonical = [record.canonical_bytes() for record in records]
    keys = [record_key_of(record) for record in records]
    salts = [derive(key, 1) for key in keys]
    prefixed = [COMMIT_DOMAIN + salt + body for salt, body in zip(salts, canonical, strict=True)]
    commitments = [_sha256(data).digest() for data in prefixed]
    active = LeafStatus.ACTIVE
    # parse_record writes the canonical bytes while it validates, so canonical_bytes() of a
    # parsed record only reads them back; copies (as built in code) have to write them.
    unwritten = iter([[copy.copy(record) for record in records] for _ in range(repeat)])
    return {
        "commit path (parse_record + commit_records)": lambda: _commit_path(chunk, derive),
        "commit path, per record (DESIGN §7 functions)": lambda: _commit_path_per_record(
            chunk, derive
        ),
        "  validate + canonicalise (parse_record)": lambda: [parse_record(obj) for obj in chunk],
        "  canonicalise a Record built in code": lambda: [
            record.canonical_bytes() for record in next(unwritten)
        ],
        "  canonicalise (canonicalize(dict))": lambda: [canonicalize(obj) for obj in chunk],
        "  salt, commitment, leaf hash (commit_records)": lambda: commit_records(records, derive),
        "  record key (record_key_of)": lambda: [record_key_of(record) for record in records],
        "  salt (SaltDeriver)": lambda: [derive(key, 1) for key in keys],
        "  commitment hash": lambda: [
            _sha256(COMMIT_DOMAIN + s + b).digest() for s, b in zip(salts, canonical, strict=True)
        ],
        "  leaf hash (leaf_hash)": lambda: [
            leaf_hash(k, 1, active, ZERO_HASH, c) for k, c in zip(keys, commitments, strict=True)
        ],
        _BARE: lambda: [_sha256(data).digest() for data in prefixed],
    }


_BARE = "bare sha256 of each commitment input"


def bench_commit_path(count: int, repeat: int, report: Report) -> list[bytes]:
    """Records/s for the commit path and for each stage, in chunks of CHUNK records."""
    derive = SaltDeriver(NODE_SECRET)
    chunk_times: dict[str, list[float]] = {}
    leaf_hashes: list[bytes] = []
    generated = generate_records(count)
    done = 0
    while done < count:
        chunk = list(itertools.islice(generated, min(CHUNK, count - done)))
        for name, operation in _chunk_stages(chunk, derive, repeat).items():
            times = [_timed(operation) for _ in range(repeat)]
            chunk_times.setdefault(name, []).append(statistics.median(times))
        leaf_hashes.extend(version.leaf_hash for version in _commit_path(chunk, derive))
        done += len(chunk)
    sha_rate = count / sum(chunk_times.pop(_BARE))
    for name, times in chunk_times.items():
        report.add(name, count / sum(times), "records/s", sha_rate)
    return leaf_hashes


def _bench_tree(leaves: list[bytes], repeat: int, report: Report) -> None:
    size = len(leaves)
    # The same number of 65-byte inputs as the tree hashes, made in advance.
    nodes = [b"\x01" + leaves[i] + leaves[i ^ 1] for i in range(size - 1)]
    sha_rate = _median_rate(size, lambda: [_sha256(node).digest() for node in nodes], repeat)
    rate = _median_rate(size, lambda: merkle_root(leaves), repeat)
    report.add(f"merkle_root, {size:,} leaves", rate, "leaves/s", sha_rate)
    rate = _median_rate(size, lambda: MerkleTree(leaves), repeat)
    report.add(f"MerkleTree (all levels kept), {size:,} leaves", rate, "leaves/s", sha_rate)


def bench_merkle(leaf_hashes: list[bytes], repeat: int, report: Report) -> None:
    """Tree build leaves/s, proof generation and verification, against bare hashlib."""
    for size in (65_536, 1_048_576):
        _bench_tree(_leaves(leaf_hashes, size), repeat, report)

    size = 65_536
    leaves = _leaves(leaf_hashes, size)
    tree = MerkleTree(leaves)
    root = tree.root
    rate = _median_rate(size, lambda: [tree.inclusion_proof(i) for i in range(size)], repeat)
    report.add(f"inclusion proofs generated, {size:,}-leaf tree", rate, "proofs/s")
    proofs = [tree.inclusion_proof(i) for i in range(size)]
    depth = len(proofs[0])
    inputs = [b"\x01" + leaves[i] + proofs[i][0] for i in range(size)]
    sha_rate = _median_rate(
        size, lambda: [[_sha256(x).digest() for _ in range(depth)] for x in inputs], repeat
    )
    rate = _median_rate(
        size,
        lambda: [verify_inclusion(leaves[i], i, size, proofs[i], root) for i in range(size)],
        repeat,
    )
    report.add(f"inclusion proofs verified, {size:,}-leaf tree", rate, "proofs/s", sha_rate)


def _leaves(leaf_hashes: list[bytes], size: int) -> list[bytes]:
    if len(leaf_hashes) >= size:
        return leaf_hashes[:size]
    return [*leaf_hashes, *(os.urandom(32) for _ in range(size - len(leaf_hashes)))]


class _CachedReader:
    """An AnchorReader over batch roots and record heads read once, up front."""

    def __init__(self, chain: ChainAnchor, batch: BatchRef, record_keys: list[bytes]) -> None:
        self.chain_id = chain.chain_id
        self.anchor_address = chain.anchor_contract
        anchored = AnchoredBatch(batch.root, batch.size, 0, 0, "0x" + "00" * 20, ZERO_HASH)
        self._batches = {(batch.region, batch.seq): anchored}
        never_superseded = RecordHead(ZERO_HASH, 0, 0, 0)
        self._heads = {(batch.region, key): never_superseded for key in record_keys}

    def batch_of(self, region: int, seq: int) -> AnchoredBatch:
        """The cached batch."""
        return self._batches[(region, seq)]

    def head_of(self, region: int, record_key: bytes) -> RecordHead:
        """The prefetched head."""
        return self._heads[(region, record_key)]


def bench_disclosures(count: int, repeat: int, report: Report) -> None:
    """Disclosure verification per second: offline (steps 1-2) from models, JSON objects and
    JSON text, and steps 1-4 against cached roots and heads, per wall and per CPU second."""
    size = min(count, 65_536)
    derive = SaltDeriver(NODE_SECRET)
    records = [parse_record(obj) for obj in generate_records(size, seed=7, only_region=BEIJING)]
    leaves, salts = [], []
    for record in records:
        key = record_key_of(record)
        salt = derive(key, 1)
        commitment = _sha256(COMMIT_DOMAIN + salt + record.canonical_bytes()).digest()
        leaves.append(Leaf(key, 1, LeafStatus.ACTIVE, ZERO_HASH, commitment))
        salts.append(salt)
    tree = MerkleTree([leaf.leaf_hash for leaf in leaves])
    chain = ChainAnchor(31337, "0x5fbdb2315678afecb367f032d93f642f64180aa3", b"\xab" * 32, 12)
    batch = BatchRef(BEIJING, 0, tree.root, size)
    disclosures = [
        Disclosure(
            Receipt(chain, batch, i, leaves[i], tuple(tree.inclusion_proof(i))),
            records[i],
            salts[i],
        )
        for i in range(size)
    ]
    as_json = [disclosure.to_json() for disclosure in disclosures]
    as_text = [json.dumps(obj).encode() for obj in as_json]  # as a JSON Lines file holds them
    reader = _CachedReader(chain, batch, [leaf.record_key for leaf in leaves])
    statuses = {verify_disclosure(d).status for d in as_json[:1000]}
    statuses |= {verify_disclosure_json(text).status for text in as_text[:1000]}
    assert statuses == {VerdictStatus.VALID_OFFLINE}, statuses
    assert {verify_disclosure_json(t, reader).status for t in as_text} == {VerdictStatus.VALID}
    # What the hashing alone costs: record key, commitment, leaf hash and the audit path.
    canonical = [record.canonical_bytes() for record in records]
    hashes = 3 + len(disclosures[0].receipt.proof)
    sha_rate = _median_rate(
        size,
        lambda: [[_sha256(body).digest() for _ in range(hashes)] for body in canonical],
        repeat,
    )
    rate = _median_rate(size, lambda: [verify_disclosure(d) for d in disclosures], repeat)
    report.add(f"disclosures verified offline (models), {size:,}", rate, "disclosures/s", sha_rate)
    rate = _median_rate(size, lambda: [verify_disclosure(d) for d in as_json], repeat)
    report.add(f"disclosures verified offline (JSON), {size:,}", rate, "disclosures/s", sha_rate)
    rate = _median_rate(size, lambda: [verify_disclosure_json(t) for t in as_text], repeat)
    report.add(f"disclosures verified offline (JSON text), {size:,}", rate, "disclosures/s")
    cases: list[tuple[str, Callable[[], object]]] = [
        ("JSON", lambda: [verify_disclosure(d, reader) for d in as_json]),
        ("json.loads + JSON", lambda: [verify_disclosure(json.loads(t), reader) for t in as_text]),
        ("JSON text", lambda: [verify_disclosure_json(t, reader) for t in as_text]),
    ]
    for name, operation in cases:
        rate = _median_rate(size, operation, repeat)
        report.add(f"steps 1-4, roots cached ({name})", rate, "disclosures/s")
        rate = _median_cpu_rate(size, operation, repeat)
        report.add(f"  per CPU-second of the thread ({name})", rate, "disclosures/s")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records", type=int, default=1_000_000, help="records in the commit path run"
    )
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per figure (median)")
    parser.add_argument("--skip-merkle-1m", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    print(
        f"credit-ledger core benchmark: {args.records:,} records, median of {args.repeat}, "
        f"Python {sys.version.split()[0]}, one core; load average "
        + " ".join(f"{load:.2f}" for load in os.getloadavg())
    )
    print(f"ledger core: {_native.describe()} (CREDIT_LEDGER_PURE=1 for pure Python)")
    print(f"  {'':<44} {'rate':>14} {'unit':<13} {'sha256 rate':>14} {'ratio':>6}")
    report = Report()
    leaf_hashes = bench_commit_path(args.records, args.repeat, report)
    bench_merkle(leaf_hashes, args.repeat, report)
    bench_disclosures(args.records, args.repeat, report)

    rates = {what.strip(): rate for what, rate, _, _ in report.rows}
    commit_rate = rates["commit path (parse_record + commit_records)"]
    tree_rate = rates["merkle_root, 1,048,576 leaves"]
    disclosure_rate = next(
        rate
        for what, rate in rates.items()
        if what.startswith("disclosures verified offline (JSON)")
    )
    cached_cpu_rate = rates["per CPU-second of the thread (JSON)"]
    text_cpu_rate = rates["per CPU-second of the thread (JSON text)"]
    print(f"load average at the end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print()
    print(
        f"target commit path >= 100,000 records/s: {commit_rate:,.0f} "
        f"({'met' if commit_rate >= 100_000 else 'MISSED'})"
    )
    print(
        f"target tree build >= 1,000,000 leaves/s: {tree_rate:,.0f} "
        f"({'met' if tree_rate >= 1_000_000 else 'MISSED'})"
    )
    print(
        f"target disclosures from JSON >= 50,000/s: {disclosure_rate:,.0f} "
        f"({'met' if disclosure_rate >= 50_000 else 'MISSED'})"
    )
    print(
        f"target steps 1-4, roots cached, >= 50,000/s per core: {cached_cpu_rate:,.0f} "
        f"per CPU-second ({'met' if cached_cpu_rate >= 50_000 else 'MISSED'}); "
        f"from JSON text {text_cpu_rate:,.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
