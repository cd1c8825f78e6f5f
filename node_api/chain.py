"""The node's view of the chain: deployment, clients, cached reads and chain health.

Batch roots are cached forever once anchored (an anchored batch never changes); record
heads move with every correction and are always read fresh; signer checks are cached for
at most ``signer_cache_seconds`` so that a removed signer loses access within seconds.

Record heads (DESIGN §5 step 4) go through ``HeadReader``: every read is sent after it was
asked for (nothing is cached, so "current" means current at the chain's latest block when
the node asked, a few milliseconds after the request arrived), but concurrent reads share
one JSON-RPC batch, and the batch goes over a plain keep-alive HTTP connection instead of
web3's provider. Measured (bench/findings.md): one ``headOf`` through web3 and requests
cost 2.2 ms of CPU in the node, which capped ``POST /v1/verify`` at about 80 requests/s.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount

from ledger.chain import AnchorClient, ChainClient, ConsortiumClient, Deployment
from ledger.errors import ChainError, ContractError
from ledger.verify import RecordHead
from node_api.config import Settings
from node_api.metrics import NodeMetrics

__all__ = ["ChainGateway", "CachingAnchorReader", "HeadReader"]

_log = logging.getLogger("node_api.chain")

_T = TypeVar("_T")
_HEALTH_TTL = 2.0
_ROOT_CACHE_LIMIT = 100_000
_HEAD_BATCH_LIMIT = 1000  # eth_calls per JSON-RPC batch (Besu's default batch limit is 1024)


class _RpcConnection:
    """One keep-alive HTTP connection that posts JSON-RPC batches of ``eth_call``.

    Not thread-safe: one ``HeadReader`` thread owns it. A failed request closes the
    connection; the next one reconnects.
    """

    def __init__(self, rpc_url: str, timeout: float) -> None:
        url = urllib.parse.urlsplit(rpc_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ChainError(f"unsupported RPC URL {rpc_url!r}")
        self._url = url
        self._path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._timeout = timeout
        self._headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
        if url.username is not None:
            user = urllib.parse.unquote(url.username)
            password = urllib.parse.unquote(url.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = (
                http.client.HTTPSConnection
                if self._url.scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = cls(self._url.hostname or "", self._url.port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def eth_calls(self, to: str, payloads: Sequence[bytes]) -> list[bytes]:
        """``eth_call`` of each payload at "latest", in one batch; results in order."""
        body = json.dumps(
            [
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "eth_call",
                    "params": [{"to": to, "data": "0x" + data.hex()}, "latest"],
                }
                for i, data in enumerate(payloads)
            ]
        ).encode()
        for attempt in (1, 2):
            try:
                conn = self._connection()
                conn.request("POST", self._path, body, self._headers)
                response = conn.getresponse()
                raw = response.read()
                status = response.status
                break
            except (OSError, http.client.HTTPException) as e:
                self.close()
                # A keep-alive connection the server closed while idle fails on first use:
                # that one is retried once on a fresh connection (eth_call has no effect).
                if attempt == 2 or not isinstance(
                    e, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
                ):
                    raise ChainError(f"eth_call batch to {self._url.geturl()} failed: {e}") from e
        if status != 200:
            self.close()
            raise ChainError(f"eth_call batch: HTTP {status} {raw[:200]!r}")
        try:
            answers = json.loads(raw)
        except ValueError as e:
            raise ChainError(f"eth_call batch: invalid response: {e}") from e
        if not isinstance(answers, list):
            error = answers.get("error") if isinstance(answers, dict) else answers
            raise ChainError(f"eth_call batch rejected: {error}")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        results = []
        for i in range(len(payloads)):
            answer = by_id.get(i)
            if answer is None or answer.get("error") is not None or "result" not in answer:
                problem = answer.get("error") if answer else "no answer"
                raise ChainError(f"eth_call in batch: {problem}")
            results.append(bytes.fromhex(str(answer["result"]).removeprefix("0x")))
        return results


def decode_head(data: bytes) -> RecordHead:
    """``headOf``'s four static words (bytes32, uint64, uint32, uint8) as a RecordHead."""
    if len(data) != 128:
        raise ChainError(f"headOf returned {len(data)} bytes, expected 128")
    return RecordHead(
        leaf_hash=data[:32],
        seq=int.from_bytes(data[32:64], "big"),
        version=int.from_bytes(data[64:96], "big"),
        status=int.from_bytes(data[96:128], "big"),
    )


class HeadReader:
    """Reads ``headOf`` for many callers, coalescing concurrent reads into one batch.

    Callers enqueue (region, record_key) and wait for a future; one thread sends whatever
    is queued as a single JSON-RPC batch, so under load a round trip to the chain carries
    many reads, and an idle node sends each read at once. Nothing is cached: each read is
    sent after it was enqueued.
    """

    def __init__(self, gateway: ChainGateway) -> None:
        self._gateway = gateway
        self._queue: list[tuple[int, bytes, Future[RecordHead]]] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._connection: _RpcConnection | None = None
        self._selector: bytes | None = None
        self._address = ""

    def submit(self, region: int, record_key: bytes) -> Future[RecordHead]:
        """A future of the head of ``record_key`` in ``region``'s namespace."""
        if len(record_key) != 32:
            raise ChainError(f"record_key must be 32 bytes, got {len(record_key)}")
        future: Future[RecordHead] = Future()
        with self._wake:
            self._queue.append((region, record_key, future))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="head-reader", daemon=True)
                self._thread.start()
            self._wake.notify()
        return future

    def read_many(self, keys: Sequence[tuple[int, bytes]]) -> list[RecordHead]:
        """Heads of ``keys`` (region, record_key) in order, in as few batches as fit."""
        return self.wait([self.submit(region, key) for region, key in keys])

    def wait(self, futures: Sequence[Future[RecordHead]]) -> list[RecordHead]:
        """The heads of ``futures``; ChainError if the chain does not answer in time."""
        # Each batch is bounded by the request timeout; queued batches wait their turn.
        timeout = self._gateway.settings.chain_timeout_seconds * (
            2 + len(futures) // _HEAD_BATCH_LIMIT
        )
        try:
            return [f.result(timeout) for f in futures]
        except TimeoutError as e:
            raise ChainError(f"headOf: no answer from the chain in {timeout:g} s") from e

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue:
                    self._wake.wait()
                pending = self._queue[:_HEAD_BATCH_LIMIT]
                del self._queue[:_HEAD_BATCH_LIMIT]
            try:
                keys = [(region, key) for region, key, _ in pending]
                heads = self._gateway.rpc("headOf", lambda: self._read(keys))  # noqa: B023
            except BaseException as e:  # handed to every waiting caller
                for _, _, future in pending:
                    future.set_exception(e if isinstance(e, Exception) else ChainError(str(e)))
                continue
            for (_, _, future), head in zip(pending, heads, strict=True):
                future.set_result(head)

    def _read(self, keys: Sequence[tuple[int, bytes]]) -> list[RecordHead]:
        if self._connection is None or self._selector is None:
            anchor = self._gateway.anchor
            # headOf(uint32, bytes32) has static arguments and results, so the calls are
            # laid out by hand: eth_abi's generic codec cost about 0.3 ms per call.
            self._selector = anchor.abi.encode_call("headOf", (0, bytes(32)))[:4]
            self._address = anchor.address
            settings = self._gateway.settings
            self._connection = _RpcConnection(settings.rpc_url, settings.chain_timeout_seconds)
        selector = self._selector
        answers = self._connection.eth_calls(
            self._address, [selector + region.to_bytes(32, "big") + key for region, key in keys]
        )
        return [decode_head(data) for data in answers]


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
        self.heads = HeadReader(self)

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

    def cached_batch(self, region: int, seq: int) -> Any:
        """The cached ``batchOf`` of an anchored batch, or None (no chain request)."""
        return self._batches.get((region, seq))

    def head_of(self, region: int, record_key: bytes) -> RecordHead:
        """``headOf`` (a RecordHead), always fresh (read after this call, never cached)."""
        return self.heads.wait([self.heads.submit(region, record_key)])[0]

    def heads_of(self, keys: Sequence[tuple[int, bytes]]) -> list[RecordHead]:
        """``headOf`` of many (region, record_key) pairs, in order, batched; always fresh."""
        return self.heads.read_many(keys)

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
