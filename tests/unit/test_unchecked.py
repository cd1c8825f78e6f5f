"""Tests for ledger._unchecked: frozen dataclasses built from checked values, skipping __init__."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import pickle

import pytest
from ledger_samples import record_json

from ledger._unchecked import unchecked_constructor
from ledger.commitment import ZERO_HASH, Leaf, LeafStatus
from ledger.records import AdministrativePenalty, Record, parse_record

KEY = hashlib.sha256(b"key").digest()


def test_builds_an_ordinary_frozen_instance_equal_to_init() -> None:
    built = unchecked_constructor(Leaf)(KEY, 1, LeafStatus.ACTIVE, ZERO_HASH, KEY)
    expected = Leaf(KEY, 1, LeafStatus.ACTIVE, ZERO_HASH, KEY)
    assert type(built) is Leaf
    assert built == expected and hash(built) == hash(expected) and repr(built) == repr(expected)
    assert pickle.loads(pickle.dumps(built)) == expected
    assert copy.deepcopy(built) == expected
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.version = 2  # type: ignore[misc]


def test_skips_post_init_so_is_only_for_checked_values() -> None:
    built = unchecked_constructor(Leaf)(KEY, 0, LeafStatus.ACTIVE, ZERO_HASH, KEY)
    assert built.version == 0  # Leaf(...) would refuse version 0


def test_fills_extra_slots_after_the_fields() -> None:
    record = parse_record(record_json())
    values = [getattr(record, f.name) for f in dataclasses.fields(record)]
    built = unchecked_constructor(Record, "_canonical")(*values, b"{}")
    assert built == record and type(built) is Record
    assert built.canonical_bytes() == b"{}"  # whatever it was given: checked values only


def test_builds_subclasses_of_a_frozen_base_through_their_slots() -> None:
    penalty = parse_record(record_json()).data
    assert isinstance(penalty, AdministrativePenalty)
    values = [getattr(penalty, f.name) for f in dataclasses.fields(penalty)]
    built = unchecked_constructor(AdministrativePenalty)(*values)
    assert built == penalty and type(built) is AdministrativePenalty
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.amount_fen = 1  # type: ignore[misc]
