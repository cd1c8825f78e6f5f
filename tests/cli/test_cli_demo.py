"""``credit-ledger demo --once`` (what ``make run DEMO_EXIT=1`` runs): the whole consortium
end to end with a small count, then again to show that a re-run resumes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_harness import cli_env, run_cli

from ledger.chain.localnode import free_port

pytestmark = [pytest.mark.integration, pytest.mark.chain, pytest.mark.timeout(600)]


def _run(local_dir: Path, ports: list[int]) -> str:
    result = run_cli(
        "demo", "--count", "300", "--seed", "7", "--local-dir", str(local_dir),
        "--chain-port", str(ports[0]), "--node-ports", ",".join(map(str, ports[1:])),
        env=cli_env(DEMO_EXIT="1"), timeout=540,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout


def _row(output: str, title: str) -> list[str]:
    """The cells of the first data row of the table after ``title``."""
    lines = output[output.index(title) :].splitlines()
    row = next(line for line in lines if line.startswith("│"))
    return [cell.strip() for cell in row.strip("│").split("│")]


def test_demo_runs_end_to_end_and_a_rerun_adds_nothing(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(4)]
    first = _run(tmp_path, ports)

    assert "deployed Consortium" in first
    for region, port in zip(("110000", "120000", "130000"), ports[1:], strict=True):
        assert f"{region}: http://127.0.0.1:{port}" in first
    # Bulk import with rejects, anchoring, exchange with endorsements.
    assert "rejected rows are listed with row, field and reason" in first
    assert re.search(r"Beijing batch 0: endorsed on chain by \[120000, 130000\]", first)
    # The tampered package: exactly one tampered disclosure, caught at step 1.
    tampered = _row(first, "the tampered package, verified by Hebei")
    assert tampered[4] == "1", tampered  # columns: who, verified, superseded, revoked, tampered
    assert "failed step 1 (record)" in first
    # Integrity check through the endpoint registered on chain: clean.
    clean = _row(first, "Tianjin checks Hebei")
    assert clean[4:8] == ["0", "0", "0", "0"], clean
    # Federated history from three regions, and third-party verification by exit code.
    assert "across regions" in first and "130000: ok" in first and "120000: ok" in first
    assert "→  valid (exit 0)" in first
    assert "operator key" in first and "demo complete" in first

    again = _run(tmp_path, ports)

    assert "reused Consortium" in again
    assert again.count("nothing new") == 3  # the import checkpoints skip every row
    assert "nothing pending" in again
    assert "already endorsed; skipped" in again
    # The same nodes, databases and keys: the history is the same.
    assert _row(again, "across regions") == _row(first, "across regions")
