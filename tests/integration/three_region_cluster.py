"""Real processes for the multi-region tests: anvil, contracts, and three uvicorn node servers.

Each node is ``python -m uvicorn node_api.main:app`` configured only through
``CREDIT_LEDGER_*`` environment variables, with its own database (a SQLite file, or a fresh
PostgreSQL database created for the run and dropped afterwards), signer key, region, API
keys and public URL, which it registers on chain itself.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from ledger.chain.localnode import free_port
from node_api import testing
from node_api.client import MemberAuth
from node_api.testing import LocalConsortium, start_local_consortium

BEIJING, TIANJIN, HEBEI = 110000, 120000, 130000
REGIONS = (BEIJING, TIANJIN, HEBEI)
PG_ADMIN_URL = os.environ.get(
    "CREDIT_LEDGER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def api_key(role: str, region: int) -> str:
    """The API key of ``role`` at ``region``'s node in these tests."""
    return f"{role}-{region}-" + "x" * 32


class NodeProcess(testing.NodeProcess):
    """One node server process of ``region`` (``node.log`` in its directory)."""

    stop_timeout = 15.0

    def __init__(
        self, chain: LocalConsortium, region: int, directory: Path, db_url: str | None
    ) -> None:
        self.region = region
        self.signer_key = chain.signer_key(region)
        port = free_port()
        settings = {
            "operator_keys": api_key("operator", region),
            "verifier_keys": api_key("verifier", region),
            "auditor_keys": api_key("auditor", region),
            "public_url": f"http://127.0.0.1:{port}",
            "peer_timeout_seconds": "3",
            "batch_size": "4096",
            "batch_max_age_seconds": "3600",
            "signer_cache_seconds": "0",
            "log_level": "INFO",
        }
        if db_url:
            settings["database_url"] = db_url
        env = testing.node_environment(chain, directory, region, **settings)
        # The three nodes start at once; _wait_ready waits for all of them.
        super().__init__(env, directory / "node.log", port=port, wait=False)

    def client(
        self, role: str = "operator", purpose: str | None = "integration test"
    ) -> httpx.Client:
        """HTTP client with ``role``'s API key."""
        headers = {"Authorization": f"Bearer {api_key(role, self.region)}"}
        if purpose:
            headers["X-Purpose"] = purpose
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def member_client(self, caller: NodeProcess, purpose: str = "exchange") -> httpx.Client:
        """HTTP client signing as ``caller``'s node (member:<region>)."""
        return httpx.Client(
            base_url=self.url,
            auth=MemberAuth(Account.from_key(caller.signer_key), caller.region, self.region),
            headers={"X-Purpose": purpose},
            timeout=60,
        )


@dataclass
class ThreeRegions:
    """The chain and the three node processes."""

    chain: LocalConsortium
    nodes: dict[int, NodeProcess]

    def endorsers(self, region: int, seq: int) -> list[int]:
        """``endorsersOf`` read from the chain."""
        return list(self.chain.anchor().endorsers_of(region, seq))


def _wait_ready(cluster: ThreeRegions, timeout: float = 150) -> None:
    """Every node healthy and every endpoint registered on chain.

    The timeout is generous: three processes importing web3 at once take about 10 s on an
    idle machine and close to a minute on a busy two-CPU one.
    """
    deadline = time.monotonic() + timeout
    consortium = cluster.chain.consortium()
    for node in cluster.nodes.values():
        while True:
            if node.process.poll() is not None:
                raise RuntimeError(f"node {node.region} exited:\n{node.tail()}")
            try:
                health = httpx.get(f"{node.url}/v1/health", timeout=2)
                if health.status_code == 200 and health.json()["status"] == "ok":
                    # Another region's node on this port means this one could not bind it.
                    region = health.json()["region"]
                    if region != node.region:
                        raise RuntimeError(f"region {region} answers at {node.url}")
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {node.region} not healthy:\n{node.tail()}")
            time.sleep(0.1)
        while consortium.endpoint_of(node.region) != node.url:
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {node.region} did not register:\n{node.tail()}")
            time.sleep(0.1)


@contextmanager
def postgres_databases(count: int) -> Iterator[list[str]]:
    """``count`` fresh PostgreSQL databases (URLs), dropped on exit."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = [f"cl_it_{secrets.token_hex(6)}" for _ in range(count)]
    try:
        with admin.connect() as conn:
            for name in names:
                # template0 accepts no connections, so CREATE DATABASE cannot fail with
                # "source database is being accessed by other users" as template1 can
                # while other suites use the server.
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        base = make_url(PG_ADMIN_URL)
        yield [base.set(database=name).render_as_string(hide_password=False) for name in names]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_available() -> str | None:
    """None if PostgreSQL answers at PG_ADMIN_URL, else why not."""
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:  # any failure means: skip the PostgreSQL variant
        return str(e)
    finally:
        engine.dispose()
    return None


@contextmanager
def three_regions(directory: Path, db_urls: list[str] | None = None) -> Iterator[ThreeRegions]:
    """Start anvil, deploy, start the three nodes; stop everything on exit."""
    chain = start_local_consortium(directory)
    nodes: dict[int, NodeProcess] = {}
    try:
        for position, region in enumerate(REGIONS):
            db_url = db_urls[position] if db_urls else None
            nodes[region] = NodeProcess(chain, region, directory / f"node-{region}", db_url)
        cluster = ThreeRegions(chain, nodes)
        _wait_ready(cluster)
        yield cluster
    finally:
        for node in nodes.values():
            node.stop()
        chain.stop()


def json_of(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body, asserting the status (with the body in the message)."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:2000]}"
    return response.json()
