"""Start and stop a local anvil or ganache chain as a subprocess on a free loopback port.

For development, tests and the local consortium only: production nodes talk to the
regions' QBFT network and never to a process started here.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Literal

from ledger.errors import ChainError

__all__ = ["DEV_MNEMONIC", "LocalNode", "dev_keys", "free_port", "rpc_call"]

NodeKind = Literal["anvil", "ganache"]

# The well-known development mnemonic of anvil and hardhat; ganache is given the same one,
# so both chains fund the same accounts and tests can run unchanged on either.
DEV_MNEMONIC = "test test test test test test test test test test test junk"

_REPO_ROOT = Path(__file__).resolve().parents[2]
_DEFAULT_CHAIN_ID = {"anvil": 31337, "ganache": 1337}


@cache
def dev_keys(count: int = 10) -> tuple[str, ...]:
    """Private keys (0x hex) of the first ``count`` accounts of DEV_MNEMONIC."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return tuple(
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.to_0x_hex()
        for i in range(count)
    )


# Ports free_port has handed out in this process. A server given a port binds it only
# once it has started, seconds later; until then the kernel can offer the same port again,
# and two servers would be told the same port (the one that binds second exits, and its
# clients talk to the other one).
_ports_given: set[int] = set()
_ports_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and that this process has
    not handed out before."""
    with _ports_lock:
        for _ in range(1000):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port: int = s.getsockname()[1]
            if port not in _ports_given:
                _ports_given.add(port)
                return port
    raise ChainError("no loopback port left that this process has not handed out already")


def rpc_call(
    url: str, method: str, params: list[object] | None = None, timeout: float = 5.0
) -> object:
    """One JSON-RPC call with the standard library (used before web3 is set up)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise ChainError(f"{method}: {answer['error']}")
    return answer["result"]


def _binary(kind: NodeKind) -> str:
    override = os.environ.get(f"CREDIT_LEDGER_{kind.upper()}")
    candidates = [override] if override else []
    candidates.append(str(_REPO_ROOT / "node_modules" / ".bin" / kind))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which(kind)
    if found:
        return found
    raise ChainError(
        f"{kind} not found: run `npm ci` in the repository or set CREDIT_LEDGER_{kind.upper()}"
    )


class LocalNode:
    """A local development chain process (anvil by default, or ganache).

    ``state_dir`` makes the chain persistent: anvil loads and periodically dumps its state
    there, ganache keeps its database there. Without it the chain lives in memory.
    """

    def __init__(
        self,
        kind: NodeKind = "anvil",
        *,
        state_dir: Path | str | None = None,
        port: int | None = None,
        chain_id: int | None = None,
        accounts: int = 10,
        startup_timeout: float = 60.0,
    ) -> None:
        if kind not in ("anvil", "ganache"):
            raise ValueError(f"kind must be 'anvil' or 'ganache', not {kind!r}")
        self.kind: NodeKind = kind
        self.state_dir = Path(state_dir).resolve() if state_dir else None
        self.port = port or free_port()
        self.chain_id = chain_id or _DEFAULT_CHAIN_ID[kind]
        self.accounts = accounts
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def rpc_url(self) -> str:
        """HTTP JSON-RPC endpoint of the node."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def dev_keys(self) -> tuple[str, ...]:
        """Private keys of the funded development accounts (same on anvil and ganache)."""
        return dev_keys(self.accounts)

    @property
    def log_path(self) -> Path | None:
        """File receiving the node's stdout and stderr."""
        return self._log_path

    def _command(self) -> list[str]:
        binary = _binary(self.kind)
        if self.kind == "anvil":
            command = [
                binary,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--chain-id",
                str(self.chain_id),
                "--mnemonic",
                DEV_MNEMONIC,
                "--accounts",
                str(self.accounts),
                "--balance",
                "1000000",
            ]
            if self.state_dir:
                # --state loads the file at start and dumps it at exit; the interval dump
                # bounds what a hard kill can lose to one second of blocks.
                command += [
                    "--state",
                    str(self.state_dir / "anvil-state.json"),
                    "--state-interval",
                    "1",
                ]
            return command
        command = [
            binary,
            "--server.host",
            "127.0.0.1",
            "--server.port",
            str(self.port),
            "--chain.chainId",
            str(self.chain_id),
            "--wallet.mnemonic",
            DEV_MNEMONIC,
            "--wallet.totalAccounts",
            str(self.accounts),
            "--wallet.defaultBalance",
            "1000000",
            "--logging.quiet",
        ]
        if self.state_dir:
            command += ["--database.dbPath", str(self.state_dir / "ganache-db")]
        return command

    def start(self) -> LocalNode:
        """Start the process and wait until it answers ``eth_chainId``."""
        if self._process is not None:
            return self
        log_dir = self.state_dir or Path(tempfile.mkdtemp(prefix=f"credit-ledger-{self.kind}-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log_path = log_dir / f"{self.kind}.log"
        log = self._log_path.open("ab")
        self._process = subprocess.Popen(
            self._command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process.poll() is not None:
                tail = self._log_path.read_text(errors="replace")[-2000:]
                self._process = None
                raise ChainError(f"{self.kind} exited at start (port {self.port}):\n{tail}")
            try:
                answered = int(str(rpc_call(self.rpc_url, "eth_chainId", timeout=2)), 16)
            except (OSError, urllib.error.URLError, ValueError, ChainError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise ChainError(
                        f"{self.kind} did not answer on {self.rpc_url} "
                        f"within {self.startup_timeout}s"
                    ) from None
                time.sleep(0.1)
                continue
            if answered != self.chain_id:
                self.stop()
                raise ChainError(
                    f"{self.kind} answered chain id {answered}, expected {self.chain_id}"
                )
            return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the process; SIGINT first so anvil dumps its state, SIGKILL if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=timeout)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()

    def kill(self) -> None:
        """SIGKILL the process, as a crash would (fault tests)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> LocalNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
