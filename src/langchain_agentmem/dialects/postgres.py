"""PostgreSQL SQL text (psycopg 3 placeholders, quoted identifiers, pgvector)."""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from datetime import timezone
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg._encodings import conn_encoding
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types.array import ListBinaryDumper

from .base import (
    Dialect,
    Fragment,
    ImportStage,
    JsonPath,
    JsonSQL,
    TextSearch,
    check_identifier,
)
from .compose import SQL, Composable, Ident, Table, Unnest
from .statements import One, Raw, Stmt

_COMMA = SQL(", ")
_ARRAY = SQL("[]")
_VECTOR_TYPE = SQL("public.vector")

_LOCK_KEYS = SQL(
    "SELECT pg_advisory_xact_lock(s.h) FROM (SELECT DISTINCT hashtextextended(m.k, 0) AS h "
    "FROM {keys}) s ORDER BY s.h"
).format(keys=Unnest([("k", "text")]))

__all__ = ["PostgresDialect", "PostgresJson"]

#: The archive's kind of each column type (``udt_name``) of the shared schema.
_KINDS = {
    "text": "text",
    "varchar": "text",
    "int2": "integer",
    "int4": "integer",
    "int8": "integer",
    "float4": "real",
    "float8": "real",
    "bool": "bool",
    "bytea": "bytes",
    "json": "json",
    "jsonb": "json",
    "timestamptz": "timestamp",
    "vector": "vector",
    "_text": "text[]",
}
_DIST_OPERATOR = {"cosine": "<=>", "l2": "<->", "inner_product": "<#>"}
_OPCLASS = {"cosine": "cosine_ops", "l2": "l2_ops", "inner_product": "ip_ops"}
#: HNSW indexes ``vector`` up to 2,000 dimensions and ``halfvec`` (pgvector 0.7+) up to 4,000.
_VECTOR_INDEX_MAX = 2000
_HALFVEC_INDEX_MAX = 4000

# Exact JSON text that holds an escape Postgres text cannot carry (NUL, a lone surrogate)
# makes every json function fail on the whole document. Such a document is read through a
# copy where those become U+FFFD: escaped backslashes are set aside (chr 1), surrogate
# pairs marked (chr 2), the remaining \u0000 and lone surrogates replaced, the marks
# undone. Only documents whose text holds a \u take that path.
_SAFE_JSON = (
    "CAST(replace(replace(regexp_replace(regexp_replace(replace(CAST({x} AS text), '\\\\', chr(1)), "
    "'\\\\u(d[89ab][0-9a-f][0-9a-f])\\\\u(d[c-f][0-9a-f][0-9a-f])', chr(2) || 'u\\1' || chr(2) || 'u\\2', 'gi'), "
    "'\\\\u(0000|d[89a-f][0-9a-f][0-9a-f])', '\\\\ufffd', 'gi'), chr(2), '\\'), chr(1), '\\\\') AS json)"
)


class PostgresJson(JsonSQL):
    """A ``jsonb`` search column (``exact=False``) or a ``json`` column of exact text
    (``exact=True``, read as its clean copy, see above); paths are ``text[]``
    parameters."""

    def __init__(self, column: str = "v.metadata", *, exact: bool = False) -> None:
        if exact:
            column = (
                f"(CASE WHEN strpos(CAST({column} AS text), '\\u') = 0 THEN {column} "
                f"ELSE {_SAFE_JSON.format(x=column)} END)"
            )
        super().__init__(column, exact=exact)

    def path(self, parts: JsonPath) -> Any:
        return [str(p) for p in parts]

    def _at(self) -> str:
        return f"({self.column} #> ?::text[])"

    def _typeof(self) -> str:
        return ("json_typeof" if self.exact else "jsonb_typeof") + "(" + self._at() + ")"

    def is_number(self, p: Any) -> Fragment:
        return f"{self._typeof()} = 'number'", [p]

    def is_string(self, p: Any) -> Fragment:
        return f"{self._typeof()} = 'string'", [p]

    def is_bool(self, p: Any, value: bool) -> Fragment:
        if self.exact:
            return f"(CAST({self._at()} AS text) = ?)", [p, "true" if value else "false"]
        return f"{self._at()} = ?::jsonb", [p, "true" if value else "false"]

    def is_null(self, p: Any) -> Fragment:
        return f"{self._typeof()} = 'null'", [p]

    def is_object(self, p: Any) -> Fragment:
        return f"{self._typeof()} = 'object'", [p]

    def is_array(self, p: Any) -> Fragment:
        return f"{self._typeof()} = 'array'", [p]

    def exists(self, p: Any) -> Fragment:
        return f"{self._at()} IS NOT NULL", [p]

    def length(self, p: Any) -> Fragment:
        fn = "json" if self.exact else "jsonb"
        at = self._at()
        length = SQL(
            "(CASE {fn}_typeof({at}) WHEN 'array' THEN {fn}_array_length({at}) "
            "WHEN 'object' THEN (SELECT count(*) FROM {fn}_object_keys({at})) END)"
        ).format(fn=SQL(fn), at=SQL(at))
        return length.template(), [p, p, p]

    def compare_number(self, p: Any, op: str, value: int | float) -> Fragment:
        # The operand goes as text: numeric parses it exactly (a float8 parameter would be
        # rounded to 15 digits on the way).
        if self.exact:
            return (
                f"((CASE WHEN json_typeof({self._at()}) = 'number' "
                f"THEN CAST(CAST({self._at()} AS text) AS numeric) END) {op} CAST(? AS numeric))",
                [p, p, repr(value)],
            )
        # jsonb numbers compare numerically with each other; no cast can fail.
        return (
            f"({self._typeof()} = 'number' AND {self._at()} {op} to_jsonb(CAST(? AS numeric)))",
            [p, p, repr(value)],
        )

    def _string(self) -> tuple[str, int]:
        return f"({self.column} #>> ?::text[])", 1

    def compare_string(self, p: Any, op: str, value: str) -> Fragment:
        text, n = self._string()
        t_sql, t_params = self.is_string(p)
        return f'({t_sql} AND ({text} COLLATE "C") {op} ?)', [*t_params, *[p] * n, value]

    def like(self, p: Any, pattern: str, ignore_case: bool) -> Fragment:
        text, n = self._string()
        t_sql, t_params = self.is_string(p)
        return (
            f"({t_sql} AND {text} {'ILIKE' if ignore_case else 'LIKE'} ?)",
            [*t_params, *[p] * n, pattern],
        )

    def eq_hint(self, p: JsonPath, value: Any) -> Fragment | None:
        if self.exact:
            return None  # no index on exact JSON text
        # Containment of a scalar at a path is equality (numbers by value); the GIN
        # (jsonb_path_ops) index on metadata serves it.
        from .._encoding.json import dumps

        doc: Any = value
        for part in reversed(p):
            doc = {part: doc}
        return f"{self.column} @> ?::jsonb", [dumps(doc)]


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

_HEAD = struct.Struct("!iiIii")  # dimensions (1), has NULL, element type, length, lower bound
_LEN = struct.Struct("!i")
_NULL = _LEN.pack(-1)


class _FlatDumper(Dumper):
    """The binary form of a one-dimensional array of str (text) or bytes (bytea) and
    ``None``, built directly: psycopg's generic list dumper inspects and dumps element by
    element in Python, about 50 us per array, most of a checkpoint write's own time."""

    format = Format.BINARY
    element_oid = 0
    text = False

    def __init__(self, cls: type, context: Any = None) -> None:
        super().__init__(cls, context)
        self._encoding = conn_encoding(self.connection)

    def dump(self, obj: Any) -> bytes:
        if not obj:
            return _HEAD.pack(0, 0, self.element_oid, 0, 0)[:12]
        parts = [b""]
        hasnull = 0
        encoding, pack = self._encoding, _LEN.pack
        for item in obj:
            if item is None:
                hasnull = 1
                parts.append(_NULL)
                continue
            data = item.encode(encoding) if self.text else bytes(item)
            parts.append(pack(len(data)))
            parts.append(data)
        parts[0] = _HEAD.pack(1, hasnull, self.element_oid, len(obj), 1)
        return b"".join(parts)


def _flat_list(name: str, element_oid: int, array_oid: int, text: bool) -> type[list[Any]]:
    """A list type sent by :class:`_FlatDumper` (registered like :func:`_typed_list`)."""
    cls = type(name, (list,), {"__slots__": ()})
    dumper = type(
        name + "Dumper",
        (_FlatDumper,),
        {"element_oid": element_oid, "oid": array_oid, "text": text},
    )
    psycopg.adapters.register_dumper(cls, dumper)
    return cls


#: Column type -> the element types its flat list takes, and the list.
_FLAT_LISTS: dict[str, tuple[tuple[type, ...], type[list[Any]]]] = {
    "text": ((str,), _flat_list("_FlatTextList", 25, 1009, True)),
    "json": ((str,), _flat_list("_FlatJsonTextList", 25, 1009, True)),
    "bytes": ((bytes,), _flat_list("_FlatByteaList", 17, 1001, False)),
}


@functools.cache
def _vector_class() -> Any:
    """pgvector-python's ``Vector``, looked up once (a failed import is not cached by
    Python: trying it on every vector cost half a millisecond each)."""
    try:
        from pgvector import Vector  # pgvector-python 0.4+

        return Vector
    except ImportError:  # 0.2 and 0.3 (langchain-postgres pins pgvector < 0.4)
        from pgvector.utils import Vector as Old

        return Old


class PostgresDialect(Dialect):
    """PostgreSQL (psycopg 3). Placeholders become ``%s`` and tables ``"schema"."table"``."""

    name = "postgres"
    fragments = {"now": "now()", "bparam": "%b", "for_update": "FOR UPDATE"}
    supports_dml_cte = True
    supports_copy = True
    raw_options = {"prepare": False}
    supports_row_locks = True
    supports_ann = True

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
            flat = _FLAT_LISTS.get(type_)
            if flat is not None and all(v is None or type(v) in flat[0] for v in values):
                # Exactly str (or bytes) and None: built directly (see _FlatDumper).
                values = flat[1](values)
            elif all(v is None for v in values):
                values = _TYPED_LISTS[type_](values)
            out.append(values)
        return out

    def starts_with(self, column: str) -> str:
        # Byte-wise LIKE on a COLLATE "C" column can use the btree index.
        return check_identifier(column, "column") + " LIKE ? ESCAPE '\\'"

    def starts_with_params(self, prefix: str) -> list[Any]:
        return [self.like_escape(prefix)]

    def lock_keys(self, keys: Sequence[Sequence[str]]) -> Stmt | None:
        """``pg_advisory_xact_lock`` on a 64-bit hash of each key (with the schema, so
        that schemas do not wait for each other), taken in hash order. Two keys with one
        hash share a lock: writers then wait for each other, which is safe."""
        from .._encoding.json import dumps

        cols = [("k", "text")]
        texts = sorted({dumps([self.schema, *key]) for key in keys})
        return Stmt(_LOCK_KEYS, self.unnest_params(cols, [(t,) for t in texts]))

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

    def vector_param(self, values: Any) -> Any:
        return _vector_class()(list(values))

    def cosine_distance(self, column: str) -> str | None:
        return f"({column} <=> ?)"

    def text_array_param(self, values: Sequence[str]) -> Any:
        return list(values)

    def text_array_value(self, value: Any) -> list[str]:
        return list(value or ())

    def text_array_contains(self, column: str) -> str:
        # Served by the column's GIN index.
        return f"{column} @> CAST(? AS text[])"

    def text_array_text(self, column: str) -> str:
        return f"array_to_string({column}, ', ')"

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

    # -- monitoring ----------------------------------------------------------------------
    supports_index_stats = True

    def table_sizes(self, tables: Sequence[str], measured: bool) -> Stmt:
        return Stmt(
            "SELECT c.relname::text, pg_table_size(c.oid), pg_indexes_size(c.oid), "
            "pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? "
            "AND c.relkind IN ('r', 'p') AND c.relname::text = ANY(?::text[]) "
            "ORDER BY pg_total_relation_size(c.oid) DESC, c.relname",
            [self.schema, list(tables)],
            fetch=True,
        )

    def index_usage(self, tables: Sequence[str], measured: bool) -> Stmt:
        return Stmt(
            "SELECT relname::text, indexrelname::text, idx_scan, idx_tup_read, idx_tup_fetch, "
            "pg_relation_size(indexrelid) FROM pg_stat_user_indexes WHERE schemaname = ? "
            "AND relname::text = ANY(?::text[]) ORDER BY relname, indexrelname",
            [self.schema, list(tables)],
            fetch=True,
        )

    def database_size(self) -> One:
        return One("SELECT pg_database_size(current_database())")

    def seconds_between(self, start: str, end: str) -> str:
        return f"extract(epoch FROM ({end} - {start}))"

    # -- data lifecycle ------------------------------------------------------------------
    def columns(self, name: str) -> Stmt:
        return Stmt(
            "SELECT column_name, data_type, udt_name, is_generated FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [self.schema, check_identifier(name, "table")],
            fetch=True,
        )

    def column_kinds(
        self, rows: Sequence[Sequence[Any]], vector_column: str | None
    ) -> list[tuple[str, str, str]]:
        out = []
        for name, data_type, udt, generated in rows:
            if generated == "ALWAYS" or udt == "tsvector":
                continue  # computed by the database from other columns
            kind = _KINDS.get(udt)
            if kind is None:
                raise ValueError(
                    f"column {name!r} has type {data_type} ({udt}), which the archive does not "
                    f"know: expected one of {', '.join(sorted(_KINDS))}"
                )
            out.append((str(name), kind, str(udt)))
        return out

    def foreign_keys(self, name: str) -> Stmt:
        return Stmt(
            "SELECT a.attname, cf.relname, af.attname FROM pg_constraint c "
            "JOIN pg_class cl ON cl.oid = c.conrelid "
            "JOIN pg_namespace n ON n.oid = cl.relnamespace "
            "JOIN pg_class cf ON cf.oid = c.confrelid "
            "CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(a, f) "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.a "
            "JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = k.f "
            "WHERE c.contype = 'f' AND n.nspname = ? AND cl.relname = ? ORDER BY 1",
            [self.schema, check_identifier(name, "table")],
            fetch=True,
        )

    def export_expr(self, column: str, kind: str) -> str:
        col = self.quote(check_identifier(column, "column"))
        # json/jsonb as their text (jsonb's is its canonical form), not parsed objects.
        return f"CAST({col} AS text)" if kind == "json" else col

    def export_value(self, kind: str, value: Any) -> Any:
        if value is None:
            return None
        if kind == "vector":
            if hasattr(value, "to_list"):  # pgvector-python 0.4+ reads a Vector object
                value = value.to_list()
            elif hasattr(value, "tolist"):  # 0.2/0.3: a numpy array
                value = value.tolist()
            return [float(x) for x in value]
        if kind == "timestamp":
            return value.astimezone(timezone.utc).isoformat()
        return value

    def import_placeholder(self, kind: str, sql_type: str) -> str:
        if kind == "json":
            return f"CAST(? AS {check_identifier(sql_type, 'type')})"
        return "?"

    def import_value(self, kind: str, value: Any) -> Any:
        if value is not None and kind == "vector":
            return self.vector_param(value)
        return value

    def import_stage(self, name: str, columns: Sequence[tuple[str, str, str]]) -> ImportStage:
        """Example:
        >>> d = PostgresDialect("m")
        >>> st = d.import_stage("kv", [("user_id", "text", "text"),
        ...     ("value", "json", "jsonb"), ("tags", "text[]", "_text")])
        >>> d.render(st.copy), st.types
        ('COPY "agentmem_import_kv" ("user_id", "value", "tags") FROM STDIN', ['text', 'text', 'text[]'])
        >>> d.render(st.move.sql)
        'INSERT INTO "m"."kv" ("user_id", "value", "tags") SELECT s."user_id", CAST(s."value" AS "jsonb"), s."tags" FROM "agentmem_import_kv" s'
        >>> d.render(st.create.sql)
        'CREATE TEMP TABLE IF NOT EXISTS "agentmem_import_kv" ("user_id" "text", "value" "text", "tags" "text"[]) ON COMMIT DROP'
        """
        table = check_identifier(name, "table")
        stage = Ident("agentmem_import_" + table)
        defs: list[Composable] = []
        types: list[str] = []
        values: list[Composable] = []
        for column, kind, udt in columns:
            col = Ident(column)
            sql_type: Composable
            if kind in ("json", "vector"):  # their text, cast on the way in
                cast = _VECTOR_TYPE if kind == "vector" else Ident(udt)
                kind_type, sql_type = "text", Ident("text")
                value = SQL("CAST(s.{} AS {})").format(col, cast)
            else:
                base = udt.removeprefix("_")
                array = udt.startswith("_")
                sql_type = Ident(base) + _ARRAY if array else Ident(base)
                kind_type = check_identifier(base, "type") + ("[]" if array else "")
                value = SQL("s.") + col
            defs.append(SQL("{} {}").format(col, sql_type))
            types.append(kind_type)
            values.append(value)
        names = _COMMA.join(Ident(c) for c, _, _ in columns)
        return ImportStage(
            create=Stmt(
                SQL("CREATE TEMP TABLE IF NOT EXISTS {stage} ({defs}) ON COMMIT DROP").format(
                    stage=stage, defs=_COMMA.join(defs)
                )
            ),
            copy=SQL("COPY {stage} ({names}) FROM STDIN").format(stage=stage, names=names),
            types=types,
            move=Stmt(
                SQL("INSERT INTO {table} ({names}) SELECT {values} FROM {stage} s").format(
                    table=Table(table), names=names, values=_COMMA.join(values), stage=stage
                )
            ),
            empty=Stmt(SQL("TRUNCATE {}").format(stage)),
            text_kinds=frozenset({"vector"}),
        )

    def views(self) -> Stmt:
        return Stmt(
            "SELECT table_name FROM information_schema.views WHERE table_schema = ? "
            "ORDER BY table_name",
            [self.schema],
            fetch=True,
        )

    def json_sql(self, column: str, *, exact: bool = False) -> JsonSQL:
        return PostgresJson(column, exact=exact)

    def vector_distance(self, column: str, distance: str) -> str | None:
        return f"({column} {_DIST_OPERATOR[distance]} ?::vector)"

    def vector_dims_is(self, column: str, dims: int) -> str:
        return f"vector_dims({check_identifier(column, 'column')}) = {int(dims)}"

    def row_handle(self, alias: str) -> str:
        return f"{check_identifier(alias, 'alias')}.ctid"

    def ann_version_query(self) -> str | None:
        return "SELECT extversion FROM pg_extension WHERE extname = 'vector'"

    def ann_cast(self, dims: int, version: tuple[int, ...]) -> str | None:
        if dims <= _VECTOR_INDEX_MAX:
            return f"vector({int(dims)})"
        if dims <= _HALFVEC_INDEX_MAX and version >= (0, 7, 0):
            return f"halfvec({int(dims)})"
        return None  # too large for HNSW (halfvec needs pgvector 0.7): exact search only

    def ann_index_ddl(
        self,
        name: str,
        table: str,
        column: str,
        cast: str,
        distance: str,
        m: int,
        ef_construction: int,
        where: str,
    ) -> str:
        # DDL takes no parameters: identifiers quoted, integers as literals; the cast,
        # the operator class and the predicate are code.
        return (
            pgsql.SQL(
                "CREATE INDEX IF NOT EXISTS {index} ON {table} USING hnsw (({column}::{cast}) {opclass}) "
                "WITH (m = {m}, ef_construction = {ef}) WHERE {where}"
            )
            .format(
                index=pgsql.Identifier(check_identifier(name, "index")),
                table=pgsql.Identifier(self.schema, check_identifier(table, "table")),
                column=pgsql.Identifier(check_identifier(column, "column")),
                cast=pgsql.SQL(cast),
                opclass=pgsql.SQL(cast.split("(")[0] + "_" + _OPCLASS[distance]),
                m=pgsql.Literal(int(m)),
                ef=pgsql.Literal(int(ef_construction)),
                where=pgsql.SQL(where),
            )
            .as_string(None)
        )

    def ann_order(self, column: str, cast: str, distance: str) -> str:
        return f"({column}::{cast}) {_DIST_OPERATOR[distance]} (?::vector)::{cast}"

    def ann_settings(
        self, ef_search: int, iterative: str | None, max_scan_tuples: int
    ) -> list[Any]:
        # Custom plans only: a generic plan of a prepared statement cannot see how many
        # rows the scope holds and may trade the HNSW index for a scan of the scope.
        out: list[Any] = [
            (
                "SELECT set_config('hnsw.ef_search', ?, true), "
                "set_config('plan_cache_mode', 'force_custom_plan', true)",
                [str(min(int(ef_search), 1000))],
            )
        ]
        if iterative is not None:
            out.append(
                (
                    "SELECT set_config('hnsw.iterative_scan', ?, true), "
                    "set_config('hnsw.max_scan_tuples', ?, true)",
                    [iterative, str(int(max_scan_tuples))],
                )
            )
        return out

    def relation_rows(self) -> str:
        return (
            "coalesce((SELECT CASE WHEN reltuples > 0 THEN reltuples END FROM pg_class "
            "WHERE oid = to_regclass(?)), 0)"
        )

    def qualified(self, name: str) -> str:
        return self.table(check_identifier(name, "relation"))

    def text_search(self, tokens: Sequence[str]) -> TextSearch:
        return (
            ", to_tsquery('simple', ?) tq",
            [" | ".join(tokens)],
            "v.tsv @@ tq",
            [],
            "ts_rank_cd(v.tsv, tq)",
            True,
        )

    # -- hybrid mode (see langchain_agentmem.hybrid) -------------------------------------
    def sync_columns(self, name: str) -> Stmt:
        """Columns of table ``name`` a sync writes: ``(name, format_type)`` in order,
        generated and always-identity columns left out."""
        return Stmt(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = CAST(? AS regclass) AND a.attnum > 0 AND NOT a.attisdropped "
            "AND a.attgenerated = '' AND a.attidentity <> 'a' ORDER BY a.attnum",
            [self.table(check_identifier(name, "table"))],
            fetch=True,
        )

    def sync_param_type(self, kind: str) -> str:
        """The :meth:`unnest` type a column of sync ``kind`` is sent as."""
        return {"bytes": "bytes", "int": "bigint", "float": "double"}.get(kind, "text")

    def sync_converter(self, kind: str) -> Any:
        """A function turning a cache value into the parameter :meth:`sync_param_type`
        sends, or ``None`` where the value goes as it is (text, JSON, timestamps and
        numbers of the right type)."""
        if kind in ("bytes", "vector", "bool", "array"):
            return lambda v: self.sync_input(v, kind)
        if kind == "int":
            return lambda v: v if v is None or type(v) is int else int(v)
        if kind == "float":
            return lambda v: v if v is None or type(v) is float else float(v)
        return lambda v: v if v is None or type(v) is str else self.sync_input(v, kind)

    def sync_passes(self, kind: str) -> frozenset[type]:
        """The types of cache values :meth:`sync_converter` returns unchanged: a column
        holding only these needs no conversion (checked at C speed, ``set(map(type, ...))``).

        Example:
            >>> sorted(t.__name__ for t in PostgresDialect().sync_passes("int"))
            ['NoneType', 'int']
        """
        if kind in ("bytes", "vector", "bool", "array"):
            return frozenset((type(None),))
        return frozenset((type(None), {"int": int, "float": float}.get(kind, str)))

    def sync_input(self, value: Any, kind: str) -> Any:
        """A cache (SQLite) value as the text (bytes for ``bytea``) Postgres reads into a
        column of sync ``kind`` (see :func:`~.base.sync_kind`).

        Example:
            >>> d = PostgresDialect()
            >>> d.sync_input('["a", "b\\\\"c"]', "array")
            '{"a","b\\\\"c"}'
            >>> d.sync_input(1, "bool"), d.sync_input(None, "int")
            ('true', None)
        """
        if value is None:
            return None
        if kind == "bytes":
            return bytes(value) if not isinstance(value, str) else value.encode()
        if kind == "vector":
            from array import array

            floats = array("f")
            floats.frombytes(value)
            return "[" + ",".join(map(repr, floats)) + "]"
        if kind == "bool":
            return "true" if value else "false"
        if kind == "array":
            if value == "[]":
                return "{}"
            from .._encoding.json import loads

            items = loads(value) if isinstance(value, str) else value

            def element(v: Any) -> str:
                if v is None:
                    return "NULL"
                text = v if isinstance(v, str) else str(v)
                return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

            return "{" + ",".join(element(v) for v in items) + "}"
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, float):
            return repr(value)
        return str(value)

    def sync_select(self, column: str, kind: str) -> Composable:
        """The expression a pull reads column ``column`` of sync ``kind`` with: JSON,
        vectors and arrays as text (arrays as JSON), the rest as they are.

        Example:
            >>> d = PostgresDialect()
            >>> d.render(d.sync_select("tags", "array"))
            'CAST(to_json(t."tags") AS text)'
        """
        if kind in ("json", "vector"):
            return _SYNC_TEXT.format(Ident(column))
        if kind == "array":
            return _SYNC_ARRAY.format(Ident(column))
        return _SYNC_PLAIN.format(Ident(column))

    _COPY_PARAM = {"text": "text", "bigint": "int8", "double": "float8", "bytes": "bytea"}

    def sync_copy(self, relation: Composable, columns: Sequence[str]) -> Composable:
        """A text-format ``COPY`` into ``relation`` (a :class:`~.compose.Table`, or the
        staging table :meth:`sync_stage` names): Postgres parses each value as its
        column's type, so the text :meth:`sync_input` makes goes as it is.

        Example:
            >>> from langchain_agentmem.dialects import Table
            >>> d = PostgresDialect()
            >>> d.render(d.sync_copy(Table("kv"), ["user_id", "key"]))
            'COPY "agent_mem"."kv" ("user_id", "key") FROM STDIN'
        """
        return _SYNC_COPY.format(relation, SQL(", ").join(Ident(c) for c in columns))

    def sync_copy_types(self, params: Sequence[str]) -> list[str]:
        return [self._COPY_PARAM[p] for p in params]

    def sync_stage(self, name: str, columns: Sequence[tuple[str, str]]) -> tuple[Composable, Stmt]:
        """A temporary table (emptied at commit) holding a batch's rows of table
        ``name`` before one ``INSERT ... SELECT ... ON CONFLICT``; named for its columns,
        so a migration that adds one gets a new table.

        Example:
            >>> d = PostgresDialect()
            >>> stage, create = d.sync_stage("kv", [("user_id", "text")])
            >>> d.render(stage)
            '"agentmem_sync_kv_0c093d17"'
            >>> d.render(create.sql)
            'CREATE TEMP TABLE IF NOT EXISTS "agentmem_sync_kv_0c093d17" ("user_id" text) ON COMMIT DELETE ROWS'
        """
        import hashlib

        table = check_identifier(name, "table")
        checked = [
            (check_identifier(c, "column"), self._PG_TYPES[t].removesuffix("[]"))
            for c, t in columns
        ]
        # The name hashes the column definitions' text (as it always has).
        text = ", ".join(f'"{c}" {t}' for c, t in checked)
        stage = Ident(f"agentmem_sync_{table}_" + hashlib.sha1(text.encode()).hexdigest()[:8])
        defs = SQL(", ").join(Ident(c) + SQL(" " + t) for c, t in checked)
        return stage, Stmt(_SYNC_STAGE.format(stage, defs))

    # -- tenant isolation ----------------------------------------------------------------
    supports_row_security = True

    def row_security_state(self) -> Stmt:
        return Stmt(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, p.oid IS NOT NULL, "
            "obj_description(p.oid, 'pg_policy') FROM pg_class c JOIN pg_namespace n ON n.oid = "
            "c.relnamespace LEFT JOIN pg_policy p ON p.polrelid = c.oid AND p.polname = ? "
            "WHERE n.nspname = ? AND c.relkind IN ('r', 'p')",
            [self.TENANT_POLICY, self.schema],
            fetch=True,
        )

    def row_security_ddl(self, changes: Sequence[tuple[str, str, Sequence[str]]]) -> Raw:
        parts: list[pgsql.Composable] = []
        for table, column, missing in changes:
            target = pgsql.Identifier(self.schema, check_identifier(table, "table"))
            actions = [
                pgsql.SQL(sql)
                for what, sql in (
                    ("enable", "ENABLE ROW LEVEL SECURITY"),
                    ("force", "FORCE ROW LEVEL SECURITY"),
                )
                if what in missing
            ]
            if actions:
                parts.append(
                    pgsql.SQL("ALTER TABLE {} {}").format(target, pgsql.SQL(", ").join(actions))
                )
            if "policy" in missing or "policy form" in missing:
                # current_setting(..., true) is NULL with no tenant set: no row matches. As a
                # sub-select it is read once a statement (an InitPlan), not once a row.
                same = pgsql.SQL("{} = (SELECT current_setting({}, true))").format(
                    pgsql.Identifier(check_identifier(column, "column")),
                    pgsql.Literal(self.TENANT_SETTING),
                )
                verb = pgsql.SQL("CREATE" if "policy" in missing else "ALTER")
                parts.append(
                    pgsql.SQL("{} POLICY {} ON {} USING ({}) WITH CHECK ({})").format(
                        verb, pgsql.Identifier(self.TENANT_POLICY), target, same, same
                    )
                )
                parts.append(
                    pgsql.SQL("COMMENT ON POLICY {} ON {} IS {}").format(
                        pgsql.Identifier(self.TENANT_POLICY),
                        target,
                        pgsql.Literal(self.TENANT_POLICY_FORM),
                    )
                )
        return Raw(pgsql.SQL("; ").join(parts).as_string(None))

    def role_state(self, role: str) -> One:
        return One(
            "SELECT count(*) > 0, coalesce(sum((SELECT count(*) FROM pg_class c WHERE c.relowner "
            "= r.oid) + (SELECT count(*) FROM pg_namespace n WHERE n.nspowner = r.oid) + "
            "(SELECT count(*) FROM pg_proc f WHERE f.proowner = r.oid) + (SELECT count(*) FROM "
            "pg_type t WHERE t.typowner = r.oid)), 0) FROM pg_roles r WHERE r.rolname = ?",
            [check_identifier(role, "role")],
        )

    def app_role_ddl(
        self, role: str, password: str | None, exists: bool, grants: Sequence[tuple[str, str]]
    ) -> Raw:
        name = pgsql.Identifier(check_identifier(role, "role"))
        schema = pgsql.Identifier(self.schema)
        options: pgsql.Composable = pgsql.SQL(
            "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION"
        )
        if password is not None:
            options = pgsql.SQL("{} PASSWORD {}").format(options, pgsql.Literal(password))
        verb = pgsql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
        parts: list[pgsql.Composable] = [
            pgsql.SQL("{} {} {}").format(verb, name, options),
            pgsql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(schema, name),
            pgsql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(schema, name),
            pgsql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(schema, name),
            pgsql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, name),
        ]
        allowed = {"SELECT", "INSERT", "UPDATE", "DELETE"}
        for table, privileges in grants:
            names = [p.strip() for p in privileges.split(",")]
            if not names or not set(names) <= allowed:
                raise ValueError(
                    f"privileges of {table!r} must be among {sorted(allowed)}, got {privileges!r}"
                )
            parts.append(
                pgsql.SQL("GRANT {} ON {} TO {}").format(
                    pgsql.SQL(", ").join(pgsql.SQL(p) for p in names),
                    pgsql.Identifier(self.schema, check_identifier(table, "table")),
                    name,
                )
            )
        return Raw(pgsql.SQL("; ").join(parts).as_string(None))


_SYNC_TEXT = SQL("CAST(t.{} AS text)")
_SYNC_ARRAY = SQL("CAST(to_json(t.{}) AS text)")
_SYNC_PLAIN = SQL("t.{}")
_SYNC_COPY = SQL("COPY {} ({}) FROM STDIN")
_SYNC_STAGE = SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS")
