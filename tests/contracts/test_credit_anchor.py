"""CreditAnchor: batch log, record heads, endorsements, on-chain inclusion, event queries."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from contract_helpers import (
    BEIJING,
    BJ,
    BJ2,
    HB,
    HEBEI,
    OUTSIDER,
    SPARE,
    TIANJIN,
    TJ,
    Env,
    audit_path,
    block_timestamp,
    events,
    leaf_hash,
    reverts,
    tree_root,
)

from ledger import verify
from ledger.chain import ChainClient, HeadUpdate, InclusionQuery, deploy_anchor

pytestmark = pytest.mark.chain

ROOT = hashlib.sha256(b"root").digest()
MANIFEST = hashlib.sha256(b"manifest").digest()
KEY = hashlib.sha256(b"record key").digest()
ZERO = bytes(32)


def _h(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


# ----------------------------------------------------------------------------- construction


def test_constructor_rejects_zero_consortium(clients: Sequence[ChainClient]) -> None:
    with reverts("ZeroConsortium"):
        deploy_anchor(clients[BJ], "0x" + "00" * 20)


def test_anchor_reports_its_consortium(env: Env) -> None:
    assert env.anchor(OUTSIDER).consortium_address() == env.consortium_address


# ----------------------------------------------------------------------------- anchorBatch


def test_anchor_batch_stores_batch_and_emits(env: Env) -> None:
    anchor = env.anchor(BJ)
    assert anchor.next_seq(BEIJING) == 0
    tx = anchor.anchor_batch(BEIJING, 0, ROOT, 4096, MANIFEST)
    assert events(anchor, tx) == [
        (
            "BatchAnchored",
            {
                "region": BEIJING,
                "seq": 0,
                "root": ROOT,
                "size": 4096,
                "manifestHash": MANIFEST,
                "submitter": env.addr(BJ),
            },
        )
    ]
    assert anchor.call("batchOf", BEIJING, 0) == (
        ROOT,
        4096,
        block_timestamp(env.clients[BJ], tx.block_number),
        tx.block_number,
        env.addr(BJ),
        MANIFEST,
    )
    assert anchor.next_seq(BEIJING) == 1
    assert anchor.next_seq(TIANJIN) == 0  # one sequence per region


def test_batch_of_and_head_of_implement_the_anchor_reader(env: Env) -> None:
    anchor = env.anchor(BJ)
    assert isinstance(anchor, verify.AnchorReader)
    tx = anchor.anchor_batch(BEIJING, 0, ROOT, 3, MANIFEST, [HeadUpdate(KEY, _h("v2"), 2, 2)])
    batch = anchor.batch_of(BEIJING, 0)
    assert batch == verify.AnchoredBatch(
        root=ROOT,
        size=3,
        anchored_at=block_timestamp(env.clients[BJ], tx.block_number),
        block_number=tx.block_number,
        submitter=env.addr(BJ),
        manifest_hash=MANIFEST,
    )
    assert anchor.head_of(BEIJING, KEY) == verify.RecordHead(
        leaf_hash=_h("v2"), seq=0, version=2, status=2
    )
    assert anchor.head_of(TIANJIN, KEY) == verify.RecordHead(
        leaf_hash=ZERO, seq=0, version=0, status=0
    )
    assert anchor.batch_of(BEIJING, 1).size == 0
    assert (anchor.chain_id, anchor.anchor_address) == (env.node.chain_id, env.anchor_address)


def test_only_an_active_signer_of_the_region_may_anchor(env: Env) -> None:
    with reverts("NotSigner", account=env.addr(OUTSIDER), region=BEIJING):
        env.anchor(OUTSIDER).anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST)
    with reverts("NotSigner", account=env.addr(TJ), region=BEIJING):
        env.anchor(TJ).anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST)
    with reverts("NotSigner", account=env.addr(BJ), region=999999):
        env.anchor(BJ).anchor_batch(999999, 0, ROOT, 1, MANIFEST)
    with reverts("NotSigner", account=env.addr(BJ), region=0):
        env.anchor(BJ).anchor_batch(0, 0, ROOT, 1, MANIFEST)
    assert env.anchor().next_seq(BEIJING) == 0


def test_second_signer_of_a_region_continues_its_sequence(env: Env) -> None:
    env.govern(BJ, [TJ], "add_signer", env.addr(BJ2), BEIJING)
    env.anchor(BJ).anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST)
    tx = env.anchor(BJ2).anchor_batch(BEIJING, 1, ROOT, 1, MANIFEST)
    assert events(env.anchor(), tx)[0][1]["submitter"] == env.addr(BJ2)


def test_sequence_numbers_have_no_gaps_and_no_rewrites(env: Env) -> None:
    anchor = env.anchor(BJ)
    with reverts("BatchOutOfOrder", region=BEIJING, expected=0, got=1):
        anchor.anchor_batch(BEIJING, 1, ROOT, 1, MANIFEST)
    anchor.anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST)
    with reverts("BatchOutOfOrder", region=BEIJING, expected=1, got=0):
        anchor.anchor_batch(BEIJING, 0, _h("other root"), 1, MANIFEST)
    with reverts("BatchOutOfOrder", region=BEIJING, expected=1, got=2**64 - 1):
        anchor.anchor_batch(BEIJING, 2**64 - 1, ROOT, 1, MANIFEST)
    anchor.anchor_batch(BEIJING, 1, _h("second"), 1, MANIFEST)
    assert anchor.call("batchOf", BEIJING, 0)[0] == ROOT  # not rewritten


def test_empty_batch_and_zero_root_are_rejected(env: Env) -> None:
    anchor = env.anchor(BJ)
    with reverts("EmptyBatch", region=BEIJING, seq=0):
        anchor.anchor_batch(BEIJING, 0, ROOT, 0, MANIFEST)
    with reverts("ZeroRoot", region=BEIJING, seq=0):
        anchor.anchor_batch(BEIJING, 0, ZERO, 1, MANIFEST)


def test_a_batch_may_carry_as_many_heads_as_leaves(env: Env) -> None:
    heads = [HeadUpdate(_h("a"), _h("a2"), 2, 1), HeadUpdate(_h("b"), _h("b2"), 2, 1)]
    tx = env.anchor(BJ).anchor_batch(BEIJING, 0, ROOT, 2, MANIFEST, heads)
    assert [name for name, _ in events(env.anchor(), tx)] == [
        "BatchAnchored",
        "HeadMoved",
        "HeadMoved",
    ]


def test_a_batch_cannot_carry_more_heads_than_leaves(env: Env) -> None:
    heads = [HeadUpdate(_h("a"), _h("a2"), 2, 1), HeadUpdate(_h("b"), _h("b2"), 2, 1)]
    with reverts("TooManyHeads", region=BEIJING, seq=0, heads=2, size=1):
        env.anchor(BJ).anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST, heads)


# ----------------------------------------------------------------------------- heads


def test_heads_move_with_events(env: Env) -> None:
    anchor = env.anchor(BJ)
    other = _h("other record")
    heads = [HeadUpdate(KEY, _h("k v2"), 2, 1), HeadUpdate(other, _h("o v2"), 2, 2)]
    tx = anchor.anchor_batch(BEIJING, 0, ROOT, 10, MANIFEST, heads)
    assert events(anchor, tx)[1:] == [
        (
            "HeadMoved",
            {
                "region": BEIJING,
                "recordKey": KEY,
                "leafHash": _h("k v2"),
                "seq": 0,
                "version": 2,
                "status": 1,
            },
        ),
        (
            "HeadMoved",
            {
                "region": BEIJING,
                "recordKey": other,
                "leafHash": _h("o v2"),
                "seq": 0,
                "version": 2,
                "status": 2,
            },
        ),
    ]
    assert anchor.call("headOf", BEIJING, KEY) == (_h("k v2"), 0, 2, 1)
    assert anchor.call("headOf", BEIJING, other) == (_h("o v2"), 0, 2, 2)
    anchor.anchor_batch(BEIJING, 1, ROOT, 1, MANIFEST, [HeadUpdate(KEY, _h("k v3"), 3, 2)])
    assert anchor.call("headOf", BEIJING, KEY) == (_h("k v3"), 1, 3, 2)


def test_record_never_superseded_has_head_version_zero(env: Env) -> None:
    assert env.anchor().call("headOf", BEIJING, KEY) == (ZERO, 0, 0, 0)


@pytest.mark.parametrize("status", [1, 2, 3])
def test_every_status_is_accepted(env: Env, status: int) -> None:
    anchor = env.anchor(BJ)
    anchor.anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST, [HeadUpdate(KEY, _h("v2"), 2, status)])
    assert anchor.call("headOf", BEIJING, KEY)[3] == status


@pytest.mark.parametrize("status", [0, 4, 255])
def test_invalid_status_is_rejected(env: Env, status: int) -> None:
    with reverts("InvalidStatus", region=BEIJING, recordKey=KEY, status=status):
        env.anchor(BJ).anchor_batch(
            BEIJING, 0, ROOT, 1, MANIFEST, [HeadUpdate(KEY, _h("v2"), 2, status)]
        )


def test_zero_leaf_hash_is_rejected(env: Env) -> None:
    with reverts("ZeroLeafHash", region=BEIJING, recordKey=KEY):
        env.anchor(BJ).anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST, [HeadUpdate(KEY, ZERO, 2, 1)])


@pytest.mark.parametrize("version", [0, 1])
def test_head_versions_start_at_two(env: Env, version: int) -> None:
    with reverts("VersionNotIncreasing", region=BEIJING, recordKey=KEY, current=1, got=version):
        env.anchor(BJ).anchor_batch(
            BEIJING, 0, ROOT, 1, MANIFEST, [HeadUpdate(KEY, _h("v"), version, 1)]
        )


def test_first_head_cannot_skip_version_two(env: Env) -> None:
    with reverts("VersionGap", region=BEIJING, recordKey=KEY, expected=2, got=3):
        env.anchor(BJ).anchor_batch(
            BEIJING, 0, ROOT, 1, MANIFEST, [HeadUpdate(KEY, _h("v3"), 3, 1)]
        )


@pytest.mark.parametrize("version", [1, 2])
def test_head_versions_strictly_increase(env: Env, version: int) -> None:
    anchor = env.anchor(BJ)
    anchor.anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST, [HeadUpdate(KEY, _h("v2"), 2, 1)])
    with reverts("VersionNotIncreasing", region=BEIJING, recordKey=KEY, current=2, got=version):
        anchor.anchor_batch(
            BEIJING, 1, ROOT, 1, MANIFEST, [HeadUpdate(KEY, _h("again"), version, 2)]
        )
    assert anchor.next_seq(BEIJING) == 1  # the whole batch was rejected


@pytest.mark.parametrize("version", [4, 2**32 - 1])
def test_head_versions_cannot_jump(env: Env, version: int) -> None:
    anchor = env.anchor(BJ)
    anchor.anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST, [HeadUpdate(KEY, _h("v2"), 2, 1)])
    with reverts("VersionGap", region=BEIJING, recordKey=KEY, expected=3, got=version):
        anchor.anchor_batch(
            BEIJING, 1, ROOT, 1, MANIFEST, [HeadUpdate(KEY, _h("jump"), version, 2)]
        )
    assert anchor.next_seq(BEIJING) == 1
    assert anchor.call("headOf", BEIJING, KEY) == (_h("v2"), 0, 2, 1)


def test_consecutive_versions_of_a_record_share_a_batch(env: Env) -> None:
    anchor = env.anchor(BJ)
    ordered = [HeadUpdate(KEY, _h("v2"), 2, 1), HeadUpdate(KEY, _h("v3"), 3, 2)]
    tx = anchor.anchor_batch(BEIJING, 0, ROOT, 2, MANIFEST, ordered)
    assert [(args["version"], args["leafHash"]) for _, args in events(anchor, tx)[1:]] == [
        (2, _h("v2")),
        (3, _h("v3")),
    ]
    assert anchor.call("headOf", BEIJING, KEY) == (_h("v3"), 0, 3, 2)


@pytest.mark.parametrize(
    ("versions", "error"),
    [
        ((2, 2), ("VersionNotIncreasing", {"current": 2, "got": 2})),
        ((2, 4), ("VersionGap", {"expected": 3, "got": 4})),
        ((2, 3, 2), ("VersionNotIncreasing", {"current": 3, "got": 2})),
    ],
    ids=["same_version_twice", "jump", "backwards"],
)
def test_versions_within_one_batch_must_be_consecutive(
    env: Env, versions: tuple[int, ...], error: tuple[str, dict[str, int]]
) -> None:
    anchor = env.anchor(BJ)
    heads = [HeadUpdate(KEY, _h(f"v{v} #{i}"), v, 1) for i, v in enumerate(versions)]
    with reverts(error[0], region=BEIJING, recordKey=KEY, **error[1]):
        anchor.anchor_batch(BEIJING, 0, ROOT, len(heads), MANIFEST, heads)
    assert anchor.next_seq(BEIJING) == 0
    assert anchor.call("headOf", BEIJING, KEY) == (ZERO, 0, 0, 0)


def test_heads_live_in_the_anchoring_regions_namespace(env: Env) -> None:
    beijing, tianjin = env.anchor(BJ), env.anchor(TJ)
    beijing.anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST, [HeadUpdate(KEY, _h("bj v2"), 2, 1)])
    # Tianjin uses the same record key, with a version ahead: it only touches its own head.
    ahead = [HeadUpdate(KEY, _h("tj v2"), 2, 1), HeadUpdate(KEY, _h("tj v3"), 3, 2)]
    tx = tianjin.anchor_batch(TIANJIN, 0, ROOT, 2, MANIFEST, ahead)
    assert {args["region"] for _, args in events(tianjin, tx)[1:]} == {TIANJIN}
    assert beijing.call("headOf", BEIJING, KEY) == (_h("bj v2"), 0, 2, 1)
    assert beijing.call("headOf", TIANJIN, KEY) == (_h("tj v3"), 0, 3, 2)
    # ... and cannot squat Beijing's namespace, nor block Beijing's next version.
    with reverts("NotSigner", account=env.addr(TJ), region=BEIJING):
        tianjin.anchor_batch(BEIJING, 1, ROOT, 1, MANIFEST, [HeadUpdate(KEY, _h("squat"), 3, 2)])
    beijing.anchor_batch(BEIJING, 1, ROOT, 1, MANIFEST, [HeadUpdate(KEY, _h("bj v3"), 3, 2)])
    assert beijing.call("headOf", BEIJING, KEY) == (_h("bj v3"), 1, 3, 2)


# ----------------------------------------------------------------------------- endorse


def test_other_regions_endorse_a_batch(env: Env) -> None:
    env.anchor(BJ).anchor_batch(BEIJING, 0, ROOT, 8, MANIFEST)
    tianjin = env.anchor(TJ)
    tx = tianjin.endorse(BEIJING, 0, ROOT)
    assert events(tianjin, tx) == [
        (
            "BatchEndorsed",
            {"region": BEIJING, "seq": 0, "endorserRegion": TIANJIN, "endorser": env.addr(TJ)},
        )
    ]
    env.anchor(HB).endorse(BEIJING, 0, ROOT)
    assert tianjin.endorsers_of(BEIJING, 0) == [TIANJIN, HEBEI]
    assert tianjin.endorsers_of(BEIJING, 1) == []


def test_self_endorsement_is_rejected(env: Env) -> None:
    env.govern(BJ, [TJ], "add_signer", env.addr(BJ2), BEIJING)
    env.anchor(BJ).anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST)
    with reverts("SelfEndorsement", region=BEIJING):
        env.anchor(BJ).endorse(BEIJING, 0, ROOT)
    with reverts("SelfEndorsement", region=BEIJING):
        env.anchor(BJ2).endorse(BEIJING, 0, ROOT)


def test_endorsing_a_wrong_root_or_unknown_batch_is_rejected(env: Env) -> None:
    env.anchor(BJ).anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST)
    tianjin = env.anchor(TJ)
    wrong = _h("tampered")
    with reverts("RootMismatch", region=BEIJING, seq=0, expected=ROOT, got=wrong):
        tianjin.endorse(BEIJING, 0, wrong)
    with reverts("UnknownBatch", region=BEIJING, seq=1):
        tianjin.endorse(BEIJING, 1, ROOT)
    with reverts("UnknownBatch", region=HEBEI, seq=0):
        tianjin.endorse(HEBEI, 0, ROOT)


def test_a_region_endorses_a_batch_once(env: Env) -> None:
    env.govern(TJ, [HB], "add_signer", env.addr(SPARE), TIANJIN)
    env.anchor(BJ).anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST)
    env.anchor(TJ).endorse(BEIJING, 0, ROOT)
    with reverts("AlreadyEndorsed", region=BEIJING, seq=0, endorserRegion=TIANJIN):
        env.anchor(TJ).endorse(BEIJING, 0, ROOT)
    with reverts("AlreadyEndorsed", region=BEIJING, seq=0, endorserRegion=TIANJIN):
        env.anchor(SPARE).endorse(BEIJING, 0, ROOT)


def test_outsider_cannot_endorse(env: Env) -> None:
    env.anchor(BJ).anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST)
    with reverts("NotMember", account=env.addr(OUTSIDER)):
        env.anchor(OUTSIDER).endorse(BEIJING, 0, ROOT)


def test_endorsements_by_a_region_removed_later_are_kept(env: Env) -> None:
    env.anchor(BJ).anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST)
    env.anchor(HB).endorse(BEIJING, 0, ROOT)
    env.govern(BJ, [TJ], "remove_region", HEBEI)
    assert env.anchor().endorsers_of(BEIJING, 0) == [HEBEI]
    assert [e.endorser for e in env.anchor().endorsements(BEIJING, 0)] == [env.addr(HB)]


def test_batches_of_a_removed_region_stay_endorsable(env: Env) -> None:
    env.anchor(HB).anchor_batch(HEBEI, 0, ROOT, 1, MANIFEST)
    env.govern(BJ, [TJ], "remove_region", HEBEI)
    env.anchor(TJ).endorse(HEBEI, 0, ROOT)
    assert env.anchor().endorsers_of(HEBEI, 0) == [TIANJIN]


# ----------------------------------------------------------------------------- removal


def test_removed_region_signers_lose_every_right_at_once(env: Env) -> None:
    """Anchor, propose, approve, endorse and set endpoint all stop in the removing block."""
    env.govern(HB, [TJ], "add_signer", env.addr(SPARE), HEBEI)
    env.anchor(HB).anchor_batch(HEBEI, 0, ROOT, 1, MANIFEST)
    env.anchor(BJ).anchor_batch(BEIJING, 0, ROOT, 1, MANIFEST)
    pending = env.consortium(BJ).propose_add_auditor(env.addr(OUTSIDER)).proposal_id
    env.govern(BJ, [TJ], "remove_region", HEBEI)
    for who in (HB, SPARE):
        address = env.addr(who)
        with reverts("NotSigner", account=address, region=HEBEI):
            env.anchor(who).anchor_batch(HEBEI, 1, ROOT, 1, MANIFEST)
        with reverts("NotMember", account=address):
            env.anchor(who).endorse(BEIJING, 0, ROOT)
        with reverts("NotMember", account=address):
            env.consortium(who).propose_remove_region(TIANJIN)
        with reverts("NotMember", account=address):
            env.consortium(who).approve(pending)
        with reverts("NotSigner", account=address, region=HEBEI):
            env.consortium(who).set_endpoint(HEBEI, "https://hebei.example")
    # Its history stays on chain.
    assert env.anchor().call("batchOf", HEBEI, 0)[0] == ROOT
    assert env.anchor().next_seq(HEBEI) == 1


def test_readded_region_continues_its_log_with_new_signers_only(env: Env) -> None:
    env.anchor(HB).anchor_batch(HEBEI, 0, ROOT, 1, MANIFEST)
    env.govern(BJ, [TJ], "remove_region", HEBEI)
    env.govern(BJ, [TJ], "add_region", HEBEI, "Hebei", env.addr(SPARE))
    with reverts("NotSigner", account=env.addr(HB), region=HEBEI):
        env.anchor(HB).anchor_batch(HEBEI, 1, ROOT, 1, MANIFEST)
    env.anchor(SPARE).anchor_batch(HEBEI, 1, ROOT, 1, MANIFEST)
    assert env.anchor().next_seq(HEBEI) == 2


# ----------------------------------------------------------------------------- verifyInclusion


def test_verify_inclusion_accepts_every_leaf_of_a_batch(env: Env) -> None:
    leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(7)]
    root = tree_root(leaves)
    anchor = env.anchor(BJ)
    anchor.anchor_batch(BEIJING, 0, root, len(leaves), MANIFEST)
    queries = [
        InclusionQuery(BEIJING, 0, leaf, i, audit_path(leaves, i)) for i, leaf in enumerate(leaves)
    ]
    assert anchor.verify_inclusion_many(queries) == [True] * len(leaves)
    assert anchor.verify_inclusion(BEIJING, 0, leaves[3], 3, audit_path(leaves, 3))


def test_verify_inclusion_returns_false_for_bad_input(env: Env) -> None:
    leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(5)]
    anchor = env.anchor(BJ)
    anchor.anchor_batch(BEIJING, 0, tree_root(leaves), len(leaves), MANIFEST)
    path = audit_path(leaves, 2)
    cases = [
        InclusionQuery(BEIJING, 0, leaves[2], 3, path),  # wrong index
        InclusionQuery(BEIJING, 0, leaves[3], 2, path),  # wrong leaf
        InclusionQuery(BEIJING, 0, leaves[2], 5, path),  # index == size
        InclusionQuery(BEIJING, 0, leaves[2], 2**256 - 1, path),  # huge index
        InclusionQuery(BEIJING, 0, leaves[2], 2, path[:-1]),  # too short
        InclusionQuery(BEIJING, 0, leaves[2], 2, [*path, path[0]]),  # too long
        InclusionQuery(BEIJING, 0, leaves[2], 2, []),  # no proof
        InclusionQuery(BEIJING, 1, leaves[2], 2, path),  # unknown batch
        InclusionQuery(TIANJIN, 0, leaves[2], 2, path),  # other region
    ]
    assert anchor.verify_inclusion_many(cases) == [False] * len(cases)
    assert anchor.verify_inclusion(BEIJING, 0, leaves[2], 2, path)


# ----------------------------------------------------------------------------- event queries


def test_event_queries_filter_by_region_seq_and_record_key(env: Env) -> None:
    beijing, tianjin = env.anchor(BJ), env.anchor(TJ)
    for seq in range(4):
        heads = [HeadUpdate(KEY, _h(f"bj v{seq + 2}"), seq + 2, 1)]
        beijing.anchor_batch(BEIJING, seq, _h(f"bj {seq}"), 1, MANIFEST, heads)
    tianjin.anchor_batch(TIANJIN, 0, _h("tj 0"), 1, MANIFEST, [HeadUpdate(KEY, _h("tj v2"), 2, 2)])
    tianjin.endorse(BEIJING, 1, _h("bj 1"))
    env.anchor(HB).endorse(BEIJING, 1, _h("bj 1"))
    env.anchor(HB).endorse(TIANJIN, 0, _h("tj 0"))

    assert [(b.region, b.seq) for b in beijing.batches_anchored()] == [
        (BEIJING, 0),
        (BEIJING, 1),
        (BEIJING, 2),
        (BEIJING, 3),
        (TIANJIN, 0),
    ]
    window = beijing.batches_anchored(BEIJING, from_seq=1, to_seq=2)
    assert [(b.seq, b.root, b.submitter) for b in window] == [
        (1, _h("bj 1"), env.addr(BJ)),
        (2, _h("bj 2"), env.addr(BJ)),
    ]
    assert [b.seq for b in beijing.batches_anchored(BEIJING, from_seq=2)] == [2, 3]
    assert [b.region for b in beijing.batches_anchored(TIANJIN)] == [TIANJIN]

    moved = beijing.heads_moved(BEIJING, KEY)
    assert [(m.version, m.seq, m.leaf_hash) for m in moved] == [
        (v, v - 2, _h(f"bj v{v}")) for v in range(2, 6)
    ]
    assert [(m.region, m.version) for m in beijing.heads_moved(record_key=KEY)][-1] == (TIANJIN, 2)
    assert [m.region for m in beijing.heads_moved(TIANJIN)] == [TIANJIN]

    assert [(e.region, e.seq, e.endorser_region) for e in beijing.endorsements()] == [
        (BEIJING, 1, TIANJIN),
        (BEIJING, 1, HEBEI),
        (TIANJIN, 0, HEBEI),
    ]
    assert [e.endorser for e in beijing.endorsements(BEIJING, 1)] == [env.addr(TJ), env.addr(HB)]
    assert [e.region for e in beijing.endorsements(endorser_region=HEBEI)] == [BEIJING, TIANJIN]
    last = beijing.batches_anchored()[-1].block_number
    assert [b.region for b in beijing.batches_anchored(from_block=last)] == [TIANJIN]
