"""Typed client of the Consortium contract: membership views, governance and its events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address

from ledger.chain.client import (
    BlockId,
    BoundContract,
    ChainClient,
    ChainEvent,
    TxResult,
    artifact_abi,
    topic_address,
    topic_uint,
)

__all__ = [
    "GOVERNANCE_EVENTS",
    "ConsortiumClient",
    "Proposal",
    "ProposalKind",
    "ProposalTx",
    "decode_proposal_data",
    "encode_proposal_data",
]


class ProposalKind(IntEnum):
    """Proposal kinds; values are the Solidity enum's."""

    ADD_REGION = 0
    REMOVE_REGION = 1
    ADD_SIGNER = 2
    REMOVE_SIGNER = 3
    SET_THRESHOLD = 4
    ADD_AUDITOR = 5
    REMOVE_AUDITOR = 6


_PROPOSAL_TYPES: dict[ProposalKind, tuple[str, ...]] = {
    ProposalKind.ADD_REGION: ("uint32", "string", "address"),
    ProposalKind.REMOVE_REGION: ("uint32",),
    ProposalKind.ADD_SIGNER: ("address", "uint32"),
    ProposalKind.REMOVE_SIGNER: ("address", "uint32"),
    ProposalKind.SET_THRESHOLD: ("uint256",),
    ProposalKind.ADD_AUDITOR: ("address",),
    ProposalKind.REMOVE_AUDITOR: ("address",),
}

GOVERNANCE_EVENTS = (
    "RegionAdded",
    "RegionRemoved",
    "SignerAdded",
    "SignerRemoved",
    "ThresholdChanged",
    "AuditorAdded",
    "AuditorRemoved",
    "EndpointSet",
    "ProposalCreated",
    "ProposalApproved",
    "ProposalExecuted",
)


def encode_proposal_data(kind: ProposalKind | int, *args: Any) -> bytes:
    """ABI-encode the arguments of a proposal of ``kind`` (see IConsortium.ProposalKind)."""
    return abi_encode(list(_PROPOSAL_TYPES[ProposalKind(kind)]), list(args))


def decode_proposal_data(kind: ProposalKind | int, data: bytes) -> tuple[Any, ...]:
    """Decode a proposal's ``data`` into its arguments (addresses checksummed)."""
    types = _PROPOSAL_TYPES[ProposalKind(kind)]
    values = abi_decode(list(types), data)
    return tuple(
        to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=True)
    )


@dataclass(frozen=True)
class Proposal:
    """A governance proposal as stored on chain; ``approvals`` counts live region approvals."""

    id: int
    kind: ProposalKind
    data: bytes
    proposer: str
    created_at: int
    expires_at: int
    executed: bool
    approvals: int

    @property
    def args(self) -> tuple[Any, ...]:
        """The decoded arguments of ``data``."""
        return decode_proposal_data(self.kind, self.data)


@dataclass(frozen=True)
class ProposalTx:
    """Outcome of ``propose``/``approve``: the proposal, its live approvals, whether it executed."""

    proposal_id: int
    approvals: int
    executed: bool
    tx: TxResult


class ConsortiumClient(BoundContract):
    """The Consortium contract at ``address``, through ``client``."""

    def __init__(self, client: ChainClient, address: str, *, deployed_block: int = 0) -> None:
        """Bind to a deployed Consortium; ``deployed_block`` starts event queries."""
        super().__init__(client, address, artifact_abi("Consortium"), deployed_block=deployed_block)

    # ----------------------------------------------------------------- views

    def region_of(self, account: str) -> int:
        """The active region ``account`` signs for, 0 if none."""
        return int(self.call("regionOf", to_checksum_address(account))[0])

    def is_signer(self, account: str, region: int) -> bool:
        """Whether ``account`` is a signer of the active region ``region``."""
        return bool(self.call("isSigner", to_checksum_address(account), region)[0])

    def active_regions(self) -> list[int]:
        """Codes of the active regions, sorted."""
        return sorted(self.call("activeRegions")[0])

    def threshold(self) -> int:
        """Approvals from distinct active regions a proposal needs."""
        return int(self.call("threshold")[0])

    def endpoint_of(self, region: int) -> str:
        """Node URL registered by ``region`` ("" if none or inactive)."""
        return str(self.call("endpointOf", region)[0])

    def region_name(self, region: int) -> str:
        """Name of ``region`` ("" if never added)."""
        return str(self.call("regionName", region)[0])

    def is_active_region(self, region: int) -> bool:
        """Whether ``region`` is active."""
        return bool(self.call("isActiveRegion", region)[0])

    def signer_count(self, region: int) -> int:
        """Number of signers of ``region`` (0 if inactive)."""
        return int(self.call("signerCount", region)[0])

    def is_auditor(self, account: str) -> bool:
        """Whether ``account`` is an auditor."""
        return bool(self.call("isAuditor", to_checksum_address(account))[0])

    def auditors(self) -> list[str]:
        """All auditor addresses."""
        return list(self.call("auditors")[0])

    def proposal_lifetime(self) -> int:
        """Seconds a proposal can collect approvals."""
        return int(self.call("proposalLifetime")[0])

    def proposal_count(self) -> int:
        """Number of proposals so far (= latest id)."""
        return int(self.call("proposalCount")[0])

    def proposal(self, proposal_id: int) -> Proposal:
        """Proposal ``proposal_id``; ContractError UnknownProposal if there is none."""
        kind, data, proposer, created, expires, executed, approvals = self.call(
            "proposal", proposal_id
        )
        return Proposal(
            id=proposal_id,
            kind=ProposalKind(kind),
            data=bytes(data),
            proposer=proposer,
            created_at=int(created),
            expires_at=int(expires),
            executed=bool(executed),
            approvals=int(approvals),
        )

    def has_approved(self, proposal_id: int, region: int) -> bool:
        """Whether ``region`` is active and approved ``proposal_id`` since it was last added."""
        return bool(self.call("hasApproved", proposal_id, region)[0])

    # ----------------------------------------------------------------- governance

    def propose(
        self, kind: ProposalKind | int, data: bytes, *, gas: int | None = None
    ) -> ProposalTx:
        """Propose a change (the caller's region approves it; executes at threshold 1)."""
        tx = self.transact("propose", int(kind), data, gas=gas)
        return self._proposal_outcome(tx)

    def propose_add_region(self, code: int, name: str, first_signer: str) -> ProposalTx:
        """Propose adding region ``code`` with its first signer."""
        return self.propose(
            ProposalKind.ADD_REGION,
            encode_proposal_data(
                ProposalKind.ADD_REGION, code, name, to_checksum_address(first_signer)
            ),
        )

    def propose_remove_region(self, code: int) -> ProposalTx:
        """Propose removing region ``code`` (its signers lose every right on execution).

        The region's own approval does not count; it needs min(threshold, other active regions)
        and lowers the threshold if fewer regions than it remain.
        """
        return self.propose(
            ProposalKind.REMOVE_REGION, encode_proposal_data(ProposalKind.REMOVE_REGION, code)
        )

    def propose_add_signer(self, account: str, region: int) -> ProposalTx:
        """Propose ``account`` as a further signer of ``region``.

        Executes only once ``region`` itself approved it, besides the threshold.
        """
        return self.propose(
            ProposalKind.ADD_SIGNER,
            encode_proposal_data(ProposalKind.ADD_SIGNER, to_checksum_address(account), region),
        )

    def propose_remove_signer(self, account: str, region: int) -> ProposalTx:
        """Propose removing signer ``account`` of ``region`` (reverts at execution otherwise)."""
        return self.propose(
            ProposalKind.REMOVE_SIGNER,
            encode_proposal_data(ProposalKind.REMOVE_SIGNER, to_checksum_address(account), region),
        )

    def propose_set_threshold(self, threshold: int) -> ProposalTx:
        """Propose a new approval threshold."""
        return self.propose(
            ProposalKind.SET_THRESHOLD, encode_proposal_data(ProposalKind.SET_THRESHOLD, threshold)
        )

    def propose_add_auditor(self, account: str) -> ProposalTx:
        """Propose ``account`` as an auditor."""
        return self.propose(
            ProposalKind.ADD_AUDITOR,
            encode_proposal_data(ProposalKind.ADD_AUDITOR, to_checksum_address(account)),
        )

    def propose_remove_auditor(self, account: str) -> ProposalTx:
        """Propose removing auditor ``account``."""
        return self.propose(
            ProposalKind.REMOVE_AUDITOR,
            encode_proposal_data(ProposalKind.REMOVE_AUDITOR, to_checksum_address(account)),
        )

    def approve(self, proposal_id: int, *, gas: int | None = None) -> ProposalTx:
        """Approve for the caller's region; executes the proposal when the threshold is met."""
        tx = self.transact("approve", proposal_id, gas=gas)
        return self._proposal_outcome(tx)

    def execute(self, proposal_id: int, *, gas: int | None = None) -> TxResult:
        """Execute a pending proposal whose live approvals already meet the threshold."""
        return self.transact("execute", proposal_id, gas=gas)

    def set_endpoint(self, region: int, url: str, *, gas: int | None = None) -> TxResult:
        """Register the node URL of the caller's region ``region`` (no vote needed)."""
        return self.transact("setEndpoint", region, url, gas=gas)

    def _proposal_outcome(self, tx: TxResult) -> ProposalTx:
        events = self.decode_events(tx)
        approved = [e for e in events if e.name == "ProposalApproved"]
        if not approved:
            raise AssertionError(f"no ProposalApproved event in {tx.tx_hash}")
        last = approved[-1]
        return ProposalTx(
            proposal_id=int(last.args["id"]),
            approvals=int(last.args["approvals"]),
            executed=any(e.name == "ProposalExecuted" for e in events),
            tx=tx,
        )

    # ----------------------------------------------------------------- events

    def governance_events(
        self,
        names: Iterable[str] | None = None,
        *,
        from_block: int | None = None,
        to_block: BlockId = "latest",
    ) -> list[ChainEvent]:
        """Membership and governance events (all kinds by default), in chain order."""
        return self.events(
            list(names) if names is not None else list(GOVERNANCE_EVENTS),
            from_block=from_block,
            to_block=to_block,
        )

    def proposal_events(
        self, proposal_id: int, *, from_block: int | None = None, to_block: BlockId = "latest"
    ) -> list[ChainEvent]:
        """ProposalCreated/Approved/Executed events of one proposal."""
        return self.events(
            ["ProposalCreated", "ProposalApproved", "ProposalExecuted"],
            [topic_uint(proposal_id)],
            from_block=from_block,
            to_block=to_block,
        )

    def region_events(
        self,
        region: int,
        names: Sequence[str] = ("RegionAdded", "RegionRemoved", "EndpointSet"),
        *,
        from_block: int | None = None,
        to_block: BlockId = "latest",
    ) -> list[ChainEvent]:
        """Events whose first indexed argument is ``region`` (region lifecycle, endpoints)."""
        return self.events(
            list(names), [topic_uint(region)], from_block=from_block, to_block=to_block
        )

    def signer_events(
        self,
        account: str | None = None,
        region: int | None = None,
        *,
        from_block: int | None = None,
        to_block: BlockId = "latest",
    ) -> list[ChainEvent]:
        """SignerAdded/SignerRemoved events, optionally of one account and/or one region.

        A region's removal revokes its signers without SignerRemoved events; combine with
        ``region_events`` (RegionRemoved) to reconstruct who could sign when.
        """
        return self.events(
            ["SignerAdded", "SignerRemoved"],
            [
                topic_address(account) if account is not None else None,
                topic_uint(region) if region is not None else None,
            ],
            from_block=from_block,
            to_block=to_block,
        )
