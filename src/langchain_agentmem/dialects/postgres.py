"""PostgreSQL SQL text (psycopg 3 placeholders, quoted identifiers, pgvector)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql as pgsql

from .base import Dialect, check_identifier

__all__ = ["PostgresDialect"]


class PostgresDialect(Dialect):
    """PostgreSQL (psycopg 3). Placeholders become ``%s`` and tables ``"schema"."table"``."""

    name = "postgres"
    fragments = {"now": "now()", "bparam": "%b"}
    supports_dml_cte = True
    supports_copy = True

    def table(self, name: str) -> str:
        return pgsql.Identifier(self.schema, name).as_string(None)

    def quote(self, name: str) -> str:
        return pgsql.Identifier(name).as_string(None)

    def _literal(self, text: str) -> str:
        return text.replace("%", "%%").replace("?", "%s")

    _PG_TYPES = {"text": "text[]", "bigint": "bigint[]", "double": "float8[]", "json": "json[]"}

    def unnest(self, columns: Sequence[tuple[str, str]]) -> str:
        casts = ", ".join(f"{{bparam}}::{self._PG_TYPES[t]}" for _, t in columns)
        names = ", ".join(check_identifier(n, "column") for n, _ in columns)
        return f"unnest({casts}) WITH ORDINALITY AS m({names}, ord)"

    def unnest_params(
        self, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
    ) -> list[Any]:
        return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in columns]

    def starts_with(self, column: str) -> str:
        # Byte-wise LIKE on a COLLATE "C" column can use the btree index.
        return check_identifier(column, "column") + " LIKE ? ESCAPE '\\'"

    def starts_with_params(self, prefix: str) -> list[Any]:
        return [self.like_escape(prefix)]

    def json_entries(self, expr: str, key: str, alias: str) -> str:
        check_identifier(key, "JSON key")
        check_identifier(alias, "alias")
        return f"json_each_text({expr} -> '{key}') AS {alias}"

    def json_field_equals(self, column: str, key: str, value: Any) -> tuple[str, list[Any]] | None:
        from .._encoding.json import dumps

        return f"{column} -> ? = CAST(? AS jsonb)", [key, dumps(value)]

    def now_plus_minutes(self, expr: str) -> str:
        return f"(now() + {expr} * interval '1 minute')"

    def vector_param(self, values: Sequence[float]) -> Any:
        try:
            from pgvector import Vector  # pgvector-python 0.4+
        except ImportError:  # 0.2 and 0.3 (langchain-postgres pins pgvector < 0.4)
            from pgvector.utils import Vector

        return Vector(list(values))

    def cosine_distance(self, column: str) -> str | None:
        return f"({column} <=> ?)"
