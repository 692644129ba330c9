"""The Postgres backend: psycopg 3 pools (one sync, one async per event loop).

Two things a pool alone does not do, done here:

* **A dead server fails fast.** When a connection dies under a transaction, or no
  connection can be had, the backend connects once to see whether the server is there.
  If not, the pool is dropped and :class:`ConnectionError` is raised with the driver's
  reason; every later call connects once more (failing at once with the reason, instead
  of waiting the pool's timeout) until the server is back, when a fresh pool opens. If
  the server is there (one connection was killed, or it restarted), the pool's dead idle
  connections are dropped and the error is raised as a ``ConnectionError`` too: the
  transaction was not committed, and the next call works. (A pool time-out with the
  server there is a busy pool, raised as it is.)
* **A program that never closes the engine exits.** Each async pool has a guard task in
  its event loop; ``asyncio.run`` cancels every task when the program's coroutine
  returns, and the guard then closes the pool, which stops its worker tasks. (Without it,
  a worker that is connecting when cancelled catches the cancellation and waits for work
  forever, and ``asyncio.run`` waits for it.) ``async with engine:`` is the clean way.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from ..dialects import Dialect
from .base import (
    AsyncTransaction,
    Backend,
    PoolConfig,
    Transaction,
    cancellations,
    not_migrated,
    raise_swallowed_cancel,
    redact,
    scrub,
)

__all__ = ["PostgresBackend"]

Params = Sequence[Any]


def _reason(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


@contextlib.contextmanager
def _begun(conn: Any, prologue: tuple[str, Params]) -> Iterator[None]:
    """A transaction whose ``BEGIN`` and prologue (the tenant) go in one round trip (a
    pipeline around them alone), its body then run outside pipeline mode."""
    import psycopg

    # The Transaction object itself: Connection.transaction() entered in a pipeline nests
    # pipelines around the block, which would keep the body in pipeline mode.
    txn = psycopg.Transaction(conn)
    try:
        with conn.pipeline():
            txn.__enter__()
            conn.execute(*prologue)
    except BaseException as exc:
        if txn.status == txn.Status.ACTIVE:
            txn.__exit__(type(exc), exc, exc.__traceback__)
        raise
    try:
        yield
    except BaseException as exc:
        if not txn.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        txn.__exit__(None, None, None)


@contextlib.asynccontextmanager
async def _abegun(conn: Any, prologue: tuple[str, Params]) -> AsyncIterator[None]:
    """Async form of :func:`_begun`."""
    import psycopg

    txn = psycopg.AsyncTransaction(conn)
    try:
        async with conn.pipeline():
            await txn.__aenter__()
            await conn.execute(*prologue)
    except BaseException as exc:
        if txn.status == txn.Status.ACTIVE:
            await txn.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    try:
        yield
    except BaseException as exc:
        if not await txn.__aexit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        await txn.__aexit__(None, None, None)


class _Implicit(Transaction):
    """An implicit transaction (reads, or one atomic statement) with a prologue (the
    tenant for row-level security, or ``synchronous_commit``).

    Each statement goes in a pipeline of its own after the prologue, the pair ending at
    one Sync: one implicit transaction, one round trip (as the statement alone costs
    without a prologue), and the setting is local to it (``SET LOCAL`` semantics: it never
    reaches the connection's next user, behind PgBouncer in transaction mode maybe another
    client). The pipeline is entered and left inside each call: no statement of the body,
    no fetch and no cancellation ever meets a connection left in pipeline mode.
    """

    _prologue: tuple[str, Params]

    def __init__(
        self, conn: Any, dialect: Dialect, user_id: str | None, prologue: tuple[str, Params]
    ) -> None:
        super().__init__(conn, dialect, user_id)
        self._prologue = prologue

    def _one(self, query: str, params: Params) -> Any:
        # One cursor for both (the prologue's result is replaced by the statement's):
        # a cursor fewer to make, per statement.
        with self.conn.pipeline():
            cur = self.conn.cursor()
            cur.execute(*self._prologue)
            cur.execute(self.dialect.render(query), params)
        return cur  # its results arrived with the Sync that left the pipeline

    def execute(self, query: str, params: Params = ()) -> int:
        return int(self._one(query, params).rowcount)

    def fetchall(self, query: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self._one(query, params).fetchall())

    def fetchone(self, query: str, params: Params = ()) -> tuple[Any, ...] | None:
        row = self._one(query, params).fetchone()
        return tuple(row) if row is not None else None

    def iterate(
        self, query: str, params: Params = (), *, size: int = 200
    ) -> Iterator[tuple[Any, ...]]:
        # A client-side cursor holds the whole result anyway.
        yield from self.fetchall(query, params)

    def executemany(self, query: str, rows: Sequence[Params]) -> None:
        text = self.dialect.render(query)
        with self.conn.pipeline(), self.conn.cursor() as cur:
            self.conn.execute(*self._prologue)
            cur.executemany(text, rows)  # rides this pipeline: one implicit transaction

    def execute_raw(self, sql: str) -> None:
        with _begun(self.conn, self._prologue):
            super().execute_raw(sql)

    def copy_rows(self, query: str, types: Sequence[str], rows: Iterable[Params]) -> None:
        with _begun(self.conn, self._prologue):  # COPY cannot be pipelined
            super().copy_rows(query, types, rows)


class _AsyncImplicit(AsyncTransaction):
    """Async form of :class:`_Implicit`."""

    _prologue: tuple[str, Params]

    def __init__(
        self, conn: Any, dialect: Dialect, user_id: str | None, prologue: tuple[str, Params]
    ) -> None:
        super().__init__(conn, dialect, user_id, threaded=False)
        self._prologue = prologue

    async def _one(self, query: str, params: Params) -> Any:
        async with self.conn.pipeline():
            cur = self.conn.cursor()
            await cur.execute(*self._prologue)
            await cur.execute(self.dialect.render(query), params)
        return cur

    async def execute(self, query: str, params: Params = ()) -> int:
        return int((await self._one(query, params)).rowcount)

    async def fetchall(self, query: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(await (await self._one(query, params)).fetchall())

    async def fetchone(self, query: str, params: Params = ()) -> tuple[Any, ...] | None:
        row = await (await self._one(query, params)).fetchone()
        return tuple(row) if row is not None else None

    async def iterate(
        self, query: str, params: Params = (), *, size: int = 200
    ) -> AsyncIterator[tuple[Any, ...]]:
        for row in await self.fetchall(query, params):
            yield row

    async def executemany(self, query: str, rows: Sequence[Params]) -> None:
        text = self.dialect.render(query)
        async with self.conn.pipeline(), self.conn.cursor() as cur:
            await self.conn.execute(*self._prologue)
            await cur.executemany(text, rows)

    async def execute_raw(self, sql: str) -> None:
        async with _abegun(self.conn, self._prologue):
            await super().execute_raw(sql)

    async def copy_rows(self, query: str, types: Sequence[str], rows: Iterable[Params]) -> None:
        async with _abegun(self.conn, self._prologue):
            await super().copy_rows(query, types, rows)


class PostgresBackend(Backend):
    """A sync ``ConnectionPool`` and one ``AsyncConnectionPool`` per event loop, each
    opened on first use. Connections are in autocommit mode; transactions are explicit."""

    def __init__(self, url: str, config: PoolConfig) -> None:
        self.url = url
        self.config = config
        self._lock = threading.Lock()
        self._pool: Any = None
        self._apools: dict[asyncio.AbstractEventLoop, Any] = {}
        self._apool_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._guards: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    def _kwargs(self) -> dict[str, Any]:
        return {
            "autocommit": True,
            "prepare_threshold": self.config.get("prepare_threshold", 5),
        }

    def _error(self, what: str, exc: BaseException) -> ConnectionError:
        return ConnectionError(
            scrub(f"{what} Postgres at {redact(self.url)}: {_reason(exc)}", self.url)
        )

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

    def _connect_timeout(self) -> int:
        return max(1, int(min(self.config.get("timeout", 30.0), 10)))

    def _probe(self) -> None:
        """Connect once, so that a bad URL or a server that is down fails at once with
        the driver's own message instead of a pool time-out."""
        import psycopg

        try:
            psycopg.connect(self.url, connect_timeout=self._connect_timeout()).close()
        except psycopg.Error as exc:
            raise self._error("cannot connect to", exc) from exc

    async def _aprobe(self) -> None:
        import psycopg

        try:
            conn = await psycopg.AsyncConnection.connect(
                self.url, connect_timeout=self._connect_timeout()
            )
            await conn.close()
        except psycopg.Error as exc:
            raise self._error("cannot connect to", exc) from exc

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
                        raise self._error("cannot connect to", exc) from exc
                    self._pool = pool
        return self._pool

    async def apool(self) -> Any:
        loop = asyncio.get_running_loop()
        pool = self._apools.get(loop)
        if pool is not None:
            return pool
        with self._lock:
            for old in [lp for lp in self._apool_locks if lp.is_closed()]:
                # Its loop is gone, and its sockets died with it.
                self._apool_locks.pop(old, None)
                self._apools.pop(old, None)
                self._guards.pop(old, None)
            creating = self._apool_locks.setdefault(loop, asyncio.Lock())
        # One pool per loop, however many coroutines ask for it first at the same time.
        async with creating:
            pool = self._apools.get(loop)
            if pool is not None:
                return pool
            from psycopg_pool import AsyncConnectionPool

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
            try:
                await pool.open(wait=True, timeout=self.config.get("timeout", 30.0))
            except Exception as exc:
                await pool.close()
                raise self._error("cannot connect to", exc) from exc
            self._apools[loop] = pool
            self._guards[loop] = loop.create_task(
                self._guard(loop, pool), name="agentmem-async-pool-guard"
            )
        return pool

    async def _guard(self, loop: asyncio.AbstractEventLoop, pool: Any) -> None:
        """Wait until cancelled (``asyncio.run`` ending, or the loop's tasks cancelled),
        then close ``pool`` unless the engine already let go of it."""
        try:
            await loop.create_future()
        except asyncio.CancelledError:
            if self._guards.get(loop) is asyncio.current_task():
                self._guards.pop(loop, None)
                if self._apools.get(loop) is pool:
                    self._apools.pop(loop, None)
                await pool.close()
            raise

    async def _adrop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the pool of ``loop`` (the running loop) and stop its guard."""
        pool = self._apools.pop(loop, None)
        guard = self._guards.pop(loop, None)
        if guard is not None:
            guard.cancel()
        if pool is not None:
            await pool.close()

    # -- a dead server ---------------------------------------------------------------
    @staticmethod
    def _lost(conn: Any, exc: BaseException) -> bool:
        """Whether ``exc`` says the server (or the way to it) is gone: a connection that
        died, or none to be had from the pool."""
        import psycopg

        if not isinstance(exc, psycopg.OperationalError):
            return False
        return conn is None or conn.closed or conn.broken

    def _dead(self, pool: Any, conn: Any, exc: BaseException) -> ConnectionError | None:
        """The error to raise for a lost connection (``None``: raise ``exc`` itself, the
        pool being only busy); drops ``pool`` if the server is down."""
        try:
            self._probe()
        except ConnectionError as down:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.close(timeout=0)
            return down
        if conn is None:  # the server is there: the pool was only busy
            return None
        with contextlib.suppress(Exception):
            pool.check()  # the server is back: drop the idle connections that died
        return self._error("lost the connection to", exc)

    async def _adead(self, pool: Any, conn: Any, exc: BaseException) -> ConnectionError | None:
        try:
            await self._aprobe()
        except ConnectionError as down:
            loop = asyncio.get_running_loop()
            if self._apools.get(loop) is pool:
                await self._adrop(loop)
            else:
                await pool.close(timeout=0)
            return down
        if conn is None:
            return None
        with contextlib.suppress(Exception):
            await pool.check()
        return self._error("lost the connection to", exc)

    def _prologue(self, user_id: str | None, durable: bool) -> tuple[str, Params] | None:
        # Settings local to the transaction, in one statement (pipelined with the rest).
        # The tenant for row-level security has SET LOCAL semantics (``true``): it ends
        # with the transaction and never reaches the connection's next user (behind
        # PgBouncer in transaction mode, maybe another client).
        settings: list[str] = []
        params: tuple[Any, ...] = ()
        if self.config.get("row_level_security") and user_id is not None:
            settings.append("set_config('agent_mem.user_id', %s, true)")
            params = (user_id,)
        if not durable:
            settings.append("set_config('synchronous_commit', 'off', true)")
        return ("SELECT " + ", ".join(settings), params) if settings else None

    @contextlib.contextmanager
    def transaction(
        self,
        dialect: Dialect,
        user_id: str | None,
        implicit: bool,
        pipeline: bool,
        *,
        write: bool,
        durable: bool = True,
    ) -> Iterator[Transaction]:
        pool = self.pool()
        conn = None
        try:
            with pool.connection() as conn:
                prologue = self._prologue(user_id, durable)
                if implicit and prologue is None:
                    yield Transaction(conn, dialect, user_id)
                    return
                if implicit:  # and a prologue: each statement with it, one round trip
                    assert prologue is not None
                    yield _Implicit(conn, dialect, user_id, prologue)
                    return
                if prologue is not None and not (pipeline or not durable):
                    with _begun(conn, prologue):
                        yield Transaction(conn, dialect, user_id)
                    return
                pipe = conn.pipeline() if pipeline or not durable else contextlib.nullcontext()
                with pipe, conn.transaction():
                    if prologue is not None:
                        conn.execute(*prologue)
                    yield Transaction(conn, dialect, user_id)
        except Exception as exc:
            lost = self._dead(pool, conn, exc) if self._lost(conn, exc) else None
            if lost is not None:
                raise lost from exc
            missing = not_migrated(exc)
            if missing is not None:
                raise missing from exc
            raise

    @contextlib.asynccontextmanager
    async def atransaction(
        self,
        dialect: Dialect,
        user_id: str | None,
        implicit: bool,
        pipeline: bool,
        *,
        write: bool,
        durable: bool = True,
    ) -> AsyncIterator[AsyncTransaction]:
        pool = await self.apool()
        conn = None
        cancels = cancellations()
        try:
            async with pool.connection() as conn:
                raise_swallowed_cancel(cancels)
                prologue = self._prologue(user_id, durable)
                if implicit and prologue is None:
                    yield AsyncTransaction(conn, dialect, user_id, threaded=False)
                    return
                if implicit:  # see transaction()
                    assert prologue is not None
                    yield _AsyncImplicit(conn, dialect, user_id, prologue)
                    return
                if prologue is not None and not (pipeline or not durable):
                    async with _abegun(conn, prologue):
                        yield AsyncTransaction(conn, dialect, user_id, threaded=False)
                    return
                pipe = conn.pipeline() if pipeline or not durable else contextlib.nullcontext()
                async with pipe, conn.transaction():
                    if prologue is not None:
                        await conn.execute(*prologue)
                    yield AsyncTransaction(conn, dialect, user_id, threaded=False)
        except Exception as exc:
            lost = await self._adead(pool, conn, exc) if self._lost(conn, exc) else None
            if lost is not None:
                raise lost from exc
            missing = not_migrated(exc)
            if missing is not None:
                raise missing from exc
            raise

    def after_migrate(self) -> None:
        # New types (pgvector) exist now: reconnect so every connection has the adapters.
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    async def aafter_migrate(self) -> None:
        self.after_migrate()
        await self._adrop(asyncio.get_running_loop())

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
        for lp in list(self._apools):
            if lp is loop:
                await self._adrop(lp)
            else:  # its loop is gone or elsewhere: its connections cannot be closed from here
                del self._apools[lp]
                self._guards.pop(lp, None)
