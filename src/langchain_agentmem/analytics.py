"""The analytics views dashboards read, as rows.

Migration ``0012_skills_events`` creates five views on both backends; their text columns
are plain text (names, content), never JSON-quoted, so any SQL client reads them as they
are:

* ``agent_performance_summary``: per agent, sessions by status, completion rate (completed
  over all sessions), events, average importance of scored events, last activity.
* ``skill_usage_summary``: per skill (latest version), agents bound and enabled bindings.
* ``important_events_recent``: events of importance at least 0.8 of the last 7 days.
* ``agent_activity_hourly``: events and sessions per hour per agent, last 24 hours.
* ``importance_distribution``: scored events of the last 7 days per tenth of importance.

Every view has ``user_id`` first; :class:`Analytics` reads one tenant's rows (or, with
``user_id=None``, every tenant's, for an operator).

Example:
    >>> from langchain_agentmem import SessionLog, connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> log = SessionLog(engine, "s1", user_id="acme", agent_name="ops")
    >>> _ = log.log("decision", "restart the cache", importance=0.9)
    >>> _ = log.end("completed")
    >>> row = Analytics(engine, user_id="acme").view("agent_performance_summary")[0]
    >>> row["agent_name"], row["sessions"], row["completion_rate"], row["avg_importance"]
    ('ops', 1, 1.0, 0.9)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ._core.plan import Atomic, Plan, dual
from ._encoding.keys import decode_key, encode_key
from .dialects import SQL, Body, Composable, Dialect, Ident, Stmt, Table
from .engine import EngineLike, as_engine

__all__ = ["VIEWS", "Analytics"]

#: Each view and its columns (``user_id`` first), in the order ``agentmem stats`` prints.
VIEWS: dict[str, tuple[str, ...]] = {
    "agent_performance_summary": (
        "user_id",
        "agent_name",
        "sessions",
        "active",
        "completed",
        "failed",
        "abandoned",
        "completion_rate",
        "events",
        "avg_importance",
        "last_activity_at",
    ),
    "skill_usage_summary": (
        "user_id",
        "skill_name",
        "version",
        "category",
        "is_active",
        "bound_agents",
        "active_bindings",
    ),
    "important_events_recent": (
        "user_id",
        "session_id",
        "seq",
        "agent_name",
        "event_type",
        "role",
        "content",
        "importance",
        "tags",
        "created_at",
    ),
    "agent_activity_hourly": ("user_id", "agent_name", "hour", "events", "sessions"),
    "importance_distribution": ("user_id", "bucket", "events"),
}

_ORDER = {
    "agent_performance_summary": "user_id, agent_name",
    "skill_usage_summary": "user_id, skill_name",
    "important_events_recent": "created_at DESC, user_id, session_id, seq",
    "agent_activity_hourly": "hour DESC, user_id, agent_name",
    "importance_distribution": "user_id, bucket",
}
_TIMES = {"last_activity_at", "created_at", "hour"}
_BOOLS = {"is_active"}
_INTS = {"sessions", "active", "completed", "failed", "abandoned", "events", "seq"}
_INTS |= {"bound_agents", "active_bindings"}
_FLOATS = {"completion_rate", "avg_importance", "importance", "bucket"}


def view_query(view: str, uid: str | None, limit: int | None) -> tuple[Composable, list[Any]]:
    """The statement reading ``view`` (one tenant's rows, or all when ``uid`` is None)."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}: expected one of {', '.join(VIEWS)}")
    params: list[Any] = []
    scope = SQL("")
    if uid is not None:
        scope = _BY_USER
        params.append(uid)
    bound = SQL("")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int or None, got {limit!r}")
        bound = _LIMIT
        params.append(limit)
    query = _VIEW.format(
        cols=_COMMA.join(Ident(c) for c in VIEWS[view]),
        view=Table(view),
        scope=scope,
        order=SQL(_ORDER[view]),
        limit=bound,
    )
    return query, params


_COMMA = SQL(", ")
_BY_USER = SQL(" WHERE user_id = ?")
_LIMIT = SQL(" LIMIT ?")
_VIEW = SQL("SELECT {cols} FROM {view}{scope} ORDER BY {order}{limit}")


def _converter(dialect: Dialect, column: str) -> Callable[[Any], Any] | None:
    """The Python form of a non-NULL value of ``column`` (times, booleans, numbers, keys);
    ``None``: the value as the driver gives it."""
    if column in _TIMES:
        return dialect.to_datetime
    if column in _BOOLS:
        return bool
    if column in _INTS:
        return int
    if column in _FLOATS:
        return float
    if column in ("user_id", "session_id"):
        return decode_key
    return None


def _rows(
    dialect: Dialect, view: str, query: Composable, params: list[Any]
) -> Body[list[dict[str, Any]]]:
    rows = yield Stmt(query, params, fetch=True)
    cols = VIEWS[view]
    # Only the columns whose values need it are converted (a view of thousands of rows
    # spent most of its client time converting values that were already right).
    plan = [(i, f) for i, c in enumerate(cols) if (f := _converter(dialect, c)) is not None]
    plan = [(i, f) for i, f in plan if _needs(rows, i, f)]
    if not plan:
        return [dict(zip(cols, r, strict=True)) for r in rows]
    out = []
    for r in rows:
        values = list(r)
        for i, f in plan:
            v = values[i]
            if v is not None:
                values[i] = f(v)
        out.append(dict(zip(cols, values, strict=True)))
    return out


def _needs(rows: Sequence[Sequence[Any]], i: int, f: Callable[[Any], Any]) -> bool:
    """Whether ``f`` would change some value of column ``i``: a key with an escape, a value
    not yet of the converter's type (``to_datetime``: a ``datetime``)."""
    if f is decode_key:
        return any(r[i] is not None and "\\" in r[i] for r in rows)
    kind = f if isinstance(f, type) else datetime
    return any(type(r[i]) is not kind and r[i] is not None for r in rows)


class Analytics:
    """Reads of the analytics views.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        user_id: the tenant whose rows are read; ``None``: every tenant's (an operator's
            view of the whole database).
    """

    def __init__(self, engine: EngineLike, *, user_id: str | None = "default") -> None:
        self.engine = as_engine(engine)
        self.user_id = user_id
        self._uid = None if user_id is None else encode_key(user_id)

    def __repr__(self) -> str:
        return f"Analytics(user_id={self.user_id!r})"

    @dual
    def view(self, name: str, *, limit: int | None = None) -> Plan[list[dict[str, Any]]]:
        """The rows of view ``name`` (one of :data:`VIEWS`) as dicts, in the view's
        natural order (see the module docstring); at most ``limit``."""
        query, params = view_query(name, self._uid, limit)
        return (yield Atomic(_rows(self.engine.dialect, name, query, params), readonly=True))

    aview = view.async_

    @dual
    def report(self, *, limit: int | None = None) -> Plan[dict[str, list[dict[str, Any]]]]:
        """Every view's rows, by view name, read in one transaction."""
        dialect = self.engine.dialect

        def body() -> Body[dict[str, list[dict[str, Any]]]]:
            out = {}
            for name in VIEWS:
                query, params = view_query(name, self._uid, limit)
                out[name] = yield from _rows(dialect, name, query, params)
            return out

        return (yield Atomic(body(), readonly=True))

    areport = report.async_
