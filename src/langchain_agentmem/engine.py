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

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit

from .dialects import Dialect, PostgresDialect, SQLiteDialect, check_identifier

__all__ = [
    "AsyncTransaction",
    "Engine",
    "PoolConfig",
    "Transaction",
    "connect",
    "default_sqlite_path",
]

Params = Sequence[Any]


class PoolConfig(TypedDict, total=False):
    """Connection settings; every field is optional."""

    min_size: int
    """Postgres: connections each pool keeps open (default 1)."""
    max_size: int
    """Postgres: most connections each pool opens (default 10). SQLite: most connections
    to a file database (default 4; an in-memory database always has one)."""
    prepare_threshold: int | None
    """Postgres: executions before a statement is prepared server-side (default 5).
    ``None`` disables prepared statements, as PgBouncer in transaction mode requires."""
    timeout: float
    """Seconds to wait for a free connection (Postgres) or a lock (SQLite busy timeout);
    default 30."""
    row_level_security: bool
    """Postgres: set ``agent_mem.user_id`` (``SET LOCAL``) at the start of every
    transaction so row-level security policies can key on it (default False)."""


def default_sqlite_path() -> Path:
    """Where the SQLite database lives when no URL is given: ``$AGENTMEM_HOME`` or
    ``~/.local/share/agentmem``, file ``memory.sqlite3``."""
    home = os.environ.get("AGENTMEM_HOME")
    base = Path(home) if home else Path.home() / ".local" / "share" / "agentmem"
    return base / "memory.sqlite3"


def connect(url: str | None = None, *, schema: str = "agent_mem", **config: Any) -> Engine:
    """Return an :class:`Engine` for ``url``; nothing is opened until first use.

    Args:
        url: ``postgresql://...`` (psycopg 3), ``sqlite:///path/to/file.db``, or
            ``sqlite://`` for a transient in-memory database. When omitted, the
            ``AGENTMEM_URL`` environment variable, else a local SQLite file (see
            :func:`default_sqlite_path`), announced in one line on stderr.
        schema: Postgres schema holding the tables (default ``agent_mem``).
        **config: see :class:`PoolConfig`.

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
    return Engine(url, schema=schema, config=PoolConfig(**config))  # type: ignore[typeddict-item]


def _parse_sqlite(url: str) -> str | None:
    """The file path of a sqlite URL, or None for in-memory."""
    rest = url[len("sqlite:") :]
    if rest in ("", "//", "///:memory:", "//:memory:"):
        return None
    if not rest.startswith("///"):
        raise ValueError(
            f"invalid SQLite URL {url!r}: expected sqlite:///relative.db, "
            "sqlite:////absolute/path.db or sqlite:// (in memory)"
        )
    return rest[3:]


class Engine:
    """Pools, the dialect, migrations and the tenant transaction. See :func:`connect`."""

    def __init__(
        self, url: str, *, schema: str = "agent_mem", config: PoolConfig | None = None
    ) -> None:
        self.url = url
        self.config: PoolConfig = config or PoolConfig()
        scheme = urlsplit(url).scheme
        self.dialect: Dialect
        if scheme in ("postgresql", "postgres"):
            self.dialect = PostgresDialect(check_identifier(schema, "schema"))
            self._backend: _Backend = _PostgresBackend(url, self.config)
        elif scheme == "sqlite":
            self.dialect = SQLiteDialect(check_identifier(schema, "schema"))
            self._backend = _SQLiteBackend(_parse_sqlite(url), self.config)
        else:
            raise ValueError(
                f"unsupported database URL {_redact(url)!r}: expected postgresql://..., "
                "sqlite:///path/to/file.db or sqlite:// (in memory)"
            )

    def __repr__(self) -> str:
        return f"Engine({_redact(self.url)!r}, schema={self.dialect.schema!r})"

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
        """
        with self._backend.transaction(
            self.dialect, user_id, readonly or single, pipeline, write=not readonly
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
    ) -> AsyncIterator[AsyncTransaction]:
        """Async form of :meth:`transaction`."""
        async with self._backend.atransaction(
            self.dialect, user_id, readonly or single, pipeline, write=not readonly
        ) as tx:
            yield tx

    # -- migrations -----------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply the schema files not applied yet; return their versions. Idempotent and
        safe to call from several processes at once."""
        from .migrations import migrate

        applied = migrate(self)
        if applied:
            self._backend.after_migrate()
        return applied

    async def amigrate(self) -> list[int]:
        """Async form of :meth:`migrate`."""
        from .migrations import amigrate

        applied = await amigrate(self)
        if applied:
            await self._backend.aafter_migrate()
        return applied

    def schema_version(self) -> int:
        """The highest schema version applied (0 for an empty database)."""
        from .migrations import current_version

        return current_version(self)

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
    def raw_backend(self) -> Any:
        """The backend object (pools); for tests and tooling."""
        return self._backend


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(":" + parts.password + "@", ":***@", 1)
    return url


# ---------------------------------------------------------------------------------
# Transactions: one small surface both backends implement.
# ---------------------------------------------------------------------------------


class Transaction:
    """Statements of one tenant transaction. Queries are templates (see
    :mod:`~.dialects`); rows come back as tuples."""

    def __init__(self, conn: Any, dialect: Dialect, user_id: str | None) -> None:
        self.conn = conn
        self.dialect = dialect
        self.user_id = user_id

    def execute(self, query: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        cur = self.conn.execute(self.dialect.render(query), params)
        return cur.rowcount

    def fetchall(self, query: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(self.dialect.render(query), params).fetchall())

    def fetchone(self, query: str, params: Params = ()) -> tuple[Any, ...] | None:
        row = self.conn.execute(self.dialect.render(query), params).fetchone()
        return tuple(row) if row is not None else None

    def executemany(self, query: str, rows: Sequence[Params]) -> None:
        text = self.dialect.render(query)
        if isinstance(self.dialect, SQLiteDialect):
            self.conn.executemany(text, rows)
        else:
            with self.conn.cursor() as cur:
                cur.executemany(text, rows)

    def iterate(
        self, query: str, params: Params = (), *, size: int = 200
    ) -> Iterator[tuple[Any, ...]]:
        """Yield rows as they are read, ``size`` at a time."""
        if isinstance(self.dialect, SQLiteDialect):
            cur = self.conn.execute(self.dialect.render(query), params)
        else:
            cur = self.conn.cursor()
            cur.execute(self.dialect.render(query), params)
        try:
            while True:
                rows = cur.fetchmany(size)
                if not rows:
                    return
                yield from rows
        finally:
            cur.close()


class AsyncTransaction:
    """Async form of :class:`Transaction`."""

    def __init__(self, conn: Any, dialect: Dialect, user_id: str | None, *, threaded: bool) -> None:
        self.conn = conn
        self.dialect = dialect
        self.user_id = user_id
        self._threaded = threaded  # SQLite: run each call in a worker thread

    async def execute(self, query: str, params: Params = ()) -> int:
        text = self.dialect.render(query)
        if self._threaded:
            return await asyncio.to_thread(lambda: self.conn.execute(text, params).rowcount)
        cur = await self.conn.execute(text, params)
        return cur.rowcount

    async def fetchall(self, query: str, params: Params = ()) -> list[tuple[Any, ...]]:
        text = self.dialect.render(query)
        if self._threaded:
            return await asyncio.to_thread(lambda: list(self.conn.execute(text, params).fetchall()))
        cur = await self.conn.execute(text, params)
        return list(await cur.fetchall())

    async def fetchone(self, query: str, params: Params = ()) -> tuple[Any, ...] | None:
        text = self.dialect.render(query)
        if self._threaded:
            row = await asyncio.to_thread(lambda: self.conn.execute(text, params).fetchone())
        else:
            cur = await self.conn.execute(text, params)
            row = await cur.fetchone()
        return tuple(row) if row is not None else None

    async def executemany(self, query: str, rows: Sequence[Params]) -> None:
        text = self.dialect.render(query)
        if self._threaded:
            await asyncio.to_thread(self.conn.executemany, text, rows)
        else:
            async with self.conn.cursor() as cur:
                await cur.executemany(text, rows)

    async def iterate(
        self, query: str, params: Params = (), *, size: int = 200
    ) -> AsyncIterator[tuple[Any, ...]]:
        text = self.dialect.render(query)
        if self._threaded:
            cur = await asyncio.to_thread(self.conn.execute, text, params)
            try:
                while True:
                    rows = await asyncio.to_thread(cur.fetchmany, size)
                    if not rows:
                        return
                    for row in rows:
                        yield row
            finally:
                cur.close()
        else:
            async with self.conn.cursor() as cur:
                await cur.execute(text, params)
                while True:
                    rows = await cur.fetchmany(size)
                    if not rows:
                        return
                    for row in rows:
                        yield row


# ---------------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------------


class _Backend:
    # ``implicit``: no explicit transaction is needed (read-only, or one atomic statement);
    # ``write``: the block writes (SQLite takes its write lock).
    def transaction(
        self, dialect: Dialect, user_id: str | None, implicit: bool, pipeline: bool, *, write: bool
    ) -> contextlib.AbstractContextManager[Transaction]:
        raise NotImplementedError

    def atransaction(
        self, dialect: Dialect, user_id: str | None, implicit: bool, pipeline: bool, *, write: bool
    ) -> contextlib.AbstractAsyncContextManager[AsyncTransaction]:
        raise NotImplementedError

    def after_migrate(self) -> None:
        pass

    async def aafter_migrate(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        self.close()


class _PostgresBackend(_Backend):
    """A sync ``ConnectionPool`` and one ``AsyncConnectionPool`` per event loop, each
    opened on first use. Connections are in autocommit mode; transactions are explicit."""

    def __init__(self, url: str, config: PoolConfig) -> None:
        self.url = url
        self.config = config
        self._lock = threading.Lock()
        self._pool: Any = None
        self._apools: dict[asyncio.AbstractEventLoop, Any] = {}

    def _kwargs(self) -> dict[str, Any]:
        return {
            "autocommit": True,
            "prepare_threshold": self.config.get("prepare_threshold", 5),
        }

    @staticmethod
    def _configure(conn: Any) -> None:
        from pgvector.psycopg import register_vector

        try:
            register_vector(conn)
        except Exception:  # the extension is not installed yet: migrate() reopens pools
            pass

    @staticmethod
    async def _aconfigure(conn: Any) -> None:
        from pgvector.psycopg import register_vector_async

        try:
            await register_vector_async(conn)
        except Exception:
            pass

    def _probe(self) -> None:
        """Connect once, so that a bad URL or a server that is down fails at once with
        the driver's own message instead of a pool time-out."""
        import psycopg

        try:
            psycopg.connect(
                self.url, connect_timeout=max(1, int(min(self.config.get("timeout", 30.0), 10)))
            ).close()
        except psycopg.Error as exc:
            raise ConnectionError(
                f"cannot connect to Postgres at {_redact(self.url)}: {exc}".strip()
            ) from exc

    async def _aprobe(self) -> None:
        import psycopg

        try:
            conn = await psycopg.AsyncConnection.connect(
                self.url, connect_timeout=max(1, int(min(self.config.get("timeout", 30.0), 10)))
            )
            await conn.close()
        except psycopg.Error as exc:
            raise ConnectionError(
                f"cannot connect to Postgres at {_redact(self.url)}: {exc}".strip()
            ) from exc

    def pool(self) -> Any:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    from psycopg_pool import ConnectionPool

                    self._probe()
                    pool = ConnectionPool(
                        self.url,
                        min_size=self.config.get("min_size", 1),
                        max_size=self.config.get("max_size", 10),
                        timeout=self.config.get("timeout", 30.0),
                        kwargs=self._kwargs(),
                        configure=self._configure,
                        open=False,
                        name="agentmem",
                    )
                    try:
                        pool.open(wait=True, timeout=self.config.get("timeout", 30.0))
                    except Exception as exc:
                        pool.close()
                        raise ConnectionError(
                            f"cannot connect to Postgres at {_redact(self.url)}: {exc}"
                        ) from exc
                    self._pool = pool
        return self._pool

    async def apool(self) -> Any:
        loop = asyncio.get_running_loop()
        pool = self._apools.get(loop)
        if pool is None:
            from psycopg_pool import AsyncConnectionPool

            for old in [lp for lp in self._apools if lp.is_closed()]:
                del self._apools[old]  # its loop is gone; its sockets died with it
            await self._aprobe()
            pool = AsyncConnectionPool(
                self.url,
                min_size=self.config.get("min_size", 1),
                max_size=self.config.get("max_size", 10),
                timeout=self.config.get("timeout", 30.0),
                kwargs=self._kwargs(),
                configure=self._aconfigure,
                open=False,
                name="agentmem-async",
            )
            self._apools[loop] = pool
            try:
                await pool.open(wait=True, timeout=self.config.get("timeout", 30.0))
            except Exception as exc:
                self._apools.pop(loop, None)
                await pool.close()
                raise ConnectionError(
                    f"cannot connect to Postgres at {_redact(self.url)}: {exc}"
                ) from exc
        return pool

    def _set_tenant(self, conn: Any, user_id: str | None) -> None:
        if self.config.get("row_level_security") and user_id is not None:
            conn.execute("SELECT set_config('agent_mem.user_id', %s, true)", (user_id,))

    @contextlib.contextmanager
    def transaction(
        self, dialect: Dialect, user_id: str | None, implicit: bool, pipeline: bool, *, write: bool
    ) -> Iterator[Transaction]:
        rls = bool(self.config.get("row_level_security"))
        with self.pool().connection() as conn:
            if implicit and not rls:
                yield Transaction(conn, dialect, user_id)
                return
            pipe = conn.pipeline() if pipeline else contextlib.nullcontext()
            with pipe, conn.transaction():
                self._set_tenant(conn, user_id)
                yield Transaction(conn, dialect, user_id)

    @contextlib.asynccontextmanager
    async def atransaction(
        self, dialect: Dialect, user_id: str | None, implicit: bool, pipeline: bool, *, write: bool
    ) -> AsyncIterator[AsyncTransaction]:
        rls = bool(self.config.get("row_level_security"))
        pool = await self.apool()
        async with pool.connection() as conn:
            if implicit and not rls:
                yield AsyncTransaction(conn, dialect, user_id, threaded=False)
                return
            pipe = conn.pipeline() if pipeline else contextlib.nullcontext()
            async with pipe, conn.transaction():
                if rls and user_id is not None:
                    await conn.execute(
                        "SELECT set_config('agent_mem.user_id', %s, true)", (user_id,)
                    )
                yield AsyncTransaction(conn, dialect, user_id, threaded=False)

    def after_migrate(self) -> None:
        # New types (pgvector) exist now: reconnect so every connection has the adapters.
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    async def aafter_migrate(self) -> None:
        self.after_migrate()
        loop = asyncio.get_running_loop()
        pool = self._apools.pop(loop, None)
        if pool is not None:
            await pool.close()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    async def aclose(self) -> None:
        self.close()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for lp, pool in list(self._apools.items()):
            if lp is loop:
                await pool.close()
            del self._apools[lp]


class _SQLiteBackend(_Backend):
    """Up to ``max_size`` connections to one file (WAL, busy timeout), or one connection to
    an in-memory database. Writers in this process queue on one lock, then take SQLite's
    write lock with ``BEGIN IMMEDIATE`` (other processes wait up to the busy timeout).
    Async transactions wait without blocking the event loop and run each statement in a
    worker thread."""

    def __init__(self, path: str | None, config: PoolConfig) -> None:
        self.path = path
        self.timeout = float(config.get("timeout", 30.0))
        self.max_size = 1 if path is None else int(config.get("max_size", 4))
        self._idle: list[Any] = []
        self._count = 0
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._generation = 0  # close() bumps it; older connections close on release
        self._born: dict[int, int] = {}

    def _new_connection(self) -> Any:
        import sqlite3

        if self.path is None:
            conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        else:
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(Path(self.path).expanduser()),
                check_same_thread=False,
                isolation_level=None,
                timeout=self.timeout,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _try_acquire(self) -> Any | None:
        with self._cond:
            if self._idle:
                return self._idle.pop()
            if self._count >= self.max_size:
                return None
            self._count += 1
        try:
            conn = self._new_connection()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._born[id(conn)] = self._generation
        return conn

    def _acquire(self) -> Any:
        while True:
            conn = self._try_acquire()
            if conn is not None:
                return conn
            with self._cond:
                if not self._idle and self._count >= self.max_size:
                    self._cond.wait(0.05)

    def _release(self, conn: Any) -> None:
        with self._cond:
            if self._born.get(id(conn)) != self._generation:
                self._born.pop(id(conn), None)
                conn.close()
                self._count -= 1
            else:
                self._idle.append(conn)
            self._cond.notify()

    def _begin(self, conn: Any, readonly: bool) -> None:
        conn.execute("BEGIN" if readonly else "BEGIN IMMEDIATE")

    @staticmethod
    def _end(conn: Any, ok: bool) -> None:
        if conn.in_transaction:
            conn.execute("COMMIT" if ok else "ROLLBACK")

    @contextlib.contextmanager
    def transaction(
        self, dialect: Dialect, user_id: str | None, implicit: bool, pipeline: bool, *, write: bool
    ) -> Iterator[Transaction]:
        readonly = not write
        locked = False
        if not readonly and not self._write_lock.acquire(timeout=self.timeout):
            raise TimeoutError(f"no SQLite write lock within {self.timeout} s")
        locked = not readonly
        try:
            conn = self._acquire()
            try:
                self._begin(conn, readonly)
                ok = False
                try:
                    yield Transaction(conn, dialect, user_id)
                    ok = True
                finally:
                    self._end(conn, ok)
            finally:
                self._release(conn)
        finally:
            if locked:
                self._write_lock.release()

    async def _await_lock(self) -> None:
        delay = 0.0005
        waited = 0.0
        while not self._write_lock.acquire(blocking=False):
            if waited > self.timeout:
                raise TimeoutError(f"no SQLite write lock within {self.timeout} s")
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.01)

    async def _await_conn(self) -> Any:
        delay = 0.0005
        while True:
            conn = self._try_acquire()
            if conn is not None:
                return conn
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.01)

    @contextlib.asynccontextmanager
    async def atransaction(
        self, dialect: Dialect, user_id: str | None, implicit: bool, pipeline: bool, *, write: bool
    ) -> AsyncIterator[AsyncTransaction]:
        readonly = not write
        if not readonly:
            await self._await_lock()
        try:
            conn = await self._await_conn()
            try:
                await asyncio.to_thread(self._begin, conn, readonly)
                ok = False
                try:
                    yield AsyncTransaction(conn, dialect, user_id, threaded=True)
                    ok = True
                finally:
                    await asyncio.shield(asyncio.to_thread(self._end, conn, ok))
            finally:
                self._release(conn)
        finally:
            if not readonly:
                self._write_lock.release()

    def close(self) -> None:
        """Close idle connections now and busy ones when released; later use reopens.
        An in-memory database is gone once its connection closes."""
        with self._cond:
            self._generation += 1
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            for conn in idle:
                self._born.pop(id(conn), None)
        for conn in idle:
            conn.close()
