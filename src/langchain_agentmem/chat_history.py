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

from ._checkpoint.serde import paused_gc
from ._core.plan import Atomic, Plan, Stmt, arun, dual, run, statements
from ._encoding.json import check_finite, clean_text, dumps, loads
from ._encoding.keys import decode_key, encode_key
from .dialects import Dialect
from .engine import Engine, EngineLike, as_engine
from .events import check_status, end_session

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
    :func:`~._json.dumps` path, and values JSON cannot hold raise ``TypeError`` (NaN and
    infinity ``ValueError``, naming where they are: pydantic would write them as null)."""
    for name in ("additional_kwargs", "response_metadata"):
        fields = getattr(message, name, None)
        if fields:
            check_finite(fields, name)
    if not isinstance(message.content, str):
        check_finite(message.content, "content")
    for i, call in enumerate(getattr(message, "tool_calls", None) or ()):
        check_finite(call.get("args"), f"tool_calls[{i}]['args']")
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
        "last_activity_at = {now}"
    )
    if agent_name is not None:
        # Without a name the row keeps its own: setting nothing more leaves the update to
        # the session's counter and activity time (a hybrid cache's outbox trigger on the
        # other columns then does not even run).
        reserve += ", agent_name = excluded.agent_name"
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

#: Per message type whose fields have no aliases and that has no post-init hook: the class
#: and its field names in order. A payload whose data has exactly these keys in this order
#: (what ``model_dump_json`` writes) is that object's ``__dict__`` as ``model_construct``
#: would build it.
_PLAIN: dict[str, tuple[type[BaseMessage], tuple[str, ...], frozenset[str]]] = {
    name: (cls, tuple(cls.__pydantic_fields__), frozenset(cls.__pydantic_fields__))
    for name, cls in _CLASSES.items()
    if cls.__pydantic_post_init__ is None
    and not cls.__private_attributes__
    and cls.model_config.get("extra") == "allow"
    and all(
        f.alias is None and f.validation_alias is None for f in cls.__pydantic_fields__.values()
    )
}

_set = object.__setattr__


def message_from_data(data: Any) -> BaseMessage:
    """The message of one parsed payload (``{"type": ..., "data": {...}}``).

    Payloads are written by this package from validated messages (``model_dump`` output,
    every field present), so the common message types are rebuilt without a second
    validation: exactly what ``model_construct`` builds, assembled directly when the data
    has every field in order (about 4x faster), else by ``model_construct``; other types
    go through ``messages_from_dict``.

    Example:
        >>> message_from_data(loads(message_json(AIMessage("hi")))) == AIMessage("hi")
        True
    """
    kind = data.get("type")
    fields = data.get("data")
    plain = _PLAIN.get(kind)  # type: ignore[arg-type]
    if plain is not None and type(fields) is dict and tuple(fields) == plain[1]:
        cls = plain[0]
        message = cls.__new__(cls)
        _set(message, "__dict__", fields)
        _set(message, "__pydantic_fields_set__", set(plain[2]))
        _set(message, "__pydantic_extra__", {})
        _set(message, "__pydantic_private__", None)
        return message
    other = _CLASSES.get(kind)  # type: ignore[arg-type]
    if other is not None:
        return other.model_construct(**fields)
    return messages_from_dict([data])[0]


def message_from_json(payload: str) -> BaseMessage:
    """Inverse of :func:`message_json` (see :func:`message_from_data`)."""
    return message_from_data(loads(payload))


def messages_from_json(payloads: Sequence[str]) -> list[BaseMessage]:
    """:func:`message_from_json` of each payload: parsed as one JSON array (one call of
    the codec instead of one per message) while the cyclic garbage collector is paused
    (building many objects that all survive makes it run over and over, for nothing)."""
    if not payloads:
        return []
    with paused_gc():
        return [message_from_data(d) for d in loads("[" + ",".join(payloads) + "]")]


def _decode(rows: list[tuple[Any, ...]], newest_first: bool) -> list[BaseMessage]:
    messages = messages_from_json([r[0] for r in rows])
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
        engine: EngineLike,
        session_id: str,
        *,
        user_id: str = "default",
        agent_name: str | None = None,
    ) -> None:
        engine = as_engine(engine)
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

    @dual
    def get_messages(self, limit: int | None = None) -> Plan[list[BaseMessage]]:
        """The messages in order; with ``limit=k`` only the last ``k`` (read through the
        primary key index, not the whole session)."""
        _check_limit(limit)
        query = read_query(self._uid, self._sid, limit)
        (rows,) = yield Atomic(statements([Stmt(*query, True)]), readonly=True)
        return _decode(rows, newest_first=limit is not None)

    aget_messages = get_messages.async_

    # -- writes ------------------------------------------------------------------------
    @dual
    def add_messages(self, messages: Sequence[BaseMessage]) -> Plan[None]:
        """Append ``messages`` as one contiguous batch, atomically."""
        messages = _check_messages(messages)
        if not messages:
            return
        queries = append_queries(
            self.engine.dialect, self._uid, self._sid, self.agent_name, messages
        )
        yield Atomic(
            statements(Stmt(*q) for q in queries),
            pipeline=len(queries) > 1,
            single=len(queries) == 1,
        )

    aadd_messages = add_messages.async_

    @dual
    def clear(self) -> Plan[None]:
        """Delete the session's messages and its ``sessions`` row."""
        yield Atomic(statements(Stmt(*q) for q in clear_queries(self._uid, self._sid)))

    aclear = clear.async_

    @dual
    def end_session(self, status: str = "completed") -> Plan[bool]:
        """Set the session's status (``completed``, ``failed``, ``abandoned``, or
        ``active`` to re-open it) and its end time; whether the session exists. See
        :class:`~langchain_agentmem.SessionLog` for the rest of the agent log."""
        row = yield Atomic(end_session(self._uid, self._sid, check_status(status)), single=True)
        return row is not None

    aend_session = end_session.async_

    # -- sessions ----------------------------------------------------------------------
    @staticmethod
    def list_sessions(
        engine: Engine, user_id: str = "default", *, limit: int | None = None
    ) -> list[SessionInfo]:
        """The sessions of ``user_id``, most recently active first."""
        return run(engine, encode_key(user_id), _sessions_plan(engine, user_id, limit))

    @staticmethod
    async def alist_sessions(
        engine: Engine, user_id: str = "default", *, limit: int | None = None
    ) -> list[SessionInfo]:
        """Async form of :meth:`list_sessions`."""
        return await arun(engine, encode_key(user_id), _sessions_plan(engine, user_id, limit))

    def __repr__(self) -> str:
        return f"ChatMessageHistory(session_id={self.session_id!r}, user_id={self.user_id!r})"


def _sessions_plan(engine: Engine, user_id: str, limit: int | None) -> Plan[list[SessionInfo]]:
    """:meth:`ChatMessageHistory.list_sessions`, written once for both forms."""
    _check_limit(limit)
    query = sessions_query(encode_key(user_id), limit)
    (rows,) = yield Atomic(statements([Stmt(*query, True)]), readonly=True)
    return [_session(engine.dialect, r) for r in rows]


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
