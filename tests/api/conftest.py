"""Fixtures of the node API tests: one anvil consortium per session, a fresh node per test.

Every test node anchors for region 110000 on the shared chain; a fresh database starts at
the chain's nextSeq, and sample records carry random record ids, so tests never collide.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from node_harness import AUDITOR_KEY, OPERATOR_KEY, PG_ADMIN_URL, VERIFIER_KEY, Node
from sqlalchemy import create_engine, text

from node_api.config import Settings
from node_api.main import create_app
from node_api.testing import LocalConsortium, start_local_consortium


@pytest.fixture(scope="session")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    """Anvil with Consortium (110000/120000/130000, threshold 2) and CreditAnchor."""
    chain = start_local_consortium(tmp_path_factory.mktemp("chain"))
    yield chain
    chain.stop()


@pytest.fixture
def make_settings(tmp_path: Path, consortium: LocalConsortium) -> Callable[..., Settings]:
    """Settings of a test node in ``tmp_path``; keyword arguments override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "rpc_url": consortium.rpc_url,
            "deployment_file": consortium.deployment_file,
            "region": 110000,
            "data_dir": tmp_path / "node",
            "signer_key": consortium.signer_key(110000),
            "operator_keys": OPERATOR_KEY,
            "verifier_keys": VERIFIER_KEY,
            "auditor_keys": AUDITOR_KEY,
            "worker_mode": "off",
            "batch_size": 4096,
            "batch_max_age_seconds": 3600,
            "signer_cache_seconds": 0,
            "log_level": "WARNING",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def start_node() -> Iterator[Callable[[Settings], Node]]:
    """Start node apps (lifespan included); all are shut down at the end of the test."""
    clients: list[TestClient] = []

    def start(settings: Settings) -> Node:
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return Node(client)

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def node(make_settings: Callable[..., Settings], start_node: Callable[[Settings], Node]) -> Node:
    """A fresh node on SQLite, anchoring on demand (POST /v1/anchor)."""
    return start_node(make_settings())


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[Callable[[], str]]:
    """Factory of PostgreSQL URLs, each bound to a new schema dropped after the session."""
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:  # no server: the postgres-marked tests cannot run here
        engine.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {e}")
    schemas: list[str] = []

    def make() -> str:
        schema = f"cl_test_{secrets.token_hex(6)}"
        with engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        return f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"

    yield make
    with engine.connect() as conn:
        for schema in schemas:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()
