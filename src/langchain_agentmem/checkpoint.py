"""LangGraph checkpointer on the shared schema: :class:`CheckpointSaver`.

One class with the sync and the async interface of LangGraph's ``BaseCheckpointSaver``,
on Postgres and SQLite. A checkpoint row holds the checkpoint without its channel values;
each channel value is stored once per version in ``checkpoint_blobs`` (a checkpoint that
did not change a channel points at the blob an earlier one stored). Pending writes live in
``checkpoint_writes`` and come back in LangGraph's order (task path, task id, index).

Every call takes its own connection from the engine's pool: one saver shared by many
concurrent graphs runs their calls in parallel. A ``user_id`` in the config's
``configurable`` (else the saver's ``user_id``) scopes every row to that tenant.

Example:
    >>> from langgraph.graph import START, StateGraph
    >>> from typing_extensions import TypedDict
    >>> from langchain_agentmem import CheckpointSaver, connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> class State(TypedDict):
    ...     count: int
    >>> builder = StateGraph(State)
    >>> _ = builder.add_node("inc", lambda s: {"count": s["count"] + 1})
    >>> _ = builder.add_edge(START, "inc")
    >>> graph = builder.compile(checkpointer=CheckpointSaver(engine))
    >>> config = {"configurable": {"thread_id": "t1"}}
    >>> graph.invoke({"count": 1}, config)["count"]
    2
    >>> graph.get_state(config).values
    {'count': 2}
"""

from __future__ import annotations

import builtins
import functools
import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ._checkpoint.chunks import (
    ChunkCache,
    array_header,
    chunk_type,
    chunkable,
    element_bytes,
    is_chunk,
    parse_chunk_type,
    plan_chunks,
)
from ._checkpoint.delta import delta_walk_steps
from ._checkpoint.serde import MemoLoader, ValueMemo, paused_gc
from ._core.plan import Atomic, Body, Page, Plan, Stmt, dual, paged, statements
from ._core.users import check_user_key
from ._encoding.json import clean_text, dumps, loads
from ._encoding.keys import decode_key, encode_key
from ._entry import ConnStringEntry
from .dialects import SQL, Composable, Composed, Dialect, RowLock, Table, Template, Unnest
from .engine import EngineLike, as_engine

__all__ = ["CheckpointSaver"]

Query = tuple[Template, list[Any]]

#: Checkpoints read per round trip by ``list``.
PAGE_SIZE = 100
PRUNE_STRATEGIES = ("keep_latest", "delete")
#: Key of the stored checkpoint listing the earlier chunks of its chunked channels.
CHUNKS_KEY = "agentmem_chunks"
#: Metadata keys of threads whose graphs use LangGraph's DeltaChannel.
DELTA_KEYS = frozenset({"counters_since_delta_snapshot", "delta_writes_versioned"})


# -- values ----------------------------------------------------------------------------


def version_text(version: Any) -> str:
    """The stored form of a channel version: the text SQL gets from the JSON member.

    Example:
        >>> version_text(3), version_text("00000002.5"), version_text(1.5)
        ('3', '00000002.5', '1.5')
    """
    if isinstance(version, str):
        return version
    if isinstance(version, bool) or not isinstance(version, (int, float)):
        raise TypeError(
            f"expected a channel version of type str, int or float, got {type(version).__name__}: {version!r}"
        )
    return repr(version)


def clean_json(value: Any) -> Any:
    """A copy of a JSON value that Postgres ``jsonb`` accepts (NUL and lone surrogates in
    strings and keys replaced); see :func:`~._json.clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values that, unlike ``==``, keeps ``True`` apart from ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def metadata_matches(metadata: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    """Whether every ``filter`` key is in ``metadata`` with an equal value."""
    if not filter:
        return True
    return all(k in metadata and json_equal(metadata[k], v) for k, v in filter.items())


class _Scope:
    """Who and where: the tenant, thread and namespace of a config, as stored."""

    __slots__ = ("uid", "tid", "ns", "user_id", "explicit_user", "user_key")

    def __init__(
        self, config: RunnableConfig | None, default_user: str, user_key: str | None = None
    ) -> None:
        conf = (config or {}).get("configurable") or {}
        # Without a user key the configurable's keys never partition (LangGraph's rule).
        user = conf.get(user_key) if user_key is not None else None
        self.user_key = user_key
        self.explicit_user = user is not None and user != default_user
        self.user_id = default_user if user is None else user
        if not isinstance(self.user_id, str):
            raise TypeError(
                f"configurable {user_key} must be a str, got {type(self.user_id).__name__}: {self.user_id!r}"
            )
        self.uid = encode_key(self.user_id)
        thread = conf.get("thread_id")
        self.tid = None if thread is None else encode_key(str(thread))
        ns = conf.get("checkpoint_ns")
        self.ns = None if ns is None else encode_key(ns)

    def thread(self) -> str:
        if self.tid is None:
            raise ValueError(
                'config["configurable"]["thread_id"] is required, got a config without one'
            )
        return self.tid


# -- query builders (pure) -------------------------------------------------------------
# Statements are compositions (see ``dialects/compose.py``): fixed ones are built once,
# here; those whose shape varies are memoized on it.

_COMMA = SQL(", ")
_MARK = SQL("?")
_NOTHING = SQL("")

_BLOB_MATCH = SQL(
    "b.user_id = ? AND b.thread_id = r.thread_id AND b.checkpoint_ns = r.checkpoint_ns "
    "AND b.channel = r.channel AND b.version = r.version"
)
_SELECT = SQL(
    "WITH page AS (SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, "
    "metadata, metadata_exact FROM {checkpoints} WHERE user_id = ?{conditions} "
    "ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC LIMIT ?) "
    # The writes come first: every column of theirs has a type, which the NULLs of
    # the other two parts take on Postgres.
    "SELECT 2, w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.channel, w.type, "
    "w.task_path, w.idx, w.blob FROM page p JOIN {checkpoint_writes} w ON w.user_id = ? {thread}"
    "AND w.thread_id = p.thread_id AND w.checkpoint_ns = p.checkpoint_ns AND w.checkpoint_id = p.checkpoint_id "
    "UNION ALL SELECT 0, thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, CAST(checkpoint AS TEXT), "
    "coalesce(CAST(metadata_exact AS TEXT), CAST(metadata AS TEXT)), NULL, NULL, NULL FROM page "
    # Blobs by primary key, one lookup per reference (correlated subqueries: a join
    # may be planned as a scan of every blob of the tenant).
    "UNION ALL SELECT 1, r.thread_id, r.checkpoint_ns, r.channel, r.version, "
    "(SELECT b.type FROM {checkpoint_blobs} b WHERE {match}), NULL, NULL, NULL, "
    "(SELECT b.blob FROM {checkpoint_blobs} b WHERE {match}) "
    "FROM (SELECT p.thread_id, p.checkpoint_ns, j.key AS channel, CAST(j.value AS TEXT) AS version "
    "FROM page p, {entries} UNION SELECT p.thread_id, p.checkpoint_ns, CAST(k.value AS TEXT), k.key "
    "FROM page p, {chunks}) r"
)
_WRITES_OF_THREAD = SQL("AND w.thread_id = ? AND w.checkpoint_ns = ? ")
# One checkpoint (a page of at most one): its writes by their primary key's prefix, whatever
# the planner estimates (without statistics it joined on the thread alone and filtered
# every write of the thread, a cost growing with the thread).
_WRITES_OF_ONE = _WRITES_OF_THREAD + SQL("AND w.checkpoint_id = (SELECT checkpoint_id FROM page) ")
_AND_ = SQL(" AND ")


@functools.lru_cache(maxsize=256)
def _select_sql(
    dialect: Dialect, where: tuple[Composable, ...], thread: bool, one: bool = False
) -> Composed:
    # Memoized: a listing or a get composes the same few shapes over and over.
    writes = (_WRITES_OF_ONE if one else _WRITES_OF_THREAD) if thread else _NOTHING
    return _SELECT.format(
        conditions=SQL("").join(_AND_ + w for w in where),
        thread=writes,
        match=_BLOB_MATCH,
        entries=SQL(dialect.json_entries("p.checkpoint", "channel_versions", "j")),
        chunks=SQL(dialect.json_entries("p.checkpoint", CHUNKS_KEY, "k")),
    )


def select_query(
    dialect: Dialect,
    uid: str,
    where: Sequence[Composable],
    params: Sequence[Any],
    limit: int,
    thread: tuple[str, str] | None = None,
) -> Query:
    """Up to ``limit`` checkpoints (newest first) matching ``where``, with the blobs of
    their channel versions and their pending writes, in one statement.

    Rows are ``(kind, thread_id, checkpoint_ns, a, b, c, d, e, n, blob)``: kind 0 is a
    checkpoint (a=id, b=parent id, c=checkpoint JSON, d=metadata JSON), kind 1 a blob
    (a=channel, b=version, c=type), kind 2 a write (a=checkpoint id, b=task id,
    c=channel, d=type, e=task path, n=index). ``thread`` (thread id, namespace) when
    every checkpoint listed is of that one: the writes are then looked up by it (with no
    statistics yet, a planner may scan every write of the tenant for the join instead),
    and with ``limit`` 1 by the checkpoint's id too.
    """
    query = _select_sql(
        dialect, tuple(where), thread is not None, thread is not None and limit == 1
    )
    return query, [uid, *params, limit, uid, *(thread or ()), uid, uid]


def read_steps(dialect: Dialect, uid: str, query: Query) -> Body[list[tuple[Any, ...]]]:
    """The rows of a :func:`select_query`, then the earlier chunks they need and do not
    have (:func:`missing_chunks`)."""
    rows: list[tuple[Any, ...]] = yield Stmt(*query, True)
    if missing := missing_chunks(rows):
        rows += yield Stmt(*chunks_query(dialect, uid, missing), True)
    return rows


_THREAD_IS = SQL("thread_id = ?")
_NS_IS = SQL("checkpoint_ns = ?")
_ID_IS = SQL("checkpoint_id = ?")
_ID_BEFORE = SQL("checkpoint_id < ?")
_KEY_BEFORE = SQL("(checkpoint_id, thread_id, checkpoint_ns) < (?, ?, ?)")
_LATEST = (_THREAD_IS, _NS_IS)
_ONE = (_THREAD_IS, _NS_IS, _ID_IS)


def get_query(dialect: Dialect, scope: _Scope, checkpoint_id: str | None) -> Query:
    params: list[Any] = [scope.thread(), scope.ns or ""]
    if checkpoint_id:
        params.append(checkpoint_id)
    where = _ONE if checkpoint_id else _LATEST
    return select_query(dialect, scope.uid, where, params, 1, (params[0], params[1]))


def missing_chunks(rows: Sequence[tuple[Any, ...]]) -> list[tuple[str, str, str, str]]:
    """Keys (thread, namespace, channel, version) of earlier chunks that the blobs in
    :func:`select_query` rows need and the rows do not have."""
    present = {(r[1], r[2], r[3], r[4]) for r in rows if r[0] == 1 and r[5] is not None}
    missing: set[tuple[str, str, str, str]] = set()
    for r in rows:
        if r[0] == 1 and is_chunk(r[5]):
            for version in parse_chunk_type(r[5])[2]:
                key = (r[1], r[2], r[3], version)
                if key not in present:
                    missing.add(key)
    return sorted(missing)


_BLOB_KEY_COLS = [("tid", "text"), ("ns", "text"), ("ch", "text"), ("v", "text")]
_CHUNKS = SQL(
    "SELECT 1, m.tid, m.ns, m.ch, m.v, (SELECT b.type FROM {checkpoint_blobs} b WHERE {match}), "
    "NULL, NULL, NULL, (SELECT b.blob FROM {checkpoint_blobs} b WHERE {match}) FROM {keys}"
).format(
    match=SQL(
        "b.user_id = ? AND b.thread_id = m.tid AND b.checkpoint_ns = m.ns AND b.channel = m.ch "
        "AND b.version = m.v"
    ),
    keys=Unnest(_BLOB_KEY_COLS),
)


def chunks_query(dialect: Dialect, uid: str, keys: Sequence[tuple[str, str, str, str]]) -> Query:
    """The blobs ``keys``, as kind-1 rows of :func:`select_query`."""
    return _CHUNKS, [uid, uid, *dialect.unnest_params(_BLOB_KEY_COLS, keys)]


def delta_history_steps(
    dialect: Dialect,
    uid: str,
    tid: str,
    ns: str,
    checkpoint_id: str | None,
    channels: Sequence[str],
) -> Body[Any]:
    """The walk of :func:`~._delta.delta_walk_steps`, then the blobs of the seeds it
    found (with the earlier chunks of chunked ones) as kind-1 rows of
    :func:`select_query`. Returns ``(walked, rows)``."""
    walked = yield from delta_walk_steps(dialect, uid, tid, ns, checkpoint_id, channels)
    keys = sorted({(tid, ns, channel, seed[1]) for channel, (_, seed) in walked.items() if seed})
    rows: list[tuple[Any, ...]] = []
    if keys:
        rows = yield Stmt(*chunks_query(dialect, uid, keys), True)
        if missing := missing_chunks(rows):
            rows += yield Stmt(*chunks_query(dialect, uid, missing), True)
    return walked, rows


def list_conditions(
    dialect: Dialect,
    scope: _Scope,
    config: RunnableConfig | None,
    filter: dict[str, Any] | None,
    before: RunnableConfig | None,
) -> tuple[list[Composable], list[Any], bool]:
    """WHERE conditions of ``list`` (without paging) and whether one namespace of one
    thread is listed."""
    where: list[Composable] = []
    params: list[Any] = []
    if scope.tid is not None:
        where.append(_THREAD_IS)
        params.append(scope.tid)
    if scope.ns is not None:
        where.append(_NS_IS)
        params.append(scope.ns)
    if config is not None and (checkpoint_id := get_checkpoint_id(config)):
        where.append(_ID_IS)
        params.append(checkpoint_id)
    if before is not None and (before_id := get_checkpoint_id(before)):
        where.append(_ID_BEFORE)
        params.append(before_id)
    for key, value in (filter or {}).items():
        if not isinstance(key, str):
            raise TypeError(f"metadata filter keys must be str, got {type(key).__name__}: {key!r}")
        predicate = dialect.json_field_equals("metadata", clean_text(key), clean_json(value))
        if predicate is not None:
            where.append(SQL(predicate[0]))  # the dialect's text (trusted code)
            params.extend(predicate[1])
    return where, params, scope.tid is not None and scope.ns is not None


def after_condition(single: bool, last: tuple[str, str, str]) -> tuple[Composable, list[Any]]:
    """Keyset paging: rows after ``last`` = (checkpoint_id, thread_id, checkpoint_ns)."""
    if single:
        return _ID_BEFORE, [last[0]]
    return _KEY_BEFORE, list(last)


def _values(n: int, width: int) -> Composed:
    """``n`` rows of ``width`` parameter marks: ``(?, ?), (?, ?)``."""
    row = SQL("({})").format(_COMMA.join([_MARK] * width))
    return _COMMA.join([row] * n)


_CHECKPOINT_COLS = SQL(
    "user_id, thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, checkpoint, "
    "metadata, metadata_exact"
)
_CHECKPOINT_UPSERT = SQL(
    " ON CONFLICT (user_id, thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET "
    "parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id, "
    "checkpoint = excluded.checkpoint, metadata = excluded.metadata, metadata_exact = excluded.metadata_exact"
)
_BLOB_COLS = SQL("user_id, thread_id, checkpoint_ns, channel, version, type, blob")
_BLOB_KEEP = SQL(" ON CONFLICT (user_id, thread_id, checkpoint_ns, channel, version) DO NOTHING")
_CHUNK_COLS = [("ch", "text"), ("v", "text")]
_NEW_BLOB_COLS = [("ch", "text"), ("v", "text"), ("t", "text"), ("b", "bytes")]
# Each chunk by its primary key (a join may be planned as a scan of the thread's blobs).
_CHUNK_LOOKUP = SQL(
    "SELECT 1 FROM {checkpoint_blobs} b WHERE b.user_id = ? AND b.thread_id = ? AND b.checkpoint_ns = ? "
    "AND b.channel = m.ch AND b.version = m.v"
) + RowLock("key share")
_FIND_CHUNKS = SQL("SELECT m.ch FROM {chunks} WHERE EXISTS ({lookup})").format(
    chunks=Unnest(_CHUNK_COLS), lookup=_CHUNK_LOOKUP
)
_INSERT_CHECKPOINT = SQL("INSERT INTO {checkpoints} ({cols}) VALUES {row}{upsert}").format(
    cols=_CHECKPOINT_COLS, row=_values(1, 9), upsert=_CHECKPOINT_UPSERT
)
# A delete of a chunk found waits for this statement to commit, or this statement
# waits for the delete and then does not find it.
_PUT = SQL(
    "WITH found AS (SELECT 1 FROM {chunks} CROSS JOIN LATERAL ({lookup}) k), "
    "ok AS (SELECT count(*) = ? AS ok FROM found), "
    "b AS (INSERT INTO {checkpoint_blobs} ({blob_cols}) SELECT ?, ?, ?, m.ch, m.v, m.t, m.b FROM {blobs} "
    "WHERE (SELECT ok FROM ok){keep}) INSERT INTO {checkpoints} ({cols}) "
    "SELECT ?, ?, ?, ?, ?, ?, CAST(? AS json), CAST(? AS jsonb), "
    "CAST(? AS json) WHERE (SELECT ok FROM ok){upsert} RETURNING 1"
).format(
    chunks=Unnest(_CHUNK_COLS),
    lookup=_CHUNK_LOOKUP,
    blob_cols=_BLOB_COLS,
    blobs=Unnest(_NEW_BLOB_COLS),
    keep=_BLOB_KEEP,
    cols=_CHECKPOINT_COLS,
    upsert=_CHECKPOINT_UPSERT,
)


@functools.lru_cache(maxsize=64)
def _insert_blobs(n: int) -> Composed:
    return SQL("INSERT INTO {checkpoint_blobs} ({cols}) VALUES {rows}{keep}").format(
        cols=_BLOB_COLS, rows=_values(n, 7), keep=_BLOB_KEEP
    )


def put_steps(
    dialect: Dialect,
    scope: _Scope,
    parent_id: str | None,
    checkpoint: dict[str, Any],
    metadata: dict[str, Any],
    blobs: Sequence[tuple[str, str, str, bytes | None]],
    earlier: Sequence[tuple[str, str]],
) -> Body[Any]:
    """Insert the new blobs (kept if already there) and upsert the checkpoint row; return
    whether they were written. They are not when one of the ``earlier`` chunks (channel,
    version) the checkpoint builds on is gone: a prune or a delete of the thread, from
    another process, took it while a graph was running; the caller then writes its lists
    whole. Where rows can be locked, the chunks found stay locked against deletion until
    the checkpoint commits.

    With writable CTEs (``dialect.supports_dml_cte``) this is one statement, whose text
    does not depend on the number of blobs (they come as arrays), so the server prepares
    and plans it once per connection: one round trip, atomic without BEGIN/COMMIT.
    Otherwise three statements in the caller's transaction."""
    uid, tid, ns = scope.uid, scope.thread(), scope.ns or ""
    exact = dumps(metadata)
    cleaned = dumps(clean_json(metadata))
    run_id = metadata.get("run_id")
    cp_params = [
        uid,
        tid,
        ns,
        checkpoint["id"],
        parent_id,
        clean_text(run_id) if isinstance(run_id, str) else None,
        dumps(checkpoint),
        cleaned,
        None if cleaned == exact else exact,
    ]
    wanted = sorted(set(earlier))
    chunk_params = [*dialect.unnest_params(_CHUNK_COLS, wanted), uid, tid, ns]
    if not dialect.supports_dml_cte:
        if wanted:
            found = yield Stmt(_FIND_CHUNKS, chunk_params, True)
            if len(found) != len(wanted):
                return False
        if blobs:
            blob_params: list[Any] = []
            for channel, version, type_, data in blobs:
                blob_params.extend((uid, tid, ns, channel, version, type_, data))
            yield Stmt(_insert_blobs(len(blobs)), blob_params)
        yield Stmt(_INSERT_CHECKPOINT, cp_params)
        return True
    params = [
        *chunk_params,
        len(wanted),
        uid,
        tid,
        ns,
        *dialect.unnest_params(_NEW_BLOB_COLS, blobs),
        *cp_params,
    ]
    return bool((yield Stmt(_PUT, params, True)))


_WRITES_REPLACE = SQL(
    "DO UPDATE SET channel = excluded.channel, type = excluded.type, blob = excluded.blob, "
    "task_path = excluded.task_path"
)


@functools.lru_cache(maxsize=64)
def _insert_writes(n: int, upsert: bool) -> Composed:
    return SQL(
        "INSERT INTO {checkpoint_writes} (user_id, thread_id, checkpoint_ns, checkpoint_id, task_id, idx, "
        "channel, type, blob, task_path) VALUES {rows} "
        "ON CONFLICT (user_id, thread_id, checkpoint_ns, checkpoint_id, task_id, idx) {conflict}"
    ).format(rows=_values(n, 10), conflict=_WRITES_REPLACE if upsert else SQL("DO NOTHING"))


def put_writes_query(
    scope: _Scope,
    checkpoint_id: str,
    task_id: str,
    task_path: str,
    rows: Sequence[tuple[int, str, str, bytes]],
) -> Query:
    """Insert writes; those of LangGraph's special channels (errors, interrupts...)
    replace an earlier one at the same index, the others are kept if already there."""
    uid, tid, ns = scope.uid, scope.thread(), scope.ns or ""
    params: list[Any] = []
    for idx, channel, type_, data in rows:
        params.extend((uid, tid, ns, checkpoint_id, task_id, idx, channel, type_, data, task_path))
    upsert = all(channel in WRITES_IDX_MAP for _, channel, _, _ in rows)
    return _insert_writes(len(rows), upsert), params


_T = TypeVar("_T")

_TABLES = ("checkpoint_writes", "checkpoint_blobs", "checkpoints")
_DELETE_THREAD = [
    SQL("DELETE FROM {t} WHERE user_id = ? AND thread_id = ?").format(t=Table(t)) for t in _TABLES
]


def delete_thread_queries(uid: str, tid: str) -> list[Query]:
    return [(q, [uid, tid]) for q in _DELETE_THREAD]


_COPY_THREAD = [
    SQL(
        "INSERT INTO {checkpoints} (user_id, thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, "
        "checkpoint, metadata, metadata_exact, created_at) SELECT user_id, ?, checkpoint_ns, checkpoint_id, "
        "parent_checkpoint_id, run_id, checkpoint, metadata, metadata_exact, created_at FROM {checkpoints} "
        "WHERE user_id = ? AND thread_id = ? ON CONFLICT DO NOTHING"
    ),
    SQL(
        "INSERT INTO {checkpoint_blobs} (user_id, thread_id, checkpoint_ns, channel, version, type, blob) "
        "SELECT user_id, ?, checkpoint_ns, channel, version, type, blob FROM {checkpoint_blobs} "
        "WHERE user_id = ? AND thread_id = ? ON CONFLICT DO NOTHING"
    ),
    SQL(
        "INSERT INTO {checkpoint_writes} (user_id, thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, "
        "type, blob, task_path) SELECT user_id, ?, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, "
        "task_path FROM {checkpoint_writes} WHERE user_id = ? AND thread_id = ? ON CONFLICT DO NOTHING"
    ),
]


def copy_thread_queries(uid: str, source: str, target: str) -> list[Query]:
    """Copy every checkpoint, blob and write of ``source`` to ``target`` (rows the
    target already has are kept)."""
    return [(q, [target, uid, source]) for q in _COPY_THREAD]


_TABLE_COLS = {
    "checkpoints": SQL(
        "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, checkpoint, "
        "metadata, metadata_exact, created_at"
    ),
    "checkpoint_blobs": SQL("thread_id, checkpoint_ns, channel, version, type, blob"),
    "checkpoint_writes": SQL(
        "thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path"
    ),
}
_TID_COLS = [("tid", "text")]
_IN_THREADS = SQL(" AND thread_id IN (SELECT tid FROM {})").format(Unnest(_TID_COLS))


@functools.lru_cache(maxsize=4)
def _move_sql(some: bool) -> tuple[Composed, list[Composed], list[Composed]]:
    """The count, copy and delete statements of :func:`move_threads_steps` (``some``:
    of the threads given)."""
    where = _IN_THREADS if some else _NOTHING
    count = SQL("SELECT count(*) FROM {checkpoints} WHERE user_id = ?{where}").format(where=where)
    copies = [
        SQL(
            "INSERT INTO {t} (user_id, {cols}) SELECT ?, {cols} FROM {t} WHERE user_id = ?{where} "
            "ON CONFLICT DO NOTHING"
        ).format(t=Table(table), cols=_TABLE_COLS[table], where=where)
        for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
    ]
    deletes = [
        SQL("DELETE FROM {t} WHERE user_id = ?{where}").format(t=Table(table), where=where)
        for table in _TABLES
    ]
    return count, copies, deletes


def move_threads_steps(
    dialect: Dialect, source: str, target: str, thread_ids: Sequence[str] | None
) -> Body[Any]:
    """Copy the rows of ``source``'s threads (all, or ``thread_ids``) to ``target`` (rows
    it has are kept), delete them from ``source``; return the checkpoints moved."""
    extra: list[Any] = []
    if thread_ids is not None:
        if not thread_ids:
            return 0
        extra = dialect.unnest_params(_TID_COLS, [(t,) for t in thread_ids])
    count, copies, deletes = _move_sql(thread_ids is not None)
    rows = yield Stmt(count, [source, *extra], True)
    for copy in copies:
        yield Stmt(copy, [target, source, *extra])
    for delete in deletes:
        yield Stmt(delete, [source, *extra])
    return int(rows[0][0])


# -- multi-step operations (run by _steps.run / arun) ----------------------------------

_USED_BLOBS = SQL(
    "SELECT j.key, CAST(j.value AS TEXT) FROM {checkpoints} c, {entries} "
    "WHERE c.user_id = ? AND c.thread_id = ? AND c.checkpoint_ns = ? UNION "
    "SELECT CAST(k.value AS TEXT), k.key FROM {checkpoints} c, {chunks} "
    "WHERE c.user_id = ? AND c.thread_id = ? AND c.checkpoint_ns = ?"
)


def used_blobs_query(dialect: Dialect, uid: str, tid: str, ns: str) -> Query:
    """(channel, version) of every blob the checkpoints of one thread namespace use:
    their channel versions and the earlier chunks they list."""
    return (
        _USED_BLOBS.format(
            entries=SQL(dialect.json_entries("c.checkpoint", "channel_versions", "j")),
            chunks=SQL(dialect.json_entries("c.checkpoint", CHUNKS_KEY, "k")),
        ),
        [uid, tid, ns, uid, tid, ns],
    )


_GC_COLS = [("channel", "text"), ("version", "text")]
_OF_NAMESPACE = SQL(
    "FROM {checkpoint_blobs} WHERE user_id = ? AND thread_id = ? AND checkpoint_ns = ?"
)
_IN_GARBAGE = SQL(" AND (channel, version) IN (SELECT channel, version FROM {})").format(
    Unnest(_GC_COLS)
)
_STORED_BLOBS = SQL("SELECT channel, version, type ") + _OF_NAMESPACE
_LOCK_GARBAGE = SQL("SELECT 1 ") + _OF_NAMESPACE + _IN_GARBAGE + RowLock("update")
_DELETE_GARBAGE = SQL("DELETE ") + _OF_NAMESPACE + _IN_GARBAGE


def gc_blobs_steps(dialect: Dialect, uid: str, tid: str, ns: str) -> Body[Any]:
    """Delete the blobs of one thread namespace that no remaining checkpoint uses."""
    used = yield Stmt(*used_blobs_query(dialect, uid, tid, ns), True)
    stored = yield Stmt(_STORED_BLOBS, [uid, tid, ns], True)
    keep = {(r[0], r[1]) for r in used}
    # A chunk keeps the chunks before it.
    for channel, version, type_ in stored:
        if (channel, version) in keep and is_chunk(type_):
            keep.update((channel, v) for v in parse_chunk_type(type_)[2])
    garbage = [(r[0], r[1]) for r in stored if (r[0], r[1]) not in keep]
    if garbage and dialect.supports_row_locks:
        # Writers run concurrently: a put running now may build on one of these (it
        # holds it locked until it commits, see put_steps). Lock them, then look again at
        # what the checkpoints use, the chunks they list included: that sees such a put's
        # checkpoint.
        yield Stmt(
            _LOCK_GARBAGE,
            [uid, tid, ns, *dialect.unnest_params(_GC_COLS, garbage)],
            True,
        )
        now_used = yield Stmt(*used_blobs_query(dialect, uid, tid, ns), True)
        still = {(r[0], r[1]) for r in now_used}
        garbage = [g for g in garbage if g not in still]
    if garbage:
        yield Stmt(
            _DELETE_GARBAGE,
            [uid, tid, ns, *dialect.unnest_params(_GC_COLS, garbage)],
            False,
        )
    return len(garbage)


_KEY_COLS = [("tid", "text"), ("ns", "text"), ("cid", "text")]
_DELETE_CHECKPOINTS = [
    SQL(
        "DELETE FROM {t} WHERE user_id = ? AND (thread_id, checkpoint_ns, checkpoint_id) IN "
        "(SELECT tid, ns, cid FROM {keys})"
    ).format(t=Table(table), keys=Unnest(_KEY_COLS))
    for table in ("checkpoint_writes", "checkpoints")
]


def delete_checkpoints_steps(
    dialect: Dialect, uid: str, keys: Sequence[tuple[str, str, str]]
) -> Body[Any]:
    """Delete the checkpoints ``keys`` = (thread_id, checkpoint_ns, checkpoint_id), their
    writes, and the blobs no remaining checkpoint uses. Returns how many were deleted."""
    if not keys:
        return 0
    for delete in _DELETE_CHECKPOINTS:
        yield Stmt(delete, [uid, *dialect.unnest_params(_KEY_COLS, list(keys))], False)
    for tid, ns in sorted({(k[0], k[1]) for k in keys}):
        yield from gc_blobs_steps(dialect, uid, tid, ns)
    return len(keys)


_RUN_COLS = [("run_id", "text")]
_OF_RUNS = SQL(
    "SELECT thread_id, checkpoint_ns, checkpoint_id FROM {checkpoints} WHERE user_id = ? AND run_id IN "
    "(SELECT run_id FROM {runs})"
).format(runs=Unnest(_RUN_COLS))


def delete_for_runs_steps(dialect: Dialect, uid: str, run_ids: Sequence[str]) -> Body[Any]:
    rows = yield Stmt(
        _OF_RUNS,
        [uid, *dialect.unnest_params(_RUN_COLS, [(clean_text(r),) for r in run_ids])],
        True,
    )
    return (yield from delete_checkpoints_steps(dialect, uid, [tuple(r) for r in rows]))  # type: ignore[misc]


def keep_latest_steps(dialect: Dialect, uid: str, tid: str) -> Body[Any]:
    """Keep only the newest checkpoint of each namespace of one thread (and its writes)."""
    heads = yield Stmt(
        "SELECT checkpoint_ns, checkpoint_id, CAST(metadata AS TEXT) FROM {checkpoints} WHERE user_id = ? AND thread_id = ? "
        "AND (checkpoint_ns, checkpoint_id) IN (SELECT checkpoint_ns, max(checkpoint_id) FROM {checkpoints} "
        "WHERE user_id = ? AND thread_id = ? GROUP BY checkpoint_ns)",
        [uid, tid, uid, tid],
        True,
    )
    for _, _, metadata in heads:
        if DELTA_KEYS & loads(metadata).keys():
            # A DeltaChannel rebuilds its value from ancestors' writes: dropping them
            # would silently empty it (see BaseCheckpointSaver.prune).
            raise NotImplementedError(
                f"keep_latest cannot prune thread {decode_key(tid)!r}: it uses a DeltaChannel"
            )
    deleted = 0
    for ns, head, _ in heads:
        # Only older rows go: a run may save writes of a newer checkpoint meanwhile.
        yield Stmt(
            "DELETE FROM {checkpoint_writes} WHERE user_id = ? AND thread_id = ? AND checkpoint_ns = ? AND checkpoint_id < ?",
            [uid, tid, ns, head],
            False,
        )
        gone = yield Stmt(
            "DELETE FROM {checkpoints} WHERE user_id = ? AND thread_id = ? AND checkpoint_ns = ? AND checkpoint_id < ? "
            "RETURNING checkpoint_id",
            [uid, tid, ns, head],
            True,
        )
        deleted += len(gone)
        yield Stmt(
            "UPDATE {checkpoints} SET parent_checkpoint_id = NULL WHERE user_id = ? AND thread_id = ? "
            "AND checkpoint_ns = ? AND checkpoint_id = ?",
            [uid, tid, ns, head],
            False,
        )
        if gone:
            yield from gc_blobs_steps(dialect, uid, tid, ns)
    return deleted


def prune_steps(dialect: Dialect, uid: str, thread_ids: Sequence[str], strategy: str) -> Body[Any]:
    deleted = 0
    for tid in thread_ids:
        if strategy == "delete":
            rows = yield Stmt(
                "SELECT count(*) FROM {checkpoints} WHERE user_id = ? AND thread_id = ?",
                [uid, tid],
                True,
            )
            deleted += int(rows[0][0])
            for query, params in delete_thread_queries(uid, tid):
                yield Stmt(query, params)
        else:
            deleted += yield from keep_latest_steps(dialect, uid, tid)
    return deleted


_NEWER_EXISTS = SQL(
    " AND EXISTS (SELECT 1 FROM {checkpoints} n WHERE n.user_id = c.user_id AND n.thread_id = c.thread_id "
    "AND n.checkpoint_ns = c.checkpoint_ns AND n.checkpoint_id > c.checkpoint_id)"
)
_SAVED_BEFORE = SQL(
    "SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id FROM {checkpoints} c "
    "WHERE c.user_id = ? AND c.created_at < ?"
)
_SAVED_BEFORE_NOT_LATEST = _SAVED_BEFORE + _NEWER_EXISTS
_COUNT_OF_THREAD = SQL(
    "SELECT count(*) FROM {checkpoints} c WHERE c.user_id = ? AND c.thread_id = ?"
)
_COUNT_NOT_LATEST = _COUNT_OF_THREAD + _NEWER_EXISTS


def prune_before_steps(
    dialect: Dialect, uid: str, cutoff: datetime, keep_latest: bool, dry_run: bool = False
) -> Body[Any]:
    """Delete the checkpoints created before ``cutoff``; with ``keep_latest`` never the
    newest checkpoint of a thread namespace. ``dry_run``: only count them."""
    query = _SAVED_BEFORE_NOT_LATEST if keep_latest else _SAVED_BEFORE
    rows = yield Stmt(query, [uid, dialect.from_datetime(cutoff)], True)
    if dry_run:
        return len(rows)
    return (yield from delete_checkpoints_steps(dialect, uid, [tuple(r) for r in rows]))  # type: ignore[misc]


def prune_count_steps(uid: str, thread_ids: Sequence[str], strategy: str) -> Body[int]:
    """How many checkpoints :func:`prune_steps` would delete."""
    total = 0
    query = _COUNT_NOT_LATEST if strategy == "keep_latest" else _COUNT_OF_THREAD
    for tid in thread_ids:
        rows = yield Stmt(query, [uid, tid], True)
        total += int(rows[0][0])
    return total


def users_query() -> Query:
    return "SELECT DISTINCT user_id FROM {checkpoints} ORDER BY user_id", []


def threads_query(uid: str) -> Query:
    return "SELECT DISTINCT thread_id FROM {checkpoints} WHERE user_id = ? ORDER BY thread_id", [
        uid
    ]


# -- decoding --------------------------------------------------------------------------


def decode_rows(
    loader: MemoLoader, rows: Sequence[tuple[Any, ...]], scope: _Scope
) -> list[tuple[tuple[str, str, str], CheckpointTuple, dict[str, Any]]]:
    """The checkpoints of :func:`select_query` rows, newest first, each with its paging
    key and its exact metadata (values loaded through ``loader``)."""
    heads: list[tuple[Any, ...]] = []
    blobs: dict[tuple[str, str, str, str], tuple[str, bytes | None]] = {}
    writes: dict[tuple[str, str, str], list[tuple[str, str, int, str, str, bytes]]] = {}
    for r in rows:
        kind = r[0]
        if kind == 0:
            heads.append(r)
        elif kind == 1:
            if r[5] is not None:  # NULL: a reference without a stored blob
                blobs[(r[1], r[2], r[3], r[4])] = (r[5], r[9])
        else:
            writes.setdefault((r[1], r[2], r[3]), []).append(
                (r[7] or "", r[4], int(r[8]), r[5], r[6], bytes(r[9]))
            )
    heads.sort(key=lambda h: (h[3], h[1], h[2]), reverse=True)
    out = []
    for h in heads:
        tid, ns, cid, parent = h[1], h[2], h[3], h[4]
        checkpoint = loads(h[5])
        checkpoint.pop(CHUNKS_KEY, None)
        values: dict[str, Any] = {}
        for channel, version in checkpoint.get("channel_versions", {}).items():
            blob = blobs.get((tid, ns, channel, version_text(version)))
            if blob is not None and blob[0] != "empty":
                values[channel] = _load_blob(loader, blobs, tid, ns, channel, blob)
        checkpoint["channel_values"] = values
        metadata = loads(h[6])
        pending = sorted(writes.get((tid, ns, cid), ()), key=lambda w: (w[0], w[1], w[2]))
        out.append(
            (
                (cid, tid, ns),
                CheckpointTuple(
                    config=_config(scope, tid, ns, cid),
                    checkpoint=checkpoint,
                    metadata=metadata,
                    parent_config=_config(scope, tid, ns, parent) if parent else None,
                    pending_writes=[(w[1], w[3], loader.loads(w[4], w[5])) for w in pending],
                ),
                metadata,
            )
        )
    return out


def _load_blob(
    loader: MemoLoader,
    blobs: dict[tuple[str, str, str, str], tuple[str, bytes | None]],
    tid: str,
    ns: str,
    channel: str,
    blob: tuple[str, bytes | None],
) -> Any:
    """The value of one stored blob (a chunked list assembled from ``blobs``)."""
    if is_chunk(blob[0]):
        return loader.loads("msgpack", _assemble(blobs, tid, ns, channel, blob))
    return loader.loads(blob[0], bytes(blob[1]) if blob[1] is not None else None)


def _assemble(
    blobs: dict[tuple[str, str, str, str], tuple[str, bytes | None]],
    tid: str,
    ns: str,
    channel: str,
    last: tuple[str, bytes | None],
) -> bytes:
    """The msgpack bytes of a chunked list: one array header over its chunks' elements."""
    _, count, earlier = parse_chunk_type(last[0])
    parts = []
    total = count
    for version in earlier:
        chunk = blobs.get((tid, ns, channel, version))
        if chunk is None:
            raise RuntimeError(
                f"channel {channel!r} of thread {decode_key(tid)!r} misses its stored chunk {version!r}: "
                "was the thread pruned or deleted while a run wrote to it?"
            )
        total += parse_chunk_type(chunk[0])[1]
        parts.append(bytes(chunk[1] or b""))
    parts.append(bytes(last[1] or b""))
    return array_header(total) + b"".join(parts)


def _config(scope: _Scope, tid: str, ns: str, cid: str) -> RunnableConfig:
    conf: dict[str, Any] = {
        "thread_id": decode_key(tid),
        "checkpoint_ns": decode_key(ns),
        "checkpoint_id": cid,
    }
    if scope.explicit_user and scope.user_key is not None:
        conf[scope.user_key] = scope.user_id
    return {"configurable": conf}


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")


def _check_strategy(strategy: str) -> None:
    if strategy not in PRUNE_STRATEGIES:
        raise ValueError(
            f"unknown prune strategy {strategy!r}: expected one of {', '.join(PRUNE_STRATEGIES)}"
        )


def _thread_keys(thread_ids: Sequence[str]) -> list[str]:
    if isinstance(thread_ids, str):
        raise TypeError(f"expected a sequence of thread ids, got the str {thread_ids!r}")
    return [encode_key(str(t)) for t in thread_ids]


class _Listing:
    """What every page of one ``list`` call shares."""

    __slots__ = ("scope", "where", "params", "single", "filter", "loader")

    def __init__(
        self,
        scope: _Scope,
        where: Sequence[Composable],
        params: Sequence[Any],
        single: bool,
        filter: dict[str, Any] | None,
        loader: MemoLoader,
    ) -> None:
        self.scope, self.where, self.params, self.single = scope, where, params, single
        self.filter, self.loader = filter, loader


class CheckpointSaver(ConnStringEntry, BaseCheckpointSaver[str]):
    """A LangGraph checkpointer on the shared schema (Postgres or SQLite), sync and async.

    Threads are LangGraph's: a thread is named by its ``thread_id`` alone, whatever else the
    config's ``configurable`` holds (LangGraph's tutorials put a ``user_id`` there for the
    store; it does not split the thread). Every row is stored under the saver's tenant,
    ``user_id``. To partition checkpoints by a user named in each run's config, say so
    with ``user_key`` (see the README, "Naming the user").

    Args:
        engine: from :func:`langchain_agentmem.connect` (migrated), or a database URL, or
            a psycopg connection or pool (see :func:`~langchain_agentmem.engine.as_engine`).
        user_id: the tenant the rows are stored under (with ``user_key``: of calls whose
            config does not name one), and of :meth:`delete_thread`, :meth:`copy_thread`,
            :meth:`prune` and :meth:`delete_for_runs` called without ``user_id``.
        user_key: ``None`` (default): the tenant is always ``user_id``, as in LangGraph's
            own savers. A key (e.g. ``"user_id"``, or LangMem's ``"langgraph_user_id"``):
            ``configurable[user_key]``, when the config has it, is the tenant; threads of
            different tenants are then separate even with the same ``thread_id``, and
            ``list(None)`` / ``delete_thread(t)`` cover the saver's ``user_id`` only
            (pass ``user_id=`` for another).
        serde: how channel values and writes become bytes (default LangGraph's
            ``JsonPlusSerializer``; an ``EncryptedSerializer`` encrypts them at rest).
        chunk_cache_size: thread channels whose last written list (e.g. messages) is
            remembered, so that the next version stores only the elements it adds
            (see ``_chunks.py``); 0 stores every version whole.
        value_cache_bytes: at most this many bytes of encoded messages are remembered
            twice over: encodings by message object, so that a message written at the
            last step is not serialized again, and messages built from stored bytes, so
            that a read copies them instead of validating them again (see ``_serde.py``;
            LangGraph's default serializer only). 0 remembers nothing.
        durable_writes: whether a task's pending writes (:meth:`put_writes`) wait for
            the server's disk before returning (default: they do, as checkpoints do).
            ``False`` commits them with Postgres ``synchronous_commit = off`` for that
            transaction alone: a crash of the database server within a moment of a write
            may lose it, and LangGraph then runs that task again on resume, as after a
            crash just before the write; since the log is written in order, a durable
            checkpoint makes every write before it durable too. On the 2-core build
            machine it did not make invocations faster (the explicit transaction it
            needs costs the client more than the flush it saves), so it stays off.

    Example:
        >>> from langchain_agentmem import connect
        >>> saver = CheckpointSaver(connect("sqlite://"))
        >>> _ = saver.engine.migrate()
        >>> saver.get_tuple({"configurable": {"thread_id": "nobody"}}) is None
        True
    """

    def __init__(
        self,
        engine: EngineLike,
        *,
        user_id: str = "default",
        user_key: str | None = None,
        serde: SerializerProtocol | None = None,
        chunk_cache_size: int = 1024,
        value_cache_bytes: int = 64 * 1024 * 1024,
        durable_writes: bool = True,
    ) -> None:
        engine = as_engine(engine)
        if not isinstance(user_id, str):
            raise TypeError(f"user_id must be a str, got {type(user_id).__name__}: {user_id!r}")
        check_user_key(user_key, optional=True)
        if not isinstance(chunk_cache_size, int) or chunk_cache_size < 0:
            raise ValueError(
                f"chunk_cache_size must be a non-negative int, got {chunk_cache_size!r}"
            )
        super().__init__(serde=serde)
        self.engine = engine
        self.user_id = user_id
        self.durable_writes = bool(durable_writes)
        self.user_key = user_key
        if not isinstance(value_cache_bytes, int) or value_cache_bytes < 0:
            raise ValueError(
                f"value_cache_bytes must be a non-negative int, got {value_cache_bytes!r}"
            )
        self._chunks = ChunkCache(chunk_cache_size)
        self._memo = ValueMemo(value_cache_bytes if chunkable(self.serde) else 0)

    def __repr__(self) -> str:
        key = f", user_key={self.user_key!r}" if self.user_key is not None else ""
        return f"CheckpointSaver({self.engine!r}, user_id={self.user_id!r}{key})"

    # -- LangGraph's entry points ---------------------------------------------------------

    # -- helpers -------------------------------------------------------------------------
    def _scope(self, config: RunnableConfig | None) -> _Scope:
        return _Scope(config, self.user_id, self.user_key)

    def _tenant(self, user_id: str | None) -> str:
        return encode_key(self.user_id if user_id is None else user_id)

    def get_next_version(self, current: str | int | float | None, channel: None) -> str:
        """Versions sort as text and carry a random fraction, so that two forks of one
        checkpoint never give different values the same version."""
        if current is None:
            current_v = 0
        elif isinstance(current, (int, float)):
            current_v = int(current)
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    def _put_args(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> tuple[Body[Any], RunnableConfig, list[tuple[Any, Any]]]:
        scope = self._scope(config)
        tid = scope.thread()
        if scope.ns is None:
            scope.ns = ""
        stored: dict[str, Any] = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        values = checkpoint["channel_values"]
        chunked = self._chunks.size > 0 and chunkable(self.serde)
        earlier: dict[str, str] = {}  # version of an earlier chunk -> its channel
        updates: list[tuple[Any, Any]] = []
        blobs: list[tuple[str, str, str, bytes | None]] = []
        for channel, version in new_versions.items():
            vt = version_text(version)
            if channel not in values:
                blobs.append((channel, vt, "empty", None))
                continue
            key = (scope.uid, tid, scope.ns, channel)
            encode = functools.partial(self._memo.encode_list, key=key)
            elements = element_bytes(self.serde, values[channel], encode) if chunked else None
            if elements is None:
                type_, data = self.serde.dumps_typed(values[channel])
                blobs.append((channel, vt, type_, data))
                continue
            chain, new = plan_chunks(self._chunks.get(key), vt, elements)
            if new is not None:
                blobs.append((channel, vt, chunk_type(new, chain), b"".join(new.elements)))
            earlier.update((c.version, channel) for c in chain[:-1])
            updates.append((key, chain))
        if chunked:
            # Unchanged channels: list their earlier chunks too when this process knows them.
            for channel, version in checkpoint["channel_versions"].items():
                if channel not in new_versions:
                    known = self._chunks.get((scope.uid, tid, scope.ns, channel))
                    if known and known[-1].version == version_text(version):
                        earlier.update((c.version, channel) for c in known[:-1])
        if earlier:
            stored[CHUNKS_KEY] = earlier
        md = dict(get_serializable_checkpoint_metadata(config, metadata))
        pairs = [(channel, version) for version, channel in earlier.items()]
        steps = put_steps(
            self.engine.dialect, scope, get_checkpoint_id(config), stored, md, blobs, pairs
        )
        conf = config["configurable"]
        next_conf: dict[str, Any] = {
            "thread_id": conf["thread_id"],
            "checkpoint_ns": conf.get("checkpoint_ns", ""),
            "checkpoint_id": checkpoint["id"],
        }
        if self.user_key is not None and self.user_key in conf:
            next_conf[self.user_key] = conf[self.user_key]
        return steps, {"configurable": next_conf}, updates

    def _writes_args(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> Query | None:
        scope = self._scope(config)
        if scope.ns is None:
            scope.ns = ""
        checkpoint_id = get_checkpoint_id(config)
        if not checkpoint_id:
            raise ValueError(
                'put_writes needs config["configurable"]["checkpoint_id"], got a config without one'
            )
        rows: dict[int, tuple[int, str, str, bytes]] = {}
        for i, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, i)
            type_, data = self.serde.dumps_typed(value)
            rows[idx] = (idx, channel, type_, data)
        if not rows:
            return None
        return put_writes_query(scope, checkpoint_id, task_id, task_path, list(rows.values()))

    def _delta_args(
        self, config: RunnableConfig, channels: Sequence[str]
    ) -> tuple[_Scope, Body[Any]]:
        scope = self._scope(config)
        steps = delta_history_steps(
            self.engine.dialect,
            scope.uid,
            scope.thread(),
            scope.ns or "",
            get_checkpoint_id(config),
            list(channels),
        )
        return scope, steps

    def _delta_history(
        self, scope: _Scope, walked: dict[str, Any], rows: list[tuple[Any, ...]]
    ) -> dict[str, DeltaChannelHistory]:
        loader = MemoLoader(self.serde, self._memo)
        blobs = {(r[1], r[2], r[3], r[4]): (r[5], r[9]) for r in rows if r[5] is not None}
        tid, ns = scope.thread(), scope.ns or ""
        out: dict[str, DeltaChannelHistory] = {}
        for channel, (writes, seed) in walked.items():
            entry: DeltaChannelHistory = {
                "writes": [(w[1], channel, loader.loads(w[3], bytes(w[4]))) for w in writes]
            }
            blob = blobs.get((tid, ns, channel, seed[1])) if seed else None
            if blob is not None and blob[0] != "empty":
                entry["seed"] = _load_blob(loader, blobs, tid, ns, channel, blob)
            out[channel] = entry
        return out

    # -- operations: each written once, as a plan; ``dual`` / ``paged`` make the sync
    # method and its async form (``aX = X.async_``) -----------------------------------
    @dual
    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Plan[Mapping[str, DeltaChannelHistory]]:
        """What LangGraph rebuilds a ``DeltaChannel`` (beta) from: per channel, the
        writes of the ancestors of the checkpoint ``config`` names down to the nearest one
        that stores a value (``seed``). Same result as LangGraph's generic walk, read a
        page of ancestors per statement (see ``_checkpoint/delta.py``)."""
        if not channels:
            return {}
        scope, steps = self._delta_args(config, channels)
        walked, rows = yield Atomic(steps, readonly=True, user_id=scope.uid)
        with paused_gc():
            return self._delta_history(scope, walked, rows)

    aget_delta_channel_history = get_delta_channel_history.async_

    @dual
    def get_tuple(self, config: RunnableConfig) -> Plan[CheckpointTuple | None]:
        """The checkpoint ``config`` names (``checkpoint_id``), else the thread's latest
        in ``checkpoint_ns`` (default ``""``); ``None`` if there is none."""
        scope = self._scope(config)
        query = get_query(self.engine.dialect, scope, get_checkpoint_id(config))
        rows = yield Atomic(
            read_steps(self.engine.dialect, scope.uid, query), readonly=True, user_id=scope.uid
        )
        with paused_gc():
            found = decode_rows(MemoLoader(self.serde, self._memo, remember=True), rows, scope)
        return found[0][1] if found else None

    aget_tuple = get_tuple.async_

    @paged
    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Plan[Page[CheckpointTuple]]:
        """Checkpoints newest first, read a page at a time as they are consumed.

        Args:
            config: ``thread_id`` (else every thread of the tenant), ``checkpoint_ns``
                (else every namespace), ``checkpoint_id`` (that one only).
            filter: metadata keys and the values they must equal.
            before: only checkpoints older than this config's ``checkpoint_id``.
            limit: at most this many.
        """
        _check_limit(limit)
        scope = self._scope(config)
        where, params, single = list_conditions(self.engine.dialect, scope, config, filter, before)
        listing = _Listing(scope, where, params, single, filter, MemoLoader(self.serde, self._memo))
        return (yield from self._list_page(listing, limit, None))

    alist = list.async_

    def _list_page(
        self, listing: _Listing, remaining: int | None, last: tuple[str, str, str] | None
    ) -> Plan[Page[CheckpointTuple]]:
        """One page of :meth:`list`: up to ``PAGE_SIZE`` checkpoints after ``last``."""
        if remaining is not None and remaining <= 0:
            return [], None
        page = PAGE_SIZE if remaining is None or listing.filter else min(remaining, PAGE_SIZE)
        where, params = builtins.list(listing.where), builtins.list(listing.params)
        if last is not None:
            cond, cparams = after_condition(listing.single, last)
            where.append(cond)
            params.extend(cparams)
        uid = listing.scope.uid
        scope = listing.scope
        thread = (scope.thread(), scope.ns or "") if listing.single else None
        query = select_query(self.engine.dialect, uid, where, params, page, thread)
        rows = yield Atomic(read_steps(self.engine.dialect, uid, query), readonly=True, user_id=uid)
        with paused_gc():
            found = decode_rows(listing.loader, rows, scope)
        out: builtins.list[CheckpointTuple] = []
        for _key, tup, metadata in found:
            if metadata_matches(metadata, listing.filter):
                out.append(tup)
                if remaining is not None:
                    remaining -= 1
                    if remaining <= 0:
                        return out, None
        if len(found) < page:
            return out, None
        return out, self._list_page(listing, remaining, found[-1][0])

    @dual
    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Plan[RunnableConfig]:
        """Save a checkpoint; only the channels in ``new_versions`` store a blob."""
        scope = self._scope(config)
        for _ in range(2):
            steps, next_config, updates = self._put_args(config, checkpoint, metadata, new_versions)
            # With writable CTEs the body is one statement (see put_steps).
            written = yield Atomic(
                steps, single=self.engine.dialect.supports_dml_cte, user_id=scope.uid
            )
            if written:
                break
            # An earlier chunk was pruned or deleted meanwhile: write the lists whole.
            self._chunks.forget(scope.uid, scope.thread())
        for key, chain in updates:
            self._chunks.put(key, chain)
        return next_config

    aput = put.async_

    @dual
    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> Plan[None]:
        """Save the writes of one task, linked to the checkpoint ``config`` names."""
        query = self._writes_args(config, writes, task_id, task_path)
        if query is not None:
            yield Atomic(
                statements([Stmt(*query)]),
                single=True,
                durable=self.durable_writes,
                user_id=query[1][0],
            )

    aput_writes = put_writes.async_

    @dual
    def delete_thread(self, thread_id: str, *, user_id: str | None = None) -> Plan[None]:
        """Delete every checkpoint, blob and write of a thread (of ``user_id``, default the
        saver's)."""
        uid, tid = self._tenant(user_id), encode_key(str(thread_id))
        yield Atomic(
            statements(Stmt(*q) for q in delete_thread_queries(uid, tid)),
            pipeline=True,
            user_id=uid,
        )
        self._chunks.forget(uid, tid)

    adelete_thread = delete_thread.async_

    @dual
    def delete_for_runs(self, run_ids: Sequence[str], *, user_id: str | None = None) -> Plan[None]:
        """Delete the checkpoints the runs ``run_ids`` saved, with their writes and the
        blobs nothing else uses."""
        if isinstance(run_ids, str):
            raise TypeError(f"expected a sequence of run ids, got the str {run_ids!r}")
        run_ids = [str(r) for r in run_ids]
        if not run_ids:
            return
        uid = self._tenant(user_id)
        yield Atomic(delete_for_runs_steps(self.engine.dialect, uid, run_ids), user_id=uid)
        self._chunks.forget(uid)

    adelete_for_runs = delete_for_runs.async_

    @dual
    def copy_thread(
        self, source_thread_id: str, target_thread_id: str, *, user_id: str | None = None
    ) -> Plan[None]:
        """Copy every checkpoint, blob and write of one thread to another (a fork of the
        whole history)."""
        uid = self._tenant(user_id)
        queries = copy_thread_queries(
            uid, encode_key(str(source_thread_id)), encode_key(str(target_thread_id))
        )
        yield Atomic(statements(Stmt(*q) for q in queries), user_id=uid)

    acopy_thread = copy_thread.async_

    @dual
    def prune(  # type: ignore[override]  # also returns how many were deleted
        self,
        thread_ids: Sequence[str],
        *,
        strategy: str = "keep_latest",
        user_id: str | None = None,
        dry_run: bool = False,
    ) -> Plan[int]:
        """Prune threads: ``"keep_latest"`` keeps the newest checkpoint of each namespace
        (and its pending writes), ``"delete"`` removes everything. Returns the number of
        checkpoints deleted (with ``dry_run``: that would be; nothing is deleted)."""
        _check_strategy(strategy)
        uid = self._tenant(user_id)
        tids = _thread_keys(thread_ids)
        if not tids:
            return 0
        if dry_run:
            steps = prune_count_steps(uid, tids, strategy)
            return int((yield Atomic(steps, readonly=True, user_id=uid)))
        try:
            steps = prune_steps(self.engine.dialect, uid, tids, strategy)
            return int((yield Atomic(steps, user_id=uid)))
        finally:
            for tid in tids:
                self._chunks.forget(uid, tid)

    aprune = prune.async_  # type: ignore[assignment]  # also returns how many were deleted

    @dual
    def prune_before(
        self,
        cutoff: datetime,
        *,
        keep_latest: bool = True,
        user_id: str | None = None,
        dry_run: bool = False,
    ) -> Plan[int]:
        """Delete the tenant's checkpoints saved before ``cutoff`` (an aware datetime);
        with ``keep_latest`` each thread namespace keeps its newest one. Returns the number
        deleted (with ``dry_run``: that would be; nothing is deleted)."""
        _check_cutoff(cutoff)
        uid = self._tenant(user_id)
        if dry_run:
            steps = prune_before_steps(self.engine.dialect, uid, cutoff, keep_latest, True)
            return int((yield Atomic(steps, readonly=True, user_id=uid)))
        try:
            steps = prune_before_steps(self.engine.dialect, uid, cutoff, keep_latest)
            return int((yield Atomic(steps, user_id=uid)))
        finally:
            self._chunks.forget(uid)

    aprune_before = prune_before.async_

    @dual
    def move_threads(
        self,
        from_user_id: str,
        *,
        to_user_id: str | None = None,
        thread_ids: Sequence[str] | None = None,
    ) -> Plan[int]:
        """Move threads stored under one tenant to another (default the saver's): every
        checkpoint, blob and write, in one transaction. Returns the number of checkpoints
        moved. Rows the target already has are kept (moving twice moves nothing).

        This brings over threads that an earlier version stored under
        ``configurable["user_id"]`` (it partitioned by that key without being asked), so
        that a saver without ``user_key`` sees them; or keep reading them where they are
        with ``CheckpointSaver(engine, user_key="user_id")``.

        Args:
            from_user_id: the tenant the threads are stored under now.
            to_user_id: the tenant to store them under (default the saver's ``user_id``).
            thread_ids: only these threads (default every thread of ``from_user_id``).
        """
        source, target = self._tenant(from_user_id), self._tenant(to_user_id)
        if source == target:
            return 0
        tids = None if thread_ids is None else _thread_keys(thread_ids)
        steps = move_threads_steps(self.engine.dialect, source, target, tids)
        moved = int((yield Atomic(steps, user_id=None)))
        self._chunks.forget(source)
        self._chunks.forget(target)
        return moved

    amove_threads = move_threads.async_

    @dual
    def list_users(self) -> Plan[builtins.list[str]]:
        """Every tenant with checkpoints (for maintenance such as ``agentmem prune``)."""
        (rows,) = yield Atomic(
            statements([Stmt(*users_query(), True)]),
            readonly=True,
            user_id=None,
            every_tenant=True,
        )
        return [decode_key(r[0]) for r in rows]

    alist_users = list_users.async_

    @dual
    def list_threads(self, *, user_id: str | None = None) -> Plan[builtins.list[str]]:
        """The thread ids of a tenant (default the saver's) that have checkpoints."""
        uid = self._tenant(user_id)
        query = threads_query(uid)
        (rows,) = yield Atomic(statements([Stmt(*query, True)]), readonly=True, user_id=uid)
        return [decode_key(r[0]) for r in rows]

    alist_threads = list_threads.async_


def _check_cutoff(cutoff: datetime) -> None:
    if not isinstance(cutoff, datetime) or cutoff.tzinfo is None:
        raise TypeError(f"cutoff must be a timezone-aware datetime, got {cutoff!r}")
