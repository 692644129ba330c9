"""Hybrid mode: a local SQLite cache in front of a canonical Postgres.

:func:`connect_hybrid` returns a :class:`HybridEngine`: an ordinary SQLite engine (so every
memory class accepts it unchanged; reads and writes go to the local file and never wait
for Postgres) that also knows a Postgres engine. What moves between the two:

* **Up** (cache to Postgres): every write to a table whose catalog sync policy is ``up``
  (:func:`~._core.catalog.synced_tables`) also writes one ``sync_outbox`` row, by a trigger
  the package generates from the catalog, in the writer's own transaction (an update
  that changes no column writes none). :meth:`sync
  <HybridEngine.sync>` (or the worker: :meth:`~HybridEngine.start`, ``with engine:``)
  delivers the outbox in batches, each batch in one Postgres transaction together with
  the source's delivery record (``sync_sources``), then deletes the delivered outbox rows.
  An append's update of its parent's counter and activity time (``sessions.last_seq``,
  ``last_activity_at``) queues nothing: the delivery of the appended rows raises them on
  Postgres (never back) and records the parent's version. Nor does the append itself when
  its seq is above its session's mark (``sync_marks``: every row up to it is queued or
  delivered), so a message costs no outbox row: every write transaction of the sync (a
  run's start, each batch's local finish, a pull) first turns the rows above the marks
  into ordinary outbox rows and raises the marks; an update or delete of such a row queues
  nothing either (the queued insert carries the row as it is when it is delivered).
  Likewise a kv write (catalog tables in :data:`~._core.marks.VERSIONED`) queues no outbox
  row: it stamps the row's own ``sync_version`` (SQLite migration 0021) with its version,
  and the same sync transactions turn the rows whose version is above the table's mark
  (``sync_state`` key ``rows:kv``) into outbox rows carrying that version; a delete still
  queues its own row (the tombstone), versioned above the row's last version.
  A crash between the two commits leaves the record naming the batch, and the next run
  finishes it locally instead of delivering it again: every write arrives exactly once.
* **Down** (Postgres to cache): :meth:`~HybridEngine.load_user` copies a user's rows into
  the cache, then brings only what changed since (``sync_versions.xid`` past the last
  pull's snapshot horizon, and events past the last seq pulled), without echoing them back.

Rules when caches write the same rows:

* Tables with a sequence (``events.seq`` from ``sessions.last_seq``, catalog
  ``seq_counter``): **Postgres hands out the seq when it receives the row**, in each
  cache's write order, so two caches appending to one session never collide and leave no
  gap. The cache's own number is provisional: when Postgres hands out another, the cache
  renumbers its row (and the rows it has not delivered yet) to match. A session written by
  one cache at a time keeps the numbers it had.
* Every other table: **last writer wins** by a version that cannot go back (a hybrid
  logical clock in microseconds: the wall clock, or one more than the last version this
  cache handed out or saw), ties broken by the source id; deletes leave a tombstone, so a
  late older write does not bring a row back.

Example:
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> engine = connect_hybrid("sqlite:///" + os.path.join(d, "c.db"), "postgresql://127.0.0.1:1/x")
    >>> _ = engine.migrate()
    >>> from langchain_agentmem import KeyValueStore
    >>> KeyValueStore(engine, "ns", user_id="u").set("k", 1)   # local only: Postgres is down
    >>> engine.outbox_depth()
    1
    >>> engine.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from operator import itemgetter
from typing import Any

from ._backends.base import PoolConfig, redact, scrub
from ._checkpoint.serde import paused_gc
from ._core.catalog import TABLES, Sync, Table, synced_tables
from ._core.marks import (
    VERSIONED,
    above_marks,
    marked_tables,
    outbox_session,
    outbox_stamp,
    queue_versioned,
    queued,
    raise_marks,
)
from ._core.migrations import migrate_plan
from ._core.plan import Atomic, Plan, Sql, dual, run, statements
from ._encoding.json import dumps
from .dialects import SQL, Body, Composable, Composed, Copy, Ident, Many, One, Stmt, Unnest
from .dialects import Table as TableRef
from .dialects.base import sync_kind
from .dialects.compose import marks
from .dialects.sqlite import micros
from .engine import Engine

__all__ = ["HybridEngine", "SyncReport", "connect_hybrid"]

#: Outbox rows read and delivered per Postgres transaction.
DEFAULT_BATCH = 5000


@dataclass
class SyncReport:
    """What one :meth:`HybridEngine.sync` run did (also its ``memory_sync_log`` row)."""

    run_id: int = 0
    status: str = "ok"
    """``ok``, ``failed``, or ``busy`` (another sync of this cache was running)."""
    events_synced: int = 0
    """Rows of sequence tables (events) delivered."""
    rows_synced: int = 0
    """Outbox rows delivered (events included)."""
    batches: int = 0
    error: str | None = None


@dataclass
class PullReport:
    """What one :meth:`HybridEngine.load_user` did."""

    user_id: str
    full: bool
    rows: int = 0
    deleted: int = 0


@dataclass
class _Columns:
    """The columns sync moves for one table: in both databases, Postgres types."""

    names: list[str]
    types: dict[str, str]
    kinds: dict[str, str] = field(default_factory=dict)


def connect_hybrid(
    local: str,
    remote: str,
    *,
    schema: str = "agent_mem",
    sync_interval: float = 5.0,
    refresh_interval: float = 60.0,
    min_importance: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    policy: dict[str, Sync] | None = None,
    remote_config: PoolConfig | None = None,
    **config: Any,
) -> HybridEngine:
    """A local SQLite cache (``local``, ``sqlite:///file.db``) in front of the canonical
    Postgres (``remote``). Nothing is opened until first use; call ``migrate()`` once.

    Args:
        local: the cache, a ``sqlite:///`` URL (a file, so that the outbox survives).
        remote: the canonical store, ``postgresql://...``.
        sync_interval: seconds between the worker's runs (see :meth:`HybridEngine.start`).
        refresh_interval: seconds between the worker's refreshes of loaded users.
        min_importance: rows with an ``importance`` below it stay local (queued, not
            delivered); rows without an importance are delivered.
        batch_size: outbox rows per Postgres transaction.
        policy: per table name, ``up`` or ``local``, overriding the catalog's policy (e.g.
            ``{"checkpoints": "up"}``).
        remote_config: :class:`~.PoolConfig` of the Postgres engine (its ``timeout``
            defaults to 5 s here, so a sync gives up quickly when Postgres is away).
        **config: :class:`~.PoolConfig` of the SQLite engine.
    """
    unknown = set(config) - set(PoolConfig.__annotations__)
    if unknown:
        raise TypeError(f"unknown connect_hybrid() option(s): {', '.join(sorted(unknown))}")
    return HybridEngine(
        local,
        remote,
        schema=schema,
        sync_interval=sync_interval,
        refresh_interval=refresh_interval,
        min_importance=min_importance,
        batch_size=batch_size,
        policy=policy,
        config=PoolConfig(**config),  # type: ignore[typeddict-item]
        remote_config=PoolConfig(**{"timeout": 5.0, **(remote_config or {})}),  # type: ignore[typeddict-item]
    )


# -- pure helpers -------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


_COMMA = SQL(", ")
_AND = SQL(" AND ")
_CAST_M = SQL("CAST(m.{} AS {})")
_SET_EXCLUDED = SQL("{0} = excluded.{0}")


def _do_update(columns: Sequence[str]) -> Composable:
    """The action of an upsert: ``UPDATE SET`` each column from ``excluded``, or
    ``NOTHING`` without columns."""
    if not columns:
        return SQL("NOTHING")
    return SQL("UPDATE SET ") + _COMMA.join(_SET_EXCLUDED.format(Ident(c)) for c in columns)


_DELETE_WHERE = SQL("DELETE FROM {} WHERE {}")
_EQUAL_MARK = SQL("{} = ?")
_REF_NAME = SQL("(SELECT r.{nk} FROM {table} r WHERE r.{pk} = t.{col})")
_SELECT_WHERE_USER = SQL("SELECT {} FROM {} t WHERE t.user_id = ?")


def _equal_marks(names: Sequence[str]) -> Composed:
    """``<column> = ?`` for each column, joined by ``AND``."""
    return _AND.join(_EQUAL_MARK.format(Ident(c)) for c in names)


def _idents(names: Sequence[str], prefix: str = "") -> Composed:
    """Column identifiers, comma separated, each after ``prefix`` (an alias and a dot,
    written in the code)."""
    head = SQL(prefix)
    return _COMMA.join(head + Ident(c) for c in names)


def _casts(names: Sequence[str], types: dict[str, str]) -> Composed:
    """``CAST(m.<column> AS <type>)`` for each column of the unnest relation ``m``; the
    types are Postgres's own (``format_type`` of the catalog's columns, read by
    ``sync_columns``), trusted as text the dialect returns."""
    return _COMMA.join(_CAST_M.format(Ident(c), SQL(types[c])) for c in names)


def _ranges(seqs: Sequence[int]) -> list[list[int]]:
    """Sorted ``seqs`` as ``[first, last]`` runs (the delivery record)."""
    out: list[list[int]] = []
    for s in sorted(seqs):
        if out and out[-1][1] == s - 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def _in_ranges(seq: int, ranges: Sequence[Sequence[int]]) -> bool:
    return any(a <= seq <= b for a, b in ranges)


@dataclass(slots=True)
class _Op:
    seq: int
    table: str
    op: str
    user_id: str
    pk: tuple[Any, ...]
    version: int


@dataclass
class _Batch:
    ops: list[_Op]
    rows: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]
    """Per table, the current local row of each key a non-delete op names."""
    refs: dict[str, dict[Any, tuple[Any, ...]]]
    """Per reference table, local primary key -> the row (natural key first)."""
    kept: list[int]
    """Outbox seqs left queued (below min_importance, or after such a row)."""
    last: int
    parents: dict[str, dict[tuple[Any, ...], Any]] = field(default_factory=dict)
    """Per sequence parent table, the local activity time of each parent the batch
    appends rows under (its quiet updates queue nothing: see :meth:`HybridEngine._quiet`)."""


def _delivered_part(batch: _Batch, ranges: Sequence[Sequence[int]]) -> _Batch:
    """The ops of ``batch`` that a delivery record's outbox ``ranges`` name: a batch read
    again after a run died between the Postgres commit and the local one also holds the
    rows queued since (they come after it), which still have to be delivered."""
    ops = [o for o in batch.ops if _in_ranges(o.seq, ranges)]
    return replace(batch, ops=ops, last=max(b for _, b in ranges))


class HybridEngine(Engine):
    """A SQLite engine whose writes are also delivered to Postgres. See :func:`connect_hybrid`.

    ``with engine:`` (``async with engine:``) starts the sync worker and, on exit, stops
    it, runs a last sync when Postgres answers, and closes both engines.
    """

    def __init__(
        self,
        local: str,
        remote: str,
        *,
        schema: str = "agent_mem",
        sync_interval: float = 5.0,
        refresh_interval: float = 60.0,
        min_importance: float | None = None,
        batch_size: int = DEFAULT_BATCH,
        policy: dict[str, Sync] | None = None,
        config: PoolConfig | None = None,
        remote_config: PoolConfig | None = None,
    ) -> None:
        super().__init__(local, schema=schema, config=config)
        if self.dialect.name != "sqlite":
            raise ValueError(
                f"connect_hybrid(local=...) expects a sqlite:/// URL, got {redact(local)!r}"
            )
        self.remote = Engine(remote, schema=schema, config=remote_config)
        if self.remote.dialect.name != "postgres":
            raise ValueError(
                f"connect_hybrid(remote=...) expects a postgresql:// URL, got {redact(remote)!r}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.sync_interval = float(sync_interval)
        self.refresh_interval = float(refresh_interval)
        self.min_importance = min_importance
        self.batch_size = batch_size
        self.tables: list[Table] = synced_tables(policy)
        self._policy = dict(policy or {})
        self._local_columns: dict[str, list[str]] = {}
        self._remote_columns: dict[str, _Columns] = {}
        self._selects: dict[tuple[str, tuple[str, ...]], Composed] = {}
        self._remote_ready = False
        self._run_lock = threading.Lock()
        self._lock_file: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._loaded: dict[str, float] = {}
        self.last_error: BaseException | None = None
        """The last error of the worker (it retries; the sync log has every run)."""

    def __repr__(self) -> str:
        return f"HybridEngine({redact(self.url)!r}, remote={redact(self.remote.url)!r})"

    # -- schema -----------------------------------------------------------------------
    def _triggers(self) -> Body[None]:
        synced = {t.name for t in self.tables}
        for table in TABLES.values():
            if table.tenant_column is None or "sqlite" not in table.dialects:
                continue
            if table.derived_from is not None:
                continue
            install = table.name in synced
            cols = yield self.dialect.sync_columns(table.name)
            names = [c[0] for c in cols]
            if not names:  # not migrated yet on this database
                continue
            mark = TABLES[table.seq_counter[0]].primary_key if table.seq_counter else ()
            yield from self.dialect.sync_triggers(
                table.name,
                table.primary_key,
                names,
                install=install,
                quiet=self._quiet(table),
                mark=mark,
                versioned=VERSIONED.get(table.name) if VERSIONED.get(table.name) in names else None,
            )
        first = yield One("SELECT 1 FROM {sync_state} WHERE key = 'marks'")
        if first is None:
            # A cache migrated before the marks: every row of its sessions is queued or
            # delivered, so each session's mark is its counter (once: a later migrate()
            # would drop the appends queued by the marks since).
            yield from raise_marks([t for t, _, _ in marked_tables()], None)
            yield Stmt("INSERT INTO {sync_state} (key, value) VALUES ('marks', 1)")

    def _quiet(self, table: Table) -> list[str]:
        """The columns of a sequence parent (``sessions``) that every append of a synced
        child moves: its counter and its activity time. An update of only these queues
        nothing; the delivery of the appended rows carries them (:meth:`_remote_append`)."""
        counters = sorted(self._counter_columns(table))
        if not counters:
            return []
        return counters + ([table.time_column] if table.time_column else [])

    @property
    def _synced(self) -> list[str]:
        return [t.name for t in self.tables]

    def _marked(self) -> list[tuple[Table, Table, str]]:
        """The synced sequence tables, whose appends above their parent's mark queue no
        outbox row (see :mod:`._core.marks`)."""
        return marked_tables(self._synced)

    def _migrate_plan(self) -> Plan[list[int]]:
        applied = yield from migrate_plan(self.dialect)
        yield Atomic(self._triggers(), user_id=None)
        return applied

    def migrate(self) -> list[int]:
        """Migrate the cache and install its outbox triggers (Postgres is migrated by the
        first sync that reaches it); return the cache's versions applied now."""
        applied = run(self, None, self._migrate_plan())
        if applied:
            self._backend.after_migrate()
        return applied

    async def amigrate(self) -> list[int]:
        """Async form of :meth:`migrate`."""
        from ._core.plan import arun

        applied = await arun(self, None, self._migrate_plan())
        if applied:
            await self._backend.aafter_migrate()
        return applied

    # -- steps on Postgres --------------------------------------------------------------
    def _on_remote(self, plan: Plan[Any]) -> Plan[Any]:
        """``plan`` with every transaction run on Postgres."""
        result: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = plan.throw(error) if error is not None else plan.send(result)
            except StopIteration as stop:
                return stop.value
            result, error = None, None
            try:
                if isinstance(step, Sql):
                    step = Atomic(statements(step.statements), readonly=step.readonly)
                if isinstance(step, Atomic):
                    step = replace(step, engine=self.remote)
                result = yield step
            except Exception as exc:
                error = exc

    def _prepare(self) -> Plan[None]:
        """Migrate Postgres (once per engine) and read both databases' columns."""
        if not self._remote_ready:
            yield from self._on_remote(migrate_plan(self.remote.dialect))
            self._remote_ready = True
        if not self._remote_columns:
            self._remote_columns = yield Atomic(
                self._read_remote_columns(), engine=self.remote, readonly=True, user_id=None
            )
        if not self._local_columns:
            self._local_columns = yield Atomic(
                self._read_local_columns(), readonly=True, user_id=None
            )

    def _involved(self) -> list[Table]:
        """Synced tables and the reference and counter tables they need."""
        names = {t.name for t in self.tables}
        for t in self.tables:
            names.update(ref for _, ref in t.refs)
            if t.seq_counter:
                names.add(t.seq_counter[0])
        return [TABLES[n] for n in TABLES if n in names]

    def _read_remote_columns(self) -> Body[dict[str, _Columns]]:
        out: dict[str, _Columns] = {}
        for t in self._involved():
            rows = yield self.remote.dialect.sync_columns(t.name)
            types = {r[0]: r[1] for r in rows}
            out[t.name] = _Columns(
                [r[0] for r in rows], types, {n: sync_kind(ty) for n, ty in types.items()}
            )
        return out

    def _read_local_columns(self) -> Body[dict[str, list[str]]]:
        out: dict[str, list[str]] = {}
        for t in self._involved():
            rows = yield self.dialect.sync_columns(t.name)
            out[t.name] = [r[0] for r in rows]
        return out

    def _cols(self, table: str) -> _Columns:
        """Columns in both databases, in the local order."""
        remote = self._remote_columns[table]
        names = [c for c in self._local_columns[table] if c in remote.types]
        return _Columns(names, remote.types, remote.kinds)

    # -- sync (up) ------------------------------------------------------------------------
    @dual
    def sync(
        self,
        *,
        session_id: str | None = None,
        since: datetime | None = None,
        min_importance: float | None = None,
        max_batches: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Plan[SyncReport]:
        """Deliver the outbox to Postgres, batch after batch; log the run.

        Args:
            session_id: only rows of this session (other rows stay queued).
            since: only rows written at or after this time (others stay queued).
            min_importance: overrides the engine's threshold for this run.
            max_batches: stop after this many batches (the rest waits for the next run).
            progress: called after each batch with the number of outbox rows it delivered.

        Returns:
            The run's :class:`SyncReport` (status ``busy`` when another sync of this cache
            is running). A failure is logged (status ``failed`` and its error), then raised.
        """
        if not self._acquire_run():
            return SyncReport(status="busy")
        try:
            return (yield from self._sync(session_id, since, min_importance, max_batches, progress))
        finally:
            self._release_run()

    async_sync = sync.async_

    def _acquire_run(self) -> bool:
        """One sync of a cache at a time, across threads and processes (a lock on a file
        next to the cache, released by the system when the process dies)."""
        if not self._run_lock.acquire(blocking=False):
            return False
        path = self.raw_backend.path
        if path is None:
            return True
        try:
            import fcntl

            handle = open(os.fspath(path) + ".sync-lock", "a")  # noqa: SIM115 (held across a run)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                self._run_lock.release()
                return False
            self._lock_file = handle
        except ImportError:  # pragma: no cover (not Unix: threads of this process only)
            pass
        return True

    def _release_run(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None
        self._run_lock.release()

    def _sync(
        self,
        session_id: str | None,
        since: datetime | None,
        min_importance: float | None,
        max_batches: int | None,
        progress: Callable[[int], None] | None = None,
    ) -> Plan[SyncReport]:
        threshold = self.min_importance if min_importance is None else min_importance
        source, run_id = yield Atomic(self._start_run(session_id), user_id=None)
        report = SyncReport(run_id=run_id)
        try:
            yield from self._prepare()
            yield from self._recover(source, report)
            cursor = 0
            kept_keys: set[tuple[str, tuple[Any, ...]]] = set()
            while max_batches is None or report.batches < max_batches:
                # A batch's rows all live until it is finished: collecting garbage while
                # they are built would find nothing to free, over and over.
                with paused_gc():
                    batch = yield Atomic(
                        self._read_batch(cursor, session_id, since, threshold, kept_keys),
                        readonly=True,
                        user_id=None,
                    )
                    if batch is None:
                        break
                    cursor = batch.last
                    if not batch.ops:
                        continue
                    done = yield Atomic(
                        self._deliver(source, batch), engine=self.remote, user_id=None
                    )
                    if done.get("recovered"):
                        batch = _delivered_part(batch, done["seqs"])
                        cursor = batch.last
                    yield Atomic(self._finish(batch, done, source, report), user_id=None)
                report.batches += 1
                report.rows_synced += len(batch.ops)
                report.events_synced += done["events"]
                if progress is not None:
                    progress(len(batch.ops))
        except Exception as exc:
            report.status = "failed"
            report.error = scrub(f"{type(exc).__name__}: {exc}", self.remote.url)[:2000]
            yield Atomic(self._end_run(source, report), user_id=None)
            yield from self._upload_log()
            raise
        yield Atomic(self._end_run(source, report), user_id=None)
        yield from self._upload_log()
        return report

    def _recover(self, source: str, report: SyncReport) -> Plan[None]:
        """Finish locally the batch of the last delivery record when this cache still
        queues it (a run died between the Postgres commit and the local one): exactly the
        outbox rows the record names, whatever this run's batch size and filters."""
        row = yield Atomic(
            statements_one(One("SELECT last_batch FROM {sync_sources} WHERE source = ?", [source])),
            engine=self.remote,
            readonly=True,
            user_id=None,
        )
        record = json.loads(row[0]) if row else None
        if not isinstance(record, dict) or "first" not in record:
            return  # nothing delivered yet, or a record older than its first row's version
        batch = yield Atomic(self._read_recorded(record), readonly=True, user_id=None)
        if batch is None:
            return
        record["recovered"] = True
        yield Atomic(self._finish(batch, record, source, report), user_id=None)
        report.batches += 1
        report.rows_synced += len(batch.ops)
        report.events_synced += int(record.get("events", 0))

    def _read_recorded(self, record: dict[str, Any]) -> Body[_Batch | None]:
        """The queued outbox rows a delivery record names, if its first row is still
        queued (the same seq and version: a seq can come back, a version cannot)."""
        seq, version = record["first"]
        still = yield One(
            "SELECT 1 FROM {sync_outbox} WHERE seq = ? AND version = ?", [seq, version]
        )
        if still is None:
            return None
        seqs = [s for a, b in record["seqs"] for s in range(a, b + 1)]
        rows = yield Stmt(
            "SELECT seq, table_name, op, user_id, pk, version FROM {sync_outbox} "
            "WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq",
            [json.dumps(seqs)],
            fetch=True,
        )
        ops = [_Op(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5]) for r in rows]
        return _Batch(ops, {}, {}, [], max(seqs))

    def _start_run(self, session_id: str | None) -> Body[tuple[str, int]]:
        yield from self._queue_appends(None)
        row = yield One("SELECT value FROM {sync_state} WHERE key = 'source'")
        source = str(row[0]) if row else "unknown"
        last = yield One("SELECT max(run_id) FROM {memory_sync_log} WHERE source = ?", [source])
        run_id = int((last[0] if last else None) or 0) + 1
        # A run still "running" was killed (runs of a cache hold its lock one at a time).
        yield Stmt(
            "UPDATE {memory_sync_log} SET status = 'interrupted', ended_at = ?, "
            "error = 'the process stopped during the run' WHERE source = ? AND status = 'running'",
            [_now(), source],
        )
        yield Stmt(
            "INSERT INTO {memory_sync_log} (source, run_id, session_id, started_at, status) "
            "VALUES (?, ?, ?, ?, 'running')",
            [source, run_id, session_id, _now()],
        )
        return source, run_id

    def _end_run(self, source: str, report: SyncReport) -> Body[None]:
        yield Stmt(
            "UPDATE {memory_sync_log} SET ended_at = ?, events_synced = ?, rows_synced = ?, "
            "status = ?, error = ? WHERE source = ? AND run_id = ?",
            [
                _now(),
                report.events_synced,
                report.rows_synced,
                report.status,
                report.error,
                source,
                report.run_id,
            ],
        )

    def _upload_log(self) -> Plan[None]:
        """Copy the runs Postgres has not seen to its ``memory_sync_log`` (when it
        answers; else they wait for the next run)."""
        rows = yield Atomic(
            statements_one(
                Stmt(
                    "SELECT source, run_id, session_id, started_at, ended_at, events_synced, "
                    "rows_synced, status, error FROM {memory_sync_log} WHERE uploaded = 0 "
                    "AND status <> 'running' ORDER BY run_id",
                    fetch=True,
                )
            ),
            readonly=True,
            user_id=None,
        )
        if not rows:
            return
        try:
            yield from self._prepare()
            yield Atomic(self._insert_log(rows), engine=self.remote, user_id=None)
        except Exception:  # Postgres away: the runs stay queued locally (status in the log)
            return
        yield Atomic(
            statements_one(
                Stmt(
                    "UPDATE {memory_sync_log} SET uploaded = 1 WHERE source = ? AND run_id IN "
                    "(SELECT value FROM json_each(?))",
                    [rows[0][0], json.dumps([r[1] for r in rows])],
                )
            ),
            user_id=None,
        )

    def _insert_log(self, rows: list[tuple[Any, ...]]) -> Body[None]:
        cols = [
            ("source", "text"),
            ("run_id", "bigint"),
            ("session_id", "text"),
            ("started_at", "text"),
            ("ended_at", "text"),
            ("events_synced", "bigint"),
            ("rows_synced", "bigint"),
            ("status", "text"),
            ("error", "text"),
        ]
        yield Stmt(
            SQL(
                "INSERT INTO {memory_sync_log} (source, run_id, session_id, started_at, ended_at, "
                "events_synced, rows_synced, status, error) SELECT m.source, m.run_id, m.session_id, "
                "CAST(m.started_at AS timestamptz), CAST(m.ended_at AS timestamptz), m.events_synced, "
                "m.rows_synced, m.status, m.error FROM {} "
                "ON CONFLICT (source, run_id) DO UPDATE SET ended_at = excluded.ended_at, "
                "events_synced = excluded.events_synced, rows_synced = excluded.rows_synced, "
                "status = excluded.status, error = excluded.error"
            ).format(Unnest(cols)),
            self.remote.dialect.unnest_params(cols, rows),
        )

    # reading a batch (local, read-only) -------------------------------------------------
    def _read_batch(
        self,
        cursor: int,
        session_id: str | None,
        since: datetime | None,
        threshold: float | None,
        kept_keys: set[tuple[str, tuple[Any, ...]]],
    ) -> Body[_Batch | None]:
        synced = [t.name for t in self.tables]
        where: Composable = SQL("o.seq > ? AND o.table_name IN (SELECT value FROM json_each(?))")
        params: list[Any] = [cursor, json.dumps(synced)]
        if session_id is not None:
            where += SQL(" AND o.session_id = ?")
            params.append(session_id)
        if since is not None:
            where += SQL(" AND o.created_at >= ?")
            params.append(self.dialect.from_datetime(since))
        # The batch: the next batch_size outbox rows; its last seq and the tables it names.
        head = yield Stmt(
            SQL(
                "SELECT table_name, max(seq) FROM (SELECT o.seq, o.table_name FROM {sync_outbox} o "
                "WHERE {where} ORDER BY o.seq LIMIT ?) GROUP BY table_name"
            ).format(where=where),
            [*params, self.batch_size],
            fetch=True,
        )
        if not head:
            return None
        last = max(int(r[1]) for r in head)
        ops: list[_Op] = []
        current: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
        for name in sorted(r[0] for r in head):
            # Each op with its key (decoded by SQLite) and the row it names as it is now.
            t = TABLES[name]
            cols = self._cols(name)
            width = len(t.primary_key)
            join = _AND.join(
                SQL("t.{} = json_extract(o.pk, '$[" + str(i) + "]')").format(Ident(c))
                for i, c in enumerate(t.primary_key)
            )
            found = yield Stmt(
                SQL(
                    "SELECT o.seq, o.op, o.user_id, o.version, o.pk, {select} "
                    "FROM {sync_outbox} o LEFT JOIN {table} t ON o.op <> 'd' AND {join} "
                    "WHERE o.table_name = ? AND {where} AND o.seq <= ?"
                ).format(
                    select=_idents(cols.names, "t."),
                    table=TableRef(name),
                    join=join,
                    where=where,
                ),
                [name, *params, last],
                fetch=True,
            )
            # The key: the row's own key columns where it is there (equal to the outbox's
            # by the join), else decoded from the outbox's JSON.
            at = [5 + cols.names.index(c) for c in t.primary_key]
            key_of = itemgetter(*at)
            present = at[0]
            rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}
            append = ops.append
            for r in found:
                if r[present] is not None:
                    key = key_of(r) if width > 1 else (r[present],)
                    rows[key] = r[5:]
                else:
                    key = tuple(json.loads(r[4]))
                append(_Op(r[0], name, r[1], r[2], key, r[3]))
            current[name] = rows
        ops.sort(key=lambda o: o.seq)
        kept: list[int] = []
        if threshold is not None:
            for o in ops:
                key = (o.table, o.pk)
                cols = self._cols(o.table)
                row = current[o.table].get(o.pk)
                if key in kept_keys:
                    kept.append(o.seq)
                elif o.op == "i" and row is not None and "importance" in cols.names:
                    value = row[cols.names.index("importance")]
                    if value is not None and value < threshold:
                        kept_keys.add(key)
                        kept.append(o.seq)
            ops = [o for o in ops if o.seq not in set(kept)]
        refs: dict[str, dict[Any, tuple[Any, ...]]] = {}
        for name in {o.table for o in ops}:
            for column, ref in TABLES[name].refs:
                cols = self._cols(name)
                i = cols.names.index(column)
                ids = {row[i] for row in current[name].values()} | {
                    o.pk[TABLES[name].primary_key.index(column)]
                    for o in ops
                    if o.table == name and column in TABLES[name].primary_key
                }
                refs.setdefault(ref, {}).update((yield from self._read_refs(ref, ids)))
        parents: dict[str, dict[tuple[Any, ...], Any]] = {}
        for name in {o.table for o in ops if o.op == "i"}:
            t = TABLES[name]
            if t.seq_counter is None:
                continue
            parent = TABLES[t.seq_counter[0]]
            width = len(parent.primary_key)
            keys = sorted({o.pk[:width] for o in ops if o.table == name and o.op == "i"})
            parents[parent.name] = {k: None for k in keys}
            if (
                parent.time_column is None
                or parent.time_column not in self._cols(parent.name).names
            ):
                continue
            pk_names = _idents(parent.primary_key)
            found = yield Stmt(
                SQL(
                    "SELECT {pk}, {time} FROM {table} WHERE ({pk}) IN (SELECT {items} "
                    "FROM json_each(?))"
                ).format(
                    pk=pk_names,
                    time=Ident(parent.time_column),
                    table=TableRef(parent.name),
                    items=_COMMA.join(
                        SQL("json_extract(value, '$[" + str(i) + "]')") for i in range(width)
                    ),
                ),
                [dumps([list(k) for k in keys])],
                fetch=True,
            )
            for r in found:
                parents[parent.name][tuple(r[:width])] = r[width]
        return _Batch(ops, current, refs, kept, last, parents)

    def _read_refs(self, ref: str, ids: set[Any]) -> Body[dict[Any, tuple[Any, ...]]]:
        """Local reference rows by primary key: natural key columns first, then the other
        columns Postgres has (its own primary key left out)."""
        t = TABLES[ref]
        cols = self._ref_columns(ref)
        (pk,) = t.primary_key
        rows = yield Stmt(
            SQL(
                "SELECT {pk}, {cols} FROM {table} WHERE {pk} IN (SELECT value FROM json_each(?))"
            ).format(pk=Ident(pk), cols=_idents(cols), table=TableRef(ref)),
            [json.dumps(sorted(ids))],
            fetch=True,
        )
        return {r[0]: tuple(r[1:]) for r in rows}

    def _ref_columns(self, ref: str) -> list[str]:
        t = TABLES[ref]
        assert t.natural_key is not None, f"reference table {ref} has no natural key"
        others = [c for c in self._cols(ref).names if c not in t.primary_key]
        return list(t.natural_key) + [c for c in others if c not in t.natural_key]

    # delivering a batch (Postgres, one transaction) ---------------------------------------
    def _deliver(self, source: str, batch: _Batch) -> Body[dict[str, Any]]:
        yield Stmt(
            "INSERT INTO {sync_sources} (source) VALUES (?) ON CONFLICT (source) DO NOTHING",
            [source],
        )
        row = yield One(
            "SELECT last_batch FROM {sync_sources} WHERE source = ? FOR UPDATE", [source]
        )
        record = json.loads(row[0]) if row else []
        first = [batch.ops[0].seq, batch.ops[0].version]
        if (
            isinstance(record, dict)
            and _in_ranges(first[0], record.get("seqs", []))
            # an outbox seq can come back once the outbox was empty, its version cannot
            and record.get("first", first) == first
        ):
            # Delivered by a run that died before its local commit (which _recover, at the
            # start of the run, finishes first): finish it locally only.
            record["recovered"] = True
            return record
        ref_ids = yield from self._remote_refs(batch)
        self._losers: list[tuple[Table, tuple[Any, ...]]] = []
        assigned: list[list[Any]] = []
        events = 0
        by_table: dict[str, list[_Op]] = {}
        for o in batch.ops:
            by_table.setdefault(o.table, []).append(o)
        order = [t for t in self.tables if t.name in by_table]
        plans: dict[str, tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[_Op]]] = {}
        orphans: list[list[Any]] = []
        for t in order:
            plans[t.name] = self._net(t, by_table[t.name], batch, orphans)
        # Deletes children first, then upserts parents first (catalog order).
        for t in reversed(order):
            deletes = plans[t.name][1]
            if deletes:
                yield from self._remote_delete(t, deletes, batch, ref_ids, source)
        for t in order:
            upserts, _, inserts = plans[t.name]
            if upserts:
                yield from self._remote_upsert(t, upserts, batch, ref_ids, source)
            if inserts:
                got = yield from self._remote_append(t, inserts, batch, ref_ids, source)
                assigned.extend(got)
                events += len(inserts)
        refresh = yield from self._refresh_losers(batch, ref_ids)
        done = {
            "seqs": _ranges([o.seq for o in batch.ops]),
            "first": first,
            "assigned": assigned,
            "orphans": orphans,
            "clock": max(o.version for o in batch.ops),
            "events": events,
        }
        yield Stmt(
            "UPDATE {sync_sources} SET delivered = greatest(delivered, ?), last_batch = ?, "
            "updated_at = now() WHERE source = ?",
            [batch.last, json.dumps(done), source],
        )
        done["refresh"] = refresh
        return done

    def _refresh_losers(
        self, batch: _Batch, ref_ids: dict[str, dict[Any, Any]]
    ) -> Body[dict[str, dict[str, Any]]]:
        """Postgres's rows for the keys where a newer write won, to put in the cache."""
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        for t, key in self._losers:
            by_table.setdefault(t.name, []).append(key)
        refs = {
            ref: [(ref_ids[ref][local], row[0]) for local, row in rows.items()]
            for ref, rows in batch.refs.items()
        }
        out: dict[str, dict[str, Any]] = {}
        for name, keys in by_table.items():
            t = TABLES[name]
            natural = [json.loads(self._natural_pk(t, k, batch.refs)) for k in keys]
            users = sorted({k[0] for k in keys})
            rows: list[tuple[Any, ...]] = []
            for user in users:
                mine = [k for k in natural if k[0] == user]
                rows += yield from self._fetch_keys(t, user, mine, refs)
            out[name] = {"rows": rows, "keys": keys}
        return out

    def _net(
        self, t: Table, ops: list[_Op], batch: _Batch, orphans: list[list[Any]]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[_Op]]:
        """The batch's net effect on table ``t``: keys to upsert (with the last op's
        version), keys to delete, and (sequence tables) rows to append."""
        by_key: dict[tuple[Any, ...], list[_Op]] = {}
        for o in ops:
            by_key.setdefault(o.pk, []).append(o)
        rows = batch.rows[t.name]
        upserts: list[tuple[Any, ...]] = []
        deletes: list[tuple[Any, ...]] = []
        inserts: list[_Op] = []
        sequenced = t.seq_counter is not None
        for key, key_ops in by_key.items():
            last = key_ops[-1]
            exists = key in rows
            if sequenced and len(key_ops) == 1 and last.op == "i":  # the common case
                if exists:
                    inserts.append(last)
                else:
                    orphans.append([t.name, list(key)])
                continue
            if not sequenced:
                if last.op == "d":
                    deletes.append((key, last))
                elif exists:
                    upserts.append((key, last))
                # else: deleted since; a later op in the outbox delivers the delete
                continue
            fresh = key_ops[0].op == "i"
            deleted = any(o.op == "d" for o in key_ops)
            if not fresh and deleted:
                deletes.append((key, last))
            if exists and last.op != "d" and (fresh or any(o.op == "i" for o in key_ops[1:])):
                inserts.append(last)
            elif exists and not fresh and not deleted:
                upserts.append((key, last))
            elif fresh and not exists:
                # Never delivered and gone: the ops still queued for this key (up to its
                # delete) refer to a row Postgres never had.
                orphans.append([t.name, list(key)])
        return upserts, deletes, inserts

    def _remote_refs(self, batch: _Batch) -> Body[dict[str, dict[Any, Any]]]:
        """Make sure Postgres has the reference rows the batch points at; local primary
        key -> Postgres primary key, per reference table."""
        out: dict[str, dict[Any, Any]] = {}
        for ref, local_rows in batch.refs.items():
            if not local_rows:
                out[ref] = {}
                continue
            t = TABLES[ref]
            cols = self._ref_columns(ref)
            types = self._remote_columns[ref].types
            kinds = self._remote_columns[ref].kinds
            unnest_cols = [(c, self.remote.dialect.sync_param_type(kinds[c])) for c in cols]
            values = [
                tuple(
                    self.remote.dialect.sync_input(v, kinds[c])
                    for c, v in zip(cols, row, strict=True)
                )
                for row in local_rows.values()
            ]
            yield Stmt(
                SQL(
                    "INSERT INTO {table} ({cols}) SELECT {casts} FROM {rel} "
                    "ON CONFLICT ({natural}) DO NOTHING"
                ).format(
                    table=TableRef(ref),
                    cols=_idents(cols),
                    casts=_casts(cols, types),
                    rel=Unnest(unnest_cols),
                    natural=_idents(t.natural_key or ()),
                ),
                self.remote.dialect.unnest_params(unnest_cols, values),
            )
            (pk,) = t.primary_key
            nk = (t.natural_key or ())[0]
            found = yield Stmt(
                SQL("SELECT {nk}, {pk} FROM {table} WHERE {nk} = ANY(?)").format(
                    nk=Ident(nk), pk=Ident(pk), table=TableRef(ref)
                ),
                [[row[0] for row in local_rows.values()]],
                fetch=True,
            )
            by_name = {r[0]: r[1] for r in found}
            out[ref] = {local: by_name[row[0]] for local, row in local_rows.items()}
        return out

    def _natural_pk(
        self, t: Table, key: tuple[Any, ...], batch_refs: dict[str, dict[Any, tuple[Any, ...]]]
    ) -> str:
        """The row's key as the same text in every database (reference ids by name)."""
        out = list(key)
        for column, ref in t.refs:
            if column in t.primary_key:
                i = t.primary_key.index(column)
                out[i] = batch_refs[ref][key[i]][0]
        return dumps(out)

    def _won(
        self,
        t: Table,
        items: list[tuple[tuple[Any, ...], _Op]],
        deleted: bool,
        batch: _Batch | None,
        source: str,
    ) -> Body[set[tuple[Any, ...]]]:
        """Record the items' versions where they are newer than Postgres's; the keys that
        won (last writer wins, ties by source)."""
        refs = batch.refs if batch is not None else {}
        texts = {self._natural_pk(t, key, refs): key for key, _ in items}
        cols = [("u", "text"), ("k", "text"), ("v", "bigint")]
        rows = [(o.user_id, self._natural_pk(t, key, refs), o.version) for key, o in items]
        won_rows = yield Stmt(
            SQL(
                "INSERT INTO {sync_versions} AS s (user_id, table_name, pk, version, source, deleted) "
                "SELECT m.u, ?, m.k, m.v, ?, ? FROM {} "
                "ORDER BY m.u, m.k ON CONFLICT (user_id, table_name, pk) DO UPDATE SET "
                "version = excluded.version, source = excluded.source, deleted = excluded.deleted, "
                "xid = pg_current_xact_id() WHERE (s.version, s.source) < (excluded.version, excluded.source) "
                "RETURNING pk"
            ).format(Unnest(cols)),
            [t.name, source, deleted, *self.remote.dialect.unnest_params(cols, rows)],
            fetch=True,
        )
        won = {texts[r[0]] for r in won_rows}
        self._losers.extend((t, key) for key, _ in items if key not in won)
        return won

    def _winners(
        self,
        t: Table,
        items: list[tuple[tuple[Any, ...], _Op]],
        deleted: bool,
        batch: _Batch,
        source: str,
    ) -> Body[list[tuple[Any, ...]]]:
        """The keys of ``items`` to write: those whose version won (:meth:`_won`), or all
        of them in a sequence table (Postgres numbers its rows: no two writers collide)."""
        if t.seq_counter is not None:
            return [k for k, _ in items]
        won = yield from self._won(t, items, deleted, batch, source)
        return [k for k, _ in items if k in won]

    def _key_relation(
        self, t: Table, keys: list[tuple[Any, ...]], ref_ids: dict[str, dict[Any, Any]]
    ) -> tuple[Composable, list[Any]]:
        """``(pk columns) IN (SELECT ...)`` over ``keys`` (reference ids translated)."""
        types = self._remote_columns[t.name].types
        kinds = self._remote_columns[t.name].kinds
        pk = list(t.primary_key)
        cols = [(c, self.remote.dialect.sync_param_type(kinds[c])) for c in pk]
        refs = dict(t.refs)
        values = []
        for key in keys:
            row = []
            for c, v in zip(pk, key, strict=True):
                if c in refs:
                    v = ref_ids[refs[c]][v]
                row.append(self.remote.dialect.sync_input(v, kinds[c]))
            values.append(tuple(row))
        return (
            SQL("({names}) IN (SELECT {casts} FROM {rel})").format(
                names=_idents(pk), casts=_casts(pk, types), rel=Unnest(cols)
            ),
            self.remote.dialect.unnest_params(cols, values),
        )

    def _remote_delete(
        self,
        t: Table,
        items: list[tuple[Any, ...]],
        batch: _Batch,
        ref_ids: dict[str, dict[Any, Any]],
        source: str,
    ) -> Body[None]:
        keys = yield from self._winners(t, items, True, batch, source)
        if not keys:
            return
        cond, params = self._key_relation(t, keys, ref_ids)
        yield Stmt(_DELETE_WHERE.format(TableRef(t.name), cond), params)
        # A deleted sequence parent takes its rows with it (as the cache's clear() does), so
        # its sequence can start again without colliding.
        for child in self.tables:
            if child.seq_counter and child.seq_counter[0] == t.name:
                yield Stmt(_DELETE_WHERE.format(TableRef(child.name), cond), params)

    def _remote_upsert(
        self,
        t: Table,
        items: list[tuple[Any, ...]],
        batch: _Batch,
        ref_ids: dict[str, dict[Any, Any]],
        source: str,
    ) -> Body[None]:
        keys = yield from self._winners(t, items, False, batch, source)
        if not keys:
            return
        rows = [batch.rows[t.name][k] for k in sorted(keys)]
        yield from self._write_rows(t, rows, ref_ids, conflict="update")

    def _counter_columns(self, t: Table) -> set[str]:
        return {
            c.seq_counter[1] for c in self.tables if c.seq_counter and c.seq_counter[0] == t.name
        }

    def _write_rows(
        self,
        t: Table,
        rows: Sequence[Sequence[Any]],
        ref_ids: dict[str, dict[Any, Any]],
        *,
        conflict: str,
    ) -> Body[None]:
        """Write ``rows`` (cache values) to Postgres by text ``COPY``: straight into the
        table (``conflict="none"``: appends, whose keys are new), else into a staging
        table, then one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` in key order."""
        cols = self._cols(t.name)
        counters = self._counter_columns(t)
        refs = dict(t.refs)
        kinds = cols.kinds
        dialect = self.remote.dialect
        params = [dialect.sync_param_type(kinds[c]) for c in cols.names]
        columns: list[list[Any]] = [list(col) for col in zip(*rows, strict=True)]
        for i, c in enumerate(cols.names):
            if c in refs:
                ids = ref_ids[refs[c]]
                columns[i] = [ids[v] for v in columns[i]]
            elif c in counters:
                columns[i] = [0] * len(rows)  # Postgres's own counter: raised by its rows
            if set(map(type, columns[i])) <= dialect.sync_passes(kinds[c]):
                continue  # already as Postgres reads it (the common case: text, numbers)
            convert = dialect.sync_converter(kinds[c])
            if convert is not None:
                columns[i] = [convert(v) for v in columns[i]]
        values = list(zip(*columns, strict=True))
        types = dialect.sync_copy_types(params)
        if conflict == "none":
            values.sort(key=itemgetter(*[cols.names.index(c) for c in t.primary_key]))
            yield Copy(dialect.sync_copy(TableRef(t.name), cols.names), types, values)
            return
        stage, create = dialect.sync_stage(t.name, list(zip(cols.names, params, strict=True)))
        yield create
        yield Copy(dialect.sync_copy(stage, cols.names), types, values)
        update = [c for c in cols.names if c not in t.primary_key and c not in counters]
        yield Stmt(
            SQL(
                "INSERT INTO {table} AS t ({names}) SELECT {casts} FROM {stage} m "
                "ORDER BY {order} ON CONFLICT ({target}) DO {action}"
            ).format(
                table=TableRef(t.name),
                names=_idents(cols.names),
                casts=_casts(cols.names, cols.types),
                stage=stage,
                order=_idents(t.primary_key, "m."),
                target=_idents(t.primary_key),
                action=_do_update(update),
            )
        )
        yield Stmt(SQL("TRUNCATE {}").format(stage))

    def _remote_append(
        self,
        t: Table,
        inserts: list[_Op],
        batch: _Batch,
        ref_ids: dict[str, dict[Any, Any]],
        source: str,
    ) -> Body[list[list[Any]]]:
        """Reserve seqs on each parent row (Postgres's counter), in the cache's order, and
        bring its activity time forward (never back) to the cache's, then insert the rows
        under them; the seqs handed out as runs ``[table, parent key, first local seq,
        first new seq, count]`` (local and new seqs both step by one).

        The parent's row version is recorded as written by the newest appended row (so
        incremental pulls of other caches see it, and last writer wins as when every
        append queued an update of the parent)."""
        assert t.seq_counter is not None
        parent_name, counter = t.seq_counter
        parent = TABLES[parent_name]
        width = len(parent.primary_key)
        inserts = sorted(inserts, key=lambda o: o.seq)
        counts: dict[tuple[Any, ...], int] = {}
        newest: dict[tuple[Any, ...], _Op] = {}
        for o in inserts:
            counts[o.pk[:width]] = counts.get(o.pk[:width], 0) + 1
            newest[o.pk[:width]] = o
        if parent_name in {p.name for p in self.tables}:
            yield from self._won(parent, sorted(newest.items()), False, batch, source)
        types = self._remote_columns[parent_name].types
        kinds = self._remote_columns[parent_name].kinds
        times = batch.parents.get(parent_name, {})
        time_col = parent.time_column if parent.time_column in types else None
        pcols = [(c, self.remote.dialect.sync_param_type(kinds[c])) for c in parent.primary_key]
        cols = [*pcols, ("n", "bigint"), ("t", "text")]
        keys = sorted(counts)
        values = [
            (
                *(
                    self.remote.dialect.sync_input(v, kinds[c])
                    for c, v in zip(parent.primary_key, k, strict=True)
                ),
                counts[k],
                times.get(k) if time_col else None,
            )
            for k in keys
        ]
        names = _idents(parent.primary_key)
        ctr = Ident(counter)
        insert_cols: Composable = SQL("{}, {}").format(names, ctr)
        select: Composable = _casts(parent.primary_key, types) + SQL(", m.n")
        sets: Composable = SQL("")
        if time_col is not None:
            tc = Ident(time_col)
            insert_cols += SQL(", ") + tc
            select += SQL(", coalesce(CAST(m.t AS {}), now())").format(SQL(types[time_col]))
            sets = SQL(", {tc} = greatest(p.{tc}, excluded.{tc})").format(tc=tc)
        reserved = yield Stmt(
            SQL(
                "INSERT INTO {table} AS p ({insert_cols}) SELECT {select} FROM {rel} ORDER BY {order} "
                "ON CONFLICT ({names}) DO UPDATE SET {ctr} = p.{ctr} + excluded.{ctr}{sets} "
                "RETURNING {names}, {ctr}"
            ).format(
                table=TableRef(parent_name),
                insert_cols=insert_cols,
                select=select,
                rel=Unnest(cols),
                order=_idents(parent.primary_key, "m."),
                names=names,
                ctr=ctr,
                sets=sets,
            ),
            self.remote.dialect.unnest_params(cols, values),
            fetch=True,
        )
        top = {tuple(r[:width]): int(r[width]) for r in reserved}
        nxt = {k: top[k] - counts[k] for k in counts}
        cols_t = self._cols(t.name)
        seq_i = cols_t.names.index(t.primary_key[-1])
        current = batch.rows[t.name]
        rows: list[list[Any]] = []
        runs: list[list[Any]] = []  # [table, parent key, first local seq, first new seq, count]
        for o in inserts:
            parent_key = o.pk[:width]
            new = nxt[parent_key] + 1
            nxt[parent_key] = new
            row = list(current[o.pk])
            row[seq_i] = new
            rows.append(row)
            old = o.pk[-1]
            run_ = runs[-1] if runs else None
            if (
                run_ is not None
                and run_[1] == parent_key
                and run_[2] + run_[4] == old
                and run_[3] + run_[4] == new
            ):
                run_[4] += 1
            else:
                runs.append([t.name, parent_key, old, new, 1])
        yield from self._write_rows(t, rows, ref_ids, conflict="none")
        return [[name, list(parent), old, new, n] for name, parent, old, new, n in runs]

    # finishing a batch (local) --------------------------------------------------------------
    def _finish(
        self, batch: _Batch, done: dict[str, Any], source: str, report: SyncReport
    ) -> Body[None]:
        first = batch.ops[0]
        still = yield One(
            "SELECT 1 FROM {sync_outbox} WHERE seq = ? AND version = ?", [first.seq, first.version]
        )
        if still is None:
            return  # another run of this cache finished it
        # Appends made since the batch was read: queued before the renumbering, which
        # moves the queued rows that would collide with the seqs Postgres handed out.
        yield from self._queue_appends(None)
        # The run's counts so far, committed with the batch (true even if the run dies).
        yield Stmt(
            "UPDATE {memory_sync_log} SET events_synced = events_synced + ?, "
            "rows_synced = rows_synced + ? WHERE source = ? AND run_id = ?",
            [int(done.get("events", 0)), len(batch.ops), source, report.run_id],
        )
        yield Stmt("UPDATE {sync_state} SET value = 1 WHERE key = 'muted'")
        seqs = [o.seq for o in batch.ops]
        yield Stmt(
            "DELETE FROM {sync_outbox} WHERE seq IN (SELECT value FROM json_each(?))",
            [json.dumps(seqs)],
        )
        groups: dict[tuple[str, tuple[Any, ...]], list[tuple[int, int]]] = {}
        for name, parent, old, new, *count in done.get("assigned", []):
            # [.., count] runs; a record written before runs has one seq per entry.
            n = count[0] if count else 1
            groups.setdefault((name, tuple(parent)), []).extend(
                (old + i, new + i) for i in range(n)
            )
        for (name, parent), moves in groups.items():
            yield from self._renumber(TABLES[name], parent, moves)
        for name, key in done.get("orphans", []):
            yield from self._drop_orphan(TABLES[name], tuple(key), batch.last)
        for name, got in done.get("refresh", {}).items():
            t = TABLES[name]
            ids = {
                ref: {row[0]: local for local, row in rows.items()}
                for ref, rows in batch.refs.items()
            }
            rows = [self._to_local(t, r, ids) for r in got["rows"]]
            idx = [self._cols(name).names.index(c) for c in t.primary_key]
            found = {tuple(r[i] for i in idx) for r in rows}
            queued = yield Stmt(
                "SELECT pk FROM {sync_outbox} WHERE table_name = ?", [name], fetch=True
            )
            pending = {(name, tuple(json.loads(q[0]))) for q in queued}
            gone = [tuple(k) for k in got["keys"] if tuple(k) not in found]
            yield from self._apply_rows(t, "", rows, gone, pending, False)
        # A parent whose version lost took Postgres's row: its counter as Postgres left it
        # after this batch, below the rows still queued above the batch's.
        yield from self._cover_rows(None, list(done.get("refresh", {})))
        yield Stmt(
            "UPDATE {sync_state} SET value = max(value, ?) WHERE key = 'clock'",
            [int(done.get("clock", 0))],
        )
        # The renumbered rows are delivered or queued.
        yield from raise_marks([t for t, _, _ in self._marked()], None)
        yield Stmt("UPDATE {sync_state} SET value = 0 WHERE key = 'muted'")

    # appends above the marks -----------------------------------------------------------
    def _queue_appends(self, user_id: str | None) -> Body[None]:
        """Turn the appends above the marks (of ``user_id``) into ordinary outbox ``i``
        rows, in each parent's seq order, and raise the marks over them: every write
        transaction of the sync machinery starts here, so netting, renumbering, the
        delivery record, orphans and filters see the outbox they always saw.

        A row's version is its own time (not the sync's: an old append must not win over
        another cache's later write of its parent; never after now), or the last version
        handed out (the clock, the outbox's last row) if that is later, plus its distance
        above the mark: newer than every version handed out (never one a delivered batch
        was recorded by), and growing along each parent's rows (the parent's version a
        batch records never goes back). The clock then covers them (the triggers' next
        versions are newer). Its queued time is the row's (``sync(since=...)``)."""
        row = yield One(
            "SELECT max((SELECT value FROM {sync_state} WHERE key = 'clock'), "
            "coalesce((SELECT version FROM {sync_outbox} ORDER BY seq DESC LIMIT 1), 0)), "
            "coalesce((SELECT max(seq) FROM {sync_outbox}), 0)"
        )
        base, top = (int(row[0] or 0), int(row[1])) if row else (0, 0)
        # The versioned rows above their table's mark first (their versions are their own).
        yield from queue_versioned(self._synced)
        for t, _, _ in self._marked():
            source, params = above_marks(t, user_id)
            key = _idents(t.primary_key, "e.")
            session, stamp = outbox_session(t, "e"), outbox_stamp(t, "e")
            at: Composable = SQL("?")
            if t.time_column is not None:
                column = Ident("e", t.time_column).template(self.dialect)
                at = SQL("max(coalesce(min({0}, {1}), {1}), ?)").format(
                    SQL(micros(column)), SQL(micros("'now'"))
                )
            yield Stmt(
                SQL(
                    "INSERT INTO {sync_outbox} (table_name, op, user_id, session_id, pk, version, "
                    "created_at) SELECT ?, 'i', e.user_id, {session}, json_array({key}), "
                    "{at} + e.{seq} - coalesce(m.seq, 0), {stamp} FROM {source} ORDER BY {key}"
                ).format(
                    session=session,
                    key=key,
                    at=at,
                    seq=Ident(t.primary_key[-1]),
                    stamp=stamp,
                    source=source,
                ),
                [t.name, base, *params],
            )
            yield from raise_marks([t], user_id)
        yield Stmt(
            "UPDATE {sync_state} SET value = max(value, coalesce("
            "(SELECT max(version) FROM {sync_outbox} WHERE seq > ?), 0)) WHERE key = 'clock'",
            [top],
        )

    def _drop_orphan(self, t: Table, key: tuple[Any, ...], after: int) -> Body[None]:
        rows = yield Stmt(
            "SELECT seq, op FROM {sync_outbox} WHERE table_name = ? AND pk = json(?) AND seq > ? "
            "ORDER BY seq",
            [t.name, json.dumps(list(key)), after],
            fetch=True,
        )
        drop = []
        for seq, op in rows:
            drop.append(seq)
            if op == "d":
                break
        if drop:
            yield Stmt(
                "DELETE FROM {sync_outbox} WHERE seq IN (SELECT value FROM json_each(?))",
                [json.dumps(drop)],
            )

    def _pending(self, t: Table, parent: tuple[Any, ...]) -> Body[list[tuple[int, int]]]:
        """Queued inserts of ``t`` under ``parent``: ``(outbox seq, local seq)``."""
        rows = yield Stmt(
            "SELECT seq, pk FROM {sync_outbox} WHERE table_name = ? AND op = 'i' ORDER BY seq",
            [t.name],
            fetch=True,
        )
        width = len(parent)
        out = []
        for seq, pk in rows:
            key = json.loads(pk)
            if tuple(key[:width]) == parent:
                out.append((seq, key[-1]))
        return out

    def _renumber(
        self, t: Table, parent: tuple[Any, ...], moves: list[tuple[int, int]], floor: int = 0
    ) -> Body[None]:
        """Give delivered (or pulled) rows their Postgres seqs (``moves``: local -> new)
        and, when they would collide, move the rows still queued under ``parent`` above
        every seq Postgres has handed out (``floor`` included), keeping their order."""
        assert t.seq_counter is not None
        moving = {old: new for old, new in moves if old != new}
        top = max([new for _, new in moves] + [floor])
        if not moving and not floor:
            return  # Postgres kept this cache's numbers: nothing collides
        pending = yield from self._pending(t, parent)
        queued = sorted({local for _, local in pending} - set(moving))
        if queued and queued[0] <= top:
            for i, local in enumerate(queued):
                moving[local] = top + 1 + i
        if not moving:
            return
        fields: dict[str, Composable] = {
            "table": TableRef(t.name),
            "seq": Ident(t.primary_key[-1]),
            "where": _equal_marks(t.primary_key[:-1]),
        }
        move = SQL("UPDATE {table} SET {seq} = ? WHERE {where} AND {seq} = ?").format(**fields)
        for old, new in moving.items():
            yield Stmt(move, [-new, *parent, old])
        yield Stmt(
            SQL("UPDATE {table} SET {seq} = -{seq} WHERE {where} AND {seq} < 0").format(**fields),
            list(parent),
        )
        for seq, local in pending:
            if local in moving:
                yield Stmt(
                    "UPDATE {sync_outbox} SET pk = ? WHERE seq = ?",
                    [json.dumps([*parent, moving[local]]), seq],
                )
        parent_t, counter = t.seq_counter
        yield Stmt(
            SQL("UPDATE {table} SET {ctr} = max({ctr}, ?) WHERE {where}").format(
                table=TableRef(parent_t),
                ctr=Ident(counter),
                where=_equal_marks(TABLES[parent_t].primary_key),
            ),
            [max(moving.values()), *parent],
        )

    # -- load_user (down) ------------------------------------------------------------------
    @dual
    def load_user(self, user_id: str, *, full: bool = False) -> Plan[PullReport]:
        """Bring ``user_id``'s memories from Postgres into the cache: all of them the first
        time (or with ``full``), afterwards only what changed since the last pull. Rows
        with writes still queued in the outbox keep the cache's version (their delivery
        decides); nothing pulled is queued back. The worker refreshes loaded users every
        ``refresh_interval`` seconds.

        Incremental pulls see what caches delivered (through ``sync_versions``) and events
        appended after the last seq pulled; a state-table row written to Postgres directly
        (not through a cache) shows in the next ``full`` pull.
        """
        yield from self._prepare()
        state = yield Atomic(self._pull_state(user_id), readonly=True, user_id=user_id)
        full = full or state[0] is None
        data = yield Atomic(
            self._remote_read(user_id, full, state), engine=self.remote, user_id=user_id
        )
        report = yield Atomic(self._apply_pull(user_id, full, data), user_id=user_id)
        self._loaded[user_id] = time.monotonic()
        return report

    aload_user = load_user.async_

    def _pull_state(self, user_id: str) -> Body[tuple[str | None, dict[tuple[str, str], int]]]:
        row = yield One("SELECT xmin FROM {sync_pulls} WHERE user_id = ?", [user_id])
        cursors = yield Stmt(
            "SELECT table_name, parent, seq FROM {sync_cursors} WHERE user_id = ?",
            [user_id],
            fetch=True,
        )
        return (row[0] if row else None), {(r[0], r[1]): int(r[2]) for r in cursors}

    def _select(self, t: Table) -> Composed:
        """The columns a pull reads from ``t`` (alias ``t``), reference ids as names
        (composed once per table and column list)."""
        cols = self._cols(t.name)
        key = (t.name, tuple(cols.kinds[c] + " " + c for c in cols.names))
        found = self._selects.get(key)
        if found is not None:
            return found
        refs = dict(t.refs)
        out: list[Composable] = []
        for c in cols.names:
            if c in refs:
                ref = TABLES[refs[c]]
                (pk,) = ref.primary_key
                nk = (ref.natural_key or ())[0]
                out.append(
                    _REF_NAME.format(
                        nk=Ident(nk), table=TableRef(ref.name), pk=Ident(pk), col=Ident(c)
                    )
                )
            else:
                out.append(self.remote.dialect.sync_select(c, cols.kinds[c]))
        self._selects[key] = select = _COMMA.join(out)
        return select

    def _read_ref_tables(self) -> Body[dict[str, list[tuple[Any, ...]]]]:
        out: dict[str, list[tuple[Any, ...]]] = {}
        for t in self._involved():
            if not t.reference or t.natural_key is None:
                continue
            cols = self._ref_columns(t.name)
            (pk,) = t.primary_key
            kinds = self._remote_columns[t.name].kinds
            select = _COMMA.join(self.remote.dialect.sync_select(c, kinds[c]) for c in cols)
            rows = yield Stmt(
                SQL("SELECT t.{}, {} FROM {} t").format(Ident(pk), select, TableRef(t.name)),
                fetch=True,
            )
            out[t.name] = [tuple(r) for r in rows]
        return out

    def _fetch_keys(
        self, t: Table, user_id: str, keys: list[list[Any]], refs: dict[str, list[tuple[Any, ...]]]
    ) -> Body[list[tuple[Any, ...]]]:
        """Rows of ``t`` by natural key (reference ids as names)."""
        if not keys:
            return []
        ref_ids = {name: {row[1]: row[0] for row in rows} for name, rows in refs.items()}
        cond, params = self._key_relation(t, [tuple(k) for k in keys], ref_ids)
        rows = yield Stmt(
            _SELECT_WHERE_USER.format(self._select(t), TableRef(t.name)) + SQL(" AND ") + cond,
            [user_id, *params],
            fetch=True,
        )
        return [tuple(r) for r in rows]

    def _remote_read(
        self, user_id: str, full: bool, state: tuple[str | None, dict[tuple[str, str], int]]
    ) -> Body[dict[str, Any]]:
        row = yield One("SELECT CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text)")
        xmin = row[0] if row else "0"
        refs = yield from self._read_ref_tables()
        version = yield One("SELECT max(version) FROM {sync_versions} WHERE user_id = ?", [user_id])
        tables: dict[str, dict[str, Any]] = {}
        changed: dict[str, list[tuple[list[Any], bool]]] = {}
        if not full:
            found = yield Stmt(
                "SELECT table_name, pk, deleted FROM {sync_versions} WHERE user_id = ? "
                "AND xid >= CAST(? AS xid8)",
                [user_id, state[0]],
                fetch=True,
            )
            for name, pk, deleted in found:
                changed.setdefault(name, []).append((json.loads(pk), bool(deleted)))
        for t in self.tables:
            if full:
                rows = yield Stmt(
                    _SELECT_WHERE_USER.format(self._select(t), TableRef(t.name)),
                    [user_id],
                    fetch=True,
                )
                tables[t.name] = {"rows": [tuple(r) for r in rows], "deleted": []}
            elif t.seq_counter is None:
                keys = changed.get(t.name, [])
                live = [k for k, d in keys if not d]
                rows = yield from self._fetch_keys(t, user_id, live, refs)
                tables[t.name] = {"rows": rows, "deleted": [k for k, d in keys if d]}
            else:
                parent = TABLES[t.seq_counter[0]]
                rest = list(parent.primary_key[1:])
                cursors = [
                    (*json.loads(p)[1:], seq)
                    for (name, p), seq in state[1].items()
                    if name == t.name
                ]
                cols = [(f"c{i}", "text") for i in range(len(rest))] + [("s", "bigint")]
                on = _AND.join(
                    SQL("CAST(m.{} AS text) = CAST(t.{} AS text)").format(Ident(f"c{i}"), Ident(c))
                    for i, c in enumerate(rest)
                )
                rows = yield Stmt(
                    SQL(
                        "SELECT {select} FROM {table} t LEFT JOIN {rel} ON {on} "
                        "WHERE t.user_id = ? AND t.{seq} > coalesce(m.s, 0)"
                    ).format(
                        select=self._select(t),
                        table=TableRef(t.name),
                        rel=Unnest(cols),
                        on=on,
                        seq=Ident(t.primary_key[-1]),
                    ),
                    [*self.remote.dialect.unnest_params(cols, cursors), user_id],
                    fetch=True,
                )
                tables[t.name] = {"rows": [tuple(r) for r in rows], "deleted": []}
        return {
            "xmin": xmin,
            "refs": refs,
            "tables": tables,
            "version": int((version[0] if version else None) or 0),
        }

    def _local_refs(
        self, refs: dict[str, list[tuple[Any, ...]]]
    ) -> Body[dict[str, dict[Any, Any]]]:
        """Create the reference rows the cache lacks; natural key -> local id."""
        out: dict[str, dict[Any, Any]] = {}
        for name, rows in refs.items():
            t = TABLES[name]
            cols = self._ref_columns(name)
            kinds = self._remote_columns[name].kinds
            if rows:
                yield Many(
                    SQL(
                        "INSERT INTO {table} ({cols}) VALUES ({marks}) "
                        "ON CONFLICT ({natural}) DO NOTHING"
                    ).format(
                        table=TableRef(name),
                        cols=_idents(cols),
                        marks=marks(len(cols)),
                        natural=_idents(t.natural_key or ()),
                    ),
                    [
                        tuple(
                            self.dialect.sync_local(v, kinds[c])
                            for c, v in zip(cols, r[1:], strict=True)
                        )
                        for r in rows
                    ],
                )
            (pk,) = t.primary_key
            nk = (t.natural_key or ())[0]
            found = yield Stmt(
                SQL("SELECT {}, {} FROM {}").format(Ident(nk), Ident(pk), TableRef(name)),
                fetch=True,
            )
            out[name] = {r[0]: r[1] for r in found}
        return out

    def _to_local(
        self, t: Table, row: tuple[Any, ...], ids: dict[str, dict[Any, Any]]
    ) -> tuple[Any, ...]:
        cols = self._cols(t.name)
        refs = dict(t.refs)
        return tuple(
            ids[refs[c]][v] if c in refs else self.dialect.sync_local(v, cols.kinds[c])
            for c, v in zip(cols.names, row, strict=True)
        )

    def _apply_pull(self, user_id: str, full: bool, data: dict[str, Any]) -> Body[PullReport]:
        report = PullReport(user_id, full)
        # Unqueued appends first become outbox rows: a full pull keeps queued rows only.
        yield from self._queue_appends(user_id)
        yield Stmt("UPDATE {sync_state} SET value = 1 WHERE key = 'muted'")
        ids = yield from self._local_refs(data["refs"])
        queued = yield Stmt(
            "SELECT table_name, pk FROM {sync_outbox} WHERE user_id = ?", [user_id], fetch=True
        )
        pending = {(r[0], tuple(json.loads(r[1]))) for r in queued}
        for t in self.tables:
            got = data["tables"].get(t.name)
            if got is None:
                continue
            rows = [self._to_local(t, r, ids) for r in got["rows"]]
            deleted = []
            for key in got["deleted"]:
                key = list(key)
                for column, ref in t.refs:
                    if column in t.primary_key:
                        i = t.primary_key.index(column)
                        key[i] = ids[ref].get(key[i])
                deleted.append(tuple(key))
            n, d = yield from self._apply_rows(t, user_id, rows, deleted, pending, full)
            report.rows += n
            report.deleted += d
        yield from self._cover_rows(user_id, [p.name for _, p, _ in self._marked()])
        yield Stmt(
            "UPDATE {sync_state} SET value = max(value, ?) WHERE key = 'clock'", [data["version"]]
        )
        yield Stmt(
            "INSERT INTO {sync_pulls} (user_id, xmin, pulled_at) VALUES (?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET xmin = excluded.xmin, pulled_at = excluded.pulled_at",
            [user_id, data["xmin"], _now()],
        )
        # Pulled rows are delivered: above them, new appends.
        yield from raise_marks([t for t, _, _ in self._marked()], user_id)
        yield Stmt("UPDATE {sync_state} SET value = 0 WHERE key = 'muted'")
        return report

    def _cover_rows(self, user_id: str | None, parents: Sequence[str]) -> Body[None]:
        """Counters of the parent tables ``parents`` (of ``user_id``, else all) never below
        the rows they numbered (queued rows included), once rows pulled from Postgres
        replaced the cache's parent rows."""
        for t, parent, counter in self._marked():
            if parent.name not in parents:
                continue
            match = _AND.join(SQL("c.{0} = p.{0}").format(Ident(c)) for c in parent.primary_key)
            stmt = SQL(
                "UPDATE {parent} AS p SET {ctr} = max({ctr}, coalesce("
                "(SELECT max(c.{seq}) FROM {table} c WHERE {match}), 0))"
            ).format(
                parent=TableRef(parent.name),
                ctr=Ident(counter),
                seq=Ident(t.primary_key[-1]),
                table=TableRef(t.name),
                match=match,
            )
            if user_id is None:
                yield Stmt(stmt)
            else:
                yield Stmt(stmt + SQL(" WHERE p.user_id = ?"), [user_id])

    def _apply_rows(
        self,
        t: Table,
        user_id: str,
        rows: list[tuple[Any, ...]],
        deleted: list[tuple[Any, ...]],
        pending: set[tuple[str, tuple[Any, ...]]],
        full: bool,
    ) -> Body[tuple[int, int]]:
        """Write pulled rows of ``t`` into the cache (triggers muted), leaving rows with
        queued writes alone; with ``full``, rows Postgres lacks go."""
        cols = self._cols(t.name)
        idx = [cols.names.index(c) for c in t.primary_key]
        table = TableRef(t.name)
        pk_names = _idents(t.primary_key)
        removed = 0
        if full:
            local = yield Stmt(
                SQL("SELECT {} FROM {} WHERE user_id = ?").format(pk_names, table),
                [user_id],
                fetch=True,
            )
            remote_keys = {tuple(r[i] for i in idx) for r in rows}
            deleted = [tuple(k) for k in local if tuple(k) not in remote_keys]
        gone = [k for k in deleted if (t.name, k) not in pending and None not in k]
        if gone:
            yield Many(_DELETE_WHERE.format(table, _equal_marks(t.primary_key)), gone)
            removed = len(gone)
        if t.seq_counter is not None and rows:
            width = len(TABLES[t.seq_counter[0]].primary_key)
            tops: dict[tuple[Any, ...], int] = {}
            for r in rows:
                key = tuple(r[i] for i in idx)
                tops[key[:width]] = max(tops.get(key[:width], 0), key[-1])
            for parent, top in tops.items():
                # Queued rows numbered at or below what Postgres handed out move above it.
                yield from self._renumber(t, parent, [], floor=top)
                yield Stmt(
                    "INSERT INTO {sync_cursors} (user_id, table_name, parent, seq) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (user_id, table_name, parent) DO UPDATE SET seq = max(seq, excluded.seq)",
                    [user_id, t.name, json.dumps(list(parent)), top],
                )
            queued = yield Stmt(
                "SELECT pk FROM {sync_outbox} WHERE table_name = ? AND user_id = ?",
                [t.name, user_id],
                fetch=True,
            )
            pending = pending | {(t.name, tuple(json.loads(q[0]))) for q in queued}
        keep = [r for r in rows if (t.name, tuple(r[i] for i in idx)) not in pending]
        if keep:
            update = [c for c in cols.names if c not in t.primary_key]
            yield Many(
                SQL(
                    "INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({pk}) DO {action}"
                ).format(
                    table=table,
                    names=_idents(cols.names),
                    marks=marks(len(cols.names)),
                    pk=pk_names,
                    action=_do_update(update),
                ),
                keep,
            )
        return len(keep), removed

    # -- status -------------------------------------------------------------------------
    @dual
    def outbox_depth(self) -> Plan[int]:
        """Writes not delivered yet: outbox rows, and appends that the next sync queues."""
        depth = yield Atomic(queued(self._synced), readonly=True, user_id=None)
        return int(depth[0])

    aoutbox_depth = outbox_depth.async_

    @dual
    def status(self, runs: int = 5) -> Plan[dict[str, Any]]:
        """Outbox depth, lag (age of the oldest queued write, seconds) and the last runs
        of the sync log (newest first)."""
        depth, last = yield Atomic(self._status_body(runs), readonly=True, user_id=None)
        lag = 0.0
        if depth and depth[1]:
            lag = (datetime.now(timezone.utc) - datetime.fromisoformat(depth[1])).total_seconds()
        keys = (
            "run_id",
            "started_at",
            "ended_at",
            "events_synced",
            "rows_synced",
            "status",
            "error",
        )
        return {
            "outbox": int(depth[0]) if depth else 0,
            "lag_seconds": round(max(lag, 0.0), 3),
            "runs": [dict(zip(keys, r, strict=True)) for r in last],
        }

    astatus = status.async_

    def _status_body(self, runs: int) -> Body[tuple[Any, Any]]:
        depth = yield from queued(self._synced)
        last = yield Stmt(
            "SELECT run_id, started_at, ended_at, events_synced, rows_synced, status, error "
            "FROM {memory_sync_log} ORDER BY run_id DESC LIMIT ?",
            [runs],
            fetch=True,
        )
        return depth, last

    # -- the worker ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the sync worker thread: a sync every ``sync_interval`` seconds (and a
        refresh of the users loaded with :meth:`load_user` every ``refresh_interval``);
        failures are logged in the sync log and retried at the next interval."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="agentmem-sync", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float | None = 30.0) -> None:
        """Stop the worker thread (after the batch it is delivering)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
                self.last_error = None
                for user, at in list(self._loaded.items()):
                    if time.monotonic() - at >= self.refresh_interval:
                        self.load_user(user)
            except Exception as exc:  # logged in memory_sync_log; retried next interval
                self.last_error = exc
            self._stop.wait(self.sync_interval)

    async def astart(self) -> None:
        """Start the sync worker as a task of the running event loop."""
        if self._task is not None and not self._task.done():
            return
        self._astop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._aloop(self._astop))

    async def astop(self, *, timeout: float | None = 30.0) -> None:
        """Stop the worker task (after the batch it is delivering)."""
        if self._task is not None:
            self._astop.set()
            await asyncio.wait_for(self._task, timeout)
            self._task = None

    async def _aloop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.async_sync()
                self.last_error = None
                for user, at in list(self._loaded.items()):
                    if time.monotonic() - at >= self.refresh_interval:
                        await self.aload_user(user)
            except Exception as exc:  # logged in memory_sync_log; retried next interval
                self.last_error = exc
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.sync_interval)

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the worker and close both engines (queued writes stay in the outbox)."""
        self.stop()
        super().close()
        self.remote.close()

    async def aclose(self) -> None:
        await self.astop()
        self.stop()
        await super().aclose()
        await self.remote.aclose()

    def __enter__(self) -> HybridEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        # A last sync; twice, since the first use of a connection that died while
        # Postgres was away fails once (the pool is checked then). Queued writes that do
        # not get through wait in the outbox for the next run.
        for _ in range(2):
            try:
                self.sync()
                break
            except Exception:  # noqa: S112 (logged in memory_sync_log)
                continue
        self.close()

    async def __aenter__(self) -> HybridEngine:
        await self.astart()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()
        for _ in range(2):  # as in __exit__
            try:
                await self.async_sync()
                break
            except Exception:  # noqa: S112 (logged in memory_sync_log)
                continue
        await self.aclose()


def statements_one(stmt: Stmt | One) -> Body[Any]:
    """A body of one statement; its result."""
    return (yield stmt)
