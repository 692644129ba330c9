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
from .catalog import CACHE_COLUMNS, TABLES, Table

__all__ = [
    "VERSIONED",
    "above_marks",
    "marked_tables",
    "queue_versioned",
    "queued",
    "raise_marks",
    "versioned_tables",
]

#: Mutable tables whose rows carry their own version in a cache (migration 0021), by
#: table: the column. A write sets it instead of queuing an outbox row; the sync queues
#: the rows above the table's mark (``sync_state`` key ``rows:<table>``).
VERSIONED = {"kv": "sync_version"}
assert all(c in CACHE_COLUMNS.get(t, ()) for t, c in VERSIONED.items())

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


def versioned_tables(names: Iterable[str] | None = None) -> list[tuple[Table, str]]:
    """The cache's tables with a row version (of ``names``, else all), each with its
    column."""
    wanted = None if names is None else set(names)
    return [
        (TABLES[name], column)
        for name, column in VERSIONED.items()
        if wanted is None or name in wanted
    ]


def _above_mark(t: Table, column: str) -> Composable:
    """``FROM ... WHERE`` of the rows of ``t`` (alias ``t``) whose version is above the
    table's mark (one parameter: the mark's key)."""
    return SQL("{table} t WHERE t.{col} > (SELECT value FROM {sync_state} WHERE key = ?)").format(
        table=TableRef(t.name), col=Ident(column), sync_state=TableRef("sync_state")
    )


def outbox_session(t: Table, alias: str) -> Composable:
    """The outbox row's ``session_id`` for a row ``alias`` of ``t`` (``NULL`` when ``t``
    has no session in its key)."""
    return Ident(alias, "session_id") if "session_id" in t.primary_key else SQL("NULL")


def outbox_stamp(t: Table, alias: str) -> Composable:
    """The outbox row's queued time: the row's own time column, else the dialect's now."""
    if t.time_column is None:
        return SQL("{now}")
    return SQL("coalesce({}, {now})").format(Ident(alias, t.time_column))


def queue_versioned(names: Iterable[str] | None = None) -> Body[None]:
    """Turn the rows whose version is above their table's mark (of the tables ``names``,
    else all) into outbox ``u`` rows with that version, in version order, and raise the
    marks over them (in the same transaction: the first step of every write transaction
    of the sync). The queued time is the row's (``sync(since=...)``)."""
    for t, column in versioned_tables(names):
        row = yield One("SELECT coalesce(max(seq), 0) FROM {sync_outbox}")
        top = int(row[0]) if row else 0
        mark = "rows:" + t.name
        session, stamp = outbox_session(t, "t"), outbox_stamp(t, "t")
        yield Stmt(
            SQL(
                "INSERT INTO {sync_outbox} (table_name, op, user_id, session_id, pk, version, "
                "created_at) SELECT ?, 'u', t.{tenant}, {session}, json_array({key}), t.{col}, "
                "{stamp} FROM {source} ORDER BY t.{col}"
            ).format(
                tenant=Ident(t.tenant_column or "user_id"),
                session=session,
                key=_COMMA.join(SQL("t.") + Ident(c) for c in t.primary_key),
                col=Ident(column),
                stamp=stamp,
                source=_above_mark(t, column),
            ),
            [t.name, mark],
        )
        # The mark: the highest version just queued (read from the new outbox rows, not
        # by a second scan of the table).
        yield Stmt(
            "UPDATE {sync_state} SET value = max(value, coalesce((SELECT max(version) "
            "FROM {sync_outbox} WHERE seq > ? AND table_name = ?), 0)) WHERE key = ?",
            [top, t.name, mark],
        )


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
    """Writes a cache has not delivered: its outbox rows, the appends above the marks and
    the versioned rows above their table's mark (of the tables ``names``, else all); and
    the time of the oldest."""
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
    for t, column in versioned_tables(names):
        time_of = SQL("min(t.{})").format(Ident(t.time_column)) if t.time_column else SQL("NULL")
        got = yield One(
            SQL("SELECT count(*), {} FROM ").format(time_of) + _above_mark(t, column),
            ["rows:" + t.name],
        )
        if got and got[0]:
            count += int(got[0])
            if got[1] is not None and (oldest is None or got[1] < oldest):
                oldest = got[1]
    return count, oldest
