"""Shared helpers of the contract tests: actors, a deployed environment, assertions."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from ledger.chain import (
    AnchorClient,
    ChainClient,
    ConsortiumClient,
    ProposalTx,
    TxResult,
    deploy_contracts,
)
from ledger.chain.client import BoundContract
from ledger.chain.localnode import LocalNode
from ledger.errors import ContractError

BEIJING, TIANJIN, HEBEI, SHANGHAI = 110000, 120000, 130000, 310000
FOUNDERS = (BEIJING, TIANJIN, HEBEI)
FOUNDER_NAMES = ("Beijing", "Tianjin", "Hebei")
# Indices into the funded dev accounts.
BJ, TJ, HB, BJ2, SH, OUTSIDER, AUDITOR, SPARE = range(8)


@dataclass
class Env:
    """A fresh Consortium (3 regions, threshold 2) + CreditAnchor and one client per actor."""

    node: LocalNode
    clients: Sequence[ChainClient]
    consortium_address: str
    anchor_address: str
    deployed_block: int

    def addr(self, who: int) -> str:
        """Address of actor ``who``."""
        return self.clients[who].address

    def consortium(self, who: int = BJ) -> ConsortiumClient:
        """The Consortium as seen (and signed) by actor ``who``."""
        return ConsortiumClient(
            self.clients[who], self.consortium_address, deployed_block=self.deployed_block
        )

    def anchor(self, who: int = BJ) -> AnchorClient:
        """The CreditAnchor as seen (and signed) by actor ``who``."""
        return AnchorClient(
            self.clients[who], self.anchor_address, deployed_block=self.deployed_block
        )

    def govern(
        self, proposer: int, approvers: Sequence[int], method: str, *args: Any
    ) -> ProposalTx:
        """Propose with ``proposer`` (``propose_<method>``), approve with each of ``approvers``."""
        outcome: ProposalTx = getattr(self.consortium(proposer), f"propose_{method}")(*args)
        for who in approvers:
            outcome = self.consortium(who).approve(outcome.proposal_id)
        assert outcome.executed, f"{method}{args} did not execute"
        return outcome

    def advance_time(self, seconds: int) -> None:
        """Move the chain clock (tests only: evm_* calls)."""
        client = self.clients[BJ]
        client.request("evm_increaseTime", [seconds])
        client.request("evm_mine", [])

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """Give the next block (and estimates against it) the unix time ``timestamp``.

        ganache 7.9 has no ``evm_setNextBlockTimestamp``; in its default clock mode a block's
        time is floor(wall clock + offset), so setting the clock to ``timestamp`` gives the
        next block that time if it comes within the second. Callers assert the mined block's
        timestamp, so a miss fails loudly instead of testing the wrong second.
        """
        client = self.clients[BJ]
        if self.node.kind == "ganache":
            client.request("evm_setTime", [timestamp * 1000])
        else:
            client.request("evm_setNextBlockTimestamp", [timestamp])


def deploy_env(node: LocalNode, clients: Sequence[ChainClient], threshold: int = 2) -> Env:
    """Deploy a fresh pair of contracts founded by Beijing, Tianjin and Hebei."""
    deployment = deploy_contracts(
        clients[BJ],
        FOUNDERS,
        FOUNDER_NAMES,
        [clients[i].address for i in (BJ, TJ, HB)],
        threshold,
    )
    return Env(node, clients, deployment.consortium, deployment.anchor, deployment.deployed_block)


@contextlib.contextmanager
def reverts(name: str, **args: Any) -> Iterator[None]:
    """Expect a ContractError with exactly this custom error name and arguments."""
    with pytest.raises(ContractError) as caught:
        yield
    actual = (caught.value.name, dict(caught.value.args_by_name))
    assert actual == (name, args), f"reverted with {actual}, expected {(name, args)}"


def events(contract: BoundContract, tx: TxResult | ProposalTx) -> list[tuple[str, dict[str, Any]]]:
    """(name, args) of the events ``contract`` emitted in ``tx``, in log order."""
    result = tx.tx if isinstance(tx, ProposalTx) else tx
    return [(e.name, dict(e.args)) for e in contract.decode_events(result)]


def block_timestamp(client: ChainClient, block: int) -> int:
    """Timestamp of ``block``."""
    return int(client.get_block(block)["timestamp"], 16)


# ----------------------------------------------------------------------------- RFC 6962


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes (recursive, for small test trees)."""
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(tree_root(leaves[:k]), tree_root(leaves[k:]))


def audit_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n]) over leaf hashes."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return audit_path(leaves[:k], index) + [tree_root(leaves[k:])]
    return audit_path(leaves[k:], index - k) + [tree_root(leaves[:k])]
