"""Fixtures for the ledger core's unit tests (pure: no chain process, no network, no database)."""

from __future__ import annotations

import pytest
from ledger_samples import SEALED_TYPES, FakeAnchor, SealedBatch, record_json, seal_batch


@pytest.fixture
def batch() -> SealedBatch:
    """Four Beijing records of different types sealed as batch 0, version 1."""
    return seal_batch([record_json(record_type) for record_type in SEALED_TYPES])


@pytest.fixture
def chain(batch: SealedBatch) -> FakeAnchor:
    """An in-memory CreditAnchor on which ``batch`` is anchored."""
    anchor = FakeAnchor()
    anchor.anchor(batch.region, batch.seq, batch.tree)
    return anchor
