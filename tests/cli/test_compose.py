"""docker-compose.yml and the Dockerfile, checked without Docker: YAML, services, and every
CREDIT_LEDGER_* variable against node_api.config.Settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ledger.chain.localnode import dev_keys
from node_api.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
NODES = {"node-beijing": 110000, "node-tianjin": 120000, "node-hebei": 130000}
# What a node needs to do its job in that stack (everything else has a working default).
REQUIRED = (
    "REGION",
    "RPC_URL",
    "DEPLOYMENT_FILE",
    "DATA_DIR",
    "DATABASE_URL",
    "PUBLIC_URL",
    "OPERATOR_KEYS",
    "VERIFIER_KEYS",
    "AUDITOR_KEYS",
)
_INTERPOLATION = re.compile(r"\$\{([A-Z_]+):-([^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    text = (REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    # What `docker compose` substitutes when the variable is not set: the default.
    return {k: _INTERPOLATION.sub(lambda m: m.group(2), str(v)) for k, v in environment.items()}


def test_services_are_the_chain_postgres_deployment_and_three_nodes(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert {"ganache", "postgres", "postgres-init", "deploy", *NODES} <= set(services)
    assert services["ganache"]["image"].startswith("trufflesuite/ganache:v7.9")
    ports = [p for s in services.values() for p in s.get("ports", [])]
    assert len(ports) == len(set(ports))


def test_every_credit_ledger_variable_is_a_setting(compose: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    used = 0
    for name, service in compose["services"].items():
        for variable in _environment(service):
            if variable.startswith("CREDIT_LEDGER_"):
                used += 1
                field = variable.removeprefix("CREDIT_LEDGER_").lower()
                assert field in fields, f"{name}: {variable} is not a field of Settings"
    assert used >= len(NODES) * len(REQUIRED)


@pytest.mark.parametrize("service", NODES)
def test_each_node_is_fully_configured_and_valid(compose: dict[str, Any], service: str) -> None:
    node = compose["services"][service]
    environment = _environment(node)
    for name in REQUIRED:
        assert environment.get(f"CREDIT_LEDGER_{name}"), f"{service} lacks CREDIT_LEDGER_{name}"
    has_keystore = "CREDIT_LEDGER_SIGNER_KEYSTORE" in environment
    assert has_keystore or "CREDIT_LEDGER_SIGNER_KEY" in environment
    settings = Settings(
        **{k.removeprefix("CREDIT_LEDGER_").lower(): v for k, v in environment.items()}
    )
    assert settings.region == NODES[service]
    assert settings.resolved_database_url.startswith("postgresql+psycopg://")
    assert settings.resolved_database_url.endswith(f"/region_{NODES[service]}")
    # The founding signer of its region (dev account #1-#3, as the deployment says).
    position = list(NODES).index(service) + 1
    assert settings.signer_key is not None
    assert settings.signer_key.get_secret_value() == dev_keys()[position]
    # The deployment file the one-shot `deploy` service writes is the one nodes read.
    deploy = compose["services"]["deploy"]
    assert f"--out={settings.deployment_file}" in deploy["command"]
    assert settings.public_url == f"http://{service}:8000"
    assert settings.rpc_url == "http://ganache:8545"
    assert any(p.endswith(":8000") for p in node["ports"])


def test_the_node_image_runs_the_cli(compose: dict[str, Any]) -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["credit-ledger"]' in dockerfile
    assert '"node", "serve", "--host", "0.0.0.0", "--port", "8000"' in dockerfile
    assert "requirements.lock" in dockerfile
    # The build stage copies what setup.py compiles, so the image has the core's C speedups.
    copied = " ".join(line for line in dockerfile.splitlines() if line.startswith("COPY "))
    assert "setup.py" in copied and "COPY ledger ./ledger" in dockerfile
    assert "libssl-dev" in dockerfile and "n.speedups is not None" in dockerfile
    assert compose["services"]["deploy"]["command"][0] == "deploy"
    dependencies = compose["services"]["node-beijing"]["depends_on"]
    assert dependencies["deploy"]["condition"] == "service_completed_successfully"
