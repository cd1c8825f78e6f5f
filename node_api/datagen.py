"""Synthetic credit data of the Beijing–Tianjin–Hebei regions: realistic, streamed, deterministic.

``generate_items(region, count, seed)`` yields the import items of one regional bureau in
file order: new records (``op`` ``create``), corrections (``correct``: a new active version
of an earlier record) and revocations (``revoke``: credit repair, delisting, a penalty set
aside on review). Memory stays constant whatever the count: every enterprise is a pure
function of ``(seed, region, index)``, and corrections and revocations pick their targets
from a bounded pool of recent records.

What makes it realistic enough for demos and load tests:

* USCCs are valid GB 32100-2015 codes: department 9 (market supervision), category 1
  (enterprise), 2 (individual business) or 3 (farmers' cooperative), the GB/T 2260 code of
  a real district or county-level city of the region, a 9-character organisation code with
  its GB 11714 check character (``MA…`` for codes issued since 2015) and the check character.
* Enterprise names follow 行政区划 + 字号 + 行业 + 组织形式; people, addresses, authorities and
  document numbers (京朝市监罚〔2024〕123号) follow the bureaus' conventions.
* The nine record types come in plausible proportions (``RECORD_TYPE_WEIGHTS``): annual
  reports and registrations dominate, listings are a few percent.
* About 5% of a region's records concern enterprises registered in the two other regions
  (branches, cross-region enforcement), drawn mostly from each region's first enterprises,
  so an auditor's federated history has something to merge.
* ``invalid_rate`` mixes in rows with the mistakes real exports contain (lower-case or
  mistyped USCCs, decimal amounts, impossible dates, missing fields), for testing rejects.

The stream for a seed is prefix-stable: the first ``k`` items are the same for every count
of ``k`` or more, so an import of a larger count resumes where a smaller one stopped.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from typing import IO, Any, Final

import ledger

__all__ = [
    "REGIONS",
    "REGION_SHARES",
    "RECORD_TYPE_WEIGHTS",
    "MIN_COUNT",
    "MAX_COUNT",
    "CSV_COLUMNS",
    "District",
    "Enterprise",
    "enterprise",
    "generate_items",
    "split_count",
    "item_to_json_line",
    "item_to_csv_row",
    "write_items",
]

MIN_COUNT: Final = 10
MAX_COUNT: Final = 10_000_000

REGIONS: Final = {110000: "北京市", 120000: "天津市", 130000: "河北省"}
# Share of the three regions in a combined count (Hebei has the most market entities).
REGION_SHARES: Final = {110000: 0.35, 120000: 0.20, 130000: 0.45}

# Share of each record type among new records.
RECORD_TYPE_WEIGHTS: Final = {
    "registration": 22,
    "administrative_license": 16,
    "administrative_penalty": 8,
    "business_abnormality": 9,
    "serious_violation": 1,
    "credit_risk_class": 10,
    "annual_report": 30,
    "credit_commitment": 3,
    "red_list": 1,
}

CSV_COLUMNS: Final = (
    "op",
    "version",
    "reason",
    "schema",
    "region",
    "uscc",
    "record_type",
    "record_id",
    "issued_by",
    "issued_at",
    "data",
)

# "Today" of the synthetic world: fixed, so that a seed always gives the same data.
_TODAY: Final = date(2025, 6, 30)
_REGION_ABBREVIATION: Final = {110000: "京", 120000: "津", 130000: "冀"}
_CROSS_REGION_POOL: Final = 50  # cross-region records concern these first enterprises
_RECENT_POOL: Final = 2000  # records that later corrections and revocations may target


@dataclass(frozen=True, slots=True)
class District:
    """A county-level division (GB/T 2260) where enterprises register."""

    code: int
    name: str
    city: str
    weight: int

    @property
    def abbreviation(self) -> str:
        """One character used in document numbers (京朝市监罚…)."""
        return self.name[0]


def _districts(city: str, weight_by_entry: Sequence[tuple[int, str, int]]) -> tuple[District, ...]:
    return tuple(District(code, name, city, weight) for code, name, weight in weight_by_entry)


# Weights: rough share of registered market entities.
_DISTRICTS: Final[dict[int, tuple[District, ...]]] = {
    110000: _districts(
        "北京市",
        (
            (110101, "东城区", 5), (110102, "西城区", 6), (110105, "朝阳区", 20),
            (110106, "丰台区", 9), (110107, "石景山区", 3), (110108, "海淀区", 16),
            (110109, "门头沟区", 2), (110111, "房山区", 5), (110112, "通州区", 7),
            (110113, "顺义区", 6), (110114, "昌平区", 8), (110115, "大兴区", 7),
            (110116, "怀柔区", 2), (110117, "平谷区", 2), (110118, "密云区", 2),
            (110119, "延庆区", 1),
        ),
    ),  # fmt: skip
    120000: _districts(
        "天津市",
        (
            (120101, "和平区", 5), (120102, "河东区", 5), (120103, "河西区", 7),
            (120104, "南开区", 7), (120105, "河北区", 4), (120106, "红桥区", 3),
            (120110, "东丽区", 6), (120111, "西青区", 7), (120112, "津南区", 5),
            (120113, "北辰区", 6), (120114, "武清区", 9), (120115, "宝坻区", 5),
            (120116, "滨海新区", 20), (120117, "宁河区", 3), (120118, "静海区", 5),
            (120119, "蓟州区", 3),
        ),
    ),  # fmt: skip
    130000: (
        _districts(
            "石家庄市",
            (
                (130102, "长安区", 6), (130104, "桥西区", 6), (130105, "新华区", 5),
                (130108, "裕华区", 6), (130109, "藁城区", 3), (130110, "鹿泉区", 3),
                (130111, "栾城区", 2),
            ),
        )
        + _districts(
            "唐山市",
            ((130202, "路南区", 3), (130203, "路北区", 5), (130207, "丰南区", 3),
             (130208, "丰润区", 3), (130209, "曹妃甸区", 2)),
        )
        + _districts("秦皇岛市", ((130302, "海港区", 4), (130304, "北戴河区", 1)))
        + _districts(
            "邯郸市", ((130402, "邯山区", 3), (130403, "丛台区", 4), (130404, "复兴区", 2))
        )
        + _districts("邢台市", ((130502, "襄都区", 3), (130503, "信都区", 3)))
        + _districts(
            "保定市",
            ((130602, "竞秀区", 4), (130606, "莲池区", 4), (130609, "徐水区", 2),
             (130682, "定州市", 3)),
        )
        + _districts("张家口市", ((130702, "桥东区", 2), (130705, "宣化区", 2)))
        + _districts("承德市", ((130802, "双桥区", 2),))
        + _districts(
            "沧州市", ((130902, "新华区", 2), (130903, "运河区", 3), (130984, "河间市", 2))
        )
        + _districts(
            "廊坊市", ((131002, "安次区", 3), (131003, "广阳区", 3), (131082, "三河市", 3))
        )
        + _districts("衡水市", ((131102, "桃城区", 3),))
    ),
}  # fmt: skip

_SURNAMES: Final = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾田董袁潘于蒋蔡"
_GIVEN: Final = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建国志文斌辉鹏宇浩凯晨欣"
_TRADE_CHARS: Final = "华信达恒瑞丰金鑫宏盛泰康和嘉兴博鼎智远安创联通汇新源德正明诚永昌隆佳润祥"
_STREETS: Final = (
    "建设路", "人民路", "解放路", "中山路", "胜利街", "和平路", "新华路", "朝阳路", "光明街",
    "友谊路", "科技园路", "工业大街", "长江道", "黄河道", "育才路", "裕华路", "学府路", "兴业街",
)  # fmt: skip

# (industry word, business scope, licences that fit)
_INDUSTRIES: Final = (
    ("科技", "技术开发、技术咨询、技术服务、技术转让；软件开发", ()),
    ("信息技术", "信息系统集成服务；数据处理和存储支持服务；软件开发", ()),
    ("贸易", "销售日用品、五金交电、电子产品、服装鞋帽；货物进出口", ()),
    ("餐饮管理", "餐饮服务；餐饮管理；食品销售", ("食品经营许可证",)),
    ("食品", "食品生产；食品销售；农副产品销售", ("食品生产许可证", "食品经营许可证")),
    ("医药", "药品零售；医疗器械经营；保健食品销售", ("药品经营许可证", "医疗器械经营许可证")),
    ("物流", "普通货物仓储服务；道路货物运输；国内货物运输代理", ("道路运输经营许可证",)),
    ("建筑工程", "建设工程施工；建筑材料销售；园林绿化工程施工", ("建筑业企业资质证书",)),
    ("建材", "建筑材料销售；水泥制品制造；金属材料销售", ()),
    ("文化传媒", "组织文化艺术交流活动；广告设计、代理；出版物零售", ("出版物经营许可证",)),
    ("汽车销售", "汽车新车销售；二手车经纪；汽车零配件零售", ()),
    ("环保科技", "环境保护专用设备制造；固体废物治理；大气污染治理", ()),
    ("化工", "化工产品销售；危险化学品经营", ("危险化学品经营许可证",)),
    ("教育咨询", "教育咨询服务；组织文化艺术交流活动；会议及展览服务", ()),
    ("钢铁", "钢、铁冶炼；钢压延加工；金属材料销售", ("排污许可证",)),
)  # fmt: skip

_VIOLATIONS: Final = (
    ("对商品作虚假或者引人误解的商业宣传", "《中华人民共和国反不正当竞争法》第八条、第二十条"),
    ("销售不符合食品安全标准的食品", "《中华人民共和国食品安全法》第一百二十四条"),
    ("经营者未按照规定明码标价", "《中华人民共和国价格法》第十三条、第四十二条"),
    ("销售侵犯注册商标专用权的商品", "《中华人民共和国商标法》第五十七条、第六十条"),
    ("使用未经检定的计量器具", "《中华人民共和国计量法》第九条、第二十六条"),
    ("发布违法广告", "《中华人民共和国广告法》第九条、第五十七条"),
    ("未按规定办理变更登记", "《中华人民共和国市场主体登记管理条例》第二十四条、第四十六条"),
    (
        "生产、销售不符合保障人体健康和人身、财产安全的国家标准的产品",
        "《中华人民共和国产品质量法》第四十九条",
    ),
    ("未取得许可从事经营活动", "《无证无照经营查处办法》第二条、第十三条"),
)  # fmt: skip

_SERIOUS_REASONS: Final = (
    "提交虚假材料或者采取其他欺诈手段隐瞒重要事实取得公司登记，被撤销登记",
    "因虚假宣传受到较重行政处罚后五年内再次受到较重行政处罚",
    "被列入经营异常名录届满三年仍未履行相关义务",
    "拒不履行生效的行政处罚决定",
    "生产、销售不符合食品安全标准的食品，情节严重",
)
_COMMITMENTS: Final = (
    ("license_notification", "本单位已知晓许可条件和要求，承诺符合条件并按要求从事经营活动"),
    ("certification_notification", "本单位承诺所提交的证明材料真实、有效，如有不实愿承担法律责任"),
    ("credit_repair", "本单位已纠正失信行为、履行相关义务，承诺今后依法诚信经营"),
    ("industry_self_discipline", "本单位承诺遵守行业自律公约，不从事不正当竞争行为"),
    ("voluntary", "本单位自愿作出信用承诺，接受社会监督"),
)  # fmt: skip
_RED_LISTS: Final = ("守合同重信用企业", "A级纳税人", "诚信经营示范单位", "海关高级认证企业")
_REVOCATION_REASONS: Final = {
    "business_abnormality": (
        "信用修复：已补报年度报告并公示，申请移出经营异常名录",
        "信用修复：经核实可通过登记的住所取得联系，移出经营异常名录",
        "信用修复：已更正公示信息，移出经营异常名录",
    ),
    "serious_violation": ("信用修复：列入满三年且已履行相关义务，移出严重违法失信名单",),
    "administrative_penalty": ("行政复议决定撤销原行政处罚决定", "行政诉讼判决撤销原行政处罚决定"),
    "administrative_license": ("被许可人申请注销行政许可", "许可有效期届满未延续，依法注销"),
    "red_list": ("发生失信行为，移出红名单",),
}
_ENTITY_TYPES: Final = (
    ("limited_liability_company", "有限公司", 70),
    ("joint_stock_company", "股份有限公司", 5),
    ("sole_proprietorship", "个人独资企业", 5),
    ("partnership", "合伙企业（有限合伙）", 4),
    ("foreign_invested_enterprise", "有限公司", 3),
    ("branch", "有限公司分公司", 8),
    ("state_owned_enterprise", "总公司", 2),
    ("collective_enterprise", "厂", 3),
)
_ORG_CODE_CHARS: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # the USCC charset
_ORG_CODE_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True, slots=True)
class Enterprise:
    """A synthetic market entity, fully determined by ``(seed, region, index)``."""

    region: int
    index: int
    uscc: str
    name: str
    entity_type: str
    district: District
    legal_representative: str
    address: str
    industry: int
    established_on: date
    registered_capital_fen: int | None


def _weighted(rng: random.Random, items: Sequence[Any], weights: Sequence[int]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


def _person(rng: random.Random) -> str:
    given = rng.choice(_GIVEN) + (rng.choice(_GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(_SURNAMES) + given


def _organization_code(rng: random.Random) -> str:
    """9 characters: 8-character body and its GB 11714 check character."""
    if rng.random() < 0.6:  # codes issued with the USCC since 2015 start with "MA"
        body = "MA" + "".join(rng.choice(_ORG_CODE_CHARS) for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(8))
    # GB 11714: letters count from A = 10 (the USCC charset skips I, O, S, V, Z, but their
    # places in the alphabet still count).
    total = sum(int(c, 36) * w for c, w in zip(body, _ORG_CODE_WEIGHTS, strict=True))
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


@cache
def _district_weights(region: int) -> tuple[tuple[District, ...], tuple[int, ...]]:
    districts = _DISTRICTS[region]
    return districts, tuple(d.weight for d in districts)


def enterprise(seed: int, region: int, index: int) -> Enterprise:
    """Enterprise ``index`` of ``region`` in the world of ``seed`` (a pure function)."""
    rng = random.Random(f"credit-ledger/enterprise/{seed}/{region}/{index}")
    districts, weights = _district_weights(region)
    district = _weighted(rng, districts, weights)
    roll = rng.random()
    hebei = region == 130000
    if roll < (0.30 if hebei else 0.18):
        category, entity_type = "2", "individual_business"
    elif roll < (0.36 if hebei else 0.19):
        category, entity_type = "3", "farmer_cooperative"
    else:
        category = "1"
        entity_type = _weighted(rng, [e[0] for e in _ENTITY_TYPES], [e[2] for e in _ENTITY_TYPES])
    first17 = f"9{category}{district.code:06d}{_organization_code(rng)}"
    uscc = first17 + ledger.uscc_check_char(first17)
    industry = rng.randrange(len(_INDUSTRIES))
    trade_name = rng.choice(_TRADE_CHARS) + rng.choice(_TRADE_CHARS)
    industry_word = _INDUSTRIES[industry][0]
    place = district.city.removesuffix("市").removesuffix("省")
    if entity_type == "individual_business":
        name = f"{district.city}{district.name}{trade_name}{industry_word}经营部"
    elif entity_type == "farmer_cooperative":
        name = f"{district.name.removesuffix('区').removesuffix('市')}{trade_name}种植专业合作社"
    else:
        suffix = next(e[1] for e in _ENTITY_TYPES if e[0] == entity_type)
        if entity_type == "branch":
            suffix = f"有限公司{district.name}分公司"
        name = f"{place}{trade_name}{industry_word}{suffix}"
    street = rng.choice(_STREETS)
    address = f"{district.city}{district.name}{street}{rng.randrange(1, 400)}号"
    if rng.random() < 0.4:
        address += f"{rng.randrange(1, 20)}号楼{rng.randrange(1, 30)}层{rng.randrange(1, 40):02d}室"
    established_on = _random_date(rng, date(1992, 1, 1), _TODAY - timedelta(days=400))
    capital: int | None = None
    if category == "1" and entity_type != "branch":
        capital = rng.choice((10, 30, 50, 100, 200, 500, 1000, 5000, 10000)) * 10_000 * 100
    return Enterprise(
        region=region,
        index=index,
        uscc=uscc,
        name=name,
        entity_type=entity_type,
        district=district,
        legal_representative=_person(rng),
        address=address,
        industry=industry,
        established_on=established_on,
        registered_capital_fen=capital,
    )


def _random_date(rng: random.Random, start: date, end: date = _TODAY) -> date:
    span = (end - start).days
    return start + timedelta(days=rng.randrange(span + 1)) if span > 0 else end


def _authority(district: District, *, city_level: bool = False) -> str:
    if city_level:
        return f"{district.city}市场监督管理局"
    return f"{district.city}{district.name}市场监督管理局"


@dataclass
class _Pooled:
    """A record that later rows may correct or revoke."""

    record: dict[str, Any]
    corrections: int = 0
    version: int = 1


@dataclass
class _Active:
    """An enterprise of the region that still gets records, and its next report years."""

    enterprise: Enterprise
    remaining: int
    next_report_year: int
    next_risk_year: int


@dataclass
class _Stream:
    """State of one region's stream: the RNG, counters and the pool of recent records."""

    seed: int
    region: int
    rng: random.Random
    next_enterprise: int = 0
    document_number: int = 0
    active: list[_Active] = field(default_factory=list)
    pool: list[_Pooled] = field(default_factory=list)

    def doc(self, kind: str, district: District, year: int) -> str:
        """An issuer's document number, unique within the stream."""
        self.document_number += 1
        prefix = _REGION_ABBREVIATION[self.region] + (
            district.abbreviation if district.code // 10000 == self.region // 10000 else ""
        )
        return f"{prefix}市监{kind}〔{year}〕{self.document_number}号"


def _record(
    region: int,
    uscc: str,
    record_type: str,
    record_id: str,
    issued_by: str,
    issued_at: date,
    data: dict[str, Any],
) -> dict[str, Any]:
    return {
        "schema": ledger.RECORD_SCHEMA,
        "region": region,
        "uscc": uscc,
        "record_type": record_type,
        "record_id": record_id,
        "issued_by": issued_by,
        "issued_at": issued_at.isoformat(),
        "data": data,
    }


def _registration(s: _Stream, e: Enterprise) -> dict[str, Any]:
    rng = s.rng
    scope = _INDUSTRIES[e.industry][1]
    data: dict[str, Any] = {
        "enterprise_name": e.name,
        "legal_representative": e.legal_representative,
        "entity_type": e.entity_type,
        "established_on": e.established_on.isoformat(),
        "address": e.address,
        "business_scope": scope,
        "registration_authority": _authority(e.district),
        "registration_status": "in_business",
    }
    if e.registered_capital_fen is not None:
        data["registered_capital_fen"] = e.registered_capital_fen
    if rng.random() < 0.5:
        data["operating_until"] = date(e.established_on.year + 30, 12, 31).isoformat()
    record_id = f"{_REGION_ABBREVIATION[s.region]}登记{e.uscc}"
    return _record(
        s.region, e.uscc, "registration", record_id, _authority(e.district),
        e.established_on, data,
    )  # fmt: skip


def _license(s: _Stream, e: Enterprise, issuer: District) -> dict[str, Any]:
    rng = s.rng
    names = _INDUSTRIES[e.industry][2] or ("食品经营许可证", "营业性演出许可证", "出版物经营许可证")
    name = rng.choice(names)
    valid_from = _random_date(rng, max(e.established_on, date(2015, 1, 1)))
    if name.startswith("食品"):
        s.document_number += 1
        number = f"JY{issuer.code}{s.document_number:08d}"
    else:
        number = s.doc("许", issuer, valid_from.year)
    data = {
        "license_number": number,
        "license_name": name,
        "content": f"{name}：{_INDUSTRIES[e.industry][1]}",
        "valid_from": valid_from.isoformat(),
        "valid_to": date(valid_from.year + 5, valid_from.month, 1).isoformat(),
        "licensing_authority": _authority(issuer),
        "decision_date": valid_from.isoformat(),
    }
    return _record(
        s.region, e.uscc, "administrative_license", number, _authority(issuer), valid_from, data
    )


def _penalty(s: _Stream, e: Enterprise, issuer: District) -> dict[str, Any]:
    rng = s.rng
    violation, basis = rng.choice(_VIOLATIONS)
    decided = _random_date(rng, max(e.established_on, date(2019, 1, 1)))
    number = s.doc("罚", issuer, decided.year)
    kinds = ["fine"]
    roll = rng.random()
    if roll < 0.15:
        kinds = ["warning"]
    elif roll < 0.45:
        kinds = ["warning", "fine"]
    elif roll < 0.65:
        kinds = ["fine", "confiscation_of_illegal_gains"]
    amount = (
        0 if kinds == ["warning"] else rng.choice((2, 5, 10, 20, 30, 50, 100, 200)) * 1000 * 100
    )
    data: dict[str, Any] = {
        "decision_number": number,
        "violation": violation,
        "legal_basis": basis,
        "penalty_kinds": kinds,
        "amount_fen": amount,
        "decision_date": decided.isoformat(),
        "authority": _authority(issuer),
    }
    if "confiscation_of_illegal_gains" in kinds:
        data["confiscated_fen"] = rng.randrange(1, 500) * 100 * 100
    return _record(
        s.region, e.uscc, "administrative_penalty", number, _authority(issuer), decided, data
    )


def _abnormality(s: _Stream, e: Enterprise, issuer: District) -> dict[str, Any]:
    rng = s.rng
    reason = _weighted(
        rng,
        ["annual_report_not_filed", "unreachable_at_registered_address",
         "information_not_disclosed_on_order", "false_information_disclosed"],
        [70, 22, 5, 3],
    )  # fmt: skip
    listed = _random_date(rng, max(e.established_on + timedelta(days=400), date(2018, 7, 1)))
    number = s.doc("异", issuer, listed.year)
    data = {
        "reason": reason,
        "listing_authority": _authority(issuer),
        "listed_on": listed.isoformat(),
        "decision_number": number,
    }
    return _record(
        s.region, e.uscc, "business_abnormality", number, _authority(issuer), listed, data
    )


def _serious(s: _Stream, e: Enterprise, issuer: District) -> dict[str, Any]:
    rng = s.rng
    listed = _random_date(rng, max(e.established_on + timedelta(days=400), date(2019, 1, 1)))
    number = s.doc("严", issuer, listed.year)
    authority = _authority(issuer, city_level=True)
    data = {
        "reason": rng.choice(_SERIOUS_REASONS),
        "listing_authority": authority,
        "listed_on": listed.isoformat(),
        "decision_number": number,
    }
    return _record(s.region, e.uscc, "serious_violation", number, authority, listed, data)


def _risk_class(s: _Stream, e: Enterprise, year: int) -> dict[str, Any]:
    rng = s.rng
    assessed = _random_date(rng, date(year, 1, 1), min(date(year, 12, 31), _TODAY))
    risk = _weighted(rng, ["A", "B", "C", "D"], [35, 45, 15, 5])
    authority = _authority(e.district, city_level=True)
    data = {
        "risk_class": risk,
        "assessed_at": assessed.isoformat(),
        "assessing_authority": authority,
    }
    record_id = f"{_REGION_ABBREVIATION[s.region]}风险分类{year}-{e.uscc}"
    return _record(s.region, e.uscc, "credit_risk_class", record_id, authority, assessed, data)


def _annual_report(s: _Stream, e: Enterprise, year: int) -> dict[str, Any]:
    rng = s.rng
    submitted = _random_date(rng, date(year + 1, 1, 1), min(date(year + 1, 6, 30), _TODAY))
    employees = max(1, int(rng.lognormvariate(2.3, 1.2)))
    revenue = min(int(rng.lognormvariate(14.5, 2.0)), 10**11) * 100  # fen; capped tail
    assets = int(revenue * rng.uniform(0.5, 3.0))
    liabilities = int(assets * rng.uniform(0.1, 0.9))
    profit = int(revenue * rng.uniform(-0.15, 0.2))
    data: dict[str, Any] = {
        "year": year,
        "submitted_on": submitted.isoformat(),
        "employees": employees,
        "total_assets_fen": assets,
        "total_liabilities_fen": liabilities,
        "owners_equity_fen": assets - liabilities,
        "revenue_fen": revenue,
        "main_business_revenue_fen": int(revenue * rng.uniform(0.7, 1.0)),
        "total_profit_fen": profit,
        "net_profit_fen": int(profit * 0.75) if profit > 0 else profit,
        "tax_paid_fen": max(0, int(revenue * rng.uniform(0.0, 0.06))),
    }
    if e.entity_type == "individual_business":  # individual businesses report less
        for key in ("total_liabilities_fen", "owners_equity_fen", "main_business_revenue_fen"):
            del data[key]
    record_id = f"{_REGION_ABBREVIATION[s.region]}年报{year}-{e.uscc}"
    return _record(
        s.region, e.uscc, "annual_report", record_id, _authority(e.district), submitted, data
    )


def _commitment(s: _Stream, e: Enterprise, issuer: District) -> dict[str, Any]:
    rng = s.rng
    kind, content = rng.choice(_COMMITMENTS)
    committed = _random_date(rng, max(e.established_on, date(2020, 1, 1)))
    number = s.doc("诺", issuer, committed.year)
    data = {
        "commitment_type": kind,
        "content": content,
        "committed_on": committed.isoformat(),
        "accepting_authority": _authority(issuer),
        "valid_to": date(committed.year + 3, committed.month, 1).isoformat(),
    }
    return _record(
        s.region, e.uscc, "credit_commitment", number, _authority(issuer), committed, data
    )


def _red_list(s: _Stream, e: Enterprise, issuer: District) -> dict[str, Any]:
    rng = s.rng
    listed = _random_date(rng, max(e.established_on + timedelta(days=700), date(2020, 1, 1)))
    list_name = rng.choice(_RED_LISTS)
    number = s.doc("红", issuer, listed.year)
    authority = _authority(issuer, city_level=True)
    data = {
        "list_name": list_name,
        "reason": f"连续三年无违法失信记录，经评定列入{list_name}",
        "listed_on": listed.isoformat(),
        "listing_authority": authority,
        "valid_to": date(listed.year + 2, 12, 31).isoformat(),
    }
    return _record(s.region, e.uscc, "red_list", number, authority, listed, data)


_TYPES: Final = tuple(RECORD_TYPE_WEIGHTS)
_TYPE_WEIGHTS: Final = tuple(RECORD_TYPE_WEIGHTS.values())
_HOME_ONLY: Final = frozenset({"registration", "annual_report", "credit_risk_class"})


def _new_enterprise(s: _Stream) -> Enterprise:
    e = enterprise(s.seed, s.region, s.next_enterprise)
    s.next_enterprise += 1
    # Records per enterprise besides its registration: most have a few, some many.
    remaining = min(40, int(s.rng.expovariate(1 / 4.0)) + 1)
    s.active.append(
        _Active(
            e,
            remaining,
            next_report_year=max(e.established_on.year, 2014),
            next_risk_year=max(e.established_on.year + 1, 2021),
        )
    )
    return e


def _pick_active(s: _Stream) -> _Active:
    """An enterprise of the region that already has its registration record."""
    position = s.rng.randrange(len(s.active))
    active = s.active[position]
    active.remaining -= 1
    if active.remaining <= 0:
        s.active[position] = s.active[-1]
        s.active.pop()
    return active


def _cross_region_enterprise(s: _Stream) -> Enterprise:
    other = s.rng.choice([r for r in REGIONS if r != s.region])
    # Mostly the first few enterprises (the large ones that operate everywhere).
    index = min(int(s.rng.expovariate(1 / 6.0)), _CROSS_REGION_POOL - 1)
    return enterprise(s.seed, other, index)


def _issuer(s: _Stream, e: Enterprise) -> District:
    """The district bureau acting: the enterprise's own, or one of this region for others."""
    if e.region == s.region:
        return e.district
    districts, weights = _district_weights(s.region)
    district: District = _weighted(s.rng, districts, weights)
    return district


_BUILDERS: Final = {
    "administrative_license": _license,
    "administrative_penalty": _penalty,
    "business_abnormality": _abnormality,
    "serious_violation": _serious,
    "credit_commitment": _commitment,
    "red_list": _red_list,
}
# Home-only types (registration, annual report, risk class) are 62% of new records; a
# cross-region share of 13% of the others makes ~5% of all records cross-region.
_CROSS_REGION_SHARE: Final = 0.05 / 0.38


def _new_record(s: _Stream) -> tuple[dict[str, Any], Enterprise]:
    rng = s.rng
    record_type = _weighted(rng, _TYPES, _TYPE_WEIGHTS)
    if record_type == "registration" or len(s.active) < 8:
        e = _new_enterprise(s)
        return _registration(s, e), e
    if record_type in _HOME_ONLY:
        active = _pick_active(s)
        e = active.enterprise
        # One annual report per year and one risk class per year and enterprise: the
        # record id names the year, so a second one would be a conflicting record.
        if record_type == "annual_report" and active.next_report_year < _TODAY.year:
            record = _annual_report(s, e, active.next_report_year)
            active.next_report_year += 1
            return record, e
        if record_type == "credit_risk_class" and active.next_risk_year <= _TODAY.year:
            record = _risk_class(s, e, active.next_risk_year)
            active.next_risk_year += 1
            return record, e
        record_type = "administrative_license"
    elif rng.random() < _CROSS_REGION_SHARE:
        # The bureau acts on an enterprise registered in another region.
        e = _cross_region_enterprise(s)
        return _BUILDERS[record_type](s, e, _issuer(s, e)), e
    else:
        e = _pick_active(s).enterprise
    return _BUILDERS[record_type](s, e, _issuer(s, e)), e


def _corrected(s: _Stream, pooled: _Pooled) -> dict[str, Any] | None:
    """A plausible correction of a pooled record (new content, same identity), or None."""
    rng = s.rng
    record = pooled.record
    data = dict(record["data"])
    record_type = record["record_type"]
    if record_type == "administrative_penalty":
        if data["amount_fen"] == 0:
            return None
        # Reduced on review, or a mistyped amount fixed.
        data["amount_fen"] = max(100_000, data["amount_fen"] // rng.choice((2, 4, 5)))
    elif record_type == "registration":
        if rng.random() < 0.5:
            data["legal_representative"] = _person(rng)
        else:
            current = data.get("registration_status")
            data["registration_status"] = rng.choice(
                [s for s in ("suspended", "deregistered", "moved_out") if s != current]
            )
    elif record_type == "administrative_license":
        valid_to = date.fromisoformat(data["valid_to"])
        data["valid_to"] = valid_to.replace(year=valid_to.year + 1).isoformat()  # extended
    elif record_type == "credit_risk_class":
        data["risk_class"] = rng.choice([c for c in "ABCD" if c != data["risk_class"]])
    else:
        return None
    if data == record["data"]:
        return None  # an identical "correction" would be a no-op at the node
    return {**record, "data": data}


def _operation(s: _Stream, kind: str) -> dict[str, Any] | None:
    """A correction or revocation of a pooled record, or None if none fits."""
    rng = s.rng
    for _ in range(4):
        if not s.pool:
            return None
        position = rng.randrange(len(s.pool))
        pooled = s.pool[position]
        record = pooled.record
        record_type = record["record_type"]
        if kind == "revoke" and record_type in _REVOCATION_REASONS:
            # A revoked record leaves the pool: nothing corrects or revokes it again.
            s.pool[position] = s.pool[-1]
            s.pool.pop()
            identity = {k: record[k] for k in ("region", "uscc", "record_type", "record_id")}
            return {
                "op": "revoke",
                "version": pooled.version + 1,
                "record": identity,
                "reason": rng.choice(_REVOCATION_REASONS[record_type]),
            }
        if kind == "correct" and pooled.corrections < 2:
            corrected = _corrected(s, pooled)
            if corrected is None:
                continue
            pooled.record = corrected
            pooled.corrections += 1
            pooled.version += 1
            return {"op": "correct", "version": pooled.version, "record": corrected}
    return None


_POOLED_TYPES: Final = frozenset(_REVOCATION_REASONS) | {"registration", "credit_risk_class"}


_INVALID_KINDS: Final = (
    "lower_case_uscc",
    "check_character",
    "decimal_amount",
    "bad_date",
    "missing_field",
    "unknown_type",
    "wrong_region",
    "blank_name",
)


def _invalid(s: _Stream, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with one of the mistakes real exports contain."""
    rng = s.rng
    kind = rng.choice(_INVALID_KINDS)
    bad = {**record, "data": dict(record["data"])}
    uscc = record["uscc"]
    if kind == "lower_case_uscc" and any(c.isalpha() for c in uscc):
        bad["uscc"] = uscc.lower()
    elif kind == "check_character":
        bad["uscc"] = uscc[:17] + next(c for c in "0123456789ABC" if c != uscc[17])
    elif kind == "decimal_amount":
        bad["data"]["amount_fen"] = 1234.5  # not in every type: then an unknown field
    elif kind == "bad_date":
        bad["issued_at"] = record["issued_at"][:5] + "13-01"
    elif kind == "missing_field":
        del bad["issued_by"]
    elif kind == "unknown_type":
        bad["record_type"] = "tax_arrears"
    elif kind == "wrong_region":
        bad["region"] = rng.choice([r for r in REGIONS if r != record["region"]])
    else:
        bad["issued_by"] = " "
    return bad


def generate_items(
    region: int,
    count: int,
    seed: int = 0,
    *,
    correction_rate: float = 0.02,
    revocation_rate: float = 0.03,
    invalid_rate: float = 0.0,
) -> Iterator[dict[str, Any]]:
    """Yield ``count`` import items of ``region``'s bureau (see the module docstring).

    An item is a record JSON object (a new record), or ``{"op": "correct", "version": n,
    "record": …}``, or ``{"op": "revoke", "version": n, "record": {region, uscc, record_type,
    record_id}, "reason": …}``; ``version`` is the version the operation creates.
    Invalid rows (``invalid_rate``) are new records that ``ledger.parse_record`` rejects or
    that belong to another region.
    """
    if region not in REGIONS:
        raise ValueError(f"region must be one of {sorted(REGIONS)}, not {region}")
    if count < 0:
        raise ValueError("count must not be negative")
    for name, rate in (
        ("correction_rate", correction_rate),
        ("revocation_rate", revocation_rate),
        ("invalid_rate", invalid_rate),
    ):
        if not 0.0 <= rate <= 0.5:
            raise ValueError(f"{name} must be between 0 and 0.5")
    s = _Stream(seed, region, random.Random(f"credit-ledger/stream/{seed}/{region}"))
    produced = 0
    while produced < count:
        roll = s.rng.random()
        item: dict[str, Any] | None = None
        if roll < revocation_rate:
            item = _operation(s, "revoke")
        elif roll < revocation_rate + correction_rate:
            item = _operation(s, "correct")
        if item is None:
            record, _ = _new_record(s)
            if invalid_rate and s.rng.random() < invalid_rate:
                item = _invalid(s, record)
            else:
                item = record
                if record["record_type"] in _POOLED_TYPES:
                    if len(s.pool) < _RECENT_POOL:
                        s.pool.append(_Pooled(record))
                    else:
                        s.pool[s.rng.randrange(_RECENT_POOL)] = _Pooled(record)
        produced += 1
        yield item


def split_count(total: int, regions: Iterable[int] = REGIONS) -> dict[int, int]:
    """Split a combined count over ``regions`` by ``REGION_SHARES`` (sums to ``total``)."""
    regions = list(regions)
    weights = [REGION_SHARES[r] for r in regions]
    scale = sum(weights)
    counts = {r: int(total * w / scale) for r, w in zip(regions, weights, strict=True)}
    counts[regions[0]] += total - sum(counts.values())
    return counts


def item_to_json_line(item: dict[str, Any]) -> str:
    """One JSON Lines line (without the newline), UTF-8 text as is."""
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def item_to_csv_row(item: dict[str, Any]) -> list[str]:
    """The CSV columns of ``CSV_COLUMNS`` for one item (``data`` as a JSON object)."""
    op = item.get("op", "create")
    record = item.get("record", item) if "op" in item else item
    data = record.get("data")
    return [
        op,
        _csv_cell(item.get("version")),
        item.get("reason", ""),
        record.get("schema", ""),
        _csv_cell(record.get("region")),
        _csv_cell(record.get("uscc")),
        _csv_cell(record.get("record_type")),
        _csv_cell(record.get("record_id")),
        _csv_cell(record.get("issued_by")),
        _csv_cell(record.get("issued_at")),
        "" if data is None else json.dumps(data, ensure_ascii=False, separators=(",", ":")),
    ]


def _csv_cell(value: object) -> str:
    return "" if value is None else str(value)


def write_items(items: Iterable[dict[str, Any]], out: IO[str], fmt: str = "jsonl") -> int:
    """Write items as JSON Lines or CSV (with a header) to a text stream; return the count."""
    written = 0
    if fmt == "jsonl":
        for item in items:
            out.write(item_to_json_line(item))
            out.write("\n")
            written += 1
        return written
    if fmt != "csv":
        raise ValueError(f"format must be 'jsonl' or 'csv', not {fmt!r}")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    buffer: list[list[str]] = []
    for item in items:
        buffer.append(item_to_csv_row(item))
        written += 1
        if len(buffer) >= 1000:
            writer.writerows(buffer)
            buffer.clear()
    writer.writerows(buffer)
    return written
