"""Retention: delete what has aged out, in short batches (``agentmem retention``).

A :class:`RetentionPolicy` names the rules; :meth:`Retention.apply` runs them for every
tenant, each batch (``batch_size`` rows, with the rows that belong to them) in its own
short transaction, so no table stays locked for more than a moment. ``dry_run`` counts
what would go and deletes nothing.

Rules (the defaults):

* ``sessions``: sessions whose ``status`` is completed, failed or abandoned and whose
  ``ended_at`` is more than 90 days ago, with their events. Applies where the ``sessions``
  table has those columns (a later migration adds them); reported as skipped otherwise.
* ``events``: events older than 30 days with an importance under 0.3 (events with no
  importance are kept).
* ``sync_log``: failed rows of ``memory_sync_log`` older than 7 days, where that table
  exists (hybrid mode adds it); skipped otherwise.
* ``checkpoints``: checkpoints older than 30 days, each thread keeping its newest
  (the checkpointer's own ``prune_before``).
* ``working_memory``: expired and ended working-memory sessions, thoughts included (the
  same clean-up as ``agentmem prune --working-memory --delete``).

Example:
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> Retention(engine).apply(dry_run=True)["events"]
    0
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypedDict

from ._core.catalog import TABLES, Table
from ._core.plan import Atomic, Plan, dual
from ._encoding.keys import encode_key
from .checkpoint import prune_before_steps, users_query
from .dialects import SQL, Body, Composable, Composed, Dialect, Ident, One, Stmt
from .dialects import Table as Relation
from .engine import EngineLike, as_engine
from .working_memory import cleanup_plan, users_to_clean_plan

__all__ = ["DEFAULT_RETENTION", "Retention", "RetentionPolicy"]


class RetentionPolicy(TypedDict, total=False):
    """Which rows age out; a rule set to ``None`` is not applied."""

    sessions_ended_before: timedelta | None
    """Sessions ended longer ago than this (default 90 days) ..."""
    session_statuses: Sequence[str]
    """... with one of these statuses (default completed, failed, abandoned)."""
    events_older_than: timedelta | None
    """Events older than this (default 30 days) ..."""
    events_importance_below: float
    """... with an importance under this (default 0.3)."""
    failed_sync_older_than: timedelta | None
    """Failed sync-log rows older than this (default 7 days)."""
    checkpoints_older_than: timedelta | None
    """Checkpoints older than this (default 30 days); each thread keeps its newest."""
    working_memory: bool
    """Delete expired and ended working-memory sessions (default true)."""
    batch_size: int
    """Rows per transaction (default 1000)."""


DEFAULT_RETENTION: RetentionPolicy = {
    "sessions_ended_before": timedelta(days=90),
    "session_statuses": ("completed", "failed", "abandoned"),
    "events_older_than": timedelta(days=30),
    "events_importance_below": 0.3,
    "failed_sync_older_than": timedelta(days=7),
    "checkpoints_older_than": timedelta(days=30),
    "working_memory": True,
    "batch_size": 1000,
}

#: The sync log of hybrid mode (not in every schema yet).
SYNC_LOG = "memory_sync_log"


def _columns(dialect: Dialect, name: str) -> Body[set[str] | None]:
    present = {row[0] for row in (yield dialect.tables())}
    if name not in present:
        return None
    rows = yield dialect.columns(name)
    return {str(r[0]) for r in rows}


def _children(name: str) -> list[Table]:
    """Tables whose rows belong to ``name``'s, deepest first."""
    out: list[Table] = []
    for t in TABLES.values():
        if t.parent == name:
            out = _children(t.name) + [t] + out
    return out


_COMMA = SQL(", ")


def _key_in(cols: Sequence[str], n: int) -> Composed:
    one = SQL("(") + _COMMA.join(SQL("?") for _ in cols) + SQL(")")
    return SQL("({names}) IN (VALUES {rows})").format(
        names=_COMMA.join(Ident(c) for c in cols), rows=_COMMA.join(one for _ in range(n))
    )


_TENANT = SQL("user_id = ? AND ")


def _delete_batch(
    dialect: Dialect, table: Table, cond: Composable, params: list[Any], uid: str, size: int
) -> Body[int]:
    # A shared table (no tenant column, e.g. the sync log) is aged as a whole.
    scoped = table.tenant_column is not None
    tenant, first = (_TENANT, [uid]) if scoped else (SQL(""), [])
    keys = [k for k in table.primary_key if k != "user_id"]
    quoted = _COMMA.join(Ident(k) for k in keys)
    rows = yield Stmt(
        SQL("SELECT {keys} FROM {table} WHERE {tenant}{cond} ORDER BY {keys} LIMIT ?").format(
            keys=quoted, table=Relation(table.name), tenant=tenant, cond=cond
        ),
        [*first, *params, size],
        fetch=True,
    )
    if not rows:
        return 0
    flat = [v for r in rows for v in r]
    key_in = _key_in(keys, len(rows))
    for child in [*_children(table.name), table]:  # the children's rows go with the parent's
        yield Stmt(
            SQL("DELETE FROM {table} WHERE {tenant}{key_in}").format(
                table=Relation(child.name), tenant=tenant, key_in=key_in
            ),
            [*first, *flat],
        )
    return len(rows)


def _rule_plan(
    dialect: Dialect,
    table: Table,
    needs: set[str],
    cond: Composable,
    params: list[Any],
    size: int,
    dry_run: bool,
) -> Plan[int | None]:
    columns = yield Atomic(_columns(dialect, table.name), readonly=True, user_id=None)
    if columns is None or not needs <= columns:
        return None
    scoped = table.tenant_column is not None
    relation = Relation(table.name)
    users_sql = SQL("SELECT DISTINCT user_id FROM {table} WHERE {cond} ORDER BY 1").format(
        table=relation, cond=cond
    )
    count_sql = SQL("SELECT count(*) FROM {table} WHERE {tenant}{cond}").format(
        table=relation, tenant=_TENANT if scoped else SQL(""), cond=cond
    )
    users: list[tuple[Any, ...]] = [(None,)]
    if scoped:
        (users,) = yield Atomic(
            _stmts([Stmt(users_sql, params, fetch=True)]),
            readonly=True,
            user_id=None,
        )
    total = 0
    for (uid,) in users:
        if dry_run:
            row = yield Atomic(
                _one(One(count_sql, [uid, *params] if scoped else params)),
                readonly=True,
                user_id=uid,
            )
            total += int(row[0])
            continue
        while True:
            n = yield Atomic(_delete_batch(dialect, table, cond, params, uid, size), user_id=uid)
            total += n
            if n < size:
                break
    return total  # fmt: skip


def _stmts(ops: list[Stmt]) -> Body[list[Any]]:
    out = []
    for op in ops:
        out.append((yield op))
    return out


def _one(op: One) -> Body[Any]:
    return (yield op)


class Retention:
    """Apply a :class:`RetentionPolicy` (merged over :data:`DEFAULT_RETENTION`) to every
    tenant of ``engine``."""

    def __init__(self, engine: EngineLike, policy: RetentionPolicy | None = None) -> None:
        unknown = set(policy or {}) - set(RetentionPolicy.__annotations__)
        if unknown:
            raise TypeError(f"unknown retention setting(s): {', '.join(sorted(unknown))}")
        self.engine = as_engine(engine)
        self.policy: RetentionPolicy = {**DEFAULT_RETENTION, **(policy or {})}  # type: ignore[typeddict-item]
        size = self.policy["batch_size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"batch_size must be a positive int, got {size!r}")

    @dual
    def apply(self, *, dry_run: bool = False) -> Plan[dict[str, int | None]]:
        """Delete (with ``dry_run``: count) what the policy ages out; rows per rule,
        ``None`` for a rule skipped because its table or columns are not in this schema
        (or the rule is off)."""
        dialect = self.engine.dialect
        p = self.policy
        size = p["batch_size"]
        now = datetime.now(timezone.utc)
        out: dict[str, int | None] = {}

        def at(age: timedelta) -> Any:
            return dialect.from_datetime(now - age)

        ended = p.get("sessions_ended_before")
        out["sessions"] = None
        if ended is not None:
            statuses = list(p["session_statuses"])
            cond = SQL("status IN ({}) AND ended_at < ?").format(
                _COMMA.join(SQL("?") for _ in statuses)
            )
            out["sessions"] = yield from _rule_plan(
                dialect, TABLES["sessions"], {"status", "ended_at"}, cond, [*statuses, at(ended)], size, dry_run
            )  # fmt: skip
        old = p.get("events_older_than")
        out["events"] = None
        if old is not None:
            out["events"] = yield from _rule_plan(
                dialect, TABLES["events"], {"importance", "created_at"},
                SQL("created_at < ? AND importance < ?"), [at(old), p["events_importance_below"]], size, dry_run,
            )  # fmt: skip
        failed = p.get("failed_sync_older_than")
        out["sync_log"] = None
        if failed is not None:
            table = TABLES.get(SYNC_LOG) or Table(SYNC_LOG, ("user_id", "id"))
            time = table.time_column or "created_at"  # memory_sync_log: started_at
            out["sync_log"] = yield from _rule_plan(
                dialect, table, {"status", time}, SQL("status = ? AND {} < ?").format(Ident(time)),
                ["failed", at(failed)], size, dry_run,
            )  # fmt: skip
        ckpt = p.get("checkpoints_older_than")
        out["checkpoints"] = None
        if ckpt is not None:
            out["checkpoints"] = yield from self._checkpoints(now - ckpt, dry_run)
        out["working_memory"] = None
        if p.get("working_memory"):
            out["working_memory"] = yield from self._working_memory(size, dry_run)
        return out

    aapply = apply.async_

    def _checkpoints(self, cutoff: datetime, dry_run: bool) -> Plan[int]:
        dialect = self.engine.dialect
        (rows,) = yield Atomic(_stmts([Stmt(*users_query(), True)]), readonly=True, user_id=None)
        total = 0
        for (uid,) in rows:
            if dry_run:
                row = yield Atomic(
                    _one(
                        One(
                            "SELECT count(*) FROM {checkpoints} c WHERE c.user_id = ? AND c.created_at < ? "
                            "AND EXISTS (SELECT 1 FROM {checkpoints} n WHERE n.user_id = c.user_id "
                            "AND n.thread_id = c.thread_id AND n.checkpoint_ns = c.checkpoint_ns "
                            "AND n.checkpoint_id > c.checkpoint_id)",
                            [uid, dialect.from_datetime(cutoff)],
                        )
                    ),
                    readonly=True,
                    user_id=uid,
                )
                total += int(row[0])
            else:
                total += int(
                    (yield Atomic(prune_before_steps(dialect, uid, cutoff, True), user_id=uid))
                )
        return total

    def _working_memory(self, size: int, dry_run: bool) -> Plan[int]:
        users = yield from users_to_clean_plan(True)
        total = 0
        for user in users:
            uid = encode_key(user)
            if dry_run:
                row = yield Atomic(
                    _one(
                        One(
                            "SELECT count(*) FROM {working_memory} WHERE user_id = ? AND "
                            "(NOT is_active OR expires_at <= {now})",
                            [uid],
                        )
                    ),
                    readonly=True,
                    user_id=uid,
                )
                total += int(row[0])
            else:
                total += yield from cleanup_plan(uid, True, size)
        return total
