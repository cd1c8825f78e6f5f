"""Shared helpers of the hardening suites: roles and signatures, nodes as real processes or
threads, a JSON-RPC link that can be cut, governance shortcuts and database counts.

Not a conftest: the test modules import these by name (several test folders have a
conftest.py, so ``import conftest`` would be ambiguous).
"""

from __future__ import annotations

import json
import os
import select
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.chain.localnode import dev_keys, free_port
from node_api import testing
from node_api.auth import PURPOSE_HEADER, SIGNATURE_HEADER
from node_api.client import sign_request
from node_api.config import Settings
from node_api.testing import LocalConsortium, node_environment
from node_api.testing import WorkerProcess as WorkerProcess  # the fault suites import it here

REPO = Path(__file__).resolve().parents[2]
BEIJING, TIANJIN, HEBEI = 110000, 120000, 130000
REGIONS = (BEIJING, TIANJIN, HEBEI)
# Funded dev accounts in no Consortium role (0 deploys, 1-3 are the founding signers).
OUTSIDER_KEY = dev_keys()[7]
SPARE_SIGNER_KEY = dev_keys()[8]
PURPOSE = "hardening suite"


# --------------------------------------------------------------------------- roles


def api_key(role: str, region: int = BEIJING) -> str:
    """The test API key of ``role`` at ``region``'s node."""
    return f"hardening-{role}-{region}-" + "q" * 32


def bearer(role: str, region: int = BEIJING, *, purpose: str | None = PURPOSE) -> dict[str, str]:
    """Headers authenticating as ``role`` of ``region``'s node by API key."""
    headers = {"Authorization": f"Bearer {api_key(role, region)}"}
    if purpose:
        headers[PURPOSE_HEADER] = purpose
    return headers


def member_headers(
    account: LocalAccount,
    method: str,
    path_and_query: str,
    body: bytes = b"",
    *,
    region: int = TIANJIN,
    audience: int = BEIJING,
    timestamp: int | None = None,
    nonce: str | None = None,
    purpose: str | None = PURPOSE,
) -> dict[str, str]:
    """Headers of one request signed as ``member:<region>`` for ``audience``'s node."""
    headers = {
        SIGNATURE_HEADER: sign_request(
            account,
            method=method,
            path_and_query=path_and_query,
            body=body,
            region=region,
            audience=audience,
            timestamp=timestamp,
            nonce=nonce,
        )
    }
    if purpose:
        headers[PURPOSE_HEADER] = purpose
    return headers


class RequestsMemberAuth(requests.auth.AuthBase):
    """``requests`` auth signing each prepared request as a member (schemathesis transport).

    Signs what the server will see: the percent-decoded path (ASGI ``scope["path"]``), the
    raw query string and the exact body bytes.
    """

    def __init__(self, account: LocalAccount, region: int, audience: int = BEIJING) -> None:
        self.account = account
        self.region = region
        self.audience = audience

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(request.url or "")
        path = unquote(url.path)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        request.headers[SIGNATURE_HEADER] = sign_request(
            self.account,
            method=request.method or "GET",
            path_and_query=f"{path}?{url.query}" if url.query else path,
            body=body,
            region=self.region,
            audience=self.audience,
        )
        request.headers.setdefault(PURPOSE_HEADER, PURPOSE)
        return request


# --------------------------------------------------------------------------- settings


def node_settings(
    chain: LocalConsortium, data_dir: Path, region: int = BEIJING, **overrides: Any
) -> Settings:
    """Settings of a test node of ``region`` on ``chain`` keeping its files in ``data_dir``."""
    values: dict[str, Any] = {
        "rpc_url": chain.rpc_url,
        "deployment_file": chain.deployment_file,
        "region": region,
        "data_dir": data_dir,
        "signer_key": chain.signer_key(region),
        "operator_keys": api_key("operator", region),
        "verifier_keys": api_key("verifier", region),
        "auditor_keys": api_key("auditor", region),
        "worker_mode": "off",
        "batch_size": 4096,
        "batch_max_age_seconds": 3600,
        "signer_cache_seconds": 0,
        "peer_timeout_seconds": 5,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


def node_env(
    chain: LocalConsortium,
    data_dir: Path,
    region: int = BEIJING,
    *,
    rpc_url: str | None = None,
    **overrides: str,
) -> dict[str, str]:
    """Environment of a node or worker process configured by CREDIT_LEDGER_* variables only."""
    settings: dict[str, str] = {
        "operator_keys": api_key("operator", region),
        "verifier_keys": api_key("verifier", region),
        "auditor_keys": api_key("auditor", region),
        "worker_poll_seconds": "0.1",
        "batch_max_age_seconds": "3600",
        "signer_cache_seconds": "0",
        "log_level": "WARNING",
    }
    if rpc_url:
        settings["rpc_url"] = rpc_url
    env = node_environment(chain, data_dir, region, **{**settings, **overrides})
    # The repo imports web3 and friends: without bytecode caching (PYTHONDONTWRITEBYTECODE
    # is set here) every process start recompiles them for ~6 s of CPU. A private cache
    # prefix keeps the tree clean and makes restarts cost ~2 s.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(_pycache_prefix())
    return env


def _pycache_prefix() -> Path:
    path = Path(os.environ.get("CREDIT_LEDGER_TEST_PYCACHE", "/tmp/credit-ledger-test-pycache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- processes


class NodeProcess(testing.NodeProcess):
    """``uvicorn node_api.main:app`` as its own process group, configured by ``env``, its log
    ``data_dir/node-<port>.log``, ``http`` authenticated as the region's operator."""

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str],
        *,
        port: int | None = None,
        wait: bool = True,
        uvicorn_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        port = port or free_port()
        super().__init__(
            env,
            data_dir / f"node-{port}.log",
            port=port,
            headers=bearer("operator", int(env["CREDIT_LEDGER_REGION"])),
            timeout=120,
            uvicorn_args=uvicorn_args,
            wait=wait,
        )


class ServerThread:
    """uvicorn serving an app on a loopback port from a daemon thread (peers of a test node)."""

    def __init__(self, app: Any, port: int | None = None, **config: Any) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        options = {"host": "127.0.0.1", "port": self.port, "log_level": "warning", **config}
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        """Start serving; wait until the socket listens."""
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server thread did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving (lifespan shutdown included)."""
        self.server.should_exit = True
        self.thread.join(timeout=30)


# --------------------------------------------------------------------------- chain link


class RpcLink:
    """A TCP relay in front of a chain's JSON-RPC port that a test can cut and restore.

    ``cut()`` closes every relayed connection and refuses new ones (the RPC endpoint is
    down); ``restore()`` listens again on the same port. ``cut_after(marker)`` relays the
    next request containing ``marker`` (e.g. ``eth_sendRawTransaction``) to the chain and
    then cuts before the answer comes back: the transaction is out, its sender never learns.
    """

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._cut_marker: bytes | None = None
        self.cut_event = threading.Event()
        self.requests_relayed = 0
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            pair = {"doomed": False}
            threading.Thread(
                target=self._pump, args=(client, upstream, True, pair), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, False, pair), daemon=True
            ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, outbound: bool, pair: dict[str, bool]
    ) -> None:
        try:
            while True:
                readable, _, _ = select.select([source], [], [], 1.0)
                if not readable:
                    if source.fileno() < 0:
                        return
                    continue
                data = source.recv(65536)
                if not data:
                    break
                if not outbound and pair["doomed"]:
                    continue  # the answer to the marked request never arrives
                sink.sendall(data)
                if outbound:
                    self.requests_relayed += 1
                    marker = self._cut_marker
                    if marker is not None and marker in data:
                        self._cut_marker = None
                        pair["doomed"] = True
                        # The chain gets the request and acts on it; then the link goes down.
                        threading.Timer(0.5, self._cut_now).start()
        except (OSError, ValueError):
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def _cut_now(self) -> None:
        self.cut()
        self.cut_event.set()

    @property
    def is_up(self) -> bool:
        """Whether the link relays."""
        return self._listener is not None

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, []
        if listener is not None:
            # shutdown() first: close() alone leaves a socket that another thread is blocked
            # in accept() on listening (and accepting) until that accept returns.
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for s in connections:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self) -> None:
        """Listen again on the same port."""
        with self._lock:
            if self._listener is not None:
                return
        self._listen()

    def cut_after(self, marker: bytes) -> None:
        """Cut the link right after relaying the next request that contains ``marker``."""
        self.cut_event.clear()
        self._cut_marker = marker

    def close(self) -> None:
        """Stop relaying for good."""
        self._cut_marker = None
        self.cut()


# --------------------------------------------------------------------------- governance


def add_signer(chain: LocalConsortium, account: str, region: int) -> None:
    """Make ``account`` a signer of ``region`` (Beijing proposes, the target region approves)."""
    proposer = BEIJING if region != BEIJING else TIANJIN
    outcome = chain.consortium(chain.signer_key(proposer)).propose_add_signer(account, region)
    if not outcome.executed:
        outcome = chain.consortium(chain.signer_key(region)).approve(outcome.proposal_id)
    assert outcome.executed, "AddSigner did not execute"


def remove_signer(chain: LocalConsortium, account: str, region: int) -> None:
    """Remove signer ``account`` of ``region`` (two founding regions vote)."""
    first, second = [r for r in REGIONS if r != region][:2]
    outcome = chain.consortium(chain.signer_key(first)).propose_remove_signer(account, region)
    if not outcome.executed:
        outcome = chain.consortium(chain.signer_key(second)).approve(outcome.proposal_id)
    assert outcome.executed, "RemoveSigner did not execute"


# --------------------------------------------------------------------------- database


def db_path(data_dir: Path) -> Path:
    """The SQLite file of a node keeping its files in ``data_dir``."""
    return data_dir / "node.db"


def db_counts(path: Path) -> dict[str, int]:
    """Rows of the tables that hold what a node accepted and sealed (read-only connection)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("records", "record_versions", "batches")
        }
    finally:
        connection.close()


def db_query(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of one read-only query."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return list(connection.execute(sql, params).fetchall())
    finally:
        connection.close()


# --------------------------------------------------------------------------- misc


def wait_until(
    condition: Callable[[], Any], timeout: float, message: str | Callable[[], str] = "timed out"
) -> Any:
    """Poll ``condition`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(0.1)


@contextmanager
def timed(figures: dict[str, Any], name: str) -> Iterator[None]:
    """Record the wall time of the block in ``figures[name]`` (seconds)."""
    started = time.monotonic()
    try:
        yield
    finally:
        figures[name] = round(time.monotonic() - started, 2)


def account(key: str) -> LocalAccount:
    """The eth-account LocalAccount of a private key."""
    acct: LocalAccount = Account.from_key(key)
    return acct


# Every suite's figures of this pytest run, in the order reported; the terminal-summary hook
# of conftest.py prints them and writes them to <basetemp>/hardening-figures.json.
REPORTED: list[dict[str, Any]] = []


def report_figures(name: str, figures: dict[str, Any]) -> None:
    """Record a suite's figures for the terminal summary, print them as one JSON line (``-s``
    or the captured output shows it) and append them to ``$CREDIT_LEDGER_HARDENING_REPORT``
    when that is set."""
    entry = json.loads(json.dumps({"suite": name, **figures}, sort_keys=True, default=str))
    REPORTED.append(entry)
    line = json.dumps(entry, sort_keys=True)
    print(f"\nHARDENING {line}")
    target = os.environ.get("CREDIT_LEDGER_HARDENING_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(line + "\n")


# --------------------------------------------------------------------------- exactly once


def wait_all_anchored(node: NodeProcess, timeout: float = 180.0) -> dict[str, Any]:
    """Wait until the node has nothing pending or sealed; its health report."""
    return node.wait_anchored(timeout)


def check_anchored_exactly_once(
    data_dir: Path, anchor: Any, region: int, first_seq: int, accepted: set[str]
) -> dict[str, int]:
    """Every accepted record anchored, every version in exactly one batch, the batches on
    chain contiguous from ``first_seq``, each once, with the roots the database sealed.

    Reads the node's SQLite file and the chain; returns counts for the figures.
    """
    import ledger

    path = db_path(data_dir)
    next_seq = anchor.next_seq(region)
    events = anchor.batches_anchored(region, from_seq=first_seq, to_seq=next_seq - 1)
    seqs = [e.seq for e in events]
    assert seqs == list(range(first_seq, next_seq)), f"gaps or repeats on chain: {seqs}"
    sealed = db_query(path, "SELECT seq, root, size, state FROM batches ORDER BY seq")
    assert [row[0] for row in sealed] == seqs, "the database's batches are not the chain's"
    by_seq = {e.seq: e for e in events}
    for seq, root, size, state in sealed:
        assert state == "anchored", (seq, state)
        assert (bytes(root), size) == (by_seq[seq].root, by_seq[seq].size), seq
    versions = db_query(
        path,
        "SELECT batch_seq, leaf_index, leaf_hash, lower(hex(record_key)) FROM record_versions "
        "ORDER BY batch_seq, leaf_index",
    )
    assert all(v[0] is not None for v in versions), "versions left unanchored"
    leaves: dict[int, list[bytes]] = {}
    for seq, index, leaf_hash, _ in versions:
        leaves.setdefault(seq, []).append(bytes(leaf_hash))
        assert index == len(leaves[seq]) - 1, f"leaf indexes of batch {seq} are not 0..n-1"
    for seq, hashes in leaves.items():
        assert ledger.merkle_root(hashes) == by_seq[seq].root, f"batch {seq} root mismatch"
    all_leaves = [leaf for hashes in leaves.values() for leaf in hashes]
    assert len(all_leaves) == len(set(all_leaves)), "a version is in two batches"
    anchored_keys = {v[3] for v in versions}
    lost = accepted - anchored_keys
    assert not lost, f"{len(lost)} accepted records not anchored, e.g. {sorted(lost)[:3]}"
    return {
        "batches": len(seqs),
        "versions": len(all_leaves),
        "accepted": len(accepted),
        "lost": len(lost),
    }
