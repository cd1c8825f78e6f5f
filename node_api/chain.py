"""The node's view of the chain: deployment, clients, cached reads and chain health.

Batch roots are cached forever once anchored (an anchored batch never changes); record
heads move with every correction and are always read fresh; signer checks are cached for
at most ``signer_cache_seconds`` so that a removed signer loses access within seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount

from ledger.chain import AnchorClient, ChainClient, ConsortiumClient, Deployment
from ledger.errors import ChainError, ContractError
from node_api.config import Settings
from node_api.metrics import NodeMetrics

__all__ = ["ChainGateway", "CachingAnchorReader"]

_log = logging.getLogger("node_api.chain")

_T = TypeVar("_T")
_HEALTH_TTL = 2.0
_ROOT_CACHE_LIMIT = 100_000


class ChainGateway:
    """Lazily connects to the deployment's contracts; every failure is a ChainError.

    Nothing here runs at construction, so a node starts (and reports in /v1/health) when
    the chain or the deployment file is missing.
    """

    def __init__(
        self, settings: Settings, signer: LocalAccount | None, metrics: NodeMetrics
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.metrics = metrics
        self._lock = threading.Lock()
        self._deployment: Deployment | None = None
        self._client: ChainClient | None = None
        self._anchor: AnchorClient | None = None
        self._consortium: ConsortiumClient | None = None
        self._batches: dict[tuple[int, int], Any] = {}
        self._signers: dict[tuple[str, int], tuple[float, bool]] = {}
        self._health: tuple[float, dict[str, Any]] | None = None

    # ----------------------------------------------------------------- connection

    def _connect(self) -> tuple[Deployment, ChainClient, AnchorClient, ConsortiumClient]:
        with self._lock:
            if self._client is None:
                path = self.settings.deployment_file
                if not path.is_file():
                    raise ChainError(f"no deployment file at {path}: deploy the contracts first")
                deployment = Deployment.load(path)
                client = ChainClient(
                    self.settings.rpc_url,
                    self.signer,
                    chain_id=deployment.chain_id,
                    request_timeout=self.settings.chain_timeout_seconds,
                    receipt_timeout=self.settings.chain_receipt_timeout_seconds,
                )
                self._deployment = deployment
                self._client = client
                self._anchor = deployment.anchor_client(client)
                self._consortium = deployment.consortium_client(client)
            assert self._deployment and self._anchor and self._consortium
            return self._deployment, self._client, self._anchor, self._consortium

    @property
    def deployment(self) -> Deployment:
        """The deployment file's content (ChainError if there is none)."""
        return self._connect()[0]

    @property
    def client(self) -> ChainClient:
        """The JSON-RPC client (signing with the region's signer, if configured)."""
        return self._connect()[1]

    @property
    def anchor(self) -> AnchorClient:
        """The CreditAnchor contract."""
        return self._connect()[2]

    @property
    def consortium(self) -> ConsortiumClient:
        """The Consortium contract."""
        return self._connect()[3]

    def rpc(self, operation: str, call: Callable[[], _T]) -> _T:
        """Run one chain call, counting failures (reverts are answers, not RPC errors)."""
        try:
            return call()
        except ContractError:
            raise
        except ChainError:
            self.metrics.rpc_errors.labels(operation).inc()
            raise
        except Exception as e:  # web3/requests internals leaking through: still a chain failure
            self.metrics.rpc_errors.labels(operation).inc()
            raise ChainError(f"{operation}: {e}") from e

    # ----------------------------------------------------------------- reads

    def batch_of(self, region: int, seq: int) -> Any:
        """``batchOf`` (an AnchoredBatch), cached once anchored."""
        key = (region, seq)
        cached = self._batches.get(key)
        if cached is not None:
            return cached
        batch = self.rpc("batchOf", lambda: self.anchor.batch_of(region, seq))
        if batch.size > 0:
            if len(self._batches) > _ROOT_CACHE_LIMIT:
                self._batches.clear()
            self._batches[key] = batch
        return batch

    def head_of(self, region: int, record_key: bytes) -> Any:
        """``headOf`` (a RecordHead), always fresh."""
        return self.rpc("headOf", lambda: self.anchor.head_of(region, record_key))

    def next_seq(self, region: int) -> int:
        """``nextSeq`` of ``region``."""
        return self.rpc("nextSeq", lambda: self.anchor.next_seq(region))

    def is_signer(self, address: str, region: int) -> bool:
        """``Consortium.isSigner``, cached for at most ``signer_cache_seconds``."""
        key = (address.lower(), region)
        now = time.monotonic()
        ttl = self.settings.signer_cache_seconds
        cached = self._signers.get(key)
        if cached is not None and now - cached[0] < ttl:
            return cached[1]
        answer = bool(self.rpc("isSigner", lambda: self.consortium.is_signer(address, region)))
        if ttl > 0:
            if len(self._signers) > 10_000:
                self._signers.clear()
            self._signers[key] = (now, answer)
        return answer

    def reader(self) -> CachingAnchorReader:
        """An ``ledger.verify.AnchorReader`` backed by this gateway's caches."""
        deployment = self.deployment
        return CachingAnchorReader(self, deployment.chain_id, deployment.anchor)

    # ----------------------------------------------------------------- health

    def health(self) -> dict[str, Any]:
        """Chain reachability, chain id and contract code check (cached for two seconds)."""
        now = time.monotonic()
        if self._health is not None and now - self._health[0] < _HEALTH_TTL:
            return self._health[1]
        report: dict[str, Any] = {
            "rpc_url": self.settings.rpc_url,
            "deployment_file": str(self.settings.deployment_file),
            "reachable": False,
            "contracts_ok": False,
            "signer": self.signer.address if self.signer else None,
        }
        try:
            deployment, client, _, consortium = self._connect()
            report["consortium"] = deployment.consortium
            report["anchor"] = deployment.anchor
            report["expected_chain_id"] = deployment.chain_id
            chain_id = int(
                str(self.rpc("eth_chainId", lambda: client.request("eth_chainId", []))), 16
            )
            report["chain_id"] = chain_id
            report["block_number"] = self.rpc("eth_blockNumber", client.block_number)
            report["reachable"] = True
            self.rpc("verify_deployment", lambda: deployment.verify_on_chain(client))
            report["contracts_ok"] = True
            if self.signer is not None:
                report["signer_authorised"] = self.is_signer(
                    self.signer.address, self.settings.region
                )
        except ChainError as e:
            report["error"] = str(e)
        self._health = (now, report)
        return report


class CachingAnchorReader:
    """``AnchorReader`` for ``ledger.verify``: chain id, anchor address, batch_of, head_of."""

    def __init__(self, gateway: ChainGateway, chain_id: int, anchor_address: str) -> None:
        self._gateway = gateway
        self.chain_id = chain_id
        self.anchor_address = anchor_address

    def batch_of(self, region: int, seq: int) -> Any:
        """Anchored batch (cached once anchored)."""
        return self._gateway.batch_of(region, seq)

    def head_of(self, region: int, record_key: bytes) -> Any:
        """Current record head (never cached)."""
        return self._gateway.head_of(region, record_key)
