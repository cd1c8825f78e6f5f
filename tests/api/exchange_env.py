"""A three-region cluster for the exchange, integrity and federation tests, with helpers.

The nodes run in this process but serve real HTTP (uvicorn in threads), because integrity
checks and federated history make the nodes call each other at the endpoints registered
on chain. The cluster has its own anvil so that batch sequence numbers start at 0.
Each test module wraps ``run_cluster`` in its own module-scoped ``cluster`` fixture (no
conftest of ours here: the directory's conftest belongs to the core node tests).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account import Account

import ledger
from ledger.chain.localnode import dev_keys, free_port
from node_api.client import MemberAuth
from node_api.config import Settings
from node_api.exchange import ExchangeManifest, trailer_line
from node_api.main import create_app
from node_api.services import Services
from node_api.testing import LocalConsortium, sample_record, sample_uscc, start_local_consortium

BEIJING, TIANJIN, HEBEI = 110000, 120000, 130000
REGIONS = (BEIJING, TIANJIN, HEBEI)
UNREGISTERED_KEY = dev_keys()[7]  # funded on anvil, in no Consortium role


def api_key(role: str, region: int) -> str:
    """The test API key of ``role`` at ``region``'s node."""
    return f"{role}-{region}-" + "k" * 32


class _ServerThread:
    """uvicorn serving one app on a loopback port from a daemon thread."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the node server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@dataclass
class RegionNode:
    """One region's node: its URL, app, signer key and API keys."""

    region: int
    url: str
    app: Any
    signer_key: str
    server: _ServerThread

    @property
    def services(self) -> Services:
        """The running node's services."""
        services: Services = self.app.state.services
        return services

    def client(self, role: str = "operator", *, purpose: str | None = "test") -> httpx.Client:
        """An HTTP client authenticated with ``role``'s API key."""
        headers = {"Authorization": f"Bearer {api_key(role, self.region)}"}
        if purpose:
            headers["X-Purpose"] = purpose
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def member_client(self, caller: RegionNode, *, purpose: str | None = "test") -> httpx.Client:
        """An HTTP client signing its requests as ``caller``'s node (member:<region>)."""
        account = Account.from_key(caller.signer_key)
        headers = {"X-Purpose": purpose} if purpose else {}
        return httpx.Client(
            base_url=self.url,
            auth=MemberAuth(account, caller.region, self.region),
            headers=headers,
            timeout=60,
        )

    def submit(self, records: list[dict[str, Any]]) -> list[str]:
        """POST /v1/records as operator; the record keys."""
        with self.client() as http:
            response = http.post("/v1/records", json=records)
        assert response.status_code == 202, response.text
        return [r["record_key"] for r in response.json()["records"]]

    def anchor(self) -> dict[str, Any]:
        """POST /v1/anchor as operator."""
        with self.client() as http:
            response = http.post("/v1/anchor")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def export(self, **params: Any) -> bytes:
        """GET /v1/exchange/export as operator; the package bytes."""
        with self.client() as http:
            response = http.get("/v1/exchange/export", params=params)
        assert response.status_code == 200, response.text
        return response.content

    def import_package(self, package: bytes, **params: Any) -> httpx.Response:
        """POST /v1/exchange/import as operator."""
        with self.client() as http:
            return http.post(
                "/v1/exchange/import",
                content=package,
                params={k: str(v).lower() for k, v in params.items()},
                headers={"Content-Type": "application/x-ndjson"},
            )


@dataclass
class Seed:
    """What the cluster holds: one enterprise's records in all three regions."""

    uscc: str
    listing: str  # Beijing abnormality listing, revoked later (credit repair)
    violation: str  # Beijing serious violation, current
    penalty: str  # Beijing penalty, corrected later
    others: list[str] = field(default_factory=list)
    tianjin_penalty: str = ""
    hebei_listing: str = ""
    hebei_pending: str = ""


@dataclass
class Cluster:
    """The chain, the three nodes and the seeded records."""

    chain: LocalConsortium
    nodes: dict[int, RegionNode]
    seed: Seed

    @property
    def beijing(self) -> RegionNode:
        return self.nodes[BEIJING]

    @property
    def tianjin(self) -> RegionNode:
        return self.nodes[TIANJIN]

    @property
    def hebei(self) -> RegionNode:
        return self.nodes[HEBEI]

    def endorsers(self, region: int, seq: int) -> list[int]:
        """``endorsersOf`` on chain."""
        return list(self.chain.anchor().endorsers_of(region, seq))

    def set_endpoint(self, region: int, url: str) -> None:
        """Register ``url`` as ``region``'s endpoint with its signer key."""
        self.chain.consortium(self.nodes[region].signer_key).set_endpoint(region, url)


def _start_node(chain: LocalConsortium, directory: Path, region: int) -> RegionNode:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        rpc_url=chain.rpc_url,
        deployment_file=chain.deployment_file,
        region=region,
        data_dir=directory / f"node-{region}",
        signer_key=chain.signer_key(region),
        operator_keys=api_key("operator", region),
        verifier_keys=api_key("verifier", region),
        auditor_keys=api_key("auditor", region),
        public_url=url,
        peer_timeout_seconds=5,
        batch_size=4096,
        batch_max_age_seconds=3600,
        signer_cache_seconds=0,
        log_level="WARNING",
    )
    app = create_app(settings)
    server = _ServerThread(app, port)
    server.start()
    return RegionNode(region, url, app, chain.signer_key(region), server)


def _wait_for_endpoints(chain: LocalConsortium, nodes: dict[int, RegionNode]) -> None:
    consortium = chain.consortium()
    deadline = time.monotonic() + 30
    while any(consortium.endpoint_of(r) != n.url for r, n in nodes.items()):
        assert time.monotonic() < deadline, "nodes did not register their endpoints"
        time.sleep(0.05)


def _seed(nodes: dict[int, RegionNode]) -> Seed:
    beijing, tianjin, hebei = nodes[BEIJING], nodes[TIANJIN], nodes[HEBEI]
    uscc = sample_uscc(BEIJING)
    penalty = sample_record(BEIJING, uscc=uscc, record_type="administrative_penalty")
    records = [
        sample_record(BEIJING, uscc=uscc),
        sample_record(BEIJING, uscc=uscc, record_type="serious_violation"),
        penalty,
        sample_record(BEIJING, record_type="registration"),
        sample_record(BEIJING, record_type="credit_risk_class"),
    ]
    listing, violation, penalty_key, *others = beijing.submit(records)
    beijing.anchor()  # batch 0: five leaves
    corrected = {**penalty, "data": {**penalty["data"], "amount_fen": 2000000}}
    with beijing.client() as http:
        assert http.put(f"/v1/records/{penalty_key}", json=corrected).status_code == 202
        revoked = http.post(f"/v1/records/{listing}/revoke", json={"reason": "credit repair"})
        assert revoked.status_code == 202
    beijing.anchor()  # batch 1: the correction and the revocation
    (tianjin_penalty,) = tianjin.submit(
        [sample_record(TIANJIN, uscc=uscc, record_type="administrative_penalty")]
    )
    tianjin.submit([sample_record(TIANJIN, record_type="registration")])
    tianjin.anchor()
    (hebei_listing,) = hebei.submit([sample_record(HEBEI, uscc=uscc)])
    hebei.anchor()
    (hebei_pending,) = hebei.submit(
        [sample_record(HEBEI, uscc=uscc, record_type="serious_violation")]
    )
    return Seed(
        uscc=uscc,
        listing=listing,
        violation=violation,
        penalty=penalty_key,
        others=others,
        tianjin_penalty=tianjin_penalty,
        hebei_listing=hebei_listing,
        hebei_pending=hebei_pending,
    )


def run_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Anvil, contracts, three nodes serving HTTP with endpoints on chain, seeded records.

    A generator for a module-scoped fixture of each test module.
    """
    directory = tmp_path_factory.mktemp("cluster")
    chain = start_local_consortium(directory)
    nodes: dict[int, RegionNode] = {}
    try:
        for region in REGIONS:
            nodes[region] = _start_node(chain, directory, region)
        _wait_for_endpoints(chain, nodes)
        yield Cluster(chain, nodes, _seed(nodes))
    finally:
        for node in nodes.values():
            node.server.stop()
        chain.stop()


# --------------------------------------------------------------------------- packages


def split_package(package: bytes) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(disclosures, trailer) of a package."""
    lines = package.decode("utf-8").splitlines()
    return [json.loads(line) for line in lines[:-1]], json.loads(lines[-1])


def join_package(disclosures: list[dict[str, Any]], trailer: dict[str, Any]) -> bytes:
    """A package from its parts, the trailer unchanged (what a tamperer in transit sends)."""
    body = b"".join(ledger.canonicalize(d) + b"\n" for d in disclosures)
    return body + json.dumps(trailer).encode("utf-8") + b"\n"


def resign(
    disclosures: list[dict[str, Any]],
    trailer: dict[str, Any],
    key: str,
    *,
    domain: dict[str, Any] | None = None,
    **manifest_changes: Any,
) -> bytes:
    """A package whose manifest is recomputed for ``disclosures`` and signed with ``key``."""
    body = b"".join(ledger.canonicalize(d) + b"\n" for d in disclosures)
    manifest = {
        **trailer["manifest"],
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "disclosures": len(disclosures),
        **manifest_changes,
    }
    domain = domain or trailer["domain"]
    line = trailer_line(
        ExchangeManifest.from_json(manifest),
        Account.from_key(key),
        domain["chainId"],
        domain["verifyingContract"],
    )
    return body + line


def flip_hex(value: str) -> str:
    """``value`` with its first hex digit changed."""
    return ("1" if value[0] == "0" else "0") + value[1:]


class FakePeer:
    """A node impostor at its own URL answering fixed bodies (a peer that lies or tampers)."""

    def __init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        self.answers: dict[str, tuple[int, bytes, str]] = {}
        self.requests: list[dict[str, str]] = []

        async def answer(request: Request) -> Response:
            self.requests.append(dict(request.headers))
            status, body, media_type = self.answers.get(
                request.url.path, (404, b'{"error":"not_found"}', "application/json")
            )
            return Response(body, status_code=status, media_type=media_type)

        app = Starlette(routes=[Route("/{path:path}", answer, methods=["GET"])])
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._server = _ServerThread(app, port)

    def __enter__(self) -> FakePeer:
        self._server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.stop()

    def serve(self, path: str, body: bytes | dict[str, Any], status: int = 200) -> None:
        """Answer GET ``path`` with ``body`` (JSON if a dict)."""
        if isinstance(body, dict):
            self.answers[path] = (status, json.dumps(body).encode(), "application/json")
        else:
            self.answers[path] = (status, body, "application/x-ndjson")


@contextmanager
def endpoint_replaced(cluster: Cluster, region: int, url: str) -> Iterator[None]:
    """Register ``url`` as ``region``'s endpoint for the block, then restore the real one."""
    cluster.set_endpoint(region, url)
    try:
        yield
    finally:
        cluster.set_endpoint(region, cluster.nodes[region].url)
