"""Tests for the ``ledger`` package surface (DESIGN §7) and its import boundary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ledger

DESIGN_SECTION_7 = [
    "validate_uscc",
    "record_key",
    "canonicalize",
    "commitment",
    "leaf_hash",
    "merkle_root",
    "inclusion_proof",
    "verify_inclusion",
    "consistency_proof",
    "verify_consistency",
    "verify_disclosure",
    "verify_receipt",
    "derive_salt",
    "Record",
    "Receipt",
    "Disclosure",
    "Verdict",
    "AnchorReader",
    "AnchoredBatch",
    "RecordHead",
    "RECORD_TYPES",
    "STATUS",
    "LedgerError",
    "RecordError",
    "ProofError",
    "RootMismatchError",
    "ReceiptError",
    "ChainError",
]


def test_exports_the_design_api() -> None:
    assert set(DESIGN_SECTION_7) <= set(ledger.__all__)
    for name in ledger.__all__:
        assert hasattr(ledger, name), name


def test_public_api_is_documented() -> None:
    for name in ledger.__all__:
        value = getattr(ledger, name)
        if callable(value):
            assert value.__doc__, name


def test_importing_the_core_needs_neither_web3_nor_the_chain_layer() -> None:
    probe = (
        "import sys, ledger; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('web3', 'eth_account', 'fastapi', "
        "'sqlalchemy') or m.startswith('ledger.chain')]; "
        "assert not bad, bad"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=root)
