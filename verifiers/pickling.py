"""Compact pickling for the frozen, slotted dataclasses that cross process pipes.

Requests go to the worker processes and plans (verdicts, extracted answers)
come back in bulk. The `__getstate__`/`__setstate__` that `dataclasses`
generates for slotted classes look the fields up on every call; pickling
the fields as constructor arguments takes half the time each way.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def positional_pickle(cls: type[T]) -> type[T]:
    """Class decorator (outside ``@dataclass``): pickle as ``cls(*fields)``."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if not all(f.init for f in fields):
        raise TypeError(f"{cls.__name__}: every field must be an __init__ argument")
    names = tuple(f.name for f in fields)

    def __reduce__(self: Any) -> tuple[type[T], tuple[Any, ...]]:
        return cls, tuple([getattr(self, name) for name in names])

    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    return cls
