"""RFC 8785 (JCS) canonical JSON: the exact bytes a record commitment is computed over.

Records never contain floats, so the only JCS rules that matter are: integers within
±(2^53 − 1), strings as UTF-8 with the minimal JSON escapes, and object keys sorted by
their UTF-16 code units. The fast path below serialises with the standard library's C
encoder when every key is ASCII (then code-point order *is* UTF-16 order) and falls back
to the ``rfc8785`` reference implementation otherwise; a property test shows both
byte-identical to ``rfc8785.dumps``.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeAlias

import rfc8785

from ledger.errors import RecordError

if TYPE_CHECKING:
    from ledger.records import Record

__all__ = [
    "JsonValue",
    "JsonObject",
    "MAX_SAFE_INTEGER",
    "MAX_DEPTH",
    "canonicalize",
    "canonical_json",
    "encode_json_string",
]

JsonValue: TypeAlias = None | bool | int | str | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject: TypeAlias = dict[str, JsonValue]

MAX_SAFE_INTEGER: Final = 2**53 - 1
"""Largest integer JCS can carry exactly (IEEE 754 double precision); RFC 8785 §3.2.2.3."""

MAX_DEPTH: Final = 64
"""Deepest nesting accepted; also what stops a cyclic structure from recursing forever."""

encode_json_string: Final[Callable[[str], str]] = json.encoder.encode_basestring
"""JSON string literal with exactly the JCS escapes (RFC 8785 §3.2.2.2) for valid Unicode."""


def _make_encoder() -> Callable[[object], str]:
    # Reusing one C encoder is ~30 % faster than json.dumps, which builds a JSONEncoder per
    # call; markers=None (no cycle check) is safe because _fast_path_safe bounds the depth.
    def _reject(value: object) -> object:
        raise TypeError(f"not JSON: {type(value).__name__}")

    make = getattr(json.encoder, "c_make_encoder", None)
    if make is not None:
        try:
            c_encoder = make(None, _reject, encode_json_string, None, ":", ",", True, False, False)
        except TypeError:  # pragma: no cover - a future CPython changed the private signature
            pass
        else:
            return lambda value: "".join(c_encoder(value, 0))
    fallback = json.JSONEncoder(  # pragma: no cover
        ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return fallback.encode  # pragma: no cover


_encode: Final = _make_encoder()


def _fast_path_safe(value: object, depth: int) -> bool:
    """True if ``value`` holds only exact JSON builtins, safe integers and ASCII keys.

    For such values the standard library's output is already the JCS output: ASCII keys
    sort the same by code point and by UTF-16 unit, and its escapes are JCS's escapes.
    """
    if depth > MAX_DEPTH:
        return False
    kind = type(value)
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str or not key.isascii():
                return False
            item_kind = type(item)
            if item_kind is str or item is None or item_kind is bool:
                continue
            if item_kind is int:
                if -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                    continue
                return False
            if not _fast_path_safe(item, depth + 1):
                return False
        return True
    if kind is list:
        return all(_fast_path_safe(item, depth + 1) for item in value)  # type: ignore[attr-defined]
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER  # type: ignore[operator]
    return False


def _check_json(value: object, path: str, depth: int) -> None:
    """Raise RecordError naming the first member of ``value`` that JCS cannot carry."""
    field = path or "record"
    if depth > MAX_DEPTH:
        raise RecordError(field, f"nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, float):
        raise RecordError(field, "floats are not allowed; use integers (fen) or strings")
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise RecordError(field, "integer outside ±(2^53 − 1)")
    elif isinstance(value, str):
        if not _is_unicode(value):
            raise RecordError(field, "string contains a lone surrogate")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RecordError(field, f"object key {key!r} is not a string")
            member = f"{path}.{key}" if path else key
            if not _is_unicode(key):
                raise RecordError(member, "object key contains a lone surrogate")
            _check_json(item, member, depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json(item, f"{field}[{index}]", depth + 1)
    else:
        raise RecordError(field, f"{type(value).__name__} is not a JSON type")


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def canonical_json(value: object, *, path: str = "") -> bytes:
    """Serialise any JSON value to its RFC 8785 canonical UTF-8 bytes.

    Raises RecordError(field, reason) for floats, integers beyond ±(2^53 − 1), non-string
    object keys, lone surrogates, non-JSON types and nesting deeper than ``MAX_DEPTH``;
    ``path`` prefixes the field named in the error.
    """
    if _fast_path_safe(value, 0):
        try:
            return _encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: the strict walk below names the field
    _check_json(value, path, 0)
    try:
        return rfc8785.dumps(value)  # type: ignore[arg-type]
    except rfc8785.CanonicalizationError as error:  # pragma: no cover - _check_json is stricter
        raise RecordError(path or "record", str(error)) from error


def canonicalize(record: JsonObject | Record) -> bytes:
    """Return ``canonical(record)`` of DESIGN §3: the RFC 8785 serialisation, UTF-8.

    ``record`` is a record's JSON object or a parsed ``Record``. Only JSON well-formedness is
    checked here (no floats, safe integers, valid Unicode); use ``parse_record`` to check
    the record schema.
    """
    if isinstance(record, dict):
        return canonical_json(record)
    canonical_bytes = getattr(record, "canonical_bytes", None)
    if canonical_bytes is None:
        raise RecordError(
            "record", f"must be a JSON object or a Record, not {type(record).__name__}"
        )
    result: bytes = canonical_bytes()
    return result
