"""Stateful property tests of the governance and batch-log rules against a real anvil.

A Hypothesis ``RuleBasedStateMachine`` drives random sequences of proposals (add and remove
region, add and remove signer, set threshold), approvals, executions, batch anchors (right
and wrong seqs, sizes, roots, head updates) and endorsements, by founding signers, added
signers, removed signers, signers of removed regions and outsiders. Every transaction is
sent with a fixed gas limit, so a refused one is mined and fails on chain rather than in a
gas estimate.

The machine keeps its own model of the rules (IConsortium, ICreditAnchor) and checks each
outcome against it, and after every step checks the invariants on chain:

* only a signer of a region (per the model's governance history) ever writes its batches;
  the signers of a removed region lose their rights at once, and for good (a re-added
  region starts a new epoch with the signer its proposal names);
* ``nextSeq`` of each region equals the number of batches accepted: no seq skipped, none
  repeated; every batch below it is stored as sent, none at or above it;
* a record head only ever moves forward, one version at a time, in its own region.

Each example starts from the same deployment: ``evm_snapshot``/``evm_revert`` (tests only).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
from hardening_env import BEIJING, HEBEI, TIANJIN, report_figures
from hypothesis import HealthCheck
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger.chain import AnchorClient, ChainClient, ConsortiumClient, deploy_contracts
from ledger.chain.consortium import ProposalKind, encode_proposal_data
from ledger.chain.localnode import LocalNode
from ledger.errors import ContractError

pytestmark = [pytest.mark.chain]

REGIONS = (BEIJING, TIANJIN, HEBEI)
SHANXI = 140000  # not a founding region: only governance can add it
ALL_REGIONS = (*REGIONS, SHANXI)
ACTORS = 9  # dev accounts 1..9: 1-3 found the regions, 4-9 start in no role
GAS = 3_000_000
EXAMPLES = 25
STEPS = 40
KEYS = tuple(hashlib.sha256(f"record-{i}".encode()).digest() for i in range(4))
STATS: dict[str, int] = {
    "examples": 0,
    "steps": 0,
    "transactions": 0,
    "refused_as_predicted": 0,
    "non_signer_writes_refused": 0,
    "batches_anchored": 0,
    "heads_moved": 0,
    "signers_added": 0,
    "signers_removed": 0,
    "regions_added": 0,
    "regions_removed": 0,
    "former_signer_writes_refused": 0,
}


@dataclass
class Deployed:
    """One anvil, the contracts, a client per actor and the snapshot every example starts at."""

    node: LocalNode
    clients: list[ChainClient]
    consortium_address: str
    anchor_address: str
    snapshot: str = ""

    def consortium(self, actor: int) -> ConsortiumClient:
        return ConsortiumClient(self.clients[actor], self.consortium_address)

    def anchor(self, actor: int) -> AnchorClient:
        return AnchorClient(self.clients[actor], self.anchor_address)

    def reset(self) -> None:
        """Back to the freshly deployed state; nonces follow the chain."""
        root = self.clients[0]
        if self.snapshot:
            assert root.request("evm_revert", [self.snapshot]) is True
        self.snapshot = str(root.request("evm_snapshot", []))
        for client in self.clients:
            client.resync_nonce()


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    with LocalNode("anvil") as node:
        clients = [ChainClient(node.rpc_url, key, chain_id=node.chain_id) for key in node.dev_keys]
        deployment = deploy_contracts(
            clients[0],
            REGIONS,
            ("Beijing", "Tianjin", "Hebei"),
            [clients[i].address for i in (1, 2, 3)],
            2,
        )
        yield Deployed(node, clients, deployment.consortium, deployment.anchor)
        for client in clients:
            client.close()
    report_figures("contract_properties", STATS)


@dataclass
class Proposal:
    """The model of one proposal."""

    kind: ProposalKind
    args: tuple[Any, ...]
    target: int  # AddSigner: the region that must approve; RemoveRegion: the one removed
    approvals: dict[int, int] = field(default_factory=dict)  # region -> its epoch then
    executed: bool = False


class Governance(RuleBasedStateMachine):
    """The model, the rules that drive the chain, and the invariants."""

    chain: Deployed

    def __init__(self) -> None:
        super().__init__()
        self.chain.reset()
        self.addresses = [c.address for c in self.chain.clients]
        self.signers: dict[int, int] = {1: BEIJING, 2: TIANJIN, 3: HEBEI}  # actor -> region
        self.former: set[int] = set()  # actors that were signers and are not any more
        self.active = set(REGIONS)
        self.epoch = {**dict.fromkeys(ALL_REGIONS, 0), **dict.fromkeys(REGIONS, 1)}
        self.threshold = 2
        self.proposals: list[tuple[int, Proposal]] = []  # (on-chain id, model)
        self.next_seq = dict.fromkeys(ALL_REGIONS, 0)
        self.roots: dict[tuple[int, int], bytes] = {}
        self.submitters: dict[tuple[int, int], str] = {}
        self.heads: dict[tuple[int, bytes], tuple[int, bytes]] = {}  # -> (version, leaf)
        self.endorsed: set[tuple[int, int, int]] = set()
        self.reader = self.chain.anchor(0)
        self.members = self.chain.consortium(0)
        STATS["examples"] += 1

    # ----------------------------------------------------------------- helpers

    def _send(self, expect: str | None, call: Any) -> Any:
        """Run ``call``; it must succeed iff ``expect`` is None, else revert with ``expect``."""
        STATS["transactions"] += 1
        try:
            result = call()
        except ContractError as e:
            assert expect is not None, f"refused with {e.name}, the model expected success"
            assert e.name == expect, f"refused with {e.name}, the model expected {expect}"
            STATS["refused_as_predicted"] += 1
            return None
        assert expect is None, f"accepted, the model expected {expect}"
        return result

    def _actor(self, who: int, pick: int) -> int:
        """Mostly a current signer (so rules get past the membership check), else often a
        former signer (removed, or of a removed region), else anyone."""
        if who < 3 and self.signers:
            return sorted(self.signers)[pick % len(self.signers)]
        former = sorted(self.former - set(self.signers))
        if former and pick % 2:
            return former[pick % len(former)]
        return 1 + pick % ACTORS

    def _refused_write(self, actor: int) -> None:
        STATS["non_signer_writes_refused"] += 1
        if actor in self.former:
            STATS["former_signer_writes_refused"] += 1

    def _has_approved(self, p: Proposal, region: int) -> bool:
        return region in self.active and p.approvals.get(region) == self.epoch[region]

    def _count(self, p: Proposal) -> int:
        """Live approvals: of active regions, in their current epoch; never the region a
        RemoveRegion removes."""
        excluded = p.target if p.kind is ProposalKind.REMOVE_REGION else 0
        return sum(1 for r in p.approvals if r != excluded and self._has_approved(p, r))

    def _required(self, p: Proposal) -> int:
        if p.kind is not ProposalKind.REMOVE_REGION:
            return self.threshold
        others = len(self.active) - (1 if p.target in self.active else 0)
        return min(others, self.threshold)

    def _target_approved(self, p: Proposal) -> bool:
        return p.kind is not ProposalKind.ADD_SIGNER or self._has_approved(p, p.target)

    def _execution_error(self, p: Proposal) -> str | None:
        """Why executing ``p`` now reverts, per the model (None: it succeeds)."""
        if p.kind is ProposalKind.ADD_REGION:
            code, account = p.args
            if code in self.active:
                return "RegionExists"
            if account in self.signers:
                return "SignerExists"
        elif p.kind is ProposalKind.REMOVE_REGION:
            (code,) = p.args
            if code not in self.active:
                return "RegionNotActive"
            if len(self.active) == 1:
                return "LastRegion"
        elif p.kind is ProposalKind.ADD_SIGNER:
            account, region = p.args
            if region not in self.active:
                return "RegionNotActive"
            if account in self.signers:
                return "SignerExists"
        elif p.kind is ProposalKind.REMOVE_SIGNER:
            account, region = p.args
            if self.signers.get(account) != region:
                return "NotSigner"
            if sum(1 for r in self.signers.values() if r == region) == 1:
                return "LastSigner"
        elif p.kind is ProposalKind.SET_THRESHOLD:
            (threshold,) = p.args
            if threshold > len(self.active):
                return "InvalidThreshold"
        return None

    def _ready(self, p: Proposal) -> bool:
        return self._count(p) >= self._required(p) and self._target_approved(p)

    def _apply(self, p: Proposal) -> None:
        p.executed = True
        if p.kind is ProposalKind.ADD_REGION:
            code, account = p.args
            self.active.add(code)
            self.epoch[code] += 1
            self.signers[account] = code
            STATS["regions_added"] += 1
        elif p.kind is ProposalKind.REMOVE_REGION:
            (code,) = p.args
            self.active.remove(code)
            for actor in [a for a, r in self.signers.items() if r == code]:
                del self.signers[actor]  # stale for good: a re-add starts a new epoch
                self.former.add(actor)
            self.threshold = min(self.threshold, len(self.active))
            STATS["regions_removed"] += 1
        elif p.kind is ProposalKind.ADD_SIGNER:
            account, region = p.args
            self.signers[account] = region
            STATS["signers_added"] += 1
        elif p.kind is ProposalKind.REMOVE_SIGNER:
            del self.signers[p.args[0]]
            self.former.add(p.args[0])
            STATS["signers_removed"] += 1
        else:
            self.threshold = p.args[0]

    def _approve_in_model(self, p: Proposal, region: int) -> str | None:
        """Record ``region``'s approval; execute if due. The revert reason, if it reverts."""
        previous = p.approvals.get(region)
        p.approvals[region] = self.epoch[region]
        if self._ready(p):
            error = self._execution_error(p)
            if error is not None:  # the whole transaction reverts
                if previous is None:
                    del p.approvals[region]
                else:
                    p.approvals[region] = previous
                return error
            self._apply(p)
        return None

    # ----------------------------------------------------------------- governance rules

    @rule(
        who=st.integers(0, 3),
        pick=st.integers(0, 8),
        kind=st.sampled_from(
            [
                ProposalKind.ADD_SIGNER,
                ProposalKind.ADD_SIGNER,
                ProposalKind.ADD_SIGNER,
                ProposalKind.REMOVE_SIGNER,
                ProposalKind.REMOVE_SIGNER,
                ProposalKind.SET_THRESHOLD,
                ProposalKind.ADD_REGION,
                ProposalKind.REMOVE_REGION,
            ]
        ),
        account=st.integers(1, ACTORS),
        region=st.sampled_from(ALL_REGIONS),
        threshold=st.integers(1, 4),
    )
    def propose(
        self,
        who: int,
        pick: int,
        kind: ProposalKind,
        account: int,
        region: int,
        threshold: int,
    ) -> None:
        proposer = self._actor(who, pick)
        if who < 3:  # mostly a change that can succeed: a new signer, a removable one
            if kind is ProposalKind.ADD_SIGNER:
                outsiders = [a for a in range(1, ACTORS + 1) if a not in self.signers]
                account = outsiders[account % len(outsiders)] if outsiders else account
                if region not in self.active:
                    region = sorted(self.active)[pick % len(self.active)]
            elif kind is ProposalKind.REMOVE_SIGNER:
                regions = list(self.signers.values())
                removable = [a for a, r in self.signers.items() if regions.count(r) > 1]
                account = removable[account % len(removable)] if removable else account
                region = self.signers.get(account, region)
            elif kind is ProposalKind.ADD_REGION:
                inactive = [r for r in ALL_REGIONS if r not in self.active]
                region = inactive[account % len(inactive)] if inactive else region
                outsiders = [a for a in range(1, ACTORS + 1) if a not in self.signers]
                account = outsiders[account % len(outsiders)] if outsiders else account
            elif kind is ProposalKind.REMOVE_REGION:
                active = sorted(self.active)
                region = active[account % len(active)]
        if kind is ProposalKind.SET_THRESHOLD:
            args: tuple[Any, ...] = (threshold,)
            data = encode_proposal_data(kind, threshold)
        elif kind is ProposalKind.ADD_REGION:
            args = (region, account)
            data = encode_proposal_data(kind, region, f"region {region}", self.addresses[account])
        elif kind is ProposalKind.REMOVE_REGION:
            args = (region,)
            data = encode_proposal_data(kind, region)
        else:
            args = (account, region)
            data = encode_proposal_data(kind, self.addresses[account], region)
        target = region if kind in (ProposalKind.ADD_SIGNER, ProposalKind.REMOVE_REGION) else 0
        proposal = Proposal(kind, args, target)
        own = self.signers.get(proposer)
        expect = "NotMember" if own is None else self._approve_in_model(proposal, own)
        if own is None:
            self._refused_write(proposer)
        outcome = self._send(
            expect, lambda: self.chain.consortium(proposer).propose(kind, data, gas=GAS)
        )
        if outcome is not None:
            assert outcome.executed == proposal.executed
            self.proposals.append((outcome.proposal_id, proposal))

    @precondition(lambda self: self.proposals)
    @rule(who=st.integers(0, 3), pick=st.integers(0, 8), which=st.integers(0, 7))
    def approve(self, who: int, pick: int, which: int) -> None:
        approver = self._actor(who, pick)
        pending = [p for p in self.proposals if not p[1].executed]
        pool = pending if pending and which % 4 else self.proposals
        proposal_id, proposal = pool[which % len(pool)]
        own = self.signers.get(approver)
        if own is None:
            expect: str | None = "NotMember"
            self._refused_write(approver)
        elif proposal.executed:
            expect = "ProposalAlreadyExecuted"
        elif proposal.approvals.get(own) == self.epoch[own]:
            expect = "AlreadyApproved"
        else:
            expect = self._approve_in_model(proposal, own)
        outcome = self._send(
            expect, lambda: self.chain.consortium(approver).approve(proposal_id, gas=GAS)
        )
        if outcome is not None:
            assert outcome.executed == proposal.executed

    @precondition(lambda self: self.proposals)
    @rule(who=st.integers(0, 3), pick=st.integers(0, 8), which=st.integers(0, 7))
    def execute(self, who: int, pick: int, which: int) -> None:
        actor = self._actor(who, pick)
        proposal_id, proposal = self.proposals[which % len(self.proposals)]
        if actor not in self.signers:
            expect: str | None = "NotMember"
        elif proposal.executed:
            expect = "ProposalAlreadyExecuted"
        elif self._count(proposal) < self._required(proposal):
            expect = "BelowThreshold"
        elif not self._target_approved(proposal):
            expect = "TargetRegionMustApprove"
        else:
            expect = self._execution_error(proposal)
            if expect is None:
                self._apply(proposal)
        self._send(expect, lambda: self.chain.consortium(actor).execute(proposal_id, gas=GAS))

    # ----------------------------------------------------------------- batch-log rules

    @rule(
        who=st.integers(0, 3),
        pick=st.integers(0, 8),
        region=st.sampled_from(ALL_REGIONS),
        seq_shift=st.sampled_from([0, 0, 0, 0, 1, -1, 5]),
        size=st.sampled_from([1, 3, 100, 0]),
        zero_root=st.integers(0, 9).map(lambda n: n == 0),
        root_salt=st.integers(0, 2**16),
        updates=st.lists(
            st.tuples(
                st.integers(0, len(KEYS) - 1),
                st.sampled_from([1, 1, 1, 0, 2]),  # version step: +1 is right
                st.sampled_from([1, 2, 3, 1, 0, 4]),  # status: 1..3 are valid
                st.integers(0, 7).map(lambda n: n == 0),  # a zero leaf hash
            ),
            max_size=3,
        ),
    )
    def anchor(
        self,
        who: int,
        pick: int,
        region: int,
        seq_shift: int,
        size: int,
        zero_root: bool,
        root_salt: int,
        updates: list[tuple[int, int, int, bool]],
    ) -> None:
        actor = self._actor(who, pick)
        if actor in self.signers and pick % 4:
            region = self.signers[actor]  # mostly its own region
        seq = max(0, self.next_seq[region] + seq_shift)
        root = bytes(32) if zero_root else _hash("root", region, seq, root_salt)
        heads = []
        current = {k: self.heads.get((region, k), (1, b""))[0] for k in KEYS}
        moved: dict[bytes, tuple[int, bytes]] = {}
        head_error = None
        for key_index, step, status, zero_leaf in updates:
            key = KEYS[key_index]
            version = current[key] + step
            leaf = bytes(32) if zero_leaf else _hash("leaf", key, version)
            heads.append((key, leaf, version, status))
            if head_error is None:
                if version <= current[key]:
                    head_error = "VersionNotIncreasing"
                elif version != current[key] + 1:
                    head_error = "VersionGap"
                elif not 1 <= status <= 3:
                    head_error = "InvalidStatus"
                elif leaf == bytes(32):
                    head_error = "ZeroLeafHash"
                else:
                    current[key] = version
                    moved[key] = (version, leaf)
        if self.signers.get(actor) != region:
            expect: str | None = "NotSigner"
            self._refused_write(actor)
        elif seq != self.next_seq[region]:
            expect = "BatchOutOfOrder"
        elif size == 0:
            expect = "EmptyBatch"
        elif root == bytes(32):
            expect = "ZeroRoot"
        elif len(heads) > size:
            expect = "TooManyHeads"
        else:
            expect = head_error
        anchor = self.chain.anchor(actor)
        result = self._send(
            expect,
            lambda: anchor.transact(
                "anchorBatch", region, seq, root, size, _hash("manifest", seq), heads, gas=GAS
            ),
        )
        if result is not None:
            self.roots[(region, seq)] = root
            self.submitters[(region, seq)] = self.addresses[actor]
            self.next_seq[region] += 1
            for key, head in moved.items():
                self.heads[(region, key)] = head
            STATS["batches_anchored"] += 1
            STATS["heads_moved"] += len(moved)

    @rule(
        who=st.integers(0, 3),
        pick=st.integers(0, 8),
        region=st.sampled_from(ALL_REGIONS),
        seq=st.integers(0, 4),
        right_root=st.booleans(),
    )
    def endorse(self, who: int, pick: int, region: int, seq: int, right_root: bool) -> None:
        actor = self._actor(who, pick)
        anchored = self.roots.get((region, seq))
        root = anchored if right_root and anchored else _hash("other", region, seq)
        own = self.signers.get(actor)
        if own is None:
            expect: str | None = "NotMember"
            self._refused_write(actor)
        elif own == region:
            expect = "SelfEndorsement"
        elif anchored is None:
            expect = "UnknownBatch"
        elif root != anchored:
            expect = "RootMismatch"
        elif (region, seq, own) in self.endorsed:
            expect = "AlreadyEndorsed"
        else:
            expect = None
        if self._send(expect, lambda: self.chain.anchor(actor).endorse(region, seq, root, gas=GAS)):
            self.endorsed.add((region, seq, own or 0))

    # ----------------------------------------------------------------- invariants

    @invariant()
    def chain_matches_the_model(self) -> None:
        STATS["steps"] += 1
        pairs = [(self.addresses[a], r) for a in range(1, ACTORS + 1) for r in ALL_REGIONS]
        signers = self.members.call_many("isSigner", pairs)
        expected = [self.signers.get(a) == r for a in range(1, ACTORS + 1) for r in ALL_REGIONS]
        assert [bool(s[0]) for s in signers] == expected, "signer set differs from governance"
        assert set(self.members.active_regions()) == self.active, "regions differ"
        assert self.members.threshold() == self.threshold
        next_seqs = self.reader.call_many("nextSeq", [(r,) for r in ALL_REGIONS])
        assert [n[0] for n in next_seqs] == [self.next_seq[r] for r in ALL_REGIONS], "seq skipped"
        batches = [(r, s) for r in ALL_REGIONS for s in range(self.next_seq[r] + 1)]
        stored = self.reader.call_many("batchOf", batches)
        for (region, seq), batch in zip(batches, stored, strict=True):
            if seq < self.next_seq[region]:
                assert batch[0] == self.roots[(region, seq)], f"batch {region}/{seq} changed"
                assert batch[4] == self.submitters[(region, seq)]
            else:
                assert batch[0] == bytes(32) and batch[1] == 0, f"batch {region}/{seq} exists"
        keys = [(r, k) for r in ALL_REGIONS for k in KEYS]
        heads = self.reader.call_many("headOf", keys)
        for (region, key), head in zip(keys, heads, strict=True):
            version, leaf = self.heads.get((region, key), (0, bytes(32)))
            assert (head[2], head[0]) == (version, leaf), "a head moved other than forward by one"


def _hash(*parts: Any) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


def test_governance_and_batch_log_rules_hold_in_random_sequences(deployed: Deployed) -> None:
    Governance.chain = deployed
    settings = hypothesis.settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        derandomize=True,  # a fixed seed: the same sequences on every run
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    run_state_machine_as_test(Governance, settings=settings)
    assert STATS["batches_anchored"] > 0 and STATS["signers_added"] > 0
    assert STATS["signers_removed"] > 0 and STATS["non_signer_writes_refused"] > 0
    assert STATS["regions_removed"] > 0 and STATS["regions_added"] > 0
    assert STATS["former_signer_writes_refused"] > 0
