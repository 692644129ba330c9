"""SQLite SQL text (stdlib sqlite3, JSON1, FTS5)."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from .base import Dialect, Fragment, JsonPath, JsonSQL, TextSearch, check_identifier
from .compose import SQL, Composable, Ident
from .statements import One, Raw, Stmt

_UNNEST = SQL("(SELECT key + 1 AS ord, {} FROM json_each(?)) AS m")


@functools.lru_cache(maxsize=256)
def _unnest(columns: tuple[tuple[str, str], ...]) -> str:
    # Memoized: a pure function of code-owned column lists, built on every batch write.
    parts = []
    for i, (name, type_) in enumerate(columns):
        if type_ == "bytes":
            raise ValueError(
                f"SQLite cannot unnest bytes (column {name!r}): JSON holds no bytes; "
                "insert such rows with VALUES"
            )
        # json_extract returns SQL values: text, integer, real, NULL.
        parts.append(SQL("json_extract(value, '$[" + str(i) + "]') AS ") + Ident(name))
    return _UNNEST.format(SQL(", ").join(parts)).template()


__all__ = ["SQLiteDialect", "SQLiteJson", "split_script"]


class SQLiteJson(JsonSQL):
    """A JSON text column; paths are ``$."a"[0]`` parameters. Exact JSON holding a NUL
    (``\\u0000``) is read as a copy where it is U+FFFD, as the clean operands hold it."""

    def __init__(self, column: str = "v.metadata", *, exact: bool = False) -> None:
        if exact:
            column = (
                f"(CASE WHEN instr({column}, '\\u0000') = 0 THEN {column} ELSE "
                f"replace(replace(replace({column}, '\\\\', char(1)), '\\u0000', '\\ufffd'), "
                f"char(1), '\\\\') END)"
            )
        super().__init__(column, exact=exact)

    def path(self, parts: JsonPath) -> Any:
        out = ["$"]
        for part in parts:
            out.append(f"[{part}]" if isinstance(part, int) else f'."{part}"')
        return "".join(out)

    def _type(self) -> str:
        return f"json_type({self.column}, ?)"

    def is_number(self, p: Any) -> Fragment:
        return f"{self._type()} IN ('integer', 'real')", [p]

    def is_string(self, p: Any) -> Fragment:
        return f"{self._type()} = 'text'", [p]

    def is_bool(self, p: Any, value: bool) -> Fragment:
        return f"{self._type()} = ?", [p, "true" if value else "false"]

    def is_null(self, p: Any) -> Fragment:
        return f"{self._type()} = 'null'", [p]

    def is_object(self, p: Any) -> Fragment:
        return f"{self._type()} = 'object'", [p]

    def is_array(self, p: Any) -> Fragment:
        return f"{self._type()} = 'array'", [p]

    def exists(self, p: Any) -> Fragment:
        return f"{self._type()} IS NOT NULL", [p]

    def length(self, p: Any) -> Fragment:
        return SQL("(SELECT count(*) FROM json_each({}, ?))").format(SQL(self.column)).template(), [
            p
        ]

    def compare_number(self, p: Any, op: str, value: int | float) -> Fragment:
        # SQLite reads an integer beyond 64 bits as the nearest REAL (json_type still
        # says 'integer'); where that REAL ties with the operand, the integer's JSON text
        # decides: sign, then number of digits, then digits.
        x = f"json_extract({self.column}, ?)"
        # A float stands for its shortest decimal form (as on Postgres, where numbers are
        # compared as decimals): 2.0**63 is 9223372036854776000.
        exact = str(int(Decimal(repr(value)))) if float(value).is_integer() else "0"
        lit = f"({self.column} -> ?)"
        digits = f"ltrim({lit}, '-')"
        cmp = (
            f"((CASE WHEN substr({lit}, 1, 1) = '-' THEN -1 ELSE 1 END) * "
            f"(CASE WHEN length({digits}) <> length(?) THEN "
            f"(CASE WHEN length({digits}) > length(?) THEN 1 ELSE -1 END) "
            f"WHEN {digits} > ? THEN 1 WHEN {digits} < ? THEN -1 ELSE 0 END))"
        )
        a = exact.lstrip("-")
        return (
            f"({self._type()} IN ('integer', 'real') AND (CASE WHEN typeof({x}) = 'real' "
            f"AND {self._type()} = 'integer' AND {x} = ? THEN {cmp} {op} 0 ELSE {x} {op} ? END))",
            [p, p, p, p, value, p, p, a, p, a, p, a, p, a, p, value],
        )

    def _string(self) -> str:
        return f"json_extract({self.column}, ?)"

    def compare_string(self, p: Any, op: str, value: str) -> Fragment:
        return f"({self._type()} = 'text' AND {self._string()} {op} ?)", [p, p, value]

    def like(self, p: Any, pattern: str, ignore_case: bool) -> Fragment:
        if ignore_case:  # SQLite's LIKE folds ASCII case; it has no other wildcards
            return (
                f"({self._type()} = 'text' AND {self._string()} LIKE ? ESCAPE '\\')",
                [p, p, pattern],
            )
        return f"({self._type()} = 'text' AND {self._string()} GLOB ?)", [
            p,
            p,
            _like_to_glob(pattern),
        ]


def _like_to_glob(pattern: str) -> str:
    out: list[str] = []
    it = iter(pattern)
    for ch in it:
        if ch == "\\":
            nxt = next(it, "\\")
            out.append(_glob_literal(nxt))
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        else:
            out.append(_glob_literal(ch))
    return "".join(out)


def _glob_literal(ch: str) -> str:
    return f"[{ch}]" if ch in "*?[" else ch


#: The archive's kind of each declared column type (an embedding BLOB is a ``vector``).
_KINDS = {"TEXT": "text", "INTEGER": "integer", "REAL": "real", "BLOB": "bytes"}


def micros(expr: str) -> str:
    """SQLite's microseconds since 1970 of the time ``expr`` (a column or ``'now'``), as
    the outbox versions count them.

    Example:
        >>> micros("'now'")
        "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
    """
    return f"CAST((julianday({expr}) - 2440587.5) * 86400000000.0 AS INTEGER)"


class SQLiteDialect(Dialect):
    """SQLite (stdlib ``sqlite3``). One database: the schema name is not used."""

    name = "sqlite"
    round_trips = False  # the database runs in the process
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
        return _unnest(tuple(columns))

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

    # -- data lifecycle ------------------------------------------------------------------
    def columns(self, name: str) -> Stmt:
        # hidden: 0 a stored column, 1 hidden (virtual tables), 2 and 3 generated.
        return Stmt(
            "SELECT name, upper(type), hidden FROM pragma_table_xinfo(?) ORDER BY cid",
            [check_identifier(name, "table")],
            fetch=True,
        )

    def column_kinds(
        self, rows: Sequence[Sequence[Any]], vector_column: str | None
    ) -> list[tuple[str, str, str]]:
        out = []
        for name, type_, hidden in rows:
            if hidden:
                continue
            if name == vector_column:
                kind = "vector"
            else:
                kind = _KINDS.get(type_, "")
                if not kind:
                    raise ValueError(
                        f"column {name!r} has type {type_!r}, which the archive does not know: "
                        f"expected one of {', '.join(sorted(_KINDS))}"
                    )
            out.append((str(name), kind, str(type_)))
        return out

    def foreign_keys(self, name: str) -> Stmt:
        return Stmt(
            'SELECT "from", "table", "to" FROM pragma_foreign_key_list(?) ORDER BY 1',
            [check_identifier(name, "table")],
            fetch=True,
        )

    def export_value(self, kind: str, value: Any) -> Any:
        if value is not None and kind == "vector":
            from array import array

            vec = array("f")
            vec.frombytes(value)
            return vec.tolist()
        return value

    def import_value(self, kind: str, value: Any) -> Any:
        if value is not None and kind == "vector":
            return self.vector_param(value)
        return value

    def purge_derived(self, derived: str) -> list[Raw]:
        # An FTS5 index keeps deleted terms in older segments until they are merged.
        optimize = SQL("INSERT INTO {t} ({t}) VALUES ('optimize')").format(t=Ident(derived))
        return [Raw(optimize.template(self))]

    def json_sql(self, column: str, *, exact: bool = False) -> JsonSQL:
        return SQLiteJson(column, exact=exact)

    def vector_dims_is(self, column: str, dims: int) -> str:
        return f"length({check_identifier(column, 'column')}) = {4 * int(dims)}"

    def row_handle(self, alias: str) -> str:
        return f"{check_identifier(alias, 'alias')}.rowid"

    def text_search(self, tokens: Sequence[str]) -> TextSearch:
        match = " OR ".join(f'"{t}"' for t in tokens)
        return (
            " JOIN {vectors_fts} ON {vectors_fts}.rowid = v.rowid",
            [],
            "{vectors_fts} MATCH ?",
            [match],
            "bm25({vectors_fts})",
            False,
        )

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

    def vector_param(self, values: Any) -> Any:
        from array import array

        if hasattr(values, "astype"):  # a numpy array
            return values.astype("<f4").tobytes()
        return array("f", values).tobytes()

    def text_array_param(self, values: Sequence[str]) -> Any:
        import json

        # Plain strings (no NUL, no lone surrogate: checked by the caller) need no escapes.
        return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))

    def text_array_value(self, value: Any) -> list[str]:
        from .._encoding.json import loads

        return list(loads(value)) if value else []

    def text_array_contains(self, column: str) -> str:
        return (
            SQL(
                "NOT EXISTS (SELECT 1 FROM json_each(?) w WHERE w.value NOT IN "
                "(SELECT t.value FROM json_each({}) t))"
            )
            .format(SQL(column))
            .template()
        )

    def text_array_text(self, column: str) -> str:
        return (
            SQL("(SELECT group_concat(t.value, ', ') FROM json_each({}) t)")
            .format(SQL(column))
            .template()
        )

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

    def views(self) -> Stmt:
        return Stmt("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name", fetch=True)

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

    # -- monitoring ----------------------------------------------------------------------
    def storage_probe(self) -> One | None:
        return One(
            "SELECT count(*) > 0 FROM pragma_compile_options "
            "WHERE compile_options = 'ENABLE_DBSTAT_VTAB'"
        )

    def table_sizes(self, tables: Sequence[str], measured: bool) -> Stmt:
        names = [self.text_array_param(tables)]
        if not measured:
            return Stmt(
                "SELECT name, NULL, NULL, NULL FROM sqlite_master WHERE type = 'table' "
                "AND name IN (SELECT value FROM json_each(?)) ORDER BY name",
                names,
                fetch=True,
            )
        # One pass over the file (dbstat outermost: CROSS JOIN keeps that order), each
        # b-tree given to its table; a virtual (FTS5) table owns its shadow tables' pages.
        return Stmt(
            "SELECT owner, sum(CASE WHEN kind = 'index' THEN 0 ELSE bytes END), "
            "sum(CASE WHEN kind = 'index' THEN bytes ELSE 0 END), sum(bytes) FROM ("
            "SELECT coalesce((SELECT v.name FROM sqlite_master v WHERE v.type = 'table' "
            "AND v.sql LIKE 'CREATE VIRTUAL TABLE%' AND m.tbl_name IN (v.name || '_data', "
            "v.name || '_idx', v.name || '_content', v.name || '_docsize', v.name || '_config')), "
            "m.tbl_name) AS owner, m.type AS kind, d.pgsize AS bytes "
            "FROM dbstat d CROSS JOIN sqlite_master m ON m.name = d.name WHERE d.aggregate = 1"
            ") WHERE owner IN (SELECT value FROM json_each(?)) "
            "GROUP BY owner ORDER BY sum(bytes) DESC, owner",
            names,
            fetch=True,
        )

    def index_usage(self, tables: Sequence[str], measured: bool) -> Stmt:
        names = [self.text_array_param(tables)]
        if not measured:
            return Stmt(
                "SELECT tbl_name, name, NULL, NULL, NULL, NULL FROM sqlite_master "
                "WHERE type = 'index' AND tbl_name IN (SELECT value FROM json_each(?)) "
                "ORDER BY tbl_name, name",
                names,
                fetch=True,
            )
        return Stmt(
            "SELECT m.tbl_name, m.name, NULL, NULL, NULL, d.pgsize "
            "FROM dbstat d CROSS JOIN sqlite_master m ON m.name = d.name "
            "WHERE d.aggregate = 1 AND m.type = 'index' "
            "AND m.tbl_name IN (SELECT value FROM json_each(?)) ORDER BY m.tbl_name, m.name",
            names,
            fetch=True,
        )

    def database_size(self) -> One:
        return One("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")

    def seconds_between(self, start: str, end: str) -> str:
        return f"((julianday({end}) - julianday({start})) * 86400.0)"

    # -- hybrid mode (see langchain_agentmem.hybrid) -------------------------------------
    def sync_columns(self, name: str) -> Stmt:
        """Column names of table ``name``, in order."""
        return Stmt(
            "SELECT name FROM pragma_table_info(?) ORDER BY cid",
            [check_identifier(name, "table")],
            fetch=True,
        )

    #: The version a trigger gives an outbox row: a hybrid logical clock in microseconds
    #: since 1970 that never goes back (the wall clock, else one more than the last).
    _VERSION = SQL(
        "max({}, (SELECT value FROM sync_state WHERE key = 'clock') + 1, "
        "coalesce((SELECT version FROM sync_outbox ORDER BY seq DESC LIMIT 1), 0) + 1)"
    ).format(SQL(micros("'now'")))

    def sync_triggers(
        self,
        name: str,
        primary_key: Sequence[str],
        columns: Sequence[str],
        *,
        install: bool,
        quiet: Sequence[str] = (),
        mark: Sequence[str] = (),
        versioned: str | None = None,
    ) -> list[Raw]:
        """Drop, then (with ``install``) create the outbox triggers of table ``name``:
        after every insert, update and delete, one ``sync_outbox`` row (the table, the op,
        the tenant, the session if the table has one, the primary key as a JSON array and
        a version) in the writer's transaction; nothing while ``sync_state.muted`` is 1.

        An update that changes no column queues nothing (an upsert of the value a row
        already has), nor does one that changes only ``quiet`` columns (a sequence parent's
        counter and activity time, which every append moves: the sync delivers them with
        the rows appended).

        With ``mark`` (a sequence table: the key columns of its parent), a row whose seq
        (the last key column) is above its parent's ``sync_marks`` row queues nothing at
        all: the sync turns such rows into outbox rows itself (see ``hybrid.py``).

        With ``versioned`` (a column of the cache's own, e.g. ``kv.sync_version``), an
        insert or update queues no outbox row either: it sets the row's ``versioned``
        column to the version instead (never below the row's last one plus one), and the
        sync queues the rows whose version is above the table's mark. A delete still
        queues its row (the tombstone), versioned above the row's last version.

        Example:
            >>> raws = SQLiteDialect().sync_triggers(
            ...     "sessions", ["user_id", "session_id"], ["user_id", "session_id", "last_seq"],
            ...     install=True, quiet=["last_seq"])
            >>> 'NOT (OLD."user_id" IS NEW."user_id" AND OLD."session_id" IS NEW."session_id")' in raws[-2].sql
            True
        """
        table = check_identifier(name, "table")
        pk = [Ident(c) for c in primary_key]
        loud = [Ident(c) for c in columns if c not in set(quiet) and c != versioned]
        out = [
            Raw(self.render(_DROP_TRIGGER.format(Ident(f"sync_{table}_{op}"))))
            for op in ("i", "u", "k", "d")
        ]
        if not install:
            return out
        # The table's name as a string literal: a checked identifier (lower-case letters,
        # digits, underscores) cannot hold a quote.
        name_literal = SQL("'" + table + "'")
        has_session = "session_id" in columns

        def row(op: str, r: str) -> Composable:
            ref = SQL(r)
            return _OUTBOX_ROW.format(
                table=name_literal,
                op=SQL("'" + op + "'"),  # one of i, u, d (the code's own)
                r=ref,
                session=ref + SQL(".session_id") if has_session else SQL("NULL"),
                key=_COMMA.join(ref + SQL(".") + c for c in pk),
                version=self._VERSION,
            )

        def same(cols: Sequence[Ident]) -> Composable:
            return SQL(" AND ").join(SQL("OLD.{0} IS NEW.{0}").format(c) for c in cols)

        # An update that leaves every loud column as it was (an upsert of the value a row
        # already has) changes nothing Postgres needs: it queues nothing.
        changed: Composable = SQL(" AND NOT ({})").format(same(loud)) if loud else SQL("")
        columns_of: Composable = SQL("")
        if (quiet or versioned) and loud:
            # Only an update that sets a loud column can change one: naming them keeps
            # SQLite from running the trigger at all for an update of quiet columns only
            # (every append's counter update), or of the row's version alone (the update
            # of ``versioned`` below).
            columns_of = SQL(" OF ") + _COMMA.join(loud)

        def marked(r: str) -> Composable:
            """The row is at or below its parent's mark (never true without a mark)."""
            if not mark:
                return SQL("")
            ref = SQL(r)
            return _MARKED.format(
                seq=ref + SQL(".") + pk[-1],
                where=SQL(" AND ").join(
                    SQL("m.{0} = ").format(Ident(c)) + ref + SQL(".") + Ident(c) for c in mark
                ),
            )

        def stamp(floor: str | None) -> Composable:
            """Set the NEW row's version (in place of an outbox row)."""
            assert versioned is not None
            version: Composable = self._VERSION
            if floor is not None:
                # An update: above the row's own last version (the versions of this key
                # never go back, which is all last-writer-wins compares) and the clock
                # (above every version queued); the outbox's last row is not looked up.
                version = _ROW_VERSION.format(
                    SQL(micros("'now'")), SQL(floor) + SQL(".") + Ident(versioned)
                )
            return _STAMP_ROW.format(
                table=Ident(table),
                column=Ident(versioned),
                version=version,
                where=SQL(" AND ").join(SQL("{0} = NEW.{0}").format(c) for c in pk),
            )

        def tombstone() -> Composable:
            """The delete's outbox row, versioned above the row's own version."""
            assert versioned is not None
            return _OUTBOX_ROW.format(
                table=name_literal,
                op=SQL("'d'"),
                r=SQL("OLD"),
                session=SQL("OLD.session_id") if has_session else SQL("NULL"),
                key=_COMMA.join(SQL("OLD.") + c for c in pk),
                version=SQL("max({}, coalesce(OLD.{}, 0) + 1)").format(
                    self._VERSION, Ident(versioned)
                ),
            )

        fields: dict[str, Composable] = {"table": Ident(table), "muted": _MUTED}
        creates = [
            _TRIGGER_INSERT.format(
                trigger=Ident(f"sync_{table}_i"),
                row=stamp(None) if versioned else row("i", "NEW"),
                marked=marked("NEW"),
                **fields,
            ),
            # An update that changes the key also deletes the old key: a trigger of its
            # own, which updates that set no key column (upserts) never run.
            _TRIGGER_KEY.format(
                trigger=Ident(f"sync_{table}_k"),
                key_columns=_COMMA.join(pk),
                same=same(pk),
                row=tombstone() if versioned else row("d", "OLD"),
                marked=marked("OLD"),
                **fields,
            ),
            _TRIGGER_UPDATE.format(
                trigger=Ident(f"sync_{table}_u"),
                of=columns_of,
                changed=changed,
                row=stamp("OLD") if versioned else row("u", "NEW"),
                marked=marked("NEW"),
                **fields,
            ),
            _TRIGGER_DELETE.format(
                trigger=Ident(f"sync_{table}_d"),
                row=tombstone() if versioned else row("d", "OLD"),
                marked=marked("OLD"),
                **fields,
            ),
        ]
        out += [Raw(self.render(c)) for c in creates]
        return out

    def sync_local(self, value: Any, kind: str) -> Any:
        """A value read from Postgres (see ``PostgresDialect.sync_select``) as this cache
        stores it: timestamps as ISO text, booleans as 0/1, vectors as float32 blobs,
        JSON and arrays (as JSON) as text.

        Example:
            >>> SQLiteDialect().sync_local("[1,2]", "vector")
            b'\\x00\\x00\\x80?\\x00\\x00\\x00@'
        """
        if value is None:
            return None
        if kind == "time" and isinstance(value, datetime):
            return self.from_datetime(value)
        if kind == "bool":
            return int(bool(value))
        if kind == "vector":
            return self.vector_param([float(v) for v in value.strip("[]").split(",") if v])
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, memoryview):
            return bytes(value)
        return value


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


_COMMA = SQL(", ")
_DROP_TRIGGER = SQL("DROP TRIGGER IF EXISTS {}")
_MUTED = SQL("(SELECT value FROM sync_state WHERE key = 'muted') = 0")
_OUTBOX_ROW = SQL(
    "INSERT INTO sync_outbox (table_name, op, user_id, session_id, pk, version) "
    "VALUES ({table}, {op}, {r}.user_id, {session}, json_array({key}), {version});"
)
_ROW_VERSION = SQL(
    "max({}, (SELECT value FROM sync_state WHERE key = 'clock') + 1, coalesce({}, 0) + 1)"
)
_STAMP_ROW = SQL("UPDATE {table} SET {column} = {version} WHERE {where};")
# First in a trigger's WHEN: false for every append (SQLite then skips the muted lookup).
_MARKED = SQL("{seq} <= (SELECT m.seq FROM sync_marks m WHERE {where}) AND ")
_TRIGGER_INSERT = SQL(
    "CREATE TRIGGER {trigger} AFTER INSERT ON {table} WHEN {marked}{muted} BEGIN {row} END"
)
_TRIGGER_KEY = SQL(
    "CREATE TRIGGER {trigger} AFTER UPDATE OF {key_columns} ON {table} WHEN {marked}{muted} "
    "AND NOT ({same}) BEGIN {row} END"
)
_TRIGGER_UPDATE = SQL(
    "CREATE TRIGGER {trigger} AFTER UPDATE{of} ON {table} WHEN {marked}{muted}{changed} "
    "BEGIN {row} END"
)
_TRIGGER_DELETE = SQL(
    "CREATE TRIGGER {trigger} AFTER DELETE ON {table} WHEN {marked}{muted} BEGIN {row} END"
)
