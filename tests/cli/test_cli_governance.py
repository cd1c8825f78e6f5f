"""`credit-ledger governance`: propose, approve and list against a real anvil consortium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_harness import cli_env, run_cli

from node_api.testing import LocalConsortium, start_local_consortium

pytestmark = [pytest.mark.chain]

BEIJING, TIANJIN = 110000, 120000
AUDITOR = "0x" + "a1" * 20


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    """A consortium of its own: these tests change its governance state."""
    consortium = start_local_consortium(tmp_path_factory.mktemp("governance-chain"))
    yield consortium
    consortium.stop()


def _governance(chain: LocalConsortium, *args: str, signer: int | None = None) -> tuple[int, str]:
    extra = {} if signer is None else {"CREDIT_LEDGER_SIGNER_KEY": chain.signer_key(signer)}
    result = run_cli(
        "governance",
        *args,
        "--rpc-url",
        chain.rpc_url,
        "--deployment-file",
        str(chain.deployment_file),
        env=cli_env(**extra),
    )
    return result.returncode, result.stdout + result.stderr


def _proposals(chain: LocalConsortium) -> list[dict[str, object]]:
    code, output = _governance(chain, "list", "--json")
    assert code == 0, output
    proposals: list[dict[str, object]] = json.loads(output)["proposals"]
    return proposals


def test_a_proposal_needs_a_signer_key_and_sends_nothing_without_one(
    chain: LocalConsortium,
) -> None:
    before = _proposals(chain)
    code, output = _governance(chain, "propose", "add-auditor", "--account", AUDITOR)
    assert code != 0
    assert "a signer key is needed" in output
    assert _proposals(chain) == before


def test_a_proposal_executes_once_a_second_region_approves(chain: LocalConsortium) -> None:
    code, output = _governance(
        chain, "propose", "add-auditor", "--account", AUDITOR, signer=BEIJING
    )
    assert code == 0, output
    assert "1 approval(s), waiting for more regions" in output
    proposal_id = output.split("#", 1)[1].split(":", 1)[0]

    code, output = _governance(chain, "approve", proposal_id, signer=TIANJIN)
    assert code == 0, output
    assert f"proposal #{proposal_id}: 2 approval(s), executed" in output

    code, output = _governance(chain, "list", "--json")
    assert code == 0, output
    info = json.loads(output)
    assert [a.lower() for a in info["auditors"]] == [AUDITOR]
    (proposal,) = [p for p in info["proposals"] if str(p["id"]) == proposal_id]
    assert proposal["kind"] == "add-auditor" and proposal["state"] == "executed"


def test_an_incomplete_proposal_is_a_usage_error(chain: LocalConsortium) -> None:
    code, output = _governance(chain, "propose", "add-signer", "--region", "120000", signer=BEIJING)
    assert code != 0
    assert "add-signer needs --account" in output


def test_a_deployment_file_that_does_not_exist_is_a_clear_error(
    chain: LocalConsortium, tmp_path: Path
) -> None:
    result = run_cli(
        "governance", "list", "--rpc-url", chain.rpc_url,
        "--deployment-file", str(tmp_path / "missing.json"),
    )  # fmt: skip
    assert result.returncode != 0
    assert "missing.json" in result.stdout + result.stderr
