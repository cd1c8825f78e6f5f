"""Shared helpers of the node API tests: API keys, role headers and the node-under-test handle.

They live here, not in conftest.py, because test modules import them and several test
folders have a conftest.py (an import of `conftest` would pick whichever came first).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi.testclient import TestClient

from node_api.services import Services

OPERATOR_KEY = "op-" + "a" * 40
VERIFIER_KEY = "ver-" + "b" * 40
AUDITOR_KEY = "aud-" + "c" * 40
PG_ADMIN_URL = os.environ.get(
    "CREDIT_LEDGER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
VERIFIER = {"Authorization": f"Bearer {VERIFIER_KEY}"}
AUDITOR = {"Authorization": f"Bearer {AUDITOR_KEY}", "X-Purpose": "annual audit"}


class Node:
    """A node app under test: the TestClient plus its services."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    @property
    def services(self) -> Services:
        """The running node's services."""
        services: Services = self.client.app.state.services  # type: ignore[attr-defined]
        return services

    def submit(self, records: Any, expect: int = 202) -> dict[str, Any]:
        """POST /v1/records as operator, asserting the status."""
        response = self.client.post("/v1/records", json=records, headers=OPERATOR)
        assert response.status_code == expect, response.text
        body: dict[str, Any] = response.json()
        return body

    def anchor(self) -> dict[str, Any]:
        """POST /v1/anchor as operator."""
        response = self.client.post("/v1/anchor", headers=OPERATOR)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def receipt(self, record_key: str, **params: Any) -> dict[str, Any]:
        """GET the receipt as operator."""
        response = self.client.get(
            f"/v1/records/{record_key}/receipt", params=params, headers=OPERATOR
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def stop_node(node: Node) -> None:
    """Shut a node down (as a clean restart would)."""
    node.client.__exit__(None, None, None)
