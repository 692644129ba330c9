"""The engine: the only thing in this package that opens connections.

``connect(url)`` returns an :class:`Engine` holding a :class:`~.dialects.Dialect`, a sync
pool and an async pool (each opened on first use), and the one place where a transaction
starts for a tenant (``user_id``): :meth:`Engine.transaction` and
:meth:`Engine.atransaction`. Memory classes build their queries with no I/O and execute
them through those two context managers.

Example:
    >>> engine = connect("sqlite://")          # in-memory, transient
    >>> engine.migrate()                       # doctest: +ELLIPSIS
    [...]
    >>> with engine.transaction("alice") as tx:
    ...     tx.fetchone("SELECT count(*) FROM {events} WHERE user_id = ?", ("alice",))
    (0,)
    >>> engine.close()
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import parse_qsl, urlencode, urlsplit

from typing_extensions import Unpack

from ._backends.base import (
    AsyncTransaction,
    Backend,
    NotMigratedError,
    PoolConfig,
    Transaction,
    redact,
)
from ._backends.postgres import PostgresBackend
from ._backends.sqlite import SQLiteBackend
from ._core import lifecycle
from ._core.migrations import migrate_plan, version_plan
from ._core.plan import Plan, arun, dual, run
from ._core.tenancy import TenantRequiredError
from ._encoding.keys import encode_key
from .dialects import Dialect, PostgresDialect, SQLiteDialect, check_identifier

__all__ = [
    "AsyncTransaction",
    "Engine",
    "NotMigratedError",
    "PoolConfig",
    "TenantRequiredError",
    "Transaction",
    "EngineLike",
    "as_engine",
    "conn_string_url",
    "connect",
    "connection_url",
    "default_sqlite_path",
]

Params = Sequence[Any]


def default_sqlite_path() -> Path:
    """Where the SQLite database lives when no URL is given: ``$AGENTMEM_HOME`` or
    ``~/.local/share/agentmem``, file ``memory.sqlite3``."""
    home = os.environ.get("AGENTMEM_HOME")
    base = Path(home) if home else Path.home() / ".local" / "share" / "agentmem"
    return base / "memory.sqlite3"


def connect(
    url: str | None = None,
    *,
    schema: str = "agent_mem",
    metrics: bool = False,
    **config: Unpack[PoolConfig],
) -> Engine:
    """Return an :class:`Engine` for ``url``; nothing is opened until first use.

    Args:
        url: ``postgresql://...`` (psycopg 3; also ``postgres://`` and the SQLAlchemy
            spellings ``postgresql+psycopg://`` / ``postgres+psycopg://``),
            ``sqlite:///path/to/file.db``, or
            ``sqlite://`` for a transient in-memory database. When omitted, the
            ``AGENTMEM_URL`` environment variable, else a local SQLite file (see
            :func:`default_sqlite_path`), announced in one line on stderr.
        schema: Postgres schema holding the tables (default ``agent_mem``).
        metrics: record every operation of every memory class (operation, memory type,
            latency, results count, error) in ``agent_memory_metrics``, one row each, in a
            transaction of its own after the operation (default off). See
            :mod:`langchain_agentmem._core.metrics`.
        **config: see :class:`PoolConfig` (typed: an unknown keyword such as
            ``max_pool=3`` fails type-checking, and raises ``TypeError`` at run time).

    Example:
        >>> engine = connect("sqlite://")
        >>> engine.dialect.name
        'sqlite'
        >>> connect("mysql://x")
        Traceback (most recent call last):
        ...
        ValueError: unsupported database URL 'mysql://x': expected postgresql://..., sqlite:///path/to/file.db or sqlite:// (in memory)
    """
    unknown = set(config) - set(PoolConfig.__annotations__)
    if unknown:
        raise TypeError(f"unknown connect() option(s): {', '.join(sorted(unknown))}")
    if url is None:
        url = os.environ.get("AGENTMEM_URL") or None
    if url is None:
        path = default_sqlite_path()
        print(f"agentmem: no URL given, using SQLite at {path}", file=sys.stderr)
        url = "sqlite:///" + str(path)
    if not isinstance(metrics, bool):
        raise TypeError(f"metrics must be True or False, got {metrics!r}")
    return Engine(url, schema=schema, config=PoolConfig(**config), metrics=metrics)


#: Query parameters of a ``sqlite:///`` URL, passed to SQLite as URI parameters.
SQLITE_PARAMETERS = {
    "mode": ("ro", "rw", "rwc"),
    "immutable": ("0", "1"),
    "nolock": ("0", "1"),
    "cache": ("shared", "private"),
}


def _parse_sqlite(url: str) -> tuple[str | None, dict[str, str]]:
    """The file path of a sqlite URL (None for in-memory) and its query parameters.

    Example:
        >>> _parse_sqlite("sqlite:///d.db?mode=ro")
        ('d.db', {'mode': 'ro'})
        >>> _parse_sqlite("sqlite:///")
        Traceback (most recent call last):
        ...
        ValueError: invalid SQLite URL 'sqlite:///': no file path after sqlite:/// (use sqlite:// for in memory)
    """
    rest = url[len("sqlite:") :]
    rest, _, query = rest.partition("?")
    if rest in ("", "//", "///:memory:", "//:memory:") and not query:
        return None, {}
    if not rest.startswith("///"):
        raise ValueError(
            f"invalid SQLite URL {url!r}: expected sqlite:///relative.db, "
            "sqlite:////absolute/path.db or sqlite:// (in memory)"
        )
    path = rest[3:]
    if not path or path == ":memory:":
        raise ValueError(
            f"invalid SQLite URL {url!r}: no file path after sqlite:/// (use sqlite:// for in memory)"
        )
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        allowed = SQLITE_PARAMETERS.get(name)
        if allowed is None or value not in allowed:
            expected = "; ".join(f"{k}={'|'.join(v)}" for k, v in SQLITE_PARAMETERS.items())
            raise ValueError(
                f"unsupported SQLite URL parameter {name}={value!r} in {url!r}: expected {expected}"
            )
        params[name] = value
    return path, params


#: Postgres URL schemes; ``+psycopg`` is the SQLAlchemy spelling (langchain-postgres).
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgres+psycopg")


def _libpq_url(url: str, scheme: str) -> str:
    """``url`` as libpq reads it: a SQLAlchemy ``+psycopg`` scheme without its driver."""
    if "+" not in scheme:
        return url
    return "postgresql" + url[len(scheme) :]


def conn_string_url(conn_string: str) -> str:
    """The :func:`connect` URL for a connection string as LangGraph's savers take it.

    URLs pass through; SqliteSaver's ``":memory:"`` is in-memory SQLite and a bare file
    path a SQLite file.

    Example:
        >>> conn_string_url(":memory:")
        'sqlite://'
        >>> conn_string_url("checkpoints.sqlite")
        'sqlite:///checkpoints.sqlite'
        >>> conn_string_url("/tmp/x.db")
        'sqlite:////tmp/x.db'
        >>> conn_string_url("postgresql+psycopg://u@h/db")
        'postgresql+psycopg://u@h/db'
        >>> conn_string_url("host=h dbname=db")
        Traceback (most recent call last):
        ...
        ValueError: libpq key=value connection strings are not supported: expected a URL (postgresql://user:password@host:port/dbname), sqlite:///path.db, a file path or ':memory:'
    """
    if not isinstance(conn_string, str) or not conn_string.strip():
        raise ValueError(
            f"expected a connection string (a database URL, a file path or ':memory:'), "
            f"got {conn_string!r}"
        )
    if conn_string == ":memory:":
        return "sqlite://"
    if "://" in conn_string or conn_string.startswith("sqlite:"):
        return conn_string
    if re.match(r"\s*\w+\s*=", conn_string):
        raise ValueError(
            "libpq key=value connection strings are not supported: expected a URL "
            "(postgresql://user:password@host:port/dbname), sqlite:///path.db, a file path or "
            "':memory:'"
        )
    return "sqlite:///" + conn_string


def connection_url(source: Any) -> str | None:
    """The URL of the database a psycopg connection or pool (sync or async) or a
    ``sqlite3`` connection (to a file) is connected to, password included; ``None`` if
    ``source`` is none of these.

    Example:
        >>> from psycopg_pool import ConnectionPool
        >>> pool = ConnectionPool("postgresql://me:pw@db:5433/app", open=False)
        >>> redact(connection_url(pool))
        'postgresql://?dbname=app&host=db&password=***&port=5433&user=me'
        >>> connection_url("not a pool") is None
        True
    """
    import sqlite3

    from psycopg.conninfo import conninfo_to_dict

    if isinstance(source, sqlite3.Connection):
        rows = source.execute("PRAGMA database_list").fetchall()
        path = next((r[2] for r in rows if r[1] == "main"), "")
        if not path:
            raise ValueError(
                "expected a sqlite3 connection to a file, got one to an in-memory database "
                "(it cannot be shared: pass the file's path or 'sqlite://')"
            )
        return "sqlite:///" + path
    params: dict[str, Any]
    info = getattr(source, "info", None)
    if info is not None and hasattr(info, "get_parameters") and hasattr(source, "pgconn"):
        params = conninfo_to_dict(info.dsn)
        if info.password:
            params["password"] = info.password
    elif isinstance(getattr(source, "conninfo", None), str) and hasattr(source, "getconn"):
        params = conninfo_to_dict(source.conninfo, **(getattr(source, "kwargs", None) or {}))
    else:
        return None
    keep = {k: str(v) for k, v in params.items() if v is not None and k not in _SESSION_KEYS}
    return "postgresql://?" + urlencode(sorted(keep.items()))


#: Connection keywords the engine sets itself (psycopg's, not libpq's).
_SESSION_KEYS = frozenset({"autocommit", "prepare_threshold", "row_factory", "cursor_factory"})


def as_engine(source: EngineLike, *, schema: str = "agent_mem") -> Engine:
    """The engine a memory class works on: an :class:`Engine` as it is; a URL or connection
    string (as :func:`connect` and LangGraph's ``from_conn_string`` take them) opened as a
    new engine; a psycopg connection or pool (sync or async), or a ``sqlite3`` connection
    to a file: a new engine on the same database (its own pool; yours is neither used nor
    closed).

    Example:
        >>> as_engine(":memory:").dialect.name
        'sqlite'
        >>> as_engine(3)
        Traceback (most recent call last):
        ...
        TypeError: expected an Engine from langchain_agentmem.connect(), a database URL or a psycopg or sqlite3 connection or pool, got int
    """
    if isinstance(source, Engine):
        return source
    if isinstance(source, str):
        return connect(conn_string_url(source), schema=schema)
    url = connection_url(source)
    if url is not None:
        return connect(url, schema=schema)
    raise TypeError(
        "expected an Engine from langchain_agentmem.connect(), a database URL or a psycopg "
        f"or sqlite3 connection or pool, got {type(source).__name__}"
    )


class Engine:
    """Pools, the dialect, migrations and the tenant transaction. See :func:`connect`."""

    def __init__(
        self,
        url: str,
        *,
        schema: str = "agent_mem",
        config: PoolConfig | None = None,
        metrics: bool = False,
    ) -> None:
        self.url = url
        #: Whether operations are recorded in ``agent_memory_metrics`` (see :func:`connect`).
        self.metrics = metrics
        self.config: PoolConfig = config or PoolConfig()
        scheme = urlsplit(url).scheme
        self.dialect: Dialect
        if scheme in _POSTGRES_SCHEMES:
            self.dialect = PostgresDialect(check_identifier(schema, "schema"))
            self._backend: Backend = PostgresBackend(_libpq_url(url, scheme), self.config)
        elif scheme == "sqlite":
            self.dialect = SQLiteDialect(check_identifier(schema, "schema"))
            path, params = _parse_sqlite(url)
            self._backend = SQLiteBackend(path, self.config, params)
        else:
            raise ValueError(
                f"unsupported database URL {redact(url)!r}: expected postgresql://..., "
                "sqlite:///path/to/file.db or sqlite:// (in memory)"
            )

    def __repr__(self) -> str:
        return f"Engine({redact(self.url)!r}, schema={self.dialect.schema!r})"

    @property
    def schema(self) -> str:
        return self.dialect.schema

    # -- transactions ---------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(
        self,
        user_id: str | None = None,
        *,
        readonly: bool = False,
        pipeline: bool = False,
        single: bool = False,
        durable: bool = True,
        every_tenant: bool = False,
    ) -> Iterator[Transaction]:
        """Run statements for one tenant in one transaction (committed on success).

        Args:
            user_id: the tenant; with ``row_level_security`` it is set as
                ``agent_mem.user_id`` for the transaction.
            readonly: the block only reads. On Postgres its statements then run without
                an explicit transaction (one round trip each); on SQLite it does not take
                the write lock.
            pipeline: Postgres: send the statements in pipeline mode (one round trip for
                a block of writes). Ignored on SQLite.
            single: the block runs one statement, atomic by itself: on Postgres it runs
                without BEGIN/COMMIT (one round trip instead of three).
            durable: ``False``: on Postgres the commit returns before the server has
                flushed it to disk (``synchronous_commit = off`` for this transaction
                only). A crash of the server may then lose this transaction (and other
                such ones of the last moment), never one committed durably after it, and
                never leaves the data inconsistent. On SQLite every commit is already
                like this (WAL with ``synchronous=NORMAL``).
            every_tenant: the block reads every tenant's rows (maintenance). With
                ``row_level_security`` the policies would hide them all, so the engine
                raises :class:`TenantRequiredError` instead.
        """
        self._check_tenant(every_tenant)
        with self._backend.transaction(
            self.dialect, user_id, readonly or single, pipeline, write=not readonly, durable=durable
        ) as tx:
            yield tx

    @contextlib.asynccontextmanager
    async def atransaction(
        self,
        user_id: str | None = None,
        *,
        readonly: bool = False,
        pipeline: bool = False,
        single: bool = False,
        durable: bool = True,
        every_tenant: bool = False,
    ) -> AsyncIterator[AsyncTransaction]:
        """Async form of :meth:`transaction`."""
        self._check_tenant(every_tenant)
        async with self._backend.atransaction(
            self.dialect, user_id, readonly or single, pipeline, write=not readonly, durable=durable
        ) as tx:
            yield tx

    @property
    def row_level_security(self) -> bool:
        """Whether every transaction sets its tenant for row-level security."""
        return bool(self.config.get("row_level_security"))

    def _check_tenant(self, every_tenant: bool) -> None:
        if every_tenant and self.row_level_security:
            raise TenantRequiredError(
                "this operation reads every tenant's rows, which row-level security hides "
                "from an engine with row_level_security=True: run it on an engine without "
                "row_level_security, connected as a superuser or a role with BYPASSRLS (the "
                "tables' owner does not bypass it: the tables FORCE row-level security), or "
                "name the tenants (e.g. agentmem prune --user ...)"
            )

    # -- migrations -----------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply the schema files not applied yet; return their versions. Idempotent and
        safe to call from several processes at once."""
        applied = run(self, None, migrate_plan(self.dialect))
        if applied:
            self._backend.after_migrate()
        return applied

    async def amigrate(self) -> list[int]:
        """Async form of :meth:`migrate`."""
        applied = await arun(self, None, migrate_plan(self.dialect))
        if applied:
            await self._backend.aafter_migrate()
        return applied

    def schema_version(self) -> int:
        """The highest schema version applied (0 for an empty database)."""
        return run(self, None, version_plan(self.dialect))

    async def aschema_version(self) -> int:
        """Async form of :meth:`schema_version`."""
        return await arun(self, None, version_plan(self.dialect))

    # -- one user's data: export, import, forget ---------------------------------------
    @property
    def engine(self) -> Engine:
        """The engine itself (plan methods run on ``self.engine``)."""
        return self

    _uid = None

    @dual
    def export_user(
        self,
        user_id: str,
        path: str | os.PathLike[str],
        *,
        page_size: int = 1000,
        progress: lifecycle.Progress = None,
    ) -> Plan[dict[str, int]]:
        """Write every row of ``user_id`` in every table to the zip archive ``path``
        (JSON lines per table and a manifest with the schema version), reading
        ``page_size`` rows at a time. Returns the rows written per table.

        ``progress(table, rows)``, when given, is called after each page. The archive
        loads into any engine (SQLite or Postgres) of the same or a newer schema version
        with :meth:`import_user`. Pages are read in separate short transactions: export
        a user nothing writes to meanwhile for a consistent archive.
        """
        uid = encode_key(user_id)
        return (
            yield from lifecycle.export_plan(
                self.dialect, uid, path, page_size=page_size, progress=progress
            )
        )

    aexport_user = export_user.async_

    @dual
    def import_user(
        self,
        path: str | os.PathLike[str],
        *,
        user_id: str | None = None,
        batch_size: int = 1000,
        progress: lifecycle.Progress = None,
    ) -> Plan[dict[str, int]]:
        """Load an archive of :meth:`export_user` as the user it came from, or as
        ``user_id``, in one transaction; returns the rows inserted per table.

        The user must have no rows here yet (``ValueError`` otherwise; nothing is
        written). Shared catalogue rows the archive points to (vector collections) are
        found by name, or created. This is also how to move from the SQLite dev file to
        Postgres: export each user from one engine and import into the other.
        """
        uid = encode_key(user_id) if user_id is not None else None
        return (
            yield from lifecycle.import_plan(
                self.dialect, path, uid, batch_size=batch_size, progress=progress
            )
        )

    aimport_user = import_user.async_

    @dual
    def forget_user(self, user_id: str) -> Plan[dict[str, int]]:
        """Delete every row of ``user_id`` in every table, in one transaction (children
        before parents); returns the rows deleted per table.

        Shared catalogue rows (a vector collection's name and size) are not the user's
        and stay. Deleted rows may linger in free pages until ``VACUUM`` (both
        backends); on SQLite the full-text index is merged so no deleted term remains.
        """
        return (yield from lifecycle.forget_plan(self.dialect, encode_key(user_id)))

    aforget_user = forget_user.async_

    @dual
    def count_user(self, user_id: str) -> Plan[dict[str, int]]:
        """The rows of ``user_id`` per table (what :meth:`forget_user` would delete)."""
        return (yield from lifecycle.count_plan(self.dialect, encode_key(user_id)))

    acount_user = count_user.async_

    # -- lifecycle ------------------------------------------------------------------
    def close(self) -> None:
        """Close the sync pool (the async one too, if its event loop is gone)."""
        self._backend.close()

    async def aclose(self) -> None:
        """Close both pools."""
        await self._backend.aclose()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def missing_file(self) -> str | None:
        """The database file's path when it does not exist yet (SQLite: the first
        connection would create it), else ``None``; lets read-only tools refuse a mistyped
        path instead of creating an empty database."""
        return self._backend.missing_file()

    @property
    def raw_backend(self) -> Any:
        """The backend object (pools); for tests and tooling."""
        return self._backend


if TYPE_CHECKING:
    import sqlite3

    import psycopg
    import psycopg_pool

#: What a class of this package takes where it needs an engine (see :func:`as_engine`).
EngineLike = Union[  # noqa: UP007 (a runtime alias on Python 3.10)
    Engine,
    str,
    "psycopg.Connection[Any]",
    "psycopg.AsyncConnection[Any]",
    "psycopg_pool.ConnectionPool[Any]",
    "psycopg_pool.AsyncConnectionPool[Any]",
    "sqlite3.Connection",
]
