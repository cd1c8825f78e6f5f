"""Fixtures of the contract tests: every test runs once on anvil and once on ganache."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from contract_helpers import Env, deploy_env

from ledger.chain import ChainClient
from ledger.chain.localnode import LocalNode


@pytest.fixture(scope="session", params=["anvil", "ganache"])
def chain(request: pytest.FixtureRequest) -> Iterator[LocalNode]:
    """A local chain process shared by the session (one per kind)."""
    with LocalNode(request.param) as node:
        yield node


@pytest.fixture(scope="session")
def clients(chain: LocalNode) -> Iterator[Sequence[ChainClient]]:
    """One signing client per funded dev account, reused so nonces stay cached."""
    made = [ChainClient(chain.rpc_url, key, chain_id=chain.chain_id) for key in chain.dev_keys]
    yield made
    for client in made:
        client.close()


@pytest.fixture
def env(chain: LocalNode, clients: Sequence[ChainClient]) -> Env:
    """Freshly deployed contracts per test: deploying costs two transactions."""
    return deploy_env(chain, clients)
