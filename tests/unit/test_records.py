"""Tests for ledger.records: the record envelope, typed payloads and every rejection path."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import unicodedata
from datetime import date
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_samples import (
    BEIJING_USCC,
    PROPERTY,
    RECORD_TYPE_NAMES,
    SAMPLE_DATA,
    json_scalars,
    record_json,
    record_jsons,
)

import ledger.records as records_module
from ledger.canonical import canonicalize
from ledger.errors import RecordError
from ledger.records import (
    PAYLOAD_TYPES,
    RECORD_TYPES,
    AdministrativePenalty,
    PenaltyKind,
    Record,
    RecordType,
    RiskClass,
    parse_record,
    parse_record_fast,
    record_type_of,
)

# Every test here runs on the C speedups and again on pure Python (see conftest.py).
pytestmark = pytest.mark.usefixtures("core_path")


def _rejects(obj: object, field: str, reason_part: str) -> RecordError:
    with pytest.raises(RecordError) as caught:
        parse_record(obj)
    assert caught.value.field == field
    assert reason_part in caught.value.reason, caught.value.reason
    return caught.value


def _with_data(record_type: str = "administrative_penalty", **data: Any) -> dict[str, Any]:
    obj = record_json(record_type)
    obj["data"].update(data)
    return obj


def _without_data(record_type: str, member: str) -> dict[str, Any]:
    obj = record_json(record_type)
    del obj["data"][member]
    return obj


# --- record types --------------------------------------------------------------------------


def test_record_type_codes_are_the_stable_codes_of_design_section_3() -> None:
    assert dict(RECORD_TYPES) == {
        "registration": 1,
        "administrative_license": 2,
        "administrative_penalty": 3,
        "business_abnormality": 4,
        "serious_violation": 5,
        "credit_risk_class": 6,
        "annual_report": 7,
        "credit_commitment": 8,
        "red_list": 9,
    }
    assert set(PAYLOAD_TYPES) == set(RecordType)


@pytest.mark.parametrize("value", ["administrative_penalty", 3, RecordType.ADMINISTRATIVE_PENALTY])
def test_record_type_of_accepts_names_codes_and_members(value: object) -> None:
    assert record_type_of(value) is RecordType.ADMINISTRATIVE_PENALTY


@pytest.mark.parametrize("value", ["Administrative_Penalty", "penalty", 0, 10, True, None, 3.0])
def test_record_type_of_rejects_unknown_values(value: object) -> None:
    with pytest.raises(RecordError) as caught:
        record_type_of(value)
    assert caught.value.field == "record_type"
    assert "unknown record type" in caught.value.reason


# --- valid records -------------------------------------------------------------------------


@pytest.mark.parametrize("record_type", RECORD_TYPE_NAMES)
def test_parses_a_sample_of_every_record_type(record_type: str) -> None:
    obj = record_json(record_type)
    record = parse_record(obj)
    assert record.record_type.type_name == record_type
    assert type(record.data) is PAYLOAD_TYPES[record.record_type]
    assert record.to_json() == obj


@pytest.mark.parametrize("record_type", RECORD_TYPE_NAMES)
def test_canonical_bytes_of_a_record_equal_rfc8785_of_its_json(record_type: str) -> None:
    obj = record_json(record_type)
    assert parse_record(obj).canonical_bytes() == rfc8785.dumps(obj) == canonicalize(obj)


def test_payload_fields_are_typed() -> None:
    record = parse_record(record_json("administrative_penalty"))
    assert isinstance(record.data, AdministrativePenalty)
    assert record.data.penalty_kinds == (PenaltyKind.WARNING, PenaltyKind.FINE)
    assert record.data.decision_date == date(2024, 3, 1)
    assert record.issued_at == date(2024, 3, 5)
    assert record.data.amount_fen == 500_000


def test_records_are_frozen_and_comparable() -> None:
    first = parse_record(record_json())
    assert first == parse_record(record_json())
    with pytest.raises(AttributeError):
        first.region = 120000  # type: ignore[misc]


def test_optional_fields_absent_stay_absent() -> None:
    obj = record_json("business_abnormality")
    assert "removed_on" not in parse_record(obj).to_json()["data"]  # type: ignore[operator]


def test_multiline_free_text_is_allowed() -> None:
    obj = _with_data(violation="第一项：未明码标价；\n第二项：\t虚假宣传。")
    assert parse_record(obj).to_json() == obj


def test_text_with_ideographic_space_and_line_separator_is_allowed() -> None:
    obj = _with_data(violation="未按规定\u3000明码标价\u2028附件")
    assert parse_record(obj).to_json() == obj


def test_largest_safe_integer_is_accepted() -> None:
    obj = _with_data(amount_fen=2**53 - 1)
    assert parse_record(obj).data.amount_fen == 2**53 - 1  # type: ignore[attr-defined]


def test_typed_construction_validates_like_parsing() -> None:
    record = parse_record(record_json())
    with pytest.raises(RecordError) as caught:
        Record(
            region=record.region,
            uscc=record.uscc.lower(),
            record_type=record.record_type,
            record_id=record.record_id,
            issued_by=record.issued_by,
            issued_at=record.issued_at,
            data=record.data,
        )
    assert caught.value.field == "uscc"


def test_typed_payload_construction_checks_fields() -> None:
    with pytest.raises(RecordError) as caught:
        AdministrativePenalty(
            decision_number="罚〔2024〕1号",
            violation="v",
            legal_basis="b",
            penalty_kinds=(PenaltyKind.FINE,),
            amount_fen=1.5,  # type: ignore[arg-type]
            decision_date=date(2024, 1, 1),
            authority="a",
        )
    assert caught.value.field == "amount_fen"
    assert "floats are not allowed" in caught.value.reason


def test_record_rejects_payload_of_another_type() -> None:
    record = parse_record(record_json("credit_risk_class"))
    with pytest.raises(RecordError) as caught:
        Record(
            region=record.region,
            uscc=record.uscc,
            record_type=RecordType.RED_LIST,
            record_id=record.record_id,
            issued_by=record.issued_by,
            issued_at=record.issued_at,
            data=record.data,
        )
    assert caught.value.field == "data"
    assert caught.value.reason == "must be RedList for red_list"


def test_record_rejects_record_type_given_as_int_in_typed_construction() -> None:
    record = parse_record(record_json("credit_risk_class"))
    with pytest.raises(RecordError, match="must be a RecordType"):
        Record(
            region=record.region,
            uscc=record.uscc,
            record_type=6,  # type: ignore[arg-type]
            record_id=record.record_id,
            issued_by=record.issued_by,
            issued_at=record.issued_at,
            data=record.data,
        )


@PROPERTY
@given(record_jsons())
def test_generated_records_round_trip_exactly(obj: dict[str, Any]) -> None:
    record = parse_record(obj)
    assert record.to_json() == obj
    assert parse_record(record.to_json()) == record


# --- envelope rejections -------------------------------------------------------------------


@pytest.mark.parametrize("obj", [None, [], "record", 1])
def test_rejects_a_record_that_is_not_an_object(obj: object) -> None:
    _rejects(obj, "record", "must be a JSON object")


def test_rejects_unknown_envelope_field() -> None:
    _rejects(record_json(issuer_note="x"), "issuer_note", "unknown field")


@pytest.mark.parametrize(
    "member",
    ["schema", "region", "uscc", "record_type", "record_id", "issued_by", "issued_at", "data"],
)
def test_rejects_missing_envelope_field(member: str) -> None:
    obj = record_json()
    del obj[member]
    _rejects(obj, member, "required field is missing")


@pytest.mark.parametrize("schema", ["credit-ledger/record/v2", "", None, 1])
def test_rejects_unknown_schema(schema: object) -> None:
    _rejects(record_json(schema=schema), "schema", "must be 'credit-ledger/record/v1'")


@pytest.mark.parametrize(
    ("region", "reason"),
    [
        (110000.0, "floats are not allowed"),
        (True, "must be an integer, not a boolean"),
        ("110000", "must be an integer, not a string"),
        (None, "not null"),
        (99999, "between 100000 and 999999"),
        (1100000, "between 100000 and 999999"),
        (190000, "not a GB/T 2260 division code"),
    ],
)
def test_rejects_bad_region(region: object, reason: str) -> None:
    _rejects(record_json(region=region), "region", reason)


def test_rejects_invalid_uscc_naming_the_uscc_field() -> None:
    _rejects(record_json(uscc=BEIJING_USCC.lower()), "uscc", "lower case")
    _rejects(record_json(uscc=BEIJING_USCC[:-1] + "0"), "uscc", "check character")


@pytest.mark.parametrize(
    ("record_type", "reason"),
    [("penalty", "unknown record type"), (3, "must be a record type name"), (None, "not null")],
)
def test_rejects_unknown_record_type(record_type: object, reason: str) -> None:
    _rejects({**record_json(), "record_type": record_type}, "record_type", reason)


@pytest.mark.parametrize(
    ("record_id", "reason"),
    [
        ("", "must not be empty"),
        ("x" * 129, "longer than 128 characters"),
        (" 京海罚1号", "whitespace"),
        ("京海罚1号\n", "whitespace"),
        ("京海\n罚1号", "control character U+000A"),
        ("京海\x00罚", "control character U+0000"),
        ("京海\ud800罚", "lone surrogate at position 2"),
        (17, "must be a string, not an integer"),
        (1.5, "floats are not allowed"),
    ],
)
def test_rejects_bad_record_id(record_id: object, reason: str) -> None:
    _rejects(record_json(record_id=record_id), "record_id", reason)


def test_accepts_record_id_of_maximum_length() -> None:
    assert parse_record(record_json(record_id="x" * 128)).record_id == "x" * 128


def test_rejects_bad_issued_by() -> None:
    _rejects(record_json(issued_by="局" * 201), "issued_by", "longer than 200 characters")
    _rejects(record_json(issued_by="  "), "issued_by", "whitespace")


@pytest.mark.parametrize(
    ("issued_at", "reason"),
    [
        ("20240305", "not in YYYY-MM-DD form"),
        ("2024-W10-2", "not in YYYY-MM-DD form"),
        ("2024-02-30", "not a valid YYYY-MM-DD date"),
        ("2024-3-5", "not a valid YYYY-MM-DD date"),
        ("2024-03-05T00:00:00", "not a valid YYYY-MM-DD date"),
        ("1899-12-31", "year must be between 1900 and 2199"),
        ("", "not a valid YYYY-MM-DD date"),
        (20240305, "must be a YYYY-MM-DD date string"),
    ],
)
def test_rejects_bad_issued_at(issued_at: object, reason: str) -> None:
    _rejects(record_json(issued_at=issued_at), "issued_at", reason)


@pytest.mark.parametrize("data", [None, [], "罚款", 5])
def test_rejects_data_that_is_not_an_object(data: object) -> None:
    _rejects(record_json(data=data), "data", "must be an object")


# --- payload rejections --------------------------------------------------------------------


def test_rejects_unknown_data_field_naming_its_path() -> None:
    _rejects(
        _with_data(amount_yuan=5000), "data.amount_yuan", "unknown field for administrative_penalty"
    )


def test_rejects_data_of_another_record_type() -> None:
    obj = record_json("administrative_penalty")
    obj["data"] = copy.deepcopy(SAMPLE_DATA["red_list"])
    _rejects(obj, "data.list_name", "unknown field")


@pytest.mark.parametrize(
    ("record_type", "member"),
    [
        ("registration", "enterprise_name"),
        ("administrative_license", "license_number"),
        ("administrative_penalty", "amount_fen"),
        ("business_abnormality", "reason"),
        ("serious_violation", "listed_on"),
        ("credit_risk_class", "risk_class"),
        ("annual_report", "year"),
        ("credit_commitment", "commitment_type"),
        ("red_list", "list_name"),
    ],
)
def test_rejects_missing_required_data_field(record_type: str, member: str) -> None:
    _rejects(_without_data(record_type, member), f"data.{member}", "required field is missing")


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"amount_fen": 500000.0}, "data.amount_fen", "floats are not allowed"),
        ({"amount_fen": -1}, "data.amount_fen", "between 0 and"),
        ({"amount_fen": 2**53}, "data.amount_fen", "between 0 and"),
        ({"amount_fen": True}, "data.amount_fen", "not a boolean"),
        ({"amount_fen": "500000"}, "data.amount_fen", "must be an integer"),
        ({"confiscated_fen": None}, "data.confiscated_fen", "must not be null"),
        ({"penalty_kinds": []}, "data.penalty_kinds", "must not be empty"),
        ({"penalty_kinds": "fine"}, "data.penalty_kinds", "must be an array"),
        ({"penalty_kinds": ["fine", "fine"]}, "data.penalty_kinds", "must not repeat"),
        ({"penalty_kinds": ["fine", "caning"]}, "data.penalty_kinds[1]", "unknown value 'caning'"),
        ({"penalty_kinds": ["fine", 1.0]}, "data.penalty_kinds[1]", "floats are not allowed"),
        ({"penalty_kinds": ["warning"]}, "data.amount_fen", "needs penalty kind 'fine'"),
        ({"decision_date": "2024-13-01"}, "data.decision_date", "not a valid YYYY-MM-DD date"),
        ({"decision_number": ""}, "data.decision_number", "must not be empty"),
        ({"legal_basis": "法" * 2001}, "data.legal_basis", "longer than 2000 characters"),
        ({"authority": "局\n局"}, "data.authority", "control character U+000A"),
        ({"violation": "违法\x07事实"}, "data.violation", "control character U+0007"),
        ({"violation": "违法\udfff事实"}, "data.violation", "lone surrogate"),
    ],
)
def test_rejects_bad_penalty_fields(data: dict[str, Any], field: str, reason: str) -> None:
    _rejects(_with_data(**data), field, reason)


def test_accepts_penalty_without_fine_when_amount_is_zero() -> None:
    record = parse_record(_with_data(penalty_kinds=["warning"], amount_fen=0))
    assert record.data.penalty_kinds == (PenaltyKind.WARNING,)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("record_type", "data", "field", "reason"),
    [
        ("registration", {"entity_type": "llc"}, "data.entity_type", "unknown value 'llc'"),
        ("registration", {"registered_capital_fen": 1e9}, "data.registered_capital_fen", "floats"),
        (
            "registration",
            {"operating_until": "2016-05-11"},
            "data.operating_until",
            "must not be before established_on",
        ),
        (
            "registration",
            {"business_scope": "经" * 8001},
            "data.business_scope",
            "longer than 8000",
        ),
        (
            "administrative_license",
            {"valid_to": "2021-02-28"},
            "data.valid_to",
            "must not be before valid_from",
        ),
        ("business_abnormality", {"reason": "late"}, "data.reason", "unknown value 'late'"),
        (
            "business_abnormality",
            {"removed_on": "2024-01-01"},
            "data.removal_reason",
            "go together",
        ),
        (
            "business_abnormality",
            {"removal_reason": "已补报年报"},
            "data.removed_on",
            "go together",
        ),
        (
            "business_abnormality",
            {"removed_on": "2023-07-17", "removal_reason": "已补报"},
            "data.removed_on",
            "must not be before listed_on",
        ),
        ("credit_risk_class", {"risk_class": "a"}, "data.risk_class", "unknown value 'a'"),
        ("credit_risk_class", {"risk_class": "E"}, "data.risk_class", "unknown value 'E'"),
        ("annual_report", {"year": 2023.0}, "data.year", "floats are not allowed"),
        ("annual_report", {"year": 1800}, "data.year", "between 1900 and 2199"),
        (
            "annual_report",
            {"submitted_on": "2023-12-31"},
            "data.submitted_on",
            "after the reported year",
        ),
        ("annual_report", {"employees": -1}, "data.employees", "between 0 and"),
        ("annual_report", {"net_profit_fen": -(2**53)}, "data.net_profit_fen", "between"),
        ("credit_commitment", {"commitment_type": "oath"}, "data.commitment_type", "unknown value"),
        (
            "credit_commitment",
            {"valid_to": "2024-02-28"},
            "data.valid_to",
            "must not be before committed_on",
        ),
        ("red_list", {"valid_to": "2023-11-30"}, "data.valid_to", "must not be before listed_on"),
        ("serious_violation", {"listed_on": None}, "data.listed_on", "must not be null"),
    ],
)
def test_rejects_bad_payload_fields(
    record_type: str, data: dict[str, Any], field: str, reason: str
) -> None:
    _rejects(_with_data(record_type, **data), field, reason)


def test_accepts_abnormality_with_removal_date_and_reason() -> None:
    obj = _with_data(
        "business_abnormality", removed_on="2024-01-08", removal_reason="已补报年度报告"
    )
    assert parse_record(obj).to_json() == obj


def test_accepts_negative_signed_amounts_and_risk_class_enum() -> None:
    record = parse_record(record_json("annual_report"))
    assert record.data.net_profit_fen == -12_000_000  # type: ignore[attr-defined]
    assert parse_record(record_json("credit_risk_class")).data.risk_class is RiskClass.B  # type: ignore[attr-defined]


def test_rejects_float_nested_anywhere_in_data() -> None:
    _rejects(_with_data("annual_report", total_assets_fen=1.0), "data.total_assets_fen", "floats")
    obj = _with_data(extra={"nested": [1.5]})
    _rejects(obj, "data.extra", "unknown field")


# --- the fast path ---------------------------------------------------------------------------
#
# parse_record first tries generated straight-line code (parse_record_fast) and falls back to
# the field-by-field parse (Record._from_json_checked) at the first doubt. The fast path must
# accept nothing the checked parse rejects, give an equal record when it accepts, and the
# canonical bytes it writes must be RFC 8785's.

MUTATION = settings(PROPERTY, max_examples=800)


class _Text(str):
    """A str subclass: JSON never holds one, and the checked parse rejects it."""


_ODD_VALUES = st.one_of(
    json_scalars,
    st.floats(allow_nan=False),
    st.sampled_from(
        [
            "",
            " 京",
            "京 ",
            "京\n局",
            "京\t局",
            "京\r局",
            "\u3000京",
            "京\u2028局",
            "京\u200b局",
            '京"局',
            "京\\局",
            "京\ud800局",
            "京\x7f局",
            "京\x85局",
            "x" * 129,
            "x" * 201,
            "局" * 2001,
            2**53 - 1,
            2**53,
            -(2**53) + 1,
            -1,
            0,
            True,
            1.0,
            [],
            {},
            ["fine"],
            ["fine", "fine"],
            ["warning"],
            ["fine", "caning"],
            ["fine", None],
            ["fine", 1],
            ("fine",),
            "2024-02-29",
            "2023-02-29",
            "2024-3-5",
            "20240305",
            "2024-W10-2",
            "1899-12-31",
            "2199-12-31",
            "2200-01-01",
            "٢٠٢٤-٠٣-٠٥",
            "A",
            "a",
            "fine",
            "in_business",
            "administrative_penalty",
            "credit-ledger/record/v1",
            _Text("fine"),
            _Text("京海罚1号"),
            _Text("2024-03-05"),
            PenaltyKind.FINE,
            RiskClass.A,
            RecordType.RED_LIST,
            110000,
            190000,
            100000,
            999999,
            BEIJING_USCC.lower(),
            BEIJING_USCC[:-1] + "0",
            BEIJING_USCC[:2] + "990000" + BEIJING_USCC[8:],
        ]
    ),
)
_ENVELOPE_MEMBERS = ["schema", "region", "uscc", "record_type", "record_id", "issued_by"]
_ENVELOPE_MEMBERS += ["issued_at", "data"]


@st.composite
def _mutated_records(draw: st.DrawFn) -> dict[str, Any]:
    """A valid record with one to three members replaced, deleted or added."""
    obj = draw(record_jsons())
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(["envelope", "data", "data"]))
        parent = obj if target == "envelope" or type(obj.get("data")) is not dict else obj["data"]
        names = _ENVELOPE_MEMBERS if parent is obj else sorted(set(parent) | _ALL_DATA_MEMBERS)
        name = draw(st.sampled_from([*names, "extra"]))
        action = draw(st.sampled_from(["replace", "replace", "delete"]))
        if action == "delete":
            parent.pop(name, None)
        else:
            parent[name] = draw(_ODD_VALUES)
    return obj


_ALL_DATA_MEMBERS = frozenset(
    name for payload_class in PAYLOAD_TYPES.values() for name in payload_class._schema.names
)


def _check_against_checked_parse(obj: Any) -> None:
    fast = parse_record_fast(obj)
    try:
        checked = Record._from_json_checked(obj)
    except RecordError as error:
        assert fast is None, obj
        with pytest.raises(RecordError) as caught:
            parse_record(obj)
        assert (caught.value.field, caught.value.reason) == (error.field, error.reason)
        return
    assert parse_record(obj) == checked
    if fast is not None:
        assert fast == checked
        assert type(fast) is Record and type(fast.data) is type(checked.data)
        assert fast.canonical_bytes() == checked.canonical_bytes() == rfc8785.dumps(obj)


@PROPERTY
@given(record_jsons())
def test_fast_path_accepts_every_valid_record_with_the_checked_result(obj: dict[str, Any]) -> None:
    fast = parse_record_fast(obj)
    assert fast is not None  # a valid record never needs the slow path
    assert fast == Record._from_json_checked(obj)
    assert fast.to_json() == obj
    assert fast.canonical_bytes() == rfc8785.dumps(obj)


@MUTATION
@given(_mutated_records())
def test_fast_path_agrees_with_the_checked_parse_on_damaged_records(obj: dict[str, Any]) -> None:
    _check_against_checked_parse(obj)


@pytest.mark.parametrize(
    "data",
    [
        {"violation": '未按"规定"明码标价'},
        {"violation": "未按\\规定"},
        {"violation": "第一项\n第二项\r\n第三项\t完"},
        {"authority": "北京市\u3000海淀区"},
        {"decision_number": "罚\u2028字"},
        {"legal_basis": "《价格法》\u00a0第十三条"},
        {"penalty_kinds": ["fine", "warning", "confiscation_of_illegal_gains"]},
        {"confiscated_fen": 0},
    ],
)
def test_fast_path_writes_escapes_exactly_as_rfc8785(data: dict[str, Any]) -> None:
    obj = _with_data(**data)
    _check_against_checked_parse(obj)
    assert parse_record(obj).canonical_bytes() == rfc8785.dumps(obj)


@pytest.mark.parametrize("member", ["issued_by", "record_id"])
@pytest.mark.parametrize("text", ['京海"罚"1号', "京海\\罚1号", "京海\u3000罚1号"])
def test_fast_path_escapes_envelope_text(member: str, text: str) -> None:
    obj = record_json(**{member: text})
    _check_against_checked_parse(obj)
    assert parse_record(obj).canonical_bytes() == rfc8785.dumps(obj)


@pytest.mark.parametrize(
    "value", [_Text("京海罚1号"), PenaltyKind.FINE, [_Text("fine")], [PenaltyKind.FINE]]
)
@pytest.mark.parametrize("member", ["record_id", "data.violation", "data.penalty_kinds"])
def test_fast_path_leaves_str_subclasses_to_the_checked_parse(member: str, value: Any) -> None:
    obj = record_json()
    if member.startswith("data."):
        obj["data"][member[5:]] = value
    else:
        obj[member] = value
    assert parse_record_fast(obj) is None
    _check_against_checked_parse(obj)


def test_refused_character_classes_are_exactly_cc_and_cs() -> None:
    single_line, multiline = records_module._SINGLE_LINE_REFUSED, records_module._MULTILINE_REFUSED
    for code_point in range(0x110000):
        char = chr(code_point)
        refused = unicodedata.category(char) in ("Cc", "Cs")
        assert (single_line(char) is not None) is refused, hex(code_point)
        assert (multiline(char) is not None) is (refused and char not in "\t\n\r"), hex(code_point)


def test_date_cache_keeps_only_valid_dates() -> None:
    for text in ["2024-02-30", "20240305", "2024-W10-2", "1899-12-31", "2200-01-01", "2024-3-5"]:
        _rejects(record_json(issued_at=text), "issued_at", "")
        assert text not in records_module._DATES
    record = parse_record(record_json(issued_at="2024-02-29"))
    assert records_module._DATES["2024-02-29"] == record.issued_at == date(2024, 2, 29)


def test_canonical_bytes_of_a_record_built_in_code_are_written_on_first_use() -> None:
    parsed = parse_record(record_json("registration"))
    built = Record(
        region=parsed.region,
        uscc=parsed.uscc,
        record_type=parsed.record_type,
        record_id=parsed.record_id,
        issued_by=parsed.issued_by,
        issued_at=parsed.issued_at,
        data=parsed.data,
    )
    assert built == parsed and hash(built) == hash(parsed)
    assert built.canonical_bytes() == parsed.canonical_bytes() == rfc8785.dumps(parsed.to_json())
    assert built.canonical_bytes() is built.canonical_bytes()  # written once, then kept


def test_the_canonical_bytes_slot_is_not_a_field() -> None:
    record = parse_record(record_json())
    assert [f.name for f in dataclasses.fields(record)] == [
        "region",
        "uscc",
        "record_type",
        "record_id",
        "issued_by",
        "issued_at",
        "data",
    ]
    assert "_canonical" not in repr(record)
    restored = pickle.loads(pickle.dumps(record))
    assert restored == record and restored.canonical_bytes() == record.canonical_bytes()
    with pytest.raises(AttributeError):
        record.uscc = BEIJING_USCC  # type: ignore[misc]


def test_subclasses_of_record_parse_through_the_checked_parse() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class TaggedRecord(Record):
        pass

    record = TaggedRecord.from_json(record_json())
    assert type(record) is TaggedRecord


@pytest.mark.parametrize("penalty_kinds", [None, 5, "fine", {"fine": 1}])
def test_rejects_a_choice_list_that_is_not_a_list_with_a_record_error(penalty_kinds: Any) -> None:
    # The generated fast path once counted the list's quotes before checking it was a list,
    # and raised TypeError (len(None)) instead of letting the checked parse name the field.
    obj = _with_data(penalty_kinds=penalty_kinds)
    assert parse_record_fast(obj) is None
    with pytest.raises(RecordError) as caught:
        parse_record(obj)
    assert caught.value.field == "data.penalty_kinds"


def test_a_huge_hostile_value_gives_a_bounded_error_message() -> None:
    record = {
        "schema": "x" * 1_000_000,
        "region": 110000,
        "uscc": "91110108MA01ABCD1X",
        "record_type": "registration",
        "record_id": "r-1",
        "issued_by": "北京市市场监督管理局",
        "issued_at": "2024-01-02",
        "data": {},
    }
    with pytest.raises(RecordError) as caught:
        parse_record(record)
    assert caught.value.field == "schema"
    assert len(caught.value.reason) <= 500
    assert caught.value.reason.endswith("… (1,000,041 characters in all)")
    assert len(str(caught.value)) < 600
