"""Transactions and the backend interface: what every backend gives the engine.

A :class:`Transaction` (or :class:`AsyncTransaction`) runs query templates (see
:mod:`~langchain_agentmem.dialects`) on one connection; a backend (``_postgres``,
``_sqlite``) opens connections and decides where a transaction starts and ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any, TypedDict, TypeVar
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

from ..dialects import Dialect, SQLiteDialect

__all__ = [
    "AsyncTransaction",
    "Backend",
    "NotMigratedError",
    "PoolConfig",
    "Transaction",
    "not_migrated",
    "redact",
    "cancellations",
    "raise_swallowed_cancel",
    "run_to_end",
    "scrub",
]

Params = Sequence[Any]
T = TypeVar("T")


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


_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&#]*)", re.IGNORECASE)


def _passwords(url: str) -> list[str]:
    """The passwords a URL or libpq keyword string holds, decoded (for scrubbing)."""
    found: list[str] = []
    try:
        from psycopg.conninfo import conninfo_to_dict

        password = conninfo_to_dict(url).get("password")
        if password:
            found.append(str(password))
    except Exception:  # malformed: what the patterns below find is all we can scrub
        pass
    with contextlib.suppress(ValueError):
        if urlsplit(url).password:
            found.append(unquote(urlsplit(url).password or ""))
    for match in _KEYWORD_PASSWORD.finditer(url):
        value = match.group(2)
        if value.startswith("'"):
            value = value[1:-1]
        found.append(unquote(value))
    return [p for p in found if p]


def redact(url: str) -> str:
    """``url`` (a URL or a libpq keyword string) with every password replaced by ``***``.

    Example:
        >>> redact("postgresql://me:s3cret@db/x?sslmode=require&password=other")
        'postgresql://me:***@db/x?sslmode=require&password=***'
        >>> redact("host=db password='s3 cret' dbname=x")
        'host=db password=*** dbname=x'
    """
    text = _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + "***", url)
    with contextlib.suppress(ValueError):
        parts = urlsplit(text)
        if parts.password is not None and "@" in parts.netloc:
            userinfo, _, host = parts.netloc.rpartition("@")
            user = userinfo.partition(":")[0]
            text = urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    return scrub(text, url)


def scrub(message: str, url: str) -> str:
    """``message`` (e.g. a driver's error) with every password of ``url`` replaced by
    ``***``, as written and percent-encoded."""
    for password in _passwords(url):
        for form in {password, quote(password, safe=""), quote_plus(password)}:
            message = message.replace(form, "***")
    return message


class NotMigratedError(RuntimeError):
    """A table of the schema does not exist: ``engine.migrate()`` has not been run on this
    database (or schema), or not since this version of the package added the table."""


def not_migrated(exc: BaseException) -> NotMigratedError | None:
    """The error to raise instead of ``exc`` when ``exc`` is the driver saying that a table
    does not exist (``no such table`` / ``relation ... does not exist``), else ``None``."""
    import sqlite3

    missing = isinstance(exc, sqlite3.OperationalError) and str(exc).startswith("no such table")
    if not missing:
        try:
            from psycopg import errors
        except ImportError:  # pragma: no cover (psycopg is a dependency)
            return None
        missing = isinstance(exc, errors.UndefinedTable)
    if not missing:
        return None
    reason = str(exc).strip().splitlines()[0]
    return NotMigratedError(
        f"{reason}: the schema is not migrated; call engine.migrate() (or await "
        "engine.amigrate(), or run `agentmem migrate URL`) once before using memory classes"
    )


def cancellations() -> int:
    """How many cancellations of the running task are pending (``Task.cancelling()``;
    always 0 on Python 3.10, which does not count them)."""
    count = getattr(asyncio.current_task(), "cancelling", None)
    return int(count()) if count is not None else 0


def raise_swallowed_cancel(before: int) -> None:
    """Raise ``CancelledError`` if the running task was cancelled since :func:`cancellations`
    returned ``before`` yet no ``CancelledError`` came out of the awaits in between.

    ``asyncio.wait_for`` before Python 3.12 returns the result instead when the awaited
    thing completes in the same turn as the cancellation (CPython gh-86296); psycopg_pool
    awaits a free connection through it. Found by cancelling one of two writers sharing a
    one-connection pool: 5 of 396 cancellations were lost before this check.
    """
    if cancellations() > before:
        raise asyncio.CancelledError


async def run_to_end(fn: Callable[[], T], interrupt: Callable[[], None] | None = None) -> T:
    """``fn()`` in a worker thread, awaited so that cancelling the caller never leaves it
    running: on cancellation ``interrupt`` is called (e.g. ``sqlite3.Connection.interrupt``,
    which stops a running statement), the thread is still waited for, and only then is
    ``CancelledError`` raised. So a connection is never used by two threads at once, and
    the caller's ``finally`` (which ends the transaction) runs after the statement is over.
    """
    fut = asyncio.get_running_loop().run_in_executor(None, fn)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        if interrupt is not None and not fut.done():
            interrupt()
        while not fut.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([fut])
        if not fut.cancelled():
            fut.exception()  # retrieved: the cancellation is what the caller sees
        raise


class Transaction:
    """Statements of one tenant transaction. Queries are templates (see
    :mod:`~.dialects`); rows come back as tuples."""

    #: A statement that must open every pipeline of this transaction (an implicit
    #: transaction's tenant, see ``_backends.postgres``); ``None`` for none.
    _prologue: tuple[str, Params] | None = None

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

    def execute_raw(self, sql: str) -> None:
        """Run SQL text as it is (no template, no parameters, never prepared)."""
        self.conn.execute(sql, **self.dialect.raw_options)

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

    def batch(self, statements: Sequence[tuple[str, Params, bool]]) -> list[Any]:
        """Run ``(query, params, fetch)`` statements that do not depend on each other;
        one result each (rows when ``fetch``, else the rows changed). Postgres sends them
        in one pipeline: one round trip."""
        if isinstance(self.dialect, SQLiteDialect):
            return [
                self.fetchall(q, p) if fetch else self.execute(q, p) for q, p, fetch in statements
            ]
        with self.conn.pipeline():
            if self._prologue is not None:
                self.conn.execute(*self._prologue)
            cursors = [self.conn.execute(self.dialect.render(q), p) for q, p, _ in statements]
        return [
            list(cur.fetchall()) if fetch else cur.rowcount
            for cur, (_, _, fetch) in zip(cursors, statements, strict=True)
        ]

    def copy_rows(self, query: str, types: Sequence[str], rows: Iterable[Params]) -> None:
        """Postgres only: a binary ``COPY ... FROM STDIN`` of ``rows``, whose columns have
        the Postgres ``types`` (the fastest way to load many rows)."""
        with self.conn.cursor() as cur, cur.copy(self.dialect.render(query)) as copy:
            copy.set_types(list(types))
            for row in rows:
                copy.write_row(row)

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

    _prologue: tuple[str, Params] | None = None

    def __init__(self, conn: Any, dialect: Dialect, user_id: str | None, *, threaded: bool) -> None:
        self.conn = conn
        self.dialect = dialect
        self.user_id = user_id
        self._threaded = threaded  # SQLite: run each call in a worker thread

    def _run(self, fn: Callable[[], T]) -> Awaitable[T]:
        return run_to_end(fn, self.conn.interrupt)

    async def execute(self, query: str, params: Params = ()) -> int:
        text = self.dialect.render(query)
        if self._threaded:
            return await self._run(lambda: self.conn.execute(text, params).rowcount)
        cur = await self.conn.execute(text, params)
        return cur.rowcount

    async def execute_raw(self, sql: str) -> None:
        """Async form of :meth:`Transaction.execute_raw`."""
        if self._threaded:
            await asyncio.to_thread(self.conn.execute, sql)
        else:
            await self.conn.execute(sql, **self.dialect.raw_options)

    async def fetchall(self, query: str, params: Params = ()) -> list[tuple[Any, ...]]:
        text = self.dialect.render(query)
        if self._threaded:
            return await self._run(lambda: list(self.conn.execute(text, params).fetchall()))
        cur = await self.conn.execute(text, params)
        return list(await cur.fetchall())

    async def fetchone(self, query: str, params: Params = ()) -> tuple[Any, ...] | None:
        text = self.dialect.render(query)
        if self._threaded:
            row = await self._run(lambda: self.conn.execute(text, params).fetchone())
        else:
            cur = await self.conn.execute(text, params)
            row = await cur.fetchone()
        return tuple(row) if row is not None else None

    async def executemany(self, query: str, rows: Sequence[Params]) -> None:
        text = self.dialect.render(query)
        if self._threaded:
            # The cursor is closed in the worker thread: returned, it would be freed later
            # in another thread and reset its cached statement while the connection's
            # next statement runs (CPython's sqlite3: "bad parameter or other API misuse").
            await self._run(lambda: self.conn.executemany(text, rows).close())
        else:
            async with self.conn.cursor() as cur:
                await cur.executemany(text, rows)

    async def batch(self, statements: Sequence[tuple[str, Params, bool]]) -> list[Any]:
        """Async form of :meth:`Transaction.batch`."""
        if self._threaded:
            return [
                await (self.fetchall(q, p) if fetch else self.execute(q, p))
                for q, p, fetch in statements
            ]
        async with self.conn.pipeline():
            if self._prologue is not None:
                await self.conn.execute(*self._prologue)
            cursors = [await self.conn.execute(self.dialect.render(q), p) for q, p, _ in statements]
        return [
            list(await cur.fetchall()) if fetch else cur.rowcount
            for cur, (_, _, fetch) in zip(cursors, statements, strict=True)
        ]

    async def copy_rows(self, query: str, types: Sequence[str], rows: Iterable[Params]) -> None:
        """Async form of :meth:`Transaction.copy_rows`."""
        async with self.conn.cursor() as cur, cur.copy(self.dialect.render(query)) as copy:
            copy.set_types(list(types))
            for row in rows:
                await copy.write_row(row)

    async def iterate(
        self, query: str, params: Params = (), *, size: int = 200
    ) -> AsyncIterator[tuple[Any, ...]]:
        text = self.dialect.render(query)
        if self._threaded:
            cur = await self._run(lambda: self.conn.execute(text, params))
            try:
                while True:
                    rows = await self._run(lambda: cur.fetchmany(size))
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


class Backend:
    # ``implicit``: no explicit transaction is needed (read-only, or one atomic statement);
    # ``write``: the block writes (SQLite takes its write lock).
    def transaction(
        self,
        dialect: Dialect,
        user_id: str | None,
        implicit: bool,
        pipeline: bool,
        *,
        write: bool,
        durable: bool = True,
    ) -> contextlib.AbstractContextManager[Transaction]:
        raise NotImplementedError

    def atransaction(
        self,
        dialect: Dialect,
        user_id: str | None,
        implicit: bool,
        pipeline: bool,
        *,
        write: bool,
        durable: bool = True,
    ) -> contextlib.AbstractAsyncContextManager[AsyncTransaction]:
        raise NotImplementedError

    def missing_file(self) -> str | None:
        """The path of the database file when it does not exist yet (a file database
        that the first connection would create), else ``None``."""
        return None

    def after_migrate(self) -> None:
        pass

    async def aafter_migrate(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        self.close()
