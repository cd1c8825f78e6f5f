"""Tests for ledger.records: the record envelope, typed payloads and every rejection path."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from ledger_samples import (
    BEIJING_USCC,
    PROPERTY,
    RECORD_TYPE_NAMES,
    SAMPLE_DATA,
    record_json,
    record_jsons,
)

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
    record_type_of,
)


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
