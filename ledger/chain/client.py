"""JSON-RPC client for the consortium chain: local signing, cached constants, decoded reverts.

Transactions are built and signed here with eth-account and sent raw, so nothing depends on
unlocked node accounts, and web3's default middlewares (which add an ``eth_chainId`` round trip
to many calls, DESIGN §8) are not installed: the chain id is fetched once, nonces are managed
locally, the gas price is cached for a few seconds.

Reverts surface differently per node (anvil: ``error.data`` is the revert data; ganache:
``error.data`` for ``eth_call`` but ``error.data.result`` for ``eth_estimateGas``, and a mined
failure carries no data at all). Every path ends in :class:`~ledger.errors.ContractError` with
the custom error decoded from the contracts' ABIs.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import requests
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.abi import (
    collapse_if_tuple,
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
)
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import HTTPProvider, Web3

from ledger.errors import ChainError, ContractError

__all__ = [
    "BlockId",
    "BoundContract",
    "ChainClient",
    "ChainEvent",
    "ContractAbi",
    "ErrorDecoder",
    "TxResult",
    "artifact_abi",
    "topic_address",
    "topic_uint",
]

_log = logging.getLogger(__name__)

BlockId = int | str
"""A block number or a tag ("latest", "pending", "earliest", "safe", "finalized")."""

# Substrings of the send errors after which the nonce we hold is wrong (anvil/reth, geth,
# Besu, ganache wording) and a resync from the node's pending count fixes it.
_NONCE_ERRORS = (
    "nonce too low",
    "nonce too high",
    "correct nonce",
    "invalid nonce",
    "nonce_too_low",
    "known transaction",
    "replacement transaction underpriced",
)
# ... and after which the gas price we cached is too low for the current base fee.
_FEE_ERRORS = (
    "underpriced",
    "less than block base fee",
    "gas price too low",
    "gas price below",
    "fee cap",
    "max fee per gas",
)
_ALREADY_KNOWN = ("already known", "already imported", "alreadyknown")

_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TxResult:
    """A mined transaction: hash (0x hex), block, gas used, status (1 success), raw logs."""

    tx_hash: str
    block_number: int
    gas_used: int
    status: int
    logs: tuple[Mapping[str, Any], ...] = field(default=(), repr=False, compare=False)
    contract_address: str | None = None


@dataclass(frozen=True)
class ChainEvent:
    """A decoded contract event with where it was logged."""

    name: str
    args: Mapping[str, Any]
    address: str
    block_number: int
    tx_hash: str
    log_index: int


# --------------------------------------------------------------------------- ABI codec


def _abi_type(param: Mapping[str, Any]) -> str:
    return collapse_if_tuple(cast(Any, param))


def _to_python(value: Any, abi_type: str) -> Any:
    """Normalise eth-abi output: checksum addresses, tuples of lists to lists."""
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type.endswith("]"):
        inner = abi_type[: abi_type.rindex("[")]
        return [_to_python(v, inner) for v in value]
    return value


class ContractAbi:
    """Encoder/decoder for one contract ABI: calls, results, events and custom errors.

    Functions are looked up by name; the contracts of this project have no overloads, and an
    overloaded name is refused rather than guessed.
    """

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        self.abi = list(abi)
        self._functions: dict[str, Mapping[str, Any]] = {}
        self._events_by_name: dict[str, Mapping[str, Any]] = {}
        self._events_by_topic: dict[bytes, Mapping[str, Any]] = {}
        self.constructor: Mapping[str, Any] | None = None
        for item in self.abi:
            kind = item.get("type")
            if kind == "function":
                if item["name"] in self._functions:
                    raise ValueError(f"overloaded function {item['name']} is not supported")
                self._functions[item["name"]] = item
            elif kind == "event":
                self._events_by_name[item["name"]] = item
                self._events_by_topic[event_abi_to_log_topic(cast(Any, item))] = item
            elif kind == "constructor":
                self.constructor = item

    def function(self, name: str) -> Mapping[str, Any]:
        """The ABI entry of function ``name``."""
        try:
            return self._functions[name]
        except KeyError:
            raise ValueError(f"no function {name!r} in ABI") from None

    def encode_call(self, name: str, args: Sequence[Any]) -> bytes:
        """Selector plus ABI-encoded arguments."""
        fn = self.function(name)
        types = [_abi_type(p) for p in fn["inputs"]]
        return function_abi_to_4byte_selector(cast(Any, fn)) + abi_encode(types, list(args))

    def encode_constructor(self, args: Sequence[Any]) -> bytes:
        """ABI-encoded constructor arguments (to append to the creation bytecode)."""
        inputs = self.constructor["inputs"] if self.constructor else []
        return abi_encode([_abi_type(p) for p in inputs], list(args))

    def decode_result(self, name: str, data: bytes) -> tuple[Any, ...]:
        """Decode the return data of function ``name``."""
        outputs = self.function(name)["outputs"]
        types = [_abi_type(p) for p in outputs]
        try:
            values = abi_decode(types, data)
        except DecodingError as e:
            raise ChainError(f"cannot decode result of {name}: {data.hex() or 'empty'}") from e
        return tuple(_to_python(v, t) for v, t in zip(values, types, strict=True))

    def event_topic(self, name: str) -> bytes:
        """topic0 of event ``name``."""
        try:
            return event_abi_to_log_topic(cast(Any, self._events_by_name[name]))
        except KeyError:
            raise ValueError(f"no event {name!r} in ABI") from None

    def event_abi(self, name: str) -> Mapping[str, Any]:
        """The ABI entry of event ``name``."""
        return self._events_by_name[name]

    def decode_log(self, log: Mapping[str, Any]) -> ChainEvent | None:
        """Decode a raw JSON-RPC log; None if its topic0 is not an event of this ABI."""
        topics = [_hex_to_bytes(t) for t in log.get("topics", [])]
        if not topics or topics[0] not in self._events_by_topic:
            return None
        event = self._events_by_topic[topics[0]]
        indexed = [p for p in event["inputs"] if p.get("indexed")]
        plain = [p for p in event["inputs"] if not p.get("indexed")]
        args: dict[str, Any] = {}
        for param, topic in zip(indexed, topics[1:], strict=True):
            t = _abi_type(param)
            # Dynamic indexed values are stored as their keccak hash (not used by our events).
            if t in ("string", "bytes") or t.endswith("]") or t.startswith("("):
                args[param["name"]] = topic
            else:
                args[param["name"]] = _to_python(abi_decode([t], topic)[0], t)
        plain_types = [_abi_type(p) for p in plain]
        values = abi_decode(plain_types, _hex_to_bytes(log.get("data", "0x")))
        for param, t, v in zip(plain, plain_types, values, strict=True):
            args[param["name"]] = _to_python(v, t)
        ordered = {p["name"]: args[p["name"]] for p in event["inputs"]}
        return ChainEvent(
            name=event["name"],
            args=ordered,
            address=to_checksum_address(log["address"]),
            block_number=_to_int(log["blockNumber"]),
            tx_hash=str(log["transactionHash"]),
            log_index=_to_int(log["logIndex"]),
        )

    def decode_logs(self, logs: Iterable[Mapping[str, Any]]) -> list[ChainEvent]:
        """Decode the logs of this ABI, skipping foreign ones."""
        return [e for e in (self.decode_log(log) for log in logs) if e is not None]


class ErrorDecoder:
    """Turns revert data into :class:`ContractError` using the custom errors of known ABIs.

    ``Error(string)`` decodes to name ``"Error"`` with ``{"message": ...}``, ``Panic(uint256)``
    to ``"Panic"`` with ``{"code": ...}``, empty data to ``"Reverted"`` and an unknown selector
    to ``"UnknownError"`` with the raw data.
    """

    def __init__(self, abis: Iterable[Sequence[Mapping[str, Any]]] = ()) -> None:
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for abi in abis:
            self.add_abi(abi)

    def add_abi(self, abi: Sequence[Mapping[str, Any]]) -> None:
        """Learn the custom errors of ``abi``."""
        for item in abi:
            if item.get("type") != "error":
                continue
            types = [_abi_type(p) for p in item["inputs"]]
            names = [p.get("name") or f"arg{i}" for i, p in enumerate(item["inputs"])]
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            self._errors[selector] = (item["name"], names, types)

    def decode(self, data: bytes, message: str | None = None) -> ContractError:
        """The ContractError for revert ``data``."""
        selector, payload = data[:4], data[4:]
        try:
            if not data:
                return ContractError("Reverted", {}, message or "reverted without data")
            if selector == _ERROR_STRING_SELECTOR:
                (text,) = abi_decode(["string"], payload)
                return ContractError("Error", {"message": text}, message)
            if selector == _PANIC_SELECTOR:
                (code,) = abi_decode(["uint256"], payload)
                return ContractError("Panic", {"code": code}, message)
            if selector in self._errors:
                name, names, types = self._errors[selector]
                values = abi_decode(types, payload)
                args = {n: _to_python(v, t) for n, t, v in zip(names, types, values, strict=True)}
                return ContractError(name, args, message)
        except DecodingError:
            pass
        return ContractError(
            "UnknownError", {"selector": "0x" + selector.hex(), "data": "0x" + data.hex()}, message
        )


# --------------------------------------------------------------------------- helpers


def _hex_to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    text = str(value)
    return bytes.fromhex(text[2:] if text[:2] in ("0x", "0X") else text)


def _to_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(str(value), 16)


def _block_param(block: BlockId) -> str:
    return hex(block) if isinstance(block, int) else block


def _revert_data(error: Any) -> bytes | None:
    """Find revert data in a JSON-RPC error object, wherever the node put it.

    anvil, geth and Besu: ``error.data`` = "0x…"; ganache: the same for ``eth_call`` and
    ``error.data.result`` for ``eth_estimateGas`` / sends with vmErrorsOnRPCResponse.
    """
    if isinstance(error, str):
        if error.startswith("0x") and len(error) % 2 == 0:
            try:
                return bytes.fromhex(error[2:])
            except ValueError:
                return None
        return None
    if isinstance(error, Mapping):
        for key in ("data", "result", "returnData"):
            if key in error:
                found = _revert_data(error[key])
                if found is not None:
                    return found
        # ganache < 7 keyed data by transaction hash: {"0xhash": {"return": "0x…"}}
        for key, value in error.items():
            if isinstance(value, Mapping) and key not in ("data", "result"):
                found = _revert_data(value.get("return"))
                if found is not None:
                    return found
    return None


def _is_revert(error: Mapping[str, Any]) -> bool:
    message = str(error.get("message", "")).lower()
    return (
        error.get("code") == 3
        or "revert" in message
        or "vm exception" in message
        or _revert_data(error.get("data")) is not None
    )


class _RpcError(Exception):
    """A JSON-RPC error answer, kept raw until we know whether it is a revert."""

    def __init__(self, method: str, error: Mapping[str, Any]) -> None:
        self.method = method
        self.error = error
        super().__init__(f"{method}: {error.get('message', error)}")

    @property
    def message(self) -> str:
        return str(self.error.get("message", ""))


# --------------------------------------------------------------------------- client


class ChainClient:
    """A JSON-RPC connection plus (optionally) the local account that signs transactions.

    Thread-safe: several threads may send through one client; nonces are assigned under a
    lock and resynchronised from the node's pending count whenever a send is rejected for
    its nonce.
    """

    def __init__(
        self,
        rpc_url: str,
        account: LocalAccount | str | bytes | None = None,
        *,
        chain_id: int | None = None,
        request_timeout: float = 30.0,
        receipt_timeout: float = 120.0,
        gas_margin: float = 1.25,
        gas_price: int | None = None,
        gas_price_ttl: float = 10.0,
        log_chunk_size: int = 5000,
        error_abis: Iterable[Sequence[Mapping[str, Any]]] | None = None,
    ) -> None:
        """Connect to ``rpc_url``.

        ``account`` (a LocalAccount or a private key) signs transactions; without it the client
        is read-only. ``chain_id`` skips the one ``eth_chainId`` request. ``gas_price`` fixes
        the price (0 suits free-gas QBFT networks); otherwise ``eth_gasPrice`` is cached for
        ``gas_price_ttl`` seconds. ``log_chunk_size`` bounds each ``eth_getLogs`` block range
        (Besu's default ``--rpc-max-logs-range`` is 5000). ``error_abis`` defaults to the ABIs
        of the project's contracts. Each request fails after ``request_timeout`` seconds with
        a ChainError; nothing is retried behind the caller's back.
        """
        self.rpc_url = rpc_url
        # No hidden retries: web3 would retry a timed-out read five times, so a hung node
        # took 5 x request_timeout to report. Callers decide about retrying a ChainError.
        provider = HTTPProvider(
            rpc_url,
            request_kwargs={"timeout": request_timeout},
            exception_retry_configuration=None,
        )
        self.w3 = Web3(provider, middleware=[])
        self._provider = cast(HTTPProvider, self.w3.provider)
        self.account: LocalAccount | None = (
            Account.from_key(account) if isinstance(account, str | bytes) else account
        )
        self.receipt_timeout = receipt_timeout
        self.gas_margin = gas_margin
        self.log_chunk_size = log_chunk_size
        self._chain_id = chain_id
        self._fixed_gas_price = gas_price
        self._gas_price_ttl = gas_price_ttl
        self._gas_price: tuple[int, float] | None = None
        self._nonce: int | None = None
        self._lock = threading.RLock()
        if error_abis is None:
            error_abis = _project_abis()
        self.errors = ErrorDecoder(error_abis)

    # ----------------------------------------------------------------- basics

    @property
    def address(self) -> str:
        """Checksum address of the signing account."""
        return self._require_account().address

    @property
    def chain_id(self) -> int:
        """The chain id, fetched once and cached."""
        if self._chain_id is None:
            self._chain_id = _to_int(self.request("eth_chainId", []))
        return self._chain_id

    def _require_account(self) -> LocalAccount:
        if self.account is None:
            raise ChainError("this ChainClient has no account; pass one to sign transactions")
        return self.account

    def request(self, method: str, params: Sequence[Any]) -> Any:
        """One raw JSON-RPC request; errors become ChainError (reverts: ContractError)."""
        try:
            return self._request(method, params)
        except _RpcError as e:
            raise self._rpc_failure(e) from e

    def _request(self, method: str, params: Sequence[Any]) -> Any:
        """Raw request that keeps JSON-RPC errors as _RpcError for the caller to classify."""
        try:
            response = self._provider.make_request(cast(Any, method), list(params))
        except (requests.RequestException, OSError) as e:
            raise ChainError(f"{method} to {self.rpc_url} failed: {e}") from e
        except ValueError as e:  # undecodable body
            raise ChainError(f"{method} to {self.rpc_url}: invalid response: {e}") from e
        if not isinstance(response, Mapping):
            raise ChainError(f"{method}: unexpected response {response!r}")
        if response.get("error") is not None:
            error = response["error"]
            raise _RpcError(method, error if isinstance(error, Mapping) else {"message": error})
        return response.get("result")

    def batch_request(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several JSON-RPC requests in one HTTP round trip; results in order.

        Raises for the first failed request (reverts as ContractError).
        """
        if not calls:
            return []
        try:
            responses = self._provider.make_batch_request(
                [(cast(Any, m), list(p)) for m, p in calls]
            )
        except (requests.RequestException, OSError) as e:
            raise ChainError(f"batch of {len(calls)} to {self.rpc_url} failed: {e}") from e
        except ValueError as e:
            raise ChainError(f"batch to {self.rpc_url}: invalid response: {e}") from e
        if not isinstance(responses, list):
            error = responses.get("error") if isinstance(responses, Mapping) else responses
            raise ChainError(f"batch request rejected: {error}")
        results = []
        for (method, _), response in zip(calls, responses, strict=True):
            if response.get("error") is not None:
                raise self._rpc_failure(_RpcError(method, response["error"]))
            results.append(response.get("result"))
        return results

    def _rpc_failure(self, e: _RpcError) -> ChainError:
        if e.method in ("eth_call", "eth_estimateGas", "eth_sendRawTransaction") and _is_revert(
            e.error
        ):
            data = _revert_data(e.error.get("data"))
            return self.errors.decode(data or b"", None if data else e.message or None)
        return ChainError(str(e))

    def block_number(self) -> int:
        """The latest block number."""
        return _to_int(self.request("eth_blockNumber", []))

    def get_block(self, block: BlockId = "latest") -> Mapping[str, Any]:
        """A block header (without transactions)."""
        result = self.request("eth_getBlockByNumber", [_block_param(block), False])
        if result is None:
            raise ChainError(f"no block {block}")
        return cast(Mapping[str, Any], result)

    def get_code(self, address: str, block: BlockId = "latest") -> bytes:
        """Runtime code at ``address``."""
        return _hex_to_bytes(self.request("eth_getCode", [address, _block_param(block)]))

    def balance(self, address: str | None = None) -> int:
        """Balance in wei (of the signing account by default)."""
        return _to_int(self.request("eth_getBalance", [address or self.address, "latest"]))

    # ----------------------------------------------------------------- calls

    def call(
        self, to: str, data: bytes, *, block: BlockId = "latest", sender: str | None = None
    ) -> bytes:
        """``eth_call``; a revert raises ContractError with the decoded custom error."""
        tx: dict[str, Any] = {"to": to, "data": "0x" + data.hex()}
        if sender or self.account is not None:
            tx["from"] = sender or self.address
        return _hex_to_bytes(self.request("eth_call", [tx, _block_param(block)]))

    def call_many(
        self, calls: Sequence[tuple[str, bytes]], *, block: BlockId = "latest"
    ) -> list[bytes]:
        """Several ``eth_call`` in one JSON-RPC batch (one HTTP round trip)."""
        param = _block_param(block)
        results = self.batch_request(
            [("eth_call", [{"to": to, "data": "0x" + data.hex()}, param]) for to, data in calls]
        )
        return [_hex_to_bytes(r) for r in results]

    def estimate_gas(self, to: str | None, data: bytes, *, value: int = 0) -> int:
        """``eth_estimateGas`` from the signing account; reverts raise ContractError."""
        tx: dict[str, Any] = {"from": self.address, "data": "0x" + data.hex(), "value": hex(value)}
        if to is not None:
            tx["to"] = to
        return _to_int(self.request("eth_estimateGas", [tx]))

    # ----------------------------------------------------------------- transactions

    def resync_nonce(self) -> int:
        """Forget the local nonce and reload it from the node's pending transaction count."""
        with self._lock:
            self._nonce = _to_int(
                self.request("eth_getTransactionCount", [self.address, "pending"])
            )
            return self._nonce

    def _current_gas_price(self, refresh: bool = False) -> int:
        if self._fixed_gas_price is not None:
            return self._fixed_gas_price
        now = time.monotonic()
        cached = self._gas_price
        if refresh or cached is None or now - cached[1] > self._gas_price_ttl:
            price = _to_int(self.request("eth_gasPrice", []))
            self._gas_price = (price, now)
            return price
        return cached[0]

    def send_transaction(
        self, to: str | None, data: bytes, *, gas: int | None = None, value: int = 0
    ) -> str:
        """Sign and send a legacy (type 0) transaction; return its hash without waiting.

        Legacy transactions are accepted by every target (anvil, ganache, Besu and GoQuorum
        free-gas networks). Without ``gas`` the estimate times ``gas_margin`` is used, which
        also surfaces a revert before anything is sent.
        """
        account = self._require_account()
        attempts = 3
        with self._lock:
            # Estimated under the lock too: ganache 7 stalled an eth_estimateGas concurrent
            # with sends of the same account for 30 s (until the HTTP timeout, measured).
            if gas is None:
                gas = math.ceil(self.estimate_gas(to, data, value=value) * self.gas_margin)
            for attempt in range(attempts):
                if self._nonce is None:
                    self.resync_nonce()
                assert self._nonce is not None
                tx: dict[str, Any] = {
                    "nonce": self._nonce,
                    "gasPrice": self._current_gas_price(refresh=attempt > 0),
                    "gas": gas,
                    "value": value,
                    "data": data,
                    "chainId": self.chain_id,
                }
                if to is not None:
                    tx["to"] = to_checksum_address(to)
                signed = account.sign_transaction(tx)
                tx_hash = "0x" + bytes(signed.hash).hex()
                try:
                    self._request(
                        "eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()]
                    )
                except _RpcError as e:
                    lowered = e.message.lower()
                    if any(s in lowered for s in _ALREADY_KNOWN):
                        # Our identical transaction is already in the pool (a retried send).
                        self._nonce += 1
                        return tx_hash
                    retryable = any(s in lowered for s in _NONCE_ERRORS + _FEE_ERRORS)
                    if retryable and attempt < attempts - 1:
                        _log.info("send rejected (%s); resyncing nonce and gas price", e.message)
                        self._nonce = None
                        continue
                    self._nonce = None
                    raise self._rpc_failure(e) from e
                except ChainError:
                    # Transport failure: the node may or may not have the transaction.
                    self._nonce = None
                    raise
                self._nonce += 1
                return tx_hash
        raise AssertionError("unreachable")  # pragma: no cover

    def wait_for_receipt(
        self, tx_hash: str, timeout: float | None = None, poll_interval: float = 0.01
    ) -> Mapping[str, Any]:
        """Poll for the receipt; ChainError after ``timeout`` seconds."""
        deadline = time.monotonic() + (self.receipt_timeout if timeout is None else timeout)
        interval = poll_interval
        while True:
            try:
                receipt = self.request("eth_getTransactionReceipt", [tx_hash])
            except ChainError:
                # The transaction is out; a transient transport failure must not lose track
                # of it before the deadline.
                if time.monotonic() >= deadline:
                    raise
                receipt = None
            if receipt is not None and receipt.get("blockNumber") is not None:
                return cast(Mapping[str, Any], receipt)
            if time.monotonic() >= deadline:
                waited = self.receipt_timeout if timeout is None else timeout
                if self.request("eth_getTransactionByHash", [tx_hash]) is None:
                    # Dropped from the pool: its nonce is free again and later ones would queue
                    # behind the gap forever, so the next send resyncs.
                    with self._lock:
                        self._nonce = None
                    raise ChainError(f"transaction {tx_hash} is unknown to the node (dropped?)")
                raise ChainError(f"no receipt for {tx_hash} within {waited}s")
            time.sleep(interval)
            interval = min(interval * 2, 0.5)

    def transact(
        self,
        to: str | None,
        data: bytes,
        *,
        gas: int | None = None,
        value: int = 0,
        timeout: float | None = None,
    ) -> TxResult:
        """Send, wait for the receipt and return it; a failed transaction raises ContractError."""
        tx_hash = self.send_transaction(to, data, gas=gas, value=value)
        receipt = self.wait_for_receipt(tx_hash, timeout)
        result = TxResult(
            tx_hash=tx_hash,
            block_number=_to_int(receipt["blockNumber"]),
            gas_used=_to_int(receipt["gasUsed"]),
            status=_to_int(receipt["status"]),
            logs=tuple(receipt.get("logs") or ()),
            contract_address=(
                to_checksum_address(receipt["contractAddress"])
                if receipt.get("contractAddress")
                else None
            ),
        )
        if result.status != 1:
            raise self._mined_failure(result, to, data, value)
        return result

    def _mined_failure(
        self, result: TxResult, to: str | None, data: bytes, value: int
    ) -> ChainError:
        """Recover the reason of a mined failure by replaying it on the parent block's state.

        Receipts carry no revert data on ganache and most nodes; with one transaction per
        block (automine, or a sole sender) the replay reproduces the revert exactly.
        """
        tx: dict[str, Any] = {"from": self.address, "data": "0x" + data.hex(), "value": hex(value)}
        if to is not None:
            tx["to"] = to
        try:
            self._request("eth_call", [tx, hex(max(result.block_number - 1, 0))])
        except _RpcError as e:
            if _is_revert(e.error):
                failure = self._rpc_failure(e)
                if isinstance(failure, ContractError):
                    return ContractError(
                        failure.name,
                        failure.args_by_name,
                        f"{failure} (mined in transaction {result.tx_hash}, "
                        f"block {result.block_number})",
                    )
                return failure
            return ChainError(f"transaction {result.tx_hash} failed; replay error: {e}")
        except ChainError as e:
            return ChainError(f"transaction {result.tx_hash} failed; replay impossible: {e}")
        return ChainError(
            f"transaction {result.tx_hash} failed in block {result.block_number} "
            f"(gas used {result.gas_used}); its replay succeeds, so the reason is unknown"
        )

    def deploy(self, bytecode: bytes, *, gas: int | None = None) -> TxResult:
        """Deploy contract creation code (bytecode plus encoded constructor arguments)."""
        result = self.transact(None, bytecode, gas=gas)
        if result.contract_address is None:
            raise ChainError(f"deployment {result.tx_hash} created no contract")
        return result

    # ----------------------------------------------------------------- logs

    def get_logs(
        self,
        address: str | Sequence[str],
        topics: Sequence[bytes | Sequence[bytes] | None] = (),
        from_block: int = 0,
        to_block: BlockId = "latest",
    ) -> list[Mapping[str, Any]]:
        """``eth_getLogs`` over [from_block, to_block] in chunks of ``log_chunk_size`` blocks.

        ``topics`` follows JSON-RPC: position i matches one value, any of a list, or anything
        (None).
        """
        last = self.block_number() if isinstance(to_block, str) else to_block
        rpc_topics: list[Any] = []
        for topic in topics:
            if topic is None:
                rpc_topics.append(None)
            elif isinstance(topic, bytes):
                rpc_topics.append("0x" + topic.hex())
            else:
                rpc_topics.append(["0x" + t.hex() for t in topic])
        while rpc_topics and rpc_topics[-1] is None:
            rpc_topics.pop()
        logs: list[Mapping[str, Any]] = []
        start = from_block
        while start <= last:
            end = min(start + self.log_chunk_size - 1, last)
            query = {
                "address": address if isinstance(address, str) else list(address),
                "fromBlock": hex(start),
                "toBlock": hex(end),
                "topics": rpc_topics,
            }
            logs.extend(self.request("eth_getLogs", [query]) or [])
            start = end + 1
        logs.sort(key=lambda log: (_to_int(log["blockNumber"]), _to_int(log["logIndex"])))
        return logs

    def close(self) -> None:
        """Release the pooled HTTP connections (one session per calling thread in web3)."""
        manager = getattr(self._provider, "_request_session_manager", None)
        cache = getattr(manager, "session_cache", None)
        if cache is None:  # web3 internals moved: nothing we can release
            return
        for _, session in cache.items():
            session.close()
        cache.clear()

    def __enter__(self) -> ChainClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.cache
def artifact_abi(name: str) -> tuple[Mapping[str, Any], ...]:
    """ABI of a committed artifact, read once per process (the files are ~60 kB of JSON)."""
    from ledger.chain.compile import load_artifact

    return tuple(load_artifact(name)["abi"])


def _project_abis() -> list[Sequence[Mapping[str, Any]]]:
    """ABIs of the project's contracts (for revert decoding); skips unbuilt ones."""
    from ledger.chain.compile import ARTIFACT_NAMES
    from ledger.errors import CompileError

    abis: list[Sequence[Mapping[str, Any]]] = []
    for name in ARTIFACT_NAMES:
        try:
            abis.append(artifact_abi(name))
        except CompileError:
            _log.warning("artifact %s missing: its custom errors will not be decoded", name)
    return abis


class BoundContract:
    """A deployed contract: its ABI, address and the client that talks to it."""

    def __init__(
        self,
        client: ChainClient,
        address: str,
        abi: Sequence[Mapping[str, Any]],
        *,
        deployed_block: int = 0,
    ) -> None:
        """``deployed_block`` is where event queries start by default."""
        self.client = client
        self.address = to_checksum_address(address)
        self.abi = ContractAbi(abi)
        self.deployed_block = deployed_block

    def call(self, function: str, *args: Any, block: BlockId = "latest") -> tuple[Any, ...]:
        """Call a view function; returns the decoded outputs as a tuple."""
        data = self.client.call(self.address, self.abi.encode_call(function, args), block=block)
        return self.abi.decode_result(function, data)

    def call_many(
        self, function: str, arg_lists: Sequence[Sequence[Any]], *, block: BlockId = "latest"
    ) -> list[tuple[Any, ...]]:
        """Call one view function with many argument lists in a single JSON-RPC batch."""
        encoded = [(self.address, self.abi.encode_call(function, args)) for args in arg_lists]
        return [
            self.abi.decode_result(function, r) for r in self.client.call_many(encoded, block=block)
        ]

    def estimate_gas(self, function: str, *args: Any) -> int:
        """Gas estimate of calling ``function`` from the client's account."""
        return self.client.estimate_gas(self.address, self.abi.encode_call(function, args))

    def transact(self, function: str, *args: Any, gas: int | None = None) -> TxResult:
        """Send a transaction calling ``function`` and wait for it; reverts raise ContractError."""
        return self.client.transact(self.address, self.abi.encode_call(function, args), gas=gas)

    def decode_events(self, tx: TxResult) -> list[ChainEvent]:
        """The events this contract emitted in ``tx``, in log order."""
        own = [log for log in tx.logs if to_checksum_address(log["address"]) == self.address]
        return self.abi.decode_logs(own)

    def events(
        self,
        names: str | Sequence[str],
        topics: Sequence[bytes | Sequence[bytes] | None] = (),
        *,
        from_block: int | None = None,
        to_block: BlockId = "latest",
    ) -> list[ChainEvent]:
        """Events named ``names`` whose indexed arguments match ``topics`` (positions 1..3)."""
        wanted = [names] if isinstance(names, str) else list(names)
        topic0 = [self.abi.event_topic(n) for n in wanted]
        logs = self.client.get_logs(
            self.address,
            [topic0, *topics],
            self.deployed_block if from_block is None else from_block,
            to_block,
        )
        return self.abi.decode_logs(logs)


def topic_uint(value: int) -> bytes:
    """The topic of an indexed unsigned integer."""
    return value.to_bytes(32, "big")


def topic_address(address: str) -> bytes:
    """The topic of an indexed address."""
    return bytes(12) + bytes.fromhex(to_checksum_address(address)[2:])
