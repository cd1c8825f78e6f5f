"""Unified Social Credit Code (GB 32100-2015): validation and check-character arithmetic."""

from __future__ import annotations

import re
from typing import Final

from ledger.errors import RecordError
from ledger.regions import NATIONAL_DIVISION_CODE, PROVINCES

__all__ = [
    "USCC_CHARSET",
    "USCC_LENGTH",
    "validate_uscc",
    "is_valid_uscc",
    "uscc_check_char",
    "make_uscc",
]

USCC_CHARSET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters of GB 32100-2015 (digits and upper-case letters without I, O, Z, S, V)."""

USCC_LENGTH: Final = 18

_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE: Final = {char: value for value, char in enumerate(USCC_CHARSET)}
_WELL_FORMED: Final = re.compile(f"[{USCC_CHARSET}]{{{USCC_LENGTH}}}")


# The weights are 3^i mod 31, and 34 ≡ 3 (mod 31), so Σ value_i · weight_i ≡ the base-34
# number whose digits (least significant first) are the character values. int(…, 34)
# evaluates that in C: measured ~2x faster than a Python-level weighted sum, and a bytes
# translation table ~3x faster again than str.translate, which looks up a dict per character.
_AS_BASE34_DIGITS: Final = bytes.maketrans(
    USCC_CHARSET.encode("ascii"), b"0123456789abcdefghijklmnopqrstu"
)


# The check character of a weighted sum, by the sum modulo 31.
_CHECK_CHARS: Final = "".join(USCC_CHARSET[(31 - total) % 31] for total in range(31))


def _weighted_check_char(first17: str) -> str:
    """Check character of 17 characters of ``USCC_CHARSET`` (callers have checked them)."""
    return _CHECK_CHARS[int(first17[::-1].encode("ascii").translate(_AS_BASE34_DIGITS), 34) % 31]


def _charset_error(code: str, field: str) -> RecordError:
    for position, char in enumerate(code, start=1):
        if char not in _VALUE:
            if char.isascii() and char.islower():
                return RecordError(
                    field,
                    f"lower case character {char!r} at position {position}; "
                    "USCC letters are upper case",
                )
            return RecordError(field, f"character {char!r} at position {position} is not allowed")
    raise AssertionError("no bad character found")  # pragma: no cover


def validate_uscc(code: object, *, field: str = "uscc") -> str:
    """Return ``code`` if it is a valid USCC, else raise RecordError(field, reason).

    Checks exactly what DESIGN §3 fixes: 18 characters from ``USCC_CHARSET`` (lower case is
    rejected, never upper-cased), characters 3-8 a plausible GB/T 2260 division code, and
    character 18 the GB 32100-2015 check character.
    """
    if type(code) is not str:
        raise RecordError(field, "must be a string")
    if _WELL_FORMED.fullmatch(code) is None:
        if len(code) != USCC_LENGTH:
            raise RecordError(field, f"must be {USCC_LENGTH} characters, got {len(code)}")
        raise _charset_error(code, field)
    division = code[2:8]
    if not division.isdigit() or (
        int(division) // 10000 not in PROVINCES and int(division) != NATIONAL_DIVISION_CODE
    ):
        raise RecordError(field, f"characters 3-8 {division!r} are not a division code")
    expected = _weighted_check_char(code[:17])
    if code[17] != expected:
        raise RecordError(field, f"check character is {code[17]!r}, expected {expected!r}")
    return code


# Everything validate_uscc checks before the check character, in one regex: characters 3-8
# are six digits whose first two are a province, or the national code 100000.
_VALID_FORM: Final = re.compile(
    f"[{USCC_CHARSET}]{{2}}"
    f"(?:(?:{'|'.join(f'{prefix:02d}' for prefix in sorted(PROVINCES))})[0-9]{{4}}"
    f"|{NATIONAL_DIVISION_CODE})"
    f"[{USCC_CHARSET}]{{10}}"
).fullmatch


def is_valid_uscc(code: object) -> bool:
    """Tell whether ``validate_uscc`` accepts ``code``, without building an error."""
    # _weighted_check_char inlined: this runs once per record parsed.
    return (
        type(code) is str
        and _VALID_FORM(code) is not None
        and _CHECK_CHARS[int(code[16::-1].encode().translate(_AS_BASE34_DIGITS), 34) % 31]
        == code[17]
    )


def uscc_check_char(first17: str) -> str:
    """Return the GB 32100-2015 check character for the first 17 characters of a USCC."""
    if type(first17) is not str or len(first17) != USCC_LENGTH - 1:
        raise RecordError("uscc", f"need exactly {USCC_LENGTH - 1} characters")
    if not all(char in _VALUE for char in first17):
        raise _charset_error(first17, "uscc")
    return _weighted_check_char(first17)


def make_uscc(
    division: int,
    organization_code: str,
    *,
    department: str = "9",
    category: str = "1",
) -> str:
    """Assemble a valid USCC: department, category, division code, 9-char body, check char.

    The defaults (``9``, ``1``) are those of an enterprise registered by market supervision.
    """
    first17 = f"{department}{category}{division:06d}{organization_code}"
    code = first17 + uscc_check_char(first17)
    return validate_uscc(code)
