"""The C receipt, disclosure and verification fast paths against the pure-Python path.

``ledger._speedups`` parses receipts and disclosures (from JSON objects and straight from
JSON text) and runs verification steps 1-2; it returns None at the first doubt and the
Python path decides. Each test here computes everything a caller can observe twice in one
process, once with the extension and once with ``ledger._native.speedups`` set to None,
and compares: parsed objects, errors (type, field, reason), verdicts (every field) and the
chain reads made. The module is skipped where the extension is not built.
"""

from __future__ import annotations

import codecs
import copy
import dataclasses
import json
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_samples import (
    ANCHOR_ADDRESS,
    HEBEI_USCC,
    PROPERTY,
    RECORD_TYPE_NAMES,
    FakeAnchor,
    SealedBatch,
    record_json,
    record_jsons,
    seal_batch,
)
from test_native import _pure
from test_receipts import _damaged_disclosures
from test_records import _mutated_records

from ledger import _native
from ledger.commitment import LeafStatus
from ledger.errors import ReceiptError, RecordError
from ledger.receipts import Disclosure, Receipt
from ledger.verify import (
    verify_disclosure,
    verify_disclosure_json,
    verify_disclosures_json,
    verify_receipt,
)

native = _native.speedups
pytestmark = pytest.mark.skipif(native is None, reason=_native.describe())


def _parse_outcome(parse: Callable[[Any], object], obj: Any) -> object:
    try:
        return parse(obj)
    except (ReceiptError, RecordError) as error:
        return type(error).__name__, error.field, error.reason


def _fresh_chain(batch: SealedBatch, *, superseded: bool = False) -> FakeAnchor:
    chain = FakeAnchor()
    chain.anchor(batch.region, batch.seq, batch.tree)
    if superseded:  # version 2 of leaf 0 is the head: leaf 0 reads superseded
        later = seal_batch(
            [batch.records[0].to_json()],
            region=batch.region,
            seq=batch.seq + 1,
            version=2,
            status=LeafStatus.REVOKED,
            prev_leaves=[batch.tree.leaf_hash(0)],
        )
        chain.anchor(later.region, later.seq, later.tree)
        chain.move_head(later.region, later.leaves[0], later.seq)
    return chain


def _observe(obj: Any, batch: SealedBatch) -> list[object]:
    """Everything a caller sees of ``obj`` as a disclosure and its receipt, chain reads too."""
    chain = _fresh_chain(batch, superseded=True)
    receipt = obj.get("receipt") if type(obj) is dict else obj
    seen: list[object] = [
        _parse_outcome(Disclosure.from_json, obj),
        _parse_outcome(Receipt.from_json, receipt),
        verify_disclosure(obj),
        verify_disclosure(obj, chain),
        verify_receipt(receipt),
        verify_receipt(receipt, chain),
    ]
    verdicts = list(seen[2:])
    seen += [verdict.to_json() for verdict in verdicts]  # type: ignore[attr-defined]
    return [*seen, chain.batch_reads, chain.head_reads]


def _same_on_both_paths(obj: Any, batch: SealedBatch) -> None:
    native_seen = _observe(obj, batch)
    pure_seen = _pure(_observe, obj, batch)
    assert native_seen == pure_seen
    # JSON objects round-trip through text: the text path must see the same again.
    try:
        texts = [json.dumps(obj, ensure_ascii=ensure_ascii) for ensure_ascii in (True, False)]
    except (TypeError, ValueError, RecursionError):
        return  # not JSON (bytes, tuples, a NaN...): nothing to write
    for text in texts:
        _same_text_on_both_paths(text, batch)
        _same_text_on_both_paths(text.encode("utf-8", "surrogatepass"), batch)


def _observe_text(text: Any, batch: SealedBatch) -> list[object]:
    chain = _fresh_chain(batch, superseded=True)
    seen: list[object] = [
        _parse_outcome(Disclosure.from_json_text, text),
        verify_disclosure_json(text),
        verify_disclosure_json(text, chain),
    ]
    return [*seen, chain.batch_reads, chain.head_reads]


def _loaded_then_verified(text: Any, batch: SealedBatch) -> list[object]:
    """What ``verify_disclosure(json.loads(text))`` gives: the definition of the text path."""
    chain = _fresh_chain(batch, superseded=True)
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as error:
        reason = f"not JSON: {error}"
        return [("ReceiptError", "disclosure", reason), reason, reason, 0, 0]
    return [
        _parse_outcome(Disclosure.from_json, obj),
        verify_disclosure(obj),
        verify_disclosure(obj, chain),
        chain.batch_reads,
        chain.head_reads,
    ]


def _same_text_on_both_paths(text: Any, batch: SealedBatch) -> None:
    native_seen = _observe_text(text, batch)
    assert native_seen == _pure(_observe_text, text, batch)
    expected = _pure(_loaded_then_verified, text, batch)
    if type(expected[1]) is str:  # not JSON: a malformed verdict naming the document
        for verdict in native_seen[1:3]:
            assert verdict.status.value == "malformed"  # type: ignore[attr-defined]
            assert (verdict.field, verdict.reason) == ("disclosure", expected[1])  # type: ignore[attr-defined]
        assert native_seen[0] == expected[0]
    else:
        assert native_seen == expected


@pytest.fixture(scope="module")
def batch() -> SealedBatch:
    return seal_batch([record_json(t) for t in RECORD_TYPE_NAMES])


# --- valid input ------------------------------------------------------------------------------


@PROPERTY
@given(st.lists(record_jsons(), min_size=1, max_size=9), st.data())
def test_valid_disclosures_verify_alike_on_both_paths(
    objs: list[dict[str, Any]], data: st.DataObject
) -> None:
    version = data.draw(st.sampled_from([1, 1, 2]))
    index = data.draw(st.integers(0, len(objs) - 1))
    own_region = objs[index]["region"]
    region = data.draw(st.sampled_from([own_region, own_region, 110000]))  # or wrong_region
    sealed = seal_batch(
        objs,
        region=region,
        seq=data.draw(st.integers(0, 2**53 - 2)),
        version=version,
        status=data.draw(st.sampled_from(list(LeafStatus))),
        prev_leaves=None if version == 1 else [bytes([7]) * 32] * len(objs),
    )
    disclosure = sealed.disclosure(index)
    obj = disclosure.to_json()
    assert native is not None  # the C path takes every valid disclosure, not the fallback
    assert native.parse_disclosure(obj) == disclosure
    assert native.parse_disclosure_json(json.dumps(obj).encode()) == disclosure
    assert native.parse_disclosure_json(json.dumps(obj, ensure_ascii=False)) == disclosure
    passed = native.check_offline(disclosure)
    assert passed == (sealed.tree.leaf_hash(index) if region == own_region else None)
    _same_on_both_paths(obj, sealed)
    # models too: verify_disclosure/verify_receipt take them without parsing
    assert _observe(disclosure, sealed) == _pure(_observe, disclosure, sealed)


def test_every_disclosure_of_a_batch_is_read_as_the_python_parse_reads_it(
    batch: SealedBatch,
) -> None:
    assert native is not None
    for index in range(batch.tree.size):
        expected = batch.disclosure(index)
        obj = expected.to_json()
        for parsed in (
            native.parse_disclosure(obj),
            native.parse_disclosure_json(json.dumps(obj)),
            native.parse_disclosure_json(json.dumps(obj, ensure_ascii=False)),
            native.parse_disclosure_json(json.dumps(obj, ensure_ascii=False).encode()),
            native.parse_disclosure_json(json.dumps(obj, indent=2).encode()),
        ):
            assert parsed == expected
            assert repr(parsed) == repr(expected)
            assert type(parsed.receipt.leaf) is type(expected.receipt.leaf)
            assert parsed.record.canonical_bytes() == expected.record.canonical_bytes()
        receipt = native.parse_receipt(obj["receipt"])
        assert receipt == expected.receipt and type(receipt.proof) is tuple
        assert native.check_offline(expected) == batch.tree.leaf_hash(index)
        assert native.check_offline(expected.receipt) == batch.tree.leaf_hash(index)


def test_a_record_built_in_code_is_checked_from_its_canonical_bytes(batch: SealedBatch) -> None:
    assert native is not None
    disclosure = batch.disclosure(2)
    rebuilt = dataclasses.replace(disclosure, record=copy.copy(disclosure.record))
    assert native.check_offline(rebuilt) == batch.tree.leaf_hash(2)


# --- tampered and malformed JSON objects --------------------------------------------------------

_HEX = "ab" * 32


def _flip(hex_text: str) -> str:
    """The same hex with its last digit changed."""
    return hex_text[:-1] + ("0" if hex_text[-1] != "0" else "1")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("receipt.leaf.record_key", "flip"),
        ("receipt.leaf.commitment", "flip"),
        ("receipt.leaf.prev_leaf", "flip"),
        ("receipt.batch.root", "flip"),
        ("receipt.chain.tx_hash", "flip"),
        ("receipt.proof.0", "flip"),
        ("salt", "flip"),
        ("receipt.leaf.index", 0),
        ("receipt.leaf.index", 8),
        ("receipt.leaf.index", 9),
        ("receipt.leaf.index", 2**53),
        ("receipt.leaf.index", 2**64 + 3),
        ("receipt.leaf.index", -1),
        ("receipt.leaf.index", True),
        ("receipt.leaf.index", 1.0),
        ("receipt.batch.size", 16),
        ("receipt.batch.size", 5),
        ("receipt.batch.size", 2**32),
        ("receipt.batch.seq", 1),
        ("receipt.batch.seq", 2**53),
        ("receipt.batch.region", 120000),
        ("receipt.batch.region", 990000),
        ("receipt.batch.region", 99999),
        ("receipt.leaf.version", 2),
        ("receipt.leaf.version", 2**32),
        ("receipt.leaf.status", "revoked"),
        ("receipt.leaf.status", "Active"),
        ("receipt.leaf.status", 1),
        ("receipt.chain.chain_id", 0),
        ("receipt.chain.chain_id", 2**53),
        ("receipt.chain.anchor_contract", ANCHOR_ADDRESS),
        ("receipt.chain.anchor_contract", ANCHOR_ADDRESS.upper().replace("0X", "0x")),
        ("receipt.chain.anchor_contract", ANCHOR_ADDRESS.lower()),
        ("receipt.chain.anchor_contract", ANCHOR_ADDRESS[:-1] + "b"),
        ("receipt.chain.anchor_contract", "0x" + "12" * 20),
        ("receipt.chain.anchor_contract", "0x" + "g" * 40),
        ("receipt.chain.tx_hash", "0X" + _HEX),
        ("receipt.chain.tx_hash", _HEX),
        ("receipt.batch.root", _HEX.upper()),
        ("receipt.batch.root", _HEX[:-1] + "é"),
        ("receipt.batch.root", _HEX + "a"),
        ("receipt.proof", []),
        ("receipt.proof", [_HEX] * 33),
        ("receipt.proof", ["0" * 64] * 4),
        ("receipt.proof", "extend"),
        ("receipt.proof", "drop"),
        ("receipt.proof", ()),
        ("receipt.format", "credit-ledger/receipt/v2"),
        ("receipt.hash_alg", "SHA256"),
        ("receipt.extra", 1),
        ("receipt.leaf.extra", None),
        ("receipt.chain", "drop"),
        ("salt", "00" * 32),
        ("salt", _HEX.upper()),
        ("salt", None),
        ("salt", "drop"),
        ("record", "drop"),
        ("record", []),
        ("record.record_id", "forged"),
        ("record.region", 120000),
        ("record.region", 130000),
        ("record.uscc", HEBEI_USCC),
        ("record.issued_at", "2024-02-30"),
        ("record.issued_by", "北京市\ud800海淀区"),
        ("record.data", {}),
        ("note", "x"),
    ],
)
def test_tampered_and_malformed_disclosures_give_the_same_verdicts(
    batch: SealedBatch, path: str, value: Any
) -> None:
    obj = batch.disclosure(3).to_json()
    *parents, last = path.split(".")
    parent: Any = obj
    for part in parents:
        parent = parent[part]
    if type(parent) is list:
        parent[int(last)] = _flip(parent[int(last)])
    elif value == "flip":
        parent[last] = _flip(parent[last])
    elif value == "drop" and last == "proof":
        parent[last] = parent[last][:-1]
    elif value == "extend":
        parent[last] = [*parent[last], parent[last][0]]
    elif value == "drop":
        del parent[last]
    else:
        parent[last] = value
    _same_on_both_paths(obj, batch)


_HEX_MEMBERS: list[tuple[str, ...]] = [
    ("receipt", "chain", "tx_hash"),
    ("receipt", "chain", "anchor_contract"),
    ("receipt", "batch", "root"),
    ("receipt", "leaf", "record_key"),
    ("receipt", "leaf", "prev_leaf"),
    ("receipt", "leaf", "commitment"),
    ("receipt", "proof", "0"),
    ("salt",),
]


@pytest.mark.parametrize("member", _HEX_MEMBERS, ids=".".join)
def test_a_non_digit_in_any_nibble_of_a_hex_member_goes_to_the_python_path(
    batch: SealedBatch, member: tuple[str, ...]
) -> None:
    # The C hex decoder (lower_hex) once shifted a non-digit's table value, -1, left: undefined
    # behaviour in C. Every neighbour of the digit ranges, as the high and the low nibble of
    # a byte, must still be refused by the C paths and named by the Python parse.
    assert native is not None
    obj = batch.disclosure(3).to_json()
    *parents, last = member
    parent: Any = obj
    for part in parents:
        parent = parent[part]
    key: Any = int(last) if type(parent) is list else last
    digits: str = parent[key]
    start = 2 if digits.startswith("0x") else 0
    for position in (start, start + 1, len(digits) - 2, len(digits) - 1):
        for char in "/:@G`gA\x7f é":
            parent[key] = digits[:position] + char + digits[position + 1 :]
            assert native.parse_disclosure(obj) is None
            if member[0] == "receipt":
                assert native.parse_receipt(obj["receipt"]) is None
            for text in (json.dumps(obj), json.dumps(obj, ensure_ascii=False)):
                assert native.parse_disclosure_json(text) is None
                assert native.parse_disclosure_json(text.encode()) is None
            outcome = _pure(_parse_outcome, Disclosure.from_json, obj)
            assert type(outcome) is tuple and outcome[0] == "ReceiptError"
    parent[key] = digits
    _same_on_both_paths(obj, batch)


def test_non_objects_give_the_same_verdicts(batch: SealedBatch) -> None:
    for obj in (None, 1, "x", [], (), b"{}", {}, {"receipt": None}, batch.disclosure(0).receipt):
        _same_on_both_paths(obj, batch)


@settings(PROPERTY, max_examples=400)
@given(_damaged_disclosures())
def test_damaged_receipts_give_the_same_verdicts(obj: dict[str, Any]) -> None:
    sealed = seal_batch(
        [record_json(t) for t in ("registration", "administrative_penalty", "red_list")]
    )
    _same_on_both_paths(obj, sealed)


@settings(PROPERTY, max_examples=300)
@given(_mutated_records(), st.booleans())
def test_damaged_records_give_the_same_verdicts(record: dict[str, Any], sealed_as_is: bool) -> None:
    # Sealed as is when it still parses (a valid commitment to the changed record), else
    # put in place of a sealed record (a malformed disclosure, or a commitment mismatch).
    sealed = seal_batch([record_json("registration"), record_json("red_list")])
    obj = sealed.disclosure(1).to_json()
    if sealed_as_is:
        try:
            sealed = seal_batch([record_json("registration"), record])
            obj = sealed.disclosure(1).to_json()
        except (RecordError, ReceiptError):
            obj["record"] = record
    else:
        obj["record"] = record
    _same_on_both_paths(obj, sealed)


class _Str(str):
    pass


class _Int(int):
    pass


def _odd_type(value: Any) -> Any:
    """The same value as a type JSON never gives: a str or int subclass, a tuple."""
    if type(value) is str:
        return _Str(value)
    if type(value) is int:
        return _Int(value)
    if type(value) is list:
        return tuple(value)
    return copy.deepcopy(value)


def test_subclasses_of_members_and_names_go_to_the_python_path(batch: SealedBatch) -> None:
    good = batch.disclosure(1).to_json()
    variants: list[Any] = []
    for part in ("", "chain", "batch", "leaf"):
        for key in list(good["receipt"][part] if part else good["receipt"]):
            for change in ("name", "value"):
                obj = copy.deepcopy(good)
                holder = obj["receipt"][part] if part else obj["receipt"]
                if change == "name":
                    holder[_Str(key)] = holder.pop(key)
                else:
                    holder[key] = _odd_type(holder[key])
                variants.append(obj)
    variants.append({**good, "salt": _Str(good["salt"])})
    variants.append(
        {_Str("receipt"): good["receipt"], "record": good["record"], "salt": good["salt"]}
    )
    for obj in variants:
        _same_on_both_paths(obj, batch)


# --- JSON text --------------------------------------------------------------------------------

_SNIPPETS = [
    " ", "\n", "\t", "\r", ",", ":", "{", "}", "[", "]", '"', "\\", "\\u0061", "\\ud800",
    "\\udc00", "\\ud83d\\ude00", "\\u00e9", "\\/", "\\x", "0", "-0", "01", "1.0", "1e3", "-",
    "NaN", "Infinity", "-Infinity", "true", "false", "null", "\x00", "\x01", "\x7f", "é",
    "\u2028", "\U0001f600", "99999999999999999999", '"a":1,', '"salt":"00",', "\ufeff",
]  # fmt: skip


@st.composite
def _damaged_texts(draw: st.DrawFn) -> tuple[bytes, SealedBatch]:
    sealed = seal_batch([record_json(t) for t in ("registration", "administrative_penalty")])
    obj = sealed.disclosure(draw(st.integers(0, 1))).to_json()
    text = json.dumps(
        obj, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1]))
    )
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(text)))
        snippet = draw(st.sampled_from(_SNIPPETS))
        if draw(st.booleans()):
            text = text[:position] + snippet + text[position:]
        else:
            text = text[:position] + snippet + text[position + len(snippet) :]
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:  # a byte that is no UTF-8 at all
        position = draw(st.integers(0, len(data)))
        data = data[:position] + bytes([draw(st.integers(0x80, 0xFF))]) + data[position:]
    return data, sealed


@settings(PROPERTY, max_examples=600)
@given(_damaged_texts())
def test_damaged_json_text_gives_the_same_verdicts_as_json_loads(
    case: tuple[bytes, SealedBatch],
) -> None:
    data, sealed = case
    _same_text_on_both_paths(data, sealed)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    _same_text_on_both_paths(text, sealed)


def _respelled(batch: SealedBatch) -> list[Any]:
    """One valid disclosure written in every way json.loads reads alike, and some it does not."""
    obj = batch.disclosure(4).to_json()
    text = json.dumps(obj, ensure_ascii=False)
    compact = json.dumps(obj, separators=(",", ":"))
    seq = obj["receipt"]["batch"]["seq"]
    return [
        text,
        compact,
        json.dumps(obj, indent=4),
        " \n\t\r" + text + " \n\t\r",
        text.replace('"receipt"', '"\\u0072eceipt"'),
        text.replace('"format"', '"form\\u0061t"'),
        text.replace('"sha256"', '"sha\\u0032\\u0035\\u0036"'),
        text.replace('"active"', '"\\u0061ctive"'),
        text.replace('"data"', '"d\\u0061ta"'),
        text.replace("\\/", "/"),
        text.replace('"salt"', '"salt": "00", "salt"'),
        text.replace('"salt"', '"receipt": 1, "salt"'),
        text.replace('"issued_at"', '"issued_at": 1, "issued_at"'),
        text.replace('"issued_at"', '"issued_at": "2024-03-05", "x": 1, "issued_at"'),
        text.replace(f'"seq": {seq}', '"seq": -0') if seq == 0 else text,
        text.replace(f'"seq": {seq}', f'"seq": {seq}.0'),
        text.replace(f'"seq": {seq}', f'"seq": {seq}e0'),
        text.replace(f'"seq": {seq}', '"seq": 00'),
        text.replace(f'"seq": {seq}', '"seq": NaN'),
        text.replace(f'"seq": {seq}', '"seq": 1' + "0" * 30),
        text.replace(f'"seq": {seq}', '"seq": ' + "9" * 5000),
        text.replace('"region": 110000', '"region": 110000.0'),
        text.replace('"region": 110000,', '"region": 110000, "region": 120000,'),
        text.replace("海淀区", "\\u6d77\\u6dc0\\u533a"),
        text.replace("海淀区", "\\ud83d\\ude00"),
        text.replace("海淀区", "\\ud83d"),
        text.replace("海淀区", "\\ude00x"),
        text.replace("海淀区", "\\u0000"),
        text.replace("海淀区", "\x00"),
        text.replace("海淀区", "\t"),
        text + "x",
        text + "\n",
        text[:-1],
        text[:-1] + ', "salt": ' + json.dumps(obj["salt"]) + "}",
        "\ufeff" + text,
        text.encode(),
        text.encode("utf-8-sig"),
        text.encode("utf-16"),
        text.encode("utf-16-le"),
        text.encode("utf-32"),
        bytearray(text.encode()),
        codecs.encode(text, "utf-8").replace("海".encode(), b"\xed\xa0\x80"),
        text.encode().replace("海".encode(), b"\xe6\xb5"),
        "[" * 100 + "]" * 100,
        '{"receipt": ' + "[" * 3000 + "]" * 3000 + "}",  # json.loads: RecursionError
        '{"receipt": {}, "record": ' + '{"a":' * 70 + "1" + "}" * 70 + ', "salt": "00"}',
        "",
        "{}",
        "null",
        "1",
    ]


def test_json_text_spelled_any_way_gives_what_json_loads_gives(batch: SealedBatch) -> None:
    for text in _respelled(batch):
        _same_text_on_both_paths(text, batch)
        if type(text) is str:
            _same_text_on_both_paths(text.encode("utf-8", "surrogatepass"), batch)


def test_text_that_is_not_json_is_a_malformed_disclosure(batch: SealedBatch) -> None:
    verdict = verify_disclosure_json(b'{"receipt": ')
    assert (verdict.status.value, verdict.failed_step, verdict.field) == (
        "malformed",
        0,
        "disclosure",
    )
    assert verdict.reason is not None and verdict.reason.startswith("not JSON: Expecting value")
    with pytest.raises(ReceiptError) as caught:
        Disclosure.from_json_text(b"\xff")
    assert caught.value.field == "disclosure"
    with pytest.raises(TypeError):
        verify_disclosure_json(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _pure(verify_disclosure_json, 123)


def test_verify_disclosures_json_reads_each_batch_once(batch: SealedBatch) -> None:
    chain = _fresh_chain(batch)
    lines = [json.dumps(batch.disclosure(i).to_json()).encode() for i in range(batch.tree.size)]
    verdicts = verify_disclosures_json([*lines, b"{"], chain)
    assert [v.status.value for v in verdicts] == ["valid"] * batch.tree.size + ["malformed"]
    assert chain.batch_reads == 1 and chain.head_reads == batch.tree.size


# --- the extension's own guards -----------------------------------------------------------------


def test_check_offline_answers_none_for_anything_but_sound_models(batch: SealedBatch) -> None:
    assert native is not None
    disclosure = batch.disclosure(1)
    receipt = disclosure.receipt

    class SubReceipt(Receipt):
        pass

    odd: list[Any] = [
        None,
        1,
        disclosure.to_json(),
        SubReceipt(receipt.chain, receipt.batch, receipt.leaf_index, receipt.leaf, receipt.proof),
        dataclasses.replace(disclosure, salt=bytes(32)),
        dataclasses.replace(receipt, proof=receipt.proof[:-1]),
        dataclasses.replace(receipt, proof=(*receipt.proof, receipt.proof[0])),
        dataclasses.replace(receipt, leaf_index=0),
    ]
    for item in odd:
        assert native.check_offline(item) is None
    broken = Receipt.__new__(Receipt)  # slots never set: an AttributeError inside, cleared
    assert native.check_offline(broken) is None
    forged = dataclasses.replace(receipt)
    object.__setattr__(forged, "proof", [*receipt.proof])  # a list where a tuple belongs
    assert native.check_offline(forged) is None
    object.__setattr__(forged, "proof", (*receipt.proof[:-1], b"short"))
    assert native.check_offline(forged) is None


def test_parsers_refuse_wrong_types_quietly(batch: SealedBatch) -> None:
    assert native is not None
    for value in (None, 1, [], "x", b"x", bytearray(b"{}"), memoryview(b"{}"), {1: 2}):
        assert native.parse_receipt(value) is None
        assert native.parse_disclosure(value) is None
    for value in (None, 1, [], {}, bytearray(b"{}"), memoryview(b"{}"), "\ud800", _Str("{}")):
        assert native.parse_disclosure_json(value) is None
    with pytest.raises(RuntimeError):
        native.configure_receipts()  # configured once, at import


def test_receipt_calls_leak_neither_references_nor_memory(batch: SealedBatch) -> None:
    assert native is not None
    disclosure = batch.disclosure(1)
    obj = disclosure.to_json()
    text = json.dumps(obj).encode()
    unicode_text = json.dumps(obj, ensure_ascii=False)
    tampered = copy.deepcopy(obj)
    tampered["record"]["data"]["extra"] = 1
    bad_text = text[:-2]
    items = [disclosure, obj, text, unicode_text, tampered, bad_text]
    counts = [sys.getrefcount(item) for item in items]

    def calls() -> None:
        native.parse_receipt(obj["receipt"])
        native.parse_disclosure(obj)
        native.parse_disclosure(tampered)
        native.parse_disclosure_json(text)
        native.parse_disclosure_json(unicode_text)
        native.parse_disclosure_json(bad_text)
        native.check_offline(disclosure)
        native.check_offline(disclosure.receipt)

    calls()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            calls()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 20_000, grown
    assert [sys.getrefcount(item) for item in items] == counts
