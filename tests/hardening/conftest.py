"""Fixtures of the hardening suites: one anvil consortium per session for the suites that
only add to it; the fault suites start chains of their own. The terminal summary lists the
figures every suite reported (``hardening_env.report_figures``) and writes them as JSON to
``<pytest basetemp>/hardening-figures.json``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import hardening_env
import pytest

from node_api.testing import LocalConsortium, start_local_consortium

# One line per suite that the closing note can quote; the full figures follow as JSON.
_HEADLINES = {
    "fuzz_asgi": "{requests} requests fuzzed over {operations} operations (min {min_per_operation}"
    " per operation, {generated_cases} generated cases), 5xx: {server_errors}, schema or"
    " check failures: {failing_checks}",
    "fuzz_uvicorn": "{requests} requests fuzzed through uvicorn over {operations} operations,"
    " 5xx: {server_errors}, schema or check failures: {failing_checks}",
    "hostile_http": "{attacks} hostile requests, answered {statuses} (None: connection closed),"
    " plus {stalled_bodies} stalled bodies (408 or closed) and {trickling_clients} clients"
    " trickling headers; {bystander_requests} well-behaved requests served meanwhile;"
    " stored: {stored}",
    "authorization_matrix": "{cells} matrix cells checked ({routes} routes x {roles} roles),"
    " wrong: {wrong}",
    "faults": "{faults_injected} faults injected, records lost: {records_lost}",
    "sigkill_import": "{kills} SIGKILLs during a {records}-record import, records accepted:"
    " {accepted}, anchored exactly once: {versions}, lost: {records_lost}",
    "tamper_detection": "{total_cases} tamper cases tried, missed: {total_missed}",
    "slither": "findings by severity {by_severity}; High+Medium {high_medium}, triaged"
    " {triaged}, untriaged {untriaged}",
    "contract_properties": "{examples} random sequences, {steps} steps, {transactions}"
    " transactions, every outcome as the model predicted ({refused_as_predicted} refused;"
    " {non_signer_writes_refused} non-signer writes refused, {former_signer_writes_refused} by"
    " removed signers; {regions_removed} regions and {signers_removed} signers removed,"
    " {batches_anchored} batches anchored, {heads_moved} heads moved)",
}


@pytest.fixture(scope="session")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    """Anvil with Consortium (110000/120000/130000, threshold 2) and CreditAnchor."""
    chain = start_local_consortium(tmp_path_factory.mktemp("hardening-chain"))
    yield chain
    chain.stop()


def _headline(entry: dict[str, Any]) -> str:
    template = _HEADLINES.get(entry["suite"])
    if template is None:
        return json.dumps(entry, sort_keys=True)
    try:
        return template.format_map(entry)
    except (KeyError, ValueError):
        return json.dumps(entry, sort_keys=True)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The hardening figures of this run, one headline per suite, then the full figures."""
    reported = hardening_env.REPORTED
    if not reported:
        return
    terminalreporter.section("hardening figures")
    for entry in reported:
        terminalreporter.write_line(f"{entry['suite']}: {_headline(entry)}")
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None:
        target = factory.getbasetemp() / "hardening-figures.json"
        target.write_text(json.dumps(reported, indent=2, sort_keys=True), encoding="utf-8")
        terminalreporter.write_line(f"full figures: {target}")
    for entry in reported:
        terminalreporter.write_line("HARDENING " + json.dumps(entry, sort_keys=True))
