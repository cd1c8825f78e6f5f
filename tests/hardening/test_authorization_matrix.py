"""Authorization matrix: every (route, method) of the node × every kind of caller.

Callers: the node's own operator, verifier and auditor keys; the operator key of another
region's node; a request signed by a current signer of another region, by a signer the
Consortium removed, by an address in no Consortium role; no credentials; a replayed
signed request; a signed request with an expired timestamp. Each cell states the
expected status; a denied write must leave the database as it was. The table must name
every (path, method) the application serves: a new route without a row fails the suite.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from hardening_env import (
    BEIJING,
    HEBEI,
    OUTSIDER_KEY,
    PURPOSE,
    SPARE_SIGNER_KEY,
    TIANJIN,
    account,
    add_signer,
    api_key,
    bearer,
    db_counts,
    db_path,
    member_headers,
    node_settings,
    remove_signer,
    report_figures,
)

from node_api.auth import PURPOSE_HEADER
from node_api.main import create_app
from node_api.testing import LocalConsortium, sample_record

pytestmark = [pytest.mark.chain]

ROLES = (
    "operator",
    "foreign_operator",
    "verifier",
    "auditor",
    "member",
    "removed_signer",
    "non_member",
    "unsigned",
    "replayed",
    "expired",
)
API_ROLES = ("operator", "verifier", "auditor")
READERS = frozenset({"operator", "auditor", "member"})
EVERYONE = frozenset({"operator", "verifier", "auditor", "member"})
PUBLIC = "public"


@dataclass(frozen=True)
class Row:
    """One (route, method): how to call it and who may."""

    path: str  # the route template, as the application declares it
    method: str
    allowed: frozenset[str] | str  # roles that pass authorization, or PUBLIC
    success: int = 200  # status of an allowed caller
    build: Callable[[Any], tuple[str, bytes, dict[str, str]]] = field(
        default=lambda _: ("", b"", {}), compare=False
    )  # (path?query, body, extra headers) from the fixture's state


def _get(url: str) -> Callable[[Any], tuple[str, bytes, dict[str, str]]]:
    return lambda state: (url.format(**state.__dict__), b"", {})


def _json(
    url: str, body: Callable[[Any], Any]
) -> Callable[[Any], tuple[str, bytes, dict[str, str]]]:
    def build(state: Any) -> tuple[str, bytes, dict[str, str]]:
        content = json.dumps(body(state), ensure_ascii=False).encode("utf-8")
        return url.format(**state.__dict__), content, {"Content-Type": "application/json"}

    return build


def _package(state: Any) -> tuple[str, bytes, dict[str, str]]:
    return "/v1/exchange/import", state.package, {"Content-Type": "application/x-ndjson"}


ROWS: tuple[Row, ...] = (
    Row("/v1/records", "POST", frozenset({"operator"}), 202,
        _json("/v1/records", lambda s: s.new_record)),
    Row("/v1/records/{record_key}", "PUT", frozenset({"operator"}), 202,
        _json("/v1/records/{key}", lambda s: s.corrected)),
    Row("/v1/records/{record_key}/revoke", "POST", frozenset({"operator"}), 202,
        _json("/v1/records/{key}/revoke", lambda s: {"reason": "credit repair"})),
    Row("/v1/records/{record_key}", "GET", READERS, 200, _get("/v1/records/{key}")),
    Row("/v1/records/{record_key}/receipt", "GET", EVERYONE, 200,
        _get("/v1/records/{key}/receipt?version=1")),
    Row("/v1/verify", "POST", EVERYONE, 200, _json("/v1/verify", lambda s: s.receipt)),
    Row("/v1/entities/{uscc}/status", "GET", EVERYONE, 200, _get("/v1/entities/{uscc}/status")),
    Row("/v1/entities/{uscc}/history", "GET", READERS, 200, _get("/v1/entities/{uscc}/history")),
    Row("/v1/batches", "GET", EVERYONE, 200, _get("/v1/batches")),
    Row("/v1/batches/{seq}", "GET", EVERYONE, 200, _get("/v1/batches/{seq}")),
    Row("/v1/anchor", "POST", frozenset({"operator"}), 200, _get("/v1/anchor")),
    Row("/v1/access-log", "GET", frozenset({"auditor"}), 200, _get("/v1/access-log")),
    Row("/v1/exchange/export", "GET", frozenset({"operator", "member"}), 200,
        _get("/v1/exchange/export?from_seq={seq}&to_seq={seq}")),
    Row("/v1/exchange/import", "POST", frozenset({"operator"}), 200, _package),
    Row("/v1/exchange/entities/{uscc}", "GET", READERS, 200,
        _get("/v1/exchange/entities/{uscc}")),
    Row("/v1/integrity/check", "POST", frozenset({"operator", "auditor"}), 200,
        _json("/v1/integrity/check", lambda s: {"region": HEBEI})),
    Row("/v1/integrity/reports", "GET", frozenset({"operator", "auditor"}), 200,
        _get("/v1/integrity/reports")),
    Row("/v1/integrity/reports/{report_id}", "GET", frozenset({"operator", "auditor"}), 200,
        _get("/v1/integrity/reports/{report_id}")),
    Row("/v1/health", "GET", PUBLIC, 200, _get("/v1/health")),
    Row("/metrics", "GET", PUBLIC, 200, _get("/metrics")),
    Row("/openapi.json", "GET", PUBLIC, 200, _get("/openapi.json")),
    Row("/openapi.json", "HEAD", PUBLIC, 200, _get("/openapi.json")),
    Row("/docs", "GET", PUBLIC, 200, _get("/docs")),
    Row("/docs", "HEAD", PUBLIC, 200, _get("/docs")),
    Row("/docs/oauth2-redirect", "GET", PUBLIC, 200, _get("/docs/oauth2-redirect")),
    Row("/docs/oauth2-redirect", "HEAD", PUBLIC, 200, _get("/docs/oauth2-redirect")),
    Row("/redoc", "GET", PUBLIC, 200, _get("/redoc")),
    Row("/redoc", "HEAD", PUBLIC, 200, _get("/redoc")),
)  # fmt: skip
# Variants of a (route, method) whose answer depends on a parameter, checked the same way.
VARIANTS: tuple[Row, ...] = (
    Row("/v1/records/{record_key}/receipt", "GET", READERS, 200,
        _get("/v1/records/{key}/receipt?version=1&disclose=true")),
)  # fmt: skip


def expected_status(row: Row, role: str) -> int:
    """The status the matrix requires of ``role`` calling ``row``."""
    if row.allowed == PUBLIC:
        return row.success
    if role in ("foreign_operator", "unsigned", "replayed", "expired"):
        return 401  # no valid credentials at all
    if role in ("removed_signer", "non_member"):
        return 403  # a valid signature, but not a signer of its region per the Consortium
    return row.success if role in row.allowed else 403


def app_routes(app: Any) -> set[tuple[str, str]]:
    """Every (path, method) the application serves, however routers are included."""
    pairs: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        for method in getattr(context, "methods", None) or ():
            pairs.add((context.path, method))
    return pairs


@dataclass
class State:
    """What the rows refer to: an anchored record, its receipt, a package, a report."""

    key: str
    uscc: str
    seq: int
    receipt: dict[str, Any]
    corrected: dict[str, Any]
    new_record: dict[str, Any]
    package: bytes
    report_id: int


@dataclass
class Matrix:
    """The node under test, its state and the callers' keys."""

    client: TestClient
    data_dir: Path
    state: State
    member: Any
    removed: Any
    outsider: Any
    figures: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def matrix(
    consortium: LocalConsortium, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Matrix]:
    directory = tmp_path_factory.mktemp("matrix")
    # A removed signer: added to Tianjin by vote, then removed by vote.
    removed = account(SPARE_SIGNER_KEY)
    add_signer(consortium, removed.address, TIANJIN)
    remove_signer(consortium, removed.address, TIANJIN)
    assert not consortium.consortium().is_signer(removed.address, TIANJIN)

    tianjin = TestClient(create_app(node_settings(consortium, directory / "tj", TIANJIN)))
    beijing_dir = directory / "bj"
    beijing = TestClient(create_app(node_settings(consortium, beijing_dir, BEIJING)))
    with tianjin, beijing:
        tj_ops = bearer("operator", TIANJIN)
        assert (
            tianjin.post(
                "/v1/records", json=[sample_record(TIANJIN) for _ in range(3)], headers=tj_ops
            ).status_code
            == 202
        )
        anchored = tianjin.post("/v1/anchor", headers=tj_ops).json()["anchored"]
        tj_seq = anchored[0]["seq"]
        package = tianjin.get(
            "/v1/exchange/export", params={"from_seq": tj_seq, "to_seq": tj_seq}, headers=tj_ops
        ).content

        ops = bearer("operator")
        record = sample_record(BEIJING, record_type="administrative_penalty")
        key = beijing.post("/v1/records", json=record, headers=ops).json()["records"][0][
            "record_key"
        ]
        seq = beijing.post("/v1/anchor", headers=ops).json()["anchored"][0]["seq"]
        receipt = beijing.get(f"/v1/records/{key}/receipt", headers=ops).json()
        imported = beijing.post(
            "/v1/exchange/import",
            content=package,
            headers={**ops, "Content-Type": "application/x-ndjson"},
        )
        assert imported.status_code == 200, imported.text
        state = State(
            key=key,
            uscc=record["uscc"],
            seq=seq,
            receipt=receipt,
            corrected={**record, "data": {**record["data"], "amount_fen": 1}},
            new_record=sample_record(BEIJING),
            package=package,
            report_id=imported.json()["id"],
        )
        result = Matrix(
            client=beijing,
            data_dir=beijing_dir,
            state=state,
            member=account(consortium.signer_key(TIANJIN)),
            removed=removed,
            outsider=account(OUTSIDER_KEY),
        )
        yield result
        report_figures("authorization_matrix", result.figures)


def _call(m: Matrix, row: Row, role: str, signed: dict[str, dict[str, str]]) -> tuple[int, str]:
    path, body, extra = row.build(m.state)
    headers = dict(extra)
    if role in API_ROLES:
        headers.update(bearer(role))
    elif role == "foreign_operator":
        headers["Authorization"] = f"Bearer {api_key('operator', TIANJIN)}"
        headers[PURPOSE_HEADER] = PURPOSE
    elif role == "unsigned":
        headers[PURPOSE_HEADER] = PURPOSE
    elif role == "replayed":
        # Byte for byte the request the current signer just sent (same nonce, same timestamp).
        headers.update(signed["member"])
    else:
        signer, region, timestamp = {
            "member": (m.member, TIANJIN, None),
            "removed_signer": (m.removed, TIANJIN, None),
            "non_member": (m.outsider, TIANJIN, None),
            "expired": (m.member, TIANJIN, int(time.time()) - 3600),
        }[role]
        signature = member_headers(
            signer, row.method, path, body, region=region, audience=BEIJING, timestamp=timestamp
        )
        signed[role] = signature
        headers.update(signature)
    response = m.client.request(row.method, path, content=body, headers=headers)
    return response.status_code, response.text[:300]


@pytest.mark.parametrize("row", ROWS + VARIANTS, ids=lambda r: f"{r.method} {r.path}")
def test_every_role_gets_the_expected_answer(matrix: Matrix, row: Row) -> None:
    signed: dict[str, dict[str, str]] = {}
    wrong: list[str] = []
    for role in ROLES:  # "member" comes before "replayed": the replay resends its request
        mutating = row.method not in ("GET", "HEAD")
        expected = expected_status(row, role)
        before = db_counts(db_path(matrix.data_dir)) if mutating else None
        status, text = _call(matrix, row, role, signed)
        if status != expected:
            wrong.append(f"{role}: expected {expected}, got {status} {text}")
        if mutating and expected in (401, 403):
            after = db_counts(db_path(matrix.data_dir))
            if after != before:
                wrong.append(f"{role}: denied, yet the database changed {before} -> {after}")
        matrix.figures["cells"] = matrix.figures.get("cells", 0) + 1
    matrix.figures["wrong"] = matrix.figures.get("wrong", 0) + len(wrong)
    assert not wrong, f"{row.method} {row.path}:\n" + "\n".join(wrong)


def test_the_matrix_covers_every_route_of_the_application(matrix: Matrix) -> None:
    served = app_routes(matrix.client.app)
    table = {(row.path, row.method) for row in ROWS}
    assert served - table == set(), f"routes without a matrix row: {sorted(served - table)}"
    assert table - served == set(), f"matrix rows for routes that do not exist: {table - served}"
    matrix.figures["routes"] = len(served)
    matrix.figures["roles"] = len(ROLES)
