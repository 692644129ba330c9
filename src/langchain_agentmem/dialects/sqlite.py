"""SQLite SQL text (stdlib sqlite3, JSON1, FTS5)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .base import Dialect, check_identifier

__all__ = ["SQLiteDialect"]


class SQLiteDialect(Dialect):
    """SQLite (stdlib ``sqlite3``). One database: the schema name is not used."""

    name = "sqlite"
    fragments = {"now": "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')", "bparam": "?"}

    def table(self, name: str) -> str:
        return self.quote(name)

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def unnest(self, columns: Sequence[tuple[str, str]]) -> str:
        parts = []
        for i, (name, _type) in enumerate(columns):
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
