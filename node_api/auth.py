"""Who is calling: roles from hashed API keys, and ``member:<region>`` from signed requests.

Member requests carry one header (see ``node_api.client.sign_request`` for the client side)::

    X-Credit-Ledger-Signature: region=120000; address=0x…; audience=110000;
                               timestamp=1732240000; nonce=<32 hex>; signature=0x…

``signature`` is an EIP-191 personal signature (``personal_sign``) of the UTF-8 text::

    credit-ledger-request/v1
    <METHOD>
    <path>[?<query>]
    <region>
    <audience>
    <timestamp>
    <nonce>
    <SHA-256 hex of the body>

The node accepts it if the audience is its own region (a request signed for one node
cannot be replayed to another), the timestamp is within ± ``member_clock_skew_seconds``,
the recovered address is the claimed one, the Consortium lists it as a signer of
``region`` (``isSigner``, cached for at most ``signer_cache_seconds``), and the
(address, nonce) pair was not seen inside the window.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from fastapi import Request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from node_api.config import ROLES
from node_api.db import Database
from node_api.db.tables import access_log, api_keys, member_nonces
from node_api.errors import BadRequest, Forbidden, Unauthenticated
from node_api.keys import hash_api_key

__all__ = [
    "SIGNATURE_HEADER",
    "PURPOSE_HEADER",
    "SIGNING_DOMAIN",
    "Principal",
    "Authenticator",
    "signing_text",
    "body_digest",
    "parse_signature_header",
    "sync_api_keys",
    "record_access",
]

_log = logging.getLogger("node_api.auth")

SIGNATURE_HEADER = "X-Credit-Ledger-Signature"
PURPOSE_HEADER = "X-Purpose"
SIGNING_DOMAIN = "credit-ledger-request/v1"

_NONCE_RE = re.compile(r"^[0-9a-f]{16,64}$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SIGNATURE_FIELDS = ("region", "address", "audience", "timestamp", "nonce", "signature")
_KEY_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    role: str  # operator | verifier | auditor | member
    name: str  # identity for the access log, never the key itself
    region: int | None = None
    address: str | None = None

    @property
    def role_label(self) -> str:
        """``member:<region>`` for members, the role otherwise."""
        return f"member:{self.region}" if self.role == "member" else self.role


def body_digest(body: bytes) -> str:
    """SHA-256 hex of a request body (of ``b""`` for requests without one)."""
    return hashlib.sha256(body).hexdigest()


def signing_text(
    method: str,
    path_and_query: str,
    region: int,
    audience: int,
    timestamp: int,
    nonce: str,
    digest: str,
) -> str:
    """The exact text a member signs (EIP-191) for one request."""
    return "\n".join(
        [
            SIGNING_DOMAIN,
            method.upper(),
            path_and_query,
            str(region),
            str(audience),
            str(timestamp),
            nonce,
            digest,
        ]
    )


def parse_signature_header(value: str) -> dict[str, str]:
    """Split ``k=v; k=v`` into a dict; raise Unauthenticated if a field is missing or repeated."""
    fields: dict[str, str] = {}
    for part in value.split(";"):
        if not part.strip():
            continue
        name, sep, item = part.partition("=")
        name = name.strip().lower()
        if not sep or name in fields:
            raise Unauthenticated(f"malformed {SIGNATURE_HEADER} header near {part.strip()!r}")
        fields[name] = item.strip()
    missing = [f for f in _SIGNATURE_FIELDS if f not in fields]
    if missing:
        raise Unauthenticated(f"{SIGNATURE_HEADER} lacks {', '.join(missing)}")
    return fields


def sync_api_keys(db: Database, configured: dict[str, list[str]]) -> int:
    """Make the config-sourced keys in the database exactly the configured ones (hashed)."""
    wanted: dict[str, str] = {}
    for role, keys in configured.items():
        for key in keys:
            key_hash = hash_api_key(key)
            previous = wanted.setdefault(key_hash, role)
            if previous != role:
                raise ValueError(f"one API key is configured for both {previous} and {role}")
    now = time.time()
    # Serialized: every API process of a node syncs the same keys when it starts.
    with db.write(serialized=True) as conn:
        existing = {
            row.key_hash: row
            for row in conn.execute(select(api_keys).where(api_keys.c.source == "config"))
        }
        for key_hash in existing.keys() - wanted.keys():
            conn.execute(delete(api_keys).where(api_keys.c.key_hash == key_hash))
        for key_hash, role in wanted.items():
            row = existing.get(key_hash)
            if row is not None and row.role == role:
                continue
            conn.execute(delete(api_keys).where(api_keys.c.key_hash == key_hash))
            conn.execute(
                api_keys.insert().values(
                    key_hash=key_hash,
                    role=role,
                    label=f"{role}:{key_hash[:8]}",
                    source="config",
                    created_at=now,
                )
            )
    return len(wanted)


class Authenticator:
    """Resolves a request to a Principal; shared by every route through ``deps``."""

    def __init__(
        self,
        db: Database,
        region: int,
        *,
        clock_skew_seconds: int,
        is_signer: Any,
    ) -> None:
        self.db = db
        self.region = region
        self.clock_skew_seconds = clock_skew_seconds
        self._is_signer = is_signer  # (address, region) -> bool, checked against the chain
        self._key_cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()
        self._last_prune = 0.0

    def invalidate_keys(self) -> None:
        """Forget cached API key lookups (after keys changed)."""
        with self._lock:
            self._key_cache.clear()

    def _api_key_principal(self, key: str) -> Principal:
        key_hash = hash_api_key(key) if not key.startswith("sha256:") else ""
        if not key_hash:
            raise Unauthenticated("send the API key itself, not its hash")
        now = time.monotonic()
        with self._lock:
            cached = self._key_cache.get(key_hash)
        if cached is not None and now - cached[0] < _KEY_CACHE_SECONDS:
            principal = cached[1]
        else:
            with self.db.read() as conn:
                row = conn.execute(
                    select(api_keys.c.role, api_keys.c.label).where(api_keys.c.key_hash == key_hash)
                ).first()
            principal = (
                Principal(role=row.role, name=row.label) if row and row.role in ROLES else None
            )
            with self._lock:
                if len(self._key_cache) > 10_000:
                    self._key_cache.clear()
                self._key_cache[key_hash] = (now, principal)
        if principal is None:
            raise Unauthenticated("unknown API key")
        return principal

    async def authenticate(self, request: Request) -> Principal:
        """The caller of ``request``; raises Unauthenticated or Forbidden."""
        signature = request.headers.get(SIGNATURE_HEADER)
        authorization = request.headers.get("Authorization")
        if signature is not None and authorization is not None:
            raise Unauthenticated(f"send either an API key or {SIGNATURE_HEADER}, not both")
        if signature is not None:
            body = await request.body()
            path = request.scope["path"]
            query = request.scope.get("query_string", b"").decode("latin-1")
            path_and_query = f"{path}?{query}" if query else path
            return self.verify_member(request.method, path_and_query, body, signature)
        if authorization is None:
            raise Unauthenticated(f"send Authorization: Bearer <API key> or {SIGNATURE_HEADER}")
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("Authorization must be 'Bearer <API key>'")
        return self._api_key_principal(key.strip())

    def verify_member(
        self, method: str, path_and_query: str, body: bytes, header: str
    ) -> Principal:
        """Check a signed member request (see the module docstring); return member:<region>."""
        fields = parse_signature_header(header)
        try:
            region = int(fields["region"])
            audience = int(fields["audience"])
            timestamp = int(fields["timestamp"])
        except ValueError:
            raise Unauthenticated("region, audience and timestamp must be integers") from None
        address, nonce = fields["address"], fields["nonce"].lower()
        if not _ADDRESS_RE.match(address):
            raise Unauthenticated("address must be a 0x-prefixed 20-byte hex address")
        if not _NONCE_RE.match(nonce):
            raise Unauthenticated("nonce must be 16 to 64 hex digits")
        if audience != self.region:
            raise Unauthenticated(
                f"request signed for region {audience}, this node is {self.region}"
            )
        now = time.time()
        if abs(now - timestamp) > self.clock_skew_seconds:
            raise Unauthenticated(
                f"timestamp {timestamp} is outside ±{self.clock_skew_seconds}s of the node clock",
                server_time=int(now),
            )
        text = signing_text(
            method, path_and_query, region, audience, timestamp, nonce, body_digest(body)
        )
        try:
            recovered = Account.recover_message(
                encode_defunct(text=text), signature=fields["signature"]
            )
        except Exception:  # malformed signature bytes: eth-keys raises several types
            raise Unauthenticated("signature does not decode") from None
        if recovered.lower() != address.lower():
            raise Unauthenticated(
                "signature does not match the address (wrong key or altered request)"
            )
        if not self._is_signer(recovered, region):
            raise Forbidden(
                f"{recovered} is not a signer of active region {region} in the Consortium"
            )
        self._remember_nonce(recovered, nonce, now)
        return Principal(
            role="member", name=f"member:{region}:{recovered}", region=region, address=recovered
        )

    def _remember_nonce(self, address: str, nonce: str, now: float) -> None:
        try:
            with self.db.write() as conn:
                if now - self._last_prune > 60:
                    # Older nonces fail the timestamp check anyway; keep the table window-sized.
                    conn.execute(
                        delete(member_nonces).where(
                            member_nonces.c.seen_at < now - 2 * self.clock_skew_seconds - 60
                        )
                    )
                    self._last_prune = now
                conn.execute(
                    member_nonces.insert().values(address=address, nonce=nonce, seen_at=now)
                )
        except IntegrityError:
            raise Unauthenticated("nonce already used (replayed request)") from None


def record_access(
    db: Database,
    principal: Principal,
    request: Request,
    action: str,
    *,
    record_key: bytes | None = None,
    uscc: str | None = None,
    version: int | None = None,
) -> None:
    """Write one access-log entry for a non-operator read of record payloads.

    Requires the ``X-Purpose`` header: a stated purpose is what makes the log auditable.
    Operators (the region's own staff) are not logged.
    """
    if principal.role == "operator":
        return
    purpose = (request.headers.get(PURPOSE_HEADER) or "").strip()
    if not purpose:
        raise BadRequest(
            f"reading record payloads needs a {PURPOSE_HEADER} header stating the purpose"
        )
    if len(purpose) > 500:
        raise BadRequest(f"{PURPOSE_HEADER} is limited to 500 characters")
    with db.write() as conn:
        conn.execute(
            access_log.insert().values(
                at=time.time(),
                principal=principal.name,
                role=principal.role_label,
                action=action,
                record_key=record_key,
                uscc=uscc,
                version=version,
                purpose=purpose,
                remote_addr=request.client.host if request.client else None,
            )
        )
