"""Client side of the node API: signing member requests, and a small HTTP client."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from node_api.auth import PURPOSE_HEADER, SIGNATURE_HEADER, body_digest, signing_text

__all__ = ["sign_request", "MemberAuth", "NodeClient"]


def sign_request(
    account: LocalAccount,
    *,
    method: str,
    path_and_query: str,
    body: bytes,
    region: int,
    audience: int,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> str:
    """The ``X-Credit-Ledger-Signature`` header value for one request.

    ``region`` is the caller's region (the account must be its signer in the Consortium),
    ``audience`` the region of the node called; ``path_and_query`` is the URL path as sent,
    with ``?query`` if any.
    """
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or secrets.token_hex(16)
    text = signing_text(
        method, path_and_query, region, audience, timestamp, nonce, body_digest(body)
    )
    signature = Account.sign_message(encode_defunct(text=text), private_key=account.key).signature
    return (
        f"region={region}; address={account.address}; audience={audience}; "
        f"timestamp={timestamp}; nonce={nonce}; signature=0x{signature.hex().removeprefix('0x')}"
    )


class MemberAuth(httpx.Auth):
    """httpx auth that signs every request as ``member:<region>`` for the node of ``audience``."""

    requires_request_body = True

    def __init__(self, account: LocalAccount, region: int, audience: int) -> None:
        self.account = account
        self.region = region
        self.audience = audience

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        path = request.url.path
        query = request.url.query.decode("ascii")
        request.headers[SIGNATURE_HEADER] = sign_request(
            self.account,
            method=request.method,
            path_and_query=f"{path}?{query}" if query else path,
            body=request.content,
            region=self.region,
            audience=self.audience,
        )
        yield request


class NodeClient:
    """Thin synchronous client of one node (API key or member signature)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        member: MemberAuth | None = None,
        purpose: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if purpose:
            headers[PURPOSE_HEADER] = purpose
        self.http = httpx.Client(
            base_url=base_url, headers=headers, auth=member, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _json(self, response: httpx.Response) -> Any:
        response.raise_for_status()
        return response.json()

    def submit(self, records: dict[str, Any] | list[dict[str, Any]]) -> Any:
        """POST /v1/records."""
        body = json.dumps(records, ensure_ascii=False).encode("utf-8")
        return self._json(
            self.http.post(
                "/v1/records", content=body, headers={"Content-Type": "application/json"}
            )
        )

    def anchor(self) -> Any:
        """POST /v1/anchor."""
        return self._json(self.http.post("/v1/anchor"))

    def receipt(self, record_key: str, version: int | None = None, disclose: bool = False) -> Any:
        """GET /v1/records/{record_key}/receipt."""
        params: dict[str, Any] = {}
        if version is not None:
            params["version"] = version
        if disclose:
            params["disclose"] = "true"
        return self._json(self.http.get(f"/v1/records/{record_key}/receipt", params=params))

    def verify(self, receipt_or_disclosure: dict[str, Any]) -> Any:
        """POST /v1/verify."""
        return self._json(self.http.post("/v1/verify", json=receipt_or_disclosure))

    def history(self, uscc: str, federated: bool = False) -> Any:
        """GET /v1/entities/{uscc}/history."""
        params = {"federated": "true"} if federated else {}
        return self._json(self.http.get(f"/v1/entities/{uscc}/history", params=params))
