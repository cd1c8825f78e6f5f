"""Deployment records: save/load round trip and the on-chain code check."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest
from contract_helpers import BJ, FOUNDER_NAMES, FOUNDERS, HB, TJ

from ledger.chain import ChainClient, Deployment, deploy_anchor, deploy_consortium, deploy_contracts
from ledger.chain.compile import artifact_hash
from ledger.errors import ChainError

pytestmark = pytest.mark.chain


def _deploy(clients: Sequence[ChainClient]) -> Deployment:
    return deploy_contracts(
        clients[BJ], FOUNDERS, FOUNDER_NAMES, [clients[i].address for i in (BJ, TJ, HB)], 2
    )


def test_deployment_round_trips_through_a_file(
    clients: Sequence[ChainClient], tmp_path: Path
) -> None:
    deployment = _deploy(clients)
    client = clients[BJ]
    assert deployment.chain_id == client.chain_id
    assert deployment.deployer == client.address
    assert deployment.artifact_hashes == {
        "Consortium": artifact_hash("Consortium"),
        "CreditAnchor": artifact_hash("CreditAnchor"),
    }
    path = tmp_path / "deployment.json"
    deployment.save(path)
    assert Deployment.load(path) == deployment
    loaded = Deployment.load(path)
    assert loaded.anchor_client(client).consortium_address() == deployment.consortium
    assert loaded.consortium_client(client).active_regions() == sorted(FOUNDERS)
    assert loaded.anchor_client(client).deployed_block == deployment.deployed_block


def test_verify_on_chain_accepts_the_deployed_code(clients: Sequence[ChainClient]) -> None:
    _deploy(clients).verify_on_chain(clients[TJ])


def test_verify_on_chain_rejects_wrong_chain_and_swapped_addresses(
    clients: Sequence[ChainClient],
) -> None:
    deployment = _deploy(clients)
    wrong_chain = dataclasses.replace(deployment, chain_id=deployment.chain_id + 1)
    with pytest.raises(ChainError, match="chain id"):
        wrong_chain.verify_on_chain(clients[BJ])
    swapped = dataclasses.replace(
        deployment, consortium=deployment.anchor, anchor=deployment.consortium
    )
    with pytest.raises(ChainError):
        swapped.verify_on_chain(clients[BJ])
    nothing = dataclasses.replace(deployment, consortium=clients[HB].address)
    with pytest.raises(ChainError, match="no code"):
        nothing.verify_on_chain(clients[BJ])


def test_verify_on_chain_rejects_anchor_bound_to_another_consortium(
    clients: Sequence[ChainClient],
) -> None:
    deployment = _deploy(clients)
    other = deploy_consortium(clients[BJ], [110000], ["Beijing"], [clients[BJ].address], 1)
    stray_anchor = deploy_anchor(clients[BJ], other.address)
    mixed = dataclasses.replace(deployment, anchor=stray_anchor.address)
    with pytest.raises(ChainError, match="not bound"):
        mixed.verify_on_chain(clients[BJ])


def test_verify_on_chain_rejects_changed_artifacts(clients: Sequence[ChainClient]) -> None:
    deployment = _deploy(clients)
    stale = dataclasses.replace(
        deployment, artifact_hashes={**deployment.artifact_hashes, "Consortium": "00" * 32}
    )
    with pytest.raises(ChainError, match="artifact Consortium"):
        stale.verify_on_chain(clients[BJ])


def test_invalid_deployment_file_is_a_chain_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"chain_id": 1}', encoding="utf-8")
    with pytest.raises(ChainError, match="invalid deployment"):
        Deployment.load(path)
    with pytest.raises(ChainError, match="cannot read"):
        Deployment.load(tmp_path / "missing.json")
