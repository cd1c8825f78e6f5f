"""Static analysis of the contracts: slither, through the project's own solc.

No High or Medium finding may be left unexplained: each must be listed, with its reason,
in ``contracts/SLITHER-TRIAGE.md``; a listed finding slither no longer reports must be
removed from the list (the triage stays true).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hardening_env import REPO, report_figures

from ledger.chain.compile import resolve_solc

TRIAGE = REPO / "contracts" / "SLITHER-TRIAGE.md"
GATED = ("High", "Medium")


def _triaged() -> set[str]:
    text = TRIAGE.read_text(encoding="utf-8")
    block = text.split("<!-- triage:begin -->", 1)[1].split("<!-- triage:end -->", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", block, flags=re.MULTILINE))


def _key(result: dict[str, Any]) -> str:
    element = result["elements"][0] if result["elements"] else {}
    parent = element.get("type_specific_fields", {}).get("parent", {}).get("name")
    name = element.get("name", "?")
    return f"{result['check']} {parent}.{name}" if parent else f"{result['check']} {name}"


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    output = tmp_path_factory.mktemp("slither") / "slither.json"
    command = [
        sys.executable, "-m", "slither", "contracts/",
        "--solc", str(resolve_solc()),
        "--solc-standard-json",
        "--solc-remaps", "@openzeppelin/=node_modules/@openzeppelin/",
        "--filter-paths", "node_modules",
        "--json", str(output),
    ]  # fmt: skip
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert output.is_file(), f"slither produced no report:\n{run.stdout}\n{run.stderr}"
    report = json.loads(Path(output).read_text())
    assert report["success"], report.get("error")
    detectors: list[dict[str, Any]] = report["results"].get("detectors", [])
    return detectors


def test_slither_runs_on_every_contract(findings: list[dict[str, Any]]) -> None:
    # A compile that silently dropped a contract would make "no findings" meaningless.
    files = {
        element.get("source_mapping", {}).get("filename_relative", "")
        for result in findings
        for element in result["elements"]
    }
    assert any(f.endswith("Consortium.sol") for f in files)
    assert any(f.endswith("CreditAnchor.sol") for f in files)


def test_every_high_and_medium_finding_is_triaged(findings: list[dict[str, Any]]) -> None:
    severities = Counter(result["impact"] for result in findings)
    gated = {_key(result): result for result in findings if result["impact"] in GATED}
    triaged = _triaged()
    report_figures(
        "slither",
        {
            "by_severity": dict(severities),
            "high_medium": len(gated),
            "triaged": len(triaged & gated.keys()),
            "untriaged": len(gated.keys() - triaged),
        },
    )
    untriaged = {key: gated[key]["description"] for key in gated.keys() - triaged}
    assert not untriaged, "explain or fix in contracts/SLITHER-TRIAGE.md:\n" + "\n".join(
        f"{key}: {text}" for key, text in sorted(untriaged.items())
    )
    stale = triaged - gated.keys()
    assert not stale, f"slither no longer reports these; remove them from the triage: {stale}"
