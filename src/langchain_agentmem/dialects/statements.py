"""Statements: the neutral vocabulary of every query builder.

A query builder returns statements, or a *body*: a generator that yields statements and
receives each one's result, so that it can choose the next statement from the rows of the
last. A statement's SQL is template text or a composition of
:mod:`~langchain_agentmem.dialects.compose` (identifiers composed, never f-strings). The
plan driver (:mod:`langchain_agentmem._core.plan`) runs a body in one
transaction, sync or async. Templates use the neutral syntax of
:meth:`~langchain_agentmem.dialects.Dialect.render`.

Example:
    >>> Stmt("SELECT 1 FROM {events} WHERE user_id = ?", ["u"], fetch=True).fetch
    True
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

if TYPE_CHECKING:
    from .compose import Template

__all__ = ["Batch", "Body", "Copy", "Many", "One", "Op", "Raw", "Stmt", "in_key_order"]

T = TypeVar("T")


class Stmt(NamedTuple):
    """One statement template (see :mod:`~langchain_agentmem.dialects`): its rows when
    ``fetch``, else the number of rows it changed."""

    sql: Template
    params: Sequence[Any] = ()
    fetch: bool = False


class One(NamedTuple):
    """One statement; its first row (a tuple) or ``None``."""

    sql: Template
    params: Sequence[Any] = ()


class Many(NamedTuple):
    """One statement run once per parameter row (``executemany``); ``None``."""

    sql: Template
    rows: Sequence[Sequence[Any]]


class Copy(NamedTuple):
    """A binary ``COPY ... FROM STDIN`` of ``rows`` whose columns have the Postgres
    ``types`` (only where ``dialect.supports_copy``); ``None``."""

    sql: Template
    types: Sequence[str]
    rows: Iterable[Sequence[Any]]


class Raw(NamedTuple):
    """SQL text run as it is: not a template, no parameters (schema files, DDL the
    dialect composed itself); ``None``."""

    sql: str


class Batch(NamedTuple):
    """Statements that do not depend on each other's results, sent together: on Postgres
    in one pipeline (one round trip), elsewhere one after the other; the body receives
    one result per statement (as :class:`Stmt` gives it). Use it for independent reads
    whose round trips would otherwise add up.

    Example:
        >>> len(Batch([Stmt("SELECT 1", (), True), Stmt("SELECT 2", (), True)]).statements)
        2
    """

    statements: Sequence[Stmt]


Op = Stmt | One | Many | Copy | Raw | Batch
Body = Generator[Op, Any, T]


def in_key_order(rows: Iterable[T], key: Callable[[T], Any], *, unique: bool = False) -> list[T]:
    """``rows`` sorted by their primary key (``key`` of a row), for a statement that
    writes or locks them: writers that lock rows in one order cannot deadlock each other
    (two batches locking the same keys in their callers' orders can). Write the rows in
    this order (``INSERT ... SELECT ... ORDER BY`` the key, or in the list's order).
    With ``unique``, one row per key: a later row wins over an earlier one with the same
    key (as when the rows are written one after the other).

    Example:
        >>> in_key_order([("b", 1), ("a", 2)], key=lambda r: r[0])
        [('a', 2), ('b', 1)]
        >>> in_key_order([("b", 1), ("a", 2), ("b", 3)], key=lambda r: r[0], unique=True)
        [('a', 2), ('b', 3)]
    """
    if not unique:
        return sorted(rows, key=key)
    last: dict[Any, T] = {}
    for row in rows:
        last[key(row)] = row
    return [last[k] for k in sorted(last)]
