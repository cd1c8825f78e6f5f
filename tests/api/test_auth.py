"""Authentication and roles: API keys, signed member requests, and every denial."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from node_harness import AUDITOR, AUDITOR_KEY, OPERATOR, OPERATOR_KEY, VERIFIER, Node
from sqlalchemy import select

from node_api.auth import SIGNATURE_HEADER
from node_api.client import MemberAuth, sign_request
from node_api.config import Settings
from node_api.db.tables import api_keys
from node_api.testing import LocalConsortium, sample_record, sample_uscc

ALL = {"operator", "verifier", "auditor", "member"}
READERS = {"operator", "auditor", "member"}


def _member_headers(
    account: Any,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    region: int = 120000,
    audience: int = 110000,
    **overrides: Any,
) -> dict[str, str]:
    header = sign_request(
        account,
        method=method,
        path_and_query=path,
        body=body,
        region=region,
        audience=audience,
        **overrides,
    )
    return {
        SIGNATURE_HEADER: header,
        "X-Purpose": "cross-region check",
        "Content-Type": "application/json",
    }


@pytest.fixture
def tianjin(consortium: LocalConsortium) -> Any:
    """The founding signer account of Tianjin (120000)."""
    return Account.from_key(consortium.signer_key(120000))


@pytest.fixture
def stored(node: Node) -> dict[str, str]:
    """One anchored record of the node: its key and uscc."""
    record = sample_record()
    key = node.submit(record)["records"][0]["record_key"]
    node.anchor()
    return {"key": key, "uscc": record["uscc"]}


def _endpoints(stored: dict[str, str]) -> list[tuple[str, str, set[str]]]:
    key, uscc = stored["key"], stored["uscc"]
    return [
        ("POST", "/v1/records", {"operator"}),
        ("PUT", f"/v1/records/{key}", {"operator"}),
        ("POST", f"/v1/records/{key}/revoke", {"operator"}),
        ("GET", f"/v1/records/{key}", READERS),
        ("GET", f"/v1/records/{key}/receipt", ALL),
        ("GET", f"/v1/records/{key}/receipt?disclose=true", READERS),
        ("POST", "/v1/verify", ALL),
        ("GET", f"/v1/entities/{uscc}/status", ALL),
        ("GET", f"/v1/entities/{uscc}/history", READERS),
        ("GET", "/v1/batches", ALL),
        ("GET", "/v1/batches/0", ALL),
        ("POST", "/v1/anchor", {"operator"}),
        ("GET", "/v1/access-log", {"auditor"}),
    ]


def test_every_endpoint_needs_credentials(node: Node, stored: dict[str, str]) -> None:
    for method, path, _ in _endpoints(stored):
        response = node.client.request(method, path, content=b"{}")
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        for bad in ("Bearer nope", "Basic b3A6b3A=", "Bearer ", f"Bearer sha256:{'0' * 64}"):
            response = node.client.request(
                method, path, content=b"{}", headers={"Authorization": bad}
            )
            assert response.status_code == 401, (method, path, bad)


def test_every_endpoint_refuses_the_wrong_roles(
    node: Node, stored: dict[str, str], tianjin: Any
) -> None:
    role_headers = {"operator": OPERATOR, "verifier": VERIFIER, "auditor": AUDITOR}
    for method, path, allowed in _endpoints(stored):
        for role in ALL - allowed:
            if role == "member":
                headers = _member_headers(tianjin, method, path, b"{}")
            else:
                headers = role_headers[role]
            response = node.client.request(method, path, content=b"{}", headers=headers)
            assert response.status_code == 403, (method, path, role, response.text)
            assert response.json()["error"] == "forbidden"


def test_allowed_roles_get_through(node: Node, stored: dict[str, str], tianjin: Any) -> None:
    key, uscc = stored["key"], stored["uscc"]
    receipt = node.receipt(key)
    for headers in (OPERATOR, VERIFIER, AUDITOR):
        assert (
            node.client.post("/v1/verify", json=receipt, headers=headers).json()["status"]
            == "valid"
        )
        assert node.client.get(f"/v1/entities/{uscc}/status", headers=headers).status_code == 200
    body = json.dumps(receipt).encode()
    response = node.client.post(
        "/v1/verify", content=body, headers=_member_headers(tianjin, "POST", "/v1/verify", body)
    )
    assert response.status_code == 200 and response.json()["valid"] is True


def test_api_keys_are_stored_hashed_and_config_changes_apply_on_restart(
    make_settings: Callable[..., Settings], start_node: Callable[[Settings], Node]
) -> None:
    from node_harness import stop_node

    digest = hashlib.sha256(b"second-operator-key").hexdigest()
    node = start_node(make_settings(operator_keys=f"{OPERATOR_KEY}, sha256:{digest}"))
    with node.services.db.read() as conn:
        rows = conn.execute(select(api_keys.c.key_hash, api_keys.c.role)).all()
    assert sorted(rows) == sorted(
        [
            (hashlib.sha256(OPERATOR_KEY.encode()).hexdigest(), "operator"),
            (digest, "operator"),
            (hashlib.sha256(b"ver-" + b"b" * 40).hexdigest(), "verifier"),
            (hashlib.sha256(AUDITOR_KEY.encode()).hexdigest(), "auditor"),
        ]
    )
    second = {"Authorization": "Bearer second-operator-key"}
    assert node.client.get("/v1/batches", headers=second).status_code == 200
    stop_node(node)
    node = start_node(make_settings())
    assert node.client.get("/v1/batches", headers=second).status_code == 401
    assert node.client.get("/v1/batches", headers=OPERATOR).status_code == 200


def test_keys_can_come_from_a_file(
    tmp_path: Any, make_settings: Callable[..., Settings], start_node: Callable[[Settings], Node]
) -> None:
    keys = tmp_path / "verifier.keys"
    keys.write_text("# platform A\nplatform-a-key\n\nplatform-b-key  # B\n")
    node = start_node(make_settings(verifier_keys="", verifier_keys_file=keys))
    for key in ("platform-a-key", "platform-b-key"):
        assert (
            node.client.get("/v1/batches", headers={"Authorization": f"Bearer {key}"}).status_code
            == 200
        )
    assert node.client.get("/v1/batches", headers=VERIFIER).status_code == 401


# ------------------------------------------------------------------------- member requests


def test_signed_member_request_reads_a_record_and_is_logged(
    node: Node, stored: dict[str, str], tianjin: Any
) -> None:
    path = f"/v1/records/{stored['key']}"
    response = node.client.get(path, headers=_member_headers(tianjin, "GET", path))
    assert response.status_code == 200, response.text
    entries = node.client.get("/v1/access-log", headers=AUDITOR).json()["entries"]
    assert entries[0]["role"] == "member:120000"
    assert entries[0]["principal"] == f"member:120000:{tianjin.address}"
    assert entries[0]["purpose"] == "cross-region check"


def test_member_auth_for_httpx_signs_query_strings(
    node: Node, stored: dict[str, str], tianjin: Any
) -> None:
    auth = MemberAuth(tianjin, region=120000, audience=110000)
    response = node.client.get(
        f"/v1/records/{stored['key']}/receipt",
        params={"disclose": "true", "version": 1},
        auth=auth,
        headers={"X-Purpose": "exchange"},
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"receipt", "record", "salt"}


def test_member_signature_denials(
    node: Node, stored: dict[str, str], consortium: LocalConsortium, tianjin: Any
) -> None:
    path = f"/v1/records/{stored['key']}"
    cases: list[tuple[str, dict[str, str], int]] = [
        (
            "claims a region it does not sign for",
            _member_headers(tianjin, "GET", path, region=130000),
            403,
        ),
        (
            "not a signer at all",
            _member_headers(Account.from_key(consortium.keys[6]), "GET", path),
            403,
        ),
        ("signed for another node", _member_headers(tianjin, "GET", path, audience=130000), 401),
        (
            "expired timestamp",
            _member_headers(tianjin, "GET", path, timestamp=int(time.time()) - 3600),
            401,
        ),
        (
            "timestamp from the future",
            _member_headers(tianjin, "GET", path, timestamp=int(time.time()) + 3600),
            401,
        ),
        ("signed another path", _member_headers(tianjin, "GET", "/v1/batches"), 401),
        ("signed another body", _member_headers(tianjin, "GET", path, b'{"x":1}'), 401),
    ]
    for label, headers, status in cases:
        response = node.client.get(path, headers=headers)
        assert response.status_code == status, (label, response.text)
    header = _member_headers(tianjin, "GET", path)[SIGNATURE_HEADER]
    forged = header.replace(tianjin.address, Account.from_key(consortium.keys[3]).address)
    malformed = {
        "address of someone else": forged,
        "missing fields": "region=120000; address=0x00",
        "garbage signature": header.rsplit("signature=", 1)[0] + "signature=0x1234",
        "bad nonce": header.replace("nonce=", "nonce=zz"),
        "repeated field": header + "; region=120000",
    }
    for label, value in malformed.items():
        response = node.client.get(path, headers={SIGNATURE_HEADER: value, "X-Purpose": "x"})
        assert response.status_code == 401, (label, response.text)
    both = {**_member_headers(tianjin, "GET", path), **OPERATOR}
    assert node.client.get(path, headers=both).status_code == 401


def test_replayed_member_request_is_refused(
    node: Node, stored: dict[str, str], tianjin: Any
) -> None:
    path = f"/v1/records/{stored['key']}"
    headers = _member_headers(tianjin, "GET", path)
    assert node.client.get(path, headers=headers).status_code == 200
    replay = node.client.get(path, headers=headers)
    assert replay.status_code == 401 and "replay" in replay.json()["message"]


def _govern(consortium: LocalConsortium, propose: Callable[[Any], Any]) -> None:
    """Tianjin proposes, Hebei approves: threshold 2 executes it."""
    outcome = propose(consortium.consortium(consortium.signer_key(120000)))
    approved = consortium.consortium(consortium.signer_key(130000)).approve(outcome.proposal_id)
    assert approved.executed


def test_removed_signer_loses_access_within_the_cache_window(
    make_settings: Callable[..., Settings],
    start_node: Callable[[Settings], Node],
    consortium: LocalConsortium,
) -> None:
    node = start_node(make_settings(signer_cache_seconds=1))
    key = node.submit(sample_record())["records"][0]["record_key"]
    extra = Account.from_key(consortium.keys[7])
    _govern(consortium, lambda c: c.propose_add_signer(extra.address, 120000))
    path = f"/v1/records/{key}"
    assert node.client.get(path, headers=_member_headers(extra, "GET", path)).status_code == 200
    _govern(consortium, lambda c: c.propose_remove_signer(extra.address, 120000))
    time.sleep(1.1)
    response = node.client.get(path, headers=_member_headers(extra, "GET", path))
    assert response.status_code == 403, response.text


def test_members_need_a_purpose_for_payload_reads_but_not_for_status(
    node: Node, stored: dict[str, str], tianjin: Any
) -> None:
    path = f"/v1/records/{stored['key']}"
    headers = _member_headers(tianjin, "GET", path)
    del headers["X-Purpose"]
    assert node.client.get(path, headers=headers).status_code == 400
    status_path = f"/v1/entities/{sample_uscc()}/status"
    headers = _member_headers(tianjin, "GET", status_path)
    del headers["X-Purpose"]
    assert node.client.get(status_path, headers=headers).status_code == 200
