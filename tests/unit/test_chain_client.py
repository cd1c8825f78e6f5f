"""ChainClient against real anvil and ganache: revert decoding, nonces, round trips, failures."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from ledger.chain import ChainClient, ConsortiumClient, ErrorDecoder, deploy_consortium
from ledger.chain.localnode import LocalNode, free_port
from ledger.errors import ChainError, ContractError

pytestmark = pytest.mark.chain

REGION = 110000


@pytest.fixture(scope="module", params=["anvil", "ganache"])
def chain_node(request: pytest.FixtureRequest) -> Iterator[LocalNode]:
    """A chain process for this module."""
    with LocalNode(request.param) as node:
        yield node


@pytest.fixture
def client(chain_node: LocalNode) -> Iterator[ChainClient]:
    """A fresh client of the first dev account (its nonce cache starts empty)."""
    with ChainClient(chain_node.rpc_url, chain_node.dev_keys[0]) as made:
        yield made


@pytest.fixture
def consortium(client: ChainClient) -> ConsortiumClient:
    """A one-region consortium whose only signer is ``client``'s account."""
    return deploy_consortium(client, [REGION], ["Beijing"], [client.address], 1)


def _pending_nonce(client: ChainClient) -> int:
    return int(client.request("eth_getTransactionCount", [client.address, "pending"]), 16)


# ----------------------------------------------------------------------------- reverts


def test_eth_call_revert_is_decoded(consortium: ConsortiumClient) -> None:
    with pytest.raises(ContractError) as caught:
        consortium.proposal(9)
    assert (caught.value.name, caught.value.args_by_name) == ("UnknownProposal", {"id": 9})


def test_estimate_gas_revert_is_decoded_and_nothing_is_sent(
    chain_node: LocalNode, consortium: ConsortiumClient
) -> None:
    with ChainClient(chain_node.rpc_url, chain_node.dev_keys[5]) as outsider_client:
        outsider = ConsortiumClient(outsider_client, consortium.address)
        before = _pending_nonce(outsider_client)
        with pytest.raises(ContractError) as caught:
            outsider.set_endpoint(REGION, "https://evil.example")
        assert caught.value.name == "NotSigner"
        assert caught.value.args_by_name == {"account": outsider_client.address, "region": REGION}
        assert _pending_nonce(outsider_client) == before


def test_mined_failure_is_decoded_by_replay(
    client: ChainClient, consortium: ConsortiumClient
) -> None:
    before = _pending_nonce(client)
    # An explicit gas limit skips estimation, so the failing transaction is mined.
    with pytest.raises(ContractError) as caught:
        consortium.set_endpoint(120000, "https://tianjin.example", gas=100_000)
    assert caught.value.name == "NotSigner"
    assert caught.value.args_by_name == {"account": client.address, "region": 120000}
    assert "mined in transaction 0x" in str(caught.value)
    assert _pending_nonce(client) == before + 1  # the failed transaction used its nonce
    consortium.set_endpoint(REGION, "https://beijing.example")  # and the next one follows
    assert consortium.endpoint_of(REGION) == "https://beijing.example"


def test_constructor_revert_is_decoded(client: ChainClient) -> None:
    with pytest.raises(ContractError) as caught:
        deploy_consortium(client, [REGION], ["Beijing"], [client.address], 2)
    assert caught.value.name == "InvalidThreshold"
    assert caught.value.args_by_name == {"threshold": 2, "activeRegions": 1}


def test_revert_without_data_is_reported(client: ChainClient, consortium: ConsortiumClient) -> None:
    # No function has selector 0xdeadbeef and the contract has no fallback: empty revert data.
    with pytest.raises(ContractError) as caught:
        client.call(consortium.address, bytes.fromhex("deadbeef"))
    assert caught.value.name == "Reverted"
    assert caught.value.args_by_name == {}


def _error_data(signature: str, types: list[str], values: list[Any]) -> bytes:
    return keccak(text=signature)[:4] + encode(types, values)


def test_error_decoder_handles_builtin_unknown_and_malformed_errors() -> None:
    decoder = ErrorDecoder(
        [[{"type": "error", "name": "Oops", "inputs": [{"name": "code", "type": "uint8"}]}]]
    )
    assert decoder.decode(_error_data("Oops(uint8)", ["uint8"], [7])).args_by_name == {"code": 7}
    text = decoder.decode(_error_data("Error(string)", ["string"], ["no"]))
    assert (text.name, text.args_by_name) == ("Error", {"message": "no"})
    panic = decoder.decode(_error_data("Panic(uint256)", ["uint256"], [0x11]))
    assert (panic.name, panic.args_by_name) == ("Panic", {"code": 0x11})
    unknown = decoder.decode(bytes.fromhex("12345678") + bytes(32))
    assert unknown.name == "UnknownError" and unknown.args_by_name["selector"] == "0x12345678"
    truncated = decoder.decode(keccak(text="Oops(uint8)")[:4] + b"\x01")
    assert truncated.name == "UnknownError"
    assert decoder.decode(b"").name == "Reverted"


def test_default_decoder_knows_every_custom_error_of_both_contracts(client: ChainClient) -> None:
    from ledger.chain.client import artifact_abi

    for contract in ("Consortium", "CreditAnchor"):
        for item in artifact_abi(contract):
            if item["type"] != "error":
                continue
            types = [p["type"] for p in item["inputs"]]
            data = keccak(text=f"{item['name']}({','.join(types)})")[:4] + bytes(32 * len(types))
            assert client.errors.decode(data).name == item["name"]


# ----------------------------------------------------------------------------- nonces


def test_concurrent_sends_get_consecutive_nonces(
    client: ChainClient, consortium: ConsortiumClient
) -> None:
    start = _pending_nonce(client)
    hashes: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def send(worker: int) -> None:
        try:
            for i in range(4):
                tx = consortium.set_endpoint(REGION, f"https://node-{worker}-{i}.example")
                with lock:
                    hashes.append(tx.tx_hash)
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    nonces = [int(client.request("eth_getTransactionByHash", [h])["nonce"], 16) for h in hashes]
    assert sorted(nonces) == list(range(start, start + 16))


def test_stale_nonce_is_resynced_after_another_sender_used_the_key(
    chain_node: LocalNode, client: ChainClient, consortium: ConsortiumClient
) -> None:
    consortium.set_endpoint(REGION, "https://a.example")  # client now caches its next nonce
    with ChainClient(chain_node.rpc_url, chain_node.dev_keys[0]) as other:
        other_view = ConsortiumClient(other, consortium.address)
        other_view.set_endpoint(REGION, "https://b.example")
        other_view.set_endpoint(REGION, "https://c.example")
    consortium.set_endpoint(REGION, "https://d.example")  # "nonce too low" -> resync -> sent
    assert consortium.endpoint_of(REGION) == "https://d.example"


def test_resync_nonce_reads_the_pending_count(
    client: ChainClient, consortium: ConsortiumClient
) -> None:
    assert client.resync_nonce() == _pending_nonce(client)


# ----------------------------------------------------------------------------- round trips


def test_transaction_needs_no_chain_id_round_trips(chain_node: LocalNode) -> None:
    with ChainClient(chain_node.rpc_url, chain_node.dev_keys[0]) as client:
        consortium = deploy_consortium(client, [REGION], ["Beijing"], [client.address], 1)
        methods: Counter[str] = Counter()
        provider: Any = client.w3.provider
        real = provider.make_request

        def counting(method: str, params: Any) -> Any:
            methods[method] += 1
            return real(method, params)

        provider.make_request = counting
        try:
            for i in range(3):
                consortium.set_endpoint(REGION, f"https://{i}.example")
        finally:
            provider.make_request = real
        assert methods["eth_chainId"] == 0
        assert methods["eth_sendRawTransaction"] == 3
        assert methods["eth_estimateGas"] == 3
        assert methods["eth_getTransactionCount"] == 0  # nonce is local after the first send
        assert methods["eth_gasPrice"] <= 1  # cached


def test_chain_id_is_fetched_once_and_can_be_given(chain_node: LocalNode) -> None:
    with ChainClient(chain_node.rpc_url) as client:
        assert client.chain_id == chain_node.chain_id
    with ChainClient("http://127.0.0.1:9", chain_id=4242) as offline:
        assert offline.chain_id == 4242  # no request made


# ----------------------------------------------------------------------------- failures


def test_free_port_never_hands_out_one_port_twice() -> None:
    # The kernel offers a port again once it is closed; a node told a port binds it only
    # seconds later, so two nodes started together were sometimes given the same one.
    ports = [free_port() for _ in range(1000)]
    assert len(set(ports)) == len(ports)


def test_transport_failure_is_a_chain_error_with_cause() -> None:
    with ChainClient(f"http://127.0.0.1:{free_port()}", request_timeout=2) as client:
        with pytest.raises(ChainError) as caught:
            client.block_number()
    assert caught.value.__cause__ is not None
    assert not isinstance(caught.value, ContractError)


def test_receipt_timeout_is_a_chain_error(client: ChainClient) -> None:
    with pytest.raises(ChainError, match="unknown to the node"):
        client.wait_for_receipt("0x" + "ab" * 32, timeout=0.2)


def test_read_only_client_refuses_to_sign(
    chain_node: LocalNode, consortium: ConsortiumClient
) -> None:
    with ChainClient(chain_node.rpc_url) as reader:
        view = ConsortiumClient(reader, consortium.address)
        assert view.active_regions() == [REGION]
        with pytest.raises(ChainError, match="no account"):
            view.set_endpoint(REGION, "https://x.example")


def test_non_revert_rpc_error_is_a_plain_chain_error(client: ChainClient) -> None:
    with pytest.raises(ChainError) as caught:
        client.request("eth_noSuchMethod", [])
    assert not isinstance(caught.value, ContractError)
