"""SQLite SQL text (stdlib sqlite3, JSON1, FTS5)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .base import Dialect, check_identifier
from .statements import One, Raw, Stmt

__all__ = ["SQLiteDialect", "split_script"]


class SQLiteDialect(Dialect):
    """SQLite (stdlib ``sqlite3``). One database: the schema name is not used."""

    name = "sqlite"
    # One writer at a time (BEGIN IMMEDIATE): a read in a write transaction is locked already.
    fragments = {
        "now": "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')",
        "bparam": "?",
        "for_update": "",
    }

    def table(self, name: str) -> str:
        return self.quote(name)

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def unnest(self, columns: Sequence[tuple[str, str]]) -> str:
        parts = []
        for i, (name, type_) in enumerate(columns):
            if type_ == "bytes":
                raise ValueError(
                    f"SQLite cannot unnest bytes (column {name!r}): JSON holds no bytes; "
                    "insert such rows with VALUES"
                )
            check_identifier(name, "column")
            # json_extract returns SQL values: text, integer, real, NULL.
            parts.append(f"json_extract(value, '$[{i}]') AS {name}")
        return "(SELECT key + 1 AS ord, " + ", ".join(parts) + " FROM json_each(?)) AS m"  # noqa: S608 (checked names)

    def unnest_params(
        self, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
    ) -> list[Any]:
        from .._encoding.json import dumps

        return [dumps([list(r) for r in rows])]

    def starts_with(self, column: str) -> str:
        # SQLite's LIKE ignores ASCII case: a range start for the index, then an exact test.
        col = check_identifier(column, "column")
        return f"({col} >= ? AND substr({col}, 1, ?) = ?)"

    def starts_with_params(self, prefix: str) -> list[Any]:
        return [prefix, len(prefix), prefix]

    def lock_keys(self, keys: Sequence[Sequence[str]]) -> Stmt | None:
        """None: SQLite has one writer at a time. Every write transaction begins with
        ``BEGIN IMMEDIATE`` (and, in this process, after the engine's write lock), so a
        write transaction that reads and then writes is never interleaved with another."""
        return None

    def json_entries(self, expr: str, key: str, alias: str) -> str:
        check_identifier(key, "JSON key")
        check_identifier(alias, "alias")
        return f"json_each({expr}, '$.{key}') AS {alias}"

    def json_field_equals(self, column: str, key: str, value: Any) -> tuple[str, list[Any]] | None:
        from .._encoding.json import dumps

        if '"' in key or "\\" in key:
            return None
        return f"json_extract({column}, ?) IS json_extract(?, '$.v')", [
            '$."' + key + '"',
            dumps({"v": value}),
        ]

    def now_plus_minutes(self, expr: str) -> str:
        return f"strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '+' || ({expr} * 60.0) || ' seconds')"

    def from_datetime(self, value: datetime) -> Any:
        from datetime import timezone

        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+00:00"

    def vector_param(self, values: Sequence[float]) -> Any:
        from array import array

        return array("f", values).tobytes()

    def migration_prologue(self) -> list[Raw]:
        # BEGIN IMMEDIATE (the write transaction) already serializes migrate() calls.
        return [
            Raw(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')))"
            )
        ]

    def migration_script(self, script: str) -> list[Raw]:
        return [Raw(statement) for statement in split_script(script)]

    def table_exists(self, name: str) -> One:
        return One(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?",
            [check_identifier(name, "table")],
        )

    def tables(self) -> Stmt:
        # Leaves out SQLite's own tables and the shadow tables of FTS5 indexes.
        return Stmt(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "AND name NOT IN (SELECT m.name || s.suffix FROM sqlite_master m, "
            "(SELECT '_data' AS suffix UNION ALL SELECT '_idx' UNION ALL SELECT '_content' "
            "UNION ALL SELECT '_docsize' UNION ALL SELECT '_config') s "
            "WHERE m.type = 'table' AND m.sql LIKE 'CREATE VIRTUAL TABLE%') ORDER BY name",
            fetch=True,
        )


def split_script(script: str) -> list[str]:
    """Split a SQLite script into complete statements (triggers stay whole).

    Example:
        >>> split_script("CREATE TABLE a (x); -- note\\nCREATE TABLE b (y);")
        ['CREATE TABLE a (x);', 'CREATE TABLE b (y);']
    """
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.extend(_split_line_statements(current))
            current = ""
    if not _only_comments(current):
        raise ValueError(
            f"incomplete SQL statement at the end of the script: {current.strip()[:80]!r}"
        )
    return [s.strip() for s in statements if not _only_comments(s)]


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.strip().startswith("--") for ln in text.splitlines())


def _split_line_statements(text: str) -> list[str]:
    # Several statements on one line: split where each prefix is complete.
    out, start = [], 0
    for i, ch in enumerate(text):
        if ch == ";" and sqlite3.complete_statement(text[start : i + 1]):
            out.append(text[start : i + 1])
            start = i + 1
    if text[start:].strip():
        out.append(text[start:])
    return out
