"""Chat history: a LangChain ``BaseChatMessageHistory`` over the ``events`` log.

Messages are appended to ``events`` with a per-session ``seq`` that the ``sessions`` row
hands out (``last_seq``), so concurrent writers on one session never collide and every
``add_messages`` batch is contiguous. Each message is stored as exact JSON (LangChain's
``message_to_dict``), so every message type and field round-trips, NUL characters and lone
surrogates included.

Example:
    >>> from langchain_core.messages import AIMessage, HumanMessage
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> history = ChatMessageHistory(engine, "chat-1", user_id="alice")
    >>> history.add_messages([HumanMessage("hi"), AIMessage("hello!")])
    >>> [m.content for m in history.messages]
    ['hi', 'hello!']
    >>> [m.content for m in history.get_messages(limit=1)]
    ['hello!']
    >>> [s.session_id for s in ChatMessageHistory.list_sessions(engine, "alice")]
    ['chat-1']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)
from pydantic_core import PydanticSerializationError

from ._encoding.json import clean_text, dumps, loads
from ._encoding.keys import decode_key, encode_key
from .dialects import Dialect
from .engine import Engine

__all__ = ["ChatMessageHistory", "SessionInfo"]

Query = tuple[str, list[Any]]

_COLUMNS = [("role", "text"), ("content", "text"), ("payload", "text")]


@dataclass(frozen=True)
class SessionInfo:
    """One row of ``sessions``."""

    user_id: str
    session_id: str
    agent_name: str | None
    created_at: datetime | None
    last_activity_at: datetime | None
    last_seq: int
    """Events appended to the session so far (the highest ``seq``)."""


# -- query builders (pure) ------------------------------------------------------------


def message_json(message: BaseMessage) -> str:
    """``message_to_dict(message)`` as JSON text, serialized by pydantic-core (3x faster
    than ``json.dumps``); messages it cannot encode (lone surrogates) take the exact
    :func:`~._json.dumps` path, and values JSON cannot hold raise ``TypeError``."""
    try:
        return '{"type":' + dumps(message.type) + ',"data":' + message.model_dump_json() + "}"
    except PydanticSerializationError:
        return dumps(message_to_dict(message))


def append_queries(
    dialect: Dialect,
    user_id: str,
    session_id: str,
    agent_name: str | None,
    messages: Sequence[BaseMessage],
) -> list[Query]:
    """Reserve ``len(messages)`` seqs on the session row (creating it if needed), then insert
    the events numbered from the reserved range. The row lock taken by the reservation
    serializes writers of one session until they commit, so batches never interleave.

    Where the dialect allows INSERT ... RETURNING inside WITH (Postgres) this is one
    statement (one round trip); elsewhere two, run in one transaction."""
    rows = [(m.type, clean_text(m.text), message_json(m)) for m in messages]
    n = len(rows)
    reserve = (
        "INSERT INTO {sessions} AS s (user_id, session_id, agent_name, last_seq) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (user_id, session_id) DO UPDATE SET last_seq = s.last_seq + excluded.last_seq, "
        "last_activity_at = {now}, agent_name = coalesce(excluded.agent_name, s.agent_name)"
    )
    reserve_params: list[Any] = [user_id, session_id, agent_name, n]
    insert = (
        "INSERT INTO {events} (user_id, session_id, seq, role, kind, content, payload) "
        "SELECT r.user_id, r.session_id, r.last_seq - ? + m.ord, m.role, 'message', m.content, m.payload "
        "FROM {from_reserved}, " + dialect.unnest(_COLUMNS)
    )
    insert_params = [n, *dialect.unnest_params(_COLUMNS, rows)]
    if dialect.supports_dml_cte:
        query = (
            "WITH r AS ("
            + reserve
            + " RETURNING user_id, session_id, last_seq) "
            + insert.replace("{from_reserved}", "r")
        )
        return [(query, reserve_params + insert_params)]
    insert = (
        insert.replace("{from_reserved}", "{sessions} r")
        + " WHERE r.user_id = ? AND r.session_id = ?"
    )
    return [(reserve, reserve_params), (insert, [*insert_params, user_id, session_id])]


def read_query(user_id: str, session_id: str, limit: int | None) -> Query:
    """The messages of a session in order; with ``limit``, the last ``limit`` (newest
    first, read backwards along the primary key: callers reverse them)."""
    if limit is None:
        return (
            "SELECT payload FROM {events} WHERE user_id = ? AND session_id = ? AND kind = 'message' ORDER BY seq",
            [user_id, session_id],
        )
    return (
        "SELECT payload FROM {events} WHERE user_id = ? AND session_id = ? AND kind = 'message' "
        "ORDER BY seq DESC LIMIT ?",
        [user_id, session_id, limit],
    )


def read_after_query(user_id: str, session_id: str, after_seq: int) -> Query:
    """``(seq, payload)`` of the messages with ``seq > after_seq``, in order (used by
    :class:`~.summary.SummaryMemory` to read what is not summarized yet)."""
    return (
        "SELECT seq, payload FROM {events} WHERE user_id = ? AND session_id = ? AND kind = 'message' "
        "AND seq > ? ORDER BY seq",
        [user_id, session_id, after_seq],
    )


def clear_queries(user_id: str, session_id: str) -> list[Query]:
    # The session row first: it waits for writers holding it, so the event delete that
    # follows sees their committed rows.
    return [
        ("DELETE FROM {sessions} WHERE user_id = ? AND session_id = ?", [user_id, session_id]),
        ("DELETE FROM {events} WHERE user_id = ? AND session_id = ?", [user_id, session_id]),
    ]


def sessions_query(user_id: str, limit: int | None) -> Query:
    query = (
        "SELECT user_id, session_id, agent_name, created_at, last_activity_at, last_seq "
        "FROM {sessions} WHERE user_id = ? ORDER BY last_activity_at DESC, session_id"
    )
    if limit is None:
        return query, [user_id]
    return query + " LIMIT ?", [user_id, limit]


_CLASSES: dict[str, type[BaseMessage]] = {
    "human": HumanMessage,
    "ai": AIMessage,
    "system": SystemMessage,
    "tool": ToolMessage,
    "chat": ChatMessage,
    "function": FunctionMessage,
}


def message_from_json(payload: str) -> BaseMessage:
    """Inverse of :func:`message_json`.

    Payloads are written by this package from validated messages (``model_dump`` output,
    every field present), so the common message types are rebuilt with pydantic's
    ``model_construct`` (no second validation, about 1.4x faster than
    ``messages_from_dict``); other types go through ``messages_from_dict``."""
    data = loads(payload)
    cls = _CLASSES.get(data.get("type"))
    if cls is not None:
        return cls.model_construct(**data["data"])
    return messages_from_dict([data])[0]


def _decode(rows: list[tuple[Any, ...]], newest_first: bool) -> list[BaseMessage]:
    messages = [message_from_json(r[0]) for r in rows]
    if newest_first:
        messages.reverse()
    return messages


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")


class ChatMessageHistory(BaseChatMessageHistory):
    """Messages of one session of one user, in the shared ``events`` log.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        session_id: any string.
        user_id: the tenant; another user's session with the same id is a different
            session.
        agent_name: recorded on the ``sessions`` row.
    """

    def __init__(
        self,
        engine: Engine,
        session_id: str,
        *,
        user_id: str = "default",
        agent_name: str | None = None,
    ) -> None:
        self.engine = engine
        self.session_id = session_id
        self.user_id = user_id
        self.agent_name = agent_name
        self._sid = encode_key(session_id)
        self._uid = encode_key(user_id)

    # -- reads -------------------------------------------------------------------------
    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """All messages of the session, oldest first."""
        return self.get_messages()

    def get_messages(self, limit: int | None = None) -> list[BaseMessage]:
        """The messages in order; with ``limit=k`` only the last ``k`` (read through the
        primary key index, not the whole session)."""
        _check_limit(limit)
        query, params = read_query(self._uid, self._sid, limit)
        with self.engine.transaction(self._uid, readonly=True) as tx:
            rows = tx.fetchall(query, params)
        return _decode(rows, newest_first=limit is not None)

    async def aget_messages(self, limit: int | None = None) -> list[BaseMessage]:
        """Async form of :meth:`get_messages`."""
        _check_limit(limit)
        query, params = read_query(self._uid, self._sid, limit)
        async with self.engine.atransaction(self._uid, readonly=True) as tx:
            rows = await tx.fetchall(query, params)
        return _decode(rows, newest_first=limit is not None)

    # -- writes ------------------------------------------------------------------------
    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` as one contiguous batch, atomically."""
        messages = _check_messages(messages)
        if not messages:
            return
        queries = append_queries(
            self.engine.dialect, self._uid, self._sid, self.agent_name, messages
        )
        with self.engine.transaction(
            self._uid, pipeline=len(queries) > 1, single=len(queries) == 1
        ) as tx:
            for query, params in queries:
                tx.execute(query, params)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Async form of :meth:`add_messages`."""
        messages = _check_messages(messages)
        if not messages:
            return
        queries = append_queries(
            self.engine.dialect, self._uid, self._sid, self.agent_name, messages
        )
        async with self.engine.atransaction(
            self._uid, pipeline=len(queries) > 1, single=len(queries) == 1
        ) as tx:
            for query, params in queries:
                await tx.execute(query, params)

    def clear(self) -> None:
        """Delete the session's messages and its ``sessions`` row."""
        with self.engine.transaction(self._uid) as tx:
            for query, params in clear_queries(self._uid, self._sid):
                tx.execute(query, params)

    async def aclear(self) -> None:
        """Async form of :meth:`clear`."""
        async with self.engine.atransaction(self._uid) as tx:
            for query, params in clear_queries(self._uid, self._sid):
                await tx.execute(query, params)

    # -- sessions ----------------------------------------------------------------------
    @staticmethod
    def list_sessions(
        engine: Engine, user_id: str = "default", *, limit: int | None = None
    ) -> list[SessionInfo]:
        """The sessions of ``user_id``, most recently active first."""
        _check_limit(limit)
        query, params = sessions_query(encode_key(user_id), limit)
        with engine.transaction(encode_key(user_id), readonly=True) as tx:
            rows = tx.fetchall(query, params)
        return [_session(engine.dialect, r) for r in rows]

    @staticmethod
    async def alist_sessions(
        engine: Engine, user_id: str = "default", *, limit: int | None = None
    ) -> list[SessionInfo]:
        """Async form of :meth:`list_sessions`."""
        _check_limit(limit)
        query, params = sessions_query(encode_key(user_id), limit)
        async with engine.atransaction(encode_key(user_id), readonly=True) as tx:
            rows = await tx.fetchall(query, params)
        return [_session(engine.dialect, r) for r in rows]

    def __repr__(self) -> str:
        return f"ChatMessageHistory(session_id={self.session_id!r}, user_id={self.user_id!r})"


def _session(dialect: Dialect, row: tuple[Any, ...]) -> SessionInfo:
    return SessionInfo(
        user_id=decode_key(row[0]),
        session_id=decode_key(row[1]),
        agent_name=row[2],
        created_at=dialect.to_datetime(row[3]),
        last_activity_at=dialect.to_datetime(row[4]),
        last_seq=int(row[5]),
    )


def _check_messages(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    messages = list(messages)
    for m in messages:
        if not isinstance(m, BaseMessage):
            raise TypeError(
                f"expected LangChain messages (BaseMessage), got {type(m).__name__}: {m!r:.80}"
            )
    return messages
