"""Consortium: founding, M-of-N governance, every proposal kind, endpoints, views, events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from contract_helpers import (
    AUDITOR,
    BEIJING,
    BJ,
    BJ2,
    FOUNDER_NAMES,
    FOUNDERS,
    HB,
    HEBEI,
    OUTSIDER,
    SH,
    SHANGHAI,
    SPARE,
    TIANJIN,
    TJ,
    Env,
    block_timestamp,
    events,
    reverts,
)
from eth_abi.abi import encode

from ledger.chain import (
    ChainClient,
    ProposalKind,
    deploy_consortium,
    encode_proposal_data,
)
from ledger.errors import ChainError

pytestmark = pytest.mark.chain

SEVEN_DAYS = 7 * 24 * 3600


# ----------------------------------------------------------------------------- constructor


def test_constructor_founds_regions_signers_and_threshold(env: Env) -> None:
    consortium = env.consortium(OUTSIDER)
    assert consortium.active_regions() == sorted(FOUNDERS)
    assert consortium.threshold() == 2
    for who, region, name in zip((BJ, TJ, HB), FOUNDERS, FOUNDER_NAMES, strict=True):
        assert consortium.region_of(env.addr(who)) == region
        assert consortium.is_signer(env.addr(who), region)
        assert consortium.region_name(region) == name
        assert consortium.is_active_region(region)
        assert consortium.signer_count(region) == 1
        assert consortium.endpoint_of(region) == ""
    assert consortium.region_of(env.addr(OUTSIDER)) == 0
    assert not consortium.is_signer(env.addr(BJ), TIANJIN)
    assert not consortium.is_signer(env.addr(OUTSIDER), 0)
    assert consortium.auditors() == []
    assert consortium.proposal_count() == 0
    logged = [(e.name, dict(e.args)) for e in consortium.governance_events()]
    assert logged == [
        ("RegionAdded", {"region": BEIJING, "name": "Beijing"}),
        ("SignerAdded", {"account": env.addr(BJ), "region": BEIJING}),
        ("RegionAdded", {"region": TIANJIN, "name": "Tianjin"}),
        ("SignerAdded", {"account": env.addr(TJ), "region": TIANJIN}),
        ("RegionAdded", {"region": HEBEI, "name": "Hebei"}),
        ("SignerAdded", {"account": env.addr(HB), "region": HEBEI}),
        ("ThresholdChanged", {"previous": 0, "current": 2}),
    ]


def _founders(clients: Sequence[ChainClient]) -> list[str]:
    return [clients[i].address for i in (BJ, TJ, HB)]


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("length_names", ("LengthMismatch", {"regions": 3, "names": 2, "signers": 3})),
        ("length_signers", ("LengthMismatch", {"regions": 3, "names": 3, "signers": 2})),
        ("zero_region", ("InvalidRegionCode", {"code": 0})),
        ("five_digit_region", ("InvalidRegionCode", {"code": 99999})),
        ("seven_digit_region", ("InvalidRegionCode", {"code": 1000000})),
        ("empty_name", ("EmptyName", {"region": TIANJIN})),
        ("zero_signer", ("ZeroAddress", {})),
        ("duplicate_region", ("RegionExists", {"region": BEIJING})),
        ("duplicate_signer", ("SignerExists", {"account": "BJ", "region": BEIJING})),
        ("threshold_zero", ("InvalidThreshold", {"threshold": 0, "activeRegions": 3})),
        ("threshold_too_high", ("InvalidThreshold", {"threshold": 4, "activeRegions": 3})),
        ("no_regions", ("InvalidThreshold", {"threshold": 1, "activeRegions": 0})),
    ],
)
def test_constructor_rejects_invalid_founding(
    clients: Sequence[ChainClient], case: str, error: tuple[str, dict[str, Any]]
) -> None:
    regions, names, signers, threshold = list(FOUNDERS), list(FOUNDER_NAMES), _founders(clients), 2
    if case == "length_names":
        names.pop()
    elif case == "length_signers":
        signers.pop()
    elif case == "zero_region":
        regions[1] = 0
    elif case == "five_digit_region":
        regions[1] = 99999
    elif case == "seven_digit_region":
        regions[2] = 1000000
    elif case == "empty_name":
        names[1] = ""
    elif case == "zero_signer":
        signers[2] = "0x" + "00" * 20
    elif case == "duplicate_region":
        regions[2] = BEIJING
    elif case == "duplicate_signer":
        signers[1] = signers[0]
    elif case == "threshold_zero":
        threshold = 0
    elif case == "threshold_too_high":
        threshold = 4
    elif case == "no_regions":
        regions, names, signers, threshold = [], [], [], 1
    name, args = error
    args = {k: (clients[BJ].address if v == "BJ" else v) for k, v in args.items()}
    with reverts(name, **args):
        deploy_consortium(clients[BJ], regions, names, signers, threshold)


def test_constructor_accepts_the_ends_of_the_region_code_range(
    clients: Sequence[ChainClient],
) -> None:
    consortium = deploy_consortium(
        clients[BJ], [100000, 999999], ["National", "Last"], _founders(clients)[:2], 1
    )
    assert consortium.active_regions() == [100000, 999999]


# ----------------------------------------------------------------------------- authorisation


def test_outsider_can_neither_propose_approve_execute_nor_set_endpoints(env: Env) -> None:
    outsider = env.consortium(OUTSIDER)
    data = encode_proposal_data(ProposalKind.ADD_AUDITOR, env.addr(AUDITOR))
    with reverts("NotMember", account=env.addr(OUTSIDER)):
        outsider.propose(ProposalKind.ADD_AUDITOR, data)
    proposal_id = env.consortium(BJ).propose(ProposalKind.ADD_AUDITOR, data).proposal_id
    with reverts("NotMember", account=env.addr(OUTSIDER)):
        outsider.approve(proposal_id)
    with reverts("NotMember", account=env.addr(OUTSIDER)):
        outsider.execute(proposal_id)
    with reverts("NotSigner", account=env.addr(OUTSIDER), region=BEIJING):
        outsider.set_endpoint(BEIJING, "https://evil.example")


def test_auditor_has_no_signer_rights(env: Env) -> None:
    env.govern(BJ, [TJ], "add_auditor", env.addr(AUDITOR))
    with reverts("NotMember", account=env.addr(AUDITOR)):
        env.consortium(AUDITOR).propose_remove_region(HEBEI)


# ----------------------------------------------------------------------------- proposals


def test_propose_below_threshold_records_the_proposers_region_without_executing(env: Env) -> None:
    consortium = env.consortium(BJ)
    data = encode_proposal_data(ProposalKind.ADD_AUDITOR, env.addr(AUDITOR))
    outcome = consortium.propose(ProposalKind.ADD_AUDITOR, data)
    expires_at = block_timestamp(env.clients[BJ], outcome.tx.block_number) + SEVEN_DAYS
    assert (outcome.proposal_id, outcome.approvals, outcome.executed) == (1, 1, False)
    assert events(consortium, outcome) == [
        (
            "ProposalCreated",
            {
                "id": 1,
                "region": BEIJING,
                "kind": ProposalKind.ADD_AUDITOR,
                "data": data,
                "proposer": env.addr(BJ),
                "expiresAt": expires_at,
            },
        ),
        (
            "ProposalApproved",
            {"id": 1, "region": BEIJING, "approver": env.addr(BJ), "approvals": 1},
        ),
    ]
    proposal = consortium.proposal(1)
    assert proposal.kind is ProposalKind.ADD_AUDITOR
    assert proposal.args == (env.addr(AUDITOR),)
    assert (proposal.proposer, proposal.expires_at, proposal.executed, proposal.approvals) == (
        env.addr(BJ),
        expires_at,
        False,
        1,
    )
    assert proposal.expires_at - proposal.created_at == SEVEN_DAYS
    assert consortium.has_approved(1, BEIJING) and not consortium.has_approved(1, TIANJIN)
    assert not consortium.is_auditor(env.addr(AUDITOR))
    assert consortium.proposal_count() == 1


def test_approval_reaching_threshold_executes_with_events(env: Env) -> None:
    proposal_id = env.consortium(BJ).propose_add_auditor(env.addr(AUDITOR)).proposal_id
    tianjin = env.consortium(TJ)
    outcome = tianjin.approve(proposal_id)
    assert (outcome.approvals, outcome.executed) == (2, True)
    assert events(tianjin, outcome) == [
        (
            "ProposalApproved",
            {"id": 1, "region": TIANJIN, "approver": env.addr(TJ), "approvals": 2},
        ),
        ("AuditorAdded", {"account": env.addr(AUDITOR)}),
        ("ProposalExecuted", {"id": 1, "kind": ProposalKind.ADD_AUDITOR}),
    ]
    assert tianjin.is_auditor(env.addr(AUDITOR))
    assert tianjin.proposal(proposal_id).executed
    logged = [(e.name, e.args["id"]) for e in tianjin.proposal_events(proposal_id)]
    assert logged == [
        ("ProposalCreated", 1),
        ("ProposalApproved", 1),
        ("ProposalApproved", 1),
        ("ProposalExecuted", 1),
    ]


def test_executed_proposal_cannot_be_approved_or_executed_again(env: Env) -> None:
    proposal_id = env.govern(BJ, [TJ], "add_auditor", env.addr(AUDITOR)).proposal_id
    with reverts("ProposalAlreadyExecuted", id=proposal_id):
        env.consortium(HB).approve(proposal_id)
    with reverts("ProposalAlreadyExecuted", id=proposal_id):
        env.consortium(HB).execute(proposal_id)


def test_proposer_cannot_approve_twice(env: Env) -> None:
    proposal_id = env.consortium(BJ).propose_add_auditor(env.addr(AUDITOR)).proposal_id
    with reverts("AlreadyApproved", id=proposal_id, region=BEIJING):
        env.consortium(BJ).approve(proposal_id)


def test_second_signer_of_a_region_cannot_approve_for_it_again(env: Env) -> None:
    env.govern(BJ, [TJ], "add_signer", env.addr(BJ2), BEIJING)
    proposal_id = env.consortium(BJ).propose_add_auditor(env.addr(AUDITOR)).proposal_id
    with reverts("AlreadyApproved", id=proposal_id, region=BEIJING):
        env.consortium(BJ2).approve(proposal_id)
    # The second signer may propose for Beijing itself; the first signer then cannot approve.
    other_id = env.consortium(BJ2).propose_remove_auditor(env.addr(AUDITOR)).proposal_id
    with reverts("AlreadyApproved", id=other_id, region=BEIJING):
        env.consortium(BJ).approve(other_id)


def test_unknown_proposal_is_rejected(env: Env) -> None:
    consortium = env.consortium(BJ)
    with reverts("UnknownProposal", id=7):
        consortium.approve(7)
    with reverts("UnknownProposal", id=7):
        consortium.execute(7)
    with reverts("UnknownProposal", id=7):
        consortium.proposal(7)
    with reverts("UnknownProposal", id=0):
        consortium.approve(0)


def test_proposal_expires_after_its_lifetime(env: Env) -> None:
    consortium = env.consortium(BJ)
    assert consortium.proposal_lifetime() == SEVEN_DAYS
    early = consortium.propose_add_auditor(env.addr(AUDITOR)).proposal_id
    late = consortium.propose_add_auditor(env.addr(SPARE)).proposal_id
    expires_at = consortium.proposal(late).expires_at
    env.advance_time(SEVEN_DAYS - 600)
    assert env.consortium(TJ).approve(early).executed  # still open ten minutes before expiry
    env.advance_time(600)
    with reverts("ProposalExpired", id=late, expiredAt=expires_at):
        env.consortium(TJ).approve(late)
    with reverts("ProposalExpired", id=late, expiredAt=expires_at):
        env.consortium(TJ).execute(late)
    assert not consortium.is_auditor(env.addr(SPARE))


def test_proposal_is_open_until_one_second_before_expires_at(env: Env) -> None:
    consortium = env.consortium(BJ)
    first = consortium.propose_add_auditor(env.addr(AUDITOR)).proposal_id
    second = consortium.propose_add_auditor(env.addr(SPARE)).proposal_id
    first_expiry = consortium.proposal(first).expires_at
    second_expiry = consortium.proposal(second).expires_at
    env.set_next_block_timestamp(first_expiry - 1)
    outcome = env.consortium(TJ).approve(first)
    assert block_timestamp(env.clients[BJ], outcome.tx.block_number) == first_expiry - 1
    assert outcome.executed
    env.set_next_block_timestamp(second_expiry)
    tianjin = env.consortium(TJ)
    # Fixed gas: mined without an estimate (ganache estimates at the latest block's time).
    with pytest.raises(ChainError):
        tianjin.approve(second, gas=500_000)
    failed_block = env.clients[BJ].block_number()
    assert block_timestamp(env.clients[BJ], failed_block) == second_expiry
    # The reason, on that block (receipts carry none); every later attempt fails alike.
    for function in ("approve", "execute"):
        with reverts("ProposalExpired", id=second, expiredAt=second_expiry):
            tianjin.call(function, second, block=failed_block)
    with reverts("ProposalExpired", id=second, expiredAt=second_expiry):
        tianjin.approve(second)
    assert not consortium.has_approved(second, TIANJIN)
    assert not consortium.is_auditor(env.addr(SPARE))


@pytest.mark.parametrize("kind", [7, 255])
def test_unknown_kind_is_rejected(env: Env, kind: int) -> None:
    with reverts("UnknownProposalKind", kind=kind):
        env.consortium(BJ).propose(kind, encode(["address"], [env.addr(AUDITOR)]))


_DIRTY_ADDRESS = (1 << 160).to_bytes(32, "big")


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        (ProposalKind.ADD_REGION, b""),
        (ProposalKind.ADD_REGION, encode(["uint32", "string"], [SHANGHAI, "Shanghai"])),
        (
            ProposalKind.ADD_REGION,
            encode(["uint32", "string", "address"], [SHANGHAI, "S", "0x" + "11" * 20]) + bytes(32),
        ),
        (
            ProposalKind.ADD_REGION,
            encode(["uint256", "string", "address"], [1 << 32, "S", "0x" + "11" * 20]),
        ),
        (ProposalKind.REMOVE_REGION, encode(["uint256"], [1 << 32])),
        (ProposalKind.REMOVE_REGION, encode(["uint32", "uint32"], [HEBEI, HEBEI])),
        (ProposalKind.ADD_SIGNER, encode(["address"], ["0x" + "11" * 20])),
        (ProposalKind.ADD_SIGNER, _DIRTY_ADDRESS + encode(["uint32"], [BEIJING])),
        (ProposalKind.REMOVE_SIGNER, encode(["address"], ["0x" + "11" * 20])),
        (ProposalKind.REMOVE_SIGNER, _DIRTY_ADDRESS + encode(["uint32"], [BEIJING])),
        (ProposalKind.REMOVE_SIGNER, encode(["address", "uint256"], ["0x" + "11" * 20, 1 << 32])),
        (ProposalKind.SET_THRESHOLD, b"\x01"),
        (ProposalKind.ADD_AUDITOR, b""),
        (ProposalKind.REMOVE_AUDITOR, _DIRTY_ADDRESS),
    ],
    ids=[
        "add_region_empty",
        "add_region_truncated",
        "add_region_trailing_bytes",
        "add_region_code_overflow",
        "remove_region_overflow",
        "remove_region_extra_word",
        "add_signer_missing_region",
        "add_signer_dirty_address",
        "remove_signer_missing_region",
        "remove_signer_dirty_address",
        "remove_signer_region_overflow",
        "set_threshold_short",
        "add_auditor_empty",
        "remove_auditor_dirty_address",
    ],
)
def test_malformed_proposal_data_is_rejected(env: Env, kind: ProposalKind, data: bytes) -> None:
    with reverts("InvalidProposalData", kind=kind):
        env.consortium(BJ).propose(kind, data)


def test_non_canonical_region_name_padding_is_rejected(env: Env) -> None:
    data = bytearray(encode_proposal_data(ProposalKind.ADD_REGION, SHANGHAI, "S", env.addr(SH)))
    data[-1] = 0xFF  # padding after the one-byte name
    with reverts("InvalidProposalData", kind=ProposalKind.ADD_REGION):
        env.consortium(BJ).propose(ProposalKind.ADD_REGION, bytes(data))


_ZERO = "0x" + "00" * 20


@pytest.mark.parametrize(
    ("kind", "args", "error"),
    [
        (ProposalKind.ADD_REGION, (0, "Nowhere", "SH"), ("InvalidRegionCode", {"code": 0})),
        (
            ProposalKind.ADD_REGION,
            (99999, "Five digits", "SH"),
            ("InvalidRegionCode", {"code": 99999}),
        ),
        (
            ProposalKind.ADD_REGION,
            (1000000, "Seven digits", "SH"),
            ("InvalidRegionCode", {"code": 1000000}),
        ),
        (ProposalKind.ADD_REGION, (SHANGHAI, "", "SH"), ("EmptyName", {"region": SHANGHAI})),
        (ProposalKind.ADD_REGION, (SHANGHAI, "Shanghai", _ZERO), ("ZeroAddress", {})),
        (ProposalKind.REMOVE_REGION, (0,), ("InvalidRegionCode", {"code": 0})),
        (ProposalKind.REMOVE_REGION, (1000000,), ("InvalidRegionCode", {"code": 1000000})),
        (ProposalKind.ADD_SIGNER, (_ZERO, BEIJING), ("ZeroAddress", {})),
        (ProposalKind.ADD_SIGNER, ("SH", 0), ("InvalidRegionCode", {"code": 0})),
        (ProposalKind.ADD_SIGNER, ("SH", 99999), ("InvalidRegionCode", {"code": 99999})),
        (ProposalKind.REMOVE_SIGNER, (_ZERO, BEIJING), ("ZeroAddress", {})),
        (ProposalKind.REMOVE_SIGNER, ("SH", 0), ("InvalidRegionCode", {"code": 0})),
        (
            ProposalKind.SET_THRESHOLD,
            (0,),
            ("InvalidThreshold", {"threshold": 0, "activeRegions": 3}),
        ),
        (ProposalKind.ADD_AUDITOR, (_ZERO,), ("ZeroAddress", {})),
        (ProposalKind.REMOVE_AUDITOR, (_ZERO,), ("ZeroAddress", {})),
    ],
)
def test_zero_values_are_rejected_at_proposal_time(
    env: Env, kind: ProposalKind, args: tuple[Any, ...], error: tuple[str, dict[str, Any]]
) -> None:
    resolved = tuple(env.addr(SH) if a == "SH" else a for a in args)
    with reverts(error[0], **error[1]):
        env.consortium(BJ).propose(kind, encode_proposal_data(kind, *resolved))


def test_failing_execution_reverts_the_approval_and_keeps_the_proposal_pending(env: Env) -> None:
    proposal_id = (
        env.consortium(BJ).propose_add_region(TIANJIN, "Tianjin again", env.addr(SH)).proposal_id
    )
    with reverts("RegionExists", region=TIANJIN):
        env.consortium(TJ).approve(proposal_id)
    proposal = env.consortium(BJ).proposal(proposal_id)
    assert (proposal.executed, proposal.approvals) == (False, 1)
    assert not env.consortium(BJ).has_approved(proposal_id, TIANJIN)


def test_execute_applies_a_proposal_whose_threshold_was_lowered(env: Env) -> None:
    env.govern(BJ, [TJ], "set_threshold", 3)
    pending = env.consortium(BJ).propose_add_auditor(env.addr(AUDITOR)).proposal_id
    assert not env.consortium(TJ).approve(pending).executed
    with reverts("BelowThreshold", id=pending, approvals=2, threshold=3):
        env.consortium(HB).execute(pending)
    env.govern(BJ, [TJ, HB], "set_threshold", 2)
    tx = env.consortium(HB).execute(pending)
    assert events(env.consortium(), tx) == [
        ("AuditorAdded", {"account": env.addr(AUDITOR)}),
        ("ProposalExecuted", {"id": pending, "kind": ProposalKind.ADD_AUDITOR}),
    ]
    assert env.consortium().is_auditor(env.addr(AUDITOR))


def test_execute_reverts_with_the_failing_state_check(env: Env) -> None:
    env.govern(BJ, [TJ], "set_threshold", 3)
    pending = env.consortium(BJ).propose_add_auditor(env.addr(AUDITOR)).proposal_id
    env.consortium(TJ).approve(pending)
    env.govern(TJ, [BJ, HB], "add_auditor", env.addr(AUDITOR))
    env.govern(BJ, [TJ, HB], "set_threshold", 2)
    with reverts("AuditorExists", account=env.addr(AUDITOR)):
        env.consortium(HB).execute(pending)
    proposal = env.consortium().proposal(pending)
    assert (proposal.executed, proposal.approvals) == (False, 2)


def test_threshold_one_executes_at_proposal(env: Env) -> None:
    env.govern(BJ, [TJ], "set_threshold", 1)
    outcome = env.consortium(HB).propose_add_auditor(env.addr(AUDITOR))
    assert (outcome.approvals, outcome.executed) == (1, True)
    assert [name for name, _ in events(env.consortium(), outcome)] == [
        "ProposalCreated",
        "ProposalApproved",
        "AuditorAdded",
        "ProposalExecuted",
    ]


# ----------------------------------------------------------------------------- removed regions


def test_approvals_of_a_removed_region_stop_counting(env: Env) -> None:
    pending = env.consortium(HB).propose_add_auditor(env.addr(AUDITOR)).proposal_id
    env.govern(BJ, [TJ], "remove_region", HEBEI)
    consortium = env.consortium(BJ)
    assert consortium.proposal(pending).approvals == 0
    assert not consortium.has_approved(pending, HEBEI)
    outcome = consortium.approve(pending)
    # With Hebei's approval still counted this would have executed at threshold 2.
    assert (outcome.approvals, outcome.executed) == (1, False)
    with reverts("NotMember", account=env.addr(HB)):
        env.consortium(HB).approve(pending)
    assert env.consortium(TJ).approve(pending).executed


def test_readded_region_must_approve_again_and_counts_once(env: Env) -> None:
    pending = env.consortium(HB).propose_add_auditor(env.addr(AUDITOR)).proposal_id
    env.govern(BJ, [TJ], "remove_region", HEBEI)
    env.govern(BJ, [TJ], "add_region", HEBEI, "Hebei", env.addr(HB))
    consortium = env.consortium(BJ)
    assert consortium.region_of(env.addr(HB)) == HEBEI
    assert not consortium.has_approved(pending, HEBEI)
    assert consortium.proposal(pending).approvals == 0
    outcome = env.consortium(HB).approve(pending)
    assert (outcome.approvals, outcome.executed) == (1, False)
    with reverts("AlreadyApproved", id=pending, region=HEBEI):
        env.consortium(HB).approve(pending)
    assert env.consortium(TJ).approve(pending).executed


def test_removed_region_signers_lose_every_consortium_right(env: Env) -> None:
    env.govern(HB, [TJ], "add_signer", env.addr(SPARE), HEBEI)
    pending = env.consortium(BJ).propose_add_auditor(env.addr(AUDITOR)).proposal_id
    env.govern(BJ, [TJ], "remove_region", HEBEI)
    consortium = env.consortium(OUTSIDER)
    for who in (HB, SPARE):
        address = env.addr(who)
        assert consortium.region_of(address) == 0
        assert not consortium.is_signer(address, HEBEI)
        hebei = env.consortium(who)
        with reverts("NotMember", account=address):
            hebei.propose_add_auditor(env.addr(OUTSIDER))
        with reverts("NotMember", account=address):
            hebei.approve(pending)
        with reverts("NotMember", account=address):
            hebei.execute(pending)
        with reverts("NotSigner", account=address, region=HEBEI):
            hebei.set_endpoint(HEBEI, "https://hebei.example")


# ----------------------------------------------------------------------------- each kind


def test_add_region(env: Env) -> None:
    outcome = env.govern(BJ, [TJ], "add_region", SHANGHAI, "Shanghai", env.addr(SH))
    consortium = env.consortium(SH)
    assert events(consortium, outcome)[1:] == [
        ("RegionAdded", {"region": SHANGHAI, "name": "Shanghai"}),
        ("SignerAdded", {"account": env.addr(SH), "region": SHANGHAI}),
        ("ProposalExecuted", {"id": outcome.proposal_id, "kind": ProposalKind.ADD_REGION}),
    ]
    assert consortium.active_regions() == sorted([*FOUNDERS, SHANGHAI])
    assert consortium.region_of(env.addr(SH)) == SHANGHAI
    assert consortium.region_name(SHANGHAI) == "Shanghai"
    assert consortium.signer_count(SHANGHAI) == 1
    # The new region votes at once.
    assert consortium.propose_add_auditor(env.addr(AUDITOR)).approvals == 1


def test_add_region_rejects_active_region_and_busy_signer(env: Env) -> None:
    busy = env.consortium(BJ).propose_add_region(SHANGHAI, "Shanghai", env.addr(TJ)).proposal_id
    with reverts("SignerExists", account=env.addr(TJ), region=TIANJIN):
        env.consortium(TJ).approve(busy)
    active = env.consortium(BJ).propose_add_region(HEBEI, "Hebei", env.addr(SH)).proposal_id
    with reverts("RegionExists", region=HEBEI):
        env.consortium(TJ).approve(active)


def test_remove_region(env: Env) -> None:
    env.consortium(HB).set_endpoint(HEBEI, "https://hebei.example")
    outcome = env.govern(BJ, [TJ], "remove_region", HEBEI)
    consortium = env.consortium(OUTSIDER)
    assert events(consortium, outcome)[1:] == [
        ("RegionRemoved", {"region": HEBEI}),
        ("ProposalExecuted", {"id": outcome.proposal_id, "kind": ProposalKind.REMOVE_REGION}),
    ]
    assert consortium.active_regions() == [BEIJING, TIANJIN]
    assert not consortium.is_active_region(HEBEI)
    assert consortium.region_name(HEBEI) == "Hebei"  # history stays readable
    assert consortium.endpoint_of(HEBEI) == ""
    assert consortium.signer_count(HEBEI) == 0


def test_remove_region_rejects_inactive_region(env: Env) -> None:
    proposal_id = env.consortium(BJ).propose_remove_region(SHANGHAI).proposal_id
    with reverts("RegionNotActive", region=SHANGHAI):
        env.consortium(TJ).approve(proposal_id)


def test_at_full_threshold_the_other_regions_remove_a_region_and_lower_the_threshold(
    env: Env,
) -> None:
    """3-of-3: a region that lost its keys cannot freeze governance (M2)."""
    env.govern(BJ, [TJ], "set_threshold", 3)
    proposal_id = env.consortium(BJ).propose_remove_region(HEBEI).proposal_id
    tianjin = env.consortium(TJ)
    outcome = tianjin.approve(proposal_id)
    assert (outcome.approvals, outcome.executed) == (2, True)
    assert events(tianjin, outcome) == [
        (
            "ProposalApproved",
            {"id": proposal_id, "region": TIANJIN, "approver": env.addr(TJ), "approvals": 2},
        ),
        ("RegionRemoved", {"region": HEBEI}),
        ("ThresholdChanged", {"previous": 3, "current": 2}),
        ("ProposalExecuted", {"id": proposal_id, "kind": ProposalKind.REMOVE_REGION}),
    ]
    assert tianjin.threshold() == 2
    assert tianjin.active_regions() == [BEIJING, TIANJIN]
    # The remaining two still govern, at the lowered threshold.
    assert env.govern(BJ, [TJ], "add_auditor", env.addr(AUDITOR)).executed


def test_removal_needs_at_most_the_threshold_and_keeps_it_when_enough_remain(env: Env) -> None:
    env.govern(BJ, [TJ], "add_region", SHANGHAI, "Shanghai", env.addr(SH))
    assert env.consortium().threshold() == 2
    proposal_id = env.consortium(BJ).propose_remove_region(HEBEI).proposal_id
    outcome = env.consortium(SH).approve(proposal_id)
    assert outcome.executed
    assert [name for name, _ in events(env.consortium(), outcome)] == [
        "ProposalApproved",
        "RegionRemoved",
        "ProposalExecuted",
    ]
    assert env.consortium().threshold() == 2


def test_the_removed_regions_own_approval_does_not_count(env: Env) -> None:
    # Hebei proposes its own removal: its approval is recorded but not counted.
    own = env.consortium(HB).propose_remove_region(HEBEI)
    assert (own.approvals, own.executed) == (0, False)
    assert env.consortium().has_approved(own.proposal_id, HEBEI)
    assert env.consortium(BJ).approve(own.proposal_id).approvals == 1
    with reverts("BelowThreshold", id=own.proposal_id, approvals=1, threshold=2):
        env.consortium(BJ).execute(own.proposal_id)
    # Hebei approving another region's proposal to remove it does not push it over either.
    other = env.consortium(TJ).propose_remove_region(HEBEI).proposal_id
    outcome = env.consortium(HB).approve(other)
    assert (outcome.approvals, outcome.executed) == (1, False)
    assert env.consortium(TJ).approve(own.proposal_id).executed
    assert not env.consortium().is_active_region(HEBEI)


def test_last_region_cannot_be_removed(clients: Sequence[ChainClient]) -> None:
    solo = deploy_consortium(clients[BJ], [BEIJING], ["Beijing"], [clients[BJ].address], 1)
    with reverts("LastRegion", region=BEIJING):
        solo.propose_remove_region(BEIJING)
    assert solo.active_regions() == [BEIJING]


def test_readded_region_starts_without_an_endpoint(env: Env) -> None:
    env.consortium(HB).set_endpoint(HEBEI, "https://hebei.example")
    env.govern(BJ, [TJ], "remove_region", HEBEI)
    env.govern(BJ, [TJ], "add_region", HEBEI, "Hebei", env.addr(SPARE))
    assert env.consortium().endpoint_of(HEBEI) == ""
    env.consortium(SPARE).set_endpoint(HEBEI, "https://hebei-new.example")
    assert env.consortium().endpoint_of(HEBEI) == "https://hebei-new.example"


def test_a_threshold_of_regions_can_reassign_a_namespace_by_remove_and_readd(env: Env) -> None:
    """The documented recovery path for lost keys, visible to verifiers in the events (M1)."""
    env.anchor(HB).anchor_batch(HEBEI, 0, bytes([1]) * 32, 1, bytes(32))
    first_block = env.consortium().client.block_number()
    env.govern(BJ, [TJ], "remove_region", HEBEI)
    readded = env.govern(BJ, [TJ], "add_region", HEBEI, "Hebei", env.addr(SPARE))
    consortium = env.consortium(OUTSIDER)
    lifecycle = consortium.region_events(
        HEBEI, ["RegionAdded", "RegionRemoved"], from_block=first_block
    )
    assert [(e.name, dict(e.args)) for e in lifecycle] == [
        ("RegionRemoved", {"region": HEBEI}),
        ("RegionAdded", {"region": HEBEI, "name": "Hebei"}),
    ]
    assert events(consortium, readded)[2] == (
        "SignerAdded",
        {"account": env.addr(SPARE), "region": HEBEI},
    )
    # The new key continues Hebei's log; the old one can no longer write it.
    env.anchor(SPARE).anchor_batch(HEBEI, 1, bytes([2]) * 32, 1, bytes(32))
    with reverts("NotSigner", account=env.addr(HB), region=HEBEI):
        env.anchor(HB).anchor_batch(HEBEI, 2, bytes([3]) * 32, 1, bytes(32))
    assert [b.submitter for b in env.anchor().batches_anchored(HEBEI)] == [
        env.addr(HB),
        env.addr(SPARE),
    ]


def test_add_signer(env: Env) -> None:
    outcome = env.govern(BJ, [TJ], "add_signer", env.addr(BJ2), BEIJING)
    consortium = env.consortium(BJ2)
    assert events(consortium, outcome)[1:] == [
        ("SignerAdded", {"account": env.addr(BJ2), "region": BEIJING}),
        ("ProposalExecuted", {"id": outcome.proposal_id, "kind": ProposalKind.ADD_SIGNER}),
    ]
    assert consortium.region_of(env.addr(BJ2)) == BEIJING
    assert consortium.signer_count(BEIJING) == 2
    consortium.set_endpoint(BEIJING, "https://bj2.example")
    assert consortium.endpoint_of(BEIJING) == "https://bj2.example"


def test_add_signer_for_another_region_waits_for_that_regions_approval(env: Env) -> None:
    proposal_id = env.consortium(BJ).propose_add_signer(env.addr(SH), HEBEI).proposal_id
    tianjin = env.consortium(TJ)
    outcome = tianjin.approve(proposal_id)
    # The threshold is met, but Hebei has not approved: pending, no revert, approvals kept.
    assert (outcome.approvals, outcome.executed) == (2, False)
    assert [name for name, _ in events(tianjin, outcome)] == ["ProposalApproved"]
    assert tianjin.region_of(env.addr(SH)) == 0
    with reverts("TargetRegionMustApprove", id=proposal_id, region=HEBEI):
        tianjin.execute(proposal_id)
    hebei = env.consortium(HB)
    outcome = hebei.approve(proposal_id)
    assert events(hebei, outcome) == [
        (
            "ProposalApproved",
            {"id": proposal_id, "region": HEBEI, "approver": env.addr(HB), "approvals": 3},
        ),
        ("SignerAdded", {"account": env.addr(SH), "region": HEBEI}),
        ("ProposalExecuted", {"id": proposal_id, "kind": ProposalKind.ADD_SIGNER}),
    ]
    assert hebei.region_of(env.addr(SH)) == HEBEI


def test_at_threshold_one_a_region_cannot_plant_a_signer_in_another(env: Env) -> None:
    env.govern(BJ, [TJ], "set_threshold", 1)
    planted = env.consortium(BJ).propose_add_signer(env.addr(SH), HEBEI)
    assert (planted.approvals, planted.executed) == (1, False)
    with reverts("TargetRegionMustApprove", id=planted.proposal_id, region=HEBEI):
        env.consortium(BJ).execute(planted.proposal_id)
    with reverts("NotSigner", account=env.addr(SH), region=HEBEI):
        env.anchor(SH).anchor_batch(HEBEI, 0, bytes([1]) * 32, 1, bytes(32))
    with reverts("NotSigner", account=env.addr(SH), region=HEBEI):
        env.consortium(SH).set_endpoint(HEBEI, "https://evil.example")
    # Its own region it may still extend alone.
    assert env.consortium(BJ).propose_add_signer(env.addr(BJ2), BEIJING).executed
    # Once Hebei agrees, the pending proposal executes.
    assert env.consortium(HB).approve(planted.proposal_id).executed
    assert env.consortium().region_of(env.addr(SH)) == HEBEI


def test_add_signer_rejects_inactive_region_and_existing_signer(env: Env) -> None:
    # An inactive region cannot approve, so the proposal cannot execute.
    inactive = env.consortium(BJ).propose_add_signer(env.addr(SH), SHANGHAI).proposal_id
    assert not env.consortium(TJ).approve(inactive).executed
    with reverts("TargetRegionMustApprove", id=inactive, region=SHANGHAI):
        env.consortium(TJ).execute(inactive)
    existing = env.consortium(BJ).propose_add_signer(env.addr(HB), BEIJING).proposal_id
    with reverts("SignerExists", account=env.addr(HB), region=HEBEI):
        env.consortium(TJ).approve(existing)


def test_signer_of_a_removed_region_can_be_registered_again(env: Env) -> None:
    env.govern(BJ, [TJ], "remove_region", HEBEI)
    consortium = env.consortium(OUTSIDER)
    assert consortium.region_of(env.addr(HB)) == 0  # stale entry, no rights
    outcome = env.govern(TJ, [BJ], "add_signer", env.addr(HB), TIANJIN)
    assert events(consortium, outcome)[1] == (
        "SignerAdded",
        {"account": env.addr(HB), "region": TIANJIN},
    )
    assert consortium.region_of(env.addr(HB)) == TIANJIN
    assert consortium.signer_count(TIANJIN) == 2
    # Re-adding Hebei later does not give the account back to Hebei.
    env.govern(BJ, [TJ], "add_region", HEBEI, "Hebei", env.addr(SPARE))
    assert consortium.region_of(env.addr(HB)) == TIANJIN
    assert not consortium.is_signer(env.addr(HB), HEBEI)
    assert consortium.signer_count(HEBEI) == 1


def test_remove_signer(env: Env) -> None:
    env.govern(BJ, [TJ], "add_signer", env.addr(BJ2), BEIJING)
    outcome = env.govern(BJ, [TJ], "remove_signer", env.addr(BJ2), BEIJING)
    consortium = env.consortium(BJ2)
    assert events(consortium, outcome)[1:] == [
        ("SignerRemoved", {"account": env.addr(BJ2), "region": BEIJING}),
        ("ProposalExecuted", {"id": outcome.proposal_id, "kind": ProposalKind.REMOVE_SIGNER}),
    ]
    assert consortium.region_of(env.addr(BJ2)) == 0
    assert consortium.signer_count(BEIJING) == 1
    with reverts("NotMember", account=env.addr(BJ2)):
        consortium.propose_add_auditor(env.addr(AUDITOR))


def test_remove_signer_rejects_non_signer_and_last_signer(env: Env) -> None:
    stranger = env.consortium(BJ).propose_remove_signer(env.addr(OUTSIDER), BEIJING).proposal_id
    with reverts("NotSigner", account=env.addr(OUTSIDER), region=BEIJING):
        env.consortium(TJ).approve(stranger)
    last = env.consortium(BJ).propose_remove_signer(env.addr(TJ), TIANJIN).proposal_id
    with reverts("LastSigner", account=env.addr(TJ), region=TIANJIN):
        env.consortium(HB).approve(last)


def test_remove_signer_checks_the_stated_region(env: Env) -> None:
    env.govern(BJ, [TJ], "add_signer", env.addr(BJ2), BEIJING)
    wrong = env.consortium(BJ).propose_remove_signer(env.addr(BJ2), TIANJIN)
    assert env.consortium().proposal(wrong.proposal_id).args == (env.addr(BJ2), TIANJIN)
    with reverts("NotSigner", account=env.addr(BJ2), region=TIANJIN):
        env.consortium(TJ).approve(wrong.proposal_id)
    assert env.consortium().region_of(env.addr(BJ2)) == BEIJING


def test_set_threshold(env: Env) -> None:
    outcome = env.govern(BJ, [TJ], "set_threshold", 3)
    assert events(env.consortium(), outcome)[1:] == [
        ("ThresholdChanged", {"previous": 2, "current": 3}),
        ("ProposalExecuted", {"id": outcome.proposal_id, "kind": ProposalKind.SET_THRESHOLD}),
    ]
    assert env.consortium().threshold() == 3


def test_set_threshold_rejects_more_than_active_regions(env: Env) -> None:
    proposal_id = env.consortium(BJ).propose_set_threshold(4).proposal_id
    with reverts("InvalidThreshold", threshold=4, activeRegions=3):
        env.consortium(TJ).approve(proposal_id)


def test_add_and_remove_auditor(env: Env) -> None:
    added = env.govern(BJ, [TJ], "add_auditor", env.addr(AUDITOR))
    assert events(env.consortium(), added)[1] == ("AuditorAdded", {"account": env.addr(AUDITOR)})
    assert env.consortium().auditors() == [env.addr(AUDITOR)]
    removed = env.govern(TJ, [HB], "remove_auditor", env.addr(AUDITOR))
    assert events(env.consortium(), removed)[1:] == [
        ("AuditorRemoved", {"account": env.addr(AUDITOR)}),
        ("ProposalExecuted", {"id": removed.proposal_id, "kind": ProposalKind.REMOVE_AUDITOR}),
    ]
    assert env.consortium().auditors() == []
    assert not env.consortium().is_auditor(env.addr(AUDITOR))


def test_auditor_add_twice_and_remove_unknown_are_rejected(env: Env) -> None:
    env.govern(BJ, [TJ], "add_auditor", env.addr(AUDITOR))
    again = env.consortium(BJ).propose_add_auditor(env.addr(AUDITOR)).proposal_id
    with reverts("AuditorExists", account=env.addr(AUDITOR)):
        env.consortium(TJ).approve(again)
    unknown = env.consortium(BJ).propose_remove_auditor(env.addr(OUTSIDER)).proposal_id
    with reverts("NotAuditor", account=env.addr(OUTSIDER)):
        env.consortium(TJ).approve(unknown)


# ----------------------------------------------------------------------------- endpoints


def test_signer_sets_own_region_endpoint_without_vote(env: Env) -> None:
    consortium = env.consortium(TJ)
    tx = consortium.set_endpoint(TIANJIN, "https://tianjin.example/v1")
    assert events(consortium, tx) == [
        (
            "EndpointSet",
            {"region": TIANJIN, "url": "https://tianjin.example/v1", "signer": env.addr(TJ)},
        )
    ]
    assert consortium.endpoint_of(TIANJIN) == "https://tianjin.example/v1"
    assert [e.args["url"] for e in consortium.region_events(TIANJIN, ["EndpointSet"])] == [
        "https://tianjin.example/v1"
    ]


def test_signer_cannot_set_another_regions_endpoint(env: Env) -> None:
    with reverts("NotSigner", account=env.addr(TJ), region=BEIJING):
        env.consortium(TJ).set_endpoint(BEIJING, "https://tianjin.example")
    assert env.consortium().endpoint_of(BEIJING) == ""


# ----------------------------------------------------------------------------- event queries


def test_governance_events_can_be_filtered_by_name_and_range(env: Env) -> None:
    outcome = env.govern(BJ, [TJ], "add_region", SHANGHAI, "Shanghai", env.addr(SH))
    consortium = env.consortium(OUTSIDER)
    added = consortium.governance_events(["RegionAdded"])
    assert [e.args["region"] for e in added] == [*FOUNDERS, SHANGHAI]
    recent = consortium.governance_events(["RegionAdded"], from_block=outcome.tx.block_number)
    assert [e.args["region"] for e in recent] == [SHANGHAI]
    assert [e.args["region"] for e in consortium.region_events(SHANGHAI)] == [SHANGHAI]
    assert [e.args["account"] for e in consortium.signer_events(region=SHANGHAI)] == [env.addr(SH)]
    assert [e.name for e in consortium.signer_events(env.addr(TJ))] == ["SignerAdded"]
