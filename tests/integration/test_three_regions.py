"""Three regions as real processes over HTTP: anchor, exchange, endorse, trace, detect tampering.

One anvil with the contracts (Beijing, Tianjin, Hebei; threshold 2), three uvicorn node
processes with their own databases and signer keys. The scenario runs once with SQLite and
once with PostgreSQL (a fresh database per node).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from three_region_cluster import (
    BEIJING,
    HEBEI,
    TIANJIN,
    NodeProcess,
    ThreeRegions,
    json_of,
    postgres_available,
    postgres_databases,
    three_regions,
)

import ledger
from ledger.chain.localnode import dev_keys
from node_api.exchange import ExchangeManifest, trailer_line
from node_api.testing import sample_record, sample_uscc

pytestmark = [pytest.mark.integration, pytest.mark.chain, pytest.mark.timeout(300)]

CLEAN_COUNTS = {
    "verified": 5,
    "tampered": 0,
    "unanchored": 0,
    "superseded": 1,
    "revoked": 1,
    "wrong_region": 0,
    "missing": 0,
}


@dataclass
class Scenario:
    """The running regions and what Beijing, Tianjin and Hebei recorded about one enterprise."""

    regions: ThreeRegions
    uscc: str
    listing: str  # Beijing abnormality listing, revoked by credit repair
    violation: str  # Beijing serious violation, current
    penalty: str  # Beijing penalty, corrected
    tianjin_penalty: str
    hebei_listing: str

    @property
    def beijing(self) -> NodeProcess:
        return self.regions.nodes[BEIJING]

    @property
    def tianjin(self) -> NodeProcess:
        return self.regions.nodes[TIANJIN]

    @property
    def hebei(self) -> NodeProcess:
        return self.regions.nodes[HEBEI]

    def beijing_package(self) -> bytes:
        """Beijing's package, pulled as Tianjin's node would (a signed member request)."""
        with self.beijing.member_client(self.tianjin, purpose="exchange") as http:
            response = http.get("/v1/exchange/export")
        assert response.status_code == 200, response.text
        return response.content


def _submit(node: NodeProcess, records: list[dict[str, Any]]) -> list[str]:
    with node.client() as http:
        body = json_of(http.post("/v1/records", json=records), 202)
    return [r["record_key"] for r in body["records"]]


def _anchor(node: NodeProcess) -> list[int]:
    with node.client() as http:
        body = json_of(http.post("/v1/anchor"))
    return [b["seq"] for b in body["anchored"]]


def _record_history(regions: ThreeRegions) -> Scenario:
    nodes = regions.nodes
    beijing, tianjin, hebei = nodes[BEIJING], nodes[TIANJIN], nodes[HEBEI]
    uscc = sample_uscc(BEIJING)
    penalty = sample_record(BEIJING, uscc=uscc, record_type="administrative_penalty")
    listing, violation, penalty_key, *_ = _submit(
        beijing,
        [
            sample_record(BEIJING, uscc=uscc),
            sample_record(BEIJING, uscc=uscc, record_type="serious_violation"),
            penalty,
            sample_record(BEIJING, record_type="registration"),
            sample_record(BEIJING, record_type="credit_risk_class"),
        ],
    )
    assert _anchor(beijing) == [0]
    corrected = {**penalty, "data": {**penalty["data"], "amount_fen": 2000000}}
    with beijing.client() as http:
        assert json_of(http.put(f"/v1/records/{penalty_key}", json=corrected), 202)["version"] == 2
        revoked = http.post(f"/v1/records/{listing}/revoke", json={"reason": "credit repair"})
        assert json_of(revoked, 202)["status"] == "revoked"
    assert _anchor(beijing) == [1]
    (tianjin_penalty, _) = _submit(
        tianjin,
        [
            sample_record(TIANJIN, uscc=uscc, record_type="administrative_penalty"),
            sample_record(TIANJIN, record_type="registration"),
        ],
    )
    assert _anchor(tianjin) == [0]
    (hebei_listing,) = _submit(hebei, [sample_record(HEBEI, uscc=uscc)])
    assert _anchor(hebei) == [0]
    return Scenario(regions, uscc, listing, violation, penalty_key, tianjin_penalty, hebei_listing)


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def scenario(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    """The three regions (per database backend) with the enterprise's history recorded."""
    directory: Path = tmp_path_factory.mktemp(f"three-regions-{request.param}")
    if request.param == "sqlite":
        with three_regions(directory) as regions:
            yield _record_history(regions)
        return
    problem = postgres_available()
    if problem:
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    with postgres_databases(3) as urls, three_regions(directory, urls) as regions:
        yield _record_history(regions)


def _split(package: bytes) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = package.decode("utf-8").splitlines()
    return [json.loads(line) for line in lines[:-1]], json.loads(lines[-1])


def _join(disclosures: list[dict[str, Any]], trailer: dict[str, Any]) -> bytes:
    body = b"".join(ledger.canonicalize(d) + b"\n" for d in disclosures)
    return body + json.dumps(trailer).encode() + b"\n"


def _import(node: NodeProcess, package: bytes, **params: str) -> Any:
    with node.client() as http:
        return http.post("/v1/exchange/import", content=package, params=params)


# --------------------------------------------------------------------------- the scenario


def test_a_verifier_in_tianjin_sees_beijings_revoked_listing_as_revoked(scenario: Scenario) -> None:
    with scenario.beijing.client("verifier") as http:
        receipt = json_of(
            http.get(f"/v1/records/{scenario.listing}/receipt", params={"version": 1})
        )
    with scenario.tianjin.client("verifier") as http:
        verdict = json_of(http.post("/v1/verify", json=receipt))
    assert verdict["status"] == "revoked" and verdict["head_status"] == "revoked"


def test_tianjin_imports_beijings_package_verifies_all_and_endorses(scenario: Scenario) -> None:
    report = json_of(_import(scenario.tianjin, scenario.beijing_package(), endorse="true"))
    assert report["region"] == BEIJING and report["status"] == "completed"
    assert report["counts"] == CLEAN_COUNTS and report["clean"] is True
    outcomes = {(i["record_key"], i["version"]): i["outcome"] for i in report["items"]}
    assert outcomes == {(scenario.listing, 1): "revoked", (scenario.penalty, 1): "superseded"}
    assert [b["endorsement"]["status"] for b in report["batches"]] == ["endorsed", "endorsed"]
    regions = scenario.regions
    assert regions.endorsers(BEIJING, 0) == [TIANJIN] == regions.endorsers(BEIJING, 1)
    with scenario.tianjin.client("auditor") as http:
        stored = json_of(http.get(f"/v1/integrity/reports/{report['id']}"))
    assert stored["counts"] == CLEAN_COUNTS and stored["endorsed"] == 2


def test_tianjin_checks_beijing_through_its_registered_endpoint(scenario: Scenario) -> None:
    with scenario.tianjin.client("auditor") as http:
        report = json_of(http.post("/v1/integrity/check", json={"region": BEIJING}))
    assert report["kind"] == "check" and report["counts"] == CLEAN_COUNTS
    assert report["package"]["signer"] == Account.from_key(scenario.beijing.signer_key).address


def test_an_auditor_traces_the_enterprise_across_all_three_regions(scenario: Scenario) -> None:
    with scenario.hebei.client("auditor", purpose="cross-region audit") as http:
        body = json_of(
            http.get(f"/v1/entities/{scenario.uscc}/history", params={"federated": "true"})
        )
    assert body["complete"] is True
    assert {r["region"]: r["status"] for r in body["regions"]} == {
        HEBEI: "ok",
        BEIJING: "ok",
        TIANJIN: "ok",
    }
    verdicts = {
        (i["region"], i["record_key"], i["version"]): i["verdict"]["status"]
        for i in body["timeline"]
    }
    assert verdicts == {
        (BEIJING, scenario.listing, 1): "revoked",
        (BEIJING, scenario.listing, 2): "valid",
        (BEIJING, scenario.violation, 1): "valid",
        (BEIJING, scenario.penalty, 1): "superseded",
        (BEIJING, scenario.penalty, 2): "valid",
        (TIANJIN, scenario.tianjin_penalty, 1): "valid",
        (HEBEI, scenario.hebei_listing, 1): "valid",
    }
    times = [i["time"] for i in body["timeline"]]
    assert times == sorted(times)


def _tamper(disclosure: dict[str, Any], variant: str) -> None:
    receipt = disclosure["receipt"]

    def flip(value: str) -> str:
        return ("1" if value[0] == "0" else "0") + value[1:]

    if variant == "payload":
        disclosure["record"]["issued_by"] = "伪造机关"
    elif variant == "salt":
        disclosure["salt"] = flip(disclosure["salt"])
    elif variant == "proof":
        receipt["proof"][-1] = flip(receipt["proof"][-1])
    else:
        receipt["batch"]["root"] = flip(receipt["batch"]["root"])


@pytest.mark.parametrize(
    ("variant", "step"), [("payload", 1), ("salt", 1), ("proof", 2), ("root", 2)]
)
def test_a_package_tampered_in_transit_is_reported_tampered(
    scenario: Scenario, variant: str, step: int
) -> None:
    disclosures, trailer = _split(scenario.beijing_package())
    _tamper(disclosures[1], variant)  # the serious violation: batch 0, leaf 1
    report = json_of(_import(scenario.hebei, _join(disclosures, trailer), endorse="true"))
    assert report["counts"] == {**CLEAN_COUNTS, "verified": 4, "tampered": 1}
    (tampered,) = [i for i in report["items"] if i["outcome"] == "tampered"]
    assert (tampered["record_key"], tampered["seq"], tampered["index"]) == (
        scenario.violation,
        0,
        1,
    )
    assert tampered["failed_step"] == step
    assert report["package"]["body_hash_ok"] is False and report["endorsed"] == 0
    assert HEBEI not in scenario.regions.endorsers(BEIJING, 0)


def test_a_package_signed_by_an_unregistered_signer_is_rejected(scenario: Scenario) -> None:
    disclosures, trailer = _split(scenario.beijing_package())
    body = b"".join(ledger.canonicalize(d) + b"\n" for d in disclosures)
    manifest = ExchangeManifest.from_json(
        {**trailer["manifest"], "body_sha256": hashlib.sha256(body).hexdigest()}
    )
    outsider = Account.from_key(dev_keys()[7])
    forged = body + trailer_line(
        manifest, outsider, trailer["domain"]["chainId"], trailer["domain"]["verifyingContract"]
    )
    rejected = json_of(_import(scenario.tianjin, forged), 422)
    assert rejected["error"] == "package_rejected" and rejected["signer"] == outsider.address
    assert rejected["report"]["status"] == "rejected"


def test_a_region_that_goes_down_is_reported_unavailable(scenario: Scenario) -> None:
    scenario.hebei.stop()
    with scenario.tianjin.client("auditor") as http:
        body = json_of(
            http.get(f"/v1/entities/{scenario.uscc}/history", params={"federated": "true"})
        )
    assert body["complete"] is False and body["unavailable"] == [HEBEI]
    assert {i["region"] for i in body["timeline"]} == {BEIJING, TIANJIN}
