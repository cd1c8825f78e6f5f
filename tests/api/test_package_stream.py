"""PackageStream's line splitting, the verification workers' failure paths, the head multicall."""

from __future__ import annotations

import io
import os
import random
import time

import pytest

from node_api import exchange


def _scan(chunks: list[bytes]) -> tuple[list[object], object]:
    stream = exchange.PackageStream(
        None, io.BytesIO(), region=110000, check_from=0, check_to=0, speculate=False
    )
    released: list[object] = []
    feed = stream._scan.feed

    def spy(line: bytes) -> object:
        released.append(feed(line))
        return released[-1]

    stream._scan.feed = spy  # type: ignore[method-assign]
    for chunk in chunks:
        stream.write(chunk)
    try:
        trailer = stream.trailer()
    except exchange.PackageRejected as e:
        return released, e.message
    return released, (trailer.body_sha256, trailer.body_end, trailer.disclosure_lines)


def test_lines_are_split_alike_however_the_download_is_chunked() -> None:
    rng = random.Random(7)
    for _ in range(200):
        parts = [
            rng.choice([b"", b" ", b"\r", b'{"a":1}', b"x" * rng.randint(0, 40)])
            for _ in range(rng.randint(0, 10))
        ]
        package = b"\n".join(parts) + rng.choice([b"", b"\n", b"\n\n"])
        cuts = sorted(rng.sample(range(len(package) + 1), min(len(package) + 1, rng.randint(0, 6))))
        chunks = [package[a:b] for a, b in zip([0, *cuts], [*cuts, len(package)], strict=True)]
        assert _scan(chunks) == _scan([package])


def test_a_long_line_without_newline_is_kept_in_pieces_until_it_ends() -> None:
    # Joining the unfinished line on every write was quadratic in its length: a peer's
    # 1 GiB line without a newline took hours of CPU. Not timed: the pieces are counted.
    stream = exchange.PackageStream(
        None, io.BytesIO(), region=110000, check_from=0, check_to=0, speculate=False
    )
    fed: list[bytes] = []
    stream._feed = fed.append  # type: ignore[method-assign]
    chunk = b"x" * 65536
    for _ in range(1024):  # 64 MiB
        stream.write(chunk)
    assert fed == [] and len(stream._partial) == 1024
    stream.write(b"y\nz")
    assert fed == [chunk * 1024 + b"y\n"] and stream._partial == [b"z"]


def _die(lines: list[tuple[int, bytes]]) -> None:
    os._exit(3)


def test_a_worker_dying_between_tasks_fails_the_next_submission(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exchange, "_CHUNK_TASK", _die)
    view = exchange._ChainView("http://127.0.0.1:1", 1.0, 1, "0x" + "00" * 20, bytes(4), {}, False)
    runner = exchange._ChunkRunner(view, None, 2)
    try:
        first = runner.submit([(1, b"{}")])
        with pytest.raises(exchange.VerificationFailed):
            runner.result(first)
        with pytest.raises(exchange.VerificationFailed):  # the pool is broken by now
            runner.submit([(2, b"{}")])
    finally:
        runner.close()


# A stand-in for CreditAnchor.headOf: answers 128 bytes whose first word is the key asked for.
_ECHO_HEAD = bytes.fromhex("6020602460003760806000f3")
_DEPLOY_ECHO = bytes.fromhex("600c600c600039600c6000f3") + _ECHO_HEAD


@pytest.mark.chain
@pytest.mark.parametrize("kind", ["anvil", "ganache"])
def test_multicall_reads_heads_whose_leaf_hash_starts_with_0xef(kind: str) -> None:
    # EIP-3541 refuses created code that starts with 0xEF; the multicall's answer is
    # created code, so a head leafHash starting with 0xEF must not come first.
    from ledger.chain.localnode import LocalNode, rpc_call
    from node_api.chain import _RpcConnection

    with LocalNode(kind) as node:
        sender = rpc_call(node.rpc_url, "eth_accounts", [])[0]
        tx = rpc_call(
            node.rpc_url,
            "eth_sendTransaction",
            [{"from": sender, "data": "0x" + _DEPLOY_ECHO.hex(), "gas": hex(200_000)}],
        )
        deadline = time.monotonic() + 30
        while not (receipt := rpc_call(node.rpc_url, "eth_getTransactionReceipt", [tx])):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        view = exchange._ChainView(
            node.rpc_url, 10.0, 0, receipt["contractAddress"], bytes(4), {}, False
        )
        keys = [(110000, b"\xef" + bytes(31))] + [
            (110000, i.to_bytes(2, "big") + b"\xff" * 30) for i in range(0xF000, 0xF000 + 400)
        ]
        heads = exchange._multicall_heads(_RpcConnection(node.rpc_url, 10.0), view, keys)
        assert [head.leaf_hash for head in heads] == [key for _, key in keys]
