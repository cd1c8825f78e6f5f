"""Sample credit records, hypothesis strategies and an in-memory AnchorReader for unit tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ledger.commitment import ZERO_HASH, Leaf, LeafStatus, SaltDeriver, commitment, record_key_of
from ledger.merkle import MerkleTree
from ledger.receipts import BatchRef, ChainAnchor, Disclosure, Receipt
from ledger.records import (
    AbnormalityReason,
    CommitmentType,
    EntityType,
    PenaltyKind,
    Record,
    RegistrationStatus,
    RiskClass,
    parse_record,
)
from ledger.regions import PROVINCES
from ledger.uscc import USCC_CHARSET, make_uscc
from ledger.verify import AnchoredBatch, RecordHead

BEIJING_USCC = make_uscc(110108, "MA01ABCD1")
HEBEI_USCC = make_uscc(130102, "MA0C7X3K2")
NODE_SECRET = bytes(range(32))
CHAIN_ID = 31337
ANCHOR_ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # anvil's first deployment

SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "registration": {
        "enterprise_name": "北京星河数据科技有限公司",
        "legal_representative": "张伟",
        "entity_type": "limited_liability_company",
        "established_on": "2016-05-12",
        "address": "北京市海淀区中关村大街1号",
        "business_scope": (
            "技术开发、技术咨询；软件开发。\n（依法须经批准的项目，经相关部门批准后方可开展经营活动）"
        ),
        "registered_capital_fen": 1_000_000_000,
        "registration_authority": "北京市海淀区市场监督管理局",
        "registration_status": "in_business",
    },
    "administrative_license": {
        "license_number": "JY11108000012345",
        "license_name": "食品经营许可证",
        "content": "预包装食品销售（含冷藏冷冻食品）",
        "valid_from": "2021-03-01",
        "valid_to": "2026-02-28",
        "licensing_authority": "北京市海淀区市场监督管理局",
    },
    "administrative_penalty": {
        "decision_number": "京海市监罚〔2024〕123号",
        "violation": "未按规定明码标价",
        "legal_basis": "《中华人民共和国价格法》第十三条",
        "penalty_kinds": ["warning", "fine"],
        "amount_fen": 500_000,
        "decision_date": "2024-03-01",
        "authority": "北京市海淀区市场监督管理局",
    },
    "business_abnormality": {
        "reason": "unreachable_at_registered_address",
        "listing_authority": "河北省石家庄市长安区市场监督管理局",
        "listed_on": "2023-07-18",
        "decision_number": "石长市监异〔2023〕88号",
    },
    "serious_violation": {
        "reason": "列入经营异常名录届满3年仍未履行相关义务",
        "listing_authority": "天津市市场监督管理委员会",
        "listed_on": "2022-11-02",
    },
    "credit_risk_class": {"risk_class": "B", "assessed_at": "2024-01-15"},
    "annual_report": {
        "year": 2023,
        "submitted_on": "2024-04-20",
        "employees": 57,
        "total_assets_fen": 8_812_345_600,
        "total_liabilities_fen": 2_100_000_000,
        "owners_equity_fen": 6_712_345_600,
        "revenue_fen": 4_500_000_000,
        "net_profit_fen": -12_000_000,
        "tax_paid_fen": 230_000_000,
    },
    "credit_commitment": {
        "commitment_type": "license_notification",
        "content": "本单位承诺所提交材料真实有效，如有虚假愿承担相应法律责任。",
        "committed_on": "2024-02-29",
    },
    "red_list": {
        "list_name": "守合同重信用企业",
        "reason": "连续两年公示守合同重信用",
        "listed_on": "2023-12-01",
        "valid_to": "2025-11-30",
    },
}

RECORD_TYPE_NAMES = tuple(SAMPLE_DATA)
SEALED_TYPES = ("registration", "administrative_penalty", "business_abnormality", "red_list")
"""Record types of the ``batch`` fixture, in leaf order."""

PROPERTY = settings(
    max_examples=200,
    derandomize=True,  # reproducible in CI: the same examples on every run
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
"""Hypothesis settings for the property tests of the ledger core."""


def record_json(record_type: str = "administrative_penalty", **envelope: Any) -> dict[str, Any]:
    """A valid record JSON object of ``record_type``; keyword arguments replace envelope members."""
    obj: dict[str, Any] = {
        "schema": "credit-ledger/record/v1",
        "region": 110000,
        "uscc": BEIJING_USCC,
        "record_type": record_type,
        "record_id": f"京海市监-{record_type}-0001",
        "issued_by": "北京市海淀区市场监督管理局",
        "issued_at": "2024-03-05",
        "data": copy.deepcopy(SAMPLE_DATA[record_type]),
    }
    obj.update(envelope)
    return obj


# --- hypothesis strategies ----------------------------------------------------------------

# Text as issuers write it, plus the characters RFC 8785 escaping and sorting care about.
_SPECIAL = '"\\/\u2028\u2029\u00e9\u20ac\ufb33\U0001f600\U00020000\u3000\u00a0'
_text_alphabet = st.one_of(
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.sampled_from(_SPECIAL),
)


def _clean(text: str) -> str:
    return text.strip() or "甲"


def names(max_size: int = 40) -> st.SearchStrategy[str]:
    """Single-line text fields: printable, trimmed, non-empty."""
    return st.text(_text_alphabet, min_size=1, max_size=max_size).map(_clean)


def free_texts(max_size: int = 60) -> st.SearchStrategy[str]:
    """Multi-line text fields: also tabs and line breaks inside."""
    alphabet = st.one_of(_text_alphabet, st.sampled_from("\n\r\t"))
    return st.text(alphabet, min_size=1, max_size=max_size).map(_clean)


def iso_dates(min_year: int = 1990, max_year: int = 2030) -> st.SearchStrategy[str]:
    import datetime

    return st.dates(datetime.date(min_year, 1, 1), datetime.date(max_year, 12, 31)).map(
        lambda day: day.isoformat()
    )


_SAFE = 2**53 - 1
amounts = st.integers(0, _SAFE)
signed_amounts = st.integers(-_SAFE, _SAFE)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _data(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=optional)


_DATA_STRATEGIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "registration": _data(
        {
            "enterprise_name": names(),
            "legal_representative": names(20),
            "entity_type": st.sampled_from([e.value for e in EntityType]),
            "established_on": iso_dates(1990, 2000),
            "address": names(),
            "business_scope": free_texts(),
        },
        {
            "registered_capital_fen": amounts,
            "registered_capital_text": names(20),
            "registration_authority": names(),
            "registration_status": st.sampled_from([s.value for s in RegistrationStatus]),
            "operating_until": iso_dates(2001, 2060),
        },
    ),
    "administrative_license": _data(
        {
            "license_number": names(30),
            "license_name": names(),
            "content": free_texts(),
            "valid_from": iso_dates(1990, 2010),
            "licensing_authority": names(),
        },
        {"valid_to": iso_dates(2011, 2040), "decision_date": iso_dates()},
    ),
    "administrative_penalty": _data(
        {
            "decision_number": names(30),
            "violation": free_texts(),
            "legal_basis": free_texts(),
            "penalty_kinds": st.lists(
                st.sampled_from([k.value for k in PenaltyKind if k is not PenaltyKind.FINE]),
                min_size=1,
                unique=True,
            ).map(lambda kinds: [*kinds, "fine"]),
            "amount_fen": amounts,
            "decision_date": iso_dates(),
            "authority": names(),
        },
        {"confiscated_fen": amounts},
    ),
    "business_abnormality": _data(
        {
            "reason": st.sampled_from([r.value for r in AbnormalityReason]),
            "listing_authority": names(),
            "listed_on": iso_dates(1990, 2010),
        },
        {"decision_number": names(30)},
    ),
    "serious_violation": _data(
        {"reason": free_texts(), "listing_authority": names(), "listed_on": iso_dates()},
        {"decision_number": names(30)},
    ),
    "credit_risk_class": _data(
        {"risk_class": st.sampled_from([c.value for c in RiskClass]), "assessed_at": iso_dates()},
        {"assessing_authority": names()},
    ),
    "annual_report": _data(
        {"year": st.integers(1990, 2020), "submitted_on": iso_dates(2021, 2030)},
        {
            "employees": st.integers(0, 100_000_000),
            "total_assets_fen": amounts,
            "owners_equity_fen": signed_amounts,
            "net_profit_fen": signed_amounts,
            "tax_paid_fen": amounts,
        },
    ),
    "credit_commitment": _data(
        {
            "commitment_type": st.sampled_from([c.value for c in CommitmentType]),
            "content": free_texts(),
            "committed_on": iso_dates(1990, 2010),
        },
        {"accepting_authority": names(), "valid_to": iso_dates(2011, 2030)},
    ),
    "red_list": _data(
        {"list_name": names(), "reason": free_texts(), "listed_on": iso_dates(1990, 2010)},
        {"listing_authority": names(), "valid_to": iso_dates(2011, 2030)},
    ),
}

_body_chars = st.sampled_from(USCC_CHARSET)


@st.composite
def usccs(draw: st.DrawFn) -> str:
    """Valid USCCs with random departments, divisions and bodies."""
    prefix = draw(st.sampled_from(sorted(PROVINCES)))
    division = prefix * 10000 + draw(st.integers(0, 9999))
    body = "".join(draw(st.lists(_body_chars, min_size=9, max_size=9)))
    department = draw(st.sampled_from("123456789ANY"))
    category = draw(st.sampled_from("1239"))
    return make_uscc(division, body, department=department, category=category)


@st.composite
def record_jsons(draw: st.DrawFn) -> dict[str, Any]:
    """Valid record JSON objects of every record type."""
    record_type = draw(st.sampled_from(RECORD_TYPE_NAMES))
    prefix = draw(st.sampled_from(sorted(PROVINCES)))
    return {
        "schema": "credit-ledger/record/v1",
        "region": prefix * 10000 + draw(st.integers(0, 9999)),
        "uscc": draw(usccs()),
        "record_type": record_type,
        "record_id": draw(names(30)),
        "issued_by": draw(names()),
        "issued_at": draw(iso_dates()),
        "data": draw(_DATA_STRATEGIES[record_type]),
    }


_json_keys = st.text(
    st.one_of(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.sampled_from("\u0080\u00f6\u20ac\ufb33\uffff\ue000\U0001f600\U0010fffd\r\n\x00\x1f"),
    ),
    max_size=6,
)
_json_text = st.text(
    st.characters(blacklist_categories=("Cs",)),  # everything but lone surrogates
    max_size=20,
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.sampled_from([0, -1, 2**53 - 1, -(2**53) + 1, 2**31, -(2**31)]),
    _json_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(_json_keys, children, max_size=5)
    ),
    max_leaves=30,
)


# --- an anchored batch and an in-memory chain ---------------------------------------------


@dataclass
class FakeAnchor:
    """An AnchorReader over dictionaries, counting its reads."""

    chain_id: int = CHAIN_ID
    anchor_address: str = ANCHOR_ADDRESS
    batches: dict[tuple[int, int], AnchoredBatch] = field(default_factory=dict)
    heads: dict[tuple[int, bytes], RecordHead] = field(default_factory=dict)
    batch_reads: int = 0
    head_reads: int = 0

    def batch_of(self, region: int, seq: int) -> AnchoredBatch:
        self.batch_reads += 1
        return self.batches.get(
            (region, seq), AnchoredBatch(ZERO_HASH, 0, 0, 0, "0x" + "00" * 20, ZERO_HASH)
        )

    def head_of(self, region: int, record_key: bytes) -> RecordHead:
        self.head_reads += 1
        return self.heads.get((region, record_key), RecordHead(ZERO_HASH, 0, 0, 0))

    def anchor(self, region: int, seq: int, tree: MerkleTree) -> None:
        self.batches[(region, seq)] = AnchoredBatch(
            tree.root, tree.size, 1_700_000_000, 12, "0x" + "11" * 20, b"\x22" * 32
        )

    def move_head(self, region: int, leaf: Leaf, seq: int) -> None:
        self.heads[(region, leaf.record_key)] = RecordHead(
            leaf.leaf_hash, seq, leaf.version, int(leaf.status)
        )


@dataclass
class SealedBatch:
    """Records sealed into one batch, with their leaves, salts and tree."""

    region: int
    seq: int
    records: list[Record]
    salts: list[bytes]
    leaves: list[Leaf]
    tree: MerkleTree

    def receipt(self, index: int) -> Receipt:
        return Receipt(
            chain=ChainAnchor(CHAIN_ID, ANCHOR_ADDRESS, b"\xab" * 32, 12),
            batch=BatchRef(self.region, self.seq, self.tree.root, self.tree.size),
            leaf_index=index,
            leaf=self.leaves[index],
            proof=tuple(self.tree.inclusion_proof(index)),
        )

    def disclosure(self, index: int) -> Disclosure:
        return Disclosure(self.receipt(index), self.records[index], self.salts[index])


def seal_batch(
    record_objects: list[dict[str, Any]],
    *,
    region: int = 110000,
    seq: int = 0,
    version: int = 1,
    status: LeafStatus = LeafStatus.ACTIVE,
    prev_leaves: list[bytes] | None = None,
) -> SealedBatch:
    """Seal version ``version`` of each record into one batch, as a node would."""
    derive = SaltDeriver(NODE_SECRET)
    records = [parse_record(obj) for obj in record_objects]
    salts, leaves = [], []
    for position, record in enumerate(records):
        key = record_key_of(record)
        salt = derive(key, version)
        prev = ZERO_HASH if prev_leaves is None else prev_leaves[position]
        salts.append(salt)
        leaves.append(Leaf(key, version, status, prev, commitment(salt, record)))
    tree = MerkleTree([leaf.leaf_hash for leaf in leaves])
    return SealedBatch(region, seq, records, salts, leaves, tree)
