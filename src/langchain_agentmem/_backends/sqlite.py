"""The SQLite backend: stdlib ``sqlite3``, a small connection pool, one write lock."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from ..dialects import Dialect
from .base import AsyncTransaction, Backend, PoolConfig, Transaction, not_migrated, run_to_end

__all__ = ["SQLiteBackend"]


class SQLiteBackend(Backend):
    """Up to ``max_size`` connections to one file (WAL, busy timeout), or one connection to
    an in-memory database. Writers in this process queue on one lock, then take SQLite's
    write lock with ``BEGIN IMMEDIATE`` (other processes wait up to the busy timeout).
    Async transactions wait without blocking the event loop and run each statement in a
    worker thread."""

    def __init__(
        self, path: str | None, config: PoolConfig, params: dict[str, str] | None = None
    ) -> None:
        self.path = path
        #: SQLite URI parameters (``mode=ro`` ...), see ``engine.SQLITE_PARAMETERS``.
        self.params = dict(params or {})
        self.readonly = self.params.get("mode") == "ro" or self.params.get("immutable") == "1"
        self._closed = False  # an in-memory database, once closed, is gone
        self.timeout = float(config.get("timeout", 30.0))
        self.max_size = 1 if path is None else int(config.get("max_size", 4))
        self._idle: list[Any] = []
        self._count = 0
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._generation = 0  # close() bumps it; older connections close on release
        self._born: dict[int, int] = {}

    def missing_file(self) -> str | None:
        import os

        if self.path is None or self.path.startswith("file:") or os.path.exists(self.path):
            return None
        return self.path

    def _new_connection(self) -> Any:
        import sqlite3

        if self.path is None and self._closed:
            raise RuntimeError(
                "this in-memory SQLite engine is closed and its database is gone: "
                "connect('sqlite://') again for a new one"
            )
        target, uri = ":memory:", False
        if self.path is not None:
            path = Path(self.path).expanduser()
            if self.params.get("mode") in (None, "rwc"):
                path.parent.mkdir(parents=True, exist_ok=True)
            target = str(path)
            if self.params:
                target = "file:" + quote(str(path)) + "?" + urlencode(self.params)
                uri = True
        # ``timeout`` is SQLite's busy timeout: how long a writer waits for another process.
        conn = sqlite3.connect(
            target, check_same_thread=False, isolation_level=None, timeout=self.timeout, uri=uri
        )
        if self.path is not None and not self.readonly:
            _set_wal(conn, self.timeout)
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
            if self._born.get(id(conn)) != self._generation or (
                conn.in_transaction and self.path is not None
            ):
                # A connection still in a transaction (ROLLBACK itself failed) would hold
                # SQLite's lock for every later user: close it instead.
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
        """COMMIT (or ROLLBACK when not ``ok``); a COMMIT that fails is rolled back, so the
        connection always goes back to the pool outside a transaction."""
        if not conn.in_transaction:
            return
        if ok:
            try:
                conn.execute("COMMIT")
                return
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        conn.execute("ROLLBACK")

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
        readonly = not write
        if not readonly and not self._write_lock.acquire(timeout=self.timeout):
            raise TimeoutError(f"no SQLite write lock within {self.timeout} s")
        try:
            conn = self._acquire()
            try:
                ok = False
                try:
                    self._begin(conn, readonly)
                    yield Transaction(conn, dialect, user_id)
                    ok = True
                finally:
                    self._end(conn, ok)
            finally:
                self._release(conn)
        except Exception as exc:
            missing = not_migrated(exc)
            if missing is not None:
                raise missing from exc
            raise
        finally:
            if not readonly:
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
        self,
        dialect: Dialect,
        user_id: str | None,
        implicit: bool,
        pipeline: bool,
        *,
        write: bool,
        durable: bool = True,
    ) -> AsyncIterator[AsyncTransaction]:
        # Cancellation may arrive at any await: each statement (BEGIN included) finishes
        # in its thread before CancelledError goes on (``run_to_end``), and the
        # ``finally`` blocks always end the transaction, then return the connection and
        # the write lock, in that order.
        readonly = not write
        if not readonly:
            await self._await_lock()
        try:
            conn = await self._await_conn()
            try:
                ok = False
                try:
                    await run_to_end(lambda: self._begin(conn, readonly), conn.interrupt)
                    yield AsyncTransaction(conn, dialect, user_id, threaded=True)
                    ok = True
                finally:
                    await run_to_end(lambda: self._end(conn, ok))
            finally:
                self._release(conn)
        except Exception as exc:
            missing = not_migrated(exc)
            if missing is not None:
                raise missing from exc
            raise
        finally:
            if not readonly:
                self._write_lock.release()

    def close(self) -> None:
        """Close idle connections now and busy ones when released; later use reopens.
        An in-memory database is gone once its connection closes: later use raises."""
        with self._cond:
            self._closed = True
            self._generation += 1
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            for conn in idle:
                self._born.pop(id(conn), None)
        for conn in idle:
            conn.close()


def _set_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """``PRAGMA journal_mode=WAL``, waiting up to ``timeout`` seconds for other processes:
    SQLite answers "database is locked" at once, without its busy handler, when several
    processes switch a new file to WAL at the same moment."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
