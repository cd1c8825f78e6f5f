"""Tests for ledger.regions: GB/T 2260 provinces and division-code plausibility."""

from __future__ import annotations

import pytest

from ledger.regions import (
    BEIJING,
    HEBEI,
    PROVINCES,
    TIANJIN,
    is_division_code,
    province_of,
    region_name,
)


def test_lists_the_31_mainland_provincial_divisions_and_tw_hk_mo() -> None:
    mainland = [p for p in PROVINCES.values() if p.prefix < 70]
    assert len(mainland) == 31
    assert {71, 81, 82} <= set(PROVINCES)
    assert len({p.name_zh for p in PROVINCES.values()}) == len(PROVINCES)


def test_names_the_pilot_regions_in_chinese_and_english() -> None:
    assert (BEIJING, TIANJIN, HEBEI) == (110000, 120000, 130000)
    assert region_name(BEIJING) == "北京市"
    assert region_name(TIANJIN, lang="en") == "Tianjin"
    assert region_name(130102) == "河北省"
    assert PROVINCES[44].code == 440000


@pytest.mark.parametrize("code", [110000, 110108, 130102, 442000, 650000, 820000])
def test_accepts_six_digit_codes_under_a_known_province(code: int) -> None:
    assert is_division_code(code)
    assert province_of(code) is PROVINCES[code // 10000]


@pytest.mark.parametrize("code", [0, 99999, 100000, 190000, 660000, 1100000, -110000, True])
def test_rejects_codes_without_a_known_province_prefix(code: int) -> None:
    assert not is_division_code(code)
    assert province_of(code) is None


def test_rejects_non_integer_codes() -> None:
    assert not is_division_code("110000")  # type: ignore[arg-type]


def test_region_name_raises_for_unknown_code_and_language() -> None:
    with pytest.raises(KeyError):
        region_name(990000)
    with pytest.raises(ValueError):
        region_name(BEIJING, lang="fr")
