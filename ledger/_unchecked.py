"""Building frozen dataclasses from values already checked, without ``__init__``.

The fast paths (parse_record, commit_records, receipt parsing, verdicts) create millions of
small frozen objects from values they have just validated or computed. A frozen
dataclass's ``__init__`` assigns each field through ``object.__setattr__`` and then runs
``__post_init__``, which would check every value again. The constructors made here skip
both: the instance starts as a twin class with the same slots and no frozen
``__setattr__``, is filled with plain attribute stores (which CPython specialises), and then
becomes an instance of the real class by ``__class__`` assignment, which CPython allows
between classes of identical layout. The result is an ordinary, frozen instance: equal,
hashing, printing and pickling like one built by ``__init__``. Measured 0.45 µs against
1.1 µs for slot-descriptor calls, for a seven-field record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["unchecked_constructor", "slot_of"]

_T = TypeVar("_T")


def unchecked_constructor(cls: type[_T], *extra_slots: str) -> Callable[..., _T]:
    """A function ``(field values..., extra slot values...) -> cls`` that runs no checks.

    Arguments are positional, in field order, then ``extra_slots``. Only for values the
    caller has already checked exactly as ``__post_init__`` would.
    """
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    names += extra_slots
    assert not (set(names) & {"cls", "twin", "new", "instance"}), names
    parameters = ", ".join(names)
    namespace: dict[str, Any] = {"cls": cls, "new": object.__new__}
    # Frozen dataclasses define __setattr__ on the class itself; a frozen base in between
    # (the payloads' Payload) would make plain stores raise, so go through the slots there.
    frozen_bases = [base for base in cls.__mro__[1:] if "__setattr__" in base.__dict__]
    if frozen_bases != [object]:
        for name in names:
            namespace[f"set_{name}"] = slot_of(cls, name).__set__
        stores = [f"    set_{name}(instance, {name})" for name in names]
        source = [f"def construct({parameters}):", "    instance = new(cls)", *stores]
    else:
        namespace["twin"] = type(
            f"_Unchecked{cls.__name__}",
            cls.__bases__,
            {"__slots__": cls.__dict__["__slots__"], "__module__": cls.__module__},
        )
        stores = [f"    instance.{name} = {name}" for name in names]
        source = [
            f"def construct({parameters}):",
            "    instance = new(twin)",
            *stores,
            "    instance.__class__ = cls",
        ]
    exec("\n".join([*source, "    return instance"]), namespace)  # noqa: S102 - generated above
    construct: Callable[..., _T] = namespace["construct"]
    return construct


def slot_of(cls: type, name: str) -> Any:
    """The slot descriptor of ``name`` on ``cls`` or the first base that declares it."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    raise AttributeError(f"{cls.__name__} has no slot {name!r}")
