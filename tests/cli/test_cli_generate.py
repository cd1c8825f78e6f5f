"""``credit-ledger generate`` and node_api.datagen: valid, realistic, deterministic, streamed."""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from pathlib import Path

import pytest
from cli_harness import run_cli

import ledger
from node_api.datagen import (
    _DISTRICTS,
    RECORD_TYPE_WEIGHTS,
    enterprise,
    generate_items,
    split_count,
)

REGIONS = (110000, 120000, 130000)


def _org_code_ok(code: str) -> bool:
    """GB 11714 check character of a 9-character organisation code."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    check = 11 - sum(int(c, 36) * w for c, w in zip(code[:8], weights, strict=True)) % 11
    return code[8] == {10: "X", 11: "0"}.get(check, str(check))


def test_same_seed_gives_the_same_bytes_and_counts_are_prefixes(tmp_path: Path) -> None:
    first, again, longer, other = (tmp_path / n for n in ("a", "b", "c", "d"))
    for path, count, seed in ((first, 600, 7), (again, 600, 7), (longer, 1500, 7), (other, 600, 8)):
        result = run_cli(
            "generate", "--region", "120000", "-n", str(count), "--seed", str(seed),
            "--invalid-rate", "0.01", "-o", str(path),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert first.read_bytes() == again.read_bytes()
    assert longer.read_bytes().startswith(first.read_bytes())  # a larger count resumes
    assert other.read_bytes() != first.read_bytes()
    assert len(first.read_text(encoding="utf-8").splitlines()) == 600


@pytest.mark.parametrize("region", REGIONS)
def test_every_generated_record_passes_the_record_parser(region: int) -> None:
    codes = {d.code for districts in _DISTRICTS.values() for d in districts}
    own = {d.code for d in _DISTRICTS[region]}
    types: Counter[str] = Counter()
    ops: Counter[str] = Counter()
    cross_region = 0
    for item in generate_items(region, 20_000, seed=11):
        op = item.get("op", "create")
        ops[op] += 1
        record = item["record"] if "op" in item else item
        if op == "revoke":
            assert item["reason"] and item["version"] >= 2
            ledger.record_key(
                record["region"], record["uscc"], record["record_type"], record["record_id"]
            )
            continue
        parsed = ledger.parse_record(record)  # raises RecordError on anything invalid
        assert parsed.region == region
        assert parsed.to_json() == record
        uscc = parsed.uscc
        assert uscc[0] == "9" and uscc[1] in "123"
        assert int(uscc[2:8]) in codes, uscc
        assert _org_code_ok(uscc[8:17]), uscc
        cross_region += int(uscc[2:8]) not in own
        if op == "create":
            types[parsed.record_type.type_name] += 1
        else:
            assert item["version"] >= 2
    total = sum(types.values())
    assert set(types) == set(RECORD_TYPE_WEIGHTS)  # all nine types
    for name, weight in RECORD_TYPE_WEIGHTS.items():
        share = types[name] / total
        assert abs(share - weight / 100) < 0.02 + weight / 400, (name, share)
    assert 0.01 < ops["correct"] / 20_000 < 0.03
    assert 0.02 < ops["revoke"] / 20_000 < 0.04
    assert 0.02 < cross_region / 20_000 < 0.08  # other regions' enterprises


def test_revocations_are_credit_repair_of_listings_and_changes_are_versioned() -> None:
    seen: dict[str, int] = {}
    revoked_types: Counter[str] = Counter()
    for item in generate_items(110000, 20_000, seed=3):
        record = item.get("record", item) if "op" in item else item
        record_key = ledger.record_key_of(record).hex()
        if "op" not in item:
            seen.setdefault(record_key, 1)
            continue
        assert record_key in seen, "a change comes after the record it changes"
        assert item["version"] == seen[record_key] + 1, "versions count up without gaps"
        seen[record_key] = item["version"]
        if item["op"] == "revoke":
            revoked_types[record["record_type"]] += 1
            seen[record_key] = 10**6  # nothing changes a revoked record again
    assert revoked_types["business_abnormality"] > revoked_types["red_list"] > 0
    assert "信用修复" in json.dumps(
        [i for i in generate_items(110000, 3000, seed=3) if i.get("op") == "revoke"],
        ensure_ascii=False,
    )


def test_invalid_rows_are_the_kind_an_importer_must_reject() -> None:
    rejected = 0
    for item in generate_items(130000, 5000, seed=5, invalid_rate=0.05):
        if "op" in item:
            continue
        try:
            record = ledger.parse_record(item)
        except ledger.RecordError:
            rejected += 1
            continue
        rejected += record.region != 130000
    assert 150 < rejected < 350


def test_streams_any_count_in_constant_time_per_item() -> None:
    started = time.monotonic()
    stream = generate_items(110000, 10_000_000, seed=1)
    first = [next(stream) for _ in range(100)]
    assert time.monotonic() - started < 5  # nothing is built up front
    assert first == list(generate_items(110000, 100, seed=1))


def test_enterprises_are_pure_functions_of_seed_region_and_index() -> None:
    a = enterprise(9, 130000, 42)
    assert a == enterprise(9, 130000, 42)
    assert a.uscc[2:4] == "13" and ledger.validate_uscc(a.uscc)
    assert a.name and a.address.startswith(a.district.city)


def test_csv_output_has_the_import_columns(tmp_path: Path) -> None:
    result = run_cli("generate", "--region", "110000", "-n", "200", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 200
    for row in rows:
        assert row["op"] in ("create", "correct", "revoke")
        if row["op"] != "revoke":
            assert isinstance(json.loads(row["data"]), dict)


def test_several_regions_split_the_count_into_one_file_each(tmp_path: Path) -> None:
    result = run_cli("generate", "-n", "1000", "--seed", "2", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    counts = split_count(1000)
    assert sum(counts.values()) == 1000
    for region in REGIONS:
        lines = (tmp_path / f"region-{region}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == counts[region]


@pytest.mark.parametrize("count", ["9", "10000001"])
def test_count_outside_10_to_10_million_is_a_usage_error(count: str) -> None:
    result = run_cli("generate", "-n", count, "--region", "110000")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
