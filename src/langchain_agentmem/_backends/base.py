"""Transactions and the backend interface: what every backend gives the engine.

A :class:`Transaction` (or :class:`AsyncTransaction`) runs query templates (see
:mod:`~langchain_agentmem.dialects`) on one connection; a backend (``_postgres``,
``_sqlite``) opens connections and decides where a transaction starts and ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any, TypedDict
from urllib.parse import urlsplit

from ..dialects import Dialect, SQLiteDialect

__all__ = ["AsyncTransaction", "Backend", "PoolConfig", "Transaction", "redact"]

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


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(":" + parts.password + "@", ":***@", 1)
    return url


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

    async def execute_raw(self, sql: str) -> None:
        """Async form of :meth:`Transaction.execute_raw`."""
        if self._threaded:
            await asyncio.to_thread(self.conn.execute, sql)
        else:
            await self.conn.execute(sql, **self.dialect.raw_options)

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


class Backend:
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
