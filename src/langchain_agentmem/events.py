"""Sessions and events as an agent log: tool calls, tool results, observations and
decisions beside the chat messages, with importance, tags and optional embeddings.

:class:`SessionLog` writes one session: :meth:`~SessionLog.start` records where it came from
(``source``) and its metadata, :meth:`~SessionLog.log` / :meth:`~SessionLog.log_many`
append events, :meth:`~SessionLog.end` closes it with a status (``completed``, ``failed``,
``abandoned``). :class:`EventLog` reads a user's log across sessions: filtered by type,
tags (all of them), importance and time, and by meaning (:meth:`EventLog.search`).

Events share the ``events`` table with :class:`~langchain_agentmem.ChatMessageHistory`:
an event's type is the table's ``kind`` (``message`` for chat messages, which chat history
alone writes and reads), so chat history works as before on the same sessions. Sessions
keep running sums of their events' importance, so per-agent summaries
(``agent_performance_summary``) read sessions, not every event.

Event types, tags, agent names and sources are plain text (no NUL, no lone surrogate: a
clear error); content and data round-trip exactly (the exact JSON is in ``payload``, the
``content`` column holds a clean copy for views and search).

Example:
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> log = SessionLog(engine, "run-1", user_id="acme", agent_name="devops_engineer", source="cli")
    >>> log.start(metadata={"ticket": "OPS-7"}).status
    'active'
    >>> log.log("tool_call", "kubectl rollout status", importance=0.4, tags=["k8s"]).seq
    1
    >>> _ = log.log("decision", "roll back", importance=0.9, tags=["k8s", "incident"])
    >>> log.end("completed").status
    'completed'
    >>> [e.content for e in EventLog(engine, user_id="acme").events(tags=["incident"])]
    ['roll back']
"""

# Queries are composed of constants and code-only names; every value is a parameter.

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from ._core.plain import importance as check_importance
from ._core.plain import plain, plain_list
from ._core.plan import Atomic, Embed, Plan, dual
from ._encoding.json import clean_text, dumps, dumps_exact, loads
from ._encoding.keys import decode_key, encode_key
from ._search.vector_index import (
    SearchQuery,
    SearchSettings,
    create_sized,
    describe,
    search_settings,
    sized_index,
    sized_index_name,
)
from .dialects import SQL, Body, Composable, Dialect, Ident, Many, One, Stmt, Template
from .engine import EngineLike, as_engine

__all__ = ["STATUSES", "AgentSession", "Event", "EventLog", "SessionLog"]

#: The states of a session; every session starts ``active``.
STATUSES = ("active", "completed", "failed", "abandoned")
_MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Event:
    """One event of the log (a chat message has type ``message`` and its LangChain
    message dict as ``data``)."""

    session_id: str
    seq: int
    event_type: str
    role: str
    content: str
    data: Any = None
    importance: float | None = None
    tags: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    score: float | None = None
    """The cosine similarity to the query, for :meth:`EventLog.search` results."""


@dataclass(frozen=True)
class AgentSession:
    """One session as an agent's run."""

    session_id: str
    agent_name: str | None
    source: str | None
    status: str
    metadata: dict[str, Any]
    created_at: datetime | None
    last_activity_at: datetime | None
    ended_at: datetime | None
    events: int
    """Events appended so far (chat messages included)."""
    avg_importance: float | None
    """Mean importance of the events that have one (logged through :class:`SessionLog`)."""


# -- query builders (pure) -------------------------------------------------------------

_SESSION_COLUMNS = SQL(
    "session_id, agent_name, source, status, metadata, created_at, last_activity_at, "
    "ended_at, last_seq, importance_sum, importance_count"
)
_EVENT_COLUMNS = [
    "session_id",
    "seq",
    "kind",
    "role",
    "content",
    "payload",
    "importance",
    "tags",
    "created_at",
]
_EVENT_SELECT = [Ident("e", c) for c in _EVENT_COLUMNS]
_VECTOR_SELECT = [Ident("v", c) for c in _EVENT_COLUMNS]
_VECTOR_ORDER = [Ident("v", "session_id"), Ident("v", "seq")]
_AND = SQL(" AND ")
_MARKS = SQL(", ")
_START_SESSION = SQL(
    "INSERT INTO {sessions} AS s (user_id, session_id, agent_name, source, metadata) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, session_id) DO UPDATE SET "
    "agent_name = coalesce(excluded.agent_name, s.agent_name), "
    "source = coalesce(excluded.source, s.source), "
    "{keep}status = 'active', ended_at = NULL, last_activity_at = {now} RETURNING {columns}"
)
_KEEP_METADATA = SQL("metadata = excluded.metadata, ")
_END_SESSION = SQL(
    "UPDATE {sessions} SET status = ?, ended_at = CASE WHEN ? = 'active' THEN NULL ELSE {now} END, "
    "last_activity_at = {now} WHERE user_id = ? AND session_id = ? RETURNING {}"
).format(_SESSION_COLUMNS)
_READ = SQL(
    "SELECT {cols} FROM {events} e WHERE {where} "
    "ORDER BY e.created_at {order}, e.session_id {order}, e.seq {order} LIMIT ?"
)
_DIRECTIONS = {True: SQL("DESC"), False: SQL("ASC")}
_SESSIONS = SQL("SELECT {} FROM {sessions} WHERE {} ORDER BY created_at DESC, session_id LIMIT ?")
_SESSION = SQL("SELECT {} FROM {sessions} WHERE user_id = ? AND session_id = ?").format(
    _SESSION_COLUMNS
)


def _session(dialect: Dialect, row: Sequence[Any]) -> AgentSession:
    meta = row[4]
    return AgentSession(
        session_id=decode_key(row[0]),
        agent_name=row[1],
        source=row[2],
        status=row[3],
        metadata=loads(meta) if isinstance(meta, str) else dict(meta or {}),
        created_at=dialect.to_datetime(row[5]),
        last_activity_at=dialect.to_datetime(row[6]),
        ended_at=dialect.to_datetime(row[7]),
        events=int(row[8]),
        avg_importance=(float(row[9]) / int(row[10])) if row[10] else None,
    )


def _event(dialect: Dialect, row: Sequence[Any], score: float | None = None) -> Event:
    kind, payload = row[2], loads(row[5])
    if kind == "message":
        content, data = row[4], payload
    else:
        content, data = payload.get("content", row[4]), payload.get("data")
    return Event(
        session_id=decode_key(row[0]),
        seq=int(row[1]),
        event_type=kind,
        role=row[3],
        content=content,
        data=data,
        importance=_importance(row[6]),
        tags=dialect.text_array_value(row[7]),
        created_at=dialect.to_datetime(row[8]),
        score=score,
    )


def _importance(value: Any) -> float | None:
    """A stored importance (float32 on Postgres) as the shortest float that stores as it."""
    return None if value is None else float(str(np.float32(value)))


def _start(
    uid: str, sid: str, agent: str | None, source: str | None, meta: str | None
) -> Body[tuple[Any, ...]]:
    # metadata is jsonb on Postgres: the text parameter takes the column's type.
    keep = SQL("") if meta is None else _KEEP_METADATA
    row = yield One(
        _START_SESSION.format(keep=keep, columns=_SESSION_COLUMNS),
        [uid, sid, agent, source, "{}" if meta is None else meta],
    )
    return tuple(row)


def end_session(uid: str, sid: str, status: str) -> Body[tuple[Any, ...] | None]:
    """Set a session's status (ending it unless ``active``); its row, ``None`` when there
    is no such session."""
    row = yield One(
        _END_SESSION,
        [status, status, uid, sid],
    )
    return None if row is None else tuple(row)


def check_status(status: Any) -> str:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
    return str(status)


def _append(
    dialect: Dialect,
    uid: str,
    sid: str,
    agent: str | None,
    source: str | None,
    rows: list[list[Any]],
) -> Body[int]:
    """Reserve ``len(rows)`` seqs on the session row (creating it), add the importance
    sums, then insert the events numbered from the reserved range; the first seq."""
    n = len(rows)
    # The sums add importances as given (0.9), not their float32 form (0.8999999761).
    scored = [float(str(np.float32(r[4]))) for r in rows if r[4] is not None]
    found = yield One(
        "INSERT INTO {sessions} AS s (user_id, session_id, agent_name, source, last_seq, "
        "importance_sum, importance_count) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (user_id, session_id) DO UPDATE SET last_seq = s.last_seq + excluded.last_seq, "
        "importance_sum = s.importance_sum + excluded.importance_sum, "
        "importance_count = s.importance_count + excluded.importance_count, "
        "last_activity_at = {now}, agent_name = coalesce(s.agent_name, excluded.agent_name), "
        "source = coalesce(s.source, excluded.source) RETURNING last_seq",
        [uid, sid, agent, source, n, float(sum(scored)), len(scored)],
    )
    first = int(found[0]) - n + 1
    yield Many(
        "INSERT INTO {events} (user_id, session_id, seq, kind, role, content, payload, "
        "importance, tags, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[uid, sid, first + i, *row] for i, row in enumerate(rows)],
    )
    return first


@dataclass(frozen=True)
class _Filter:
    session: str | None = None
    types: tuple[str, ...] | None = None
    tags: tuple[str, ...] = ()
    min_importance: float | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self, dialect: Dialect, uid: str, alias: str) -> tuple[Composable, list[Any]]:
        conds: list[Composable] = [SQL("{} = ?").format(Ident(alias, "user_id"))]
        params: list[Any] = [uid]
        if self.session is not None:
            conds.append(SQL("{} = ?").format(Ident(alias, "session_id")))
            params.append(self.session)
        if self.types is not None:
            marks = _MARKS.join(SQL("?") for _ in self.types)
            conds.append(SQL("{} IN ({})").format(Ident(alias, "kind"), marks))
            params += self.types
        if self.tags:
            column = Ident(alias, "tags").template(dialect)
            conds.append(SQL(dialect.text_array_contains(column)))
            params.append(dialect.text_array_param(list(self.tags)))
        if self.min_importance is not None:
            # Importance is stored as float32: compare with the float32 value.
            conds.append(SQL("{} >= ?").format(Ident(alias, "importance")))
            params.append(float(np.float32(self.min_importance)))
        if self.since is not None:
            conds.append(SQL("{} >= ?").format(Ident(alias, "created_at")))
            params.append(dialect.from_datetime(self.since))
        if self.until is not None:
            conds.append(SQL("{} < ?").format(Ident(alias, "created_at")))
            params.append(dialect.from_datetime(self.until))
        return _AND.join(conds), params


def _filter(
    session: str | None,
    event_type: str | Sequence[str] | None,
    tags: Sequence[str] | None,
    min_importance: float | None,
    since: datetime | None,
    until: datetime | None,
) -> _Filter:
    types: tuple[str, ...] | None = None
    if event_type is not None:
        types = (
            (plain(event_type, "event type"),)
            if isinstance(event_type, str)
            else tuple(plain_list(event_type, "event types"))
        )
    for name, value in (("since", since), ("until", until)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise TypeError(f"{name} must be an aware datetime, got {value!r}")
    return _Filter(
        session=session,
        types=types,
        tags=tuple(plain_list(tags or (), "tags")),
        min_importance=check_importance(min_importance),
        since=since,
        until=until,
    )


def _limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= _MAX_LIMIT:
        raise ValueError(f"limit must be an int from 1 to {_MAX_LIMIT}, got {limit!r}")
    return limit


def _read(
    dialect: Dialect, uid: str, flt: _Filter, limit: int, newest_first: bool
) -> Body[list[Event]]:
    where, params = flt.where(dialect, uid, "e")
    rows = yield Stmt(
        _READ.format(cols=_MARKS.join(_EVENT_SELECT), where=where, order=_DIRECTIONS[newest_first]),
        [*params, limit],
        fetch=True,
    )
    return [_event(dialect, r) for r in rows]


def _fetch_one(stmt: One) -> Body[Any]:
    return (yield stmt)


# -- the log ------------------------------------------------------------------------------


class EventLog:
    """A user's agent log across sessions: filtered and semantic reads, and sessions.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        user_id: the tenant; another tenant's events are never read.
        embeddings: embeds search queries (and, in :class:`SessionLog`, events).
        search: how :meth:`search` chooses between an exact scan and the HNSW index that
            :meth:`create_index` builds (see
            :class:`~langchain_agentmem._search.vector_index.SearchSettings`).
    """

    def __init__(
        self,
        engine: EngineLike,
        *,
        user_id: str = "default",
        embeddings: Embeddings | None = None,
        search: SearchSettings | None = None,
    ) -> None:
        self.engine = as_engine(engine)
        self.user_id = user_id
        self._uid = encode_key(user_id)
        self._embeddings = embeddings
        self._search = search_settings(search)
        self._ann: dict[int, tuple[tuple[int, ...], bool]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(user_id={self.user_id!r})"

    def _session_filter(self) -> str | None:
        return None

    @dual
    def events(
        self,
        *,
        event_type: str | Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        min_importance: float | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        newest_first: bool = True,
    ) -> Plan[list[Event]]:
        """Events (of this session, for a :class:`SessionLog`) of ``event_type`` (one or
        several), carrying every tag of ``tags``, of importance at least
        ``min_importance``, created in ``[since, until)``; newest first (or oldest),
        at most ``limit``."""
        flt = _filter(self._session_filter(), event_type, tags, min_importance, since, until)
        return (
            yield Atomic(
                _read(self.engine.dialect, self._uid, flt, _limit(limit), newest_first),
                readonly=True,
            )
        )

    aevents = events.async_

    @dual
    def search(
        self,
        query: str,
        k: int = 4,
        *,
        event_type: str | Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        min_importance: float | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Plan[list[Event]]:
        """The ``k`` embedded events (of the user, or of this session for a
        :class:`SessionLog`) nearest to ``query`` that pass the filters of :meth:`events`,
        best first, each with its ``score`` (cosine similarity). Needs ``embeddings``.

        Exact while the filters leave few events (up to ``exact_search_threshold``, or a
        tenth of the events the HNSW index holds); a larger scope goes through the HNSW
        index of the query's size when :meth:`create_index` built one (Postgres), with
        iterative scans, and exactly otherwise."""
        if self._embeddings is None:
            raise ValueError(f"search needs embeddings: {type(self).__name__}(..., embeddings=...)")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        flt = _filter(self._session_filter(), event_type, tags, min_importance, since, until)
        vector = yield Embed(
            self._embeddings, [plain(query, "query", max_bytes=100_000)], query=True
        )
        q = np.asarray(vector, dtype=np.float32)
        dialect = self.engine.dialect
        where, params = flt.where(dialect, self._uid, "v")
        dims = len(q)
        if dims not in self._ann:
            found = yield Atomic(describe(dialect, sized_index_name("events", dims)), readonly=True)
            self._ann[dims] = found
        index = sized_index(dialect, "events", dims, self._ann[dims])
        search = SearchQuery(
            q,
            k,
            select=_VECTOR_SELECT,
            where=(
                SQL("{} AND v.embedding IS NOT NULL AND {}").format(
                    where, SQL(dialect.vector_dims_is("embedding", len(q)))
                ),
                params,
            ),
            order=_VECTOR_ORDER,
            settings=self._search,
        )
        rows = yield Atomic(index.search_small(search), readonly=True)
        if rows is None:
            rows = yield Atomic(index.search_large(search), pipeline=True)
        return [_event(dialect, r[:-1], 1.0 - float(r[-1])) for r in rows]

    asearch = search.async_

    @dual
    def create_index(
        self,
        dims: int,
        *,
        m: int = 16,
        ef_construction: int = 64,
        maintenance_work_mem: str | None = None,
    ) -> Plan[bool]:
        """Build the HNSW index over the events embedded with ``dims`` dimensions (every
        user's: one partial index per size, ``events_d<dims>_hnsw``) if it does not
        exist; whether one exists afterwards. Postgres with pgvector only: on SQLite the
        search is exact and this returns ``False``. ``m`` and ``ef_construction`` are
        pgvector's; ``maintenance_work_mem`` (e.g. ``"1GB"``) for a large build.

        Example:
            >>> from langchain_agentmem import connect
            >>> engine = connect("sqlite://"); _ = engine.migrate()
            >>> EventLog(engine, user_id="acme").create_index(384)
            False
        """
        found = yield Atomic(
            create_sized(
                self.engine.dialect,
                "events",
                dims,
                m=m,
                ef_construction=ef_construction,
                maintenance_work_mem=maintenance_work_mem,
            )
        )
        self._ann[int(dims)] = found
        return found[1]

    acreate_index = create_index.async_

    @dual
    def sessions(
        self,
        *,
        agent_name: str | None = None,
        status: str | None = None,
        source: str | None = None,
        limit: int = 100,
    ) -> Plan[list[AgentSession]]:
        """The user's sessions (of ``agent_name``, ``status``, ``source``), newest first."""
        conds: list[Composable] = [SQL("user_id = ?")]
        params: list[Any] = [self._uid]
        for column, value in (("agent_name", agent_name), ("source", source)):
            if value is not None:
                conds.append(SQL("{} = ?").format(Ident(column)))
                params.append(plain(value, column.replace("_", " ")))
        if status is not None:
            conds.append(SQL("status = ?"))
            params.append(check_status(status))
        rows = yield Atomic(
            _fetch_all(
                _SESSIONS.format(_SESSION_COLUMNS, _AND.join(conds)),
                [*params, _limit(limit)],
            ),
            readonly=True,
        )
        return [_session(self.engine.dialect, r) for r in rows]

    asessions = sessions.async_


class SessionLog(EventLog):
    """The log of one session of one user: start it, append events, end it.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        session_id: any string (the session of a
            :class:`~langchain_agentmem.ChatMessageHistory` with the same id and user).
        user_id: the tenant.
        agent_name: recorded on the session (the first one given stays).
        source: where the session came from (``"cli"``, ``"api"``, ``"slack"``, ...).
        embeddings: embeds each event's content (unless ``embed=False``) and search queries.
        search: see :class:`EventLog`.
    """

    def __init__(
        self,
        engine: EngineLike,
        session_id: str,
        *,
        user_id: str = "default",
        agent_name: str | None = None,
        source: str | None = None,
        embeddings: Embeddings | None = None,
        search: SearchSettings | None = None,
    ) -> None:
        super().__init__(engine, user_id=user_id, embeddings=embeddings, search=search)
        self.session_id = session_id
        self._sid = encode_key(session_id)
        self.agent_name = plain(agent_name, "agent name", optional=True)
        self.source = plain(source, "source", optional=True)

    def __repr__(self) -> str:
        return f"SessionLog(session_id={self.session_id!r}, user_id={self.user_id!r})"

    def _session_filter(self) -> str | None:
        return self._sid

    @dual
    def start(self, *, metadata: Mapping[str, Any] | None = None) -> Plan[AgentSession]:
        """Create the session (or re-open it: status ``active`` again), recording the
        agent, source and ``metadata`` (kept as it was when ``None``)."""
        meta = None
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
            meta = _metadata_json(dict(metadata))
        row = yield Atomic(_start(self._uid, self._sid, self.agent_name, self.source, meta))
        return _session(self.engine.dialect, row)

    astart = start.async_

    @dual
    def end(self, status: str = "completed") -> Plan[AgentSession]:
        """Set the session's ``status`` (``completed``, ``failed``, ``abandoned``; or
        ``active`` to re-open it) and its end time. ``LookupError`` when the session does
        not exist."""
        row = yield Atomic(end_session(self._uid, self._sid, check_status(status)), single=True)
        if row is None:
            raise LookupError(f"no session {self.session_id!r} of user {self.user_id!r} to end")
        return _session(self.engine.dialect, row)

    aend = end.async_

    @dual
    def info(self) -> Plan[AgentSession | None]:
        """The session, ``None`` before anything created it."""
        row = yield Atomic(
            _fetch_one(One(_SESSION, [self._uid, self._sid])),
            readonly=True,
        )
        return None if row is None else _session(self.engine.dialect, row)

    ainfo = info.async_

    @dual
    def log(
        self,
        event_type: str,
        content: str = "",
        *,
        data: Any = None,
        role: str = "agent",
        importance: float | None = None,
        tags: Sequence[str] = (),
        embed: bool = True,
    ) -> Plan[Event]:
        """Append one event (``tool_call``, ``tool_result``, ``observation``,
        ``decision``, or any other plain name but ``message``); the stored event."""
        events = yield from self._append(
            [
                {
                    "event_type": event_type,
                    "content": content,
                    "data": data,
                    "role": role,
                    "importance": importance,
                    "tags": tags,
                }
            ],
            embed,
        )
        return events[0]

    alog = log.async_

    @dual
    def log_many(
        self, events: Sequence[Mapping[str, Any]], *, embed: bool = True
    ) -> Plan[list[Event]]:
        """Append ``events`` (each a mapping of :meth:`log`'s arguments) as one contiguous
        batch, atomically; nothing is written if any is invalid."""
        if isinstance(events, Mapping) or not isinstance(events, Sequence):
            raise TypeError(f"events must be a list of mappings, got {type(events).__name__}")
        return (yield from self._append(list(events), embed))

    alog_many = log_many.async_

    def _append(self, events: list[Mapping[str, Any]], embed: bool) -> Plan[list[Event]]:
        dialect = self.engine.dialect
        rows: list[list[Any]] = []
        checked: list[Event] = []
        allowed = {"event_type", "content", "data", "role", "importance", "tags"}
        for i, ev in enumerate(events):
            if not isinstance(ev, Mapping):
                raise TypeError(f"events[{i}] must be a mapping, got {type(ev).__name__}")
            extra = set(ev) - allowed
            if extra:
                raise ValueError(
                    f"events[{i}] has unknown keys {sorted(extra)}: expected {sorted(allowed)}"
                )
            kind = plain(ev.get("event_type"), "event type")
            if kind == "message":
                raise ValueError("event type 'message' is chat history's: use ChatMessageHistory")
            content = ev.get("content", "")
            if not isinstance(content, str):
                raise TypeError(
                    f"content must be a str, got {type(content).__name__}: {content!r:.80}"
                )
            role = plain(ev.get("role", "agent"), "role")
            score = check_importance(ev.get("importance"))
            if score is not None:
                # Stored as float32 on both backends (real on Postgres), so filters agree.
                score = float(np.float32(score))
            tags = plain_list(ev.get("tags") or (), "tags")
            data = ev.get("data")
            payload = (
                '{"content":'
                + dumps(content)
                + ',"data":'
                + ("null" if data is None else dumps_exact(data, f"events[{i}]['data']"))
                + "}"
            )
            rows.append(
                [kind, role, clean_text(content), payload, score, dialect.text_array_param(tags)]
            )
            checked.append(
                Event(self.session_id, 0, kind, role, content, data, _importance(score), tags)
            )
        if not rows:
            return []
        vectors: list[Any] = [None] * len(rows)
        if embed and self._embeddings is not None:
            texts = [(i, e.content) for i, e in enumerate(checked) if e.content]
            if texts:
                got = yield Embed(self._embeddings, [t for _, t in texts])
                for (i, _), vec in zip(texts, got, strict=True):
                    vectors[i] = dialect.vector_param(np.asarray(vec, dtype=np.float32))
        for row, vec in zip(rows, vectors, strict=True):
            row.append(vec)
        first = yield Atomic(
            _append(dialect, self._uid, self._sid, self.agent_name, self.source, rows)
        )
        return [
            Event(
                e.session_id,
                first + i,
                e.event_type,
                e.role,
                e.content,
                e.data,
                e.importance,
                e.tags,
            )
            for i, e in enumerate(checked)
        ]


def _metadata_json(metadata: dict[str, Any]) -> str:
    """Session metadata as JSON text for the ``metadata`` column (``jsonb`` on Postgres,
    which holds no NUL and no lone surrogate: such strings are refused, not changed)."""
    text = dumps_exact(metadata, "metadata")
    if _has_unstorable(metadata):
        raise ValueError(
            "metadata holds a NUL character or a lone surrogate, which the sessions.metadata "
            "column (jsonb) cannot store: put such values in an event's data instead"
        )
    return text


def _has_unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return clean_text(value) != value
    if isinstance(value, dict):
        return any(_has_unstorable(k) or _has_unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_unstorable(v) for v in value)
    return False


def _fetch_all(query: Template, params: Sequence[Any]) -> Body[list[Any]]:
    return list((yield Stmt(query, params, fetch=True)))
