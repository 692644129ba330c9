"""The SQLite backend: stdlib ``sqlite3``, a small connection pool, one write lock."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from ..dialects import Dialect
from .base import AsyncTransaction, Backend, PoolConfig, Transaction

__all__ = ["SQLiteBackend"]


class SQLiteBackend(Backend):
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

        target = ":memory:"
        if self.path is not None:
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            target = str(Path(self.path).expanduser())
        # ``timeout`` is SQLite's busy timeout: how long a writer waits for another process.
        conn = sqlite3.connect(
            target, check_same_thread=False, isolation_level=None, timeout=self.timeout
        )
        if self.path is not None:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
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
