"""The only place that knows how Postgres and SQLite differ.

Queries in this package are written once, in a neutral form:

* ``?`` is a positional placeholder (never use Postgres' ``?`` JSON operators; use
  ``jsonb_exists`` and friends instead),
* ``{name}`` is a table of the shared schema, quoted and schema-qualified by the dialect,
* ``{now}`` is the current time as stored in timestamp columns,
* ``{bparam}`` is a placeholder whose value is sent in binary (Postgres ``%b``; large arrays
  dump much faster that way), ``?`` on SQLite,
* ``%`` is a literal percent sign.

:meth:`Dialect.render` turns such a template into the SQL text of one backend. Table names
are checked against :data:`IDENTIFIER` and quoted (``psycopg.sql.Identifier`` on Postgres);
nothing a user typed is ever formatted into SQL.

Example:
    >>> PostgresDialect("agent_mem").render("SELECT seq FROM {events} WHERE user_id = ?")
    'SELECT seq FROM "agent_mem"."events" WHERE user_id = %s'
    >>> SQLiteDialect().render("SELECT seq FROM {events} WHERE user_id = ?")
    'SELECT seq FROM "events" WHERE user_id = ?'
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import sql as pgsql

__all__ = ["IDENTIFIER", "Dialect", "PostgresDialect", "SQLiteDialect", "check_identifier"]

#: What a schema, table or collection name may look like: lower-case ASCII, digits and
#: underscores, starting with a letter or underscore, at most 63 characters (Postgres' limit).
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_FORMATTER = string.Formatter()


def check_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it is a safe identifier, else raise ``ValueError``.

    Example:
        >>> check_identifier("agent_mem", "schema")
        'agent_mem'
        >>> check_identifier("x; drop table", "schema")
        Traceback (most recent call last):
        ...
        ValueError: invalid schema name 'x; drop table': expected lower-case letters, digits and underscores, starting with a letter or underscore, at most 63 characters
    """
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise ValueError(
            f"invalid {what} name {name!r}: expected lower-case letters, digits and "
            "underscores, starting with a letter or underscore, at most 63 characters"
        )
    return name


class Dialect:
    """What differs between backends. Pure: no I/O, no connections."""

    name: str = ""

    #: Fragments a template may name like a table: ``{now}``, ``{bparam}``.
    fragments: dict[str, str] = {}
    #: Whether a ``WITH`` clause may hold INSERT/UPDATE ... RETURNING (one statement where
    #: otherwise two are needed).
    supports_dml_cte: bool = False
    #: Rows can be loaded by binary ``COPY`` (``Transaction.copy_rows``).
    supports_copy: bool = False

    def __init__(self, schema: str = "agent_mem") -> None:
        self.schema = check_identifier(schema, "schema")
        self._cache: dict[str, str] = {}

    # -- identifiers ---------------------------------------------------------------
    def table(self, name: str) -> str:
        """The quoted, qualified name of one table of the shared schema."""
        raise NotImplementedError

    def quote(self, name: str) -> str:
        """Quote one identifier (already checked) for this backend."""
        raise NotImplementedError

    def render(self, template: str) -> str:
        """Turn a neutral query template into this backend's SQL text (cached)."""
        try:
            return self._cache[template]
        except KeyError:
            pass
        out: list[str] = []
        for literal, field, spec, conv in _FORMATTER.parse(template):
            out.append(self._literal(literal))
            if field is not None:
                if spec or conv:
                    raise ValueError(f"unsupported table reference {{{field}}} in query")
                if field in self.fragments:
                    out.append(self.fragments[field])
                else:
                    out.append(self.table(check_identifier(field, "table")))
        text = "".join(out)
        self._cache[template] = text
        return text

    def _literal(self, text: str) -> str:
        return text

    # -- values --------------------------------------------------------------------
    def unnest(self, columns: Sequence[tuple[str, str]]) -> str:
        """A relation ``m(ord, <columns>)`` built from the parameters :meth:`unnest_params`
        returns, so that many rows go to the server in one statement.

        ``columns`` are ``(name, type)`` pairs with ``type`` one of ``text``, ``bigint``,
        ``double``, ``json``. ``ord`` counts rows from 1.
        """
        raise NotImplementedError

    def unnest_params(
        self, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
    ) -> list[Any]:
        raise NotImplementedError

    def to_datetime(self, value: Any) -> datetime | None:
        """A timestamp column's value as an aware ``datetime``."""
        if value is None or isinstance(value, datetime):
            return value
        return datetime.fromisoformat(value)

    def starts_with(self, column: str) -> str:
        """A condition: ``column`` starts with the parameter(s) of :meth:`starts_with_params`,
        compared literally and case-sensitively, using the column's index."""
        raise NotImplementedError

    def starts_with_params(self, prefix: str) -> list[Any]:
        raise NotImplementedError

    def like_escape(self, prefix: str) -> str:
        r"""A LIKE pattern matching strings that start with ``prefix`` literally; use with
        ``LIKE ? ESCAPE '\'``.

        Example:
            >>> Dialect().like_escape("50%_off\\")
            '50\\%\\_off\\\\%'
        """
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return escaped + "%"

    # -- JSON, time and vectors (LangGraph checkpointer and store) --------------------
    def json_entries(self, expr: str, key: str, alias: str) -> str:
        """A FROM item ``alias(key, value)`` over the members of the JSON object at
        ``expr``'s top-level ``key`` (``expr``, ``key`` and ``alias`` are code, never user
        input); compare ``CAST(alias.value AS TEXT)``, which is the member's text for
        strings and its JSON text for numbers."""
        raise NotImplementedError

    def json_field_equals(self, column: str, key: str, value: Any) -> tuple[str, list[Any]] | None:
        """A predicate (and its parameters) that holds when JSON ``column``'s top-level
        ``key`` equals ``value``; may also hold for some values that differ (callers
        re-check exactly), ``None`` when the backend cannot express it for this key."""
        raise NotImplementedError

    def now_plus_minutes(self, expr: str) -> str:
        """The timestamp ``expr`` minutes from now (NULL when ``expr`` is NULL)."""
        raise NotImplementedError

    def from_datetime(self, value: datetime) -> Any:
        """A timestamp parameter as this backend stores it."""
        return value

    def vector_param(self, values: Sequence[float]) -> Any:
        """An embedding as a query parameter for a vector column."""
        raise NotImplementedError

    def cosine_distance(self, column: str) -> str | None:
        """SQL computing the cosine distance of vector ``column`` to one ``?`` parameter
        (a :meth:`vector_param`), or ``None`` when vectors are compared in Python."""
        return None


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
