"""Which implementation the ledger core runs: the optional C speedups or pure Python.

``built`` is the ``ledger._speedups`` extension module if it was compiled (``setup.py``;
it needs a C compiler and OpenSSL's headers), else None. ``speedups`` is what the core
uses: ``built``, unless the environment variable ``CREDIT_LEDGER_PURE`` is set to anything
but ``0`` at import. When it is None every caller runs its pure-Python code, which gives
byte-identical results; tests set it to None to run both paths in one process.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Final

__all__ = ["built", "speedups", "describe"]

built: ModuleType | None
try:
    from ledger import _speedups as built
except ImportError:  # not compiled here: the pure-Python path is complete on its own
    built = None

PURE_REQUESTED: Final = os.environ.get("CREDIT_LEDGER_PURE", "") not in ("", "0")

speedups: ModuleType | None = None if PURE_REQUESTED else built


def describe() -> str:
    """One line saying which path is active, for logs, tests and benchmarks."""
    if speedups is not None:
        return "C speedups (ledger._speedups, OpenSSL SHA-256)"
    if built is not None:
        return "pure Python (C speedups built but disabled)"
    return "pure Python (C speedups not built)"
