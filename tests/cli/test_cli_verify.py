"""``credit-ledger verify``: exit codes for valid, tampered, superseded, revoked, unanchored,
unreachable; receipts fetched with ``credit-ledger receipt``; no node asked to verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_harness import NodeServer, run_cli

import ledger
from node_api.testing import LocalConsortium, sample_record, sample_uscc

pytestmark = [pytest.mark.chain, pytest.mark.timeout(300)]

HEBEI = 130000


@pytest.fixture(scope="module")
def receipts(hebei_node: NodeServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Receipts and disclosures of a current, a superseded and a revoked version."""
    directory = tmp_path_factory.mktemp("receipts")
    uscc = sample_uscc(HEBEI)
    penalty = sample_record(HEBEI, uscc=uscc, record_type="administrative_penalty")
    listing = sample_record(HEBEI, uscc=uscc, record_type="business_abnormality")
    current = sample_record(HEBEI, uscc=uscc, record_type="credit_risk_class")
    first = directory / "first.jsonl"
    first.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (penalty, listing, current)),
        encoding="utf-8",
    )
    corrected = {**penalty, "data": {**penalty["data"], "amount_fen": 1_000_000}}
    changes = [
        {"op": "correct", "version": 2, "record": corrected},
        {"op": "revoke", "version": 2, "record": listing, "reason": "信用修复：已补报年度报告"},
    ]
    second = directory / "second.jsonl"
    second.write_text(
        "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in changes), encoding="utf-8"
    )
    for path in (first, second):
        result = run_cli("import", str(path), *hebei_node.args(), "--anchor", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["anchor"]["anchored"]
    keys = {
        name: ledger.record_key_of(record).hex()
        for name, record in (("penalty", penalty), ("listing", listing), ("current", current))
    }
    wanted = {
        "current": (keys["current"], 1, False),
        "superseded": (keys["penalty"], 1, False),
        "correction": (keys["penalty"], 2, False),
        "revoked": (keys["listing"], 1, False),
        "disclosure": (keys["current"], 1, True),
    }
    paths = {}
    for name, (record_key, version, disclose) in wanted.items():
        path = directory / f"{name}.json"
        role = "operator" if disclose else "verifier"
        args = [record_key, "--version", str(version), "-o", str(path)]
        result = run_cli("receipt", *args, *hebei_node.args(role), *(["--disclose"] * disclose))
        assert result.returncode == 0, result.stderr
        paths[name] = path
    return paths


def _verify(consortium: LocalConsortium, path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run_cli(
        "verify", str(path), "--rpc-url", consortium.rpc_url,
        "--deployment-file", str(consortium.deployment_file), "--json", *extra,
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else {}


def _altered(path: Path, change: Any) -> Path:
    document = json.loads(path.read_text())
    change(document)
    altered = path.with_name("altered-" + path.name)
    altered.write_text(json.dumps(document), encoding="utf-8")
    return altered


def test_valid_and_current_receipt_exits_0(
    consortium: LocalConsortium, receipts: dict[str, Path]
) -> None:
    for name in ("current", "disclosure"):
        code, verdict = _verify(consortium, receipts[name])
        assert (code, verdict["status"], verdict["current"]) == (0, "valid", True), name
        assert verdict["checked_steps"] == ([1, 2, 3, 4] if name == "disclosure" else [2, 3, 4])


def test_superseded_and_revoked_versions_have_their_own_exit_codes(
    consortium: LocalConsortium, receipts: dict[str, Path]
) -> None:
    code, verdict = _verify(consortium, receipts["superseded"])
    assert (code, verdict["status"], verdict["head_version"]) == (4, "superseded", 2)
    result = run_cli(
        "verify", str(receipts["revoked"]), "--rpc-url", consortium.rpc_url,
        "--deployment-file", str(consortium.deployment_file),
    )  # fmt: skip
    assert result.returncode == 5
    assert result.stdout.startswith("REVOKED: authentic, but version 2 revoked the record")


def test_tampered_receipt_and_disclosure_exit_3(
    consortium: LocalConsortium, receipts: dict[str, Path]
) -> None:
    def flip_commitment(receipt: dict[str, Any]) -> None:
        commitment = receipt["leaf"]["commitment"]
        receipt["leaf"]["commitment"] = ("0" if commitment[0] != "0" else "1") + commitment[1:]

    code, verdict = _verify(consortium, _altered(receipts["current"], flip_commitment))
    assert (code, verdict["status"], verdict["failed_step"]) == (3, "invalid", 2)

    def change_record(disclosure: dict[str, Any]) -> None:
        data = disclosure["record"]["data"]
        data["risk_class"] = "D" if data["risk_class"] != "D" else "A"

    code, verdict = _verify(consortium, _altered(receipts["disclosure"], change_record))
    assert (code, verdict["status"], verdict["step_name"]) == (3, "invalid", "record")

    not_json = receipts["current"].with_name("garbage.json")
    not_json.write_text("this is not a receipt")
    assert _verify(consortium, not_json)[0] == 3


def test_receipt_of_a_batch_not_on_chain_exits_6(
    consortium: LocalConsortium, receipts: dict[str, Path]
) -> None:
    def move_to_unknown_batch(receipt: dict[str, Any]) -> None:
        receipt["batch"]["seq"] = 999_999

    code, verdict = _verify(consortium, _altered(receipts["current"], move_to_unknown_batch))
    assert (code, verdict["status"]) == (6, "unanchored")


def test_unreachable_chain_exits_7_with_one_line(
    consortium: LocalConsortium, receipts: dict[str, Path]
) -> None:
    result = run_cli(
        "verify", str(receipts["current"]), "--rpc-url", "http://127.0.0.1:9",
        "--deployment-file", str(consortium.deployment_file),
    )  # fmt: skip
    assert result.returncode == 7
    assert result.stderr.startswith("error: cannot check against http://127.0.0.1:9")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_missing_receipt_file_is_an_error_not_a_verdict(
    consortium: LocalConsortium, tmp_path: Path
) -> None:
    result = run_cli("verify", str(tmp_path / "none.json"), "--rpc-url", consortium.rpc_url)
    assert result.returncode == 1 and result.stderr.startswith("error: cannot read receipt")
