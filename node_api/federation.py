"""Talking to other regions' nodes: registered endpoints, signed requests, federated history.

Peers are found in the Consortium contract (``activeRegions``, ``endpointOf``), never in
local configuration, and every request to a peer is signed as ``member:<this region>``
(``node_api.client.MemberAuth``). Nothing a peer says is trusted: each item of its history
is a DESIGN §5 disclosure that this node verifies against the chain itself.

Federated history (``GET /v1/entities/{uscc}/history?federated=true``) asks every other
active region's node, in parallel and with ``peer_timeout_seconds``, for the entity's
disclosures (``GET /v1/exchange/entities/{uscc}``, which carries the salts the normative
history lacks, so that step 1 — the payload behind the commitment — is checked too). A
region that does not answer is listed as ``unavailable`` in ``regions`` and the answer is
marked incomplete; disclosures of that region imported earlier (``foreign_disclosures``)
are then shown with ``source: "stored"``, verified against the chain like the rest.

A node registers its own ``public_url`` as its endpoint (``Consortium.setEndpoint`` by its
signer, no vote) at start-up when the chain holds another value.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, Final

import httpx
from sqlalchemy import select

import ledger
from ledger.errors import ChainError, ContractError
from node_api.auth import PURPOSE_HEADER, Principal
from node_api.client import MemberAuth
from node_api.db.exchange_schema import foreign_disclosures
from node_api.errors import NodeError

__all__ = [
    "PeerUnavailable",
    "FederationRuntime",
    "peer_endpoints",
    "peer_client",
    "fetch_package",
    "federated_history",
    "register_endpoint",
    "start_federation",
]

_log = logging.getLogger("node_api.federation")

_ENTITY_PATH: Final = "/v1/exchange/entities/{uscc}"
_EXPORT_PATH: Final = "/v1/exchange/export"
_COPY_CHUNK = 1 << 16


class PeerUnavailable(NodeError):
    """Another region's node has no registered endpoint, does not answer, or refuses."""

    status_code = 502
    code = "peer_unavailable"


# --------------------------------------------------------------------------- peers


def peer_endpoints(services: Any) -> dict[int, str]:
    """Endpoint URL of every other active region ("" where none is registered)."""
    consortium = services.chain.consortium
    own = services.settings.region
    regions = services.chain.rpc("activeRegions", consortium.active_regions)
    return {
        region: services.chain.rpc("endpointOf", lambda r=region: consortium.endpoint_of(r))
        for region in regions
        if region != own
    }


def peer_client(services: Any, region: int, endpoint: str, purpose: str) -> httpx.Client:
    """An HTTP client for ``region``'s node that signs every request as this region."""
    if services.signer is None:
        raise PeerUnavailable(
            "this node has no signer key, so it cannot sign requests to other regions",
            region=region,
        )
    timeout = services.settings.peer_timeout_seconds
    return httpx.Client(
        base_url=endpoint.rstrip("/"),
        auth=MemberAuth(services.signer, services.settings.region, region),
        headers={PURPOSE_HEADER: purpose[:500]},
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
    )


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def fetch_package(
    services: Any,
    region: int,
    endpoint: str,
    from_seq: int,
    to_seq: int,
    into: IO[bytes],
    *,
    purpose: str,
) -> None:
    """Stream ``region``'s export of ``[from_seq, to_seq]`` into ``into`` (a binary file, or
    an ``exchange.PackageStream`` that verifies while the rest arrives).

    PeerUnavailable when the peer cannot be reached, answers an error, or sends more than
    ``max_package_bytes``. A 404 (nothing anchored there in the range) leaves ``into``
    empty.
    """
    limit = services.settings.max_package_bytes
    params = {"from_seq": str(from_seq), "to_seq": str(to_seq)}
    try:
        with peer_client(services, region, endpoint, purpose) as client:
            with client.stream("GET", _EXPORT_PATH, params=params) as response:
                if response.status_code == 404:
                    return
                if response.status_code != 200:
                    response.read()
                    raise PeerUnavailable(
                        f"region {region}'s node answered {response.status_code} to the export",
                        region=region,
                        endpoint=endpoint,
                        peer_status=response.status_code,
                        peer_body=response.text[:2000],
                    )
                received = 0
                deadline = time.monotonic() + services.settings.max_package_seconds
                for chunk in response.iter_bytes(_COPY_CHUNK):
                    if time.monotonic() > deadline:
                        raise PeerUnavailable(
                            f"region {region}'s package took over "
                            f"{services.settings.max_package_seconds:g} s",
                            region=region,
                            endpoint=endpoint,
                        )
                    received += len(chunk)
                    if received > limit:
                        raise PeerUnavailable(
                            f"region {region}'s package exceeds {limit} bytes",
                            region=region,
                            endpoint=endpoint,
                        )
                    into.write(chunk)
    except httpx.HTTPError as e:
        raise PeerUnavailable(
            f"region {region}'s node at {endpoint} did not answer: {_describe(e)}",
            region=region,
            endpoint=endpoint,
        ) from e


# --------------------------------------------------------------------------- history


def _verify_item(
    reader: Any, disclosure_obj: Any, uscc: str
) -> tuple[dict[str, Any] | None, str | None, ledger.Disclosure | None]:
    """(verdict JSON, error, parsed disclosure) of one disclosure checked against the chain."""
    if reader is None:
        return None, "chain unavailable", None
    try:
        verdict = ledger.verify_disclosure(disclosure_obj, reader)
    except ChainError as e:
        return None, str(e), None
    parsed = None
    if verdict.status is not ledger.VerdictStatus.MALFORMED:
        parsed = ledger.Disclosure.from_json(disclosure_obj)
        if parsed.record.uscc != uscc:
            return (
                verdict.to_json(),
                f"the disclosed record is of entity {parsed.record.uscc}, not {uscc}",
                parsed,
            )
    return verdict.to_json(), None, parsed


def _anchored_time(reader: Any, parsed: ledger.Disclosure | None) -> float | None:
    """The chain's timestamp of the disclosure's batch (trusted, unlike a peer's clock)."""
    if reader is None or parsed is None:
        return None
    try:
        batch = reader.batch_of(parsed.receipt.batch.region, parsed.receipt.batch.seq)
    except ChainError:
        return None
    return float(batch.anchored_at) if batch.size else None


def _peer_item(
    reader: Any, served_by: int, uscc: str, item: dict[str, Any], source: str
) -> dict[str, Any]:
    """One peer (or stored) history item in the merged timeline's shape, verified."""
    disclosure = item.get("disclosure")
    entry: dict[str, Any] = {
        "region": served_by,
        "served_by": served_by,
        "source": source,
        "record_key": item.get("record_key"),
        "record_type": item.get("record_type"),
        "record_id": item.get("record_id"),
        "version": item.get("version"),
        "status": item.get("status"),
        "state": item.get("state"),
        "submitted_at": item.get("submitted_at"),
        "reason": item.get("reason"),
        "record": item.get("record"),
        "receipt": None,
        "verdict": None,
    }
    if not isinstance(disclosure, dict):
        entry["verdict_error"] = "not anchored yet: the region's claim cannot be verified"
        entry["anchored_at"] = None
        entry["time"], entry["time_source"] = item.get("submitted_at"), "node"
        return entry
    verdict, error, parsed = _verify_item(reader, disclosure, uscc)
    entry["verdict"] = verdict
    if error:
        entry["verdict_error"] = error
    entry["receipt"] = disclosure.get("receipt")
    if parsed is not None:
        # The verified disclosure, not the peer's description of it, says what the item is.
        leaf = parsed.receipt.leaf
        entry.update(
            region=parsed.receipt.batch.region,
            record_key=leaf.record_key.hex(),
            version=leaf.version,
            status=ledger.LeafStatus(leaf.status).status_name,
            record_type=parsed.record.record_type.type_name,
            record_id=parsed.record.record_id,
            record=parsed.record.to_json(),
        )
    anchored_at = _anchored_time(reader, parsed)
    entry["anchored_at"] = anchored_at
    if anchored_at is not None and verdict is not None and verdict.get("valid"):
        entry["time"], entry["time_source"] = anchored_at, "chain"
    else:
        entry["time"], entry["time_source"] = item.get("submitted_at"), "node"
    return entry


def _stored_items(services: Any, region: int, uscc: str, reader: Any) -> list[dict[str, Any]]:
    """Disclosures of ``region`` about ``uscc`` imported earlier, re-verified now."""
    fd = foreign_disclosures
    with services.db.read() as conn:
        rows = conn.execute(
            select(fd.c.disclosure_json, fd.c.stored_at)
            .where(fd.c.region == region, fd.c.uscc == uscc)
            .order_by(fd.c.seq, fd.c.leaf_index)
        ).all()
    items = []
    for row in rows:
        disclosure = json.loads(row.disclosure_json)
        item = {"disclosure": disclosure, "state": "anchored", "submitted_at": row.stored_at}
        items.append(_peer_item(reader, region, uscc, item, "stored"))
    return items


def _ask_peer(
    services: Any, region: int, endpoint: str, uscc: str, purpose: str, reader: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(region summary, verified items) of one peer; never raises."""
    summary: dict[str, Any] = {"region": region, "endpoint": endpoint or None}
    started = time.monotonic()
    try:
        if not endpoint:
            raise PeerUnavailable(f"region {region} has no endpoint registered on chain")
        with peer_client(services, region, endpoint, purpose) as client:
            response = client.get(_ENTITY_PATH.format(uscc=uscc))
        if response.status_code != 200:
            summary.update(
                status="error",
                http_status=response.status_code,
                error=response.text[:500],
            )
            return summary, []
        body = response.json()
        raw_items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(raw_items, list):
            summary.update(status="error", error="the answer has no items list")
            return summary, []
    except (httpx.HTTPError, PeerUnavailable, ValueError, RecursionError) as e:
        message = e.message if isinstance(e, PeerUnavailable) else _describe(e)
        summary.update(status="unavailable", error=message)
        return summary, []
    finally:
        summary["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
    items = [
        _peer_item(reader, region, uscc, item, "peer")
        for item in raw_items
        if isinstance(item, dict)
    ]
    summary.update(status="ok", items=len(items))
    return summary, items


def federated_history(
    services: Any, uscc: str, local: dict[str, Any], principal: Principal
) -> dict[str, Any]:
    """Merge this node's history of ``uscc`` with every other active region's (the hook)."""
    try:
        reader = services.chain.reader()
        peers = peer_endpoints(services)
    except ChainError as e:
        raise ChainError(f"federated history needs the chain to find the regions: {e}") from e
    own = services.settings.region
    purpose = f"federated history of {uscc} for {principal.name} at region {own}"
    timeline = []
    for item in local["timeline"]:
        anchored_at = item.get("anchored_at")
        verdict = item.get("verdict") or {}
        on_chain = anchored_at is not None and verdict.get("valid")
        timeline.append(
            {
                **item,
                "served_by": own,
                "source": "local",
                "time": anchored_at if on_chain else item.get("submitted_at"),
                "time_source": "chain" if on_chain else "node",
            }
        )
    regions: list[dict[str, Any]] = [
        {"region": own, "status": "ok", "source": "local", "items": len(timeline)}
    ]
    if peers:
        with ThreadPoolExecutor(max_workers=len(peers), thread_name_prefix="federation") as pool:
            futures = [
                pool.submit(_ask_peer, services, region, endpoint, uscc, purpose, reader)
                for region, endpoint in sorted(peers.items())
            ]
            answers = [future.result() for future in futures]
        for summary, items in answers:
            if summary["status"] != "ok":
                stored = _stored_items(services, summary["region"], uscc, reader)
                summary["stored_items"] = len(stored)
                items = stored
            regions.append(summary)
            timeline.extend(items)
    timeline.sort(
        key=lambda i: (
            i.get("time") or 0.0,
            i.get("region") or 0,
            i.get("record_key") or "",
            i.get("version") or 0,
        )
    )
    unavailable = [r["region"] for r in regions if r["status"] != "ok"]
    verdicts: dict[str, int] = {}
    for item in timeline:
        status = (item.get("verdict") or {}).get("status") or "unverified"
        verdicts[status] = verdicts.get(status, 0) + 1
    return {
        **local,
        "federated": True,
        "complete": not unavailable,
        "unavailable": unavailable,
        "regions": regions,
        "records": len({(i.get("region"), i.get("record_key")) for i in timeline}),
        "verdicts": verdicts,
        "timeline": timeline,
    }


# --------------------------------------------------------------------------- endpoint


def register_endpoint(services: Any) -> str:
    """Put ``public_url`` on chain as this region's endpoint if it differs; say what happened.

    Returns ``"unset"`` (no public_url), ``"no_signer"``, ``"unchanged"`` or ``"registered"``;
    ChainError (transient) and ContractError (the signer is not the region's) propagate.
    """
    url = (services.settings.public_url or "").strip().rstrip("/")
    if not url:
        return "unset"
    if services.signer is None:
        return "no_signer"
    region = services.settings.region
    consortium = services.chain.consortium
    current = services.chain.rpc("endpointOf", lambda: consortium.endpoint_of(region))
    if current == url:
        return "unchanged"
    tx = services.chain.rpc("setEndpoint", lambda: consortium.set_endpoint(region, url))
    _log.info(
        "endpoint registered on chain",
        extra={"region": region, "endpoint": url, "previous": current, "tx_hash": tx.tx_hash},
    )
    return "registered"


class FederationRuntime:
    """The federation part of a running node: the history hook and endpoint registration.

    Registration runs in a background thread and retries chain outages with capped backoff,
    so a node starts (and serves) while the chain is away, as DESIGN §7 asks.
    """

    def __init__(self, services: Any, *, max_backoff: float = 30.0) -> None:
        self.services = services
        self.max_backoff = max_backoff
        self.endpoint_status: str = "pending"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> FederationRuntime:
        """Install the federated history hook and start registering the endpoint."""
        self.services.federated_history = federated_history
        if (self.services.settings.public_url or "").strip():
            self._thread = threading.Thread(
                target=self._register, name="endpoint-registration", daemon=True
            )
            self._thread.start()
        else:
            self.endpoint_status = "unset"
        return self

    def _register(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self.endpoint_status = register_endpoint(self.services)
                return
            except ContractError as e:
                # The chain refused (e.g. the key is not the region's signer): retrying
                # cannot help; health and logs say why.
                self.endpoint_status = f"refused: {e}"
                _log.error("endpoint registration refused", extra={"error": str(e)})
                return
            except ChainError as e:
                self.endpoint_status = f"retrying: {e}"
                _log.warning("endpoint registration failed; retrying", extra={"error": str(e)})
            self._stop.wait(delay)
            delay = min(delay * 2, self.max_backoff)

    def stop(self) -> None:
        """Stop the registration thread (if still retrying)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def start_federation(services: Any) -> FederationRuntime:
    """Wire the exchange/federation part into a node's services (called at app start-up)."""
    return FederationRuntime(services).start()
