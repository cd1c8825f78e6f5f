"""Credit records: the v1 envelope and one typed, strictly validated payload per record type.

A record is the unit regions share (DESIGN §3). ``parse_record`` turns its JSON object into a
frozen ``Record``; ``Record.to_json()`` gives the same object back, member for member, so
``canonicalize(obj) == canonicalize(parse_record(obj))``. Every rejection raises
``RecordError(field, reason)`` with a dotted field path such as ``data.amount_fen``.

Rules common to all fields: no floats anywhere; integers within ±(2^53 − 1) (RFC 8785);
strings non-empty, bounded, without leading or trailing whitespace, lone surrogates or
control characters (line breaks and tabs allowed in free text only); dates ``YYYY-MM-DD``
between 1900 and 2199; unknown members rejected; optional members are omitted, never null.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import IntEnum, StrEnum
from operator import attrgetter
from types import MappingProxyType, ModuleType
from typing import Any, ClassVar, Final, TypeVar

from ledger import _native
from ledger._unchecked import slot_of, unchecked_constructor
from ledger.canonical import MAX_SAFE_INTEGER, JsonObject, JsonValue, encode_json_string
from ledger.errors import RecordError
from ledger.regions import PROVINCES, is_division_code
from ledger.uscc import USCC_CHARSET, is_valid_uscc, validate_uscc

__all__ = [
    "RECORD_SCHEMA",
    "RECORD_TYPES",
    "RecordType",
    "Record",
    "Payload",
    "PAYLOAD_TYPES",
    "parse_record",
    "parse_record_fast",
    "record_type_of",
    "Registration",
    "AdministrativeLicense",
    "AdministrativePenalty",
    "BusinessAbnormality",
    "SeriousViolation",
    "CreditRiskClass",
    "AnnualReport",
    "CreditCommitment",
    "RedList",
    "EntityType",
    "RegistrationStatus",
    "PenaltyKind",
    "AbnormalityReason",
    "RiskClass",
    "CommitmentType",
]

RECORD_SCHEMA: Final = "credit-ledger/record/v1"


class RecordType(IntEnum):
    """The record types of DESIGN §3 with their stable codes (``u8`` in the record key)."""

    REGISTRATION = 1
    ADMINISTRATIVE_LICENSE = 2
    ADMINISTRATIVE_PENALTY = 3
    BUSINESS_ABNORMALITY = 4
    SERIOUS_VIOLATION = 5
    CREDIT_RISK_CLASS = 6
    ANNUAL_REPORT = 7
    CREDIT_COMMITMENT = 8
    RED_LIST = 9

    @property
    def type_name(self) -> str:
        """The stable name used in JSON, e.g. ``administrative_penalty``."""
        return _TYPE_NAMES[self]


# Plain dicts: an enum's .name goes through a Python-level descriptor on every access.
_TYPE_NAMES: Final = {record_type: record_type.name.lower() for record_type in RecordType}
_TYPE_BY_NAME: Final = {name: record_type for record_type, name in _TYPE_NAMES.items()}

RECORD_TYPES: Final[Mapping[str, int]] = MappingProxyType(
    {name: record_type.value for record_type, name in _TYPE_NAMES.items()}
)
"""Stable record type names and their codes: ``{"registration": 1, ..., "red_list": 9}``."""


def record_type_of(value: object, *, field: str = "record_type") -> RecordType:
    """Return the RecordType for a stable name or code; raise RecordError otherwise."""
    if isinstance(value, RecordType):
        return value
    if type(value) is str:
        found = _TYPE_BY_NAME.get(value)
        if found is not None:
            return found
    elif type(value) is int and 1 <= value <= len(RecordType):
        return RecordType(value)
    raise RecordError(field, f"unknown record type {value!r}; expected one of {list(RECORD_TYPES)}")


# --- enumerations used by payloads -----------------------------------------------------------


class EntityType(StrEnum):
    """Kind of market entity (市场主体类型)."""

    LIMITED_LIABILITY_COMPANY = "limited_liability_company"  # 有限责任公司
    JOINT_STOCK_COMPANY = "joint_stock_company"  # 股份有限公司
    SOLE_PROPRIETORSHIP = "sole_proprietorship"  # 个人独资企业
    PARTNERSHIP = "partnership"  # 合伙企业
    INDIVIDUAL_BUSINESS = "individual_business"  # 个体工商户
    FARMER_COOPERATIVE = "farmer_cooperative"  # 农民专业合作社
    FOREIGN_INVESTED_ENTERPRISE = "foreign_invested_enterprise"  # 外商投资企业
    BRANCH = "branch"  # 分支机构
    STATE_OWNED_ENTERPRISE = "state_owned_enterprise"  # 全民所有制企业
    COLLECTIVE_ENTERPRISE = "collective_enterprise"  # 集体所有制企业
    OTHER = "other"


class RegistrationStatus(StrEnum):
    """Registration status of an entity (登记状态)."""

    IN_BUSINESS = "in_business"  # 存续（在营、开业、在册）
    SUSPENDED = "suspended"  # 歇业
    LICENSE_REVOKED = "license_revoked"  # 吊销
    DEREGISTERED = "deregistered"  # 注销
    MOVED_OUT = "moved_out"  # 迁出


class PenaltyKind(StrEnum):
    """Kinds of administrative penalty (行政处罚法 2021, art. 9)."""

    WARNING = "warning"  # 警告
    CIRCULATED_CRITICISM = "circulated_criticism"  # 通报批评
    FINE = "fine"  # 罚款
    CONFISCATION_OF_ILLEGAL_GAINS = "confiscation_of_illegal_gains"  # 没收违法所得
    CONFISCATION_OF_ILLEGAL_PROPERTY = "confiscation_of_illegal_property"  # 没收非法财物
    LICENSE_SUSPENSION = "license_suspension"  # 暂扣许可证件
    QUALIFICATION_DOWNGRADE = "qualification_downgrade"  # 降低资质等级
    LICENSE_REVOCATION = "license_revocation"  # 吊销许可证件
    BUSINESS_RESTRICTION = "business_restriction"  # 限制开展生产经营活动
    PRODUCTION_SUSPENSION = "production_suspension"  # 责令停产停业
    CLOSURE_ORDER = "closure_order"  # 责令关闭
    EMPLOYMENT_RESTRICTION = "employment_restriction"  # 限制从业
    ADMINISTRATIVE_DETENTION = "administrative_detention"  # 行政拘留
    OTHER = "other"  # 法律、行政法规规定的其他行政处罚


_FINE: Final = PenaltyKind.FINE  # module constant: enum class attribute lookups are slow


class AbnormalityReason(StrEnum):
    """Statutory reasons for the business abnormality list (企业经营异常名录管理暂行办法 art. 4)."""

    ANNUAL_REPORT_NOT_FILED = "annual_report_not_filed"  # 未按规定期限公示年度报告
    INFORMATION_NOT_DISCLOSED_ON_ORDER = "information_not_disclosed_on_order"  # 未在责令期限内公示
    FALSE_INFORMATION_DISCLOSED = "false_information_disclosed"  # 隐瞒真实情况、弄虚作假
    UNREACHABLE_AT_REGISTERED_ADDRESS = "unreachable_at_registered_address"  # 通过登记住所无法联系


class RiskClass(StrEnum):
    """Credit risk class, A (low risk) to D (high risk) (企业信用风险分类管理)."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


class CommitmentType(StrEnum):
    """Kinds of credit commitment (信用承诺)."""

    LICENSE_NOTIFICATION = "license_notification"  # 审批替代型 (告知承诺制审批)
    CERTIFICATION_NOTIFICATION = "certification_notification"  # 证明事项告知承诺
    CREDIT_REPAIR = "credit_repair"  # 信用修复型
    INDUSTRY_SELF_DISCIPLINE = "industry_self_discipline"  # 行业自律型
    VOLUNTARY = "voluntary"  # 主动型


# --- field kinds --------------------------------------------------------------------------

_NAME_MAX: Final = 200
_IDENT_MAX: Final = 128
_ADDRESS_MAX: Final = 500
_TEXT_MAX: Final = 2000
_LONG_TEXT_MAX: Final = 8000
_MIN_YEAR: Final = 1900
_MAX_YEAR: Final = 2199
_LINE_BREAKS: Final = frozenset("\t\n\r")
_KIND: Final = "ledger.kind"


def _type_reason(value: object, expected: str) -> str:
    if isinstance(value, float):
        return "floats are not allowed; use integers (fen) or strings"
    if value is None:
        return f"must be {expected}, not null (omit optional fields instead)"
    return f"must be {expected}, not {_json_type_name(value)}"


def _json_type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _quoted_date(value: date) -> str:
    return f'"{value.isoformat()}"'


def _choice_array(values: tuple[str, ...]) -> str:
    return "[" + ",".join(map(encode_json_string, values)) + "]"


def _quoted_join(values: tuple[str, ...] | list[str]) -> str:
    """``_choice_array`` without the brackets, for enum values (which JCS never escapes)."""
    return '"' + '","'.join(values) + '"'


# Exactly the characters _Text._check_characters refuses: Unicode Cc is U+0000-U+001F and
# U+007F-U+009F, Cs is U+D800-U+DFFF; free text may hold tab, line feed and carriage return.
# A unit test checks both classes against unicodedata over every code point.
_SINGLE_LINE_REFUSED: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]").search
_MULTILINE_REFUSED: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]").search
_ONLY_STR: Final = {str}

# Every valid date string seen so far (YYYY-MM-DD, 1900-2199). Only valid strings are kept,
# so the cache cannot grow past the ~110,000 dates of those years; a lookup is ~40 ns
# against ~400 ns for fromisoformat, isoformat and the year check.
_DATES: Final[dict[str, date]] = {}
_known_date: Final = _DATES.get


def _new_date(value: str) -> date | None:
    """The date of a valid YYYY-MM-DD string in range (remembered), else None."""
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        return None
    if parsed.isoformat() != value or not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
        return None
    _DATES[value] = parsed
    return parsed


class _Names:
    """The globals of generated code: one private name per object."""

    def __init__(self) -> None:
        self.globals: dict[str, Any] = {}

    def of(self, value: object, hint: str) -> str:
        for name, known in self.globals.items():
            if known is value:
                return name
        name = f"_{hint}_{len(self.globals)}"
        self.globals[name] = value
        return name

    def compile(self, lines: list[str], function: str) -> Callable[..., Any]:
        namespace = dict(self.globals)
        exec("\n".join(lines), namespace)  # noqa: S102 - our own generated source
        compiled: Callable[..., Any] = namespace[function]
        return compiled


class _Kind:
    """How one field is checked, read from JSON, written to JSON and to canonical JSON.

    ``encode`` writes the typed value as RFC 8785 text; where possible it is a C function
    (``encode_json_string``, ``str``), since it runs once per field of every record.
    """

    __slots__ = ("encode",)
    converts = False  # True when the JSON form differs from the typed form

    def __init__(self, encode: Callable[[Any], str]) -> None:
        self.encode = encode

    def check(self, value: Any, name: str) -> None:
        raise NotImplementedError

    def from_json(self, value: Any, name: str) -> Any:
        return value

    def to_json(self, value: Any) -> JsonValue:
        return value  # type: ignore[no-any-return]

    # The fast path (see "fast path" below) is generated from these hooks.

    def fast_lines(self, value: str, names: _Names) -> tuple[list[str], str]:
        """Code accepting the JSON ``value`` exactly when ``from_json`` and ``check`` would.

        Returns the lines, which ``return None`` on any doubt (and set ``escape`` when the
        value may need JSON escapes beyond quote and backslash), and the expression of the
        typed value once they have run (``value`` itself when the forms are the same).
        """
        raise NotImplementedError

    def canonical_fragment(self, value: str, names: _Names, *, typed: bool, raw: bool) -> str:
        """An f-string fragment writing ``value`` (typed or JSON form) as RFC 8785 text.

        ``raw``: strings go between quotes unescaped, which is their RFC 8785 form unless
        they hold a quote, a backslash or a control character (the caller checks).
        """
        return "{" + names.of(self.encode, "encode") + f"({value})}}"

    def quotes(self, value: str) -> str:
        """Expression: how many '"' the raw fragment of ``value`` writes."""
        return "2"


class _Text(_Kind):
    __slots__ = ("max_length", "multiline")

    def __init__(self, max_length: int, *, multiline: bool = False) -> None:
        super().__init__(encode_json_string)
        self.max_length = max_length
        self.multiline = multiline

    def check(self, value: Any, name: str) -> None:
        # One C-level test for the common case; the slow path finds and names the problem.
        if (
            type(value) is str
            and 0 < len(value) <= self.max_length
            and value.isprintable()
            and value.strip() == value
        ):
            return
        if type(value) is not str:
            raise RecordError(name, _type_reason(value, "a string"))
        if not value:
            raise RecordError(name, "must not be empty")
        if len(value) > self.max_length:
            raise RecordError(name, f"longer than {self.max_length} characters")
        if value.strip() != value:
            raise RecordError(name, "must not start or end with whitespace")
        self._check_characters(value, name)

    def fast_lines(self, value: str, names: _Names) -> tuple[list[str], str]:
        # isprintable() is the quick test; a text it refuses may still be valid (a line
        # break in free text, U+3000), which the regex of exactly the refused characters
        # (Cc, Cs) decides without leaving the fast path. Only free text can then still
        # hold a control character (tab, line break) that JSON escapes.
        check = (
            f"if not (type({value}) is str and 0 < len({value}) <= {self.max_length}"
            f" and {value}.strip() == {value}):"
        )
        if not self.multiline:
            bad = names.of(_SINGLE_LINE_REFUSED, "bad")
            check = check[:-2] + f" and ({value}.isprintable() or {bad}({value}) is None)):"
            return [check, "    return None"], value
        bad = names.of(_MULTILINE_REFUSED, "bad")
        return [
            check,
            "    return None",
            f"if not {value}.isprintable():",
            f"    if {bad}({value}) is not None:",
            "        return None",
            "    escape = True",
        ], value

    def canonical_fragment(self, value: str, names: _Names, *, typed: bool, raw: bool) -> str:
        return (
            f'"{{{value}}}"'
            if raw
            else super().canonical_fragment(value, names, typed=typed, raw=raw)
        )

    def _check_characters(self, value: str, name: str) -> None:
        """Reject lone surrogates and control characters; other non-printables are text."""
        for position, char in enumerate(value):
            category = unicodedata.category(char)
            if category == "Cs":
                raise RecordError(name, f"lone surrogate at position {position}")
            if category == "Cc" and not (self.multiline and char in _LINE_BREAKS):
                raise RecordError(
                    name, f"control character U+{ord(char):04X} at position {position}"
                )


class _Int(_Kind):
    __slots__ = ("minimum", "maximum")

    def __init__(self, minimum: int, maximum: int = MAX_SAFE_INTEGER) -> None:
        super().__init__(str)
        self.minimum = minimum
        self.maximum = maximum

    def check(self, value: Any, name: str) -> None:
        if type(value) is not int:
            raise RecordError(name, _type_reason(value, "an integer"))
        if not self.minimum <= value <= self.maximum:
            raise RecordError(name, f"must be between {self.minimum} and {self.maximum}")

    def fast_lines(self, value: str, names: _Names) -> tuple[list[str], str]:
        return [
            f"if not (type({value}) is int and {self.minimum} <= {value} <= {self.maximum}):",
            "    return None",
        ], value

    def canonical_fragment(self, value: str, names: _Names, *, typed: bool, raw: bool) -> str:
        return f"{{{value}}}"  # an int formats as str(int): JCS for safe integers

    def quotes(self, value: str) -> str:
        return "0"


class _Date(_Kind):
    __slots__ = ()
    converts = True

    def __init__(self) -> None:
        super().__init__(_quoted_date)

    def check(self, value: Any, name: str) -> None:
        if type(value) is not date:
            raise RecordError(name, _type_reason(value, "a date"))
        if not _MIN_YEAR <= value.year <= _MAX_YEAR:
            raise RecordError(name, f"year must be between {_MIN_YEAR} and {_MAX_YEAR}")

    def from_json(self, value: Any, name: str) -> Any:
        if type(value) is not str:
            raise RecordError(name, _type_reason(value, "a YYYY-MM-DD date string"))
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            raise RecordError(name, f"{value!r} is not a valid YYYY-MM-DD date") from None
        # fromisoformat also takes "20240305" and "2024-W10-2"; only the extended form is ours.
        if parsed.isoformat() != value:
            raise RecordError(name, f"{value!r} is not in YYYY-MM-DD form")
        return parsed

    def to_json(self, value: Any) -> JsonValue:
        return value.isoformat()  # type: ignore[no-any-return]

    def fast_lines(self, value: str, names: _Names) -> tuple[list[str], str]:
        known, parse = names.of(_known_date, "known_date"), names.of(_new_date, "new_date")
        typed = value + "_date"
        return [
            f"if type({value}) is not str:",
            "    return None",
            f"{typed} = {known}({value})",
            f"if {typed} is None:",
            f"    {typed} = {parse}({value})",
            f"    if {typed} is None:",
            "        return None",
        ], typed

    def canonical_fragment(self, value: str, names: _Names, *, typed: bool, raw: bool) -> str:
        # A valid JSON date is its own isoformat(): from_json insists on the round trip.
        return f'"{{{value}.isoformat()}}"' if typed else f'"{{{value}}}"'


class _Choice(_Kind):
    """One value of a StrEnum; members are str, so they encode as their value."""

    __slots__ = ("enum", "by_value")
    converts = True

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__(encode_json_string)
        self.enum = enum
        self.by_value = {member.value: member for member in enum}

    def check(self, value: Any, name: str) -> None:
        if type(value) is not self.enum:
            raise RecordError(name, f"must be a {self.enum.__name__}")

    def from_json(self, value: Any, name: str) -> Any:
        member = self.by_value.get(value) if type(value) is str else None
        if member is None:
            if type(value) is not str:
                raise RecordError(name, _type_reason(value, "a string"))
            expected = list(self.by_value)
            raise RecordError(name, f"unknown value {value!r}; expected one of {expected}")
        return member

    def to_json(self, value: Any) -> JsonValue:
        return str.__str__(value)

    def fast_lines(self, value: str, names: _Names) -> tuple[list[str], str]:
        by_value = names.of(self.by_value, "by_value")
        typed = value + "_member"
        return [
            f"{typed} = {by_value}.get({value}) if type({value}) is str else None",
            f"if {typed} is None:",
            "    return None",
        ], typed

    def canonical_fragment(self, value: str, names: _Names, *, typed: bool, raw: bool) -> str:
        return f'"{{{names.of(str.__str__, "str")}({value})}}"' if typed else f'"{{{value}}}"'


class _ChoiceList(_Kind):
    """A non-empty array of distinct StrEnum values, kept in the issuer's order."""

    __slots__ = ("choice",)
    converts = True

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__(_choice_array)
        self.choice = _Choice(enum)

    def check(self, value: Any, name: str) -> None:
        if (
            type(value) is tuple
            and value
            and set(map(type, value)) == {self.choice.enum}
            and len(set(value)) == len(value)
        ):
            return
        if type(value) is not tuple:
            raise RecordError(name, f"must be a tuple of {self.choice.enum.__name__}")
        if not value:
            raise RecordError(name, "must not be empty")
        for index, item in enumerate(value):
            self.choice.check(item, f"{name}[{index}]")
        if len(set(value)) != len(value):
            raise RecordError(name, "must not repeat a value")

    def from_json(self, value: Any, name: str) -> Any:
        if type(value) is not list:
            raise RecordError(name, _type_reason(value, "an array"))
        from_json = self.choice.from_json
        return tuple([from_json(item, f"{name}[{index}]") for index, item in enumerate(value)])

    def to_json(self, value: Any) -> JsonValue:
        return [str.__str__(item) for item in value]

    def members_of(self, value: Any) -> tuple[StrEnum, ...] | None:
        """The members if ``from_json`` and ``check`` accept ``value``; None otherwise."""
        if type(value) is not list or not value or set(map(type, value)) != _ONLY_STR:
            return None
        members = tuple(map(self.choice.by_value.get, value))
        if None in members or len(set(members)) != len(members):
            return None
        return members  # type: ignore[return-value]

    def fast_lines(self, value: str, names: _Names) -> tuple[list[str], str]:
        typed = value + "_members"  # members_of, inlined
        only_str, by_value = names.of(_ONLY_STR, "only_str"), names.of(self.choice.by_value, "by")
        return [
            f"if type({value}) is not list or not {value}"
            f" or set(map(type, {value})) != {only_str}:",
            "    return None",
            f"{typed} = tuple(map({by_value}.get, {value}))",
            f"if None in {typed} or len(set({typed})) != len({typed}):",
            "    return None",
        ], typed

    def canonical_fragment(self, value: str, names: _Names, *, typed: bool, raw: bool) -> str:
        return f"[{{{names.of(_quoted_join, 'quoted_join')}({value})}}]"

    def quotes(self, value: str) -> str:
        return f"2 * len({value})"


def _name(max_length: int = _NAME_MAX) -> dict[str, _Kind]:
    return {_KIND: _Text(max_length)}


def _text(max_length: int = _TEXT_MAX) -> dict[str, _Kind]:
    return {_KIND: _Text(max_length, multiline=True)}


def _ident() -> dict[str, _Kind]:
    return {_KIND: _Text(_IDENT_MAX)}


def _amount() -> dict[str, _Kind]:
    return {_KIND: _Int(0)}


def _signed_amount() -> dict[str, _Kind]:
    return {_KIND: _Int(-MAX_SAFE_INTEGER)}


def _date() -> dict[str, _Kind]:
    return {_KIND: _Date()}


def _choice(enum: type[StrEnum]) -> dict[str, _Kind]:
    return {_KIND: _Choice(enum)}


# --- payloads -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Schema:
    """A payload class's fields, laid out for the hot loops (one attrgetter call each)."""

    names: tuple[str, ...]
    values_of: Callable[[object], tuple[Any, ...]]  # all field values, in field order
    checks: tuple[tuple[str, Callable[[Any, str], None], bool], ...]  # name, check, required
    to_json: tuple[tuple[str, Callable[[Any], JsonValue]], ...]
    required: frozenset[str]
    allowed: frozenset[str]
    converters: tuple[tuple[str, Callable[[Any, str], Any]], ...]  # JSON form -> typed form
    canonical_text: Callable[[Payload], str]  # generated: _compile_canonical_text
    kinds: dict[str, _Kind]  # for the fast parser, generated once Record exists


def _schema_of(cls: type) -> _Schema:
    fields = dataclasses.fields(cls)
    kinds: dict[str, _Kind] = {f.name: f.metadata[_KIND] for f in fields}
    names = tuple(kinds)
    required = frozenset(f.name for f in fields if f.default is dataclasses.MISSING)
    # attrgetter of two or more names returns a tuple; every payload has at least two fields.
    assert len(names) >= 2, cls
    return _Schema(
        names=names,
        values_of=attrgetter(*names),
        checks=tuple((name, kinds[name].check, name in required) for name in names),
        to_json=tuple((name, kinds[name].to_json) for name in names),
        required=required,
        allowed=frozenset(names),
        converters=tuple((name, kinds[name].from_json) for name in names if kinds[name].converts),
        canonical_text=_compile_canonical_text(cls, kinds, required),
        kinds=kinds,
    )


def _compile_canonical_text(
    cls: type, kinds: dict[str, _Kind], required: frozenset[str]
) -> Callable[..., Any]:
    """Generate ``payload -> RFC 8785 text`` for one payload class (see canonical_text)."""
    names = _Names()
    ordered = sorted(kinds)  # ASCII names: code-point order is RFC 8785's order
    variables = {name: f"value_{index}" for index, name in enumerate(ordered)}
    values_of = names.of(attrgetter(*ordered), "values_of")
    members, lines = _canonical_members(ordered, kinds, required, variables, names, typed=True)
    source = [
        "def canonical_text(payload):",
        f"    {', '.join(variables[name] for name in ordered)} = {values_of}(payload)",
        *lines,
        f"    return f'{{{{{members}}}}}'",
    ]
    return names.compile(source, "canonical_text")


def _canonical_members(
    ordered: list[str],
    kinds: dict[str, _Kind],
    required: frozenset[str],
    variables: dict[str, str],
    names: _Names,
    *,
    typed: bool,
    raw: bool = False,
    indent: str = "    ",
) -> tuple[str, list[str]]:
    """The members of an RFC 8785 object as an f-string body, and the lines it needs first.

    Each optional member is a variable, empty when the value is None. Members after the
    first required one are written with a leading comma, optional ones before it with a
    trailing comma, so no comma is ever left over.
    """
    first_required = min(ordered.index(name) for name in required)
    lines, pieces = [], []
    for position, name in enumerate(ordered):
        fragment = kinds[name].canonical_fragment(variables[name], names, typed=typed, raw=raw)
        member = f'"{name}":{fragment}'
        if position < first_required:
            member += ","
        elif position > first_required:
            member = "," + member
        assert "'" not in member and "\\" not in member, member
        if name in required:
            pieces.append(member)
        else:
            text = f"{variables[name]}_text"
            lines.append(f"{indent}{text} = '' if {variables[name]} is None else f'{member}'")
            pieces.append(f"{{{text}}}")
    return "".join(pieces), lines


_MISSING: Final = object()


_P = TypeVar("_P", bound="Payload")


@dataclass(frozen=True, slots=True)
class Payload:
    """Base of the typed ``data`` member of a record; one subclass per record type.

    Instances validate themselves on construction, whether built in code or parsed from JSON
    with ``from_json``; errors name the bare field (``amount_fen``) and ``Record`` prefixes
    ``data.``.
    """

    RECORD_TYPE: ClassVar[RecordType]
    _schema: ClassVar[_Schema]

    def __post_init__(self) -> None:
        schema = self._schema
        for (name, check, required), value in zip(
            schema.checks, schema.values_of(self), strict=True
        ):
            if value is not None or required:
                check(value, name)
        self._check_consistency()

    def _check_consistency(self) -> None:
        """Cross-field rules of the payload type; single fields are already checked."""

    @classmethod
    def from_json(cls: type[_P], obj: object, *, path: str = "data") -> _P:
        """Parse the payload's JSON object strictly; ``path`` prefixes error fields."""
        schema = cls._schema
        if type(obj) is not dict:
            raise RecordError(path, _type_reason(obj, "an object"))
        members = obj.keys()
        if not members <= schema.allowed:
            unknown = sorted(str(key) for key in members - schema.allowed)
            raise RecordError(
                f"{path}.{unknown[0]}", f"unknown field for {cls.RECORD_TYPE.type_name}"
            )
        if not schema.required <= members:
            missing = sorted(schema.required - members)
            raise RecordError(f"{path}.{missing[0]}", "required field is missing")
        if None in obj.values():
            null = next(key for key, value in obj.items() if value is None)
            raise RecordError(f"{path}.{null}", "must not be null (omit optional fields instead)")
        values = dict(obj)
        try:
            for name, from_json in schema.converters:
                if name in values:
                    values[name] = from_json(values[name], name)
            return cls(**values)
        except RecordError as error:
            raise RecordError(f"{path}.{error.field}", error.reason) from None

    def to_json(self) -> JsonObject:
        """The payload as a JSON object; optional fields that are None are omitted."""
        schema = self._schema
        return {
            name: to_json(value)
            for (name, to_json), value in zip(schema.to_json, schema.values_of(self), strict=True)
            if value is not None
        }

    def canonical_text(self) -> str:
        """RFC 8785 serialisation of ``to_json()`` as text, built without the dict."""
        return self._schema.canonical_text(self)


def _not_before(later: date | None, earlier: date, later_name: str, earlier_name: str) -> None:
    if later is not None and later < earlier:
        raise RecordError(later_name, f"must not be before {earlier_name}")


@dataclass(frozen=True, slots=True)
class Registration(Payload):
    """Registration of a market entity (登记注册信息)."""

    RECORD_TYPE: ClassVar[RecordType] = RecordType.REGISTRATION

    enterprise_name: str = field(metadata=_name())
    legal_representative: str = field(metadata=_name(100))
    entity_type: EntityType = field(metadata=_choice(EntityType))
    established_on: date = field(metadata=_date())
    address: str = field(metadata=_name(_ADDRESS_MAX))
    business_scope: str = field(metadata=_text(_LONG_TEXT_MAX))
    registered_capital_fen: int | None = field(default=None, metadata=_amount())
    registered_capital_text: str | None = field(default=None, metadata=_name(100))
    registration_authority: str | None = field(default=None, metadata=_name())
    registration_status: RegistrationStatus | None = field(
        default=None, metadata=_choice(RegistrationStatus)
    )
    operating_until: date | None = field(default=None, metadata=_date())

    def _check_consistency(self) -> None:
        _not_before(self.operating_until, self.established_on, "operating_until", "established_on")


@dataclass(frozen=True, slots=True)
class AdministrativeLicense(Payload):
    """An administrative licence granted to the entity (行政许可)."""

    RECORD_TYPE: ClassVar[RecordType] = RecordType.ADMINISTRATIVE_LICENSE

    license_number: str = field(metadata=_ident())
    license_name: str = field(metadata=_name())
    content: str = field(metadata=_text())
    valid_from: date = field(metadata=_date())
    licensing_authority: str = field(metadata=_name())
    valid_to: date | None = field(default=None, metadata=_date())
    decision_date: date | None = field(default=None, metadata=_date())

    def _check_consistency(self) -> None:
        _not_before(self.valid_to, self.valid_from, "valid_to", "valid_from")


@dataclass(frozen=True, slots=True)
class AdministrativePenalty(Payload):
    """An administrative penalty decision (行政处罚决定)."""

    RECORD_TYPE: ClassVar[RecordType] = RecordType.ADMINISTRATIVE_PENALTY

    decision_number: str = field(metadata=_ident())
    violation: str = field(metadata=_text())
    legal_basis: str = field(metadata=_text())
    penalty_kinds: tuple[PenaltyKind, ...] = field(metadata={_KIND: _ChoiceList(PenaltyKind)})
    amount_fen: int = field(metadata=_amount())
    decision_date: date = field(metadata=_date())
    authority: str = field(metadata=_name())
    confiscated_fen: int | None = field(default=None, metadata=_amount())

    def _check_consistency(self) -> None:
        if self.amount_fen > 0 and _FINE not in self.penalty_kinds:
            raise RecordError("amount_fen", "a fine amount needs penalty kind 'fine'")


@dataclass(frozen=True, slots=True)
class BusinessAbnormality(Payload):
    """A listing on the business abnormality list (经营异常名录)."""

    RECORD_TYPE: ClassVar[RecordType] = RecordType.BUSINESS_ABNORMALITY

    reason: AbnormalityReason = field(metadata=_choice(AbnormalityReason))
    listing_authority: str = field(metadata=_name())
    listed_on: date = field(metadata=_date())
    decision_number: str | None = field(default=None, metadata=_ident())
    removed_on: date | None = field(default=None, metadata=_date())
    removal_reason: str | None = field(default=None, metadata=_text())

    def _check_consistency(self) -> None:
        _not_before(self.removed_on, self.listed_on, "removed_on", "listed_on")
        if (self.removed_on is None) != (self.removal_reason is None):
            missing = "removal_reason" if self.removal_reason is None else "removed_on"
            raise RecordError(missing, "removed_on and removal_reason go together")


@dataclass(frozen=True, slots=True)
class SeriousViolation(Payload):
    """A listing on the serious violation and dishonesty list (严重违法失信名单)."""

    RECORD_TYPE: ClassVar[RecordType] = RecordType.SERIOUS_VIOLATION

    reason: str = field(metadata=_text())
    listing_authority: str = field(metadata=_name())
    listed_on: date = field(metadata=_date())
    decision_number: str | None = field(default=None, metadata=_ident())


@dataclass(frozen=True, slots=True)
class CreditRiskClass(Payload):
    """The entity's credit risk class (信用风险分类)."""

    RECORD_TYPE: ClassVar[RecordType] = RecordType.CREDIT_RISK_CLASS

    risk_class: RiskClass = field(metadata=_choice(RiskClass))
    assessed_at: date = field(metadata=_date())
    assessing_authority: str | None = field(default=None, metadata=_name())


@dataclass(frozen=True, slots=True)
class AnnualReport(Payload):
    """Key figures of an annual report (年度报告); amounts in fen, figures optional."""

    RECORD_TYPE: ClassVar[RecordType] = RecordType.ANNUAL_REPORT

    year: int = field(metadata={_KIND: _Int(_MIN_YEAR, _MAX_YEAR)})
    submitted_on: date = field(metadata=_date())
    employees: int | None = field(default=None, metadata={_KIND: _Int(0, 100_000_000)})
    total_assets_fen: int | None = field(default=None, metadata=_amount())
    total_liabilities_fen: int | None = field(default=None, metadata=_amount())
    owners_equity_fen: int | None = field(default=None, metadata=_signed_amount())
    revenue_fen: int | None = field(default=None, metadata=_amount())
    main_business_revenue_fen: int | None = field(default=None, metadata=_amount())
    total_profit_fen: int | None = field(default=None, metadata=_signed_amount())
    net_profit_fen: int | None = field(default=None, metadata=_signed_amount())
    tax_paid_fen: int | None = field(default=None, metadata=_amount())

    def _check_consistency(self) -> None:
        if self.submitted_on.year <= self.year:
            raise RecordError("submitted_on", "must be after the reported year")


@dataclass(frozen=True, slots=True)
class CreditCommitment(Payload):
    """A credit commitment made by the entity (信用承诺)."""

    RECORD_TYPE: ClassVar[RecordType] = RecordType.CREDIT_COMMITMENT

    commitment_type: CommitmentType = field(metadata=_choice(CommitmentType))
    content: str = field(metadata=_text())
    committed_on: date = field(metadata=_date())
    accepting_authority: str | None = field(default=None, metadata=_name())
    valid_to: date | None = field(default=None, metadata=_date())

    def _check_consistency(self) -> None:
        _not_before(self.valid_to, self.committed_on, "valid_to", "committed_on")


@dataclass(frozen=True, slots=True)
class RedList(Payload):
    """A listing on a red (honour) list (红名单)."""

    RECORD_TYPE: ClassVar[RecordType] = RecordType.RED_LIST

    list_name: str = field(metadata=_name())
    reason: str = field(metadata=_text())
    listed_on: date = field(metadata=_date())
    listing_authority: str | None = field(default=None, metadata=_name())
    valid_to: date | None = field(default=None, metadata=_date())

    def _check_consistency(self) -> None:
        _not_before(self.valid_to, self.listed_on, "valid_to", "listed_on")


_PAYLOAD_CLASSES: Final[tuple[type[Payload], ...]] = (
    Registration,
    AdministrativeLicense,
    AdministrativePenalty,
    BusinessAbnormality,
    SeriousViolation,
    CreditRiskClass,
    AnnualReport,
    CreditCommitment,
    RedList,
)
for _payload_class in _PAYLOAD_CLASSES:
    _payload_class._schema = _schema_of(_payload_class)

PAYLOAD_TYPES: Final[Mapping[RecordType, type[Payload]]] = MappingProxyType(
    {payload_class.RECORD_TYPE: payload_class for payload_class in _PAYLOAD_CLASSES}
)
"""The payload class of each record type."""


# --- the envelope -------------------------------------------------------------------------

_ENVELOPE_FIELDS: Final = frozenset(
    {"schema", "region", "uscc", "record_type", "record_id", "issued_by", "issued_at", "data"}
)
_RECORD_ID: Final = _Text(_IDENT_MAX)
_ISSUED_BY: Final = _Text(_NAME_MAX)
_ISSUED_AT: Final = _Date()
_REGION: Final = _Int(100000, 999999)


def _check_region(region: object) -> None:
    if type(region) is int and is_division_code(region):
        return
    _REGION.check(region, "region")
    raise RecordError("region", f"{region} is not a GB/T 2260 division code")


class _CanonicalCache:
    """A slot for a record's canonical bytes, outside the dataclass fields.

    Not a field, so equality, hashing, repr, ``fields()`` and pickling ignore it; the
    record is frozen, so the bytes can never go stale.
    """

    __slots__ = ("_canonical",)
    _canonical: bytes


@dataclass(frozen=True, slots=True)
class Record(_CanonicalCache):
    """One credit record (DESIGN §3), validated on construction.

    ``data`` is the payload class of ``record_type`` (see ``PAYLOAD_TYPES``).
    """

    region: int
    uscc: str
    record_type: RecordType
    record_id: str
    issued_by: str
    issued_at: date
    data: Payload

    schema: ClassVar[str] = RECORD_SCHEMA

    def __post_init__(self) -> None:
        _check_region(self.region)
        validate_uscc(self.uscc)
        if type(self.record_type) is not RecordType:
            raise RecordError("record_type", "must be a RecordType")
        _RECORD_ID.check(self.record_id, "record_id")
        _ISSUED_BY.check(self.issued_by, "issued_by")
        _ISSUED_AT.check(self.issued_at, "issued_at")
        if type(self.data) is not PAYLOAD_TYPES[self.record_type]:
            expected = PAYLOAD_TYPES[self.record_type].__name__
            raise RecordError("data", f"must be {expected} for {self.record_type.type_name}")

    @classmethod
    def from_json(cls, obj: object) -> Record:
        """Parse a record's JSON object strictly (see ``parse_record``)."""
        if cls is Record:
            record = parse_record_fast(obj)
            if record is not None:
                return record
        return cls._from_json_checked(obj)

    @classmethod
    def _from_json_checked(cls, obj: object) -> Record:
        """The field-by-field parse: slower than the fast path, and names every rejection."""
        if type(obj) is not dict:
            raise RecordError("record", _type_reason(obj, "a JSON object"))
        members = obj.keys()
        if members != _ENVELOPE_FIELDS:
            unknown = sorted(str(key) for key in members - _ENVELOPE_FIELDS)
            if unknown:
                raise RecordError(unknown[0], "unknown field")
            raise RecordError(sorted(_ENVELOPE_FIELDS - members)[0], "required field is missing")
        schema = obj["schema"]
        if schema != RECORD_SCHEMA or type(schema) is not str:
            raise RecordError("schema", f"must be {RECORD_SCHEMA!r}, got {schema!r}")
        type_name = obj["record_type"]
        if type(type_name) is not str:
            raise RecordError("record_type", _type_reason(type_name, "a record type name"))
        record_type = _TYPE_BY_NAME.get(type_name) or record_type_of(type_name)
        data = PAYLOAD_TYPES[record_type].from_json(obj["data"], path="data")
        return cls(
            obj["region"],
            obj["uscc"],
            record_type,
            obj["record_id"],
            obj["issued_by"],
            _ISSUED_AT.from_json(obj["issued_at"], "issued_at"),
            data,
        )

    def to_json(self) -> JsonObject:
        """The record as its JSON object; ``parse_record(r.to_json()) == r``."""
        return {
            "schema": RECORD_SCHEMA,
            "region": self.region,
            "uscc": self.uscc,
            "record_type": _TYPE_NAMES[self.record_type],
            "record_id": self.record_id,
            "issued_by": self.issued_by,
            "issued_at": self.issued_at.isoformat(),
            "data": self.data.to_json(),
        }

    def canonical_bytes(self) -> bytes:
        """``canonical(record)`` of DESIGN §3 (RFC 8785, UTF-8), without building the dict."""
        try:
            return self._canonical  # written by parse_record, or by an earlier call
        except AttributeError:
            pass
        # Keys in RFC 8785 order: data, issued_at, issued_by, record_id, record_type,
        # region, schema, uscc. A property test pins this against rfc8785.dumps.
        canonical = (
            f'{{"data":{self.data.canonical_text()},"issued_at":"{self.issued_at.isoformat()}",'
            f'"issued_by":{encode_json_string(self.issued_by)},'
            f'"record_id":{encode_json_string(self.record_id)},'
            f'"record_type":"{_TYPE_NAMES[self.record_type]}","region":{self.region},'
            f'"schema":"{RECORD_SCHEMA}","uscc":"{self.uscc}"}}'
        ).encode()
        _set_canonical(self, canonical)
        return canonical


# --- fast path ------------------------------------------------------------------------------
#
# parse_record runs for every record taken in and every disclosure verified. The checks
# above took ~16 µs a record, most of it in per-field calls and in frozen-dataclass
# assignment. The fast path accepts exactly what they accept, in straight-line code
# generated per payload type (_compile_payload); it assigns the slots directly, since every
# value is already checked, and writes the canonical bytes from the JSON values while they
# are at hand. At the first doubt it returns None and the checked parse runs, so every
# rejection still names its field and reason. Property tests compare the two paths.

_set_canonical: Final = _CanonicalCache.__dict__["_canonical"].__set__
_unchecked_record: Final = unchecked_constructor(Record, "_canonical")
_PROVINCE_PREFIXES: Final = frozenset(PROVINCES)


def _compile_record_parser(payload_class: type[Payload]) -> Callable[..., Record | None]:
    """Generate the fast parser of records of one type: payload checks, objects, canonical.

    Straight-line code, as dataclasses generates ``__init__``: no loop over fields, no call
    per field but the C ones. It assigns the payload's slots directly, since every value is
    already checked, and runs ``_check_consistency`` as ``__post_init__`` would.
    """
    schema = payload_class._schema
    kinds, required = schema.kinds, schema.required
    names = _Names()
    missing = names.of(_MISSING, "missing")
    fields = list(kinds)
    optional = [name for name in fields if name not in required]
    json_vars = {name: f"value_{index}" for index, name in enumerate(fields)}
    typed_vars: dict[str, str] = {}
    checks: dict[str, list[str]] = {}
    for name in fields:
        checks[name], typed_vars[name] = kinds[name].fast_lines(json_vars[name], names)

    # The quotes of the raw canonical text when no value holds one: two per member name,
    # plus those around string values; the envelope's are fixed (data, issued_at, issued_by,
    # record_id, record_type, region, schema, uscc).
    counts = [kinds[name].quotes(json_vars[name]) for name in fields if name in required]
    fixed = 2 + 4 + 4 + 4 + 4 + 2 + 4 + 4 + 2 * len(counts)
    fixed += sum(int(count) for count in counts if count.isdigit())
    quotes = " + ".join([str(fixed), *(count for count in counts if not count.isdigit())])
    source = [
        "def parse(data, region, uscc, record_type, type_name, record_id, issued_by,"
        " issued_at, issued_on):",
        "    escape = False",
        "    try:",
        *(f"        {json_vars[name]} = data[{name!r}]" for name in fields if name in required),
        "    except KeyError:",
        "        return None",
    ]
    for name in fields:
        if name in required:
            source += ["    " + line for line in checks[name]]
    # Counted once the checks have passed: a choice list's count needs a list (len(None)
    # raised TypeError here once, instead of the checked parse's RecordError).
    source.append(f"    quotes = {quotes}")
    if optional:
        # Most records omit most optional members: count first, look up only if present.
        absent = [json_vars[name] for name in optional]
        absent += [typed_vars[name] for name in optional if typed_vars[name] != json_vars[name]]
        source += [f"    if len(data) == {len(required)}:", f"        {' = '.join(absent)} = None"]
        source += ["    else:", f"        unknown = len(data) - {len(required)}"]
        for name in optional:
            value = json_vars[name]
            none = f"{value} = None"
            if typed_vars[name] != value:
                none += f"; {typed_vars[name]} = None"
            source += [
                f"        {value} = data.get({name!r}, {missing})",
                f"        if {value} is {missing}:",
                f"            {none}",
                "        else:",
                "            unknown -= 1",
                *("            " + line for line in checks[name]),
                f"            quotes += 2 + {kinds[name].quotes(value)}",
            ]
        source += ["        if unknown:", "            return None"]
    else:
        source += [f"    if len(data) != {len(required)}:", "        return None"]
    source += [f"    payload = {names.of(object.__new__, 'new')}({names.of(payload_class, 'cls')})"]
    for name in fields:
        setter = names.of(payload_class.__dict__[name].__set__, f"set_{name}")
        source.append(f"    {setter}(payload, {typed_vars[name]})")
    if payload_class._check_consistency is not Payload._check_consistency:
        source += [
            "    try:",
            "        payload._check_consistency()",
            f"    except {names.of(RecordError, 'RecordError')}:",
            "        return None",
        ]
    # Strings go in unescaped when no escape can be needed: no control character (the
    # checks above), no backslash, and no quote but those written around names and
    # strings. Otherwise, rarely, the text is written again through the JSON encoder.
    # The test runs on the UTF-8 bytes: counting in bytes is memchr, in UCS-2 text a loop.
    ordered = sorted(fields)
    encode = names.of(encode_json_string, "encode")
    for raw, indent in ((True, "    "), (False, "        ")):
        members, lines = _canonical_members(
            ordered, kinds, required, json_vars, names, typed=False, raw=raw, indent=indent
        )
        issued_by, record_id = (
            ('"{issued_by}"', '"{record_id}"')
            if raw
            else (f"{{{encode}(issued_by)}}", f"{{{encode}(record_id)}}")
        )
        source += lines
        source.append(
            f'{indent}text = f\'{{{{"data":{{{{{members}}}}},"issued_at":"{{issued_at}}",'
            f'"issued_by":{issued_by},"record_id":{record_id},'
            f'"record_type":"{{type_name}}","region":{{region}},'
            f'"schema":"{RECORD_SCHEMA}","uscc":"{{uscc}}"}}}}\''
        )
        source.append(f"{indent}canonical = text.encode()")
        if raw:
            source.append(
                "    if escape or b'\\\\' in canonical or canonical.count(b'\"') != quotes:"
            )
    record = names.of(_unchecked_record, "record")
    source.append(
        f"    return {record}(region, uscc, record_type, record_id, issued_by, issued_on,"
        " payload, canonical)"
    )
    return names.compile(source, "parse")


_PARSE_RECORD: Final = {
    record_type: _compile_record_parser(payload_class)
    for record_type, payload_class in PAYLOAD_TYPES.items()
}


def parse_record_fast(obj: object) -> Record | None:
    """``parse_record(obj)`` if it accepts ``obj`` (on the fast path); else None, not an error.

    For callers that add their own context to errors: on None, ``parse_record`` names the
    field and reason.
    """
    native = _native.speedups
    if native is not None:  # the same checks and bytes in C; None sends it on to the Python
        record: Record | None = native.parse_record(obj)
        if record is not None:
            return record
    if type(obj) is not dict or len(obj) != len(_ENVELOPE_FIELDS):
        return None
    try:  # eight members, all present: exactly the envelope
        schema = obj["schema"]
        region = obj["region"]
        uscc = obj["uscc"]
        type_name = obj["record_type"]
        record_id = obj["record_id"]
        issued_by = obj["issued_by"]
        issued_at = obj["issued_at"]
        data = obj["data"]
    except KeyError:
        return None
    if not (
        type(schema) is str
        and schema == RECORD_SCHEMA
        and type(region) is int
        and 100000 <= region <= 999999
        and region // 10000 in _PROVINCE_PREFIXES
        and is_valid_uscc(uscc)
        and type(type_name) is str
        and type(record_id) is str
        and 0 < len(record_id) <= _IDENT_MAX
        and record_id.strip() == record_id
        and (record_id.isprintable() or _SINGLE_LINE_REFUSED(record_id) is None)
        and type(issued_by) is str
        and 0 < len(issued_by) <= _NAME_MAX
        and issued_by.strip() == issued_by
        and (issued_by.isprintable() or _SINGLE_LINE_REFUSED(issued_by) is None)
        and type(issued_at) is str
        and type(data) is dict
    ):
        return None
    record_type = _TYPE_BY_NAME.get(type_name)
    issued_on = _known_date(issued_at) or _new_date(issued_at)
    if record_type is None or issued_on is None:
        return None
    return _PARSE_RECORD[record_type](
        data, region, uscc, record_type, type_name, record_id, issued_by, issued_at, issued_on
    )


def parse_record(obj: object) -> Record:
    """Parse and strictly validate a record's JSON object; raise RecordError(field, reason).

    The JSON form round-trips exactly: ``parse_record(obj).to_json() == obj``.
    """
    record = parse_record_fast(obj)
    if record is None:
        record = Record._from_json_checked(obj)
    return record


# --- the C fast path (ledger._speedups.parse_record) ------------------------------------------


def _native_field(name: str, kind: _Kind, required: bool, slot: object) -> tuple[object, ...]:
    """One payload member for the C parser: (name, kind, minimum, maximum, by_value, slot,
    required); maximum is a text's length, or a choice list's longest distinct list."""
    if isinstance(kind, _Text):
        return (name, int(kind.multiline), 0, kind.max_length, None, slot, required)
    if isinstance(kind, _Int):
        return (name, 2, kind.minimum, kind.maximum, None, slot, required)
    if isinstance(kind, _Choice):
        return (name, 4, 0, 0, kind.by_value, slot, required)
    if isinstance(kind, _ChoiceList):
        by_value = kind.choice.by_value
        return (name, 5, 0, len(by_value), by_value, slot, required)
    assert type(kind) is _Date, kind
    return (name, 3, 0, 0, None, slot, required)


def _configure_native(native: ModuleType) -> None:
    """Hand the C parser this module's rules: envelope, payload schemas, caches."""
    schemas: dict[int, tuple[object, ...]] = {}
    for record_type, payload_class in PAYLOAD_TYPES.items():
        schema = payload_class._schema
        names = list(schema.kinds)
        check: object = payload_class._check_consistency  # run only where a class adds rules
        if check is Payload._check_consistency:
            check = None
        schemas[record_type.value] = (
            payload_class,
            check,
            tuple(
                _native_field(
                    name, schema.kinds[name], name in schema.required, slot_of(payload_class, name)
                )
                for name in names
            ),
            tuple(names.index(name) for name in sorted(names)),  # RFC 8785: ASCII names
        )
    envelope = "schema region uscc record_type record_id issued_by issued_at data".split()
    record_slots = "region uscc record_type record_id issued_by issued_at data _canonical"
    native.configure_records(
        Record,
        tuple(slot_of(Record, name) for name in record_slots.split()),
        RECORD_SCHEMA,
        tuple(envelope),
        _TYPE_BY_NAME,
        _DATES,
        _new_date,
        RecordError,
        tuple(sorted(_PROVINCE_PREFIXES)),
        USCC_CHARSET,
        _IDENT_MAX,
        _NAME_MAX,
        schemas,
    )


if _native.built is not None:
    _configure_native(_native.built)
