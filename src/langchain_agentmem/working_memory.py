"""Working memory: the short-lived context of one agent session.

A :class:`WorkingMemory` holds, per ``(user_id, session_id)``, what the agent is doing now:
its current goal, an active context (a JSON object), an append-only history of thoughts
and the ids of related episodes. It lives for ``ttl`` after the last write: every write
refreshes ``last_updated`` and ``expires_at``. A session whose ``expires_at`` has passed
(or that was ended) is not active: nothing of it is returned, even before
:meth:`WorkingMemory.cleanup_expired` deactivates or deletes it, and the next write starts
a fresh context in its place.

Tables: ``working_memory`` (one row per session) and ``working_memory_thoughts`` (one row
per thought, numbered from 1 per context). Every write takes the session's row lock
first (an upsert), so thoughts appended by many threads, coroutines or processes at once
are all kept, each with its own ``seq``.

Example:
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> wm = WorkingMemory(engine, user_id="alice", session_id="run-7")
    >>> wm.is_active()
    False
    >>> wm.set_goal("book a flight to Lyon")
    >>> wm.update_context({"budget": 300, "dates": ["2025-05-01"]})
    {'budget': 300, 'dates': ['2025-05-01']}
    >>> wm.add_thought("look for direct flights first")
    1
    >>> wm.add_related_episodes(["ep-12", "ep-40"])
    ['ep-12', 'ep-40']
    >>> state = wm.get()
    >>> state.goal, [t.text for t in state.thoughts], state.related_episodes
    ('book a flight to Lyon', ['look for direct flights first'], ['ep-12', 'ep-40'])
    >>> wm.is_active(), state.expires_at > state.last_updated
    (True, True)
    >>> import asyncio; asyncio.run(wm.aget_goal())
    'book a flight to Lyon'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ._core.durations import batch_size as check_batch_size
from ._core.durations import ttl_minutes
from ._core.plan import Atomic, Plan, dual
from ._encoding.json import check_exact, dumps, dumps_exact, loads
from ._encoding.keys import decode_key, encode_key
from .dialects import SQL, Body, Composed, Dialect, Ident, Many, One, Stmt
from .engine import EngineLike, as_engine

__all__ = ["Thought", "WorkingMemory", "WorkingState"]


@dataclass(frozen=True)
class Thought:
    """One entry of a session's thought history."""

    seq: int
    """Its place in the history, from 1."""
    text: str
    created_at: datetime


@dataclass(frozen=True)
class WorkingState:
    """What an active session holds, read in one statement."""

    session_id: str
    goal: str | None
    context: dict[str, Any]
    related_episodes: list[str]
    thoughts: list[Thought]
    created_at: datetime
    """When the current context started (the first write, or the first after expiry)."""
    last_updated: datetime
    expires_at: datetime


# -- query builders (pure) ------------------------------------------------------------

_STATE = ("current_goal", "context", "related_episodes", "thought_count")
_FRESH = {
    "current_goal": SQL("NULL"),
    "context": SQL("'{{}}'"),
    "related_episodes": SQL("'[]'"),
    "thought_count": SQL("0"),
}
_STALE = SQL("(NOT w.is_active OR w.expires_at <= {now})")
_ACTIVE = SQL("w.is_active AND w.expires_at > {now}")
_RETURNING = SQL(
    "current_goal, context, related_episodes, thought_count, created_at, last_updated, expires_at"
)
#: Per column of ``_STATE``: its SET clause when replaced, when added to, when kept.
_SETS = {
    col: (
        SQL("{c} = excluded.{c}").format(c=Ident(col)),
        SQL("{c} = CASE WHEN {stale} THEN excluded.{c} ELSE w.{c} + excluded.{c} END").format(
            c=Ident(col), stale=_STALE
        ),
        SQL("{c} = CASE WHEN {stale} THEN excluded.{c} ELSE w.{c} END").format(
            c=Ident(col), stale=_STALE
        ),
    )
    for col in _STATE
}
_TOUCHED = SQL(
    "created_at = CASE WHEN {stale} THEN {now} ELSE w.created_at END, is_active = TRUE, "
    "last_updated = {now}, expires_at = excluded.expires_at"
).format(stale=_STALE)
_COMMA = SQL(", ")


def touch_sql(
    dialect: Dialect, replace: Sequence[str] = (), add_thoughts: bool = False
) -> Composed:
    """Create, refresh or restart one session and lock its row; return its state.

    Parameters: ``user_id, session_id``, then the new value of each column in ``replace``
    (in the order of ``current_goal, context, related_episodes``), then the number of
    thoughts added when ``add_thoughts``, then the TTL in minutes. A row that had expired
    or was ended starts afresh (other columns reset); ``thought_count`` comes back as the
    seq of the last thought, counting those added.
    """
    values, sets = [SQL("?"), SQL("?")], []
    for col in _STATE:
        given = col in replace or (col == "thought_count" and add_thoughts)
        values.append(SQL("?") if given else _FRESH[col])
        replaced, added, kept = _SETS[col]
        sets.append(replaced if col in replace else added if given else kept)
    values.append(SQL(dialect.now_plus_minutes("CAST(? AS double precision)")))
    sets.append(_TOUCHED)
    return SQL(
        "INSERT INTO {working_memory} AS w (user_id, session_id, {cols}, expires_at) "
        "VALUES ({values}) ON CONFLICT (user_id, session_id) DO UPDATE SET {sets} "
        "RETURNING {returning}"
    ).format(
        cols=_COMMA.join(Ident(c) for c in _STATE),
        values=_COMMA.join(values),
        sets=_COMMA.join(sets),
        returning=_RETURNING,
    )


def _touch(
    dialect: Dialect,
    scope: list[str],
    minutes: float,
    replace: Mapping[str, str | None] | None = None,
    thoughts: Sequence[str] = (),
) -> Body[tuple[Any, ...]]:
    """Lock the session (creating or restarting it) and write ``replace``d columns and
    ``thoughts``; the row's state after the write."""
    replace = replace or {}
    cols = [c for c in _STATE if c in replace]
    params: list[Any] = [*scope, *(replace[c] for c in cols)]
    if thoughts:
        params.append(len(thoughts))
    row = yield One(touch_sql(dialect, cols, bool(thoughts)), [*params, minutes])
    assert row is not None  # an upsert with RETURNING returns its row
    last = int(row[3])
    if last == len(thoughts):
        # A new or restarted context: thoughts of an earlier one (expired) are not its own.
        yield Stmt(
            "DELETE FROM {working_memory_thoughts} WHERE user_id = ? AND session_id = ?", scope
        )
    if thoughts:
        first = last - len(thoughts) + 1
        yield Many(
            "INSERT INTO {working_memory_thoughts} (user_id, session_id, seq, thought) VALUES (?, ?, ?, ?)",
            [[*scope, first + i, dumps(t)] for i, t in enumerate(thoughts)],
        )
    return row


def _merge_context(
    dialect: Dialect, scope: list[str], minutes: float, changes: dict[str, Any]
) -> Body[dict[str, Any]]:
    row = yield from _touch(dialect, scope, minutes)
    context = loads(row[1])
    context.update(changes)
    yield Stmt(
        "UPDATE {working_memory} SET context = ? WHERE user_id = ? AND session_id = ?",
        [dumps(context), *scope],
    )
    return dict(context)


def _merge_related(
    dialect: Dialect, scope: list[str], minutes: float, ids: list[str]
) -> Body[list[str]]:
    row = yield from _touch(dialect, scope, minutes)
    related: list[str] = loads(row[2])
    new = [i for i in dict.fromkeys(ids) if i not in set(related)]
    if new:
        related += new
        yield Stmt(
            "UPDATE {working_memory} SET related_episodes = ? WHERE user_id = ? AND session_id = ?",
            [dumps(related), *scope],
        )
    return related


def _read_state(dialect: Dialect, scope: list[str]) -> Body[WorkingState | None]:
    rows = yield Stmt(
        SQL(
            "SELECT w.current_goal, w.context, w.related_episodes, w.created_at, w.last_updated, "
            "w.expires_at, t.seq, t.thought, t.created_at FROM {working_memory} w "
            "LEFT JOIN {working_memory_thoughts} t ON t.user_id = w.user_id "
            "AND t.session_id = w.session_id "
            "WHERE w.user_id = ? AND w.session_id = ? AND {active} ORDER BY t.seq"
        ).format(active=_ACTIVE),
        scope,
        fetch=True,
    )
    if not rows:
        return None
    first = rows[0]
    return WorkingState(
        session_id=decode_key(scope[1]),
        goal=loads(first[0]) if first[0] is not None else None,
        context=loads(first[1]),
        related_episodes=loads(first[2]),
        thoughts=[_thought(dialect, r[6:]) for r in rows if r[6] is not None],
        created_at=_time(dialect, first[3]),
        last_updated=_time(dialect, first[4]),
        expires_at=_time(dialect, first[5]),
    )


def _read_column(column: str, scope: list[str]) -> Body[Any]:
    row = yield One(
        SQL(
            "SELECT {column} FROM {working_memory} w "
            "WHERE w.user_id = ? AND w.session_id = ? AND {active}"
        ).format(column=Ident("w", column), active=_ACTIVE),
        scope,
    )
    return None if row is None else row[0]


def _read_thoughts(dialect: Dialect, scope: list[str], last: int | None) -> Body[list[Thought]]:
    params: list[Any] = list(scope)
    if last is not None:
        order = SQL(" ORDER BY t.seq DESC LIMIT ?")
        params.append(last)
    else:
        order = SQL(" ORDER BY t.seq")
    query = SQL(
        "SELECT t.seq, t.thought, t.created_at FROM {working_memory_thoughts} t "
        "JOIN {working_memory} w ON w.user_id = t.user_id AND w.session_id = t.session_id "
        "WHERE t.user_id = ? AND t.session_id = ? AND {active}{order}"
    ).format(active=_ACTIVE, order=order)
    rows = yield Stmt(query, params, fetch=True)
    thoughts = [_thought(dialect, r) for r in rows]
    return thoughts[::-1] if last is not None else thoughts


def _thought(dialect: Dialect, row: Sequence[Any]) -> Thought:
    return Thought(int(row[0]), loads(row[1]), _time(dialect, row[2]))


def _time(dialect: Dialect, value: Any) -> datetime:
    when = dialect.to_datetime(value)
    assert when is not None  # NOT NULL columns
    return when


def cleanup_batch(uid: str, delete: bool, size: int) -> Body[int]:
    """Deactivate (or delete, with the sessions already inactive) up to ``size`` expired
    sessions of a user; how many."""
    if delete:
        cond = SQL("user_id = ? AND (NOT is_active OR expires_at <= {now})")
        head = SQL("DELETE FROM {working_memory} WHERE ")
    else:
        cond = SQL("user_id = ? AND is_active AND expires_at <= {now}")
        head = SQL("UPDATE {working_memory} SET is_active = FALSE WHERE ")
    # The outer condition is checked again on rows a concurrent write has just refreshed.
    n = yield Stmt(
        SQL(
            "{head}{cond} AND session_id IN (SELECT session_id FROM {working_memory} WHERE "
            "{cond} ORDER BY session_id LIMIT ?)"
        ).format(head=head, cond=cond),
        [uid, uid, size],
    )
    return int(n)


def cleanup_plan(uid: str, delete: bool, size: int) -> Plan[int]:
    """:func:`cleanup_batch` in one transaction per batch until none is left; the total."""
    total = 0
    while True:
        n = yield Atomic(cleanup_batch(uid, delete, size))
        total += n
        if n < size:
            return total


def _users(delete: bool) -> Body[list[str]]:
    if delete:
        cond = SQL("NOT is_active OR expires_at <= {now}")
    else:
        cond = SQL("is_active AND expires_at <= {now}")
    rows = yield Stmt(
        SQL("SELECT DISTINCT user_id FROM {working_memory} WHERE {cond} ORDER BY user_id").format(
            cond=cond
        ),
        fetch=True,
    )
    return [decode_key(r[0]) for r in rows]


def users_to_clean_plan(delete: bool = False) -> Plan[list[str]]:
    """Every tenant with sessions :func:`cleanup_plan` would change (``agentmem prune``)."""
    return (yield Atomic(_users(delete), readonly=True, user_id=None, every_tenant=True))


# -- the memory ------------------------------------------------------------------------


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}: {value!r}")
    return value


def _strings(values: Any, what: str) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{what} must be a list of str, got {type(values).__name__}: {values!r}")
    return [_str(v, f"each of {what}") for v in values]


def _context(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a dict, got {type(value).__name__}: {value!r}")
    value = dict(value)
    check_exact(value, what)
    return value


class WorkingMemory:
    """The working context of one session of one user.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        user_id: the tenant.
        session_id: the session (any string).
        ttl: how long the session stays active after its last write (a positive
            ``timedelta``, default one hour).

    Every method has an ``a``-prefixed async form. See the module docstring for an
    example.
    """

    def __init__(
        self,
        engine: EngineLike,
        *,
        user_id: str,
        session_id: str,
        ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self.engine = as_engine(engine)
        self.user_id = _str(user_id, "user_id")
        self.session_id = _str(session_id, "session_id")
        minutes = ttl_minutes(ttl, "ttl")
        assert minutes is not None
        self._minutes: float = minutes
        self.ttl = ttl
        self._uid = encode_key(user_id)
        self._scope = [self._uid, encode_key(session_id)]

    def __repr__(self) -> str:
        return f"WorkingMemory(user_id={self.user_id!r}, session_id={self.session_id!r}, ttl={self.ttl!r})"

    def _write(
        self, replace: Mapping[str, str | None] | None = None, thoughts: Sequence[str] = ()
    ) -> Body[tuple[Any, ...]]:
        return _touch(self.engine.dialect, self._scope, self._minutes, replace, thoughts)

    # -- reads ---------------------------------------------------------------------------
    @dual
    def get(self) -> Plan[WorkingState | None]:
        """Everything the session holds, or ``None`` when it is not active."""
        return (yield Atomic(_read_state(self.engine.dialect, self._scope), readonly=True))

    aget = get.async_

    @dual
    def is_active(self) -> Plan[bool]:
        """Whether the session exists, has not expired and was not ended."""
        value = yield Atomic(_read_column("is_active", self._scope), readonly=True)
        return value is not None

    ais_active = is_active.async_

    @dual
    def get_goal(self) -> Plan[str | None]:
        """The current goal (``None`` when none is set or the session is not active)."""
        value = yield Atomic(_read_column("current_goal", self._scope), readonly=True)
        return loads(value) if value is not None else None

    aget_goal = get_goal.async_

    @dual
    def get_context(self) -> Plan[dict[str, Any]]:
        """The active context (``{}`` when the session is not active)."""
        value = yield Atomic(_read_column("context", self._scope), readonly=True)
        return loads(value) if value is not None else {}

    aget_context = get_context.async_

    @dual
    def get_thoughts(self, *, last: int | None = None) -> Plan[list[Thought]]:
        """The thought history, oldest first; only the ``last`` ones when given."""
        if last is not None and (isinstance(last, bool) or not isinstance(last, int)):
            raise TypeError(f"last must be an int or None, got {type(last).__name__}: {last!r}")
        if last is not None and last < 0:
            raise ValueError(f"last must be at least 0, got {last}")
        return (yield Atomic(_read_thoughts(self.engine.dialect, self._scope, last), readonly=True))

    aget_thoughts = get_thoughts.async_

    @dual
    def get_related_episodes(self) -> Plan[list[str]]:
        """Ids of the episodes related to the session, in the order they were added."""
        value = yield Atomic(_read_column("related_episodes", self._scope), readonly=True)
        return loads(value) if value is not None else []

    aget_related_episodes = get_related_episodes.async_

    # -- writes (each refreshes last_updated and expires_at) -----------------------------
    @dual
    def set_goal(self, goal: str | None) -> Plan[None]:
        """Set (or, with ``None``, clear) the current goal."""
        value = dumps(_str(goal, "goal")) if goal is not None else None
        yield Atomic(self._write({"current_goal": value}))

    aset_goal = set_goal.async_

    @dual
    def set_context(self, context: Mapping[str, Any]) -> Plan[None]:
        """Replace the active context (a JSON object)."""
        value = dumps_exact(_context(context, "context"), "context")
        yield Atomic(self._write({"context": value}))

    aset_context = set_context.async_

    @dual
    def update_context(self, changes: Mapping[str, Any]) -> Plan[dict[str, Any]]:
        """Merge ``changes`` into the active context (top-level keys replaced); the
        context after the merge. Atomic under concurrent callers."""
        merged = _context(changes, "changes")
        return (
            yield Atomic(_merge_context(self.engine.dialect, self._scope, self._minutes, merged))
        )

    aupdate_context = update_context.async_

    @dual
    def add_thought(self, thought: str) -> Plan[int]:
        """Append one thought; its ``seq``. Concurrent appends are all kept."""
        row = yield Atomic(self._write(thoughts=[_str(thought, "thought")]))
        return int(row[3])

    aadd_thought = add_thought.async_

    @dual
    def add_thoughts(self, thoughts: Sequence[str]) -> Plan[list[int]]:
        """Append thoughts in order, in one transaction; their ``seq``\\ s."""
        texts = _strings(thoughts, "thoughts")
        if not texts:
            return []
        row = yield Atomic(self._write(thoughts=texts))
        last = int(row[3])
        return list(range(last - len(texts) + 1, last + 1))

    aadd_thoughts = add_thoughts.async_

    @dual
    def add_related_episodes(self, episode_ids: Sequence[str]) -> Plan[list[str]]:
        """Relate episodes to the session (ids already related are skipped); every
        related id after the call."""
        ids = _strings(episode_ids, "episode_ids")
        return (yield Atomic(_merge_related(self.engine.dialect, self._scope, self._minutes, ids)))

    aadd_related_episodes = add_related_episodes.async_

    @dual
    def touch(self) -> Plan[datetime]:
        """Keep the session active for another ``ttl`` (starting it if needed); the new
        ``expires_at``."""
        row = yield Atomic(self._write())
        return _time(self.engine.dialect, row[6])

    atouch = touch.async_

    @dual
    def end(self) -> Plan[bool]:
        """Deactivate the session now; whether it was active. Its rows stay until
        :meth:`cleanup_expired` deletes them; the next write starts afresh."""
        n = yield Atomic(
            _one(
                Stmt(
                    "UPDATE {working_memory} SET is_active = FALSE, last_updated = {now} "
                    "WHERE user_id = ? AND session_id = ? AND is_active AND expires_at > {now}",
                    self._scope,
                )
            ),
            single=True,
        )
        return bool(n)

    aend = end.async_

    @dual
    def clear(self) -> Plan[bool]:
        """Delete the session and its thoughts; whether there was one (active or not)."""
        n = yield Atomic(
            _one(
                Stmt(
                    "DELETE FROM {working_memory} WHERE user_id = ? AND session_id = ?",
                    self._scope,
                )
            ),
            single=True,
        )
        return bool(n)

    aclear = clear.async_

    # -- maintenance ---------------------------------------------------------------------
    @dual
    def cleanup_expired(self, *, delete: bool = False, batch_size: int = 1000) -> Plan[int]:
        """Deactivate every expired session of this user (not only this one), or with
        ``delete`` delete them and the sessions already inactive, thoughts included;
        ``batch_size`` sessions per transaction. The number of sessions changed.
        ``agentmem prune --working-memory`` runs it for every user."""
        if not isinstance(delete, bool):
            raise TypeError(f"delete must be a bool, got {type(delete).__name__}: {delete!r}")
        return (yield from cleanup_plan(self._uid, delete, check_batch_size(batch_size)))

    acleanup_expired = cleanup_expired.async_


def _one(stmt: Stmt) -> Body[Any]:
    return (yield stmt)
