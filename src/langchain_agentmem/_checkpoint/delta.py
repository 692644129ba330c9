"""The history LangGraph's ``DeltaChannel`` is rebuilt from, read a page of ancestors at
a time.

A ``DeltaChannel`` stores a snapshot of its value every few updates and nothing in
between; reading a checkpoint without one walks up the parent chain, collecting the
channel's pending writes, to the nearest ancestor that stores a value (the seed).
LangGraph's generic walk reads and decodes every ancestor whole, one statement each;
:func:`delta_walk_steps` reads a page of ancestors per statement (:data:`FIRST_PAGE`,
then four times more up to :data:`PAGE`: a recursive walk of the parent ids, one
primary-key lookup per step) and then the writes of the channels asked for, from the
ancestors the walk needs. ``CheckpointSaver`` reads the seeds' blobs after it
(``checkpoint.delta_history_steps``).

Example:
    >>> from langchain_agentmem import connect
    >>> from langchain_agentmem._core.plan import execute
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> with engine.transaction("u", readonly=True) as tx:
    ...     execute(tx, delta_walk_steps(engine.dialect, "u", "t", "", "none", ["log"]))
    {'log': ([], None)}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..dialects import SQL, Composable, Dialect
from ..dialects.compose import marks
from ..dialects.statements import Body, Stmt

__all__ = ["FIRST_PAGE", "PAGE", "chain_query", "delta_walk_steps", "writes_query"]

#: Ancestors read by the first statement of a walk, and by each later one at most: a
#: walk usually ends within a few dozen ancestors (at the last snapshot), so the pages
#: start small and grow fourfold.
FIRST_PAGE = 32
PAGE = 200

#: A write as read: (task_path, task_id, idx, type, blob).
WriteRow = tuple[str, str, int, str, Any]


def chain_query(
    dialect: Dialect,
    uid: str,
    tid: str,
    ns: str,
    start_id: str,
    channels: Sequence[str],
    depth: int,
) -> tuple[Composable, list[Any]]:
    """Up to ``depth`` ancestors of checkpoint ``start_id`` (its parent is depth 1).

    Rows are ``(kind, depth, checkpoint_id, a, b, c)``: kind 0 an ancestor (a = its
    parent id), kind 2 one of ``channels`` in its channel versions (a = channel, b = the
    type of the stored blob, NULL when none, c = the version). Every step of the walk is a primary-key lookup
    (correlated subqueries), whatever the planner believes about the table's size.
    """
    query = _CHAIN.format(
        lookup=_LOOKUP,
        entries=SQL(dialect.json_entries("ch.cp", "channel_versions", "j")),
        marks=marks(len(channels)),
    )
    s = [uid, tid, ns]
    return query, [*s, *s, start_id, *s, *s, depth, *s, *channels]


def writes_query(
    uid: str, tid: str, ns: str, checkpoint_ids: Sequence[str], channels: Sequence[str]
) -> tuple[Composable, list[Any]]:
    """The writes of ``checkpoint_ids`` to ``channels``: ``(checkpoint_id, channel, type,
    task_path, task_id, idx, blob)``."""
    return (
        _WRITES.format(ids=marks(len(checkpoint_ids)), channels=marks(len(channels))),
        [uid, tid, ns, *checkpoint_ids, *channels],
    )


_LOOKUP = SQL(
    "FROM {checkpoints} c WHERE c.user_id = ? AND c.thread_id = ? AND c.checkpoint_ns = ? "
    "AND c.checkpoint_id = ch.parent"
)
_CHAIN = SQL(
    "WITH RECURSIVE chain(cid, parent, cp, depth) AS ("
    "SELECT c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint, 1 FROM {checkpoints} c "
    "WHERE c.user_id = ? AND c.thread_id = ? AND c.checkpoint_ns = ? AND c.checkpoint_id = "
    "(SELECT s.parent_checkpoint_id FROM {checkpoints} s WHERE s.user_id = ? AND s.thread_id = ? "
    "AND s.checkpoint_ns = ? AND s.checkpoint_id = ?) "
    "UNION ALL SELECT ch.parent, (SELECT c.parent_checkpoint_id {lookup}), "
    "(SELECT c.checkpoint {lookup}), ch.depth + 1 FROM chain ch "
    "WHERE ch.parent IS NOT NULL AND ch.depth < ?) "
    # Typed columns first: the NULLs of the other part take their types on Postgres.
    "SELECT 2, ch.depth, ch.cid, j.key, (SELECT b.type FROM {checkpoint_blobs} b WHERE b.user_id = ? "
    "AND b.thread_id = ? AND b.checkpoint_ns = ? AND b.channel = j.key AND b.version = CAST(j.value AS TEXT)), "
    "CAST(j.value AS TEXT) "
    "FROM chain ch, {entries} WHERE ch.cp IS NOT NULL AND j.key IN ({marks}) "
    "UNION ALL SELECT 0, ch.depth, ch.cid, ch.parent, NULL, NULL FROM chain ch WHERE ch.cp IS NOT NULL"
)
_WRITES = SQL(
    "SELECT checkpoint_id, channel, type, task_path, task_id, idx, blob FROM {checkpoint_writes} "
    "WHERE user_id = ? AND thread_id = ? AND checkpoint_ns = ? "
    "AND checkpoint_id IN ({ids}) AND channel IN ({channels})"
)


def delta_walk_steps(
    dialect: Dialect,
    uid: str,
    tid: str,
    ns: str,
    checkpoint_id: str | None,
    channels: Sequence[str],
) -> Body[Any]:
    """Walk up from checkpoint ``checkpoint_id`` (else the namespace's latest) as
    LangGraph's ``BaseCheckpointSaver.get_delta_channel_history`` does.

    Returns ``{channel: (writes, seed)}``: the channel's writes oldest first (each
    ancestor's in ``get_tuple``'s order), from the ancestors below the target down to
    and including the seed, the nearest ancestor whose channel holds a value (its
    ``(checkpoint_id, version, blob type)``; ``None`` when there is none).
    """
    if checkpoint_id is None:
        rows = yield Stmt(
            "SELECT checkpoint_id FROM {checkpoints} WHERE user_id = ? AND thread_id = ? AND checkpoint_ns = ? "
            "ORDER BY checkpoint_id DESC LIMIT 1",
            [uid, tid, ns],
            True,
        )
        checkpoint_id = rows[0][0] if rows else None
    groups: dict[str, list[tuple[str, str]]] = {
        ch: [] for ch in channels
    }  # (ancestor, channel), nearest first
    seeds: dict[str, tuple[str, str, str] | None] = {ch: None for ch in channels}
    found: dict[tuple[str, str], list[WriteRow]] = {}
    remaining = set(channels)
    start, size = checkpoint_id, min(FIRST_PAGE, PAGE)
    while start is not None and remaining:
        rows = yield Stmt(*chain_query(dialect, uid, tid, ns, start, channels, size), True)
        parents: dict[int, tuple[str, str | None]] = {}
        stored: dict[tuple[int, str], tuple[str, str]] = {}
        for kind, depth, cid, a, b, c in rows:
            if kind == 0:
                parents[depth] = (cid, a)
            elif b is not None and b != "empty":
                stored[(depth, a)] = (c, b)
        needed: list[str] = []
        for depth in sorted(parents):
            cid = parents[depth][0]
            if remaining:
                needed.append(cid)
            for ch in sorted(remaining):
                groups[ch].append((cid, ch))
                if (depth, ch) in stored:
                    seeds[ch] = (cid, *stored[(depth, ch)])
                    remaining.discard(ch)
        if needed:
            for cid, ch, type_, path, task, idx, blob in (
                yield Stmt(*writes_query(uid, tid, ns, needed, channels), True)
            ):
                found.setdefault((cid, ch), []).append((path or "", task, int(idx), type_, blob))
        start = parents[size][0] if len(parents) == size and parents[size][1] else None
        size = min(size * 4, PAGE)
    out = {}
    for ch in channels:
        writes: list[WriteRow] = []
        for key in reversed(groups[ch]):
            writes += sorted(found.get(key, ()), key=lambda w: (w[0], w[1], w[2]))
        out[ch] = (writes, seeds[ch])
    return out
