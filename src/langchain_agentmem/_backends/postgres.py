"""The Postgres backend: psycopg 3 pools (one sync, one async per event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..dialects import Dialect
from .base import AsyncTransaction, Backend, PoolConfig, Transaction, redact

__all__ = ["PostgresBackend"]


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
                f"cannot connect to Postgres at {redact(self.url)}: {exc}".strip()
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
                f"cannot connect to Postgres at {redact(self.url)}: {exc}".strip()
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
                            f"cannot connect to Postgres at {redact(self.url)}: {exc}"
                        ) from exc
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
                raise ConnectionError(
                    f"cannot connect to Postgres at {redact(self.url)}: {exc}"
                ) from exc
            self._apools[loop] = pool
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
