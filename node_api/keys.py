"""Secrets of a node: the salt secret (generated on first start) and the signer account."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import tempfile
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from node_api.config import Settings

__all__ = ["load_node_secret", "load_signer", "hash_api_key", "SignerConfigError"]

_log = logging.getLogger("node_api.keys")

_SECRET_BYTES = 32


class SignerConfigError(RuntimeError):
    """The signer key is configured but cannot be loaded."""


def load_node_secret(path: Path) -> bytes:
    """Read the node secret, creating it (0600, 32 random bytes) if the file is missing.

    Salts are HMAC(node secret, record_key || version) (DESIGN §3), so losing this file only
    means new salts; every stored version keeps its own salt in the database.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _create_secret(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        _log.warning(
            "node secret is readable by others", extra={"path": str(path), "mode": oct(mode)}
        )
    secret = bytes.fromhex(path.read_text().strip())
    if len(secret) < 16:
        raise ValueError(f"node secret in {path} is shorter than 16 bytes")
    return secret


def _create_secret(path: Path) -> None:
    # Written whole to a private file, then linked into place: link() fails if the name
    # exists, so of processes starting together exactly one secret wins, and nobody reads
    # a file another process has created but not yet written (O_EXCL on the name alone
    # left that window: the second process read an empty secret and refused to start).
    fd, tmp = tempfile.mkstemp(prefix=".node-secret-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(_SECRET_BYTES) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        _log.info("generated node secret", extra={"path": str(path)})
    finally:
        os.unlink(tmp)


def load_signer(settings: Settings) -> LocalAccount | None:
    """The region's signer account from the encrypted keystore, or a raw dev key, or None."""
    if settings.signer_keystore is not None:
        if settings.signer_password_file is None:
            raise SignerConfigError("signer_keystore needs signer_password_file")
        try:
            keystore = json.loads(settings.signer_keystore.read_text(encoding="utf-8"))
            password = settings.signer_password_file.read_text(encoding="utf-8").rstrip("\r\n")
            key = Account.decrypt(keystore, password)
        except (OSError, ValueError) as e:
            raise SignerConfigError(f"cannot decrypt {settings.signer_keystore}: {e}") from e
        account: LocalAccount = Account.from_key(key)
        return account
    if settings.signer_key is not None:
        account = Account.from_key(settings.signer_key.get_secret_value())
        _log.warning(
            "signer key given in plain text (development only); use signer_keystore in production",
            extra={"address": account.address},
        )
        return account
    return None


def hash_api_key(key: str) -> str:
    """SHA-256 hex of an API key, or the hash itself if given as ``sha256:<hex>``.

    Keys are random tokens of high entropy, so an unsalted fast hash suffices to keep a
    database dump from yielding usable keys; a password hash would only slow every request.
    """
    if key.startswith("sha256:"):
        digest = key.removeprefix("sha256:").lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("sha256: key hash must be 64 hex digits")
        return digest
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
