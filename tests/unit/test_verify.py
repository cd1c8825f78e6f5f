"""Tests for ledger.verify: DESIGN §5 steps 1-4 and the verdict for every way they fail."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from ledger_samples import (
    ANCHOR_ADDRESS,
    CHAIN_ID,
    HEBEI_USCC,
    SEALED_TYPES,
    FakeAnchor,
    SealedBatch,
    record_json,
    seal_batch,
)

from ledger.commitment import ZERO_HASH, LeafStatus
from ledger.receipts import BatchRef, ChainAnchor, Disclosure, Receipt
from ledger.verify import (
    AnchoredBatch,
    AnchorReader,
    CachingAnchorReader,
    RecordHead,
    Verdict,
    VerdictStatus,
    verify_disclosure,
    verify_disclosures,
    verify_receipt,
)

# Every test here runs on the C speedups and again on pure Python (see conftest.py).
pytestmark = pytest.mark.usefixtures("core_path")


def _assert_failed(verdict: Verdict, step: int, status: VerdictStatus, reason_part: str) -> None:
    assert verdict.status is status
    assert not verdict.valid
    assert verdict.failed_step == step
    assert reason_part in (verdict.reason or ""), verdict.reason


def _replace_receipt(disclosure: Disclosure, **changes: Any) -> Disclosure:
    return dataclasses.replace(
        disclosure, receipt=dataclasses.replace(disclosure.receipt, **changes)
    )


# --- passing checks ----------------------------------------------------------------------


def test_fake_anchor_satisfies_the_reader_protocol(chain: FakeAnchor) -> None:
    assert isinstance(chain, AnchorReader)
    assert isinstance(CachingAnchorReader(chain), AnchorReader)


def test_disclosure_of_anchored_current_record_is_valid(
    batch: SealedBatch, chain: FakeAnchor
) -> None:
    verdict = verify_disclosure(batch.disclosure(1), chain)
    assert verdict.status is VerdictStatus.VALID
    assert verdict.valid
    assert verdict.current is True
    assert verdict.checked_steps == (1, 2, 3, 4)
    assert verdict.failed_step is None and verdict.step_name is None
    assert verdict.record_key == batch.leaves[1].record_key.hex()
    assert verdict.leaf_hash == batch.tree.leaf_hash(1).hex()
    assert (verdict.version, verdict.leaf_status) == (1, "active")


def test_receipt_alone_runs_steps_2_to_4(batch: SealedBatch, chain: FakeAnchor) -> None:
    verdict = verify_receipt(batch.receipt(3), chain)
    assert verdict.status is VerdictStatus.VALID
    assert verdict.checked_steps == (2, 3, 4)


def test_offline_check_is_never_reported_valid(batch: SealedBatch) -> None:
    verdict = verify_disclosure(batch.disclosure(0))
    assert verdict.status is VerdictStatus.VALID_OFFLINE
    assert verdict.valid is False
    assert verdict.current is None
    assert verdict.checked_steps == (1, 2)
    assert verify_receipt(batch.receipt(0)).checked_steps == (2,)


def test_accepts_json_objects_as_well_as_models(batch: SealedBatch, chain: FakeAnchor) -> None:
    obj = json.loads(json.dumps(batch.disclosure(2).to_json()))
    assert verify_disclosure(obj, chain).status is VerdictStatus.VALID
    assert verify_receipt(obj["receipt"], chain).status is VerdictStatus.VALID


def test_verdict_to_json_is_plain_json(batch: SealedBatch, chain: FakeAnchor) -> None:
    out = verify_disclosure(batch.disclosure(0), chain).to_json()
    assert json.loads(json.dumps(out)) == out
    assert (
        out["valid"] is True and out["status"] == "valid" and out["checked_steps"] == [1, 2, 3, 4]
    )


# --- step 0: malformed input --------------------------------------------------------------


def test_malformed_receipt_gives_a_malformed_verdict_naming_the_field(batch: SealedBatch) -> None:
    obj = batch.receipt(0).to_json()
    obj["batch"]["root"] = obj["batch"]["root"].upper()
    verdict = verify_receipt(obj)
    _assert_failed(verdict, 0, VerdictStatus.MALFORMED, "lower case")
    assert verdict.field == "batch.root"
    assert verdict.step_name == "parse"
    assert verdict.checked_steps == ()


def test_disclosure_with_float_in_record_is_malformed(batch: SealedBatch) -> None:
    obj = batch.disclosure(1).to_json()
    obj["record"]["data"]["amount_fen"] = 5000.0  # type: ignore[index]
    verdict = verify_disclosure(obj)
    _assert_failed(verdict, 0, VerdictStatus.MALFORMED, "floats are not allowed")
    assert verdict.field == "record.data.amount_fen"


# --- step 1: the record ------------------------------------------------------------------


def test_tampered_record_fails_step_1_with_both_commitments(
    batch: SealedBatch, chain: FakeAnchor
) -> None:
    obj = batch.disclosure(1).to_json()
    obj["record"]["data"]["amount_fen"] = 5000  # type: ignore[index]
    verdict = verify_disclosure(obj, chain)
    _assert_failed(verdict, 1, VerdictStatus.INVALID, "commitment")
    assert verdict.step_name == "record"
    assert verdict.expected == batch.leaves[1].commitment.hex()
    assert verdict.computed is not None and verdict.computed != verdict.expected
    assert verdict.checked_steps == ()


def test_wrong_salt_fails_step_1(batch: SealedBatch) -> None:
    disclosure = dataclasses.replace(batch.disclosure(0), salt=b"\x01" * 32)
    _assert_failed(verify_disclosure(disclosure), 1, VerdictStatus.INVALID, "commitment")


def test_record_of_another_leaf_fails_step_1_on_the_record_key(batch: SealedBatch) -> None:
    disclosure = dataclasses.replace(
        batch.disclosure(0), record=batch.records[1], salt=batch.salts[1]
    )
    verdict = verify_disclosure(disclosure)
    _assert_failed(verdict, 1, VerdictStatus.INVALID, "record_key")
    assert verdict.expected == batch.leaves[0].record_key.hex()


def test_record_in_another_regions_batch_is_wrong_region() -> None:
    hebei_record = record_json("business_abnormality", region=130000, uscc=HEBEI_USCC)
    batch = seal_batch([hebei_record], region=110000)
    verdict = verify_disclosure(batch.disclosure(0))
    _assert_failed(
        verdict, 1, VerdictStatus.WRONG_REGION, "record.region 130000 is not batch.region 110000"
    )


# --- step 2: the inclusion proof ---------------------------------------------------------


def test_tampered_proof_fails_step_2_with_both_roots(batch: SealedBatch, chain: FakeAnchor) -> None:
    disclosure = batch.disclosure(2)
    proof = (bytes(32), *disclosure.receipt.proof[1:])
    verdict = verify_disclosure(_replace_receipt(disclosure, proof=proof), chain)
    _assert_failed(verdict, 2, VerdictStatus.INVALID, "does not fold to batch.root")
    assert verdict.step_name == "inclusion"
    assert verdict.expected == batch.tree.root.hex()
    assert verdict.checked_steps == (1,)


def test_proof_of_wrong_length_fails_step_2(batch: SealedBatch) -> None:
    receipt = dataclasses.replace(batch.receipt(0), proof=batch.receipt(0).proof[:-1])
    _assert_failed(verify_receipt(receipt), 2, VerdictStatus.INVALID, "proof has 1 nodes")


def test_receipt_with_altered_leaf_status_fails_step_2(batch: SealedBatch) -> None:
    receipt = batch.receipt(0)
    revoked = dataclasses.replace(receipt.leaf, status=LeafStatus.REVOKED)
    _assert_failed(
        verify_receipt(dataclasses.replace(receipt, leaf=revoked)), 2, VerdictStatus.INVALID, "fold"
    )


# --- step 3: the anchor ------------------------------------------------------------------


def test_unanchored_batch_fails_step_3(batch: SealedBatch) -> None:
    verdict = verify_disclosure(batch.disclosure(0), FakeAnchor())
    _assert_failed(verdict, 3, VerdictStatus.UNANCHORED, "is not anchored")
    assert verdict.step_name == "anchor"
    assert verdict.checked_steps == (1, 2)


def test_different_anchored_root_fails_step_3(batch: SealedBatch, chain: FakeAnchor) -> None:
    other = seal_batch([record_json("red_list")])
    chain.anchor(batch.region, batch.seq, other.tree)
    verdict = verify_disclosure(batch.disclosure(0), chain)
    _assert_failed(verdict, 3, VerdictStatus.INVALID, "anchored root differs")
    assert verdict.expected == other.tree.root.hex()
    assert verdict.computed == batch.tree.root.hex()


def test_different_anchored_size_fails_step_3(batch: SealedBatch, chain: FakeAnchor) -> None:
    anchored = chain.batches[(batch.region, batch.seq)]
    chain.batches[(batch.region, batch.seq)] = dataclasses.replace(anchored, size=anchored.size + 1)
    _assert_failed(
        verify_receipt(batch.receipt(0), chain), 3, VerdictStatus.INVALID, "has 5 leaves"
    )


def test_receipt_for_another_chain_fails_step_3(batch: SealedBatch, chain: FakeAnchor) -> None:
    chain.chain_id = CHAIN_ID + 1
    _assert_failed(
        verify_receipt(batch.receipt(0), chain), 3, VerdictStatus.INVALID, "is for chain 31337"
    )


def test_receipt_for_another_contract_fails_step_3(batch: SealedBatch, chain: FakeAnchor) -> None:
    receipt = batch.receipt(0)
    elsewhere = ChainAnchor(CHAIN_ID, "0x" + "12" * 20, receipt.chain.tx_hash, 12)
    verdict = verify_receipt(dataclasses.replace(receipt, chain=elsewhere), chain)
    _assert_failed(verdict, 3, VerdictStatus.INVALID, "names contract 0x1212")


def test_contract_address_comparison_ignores_checksum_case(
    batch: SealedBatch, chain: FakeAnchor
) -> None:
    chain.anchor_address = ANCHOR_ADDRESS.lower()
    assert verify_receipt(batch.receipt(0), chain).valid


def test_receipt_for_another_seq_fails_step_3(batch: SealedBatch, chain: FakeAnchor) -> None:
    receipt = batch.receipt(0)
    moved = BatchRef(receipt.batch.region, 7, receipt.batch.root, receipt.batch.size)
    verdict = verify_receipt(dataclasses.replace(receipt, batch=moved), chain)
    _assert_failed(verdict, 3, VerdictStatus.UNANCHORED, "batch 7 of region 110000")


# --- step 4: currency --------------------------------------------------------------------


def _supersede(
    batch: SealedBatch, chain: FakeAnchor, index: int, status: LeafStatus
) -> SealedBatch:
    """Anchor version 2 of record ``index`` in batch seq 1 and move its head."""
    later = seal_batch(
        [record_json(SEALED_TYPES[index])],
        seq=1,
        version=2,
        status=status,
        prev_leaves=[batch.tree.leaf_hash(index)],
    )
    chain.anchor(later.region, later.seq, later.tree)
    chain.move_head(later.region, later.leaves[0], later.seq)
    return later


def test_superseded_version_is_valid_but_not_current(batch: SealedBatch, chain: FakeAnchor) -> None:
    later = _supersede(batch, chain, 1, LeafStatus.ACTIVE)
    verdict = verify_disclosure(batch.disclosure(1), chain)
    assert verdict.status is VerdictStatus.SUPERSEDED
    assert verdict.valid and verdict.current is False
    assert (verdict.head_version, verdict.head_status) == (2, "active")
    assert verdict.checked_steps == (1, 2, 3, 4)
    # ...while the new version itself is current.
    assert verify_disclosure(later.disclosure(0), chain).status is VerdictStatus.VALID


def test_version_superseded_by_revocation_is_reported_revoked(
    batch: SealedBatch, chain: FakeAnchor
) -> None:
    later = _supersede(batch, chain, 2, LeafStatus.REVOKED)
    verdict = verify_receipt(batch.receipt(2), chain)
    assert verdict.status is VerdictStatus.REVOKED
    assert verdict.valid and verdict.current is False
    assert (verdict.head_version, verdict.head_status) == (2, "revoked")
    current = verify_receipt(later.receipt(0), chain)
    assert current.status is VerdictStatus.VALID and current.leaf_status == "revoked"


def test_later_version_without_a_head_on_chain_fails_step_4(
    batch: SealedBatch, chain: FakeAnchor
) -> None:
    later = seal_batch([record_json()], seq=1, version=2, prev_leaves=[batch.tree.leaf_hash(1)])
    chain.anchor(later.region, later.seq, later.tree)  # anchored without its HeadUpdate
    verdict = verify_receipt(later.receipt(0), chain)
    _assert_failed(verdict, 4, VerdictStatus.INVALID, "no head on chain for version 2")
    assert verdict.step_name == "currency"
    assert verdict.checked_steps == (2, 3)


def test_head_of_same_version_with_other_leaf_fails_step_4(
    batch: SealedBatch, chain: FakeAnchor
) -> None:
    receipt = batch.receipt(0)
    chain.heads[(batch.region, receipt.leaf.record_key)] = RecordHead(b"\x09" * 32, 0, 1, 1)
    verdict = verify_receipt(receipt, chain)
    _assert_failed(verdict, 4, VerdictStatus.INVALID, "head is version 1 with another leaf hash")
    assert verdict.expected == (b"\x09" * 32).hex()
    assert verdict.computed == batch.tree.leaf_hash(0).hex()


def test_unknown_head_status_is_named(batch: SealedBatch, chain: FakeAnchor) -> None:
    receipt = batch.receipt(0)
    chain.heads[(batch.region, receipt.leaf.record_key)] = RecordHead(b"\x09" * 32, 3, 5, 9)
    verdict = verify_receipt(receipt, chain)
    assert verdict.status is VerdictStatus.SUPERSEDED and verdict.head_status == "unknown(9)"


# --- many disclosures --------------------------------------------------------------------


def test_verify_disclosures_reads_each_batch_once(batch: SealedBatch, chain: FakeAnchor) -> None:
    verdicts = verify_disclosures([batch.disclosure(i) for i in range(4)], chain)
    assert [v.status for v in verdicts] == [VerdictStatus.VALID] * 4
    assert chain.batch_reads == 1
    assert chain.head_reads == 4


def test_verify_disclosures_mixes_valid_and_failing_items(
    batch: SealedBatch, chain: FakeAnchor
) -> None:
    tampered = batch.disclosure(0).to_json()
    tampered["record"]["record_id"] = "forged"  # type: ignore[index]
    verdicts = verify_disclosures([batch.disclosure(1), tampered, {"receipt": None}], chain)
    assert [v.status for v in verdicts] == [
        VerdictStatus.VALID,
        VerdictStatus.INVALID,
        VerdictStatus.MALFORMED,
    ]


def test_caching_reader_never_caches_unanchored_batches(batch: SealedBatch) -> None:
    chain = FakeAnchor()
    cached = CachingAnchorReader(chain)
    assert cached.batch_of(110000, 0).root == ZERO_HASH
    chain.anchor(batch.region, batch.seq, batch.tree)
    assert cached.batch_of(110000, 0).root == batch.tree.root
    assert cached.batch_of(110000, 0).root == batch.tree.root
    assert chain.batch_reads == 2
    assert (cached.chain_id, cached.anchor_address) == (CHAIN_ID, ANCHOR_ADDRESS)


def test_chain_errors_propagate(batch: SealedBatch) -> None:
    from ledger.errors import ChainError

    class BrokenChain(FakeAnchor):
        def batch_of(self, region: int, seq: int) -> AnchoredBatch:
            raise ChainError("connection refused")

    with pytest.raises(ChainError):
        verify_receipt(batch.receipt(0), BrokenChain())


def test_receipt_and_disclosure_models_are_reused_not_reparsed(batch: SealedBatch) -> None:
    disclosure = batch.disclosure(0)
    assert isinstance(disclosure.receipt, Receipt)
    assert verify_disclosure(disclosure).status is VerdictStatus.VALID_OFFLINE


def test_caching_reader_keeps_at_most_max_batches(batch: SealedBatch) -> None:
    chain = FakeAnchor()
    for seq in range(3):
        chain.anchor(batch.region, seq, batch.tree)
    cached = CachingAnchorReader(chain, max_batches=2)
    for seq in (0, 1, 2, 0):
        cached.batch_of(batch.region, seq)
    assert chain.batch_reads == 4  # seq 0 was dropped when seq 2 came in
