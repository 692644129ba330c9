"""The scoped writer: tenant-scoped upserts and deletes that take row locks in key order.

Two transactions that write the same rows in different orders can each hold a lock the
other waits for: on Postgres one of them dies with ``DeadlockDetected``. Writers built
here always touch rows in one order, the order of their keys (code points, which is the
byte order of UTF-8, of Postgres ``COLLATE "C"`` and of SQLite's ``BINARY``), so
concurrent batches wait for each other instead. Every statement filters on the scope's
columns, the tenant (``user_id``) first.

Example:
    >>> docs = Scope("documents", ("user_id", "namespace", "kind"), "key")
    >>> upsert_sql(docs, ["value"]).template()
    'INSERT INTO {documents} ("user_id", "namespace", "kind", "key", "value") VALUES (?, ?, ?, ?, ?) ON CONFLICT ("user_id", "namespace", "kind", "key") DO UPDATE SET "value" = excluded."value"'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..dialects import SQL, Composed, Dialect, Ident, Table, Unnest, check_identifier
from ..dialects.statements import Body, Many, Stmt, in_key_order

__all__ = ["Scope", "delete_in_key_order", "upsert_in_key_order", "upsert_sql"]

R = TypeVar("R")

_KEYS = [("key", "text")]
_UNNEST_KEYS = Unnest(_KEYS)


@dataclass(frozen=True)
class Scope:
    """Rows of ``table`` whose ``columns`` (the tenant first) have given values, told
    apart by the text column ``key``; ``(*columns, key)`` is the primary key."""

    table: str
    columns: tuple[str, ...]
    key: str

    def __post_init__(self) -> None:
        check_identifier(self.table, "table")
        if not self.columns or self.columns[0] != "user_id":
            raise ValueError(f"a scope starts with the tenant column user_id, got {self.columns}")
        for name in (*self.columns, self.key):
            check_identifier(name, "column")

    def where(self) -> Composed:
        """``col = ? AND ...`` over the scope's columns (parameters in their order)."""
        return SQL(" AND ").join(SQL("{} = ?").format(Ident(c)) for c in self.columns)


_COMMA = SQL(", ")


def upsert_sql(scope: Scope, values: Sequence[str], *, touch: str | None = None) -> Composed:
    """One row's ``INSERT ... ON CONFLICT DO UPDATE`` of the scope's table: parameters are
    the scope's columns, the key, then ``values``; ``touch`` names a timestamp column set to
    now on update."""
    columns = [Ident(c) for c in (*scope.columns, scope.key, *values)]
    sets = [SQL("{v} = excluded.{v}").format(v=Ident(v)) for v in values]
    if touch is not None:
        sets.append(SQL("{} = {now}").format(Ident(touch)))
    return SQL(
        "INSERT INTO {table} ({columns}) VALUES ({values}) "
        "ON CONFLICT ({primary_key}) DO UPDATE SET {sets}"
    ).format(
        table=Table(scope.table),
        columns=_COMMA.join(columns),
        values=_COMMA.join(SQL("?") for _ in columns),
        primary_key=_COMMA.join(columns[: len(scope.columns) + 1]),
        sets=_COMMA.join(sets),
    )


def upsert_in_key_order(
    scope: Scope,
    scope_values: Sequence[Any],
    values: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    touch: str | None = None,
) -> Body[int]:
    """A body upserting ``rows`` (each ``(key, *values)``) in key order, one per key (the
    last wins); returns how many rows it wrote."""
    ordered = in_key_order(rows, key=lambda row: row[0], unique=True)
    if ordered:
        yield Many(
            upsert_sql(scope, values, touch=touch),
            [(*scope_values, *row) for row in ordered],
        )
    return len(ordered)


def delete_in_key_order(
    dialect: Dialect,
    scope: Scope,
    scope_values: Sequence[Any],
    keys: Iterable[str],
) -> Body[int]:
    """A body deleting the rows of ``keys`` in the scope; returns how many it deleted.

    Where the backend has row locks, it first locks the rows in key order, then deletes
    exactly the rows it locked: a row another writer commits in between is not touched
    (it was written after this delete), so no lock is ever taken out of order."""
    ordered = sorted(set(keys))
    if not ordered:
        return 0
    table = Table(scope.table)
    key = Ident(scope.key)
    cond = SQL("{where} AND {key} IN (SELECT m.key FROM {keys})").format(
        where=scope.where(), key=key, keys=_UNNEST_KEYS
    )

    def params(keys: list[str]) -> list[Any]:
        return [*scope_values, *dialect.unnest_params(_KEYS, [(k,) for k in keys])]

    lock = dialect.lock_in_order(scope.key)
    if lock is not None:
        rows = yield Stmt(
            SQL("SELECT {key} FROM {table} WHERE {cond} {lock}").format(
                key=key, table=table, cond=cond, lock=SQL(lock)
            ),
            params(ordered),
            fetch=True,
        )
        ordered = [row[0] for row in rows]
        if not ordered:
            return 0
    deleted: int = yield Stmt(
        SQL("DELETE FROM {table} WHERE {cond}").format(table=table, cond=cond), params(ordered)
    )
    return deleted
