"""Conversation summary memory: recent messages verbatim, older ones in a running summary.

:class:`SummaryMemory` is the behaviour of LangChain's ``ConversationSummaryBufferMemory``
on top of :class:`~.chat_history.ChatMessageHistory`, and is itself a
``BaseChatMessageHistory``:

* Messages not yet summarized are kept verbatim while they fit in ``max_token_limit``.
  When an append makes them exceed it, the oldest are folded into the summary with ONE
  model call that sees only the old summary and the messages being folded (never the
  whole conversation again).
* The summary is stored in ``conversation_summaries`` with the ``seq`` of the last message
  it covers, so a new process reads it back: a restart costs no model call.
* The cut never separates an AI message that requested tool calls from its tool results,
  and the kept messages never start with an orphan tool result (what langmem #98, #111,
  #126 and langchain #34282 report).
* ``messages`` is a system message holding the summary, then the recent messages.
* :meth:`SummaryMemory.list_summaries` lists the summaries of a user's sessions, so a new
  session can start from them.

Example:
    >>> from langchain_core.language_models.fake_chat_models import FakeListChatModel
    >>> from langchain_core.messages import AIMessage, HumanMessage
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> llm = FakeListChatModel(responses=["Alice said she lives in Paris."])
    >>> memory = SummaryMemory(engine, llm, "chat-1", user_id="alice", max_token_limit=20)
    >>> memory.add_messages([HumanMessage("I live in Paris, by the river, near the old bridge."),
    ...                      AIMessage("Noted, Paris it is!")])
    >>> [m.type for m in memory.messages]
    ['system', 'ai']
    >>> memory.messages[0].content
    'Alice said she lives in Paris.'
    >>> [s.summary for s in SummaryMemory.list_summaries(engine, "alice")]
    ['Alice said she lives in Paris.']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    SystemMessage,
    ToolMessage,
    get_buffer_string,
    messages_from_dict,
)
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda

from ._core.llm import text_of
from ._core.plan import Atomic, Body, Model, Plan, Sql, Stmt, arun, dual, run
from ._encoding.json import dumps, loads
from ._encoding.keys import decode_key, encode_key
from .chat_history import ChatMessageHistory, _check_messages, append_queries, clear_queries
from .dialects import Dialect
from .engine import Engine, EngineLike, as_engine

__all__ = ["DEFAULT_SUMMARY_PROMPT", "SessionSummary", "SummaryMemory", "safe_cut"]

Query = tuple[str, list[Any]]
TokenCounter = Callable[[Sequence[BaseMessage]], int]

DEFAULT_SUMMARY_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "You maintain a running summary of a conversation between a human and an AI. "
            "Progressively summarize: fold the new lines into the current summary and return "
            "the new summary only, as plain text. Keep names, facts, preferences, decisions "
            "and open questions; drop small talk.",
        ),
        (
            "human",
            "Current summary:\n{summary}\n\nNew lines of conversation:\n{new_lines}\n\nNew summary:",
        ),
    ]
)


@dataclass(frozen=True)
class SessionSummary:
    """One row of ``conversation_summaries``."""

    user_id: str
    session_id: str
    summary: str
    message_count: int
    """Messages folded into the summary so far."""
    last_seq: int
    """``seq`` (in ``events``) of the last message the summary covers."""
    created_at: datetime | None
    updated_at: datetime | None


# -- query builders (pure) ------------------------------------------------------------


def state_query(user_id: str, session_id: str) -> Query:
    """The summary row (if any) joined with every message after its ``last_seq``, in one
    statement so both come from one snapshot. One row per message; a single row with
    NULL ``seq`` when nothing is pending."""
    return (
        "SELECT CAST(c.summary AS text), c.message_count, c.last_seq, e.seq, e.payload FROM (SELECT 1 AS one) AS o "
        "LEFT JOIN {conversation_summaries} c ON c.user_id = ? AND c.session_id = ? "
        "LEFT JOIN {events} e ON e.user_id = ? AND e.session_id = ? AND e.kind = 'message' "
        "AND e.seq > coalesce(c.last_seq, 0) ORDER BY e.seq",
        [user_id, session_id, user_id, session_id],
    )


def save_query(
    user_id: str, session_id: str, summary: str, folded: int, last_seq: int, expected_seq: int
) -> Query:
    """Store the new summary, unless another writer moved ``last_seq`` on since we read
    it (then nothing changes: its summary already covers these messages)."""
    return (
        "INSERT INTO {conversation_summaries} AS c (user_id, session_id, summary, message_count, last_seq) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, session_id) DO UPDATE SET summary = excluded.summary, "
        "message_count = c.message_count + excluded.message_count, last_seq = excluded.last_seq, "
        "updated_at = {now} WHERE c.last_seq = ?",
        [user_id, session_id, dumps(summary), folded, last_seq, expected_seq],
    )


def delete_query(user_id: str, session_id: str) -> Query:
    return (
        "DELETE FROM {conversation_summaries} WHERE user_id = ? AND session_id = ?",
        [user_id, session_id],
    )


def list_query(
    user_id: str, limit: int | None, exclude: str | None, only: str | None = None
) -> Query:
    query = (
        "SELECT user_id, session_id, CAST(summary AS text), message_count, last_seq, created_at, updated_at "
        "FROM {conversation_summaries} WHERE user_id = ?"
    )
    params: list[Any] = [user_id]
    if only is not None:
        query += " AND session_id = ?"
        params.append(only)
    if exclude is not None:
        query += " AND session_id <> ?"
        params.append(exclude)
    query += " ORDER BY updated_at DESC, session_id"
    if limit is not None:
        query += " LIMIT ?"
        params.append(limit)
    return query, params


# -- the cut (pure) -------------------------------------------------------------------


def safe_cut(
    messages: Sequence[BaseMessage],
    max_tokens: int,
    counter: TokenCounter = count_tokens_approximately,
    target: int | None = None,
) -> int:
    """How many of the oldest ``messages`` to fold into the summary so that the rest fit
    in ``target`` tokens (default ``max_tokens``) once they exceed ``max_tokens``, without
    separating tool calls from their results.

    A cut at ``i`` (fold ``messages[:i]``, keep ``messages[i:]``) is safe when every tool
    call requested before ``i`` has its result before ``i`` and ``messages[i]`` is not a
    tool result. The smallest safe cut that fits is chosen; if none fits, the largest safe
    one; ``0`` when everything fits or no cut is safe.

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> call = AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "1"}])
        >>> msgs = [HumanMessage("a"), call, ToolMessage("r", tool_call_id="1"), AIMessage("b")]
        >>> safe_cut(msgs, 0, counter=len)   # fold everything
        4
        >>> safe_cut(msgs, 2, counter=len)   # 2 would split the call from its result
        3
    """
    n = len(messages)
    sizes = [counter([m]) for m in messages]
    suffix = [0] * (n + 1)
    for i in range(n - 1, -1, -1):
        suffix[i] = suffix[i + 1] + sizes[i]
    if suffix[0] <= max_tokens:
        return 0
    goal = max_tokens if target is None else min(target, max_tokens)
    safe = [False] * (n + 1)
    open_ids: set[str] = set()
    for i, m in enumerate(messages):
        if isinstance(m, AIMessage) and m.tool_calls:
            open_ids.update(str(tc.get("id")) for tc in m.tool_calls)
        elif isinstance(m, ToolMessage):
            open_ids.discard(str(m.tool_call_id))
        nxt = messages[i + 1] if i + 1 < n else None
        safe[i + 1] = not open_ids and not isinstance(nxt, ToolMessage)
    best = 0
    for i in range(1, n + 1):
        if safe[i]:
            best = i
            if suffix[i] <= goal:
                return i
    return best


# -- the memory -----------------------------------------------------------------------


@dataclass
class _State:
    summary: str | None
    message_count: int
    last_seq: int
    seqs: list[int]
    messages: list[BaseMessage]


def _state(rows: list[tuple[Any, ...]]) -> _State:
    first = rows[0] if rows else (None, None, None, None, None)
    summary = loads(first[0]) if first[0] is not None else None
    pending = [r for r in rows if r[3] is not None]
    return _State(
        summary=summary,
        message_count=int(first[1] or 0),
        last_seq=int(first[2] or 0),
        seqs=[int(r[3]) for r in pending],
        messages=messages_from_dict([loads(r[4]) for r in pending]),
    )


def _check_positive(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


class SummaryMemory(BaseChatMessageHistory):
    """A chat history that keeps recent messages verbatim and summarizes older ones.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        llm: any LangChain chat model (or runnable from messages to a message/string); it
            writes the summary.
        session_id: the conversation; its messages live in the shared ``events`` log, so a
            :class:`~.chat_history.ChatMessageHistory` on the same session sees them.
        user_id: the tenant.
        max_token_limit: budget of the messages kept verbatim (default 2000).
        token_counter: counts tokens of a list of messages (default
            ``count_tokens_approximately``; e.g. ``llm.get_num_tokens_from_messages`` for
            a model's own tokenizer).
        prompt: a chat prompt with ``summary`` and ``new_lines`` variables
            (default :data:`DEFAULT_SUMMARY_PROMPT`).
        auto_prune: summarize on :meth:`add_messages` (default True); else call
            :meth:`prune` yourself.
        prune_to: when the recent messages outgrow ``max_token_limit``, fold until they
            fit in this many tokens (default ``max_token_limit``, as the legacy class
            does). A lower mark, e.g. half the budget, makes a summary call every few
            turns instead of on almost every turn once the budget is reached.
        agent_name: recorded on the ``sessions`` row.

    Example:
        >>> from langchain_core.language_models.fake_chat_models import FakeListChatModel
        >>> from langchain_agentmem import connect
        >>> engine = connect("sqlite://"); _ = engine.migrate()
        >>> memory = SummaryMemory(engine, FakeListChatModel(responses=["..."]), "s1")
        >>> memory.add_user_message("hi")
        >>> [m.content for m in memory.messages]
        ['hi']
    """

    def __init__(
        self,
        engine: EngineLike,
        llm: BaseLanguageModel[Any] | Runnable[Any, Any],
        session_id: str,
        *,
        user_id: str = "default",
        max_token_limit: int = 2000,
        token_counter: TokenCounter | None = None,
        prompt: ChatPromptTemplate | None = None,
        auto_prune: bool = True,
        prune_to: int | None = None,
        agent_name: str | None = None,
    ) -> None:
        engine = as_engine(engine)
        if not isinstance(llm, (BaseLanguageModel, Runnable)):
            raise TypeError(f"expected a LangChain chat model as llm, got {type(llm).__name__}")
        self.engine = engine
        self.llm = llm
        self.session_id = session_id
        self.user_id = user_id
        self.max_token_limit = _check_positive("max_token_limit", max_token_limit)
        self.prune_to = _check_positive("prune_to", prune_to) if prune_to is not None else None
        self.token_counter: TokenCounter = token_counter or count_tokens_approximately
        self.prompt = prompt or DEFAULT_SUMMARY_PROMPT
        self.auto_prune = auto_prune
        self.history = ChatMessageHistory(
            engine, session_id, user_id=user_id, agent_name=agent_name
        )
        self._uid = encode_key(user_id)
        self._sid = encode_key(session_id)
        self._chain: Runnable[Any, str] = (
            self.prompt | llm | RunnableLambda(lambda out: text_of(out).strip())
        )

    # -- plans and bodies ----------------------------------------------------------------
    def _read_plan(self) -> Plan[_State]:
        (rows,) = yield Sql([Stmt(*state_query(self._uid, self._sid), fetch=True)], readonly=True)
        return _state(rows)

    def _messages(self, state: _State) -> list[BaseMessage]:
        if not state.summary:
            return state.messages
        return [SystemMessage(content=state.summary), *state.messages]

    # -- reads -------------------------------------------------------------------------
    @dual
    def _current(self) -> Plan[list[BaseMessage]]:
        return self._messages((yield from self._read_plan()))

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """A system message with the summary (when there is one), then the messages not
        summarized yet. Reads only: never calls the model."""
        return self._current()

    aget_messages = _current.async_
    aget_messages.__doc__ = "Async form of :attr:`messages`."

    @dual
    def get_summary(self) -> Plan[SessionSummary | None]:
        """This session's summary row, or None before anything was summarized."""
        body = _summaries_body(self.engine.dialect, self._uid, None, None, self._sid)
        rows: list[SessionSummary] = yield Atomic(body, readonly=True)
        return rows[0] if rows else None

    aget_summary = get_summary.async_

    @property
    def moving_summary_buffer(self) -> str:
        """The summary text ("" before anything was summarized), as the legacy class
        named it."""
        return run(self.engine, self._uid, self._read_plan()).summary or ""

    # -- writes ------------------------------------------------------------------------
    @dual
    def add_messages(self, messages: Sequence[BaseMessage]) -> Plan[None]:
        """Append ``messages``; then, with ``auto_prune``, summarize what no longer fits
        (at most one model call)."""
        yield from self._add_plan(messages)

    aadd_messages = add_messages.async_

    def _add_plan(self, messages: Sequence[BaseMessage]) -> Plan[None]:
        messages = _check_messages(messages)
        if messages:
            queries = append_queries(
                self.engine.dialect, self._uid, self._sid, self.history.agent_name, messages
            )
            yield Atomic(_run_queries(queries), pipeline=len(queries) > 1, single=len(queries) == 1)
        if self.auto_prune:
            yield from self._prune_plan()

    def _prune_plan(self) -> Plan[bool]:
        state = yield from self._read_plan()
        cut = safe_cut(state.messages, self.max_token_limit, self.token_counter, self.prune_to)
        if cut == 0:
            return False
        folded = state.messages[:cut]
        summary = yield Model(
            self._chain,
            {"summary": state.summary or "(none yet)", "new_lines": get_buffer_string(folded)},
        )
        query, params = save_query(
            self._uid, self._sid, summary, cut, state.seqs[cut - 1], state.last_seq
        )
        (changed,) = yield Sql([Stmt(query, params)])
        return bool(changed)

    @dual
    def prune(self) -> Plan[bool]:
        """Fold the oldest unsummarized messages into the summary until the rest fit in
        ``max_token_limit``. One model call when something is folded, none otherwise.
        Returns whether the summary changed."""
        return (yield from self._prune_plan())

    aprune = prune.async_

    @dual
    def clear(self) -> Plan[None]:
        """Delete the session's messages and its summary."""
        yield Atomic(
            _run_queries([delete_query(self._uid, self._sid), *clear_queries(self._uid, self._sid)])
        )

    aclear = clear.async_

    # -- other sessions ----------------------------------------------------------------
    @staticmethod
    def list_summaries(
        engine: Engine,
        user_id: str = "default",
        *,
        limit: int | None = None,
        exclude: str | None = None,
    ) -> list[SessionSummary]:
        """Summaries of ``user_id``'s sessions, most recently updated first (``exclude``:
        a session id to leave out, e.g. the current one).

        Example:
            >>> from langchain_agentmem import connect
            >>> engine = connect("sqlite://"); _ = engine.migrate()
            >>> SummaryMemory.list_summaries(engine, "alice")
            []
        """
        return run(engine, encode_key(user_id), _list_plan(engine, user_id, limit, exclude))

    @staticmethod
    async def alist_summaries(
        engine: Engine,
        user_id: str = "default",
        *,
        limit: int | None = None,
        exclude: str | None = None,
    ) -> list[SessionSummary]:
        """Async form of :meth:`list_summaries`."""
        return await arun(engine, encode_key(user_id), _list_plan(engine, user_id, limit, exclude))

    def __repr__(self) -> str:
        return f"SummaryMemory(session_id={self.session_id!r}, user_id={self.user_id!r}, max_token_limit={self.max_token_limit})"


def _run_queries(queries: Sequence[Query]) -> Body[None]:
    for query, params in queries:
        yield Stmt(query, params)


def _summaries_body(
    dialect: Dialect, uid: str, limit: int | None, exclude: str | None, only: str | None = None
) -> Body[list[SessionSummary]]:
    """Summary rows of the tenant ``uid`` (encoded ids), most recently updated first."""
    rows = yield Stmt(*list_query(uid, limit, exclude, only), fetch=True)
    return [_summary(dialect, r) for r in rows]


def summaries_body(
    dialect: Dialect, user_id: str, limit: int | None, exclude: str | None
) -> Body[list[SessionSummary]]:
    """:meth:`SummaryMemory.list_summaries` as a body (arguments checked now), for plans
    that read it with other statements in one transaction (the agent middleware)."""
    if limit is not None:
        _check_positive("limit", limit)
    return _summaries_body(
        dialect, encode_key(user_id), limit, encode_key(exclude) if exclude is not None else None
    )


def _list_plan(
    engine: Engine, user_id: str, limit: int | None, exclude: str | None
) -> Plan[list[SessionSummary]]:
    body = summaries_body(engine.dialect, user_id, limit, exclude)
    return (yield Atomic(body, readonly=True))


def _summary(dialect: Dialect, row: tuple[Any, ...]) -> SessionSummary:
    return SessionSummary(
        user_id=decode_key(row[0]),
        session_id=decode_key(row[1]),
        summary=loads(row[2]),
        message_count=int(row[3]),
        last_seq=int(row[4]),
        created_at=dialect.to_datetime(row[5]),
        updated_at=dialect.to_datetime(row[6]),
    )
