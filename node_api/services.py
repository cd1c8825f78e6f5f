"""The long-lived objects of one node (database, chain, worker, auth), built once at start."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from sqlalchemy import select

from node_api.auth import Authenticator, Principal, sync_api_keys
from node_api.batches import ProofCache
from node_api.chain import ChainGateway
from node_api.config import Settings
from node_api.db import COMPONENTS, Database, migrate
from node_api.db.tables import node_meta
from node_api.intake_pool import IntakePool, default_processes
from node_api.keys import SignerConfigError, load_node_secret, load_signer
from node_api.logs import configure_logging
from node_api.metrics import NodeMetrics
from node_api.worker import AnchoringWorker

__all__ = ["Services", "FederatedHistory", "NodeConfigError"]

_log = logging.getLogger("node_api")


class NodeConfigError(RuntimeError):
    """The database belongs to another region, or similar misconfiguration."""


class FederatedHistory(Protocol):
    """Hook for ``GET /v1/entities/{uscc}/history?federated=true`` (the exchange part).

    Given this node's own history of ``uscc`` (the JSON the route returns without
    federation) and the caller, return the merged timeline across regions.
    """

    def __call__(
        self, services: Services, uscc: str, local: dict[str, Any], principal: Principal
    ) -> dict[str, Any]: ...


@dataclass
class Services:
    """Everything the routes and the worker share."""

    settings: Settings
    db: Database
    metrics: NodeMetrics
    chain: ChainGateway
    authenticator: Authenticator
    node_secret: bytes
    signer: LocalAccount | None
    worker: AnchoringWorker | None
    proof_cache: ProofCache
    intake_pool: IntakePool
    signer_error: str | None = None
    started_at: float = field(default_factory=time.time)
    # Set by the exchange/federation part of the node; None answers 501.
    federated_history: FederatedHistory | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        start_worker: bool | None = None,
        worker: bool = True,
        api: bool = True,
    ) -> Services:
        """Migrate the database, load secrets, connect lazily to the chain, start the worker.

        ``api=False`` (the external worker process) leaves the API keys alone: they belong
        to the configuration of the API process.
        """
        configure_logging(settings.log_level, settings.log_format)
        db = Database(settings.resolved_database_url)
        versions = migrate(db, COMPONENTS)
        _claim_region(db, settings.region)
        secret = load_node_secret(settings.resolved_secret_file)
        signer_error = None
        try:
            signer = load_signer(settings)
        except SignerConfigError as e:
            # Keep serving intake and reads; health shows why nothing gets anchored.
            _log.error("signer key not loaded", extra={"error": str(e)})
            signer, signer_error = None, str(e)
        metrics = NodeMetrics(db)
        chain = ChainGateway(settings, signer, metrics)
        if api:
            configured = settings.api_keys()
            if not any(configured.values()):
                _log.warning("no API keys configured: only signed member requests authenticate")
            sync_api_keys(db, configured)
        authenticator = Authenticator(
            db,
            settings.region,
            clock_skew_seconds=settings.member_clock_skew_seconds,
            is_signer=chain.is_signer,
        )
        anchoring = AnchoringWorker(settings, db, chain, metrics) if worker else None
        services = cls(
            settings=settings,
            db=db,
            metrics=metrics,
            chain=chain,
            authenticator=authenticator,
            node_secret=secret,
            signer=signer,
            worker=anchoring,
            proof_cache=ProofCache(settings.proof_cache_batches),
            intake_pool=IntakePool(
                default_processes()
                if settings.intake_processes is None
                else settings.intake_processes
            ),
            signer_error=signer_error,
        )
        if start_worker is None:
            start_worker = settings.worker_mode == "inprocess"
        if start_worker and anchoring is not None:
            anchoring.start()
        _log.info(
            "node started",
            extra={
                "region": settings.region,
                "database": db.describe(),
                "schema": versions,
                "worker_mode": settings.worker_mode,
                "signer": signer.address if signer else None,
                "batch_size": settings.batch_size,
            },
        )
        return services

    def close(self) -> None:
        """Stop the worker and the intake processes, and release the database."""
        try:
            if self.worker is not None:
                self.worker.stop()
        finally:
            self.intake_pool.close()
            self.db.dispose()


def _claim_region(db: Database, region: int) -> None:
    """Record the region in a new database; refuse a database of another region."""
    # Serialized: API processes of one node (uvicorn --workers) start together, and on
    # PostgreSQL both would find no region and insert it.
    with db.write(serialized=True) as conn:
        stored = conn.execute(select(node_meta.c.value).where(node_meta.c.key == "region")).scalar()
        if stored is None:
            conn.execute(node_meta.insert().values(key="region", value=str(region)))
        elif int(stored) != region:
            raise NodeConfigError(
                f"the database belongs to region {stored}, this node is region {region}"
            )
