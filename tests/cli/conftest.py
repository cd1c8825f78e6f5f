"""Fixtures of the CLI tests: one anvil consortium per session, node processes on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_harness import NodeServer, start_node

from node_api.testing import LocalConsortium, start_local_consortium


@pytest.fixture(scope="session")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    """Anvil with Consortium (110000/120000/130000, threshold 2) and CreditAnchor."""
    chain = start_local_consortium(tmp_path_factory.mktemp("cli-chain"))
    yield chain
    chain.stop()


@pytest.fixture(scope="session")
def hebei_node(
    consortium: LocalConsortium, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeServer]:
    """One Hebei node (130000) shared by the tests that only need some node."""
    node = start_node(consortium, 130000, tmp_path_factory.mktemp("hebei-node"))
    yield node
    node.stop()


@pytest.fixture
def node_factory(
    consortium: LocalConsortium, tmp_path: Path
) -> Iterator[Callable[..., NodeServer]]:
    """Start ``credit-ledger node serve`` processes; all are stopped after the test."""
    started: list[NodeServer] = []

    def start(region: int, name: str = "node", **settings: str) -> NodeServer:
        node = start_node(consortium, region, tmp_path / f"{name}-{region}", **settings)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()
