"""PostgreSQL SQL text (psycopg 3 placeholders, quoted identifiers, pgvector)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.types.array import ListBinaryDumper

from .base import Dialect, check_identifier
from .statements import One, Raw, Stmt

__all__ = ["PostgresDialect"]


def _typed_list(name: str, element_oid: int, array_oid: int) -> type[list[Any]]:
    """A list type that psycopg sends as a binary array of one element type, even when it
    is empty or all NULL (a plain list then has no element to tell the type by, and goes
    as an untyped array: the server would prepare a second statement for the same text).
    Its dumper is registered on psycopg's default adapters, which every new connection
    starts from; it applies to this type only."""
    cls = type(name, (list,), {"__slots__": ()})
    dumper = type(
        name + "Dumper", (ListBinaryDumper,), {"element_oid": element_oid, "oid": array_oid}
    )
    psycopg.adapters.register_dumper(cls, dumper)
    return cls


#: Column type of :meth:`PostgresDialect.unnest` -> its typed list (text, bytea, int8,
#: float8; json goes as text and is cast by the statement).
_TYPED_LISTS = {
    "text": _typed_list("_TextList", 25, 1009),
    "json": _typed_list("_JsonTextList", 25, 1009),
    "bytes": _typed_list("_ByteaList", 17, 1001),
    "bigint": _typed_list("_Int8List", 20, 1016),
    "double": _typed_list("_Float8List", 701, 1022),
}


class PostgresDialect(Dialect):
    """PostgreSQL (psycopg 3). Placeholders become ``%s`` and tables ``"schema"."table"``."""

    name = "postgres"
    fragments = {"now": "now()", "bparam": "%b", "for_update": "FOR UPDATE"}
    supports_dml_cte = True
    supports_copy = True
    raw_options = {"prepare": False}
    supports_row_locks = True

    def table(self, name: str) -> str:
        return pgsql.Identifier(self.schema, name).as_string(None)

    def quote(self, name: str) -> str:
        return pgsql.Identifier(name).as_string(None)

    def _literal(self, text: str) -> str:
        return text.replace("%", "%%").replace("?", "%s")

    def row_lock(self, strength: str) -> str:
        super().row_lock(strength)
        return " FOR KEY SHARE" if strength == "key share" else " FOR UPDATE"

    _PG_TYPES = {
        "text": "text[]",
        "bigint": "bigint[]",
        "double": "float8[]",
        "json": "json[]",
        "bytes": "bytea[]",
    }

    def unnest(self, columns: Sequence[tuple[str, str]]) -> str:
        casts = ", ".join(f"{{bparam}}::{self._PG_TYPES[t]}" for _, t in columns)
        names = ", ".join(check_identifier(n, "column") for n, _ in columns)
        return f"unnest({casts}) WITH ORDINALITY AS m({names}, ord)"

    def unnest_params(
        self, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
    ) -> list[Any]:
        # A column that is empty or all NULL goes as a typed array: psycopg prepares one
        # statement per text and parameter types, and the type of such a list is unknown.
        if not rows:
            return [_TYPED_LISTS[t]() for _, t in columns]
        out: list[Any] = []
        for (_, type_), col in zip(columns, zip(*rows, strict=True), strict=True):
            values = list(col)
            if all(v is None for v in values):
                values = _TYPED_LISTS[type_](values)
            out.append(values)
        return out

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

    def lock_in_order(self, column: str) -> str | None:
        return f'ORDER BY {check_identifier(column, "column")} COLLATE "C" FOR UPDATE'

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

    #: One advisory lock for every schema: CREATE EXTENSION is database-wide.
    MIGRATION_LOCK = "langchain_agentmem.migrate"

    def _compose(self, query: str) -> str:
        return (
            pgsql.SQL(query)
            .format(schema=pgsql.Identifier(self.schema), key=pgsql.Literal(self.MIGRATION_LOCK))
            .as_string(None)
        )

    def migration_prologue(self) -> list[Raw]:
        return [
            Raw(self._compose("SELECT pg_advisory_xact_lock(hashtextextended({key}, 0))")),
            Raw(self._compose("CREATE SCHEMA IF NOT EXISTS {schema}")),
            Raw(
                self._compose(
                    "CREATE TABLE IF NOT EXISTS {schema}.schema_version ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                )
            ),
        ]

    def migration_script(self, script: str) -> list[Raw]:
        # Files name tables unqualified and create extensions WITH SCHEMA public.
        return [Raw(self._compose("SET LOCAL search_path TO {schema}, public")), Raw(script)]

    def table_exists(self, name: str) -> One:
        return One(
            "SELECT to_regclass(?) IS NOT NULL", [self.table(check_identifier(name, "table"))]
        )

    def tables(self) -> Stmt:
        return Stmt(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_type = 'BASE TABLE' ORDER BY table_name",
            [self.schema],
            fetch=True,
        )
