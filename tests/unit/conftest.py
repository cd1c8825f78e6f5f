"""Fixtures for the ledger core's unit tests (pure: no chain process, no network, no database)."""

from __future__ import annotations

from collections.abc import Iterator

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


def pytest_report_header() -> str:
    """Say which implementation of the ledger core these tests run by default."""
    from ledger import _native

    return f"ledger core: {_native.describe()}"


@pytest.fixture(scope="module", params=["native", "pure"])
def core_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a module's tests on the C speedups, then again on pure Python.

    The native run is skipped where the extension is not built (no compiler or OpenSSL
    headers) or disabled by CREDIT_LEDGER_PURE; the pure run always happens. Module scope,
    so Hypothesis tests can use it (it refuses function-scoped fixtures).
    """
    from ledger import _native

    if request.param == "native" and _native.speedups is None:
        pytest.skip(_native.describe())
    active = _native.speedups
    if request.param == "pure":
        _native.speedups = None
    try:
        yield request.param
    finally:
        _native.speedups = active
