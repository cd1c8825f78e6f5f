"""The benchmark suite still runs end to end at minimal sizes (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.chain, pytest.mark.integration, pytest.mark.timeout(300)]


def test_bench_quick_run_writes_report_chart_and_results(tmp_path: Path) -> None:
    report, chart, results = tmp_path / "report.md", tmp_path / "chart.png", tmp_path / "r.json"
    subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--batch-sizes", "1,16",
         "--scale-records", "3000", "--work-dir", str(tmp_path / "work"),
         "--report", str(report), "--chart", str(chart), "--json", str(results)],
        cwd=REPO, check=True, timeout=280, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    figures = json.loads(results.read_text())
    assert [r["batch_size"] for r in figures["credit_ledger"]] == [1, 16]
    # Batching is the point: 16 records per transaction must cost less gas per record.
    assert figures["credit_ledger"][1]["gas_per_record"] < figures["naive"]["gas_per_record"]
    assert figures["integrity"]["counts"]["verified"] == figures["integrity"]["records"] > 0
    assert figures["offline"]["disclosures"] > 0
    text = report.read_text(encoding="utf-8")
    for heading in ("## Targets", "## Scale run", "## Integrity check", "## API latency"):
        assert heading in text
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
