"""Hybrid mode's per-parent marks (``sync_marks``, a cache's own table): an append to a
sequence table above its parent's mark queues no outbox row until the sync queues it.

Example:
    >>> [t.name for t, _, _ in marked_tables()]
    ['events']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..dialects import SQL, Body, Composable, Ident, One, Stmt
from ..dialects import Table as TableRef
from .catalog import TABLES, Table

__all__ = ["above_marks", "marked_tables", "queued", "raise_marks"]

_AND = SQL(" AND ")
_COMMA = SQL(", ")


def marked_tables(names: Iterable[str] | None = None) -> list[tuple[Table, Table, str]]:
    """The cache's sequence tables (of ``names``, else all), each with its parent table
    and the parent's counter column."""
    wanted = None if names is None else set(names)
    return [
        (t, TABLES[t.seq_counter[0]], t.seq_counter[1])
        for t in TABLES.values()
        if t.seq_counter is not None
        and "sqlite" in t.dialects
        and (wanted is None or t.name in wanted)
    ]


def _parents_above(
    parent: Table, counter: str, user_id: str | None
) -> tuple[Composable, Composable, list[Any]]:
    """The join of parent ``p`` to its mark ``m``, the condition "the counter is above the
    mark" (of ``user_id``, or every user), and its parameters."""
    on_mark = _AND.join(SQL("m.{0} = p.{0}").format(Ident(c)) for c in parent.primary_key)
    where: Composable = SQL("p.{} > coalesce(m.seq, 0)").format(Ident(counter))
    params: list[Any] = []
    if user_id is not None:
        where += SQL(" AND p.user_id = ?")
        params.append(user_id)
    return on_mark, where, params


def above_marks(t: Table, user_id: str | None) -> tuple[Composable, list[Any]]:
    """``FROM ... WHERE`` of the rows of sequence table ``t`` (alias ``e``; parent ``p``,
    mark ``m``) above their parent's mark, of ``user_id`` or every user; its parameters."""
    assert t.seq_counter is not None, f"{t.name} has no sequence"
    parent, counter = TABLES[t.seq_counter[0]], t.seq_counter[1]
    on_mark, where, params = _parents_above(parent, counter, user_id)
    # CROSS JOIN keeps the parents outermost (SQLite's planner otherwise scans every
    # row of the sequence table): each parent then looks its rows above the mark up.
    source = SQL(
        "{parent} p LEFT JOIN {sync_marks} m ON {on_mark} CROSS JOIN {table} e ON {on_row} "
        "AND e.{seq} > coalesce(m.seq, 0) WHERE {where}"
    ).format(
        parent=TableRef(parent.name),
        sync_marks=TableRef("sync_marks"),
        on_mark=on_mark,
        table=TableRef(t.name),
        on_row=_AND.join(SQL("e.{0} = p.{0}").format(Ident(c)) for c in parent.primary_key),
        seq=Ident(t.primary_key[-1]),
        where=where,
    )
    return source, params


def raise_marks(tables: Iterable[Table], user_id: str | None) -> Body[None]:
    """For each sequence table of ``tables``, set the mark of every parent (of
    ``user_id``, else all) whose counter is above it to the counter: for when every row
    up to it is queued or delivered."""
    for t in tables:
        assert t.seq_counter is not None, f"{t.name} has no sequence"
        parent, counter = TABLES[t.seq_counter[0]], t.seq_counter[1]
        on_mark, where, params = _parents_above(parent, counter, user_id)
        yield Stmt(
            SQL(
                "INSERT INTO {sync_marks} ({keys}, seq) SELECT {p_keys}, p.{ctr} FROM {parent} p "
                "LEFT JOIN {sync_marks} m ON {on_mark} WHERE {where} "
                "ON CONFLICT ({keys}) DO UPDATE SET seq = excluded.seq"
            ).format(
                sync_marks=TableRef("sync_marks"),
                keys=_COMMA.join(Ident(c) for c in parent.primary_key),
                p_keys=_COMMA.join(SQL("p.") + Ident(c) for c in parent.primary_key),
                ctr=Ident(counter),
                parent=TableRef(parent.name),
                on_mark=on_mark,
                where=where,
            ),
            params,
        )


def queued(names: Iterable[str] | None = None) -> Body[tuple[int, str | None]]:
    """Writes a cache has not delivered: its outbox rows and the appends above the marks
    (of the sequence tables ``names``, else all); and the time of the oldest."""
    row = yield One("SELECT count(*), min(created_at) FROM {sync_outbox}")
    count, oldest = (int(row[0]), row[1]) if row else (0, None)
    for t, _, _ in marked_tables(names):
        source, params = above_marks(t, None)
        time_of = SQL("min(e.{})").format(Ident(t.time_column)) if t.time_column else SQL("NULL")
        got = yield One(SQL("SELECT count(*), {} FROM ").format(time_of) + source, params)
        if got and got[0]:
            count += int(got[0])
            if got[1] is not None and (oldest is None or got[1] < oldest):
                oldest = got[1]
    return count, oldest
