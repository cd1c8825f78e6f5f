"""Settings of one regional node, read from ``CREDIT_LEDGER_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "ROLES"]

# Roles that authenticate with an API key; `member:<region>` authenticates by signature.
ROLES = ("operator", "verifier", "auditor")


class Settings(BaseSettings):
    """Everything a node needs; every field has a default so the app starts unconfigured.

    Relative paths are taken relative to the working directory of the process.
    """

    model_config = SettingsConfigDict(env_prefix="CREDIT_LEDGER_", extra="ignore")

    # --- chain
    rpc_url: str = "http://127.0.0.1:8545"
    deployment_file: Path = Path(".local/deployment.json")
    chain_timeout_seconds: float = Field(10.0, gt=0)
    # A sent transaction not mined within this time is looked up: if the node no longer
    # knows it (dropped from the pool), the batch is resent with a fresh nonce.
    chain_receipt_timeout_seconds: float = Field(120.0, gt=0)

    # --- identity
    region: int = Field(110000, ge=1, le=2**32 - 1)
    signer_keystore: Path | None = None
    signer_password_file: Path | None = None
    signer_key: SecretStr | None = Field(
        None, description="raw private key, development only (logged as a warning)"
    )

    # --- storage
    data_dir: Path | None = Field(None, description="default .local/node-<region>")
    database_url: str | None = Field(None, description="default sqlite:///<data_dir>/node.db")
    node_secret_file: Path | None = Field(
        None, description="HMAC key of the salts; default <data_dir>/node-secret, created 0600"
    )

    # --- anchoring
    batch_size: int = Field(4096, ge=1, le=1 << 20)
    batch_max_age_seconds: float = Field(60.0, gt=0)
    # POST /v1/anchor waits this long for a worker busy with earlier batches, then answers
    # 503 with reason "worker_busy" (`credit-ledger import --anchor` then asks again).
    anchor_wait_seconds: float = Field(300.0, gt=0)
    # A head update (a version > 1) costs ~50,000 gas; 256 keep a batch under ~13M gas,
    # inside the 30M block gas limit common to dev chains and QBFT genesis files.
    max_heads_per_batch: int = Field(256, ge=1, le=4096)
    worker_mode: Literal["inprocess", "external", "off"] = "inprocess"
    worker_poll_seconds: float = Field(0.5, gt=0)
    worker_lease_seconds: float = Field(30.0, ge=2)
    rpc_backoff_max_seconds: float = Field(30.0, gt=0)
    worker_metrics_port: int | None = Field(
        None, description="Prometheus port of an external worker"
    )

    # --- API access: comma-separated keys or `sha256:<hex>` hashes; or a file, one per line
    operator_keys: SecretStr = SecretStr("")
    verifier_keys: SecretStr = SecretStr("")
    auditor_keys: SecretStr = SecretStr("")
    operator_keys_file: Path | None = None
    verifier_keys_file: Path | None = None
    auditor_keys_file: Path | None = None

    # --- member requests (signed by another region's signer key)
    member_clock_skew_seconds: int = Field(30, ge=1, le=600)
    # A removed signer stays authorised at most this long; capped so the cache can never
    # keep a revocation from taking effect for more than a few seconds.
    signer_cache_seconds: float = Field(3.0, ge=0, le=10)

    # --- exchange and federation (other regions' nodes)
    public_url: str | None = Field(
        None, description="this node's URL for other regions; registered on chain at start"
    )
    peer_timeout_seconds: float = Field(10.0, gt=0)
    max_package_bytes: int = Field(4 * 1024**3, ge=1024)
    # A whole download of a peer's package; httpx's timeout is per read, and a peer that
    # sends a byte now and then would otherwise hold an integrity check open indefinitely.
    max_package_seconds: float = Field(3600.0, gt=0)

    # --- limits and caches
    max_records_per_request: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    # A request body that stalls this long between chunks is answered 408 and its connection
    # closed: a client trickling a body must not hold a connection (and its buffer) forever.
    request_body_timeout_seconds: float = Field(30.0, gt=0)
    proof_cache_batches: int = Field(8, ge=0)
    # Processes that parse and validate large submissions beside the node's own (0: none,
    # all in the node's process); default one per core but the node's, at most four.
    intake_processes: int | None = Field(None, ge=0, le=64)

    # --- logging
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    # --- tests only: os._exit() the process at a named point of the anchoring pipeline
    test_crash_at: Literal["during_seal", "after_seal", "after_send"] | None = None

    @field_validator("signer_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def resolved_data_dir(self) -> Path:
        """Directory of the node's own files (database, secret)."""
        return self.data_dir or Path(".local") / f"node-{self.region}"

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.resolved_data_dir / 'node.db').resolve()}"

    @property
    def resolved_secret_file(self) -> Path:
        """File holding the node secret from which salts are derived."""
        return self.node_secret_file or self.resolved_data_dir / "node-secret"

    def api_keys(self) -> dict[str, list[str]]:
        """Configured API keys (or ``sha256:`` hashes) per role, from variables and files."""
        keys: dict[str, list[str]] = {}
        for role in ROLES:
            inline: SecretStr = getattr(self, f"{role}_keys")
            entries = [k.strip() for k in inline.get_secret_value().split(",") if k.strip()]
            path: Path | None = getattr(self, f"{role}_keys_file")
            if path is not None:
                for line in path.read_text(encoding="utf-8").splitlines():
                    line = line.split("#", 1)[0].strip()
                    if line:
                        entries.append(line)
            keys[role] = entries
        return keys
