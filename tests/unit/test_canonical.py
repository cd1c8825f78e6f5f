"""Tests for ledger.canonical: RFC 8785 output, byte-identical to the reference package."""

from __future__ import annotations

from datetime import date
from enum import IntEnum, StrEnum
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from ledger_samples import PROPERTY, json_values, record_json, record_jsons

from ledger.canonical import MAX_DEPTH, canonical_json, canonicalize
from ledger.errors import RecordError
from ledger.records import parse_record

# Every test here runs on the C speedups and again on pure Python (see conftest.py).
pytestmark = pytest.mark.usefixtures("core_path")


def _rejects(value: object, field: str, reason_part: str) -> None:
    with pytest.raises(RecordError) as caught:
        canonical_json(value)
    assert caught.value.field == field
    assert reason_part in caught.value.reason


def test_sorts_keys_by_utf16_code_units_as_in_rfc8785_section_3_2_3() -> None:
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert canonical_json(value) == expected.encode("utf-8")


def test_escapes_strings_as_in_rfc8785_section_3_2_2_2() -> None:
    value = "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/"
    assert canonical_json(value) == '"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"'.encode()


def test_does_not_escape_line_separators_or_non_ascii() -> None:
    assert canonical_json({"a": "\u2028\u2029é😀"}) == '{"a":"\u2028\u2029é😀"}'.encode()


def test_serialises_literals_and_extreme_safe_integers() -> None:
    value = {"t": True, "f": False, "n": None, "max": 2**53 - 1, "min": -(2**53) + 1, "z": 0}
    assert canonical_json(value) == (
        b'{"f":false,"max":9007199254740991,"min":-9007199254740991,"n":null,"t":true,"z":0}'
    )


def test_canonicalize_accepts_a_record_or_its_json() -> None:
    obj = record_json()
    assert canonicalize(obj) == canonicalize(parse_record(obj)) == rfc8785.dumps(obj)


@pytest.mark.parametrize("value", [[1, 2], "text", 5, None])
def test_canonicalize_rejects_non_objects(value: object) -> None:
    with pytest.raises(RecordError) as caught:
        canonicalize(value)  # type: ignore[arg-type]
    assert caught.value.field == "record"


def test_rejects_float_naming_its_path() -> None:
    _rejects({"data": {"amounts": [1, 2.5]}}, "data.amounts[1]", "floats are not allowed")


def test_rejects_float_even_if_integral() -> None:
    _rejects({"amount_fen": 100.0}, "amount_fen", "floats are not allowed")


@pytest.mark.parametrize("number", [2**53, -(2**53), 10**30])
def test_rejects_integers_beyond_2_pow_53(number: int) -> None:
    _rejects({"n": number}, "n", "outside ±(2^53 − 1)")


def test_rejects_lone_surrogates_in_strings_and_keys() -> None:
    _rejects({"a": ["ok", "\ud800"]}, "a[1]", "lone surrogate")
    _rejects({"\udc00": 1}, "\udc00", "object key contains a lone surrogate")


def test_rejects_non_string_keys() -> None:
    _rejects({1: "one"}, "record", "object key 1 is not a string")


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", date(2024, 1, 1), object()])
def test_rejects_non_json_types(value: object) -> None:
    _rejects({"v": value}, "v", "is not a JSON type")


def test_rejects_nesting_deeper_than_the_limit() -> None:
    value: Any = "leaf"
    for _ in range(MAX_DEPTH + 1):
        value = [value]
    with pytest.raises(RecordError, match="nested deeper"):
        canonical_json(value)


def test_rejects_cyclic_structures_without_recursion_error() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(RecordError, match="nested deeper"):
        canonical_json(cyclic)


def test_serialises_subclasses_and_tuples_like_the_reference() -> None:
    class Colour(StrEnum):
        RED = "red"

    class Level(IntEnum):
        HIGH = 3

    value = {"colour": Colour.RED, "level": Level.HIGH, "pair": (1, "2")}
    assert (
        canonical_json(value)
        == rfc8785.dumps(value)
        == b'{"colour":"red","level":3,"pair":[1,"2"]}'
    )


@PROPERTY
@given(json_values)
def test_matches_rfc8785_reference_on_generated_json(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@PROPERTY
@given(record_jsons())
def test_record_canonical_bytes_match_rfc8785_reference(obj: dict[str, Any]) -> None:
    expected = rfc8785.dumps(obj)
    assert canonicalize(obj) == expected
    assert parse_record(obj).canonical_bytes() == expected
