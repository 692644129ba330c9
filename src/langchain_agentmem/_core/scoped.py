"""The scoped writer: tenant-scoped upserts and deletes that take row locks in key order.

Two transactions that write the same rows in different orders can each hold a lock the
other waits for: on Postgres one of them dies with ``DeadlockDetected``. Writers built
here always touch rows in one order, the order of their keys (code points, which is the
byte order of UTF-8, of Postgres ``COLLATE "C"`` and of SQLite's ``BINARY``), so
concurrent batches wait for each other instead. Every statement filters on the scope's
columns, the tenant (``user_id``) first.

Example:
    >>> docs = Scope("documents", ("user_id", "namespace", "kind"), "key")
    >>> upsert_sql(docs, ["value"])
    'INSERT INTO {documents} (user_id, namespace, kind, key, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, namespace, kind, key) DO UPDATE SET value = excluded.value'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..dialects import Dialect, check_identifier
from ..dialects.statements import Body, Many, Stmt, in_key_order

__all__ = ["Scope", "delete_in_key_order", "upsert_in_key_order", "upsert_sql"]

R = TypeVar("R")

_KEYS = [("key", "text")]


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

    def where(self, alias: str = "") -> str:
        """``col = ? AND ...`` over the scope's columns (parameters in their order)."""
        prefix = alias + "." if alias else ""
        return " AND ".join(f"{prefix}{c} = ?" for c in self.columns)


def upsert_sql(scope: Scope, values: Sequence[str], *, touch: str | None = None) -> str:
    """One row's ``INSERT ... ON CONFLICT DO UPDATE`` of the scope's table: parameters are
    the scope's columns, the key, then ``values``; ``touch`` names a timestamp column set to
    now on update."""
    for name in values:
        check_identifier(name, "column")
    columns = [*scope.columns, scope.key, *values]
    sets = [f"{v} = excluded.{v}" for v in values]
    if touch is not None:
        sets.append(f"{check_identifier(touch, 'column')} = {{now}}")
    return (
        f"INSERT INTO {{{scope.table}}} ({', '.join(columns)}) "  # noqa: S608 (checked names)
        f"VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join([*scope.columns, scope.key])}) DO UPDATE SET {', '.join(sets)}"
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
    table = "{" + scope.table + "}"
    cond = f"{scope.where()} AND {scope.key} IN (SELECT m.key FROM {dialect.unnest(_KEYS)})"  # noqa: S608 (checked names)

    def params(keys: list[str]) -> list[Any]:
        return [*scope_values, *dialect.unnest_params(_KEYS, [(k,) for k in keys])]

    lock = dialect.lock_in_order(scope.key)
    if lock is not None:
        rows = yield Stmt(
            f"SELECT {scope.key} FROM {table} WHERE {cond} {lock}",  # noqa: S608 (checked names)
            params(ordered),
            fetch=True,
        )
        ordered = [row[0] for row in rows]
        if not ordered:
            return 0
    deleted: int = yield Stmt(f"DELETE FROM {table} WHERE {cond}", params(ordered))  # noqa: S608
    return deleted
