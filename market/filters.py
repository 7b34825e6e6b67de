"""Composable, parameterised SQL conditions — the job QueryDSL did in the seed system.

A ``Cond`` is SQL text with ``%s`` placeholders plus its arguments; conditions combine with ``&``.
Column names come only from our code, values only travel as arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Cond:
    sql: str
    args: tuple[Any, ...] = field(default=())

    def __and__(self, other: Cond) -> Cond:
        if not self.sql:
            return other
        if not other.sql:
            return self
        return Cond(f"({self.sql}) AND ({other.sql})", self.args + other.args)

    def __or__(self, other: Cond) -> Cond:
        if not self.sql or not other.sql:
            return TRUE
        return Cond(f"({self.sql}) OR ({other.sql})", self.args + other.args)


TRUE = Cond("")


def all_of(conds: Sequence[Cond]) -> Cond:
    out = TRUE
    for c in conds:
        out = out & c
    return out


def where(cond: Cond) -> tuple[str, tuple[Any, ...]]:
    return (f"WHERE {cond.sql}", cond.args) if cond.sql else ("", ())


def eq(column: str, value: Any) -> Cond:
    return Cond(f"{column} = %s", (value,))


def ge(column: str, value: Any) -> Cond:
    return Cond(f"{column} >= %s", (value,))


def le(column: str, value: Any) -> Cond:
    return Cond(f"{column} <= %s", (value,))


def gt(column: str, value: Any) -> Cond:
    return Cond(f"{column} > %s", (value,))


def is_in(column: str, values: Sequence[Any]) -> Cond:
    if not values:
        return Cond("FALSE")
    return Cond(f"{column} IN ({', '.join(['%s'] * len(values))})", tuple(values))


def optional(make: Any, column: str, value: Any) -> Cond:
    """``make(column, value)`` when a value was given, else no condition."""
    return TRUE if value is None else make(column, value)
