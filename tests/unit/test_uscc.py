"""Tests for ledger.uscc: GB 32100-2015 validation exactly as DESIGN §3 states it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ledger_samples import PROPERTY, usccs

from ledger.errors import RecordError
from ledger.uscc import (
    USCC_CHARSET,
    is_valid_uscc,
    make_uscc,
    uscc_check_char,
    validate_uscc,
)

# Published codes (GB 32100-2015's own example and well-known enterprises).
KNOWN_VALID = ["91350100M000100Y43", "91110000600037341L", "91440300708461136T"]


def _rejection(code: object) -> RecordError:
    with pytest.raises(RecordError) as caught:
        validate_uscc(code)
    assert caught.value.field == "uscc"
    return caught.value


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_accepts_published_codes(code: str) -> None:
    assert validate_uscc(code) == code


def test_weights_are_powers_of_three_mod_31() -> None:
    from ledger.uscc import _WEIGHTS

    assert _WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    assert _WEIGHTS == tuple(pow(3, i, 31) for i in range(17))


def test_check_char_follows_the_weighted_sum_formula() -> None:
    first17 = "91350100M000100Y4"
    total = sum(
        USCC_CHARSET.index(c) * w
        for c, w in zip(first17, [pow(3, i, 31) for i in range(17)], strict=True)
    )
    assert uscc_check_char(first17) == USCC_CHARSET[(31 - total % 31) % 31] == "3"


def test_check_char_zero_maps_to_character_zero() -> None:
    # (31 − 0) mod 31 = 0: a body whose weighted sum is a multiple of 31 ends in "0".
    assert uscc_check_char("0" * 17) == "0"


def test_rejects_lowercase_uscc_instead_of_upper_casing_it() -> None:
    error = _rejection("91350100m000100y43")
    assert "lower case" in error.reason
    assert "position 9" in error.reason


@pytest.mark.parametrize("letter", ["I", "O", "S", "V", "Z"])
def test_rejects_letters_outside_the_charset(letter: str) -> None:
    error = _rejection("91350100M000100" + letter + "43")
    assert f"{letter!r} at position 16" in error.reason


@pytest.mark.parametrize("code", ["", "91350100M000100Y4", "91350100M000100Y433"])
def test_rejects_wrong_length(code: str) -> None:
    assert "18 characters" in _rejection(code).reason


def test_rejects_wrong_check_character() -> None:
    error = _rejection("91350100M000100Y44")
    assert error.reason == "check character is '4', expected '3'"


@pytest.mark.parametrize("division", ["ABCDEF", "99000Y", "660000", "000000"])
def test_rejects_characters_3_to_8_that_are_no_division_code(division: str) -> None:
    first17 = "91" + division + "M000100Y4"
    error = _rejection(first17 + uscc_check_char(first17))
    assert "are not a division code" in error.reason


def test_accepts_the_national_registration_division_100000() -> None:
    assert validate_uscc(make_uscc(100000, "100003962"))


@pytest.mark.parametrize("value", [None, 91350100, b"91350100M000100Y43", ["9"]])
def test_rejects_non_string_values(value: object) -> None:
    assert _rejection(value).reason == "must be a string"


def test_names_the_field_it_was_given() -> None:
    with pytest.raises(RecordError) as caught:
        validate_uscc("x", field="data.uscc")
    assert caught.value.field == "data.uscc"


def test_check_char_helper_rejects_bad_bodies() -> None:
    with pytest.raises(RecordError, match="17 characters"):
        uscc_check_char("9135")
    with pytest.raises(RecordError, match="lower case"):
        uscc_check_char("91350100m000100Y4")


def test_make_uscc_assembles_department_category_division_body_and_check() -> None:
    code = make_uscc(110108, "MA01ABCD1", department="5", category="2")
    assert code[:17] == "52110108MA01ABCD1"
    assert validate_uscc(code) == code


@PROPERTY
@given(usccs())
def test_generated_codes_validate(code: str) -> None:
    assert validate_uscc(code) == code


@PROPERTY
@given(usccs(), st.integers(0, 17), st.sampled_from(USCC_CHARSET))
def test_any_single_character_substitution_is_rejected(code: str, position: int, char: str) -> None:
    # Weights are non-zero mod the prime 31, so every single substitution changes the sum.
    if code[position] == char:
        return
    mutated = code[:position] + char + code[position + 1 :]
    with pytest.raises(RecordError):
        validate_uscc(mutated)


@PROPERTY
@given(usccs(), st.integers(0, 17), st.sampled_from([*USCC_CHARSET, "a", "I", "O", " ", "٣"]))
def test_is_valid_uscc_answers_as_validate_uscc(code: str, position: int, char: str) -> None:
    for candidate in (code, code[:position] + char + code[position + 1 :], code[:position]):
        try:
            validate_uscc(candidate)
        except RecordError:
            assert not is_valid_uscc(candidate), candidate
        else:
            assert is_valid_uscc(candidate), candidate


@pytest.mark.parametrize("code", [None, 91110000600037341, b"91110000600037341L", ["x"]])
def test_is_valid_uscc_refuses_non_strings(code: object) -> None:
    assert not is_valid_uscc(code)
