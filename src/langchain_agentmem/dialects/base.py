"""What every dialect provides: template rendering, identifiers, value helpers (see the
package docstring for the template syntax)."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from .statements import One, Raw, Stmt

if TYPE_CHECKING:
    from .compose import Composable, Template

__all__ = ["IDENTIFIER", "Dialect", "Fragment", "ImportStage", "JsonSQL", "check_identifier"]


class ImportStage(NamedTuple):
    """Rows of one table loaded by ``COPY`` into a temporary table, then moved by one
    ``INSERT ... SELECT`` a batch (see :meth:`Dialect.import_stage`)."""

    create: Stmt
    """Creates the temporary table (dropped at commit)."""
    copy: Template
    """``COPY ... FROM STDIN`` of the archive's columns, in their order."""
    types: list[str]
    """The ``COPY`` types of those columns."""
    move: Stmt
    """Inserts the staged rows into the table (the policies and constraints apply)."""
    empty: Stmt
    """Empties the temporary table for the next batch."""
    text_kinds: frozenset[str]
    """Kinds whose values go as their text form (see :meth:`param`)."""

    def param(self, kind: str, value: Any) -> Any:
        """A decoded archive value of a column of ``kind`` as ``COPY`` takes it: a vector
        in ``text_kinds`` as ``[x,y,...]`` (``repr`` of each float: exact)."""
        if value is None or kind not in self.text_kinds:
            return value
        return "[" + ",".join(repr(float(v)) for v in value) + "]"


#: A SQL fragment (with ``?`` placeholders) and its parameters.
Fragment = tuple[str, list[Any]]
#: A path into a JSON value: object member names and array positions.
JsonPath = Sequence["str | int"]
#: See :meth:`Dialect.text_search`.
TextSearch = tuple[str, list[Any], str, list[Any], str, bool]

#: What a schema, table or collection name may look like: lower-case ASCII, digits and
#: underscores, starting with a letter or underscore, at most 63 characters (Postgres' limit).
#: Anchored with ``\Z`` (``$`` would also match before a final newline); match it with
#: ``fullmatch``.
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")

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
        >>> check_identifier("agent_mem\\n", "schema")
        Traceback (most recent call last):
        ...
        ValueError: invalid schema name 'agent_mem\\n': expected lower-case letters, digits and underscores, starting with a letter or underscore, at most 63 characters
    """
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"invalid {what} name {name!r}: expected lower-case letters, digits and "
            "underscores, starting with a letter or underscore, at most 63 characters"
        )
    return name


class JsonSQL:
    """How one backend reads the values inside one JSON column, for the filter compiler
    (:mod:`langchain_agentmem._search.filters`). Every method returns a SQL fragment with
    ``?`` placeholders and its parameters; a path parameter is what :meth:`path` returns.

    ``column`` is code (e.g. ``v.metadata``), never user input. ``exact``: the column holds
    the exact JSON text of a value (strings may hold NUL or lone surrogates, compared as
    :func:`~langchain_agentmem._encoding.json.clean_text` leaves them); otherwise it holds
    a search copy that is already clean (a Postgres ``jsonb``).
    """

    def __init__(self, column: str = "v.metadata", *, exact: bool = False) -> None:
        self.column = column
        self.exact = exact

    def path(self, parts: JsonPath) -> Any:
        """The parameter naming the value at ``parts``."""
        raise NotImplementedError

    def is_number(self, p: Any) -> Fragment:
        raise NotImplementedError

    def is_string(self, p: Any) -> Fragment:
        raise NotImplementedError

    def is_bool(self, p: Any, value: bool) -> Fragment:
        """The value is the JSON boolean ``value``."""
        raise NotImplementedError

    def is_null(self, p: Any) -> Fragment:
        raise NotImplementedError

    def is_object(self, p: Any) -> Fragment:
        raise NotImplementedError

    def is_array(self, p: Any) -> Fragment:
        raise NotImplementedError

    def exists(self, p: Any) -> Fragment:
        raise NotImplementedError

    def length(self, p: Any) -> Fragment:
        """The number of members of the object or array at ``p``."""
        raise NotImplementedError

    def compare_number(self, p: Any, op: str, value: int | float) -> Fragment:
        """The value is a number and ``number op value`` holds, compared exactly as
        decimals (``op`` one of ``= < <= > >=``; ``value`` finite, integers within 64
        bits; a float stands for its shortest decimal form, ``repr``)."""
        raise NotImplementedError

    def compare_string(self, p: Any, op: str, value: str) -> Fragment:
        """The value is a string and compares by code point (``value`` clean)."""
        raise NotImplementedError

    def like(self, p: Any, pattern: str, ignore_case: bool) -> Fragment:
        """The value is a string matching the LIKE ``pattern`` (``%``, ``_``, ``\\``)."""
        raise NotImplementedError

    def eq_hint(self, p: JsonPath, value: Any) -> Fragment | None:
        """An extra condition, implied by equality with the scalar ``value``, that an
        index of the column can serve; ``None`` when there is none."""
        return None


class Dialect:
    """What differs between backends. Pure: no I/O, no connections."""

    name: str = ""

    #: Fragments a template may name like a table: ``{now}``, ``{bparam}``, ``{for_update}``.
    fragments: dict[str, str] = {}
    #: Whether a ``WITH`` clause may hold INSERT/UPDATE ... RETURNING (one statement where
    #: otherwise two are needed).
    supports_dml_cte: bool = False
    #: Rows can be loaded by binary ``COPY`` (``Transaction.copy_rows``).
    supports_copy: bool = False
    #: A SELECT can lock the rows it reads until the transaction ends (see
    #: :meth:`row_lock`). Backends with it run writers concurrently, so a writer locks
    #: what it builds on; without it (SQLite) one writer runs at a time, which needs none.
    supports_row_locks: bool = False
    #: Each statement is a round trip to a server (Postgres), not a call within the
    #: process (SQLite): one statement reading a little more beats two reading less.
    round_trips: bool = True

    #: Keyword arguments of the driver's ``execute`` for :class:`~.statements.Raw` SQL.
    raw_options: dict[str, Any] = {}

    def __init__(self, schema: str = "agent_mem") -> None:
        self.schema = check_identifier(schema, "schema")
        self._cache: dict[Template, str] = {}

    # -- identifiers ---------------------------------------------------------------
    def table(self, name: str) -> str:
        """The quoted, qualified name of one table of the shared schema."""
        raise NotImplementedError

    def quote(self, name: str) -> str:
        """Quote one identifier (already checked) for this backend."""
        raise NotImplementedError

    def render(self, template: Template) -> str:
        """Turn a neutral query template, or a composition of
        :mod:`~langchain_agentmem.dialects.compose`, into this backend's SQL text (cached
        on the text, or on the composition's structure)."""
        try:
            return self._cache[template]
        except KeyError:
            pass
        if not isinstance(template, str):
            text = self.render(template.template(self))
            self._cache[template] = text
            return text
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

    def row_lock(self, strength: str) -> str:
        """The clause that ends a SELECT (or a sub-SELECT) locking the rows it returns:
        ``strength`` ``"key share"`` keeps them from being deleted, ``"update"`` from
        any change. Empty where :attr:`supports_row_locks` is false.

        Example:
            >>> Dialect().row_lock("update")
            ''
        """
        if strength not in ("key share", "update"):
            raise ValueError(f"row lock strength must be 'key share' or 'update', got {strength!r}")
        return ""

    # -- values --------------------------------------------------------------------
    def unnest(self, columns: Sequence[tuple[str, str]]) -> str:
        """A relation ``m(ord, <columns>)`` built from the parameters :meth:`unnest_params`
        returns, so that many rows go to the server in one statement.

        ``columns`` are ``(name, type)`` pairs with ``type`` one of ``text``, ``bigint``,
        ``double``, ``json``, and ``bytes`` on Postgres only (SQLite's JSON cannot carry
        bytes: insert such rows with ``VALUES`` there). ``ord`` counts rows from 1.
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

    # -- locks -----------------------------------------------------------------------
    def lock_keys(self, keys: Sequence[Sequence[str]]) -> Stmt | None:
        """A statement that serializes the writers of ``keys`` (each a tuple of strings,
        e.g. ``("graph_edges", user_id, graph, source, relation)``): it takes an exclusive
        lock on each key, held until the transaction ends, in one fixed order whatever the
        order of ``keys`` (so two writers locking overlapping sets cannot deadlock).

        ``None`` where write transactions are serialized already and no statement is
        needed (SQLite: every write transaction starts with ``BEGIN IMMEDIATE``, one writer
        at a time per database). Run it first in the write transaction, before reading
        the rows the write depends on.
        """
        raise NotImplementedError

    # -- JSON, time and vectors (LangGraph checkpointer and store) --------------------
    def json_sql(self, column: str, *, exact: bool = False) -> JsonSQL:
        """How this backend reads values inside the JSON ``column`` (see :class:`JsonSQL`)."""
        raise NotImplementedError

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

    def vector_param(self, values: Any) -> Any:
        """An embedding as a query parameter for a vector column."""
        raise NotImplementedError

    def lock_in_order(self, column: str) -> str | None:
        """The end of a ``SELECT`` that locks the rows it reads for update, in the byte
        order of ``column``; ``None`` where a writer holds the whole database (SQLite), so
        there is nothing to lock row by row."""
        return None

    def cosine_distance(self, column: str) -> str | None:
        """SQL computing the cosine distance of vector ``column`` to one ``?`` parameter
        (a :meth:`vector_param`), or ``None`` when vectors are compared in Python."""
        return self.vector_distance(column, "cosine")

    # -- the vector index (see langchain_agentmem._search.vector_index) ---------------
    #: The backend has an approximate (HNSW) index; without one every search is exact.
    supports_ann: bool = False

    def vector_distance(self, column: str, distance: str) -> str | None:
        """SQL computing ``distance`` (``cosine``, ``l2``, ``inner_product``) of vector
        ``column`` to one ``?`` parameter, or ``None`` when vectors are compared in
        Python (blobs of little-endian float32)."""
        return None

    # -- text arrays (events.tags) ------------------------------------------------------
    def text_array_param(self, values: Sequence[str]) -> Any:
        """A list of strings as the parameter of a text-array column (``events.tags``)."""
        raise NotImplementedError

    def text_array_value(self, value: Any) -> list[str]:
        """A text-array column's value as a list."""
        raise NotImplementedError

    def text_array_contains(self, column: str) -> str:
        """A condition (one ``?``, a :meth:`text_array_param`): the array ``column`` (code)
        holds every string of the parameter."""
        raise NotImplementedError

    def text_array_text(self, column: str) -> str:
        """The array ``column`` (code) as plain text, its strings joined by ``", "``."""
        raise NotImplementedError

    # -- schema ------------------------------------------------------------------------
    def migration_prologue(self) -> list[Raw]:
        """What runs first in every migration's transaction: the lock that serializes
        concurrent ``migrate()`` calls, and the ``schema_version`` table."""
        raise NotImplementedError

    def migration_script(self, script: str) -> list[Raw]:
        """The statements that apply one schema file."""
        raise NotImplementedError

    def table_exists(self, name: str) -> One:
        """A query whose one row is true when table ``name`` of the schema exists."""
        raise NotImplementedError

    def tables(self) -> Stmt:
        """A query listing the schema's tables (one name a row), the database's own
        internal tables left out."""
        raise NotImplementedError

    # -- monitoring (see langchain_agentmem.monitoring) ----------------------------------
    #: Index usage counters (scans, tuples read) are kept by the database (Postgres's
    #: ``pg_stat_user_indexes``); SQLite keeps none.
    supports_index_stats: bool = False

    def storage_probe(self) -> One | None:
        """A query of one row, true when :meth:`table_sizes` and :meth:`index_usage` can
        measure bytes (SQLite: built with the ``dbstat`` table); ``None``: always."""
        return None

    def table_sizes(self, tables: Sequence[str], measured: bool) -> Stmt:
        """Rows ``(table, table bytes, index bytes, total bytes)`` of the schema's tables
        named in ``tables`` (a parameter, never SQL text); bytes ``NULL`` unless
        ``measured``."""
        raise NotImplementedError

    def index_usage(self, tables: Sequence[str], measured: bool) -> Stmt:
        """Rows ``(table, index, scans, tuples read, tuples fetched, bytes)`` of the
        indexes of ``tables``; the counters ``NULL`` without :attr:`supports_index_stats`,
        bytes ``NULL`` unless ``measured``."""
        raise NotImplementedError

    def database_size(self) -> One:
        """A query of one row: the whole database's size in bytes."""
        raise NotImplementedError

    def seconds_between(self, start: str, end: str) -> str:
        """A SQL expression: seconds from timestamp column ``start`` to ``end`` (code)."""
        raise NotImplementedError

    # -- data lifecycle (export, import, forget; see langchain_agentmem._core.lifecycle) --
    def columns(self, name: str) -> Stmt:
        """A query listing the columns of table ``name`` in their order, one row each, in
        the form :meth:`column_kinds` reads."""
        raise NotImplementedError

    def column_kinds(
        self, rows: Sequence[Sequence[Any]], vector_column: str | None
    ) -> list[tuple[str, str, str]]:
        """``(name, kind, sql type)`` of each column :meth:`columns` listed, generated
        columns left out. ``kind`` is the portable kind of the archive: ``text``,
        ``integer``, ``real``, ``bool``, ``bytes``, ``json``, ``timestamp``, ``vector`` or
        ``text[]`` (``vector_column``: the catalog's embedding column)."""
        raise NotImplementedError

    def foreign_keys(self, name: str) -> Stmt:
        """A query of the foreign keys of table ``name``: rows ``(column, referenced
        table, referenced column)``."""
        raise NotImplementedError

    def export_expr(self, column: str, kind: str) -> str:
        """The SELECT expression reading ``column`` (checked) for the archive."""
        return self.quote(check_identifier(column, "column"))

    def export_value(self, kind: str, value: Any) -> Any:
        """A value read by :meth:`export_expr` as plain JSON data (bytes stay bytes)."""
        return value

    def import_placeholder(self, kind: str, sql_type: str) -> str:
        """The placeholder of a column of ``kind`` (and ``sql_type``) in an INSERT."""
        return "?"

    def import_value(self, kind: str, value: Any) -> Any:
        """An archive value, already in the Python form of ``kind`` (``datetime`` for a
        timestamp, a list of floats for a vector, ``bytes``), as a parameter."""
        return value

    def import_stage(self, name: str, columns: Sequence[tuple[str, str, str]]) -> ImportStage:
        """How rows of table ``name`` load by ``COPY`` (only where ``supports_copy``):
        ``columns`` are ``(name, kind, sql type)`` as :meth:`column_kinds` gives them."""
        raise NotImplementedError

    def purge_derived(self, derived: str) -> list[Raw]:
        """Statements that drop deleted rows' traces from the derived table ``derived``
        (an index the database keeps from another table) after a forget."""
        return []

    def views(self) -> Stmt:
        """A query listing the schema's views (one name a row)."""
        raise NotImplementedError

    def vector_dims_is(self, column: str, dims: int) -> str:
        """A condition (code, no parameters): vector ``column`` has ``dims`` dimensions."""
        raise NotImplementedError

    def row_handle(self, alias: str) -> str:
        """A column that names one row of table ``alias`` within a statement's
        transaction (the second step of a search whose distances are computed in
        Python)."""
        raise NotImplementedError

    def ann_version_query(self) -> str | None:
        """A query of one row and column: the ANN extension's version text."""
        return None

    def ann_cast(self, dims: int, version: tuple[int, ...]) -> str | None:
        """The type an HNSW index of ``dims`` dimensions is built over (pgvector
        ``version``), or ``None`` when such an index cannot be built."""
        return None

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
        """``CREATE INDEX IF NOT EXISTS`` of a partial HNSW index (``where`` is code)."""
        raise NotImplementedError

    def ann_order(self, column: str, cast: str, distance: str) -> str:
        """The ORDER BY expression (one ``?``: the query vector) the index serves."""
        raise NotImplementedError

    def ann_settings(
        self, ef_search: int, iterative: str | None, max_scan_tuples: int
    ) -> list[Any]:
        """Statements (``(sql, params)``) setting the index's search parameters for the
        rest of the transaction."""
        return []

    def relation_rows(self) -> str:
        """A scalar SQL expression (one ``?``: a relation's qualified name): its
        estimated row count, 0 when unknown."""
        return "(0 * length(?))"

    def qualified(self, name: str) -> str:
        """The schema-qualified, quoted name of relation ``name`` as text (to pass to
        :meth:`relation_rows`)."""
        return self.table(check_identifier(name, "relation"))

    # -- hybrid mode (see langchain_agentmem.hybrid) -------------------------------------
    def sync_columns(self, name: str) -> Stmt:
        """The columns of table ``name`` a sync moves (see the backends' forms)."""
        raise NotImplementedError

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
        """Statements (re)installing the outbox triggers of a cache's table (an update
        that changes only ``quiet`` columns queues nothing; with ``mark``, the parent key
        of a sequence table, rows above the parent's mark queue nothing; with
        ``versioned``, a column, inserts and updates set it to their version instead of
        queuing)."""
        raise NotImplementedError(f"{self.name} is not a hybrid-mode cache")

    def sync_local(self, value: Any, kind: str) -> Any:
        """A value read from Postgres as a cache stores it."""
        raise NotImplementedError(f"{self.name} is not a hybrid-mode cache")

    def sync_param_type(self, kind: str) -> str:
        """The :meth:`unnest` type a value of sync ``kind`` is sent to Postgres as."""
        raise NotImplementedError(f"{self.name} is not a hybrid-mode store")

    def sync_converter(self, kind: str) -> Any:
        """A function turning cache values into the parameters of a sync ``kind``."""
        raise NotImplementedError(f"{self.name} is not a hybrid-mode store")

    def sync_passes(self, kind: str) -> frozenset[type]:
        """The Python types of cache values :meth:`sync_converter` leaves as they are."""
        raise NotImplementedError(f"{self.name} is not a hybrid-mode remote")

    def sync_input(self, value: Any, kind: str) -> Any:
        """A cache value as Postgres reads it into a column of sync ``kind``."""
        raise NotImplementedError(f"{self.name} is not a hybrid-mode store")

    def sync_select(self, column: str, kind: str) -> Composable:
        """How a pull reads a column of sync ``kind``."""
        raise NotImplementedError(f"{self.name} is not a hybrid-mode store")

    def sync_copy(self, relation: Composable, columns: Sequence[str]) -> Composable:
        """A text ``COPY`` of ``columns`` into ``relation`` (a :class:`~.compose.Table`
        or the staging table :meth:`sync_stage` names), for
        :class:`~.statements.Copy` with :meth:`sync_copy_types`."""
        raise NotImplementedError(f"{self.name} is not a hybrid-mode store")

    def sync_copy_types(self, params: Sequence[str]) -> list[str]:
        """The ``Copy`` types of values sent as the :meth:`unnest` types ``params``."""
        raise NotImplementedError(f"{self.name} is not a hybrid-mode store")

    def sync_stage(self, name: str, columns: Sequence[tuple[str, str]]) -> tuple[Composable, Stmt]:
        """A staging table for rows of table ``name``: its name and the statement
        creating it (``columns``: ``(name, unnest type)``)."""
        raise NotImplementedError(f"{self.name} is not a hybrid-mode store")

    # -- tenant isolation (see langchain_agentmem.tenancy) -----------------------------
    #: Tables can carry row-level security policies and roles can be granted privileges
    #: (Postgres). Without it (SQLite: one file, one user) tenants are kept apart by the
    #: package's own ``user_id`` filters only.
    supports_row_security: bool = False

    #: The setting a transaction's tenant is written to, which the policies read.
    TENANT_SETTING = "agent_mem.user_id"
    #: The name of the one policy on every tenant table.
    TENANT_POLICY = "agentmem_tenant"
    #: The comment on the policy naming its current form: a policy without it (made by an
    #: older version) is altered to the current form by ``migrate()``.
    TENANT_POLICY_FORM = "agentmem tenant policy, form 2: the tenant read once a statement"

    def row_security_state(self) -> Stmt:
        """A query of the schema's tables: ``(name, enabled, forced, has the policy,
        the policy's comment)``."""
        raise NotImplementedError

    def row_security_ddl(self, changes: Sequence[tuple[str, str, Sequence[str]]]) -> Raw:
        """One script giving each ``(table, tenant column, missing)`` what it lacks of
        ``missing`` (``enable``, ``force``, ``policy``, ``policy form``): row-level security
        enabled, forced on the owner too, and the policy keeping the rows whose tenant
        column is the transaction's tenant (created, or altered to its current form)."""
        raise NotImplementedError

    def role_state(self, role: str) -> One:
        """A query of one row: ``(role exists, objects it owns)``."""
        raise NotImplementedError

    def app_role_ddl(
        self, role: str, password: str | None, exists: bool, grants: Sequence[tuple[str, str]]
    ) -> Raw:
        """One script creating (or, when ``exists``, updating) login role ``role``: no
        superuser, no ``BYPASSRLS``, no role or database creation; every privilege it
        held on the schema revoked, then ``grants`` (``(table, "SELECT, INSERT")``) and
        the schema's ``USAGE`` granted."""
        raise NotImplementedError

    def text_search(self, tokens: Sequence[str]) -> TextSearch:
        """Full-text search of ``{vectors}`` rows ``v``: ``(from items, their parameters,
        condition, its parameters, rank, whether a higher rank is better)``; query words
        are OR-ed."""
        raise NotImplementedError


# -- hybrid mode: moving rows between a SQLite cache and Postgres -----------------------

#: The Postgres types (``format_type`` text) sync reads and writes; anything else moves as
#: text.
_SYNC_KINDS = {
    "bytea": "bytes",
    "boolean": "bool",
    "vector": "vector",
    "halfvec": "vector",
    "json": "json",
    "jsonb": "json",
    "timestamp with time zone": "time",
    "timestamp without time zone": "time",
    "date": "time",
    "smallint": "int",
    "integer": "int",
    "bigint": "int",
    "real": "float",
    "double precision": "float",
    "numeric": "float",
}

_SYNC_TYPE = re.compile(r"^[a-z][a-z0-9 _.]*(\(\d+(,\d+)?\))?(\[\])?$")


def sync_kind(column_type: str) -> str:
    """How sync moves a value of the Postgres ``column_type`` (``format_type`` text):
    ``bytes``, ``bool``, ``vector``, ``array``, ``json``, ``time``, ``int``, ``float`` or
    ``text``.

    Example:
        >>> sync_kind("timestamp with time zone"), sync_kind("text[]"), sync_kind("vector(3)")
        ('time', 'array', 'vector')
    """
    if not _SYNC_TYPE.match(column_type):
        raise ValueError(f"unexpected column type {column_type!r} (expected a Postgres type name)")
    if column_type.endswith("[]"):
        return "array"
    return _SYNC_KINDS.get(column_type.split("(")[0].rsplit(".", 1)[-1], "text")
