"""The history LangGraph's ``DeltaChannel`` is rebuilt from, read a page of ancestors at
a time.

A ``DeltaChannel`` stores a snapshot of its value every few updates and nothing in
between; reading a checkpoint without one walks up the parent chain, collecting the
channel's pending writes, to the nearest ancestor that stores a value (the seed).
LangGraph's generic walk reads and decodes every ancestor whole, one statement each;
:func:`delta_walk_steps` reads up to :data:`PAGE` ancestors per statement (a recursive
walk of the parent ids), and only their versions and writes of the channels asked for.

Example:
    >>> from langchain_agentmem import connect
    >>> from langchain_agentmem._steps import run
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> with engine.transaction("u", readonly=True) as tx:
    ...     run(tx, delta_walk_steps(engine.dialect, "u", "t", "", "none", ["log"]))
    {'log': ([], None)}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._steps import Steps
from .dialects import Dialect

__all__ = ["PAGE", "delta_walk_query", "delta_walk_steps"]

#: Ancestors read per statement.
PAGE = 200

#: A write as read: (task_path, task_id, idx, type, blob).
WriteRow = tuple[str, str, int, str, Any]


def delta_walk_query(
    dialect: Dialect, uid: str, tid: str, ns: str, start_id: str, channels: Sequence[str], depth: int
) -> tuple[str, list[Any]]:
    """Up to ``depth`` ancestors of checkpoint ``start_id`` (its parent is depth 1).

    Rows are ``(kind, depth, checkpoint_id, a, b, c, d, e, blob)``: kind 0 an ancestor
    (a = its parent id), kind 1 one of its writes to ``channels`` (a = channel, b = type,
    c = task path, d = task id, e = index), kind 2 one of ``channels`` in its channel
    versions (a = channel, b = the type of the stored blob, NULL when none).
    """
    marks = ", ".join("?" for _ in channels)
    entries = dialect.json_entries("c.checkpoint", "channel_versions", "j")
    ancestor = (
        "JOIN {checkpoints} c ON c.user_id = ? AND c.thread_id = ? AND c.checkpoint_ns = ? AND c.checkpoint_id = ch.cid"
    )
    query = (
        "WITH RECURSIVE chain(cid, depth) AS (SELECT c.parent_checkpoint_id, 1 FROM {checkpoints} c "  # noqa: S608 (fixed fragments; values are parameters)
        "WHERE c.user_id = ? AND c.thread_id = ? AND c.checkpoint_ns = ? AND c.checkpoint_id = ? "
        "UNION ALL SELECT c.parent_checkpoint_id, ch.depth + 1 FROM chain ch " + ancestor + " WHERE ch.depth < ?) "
        # The writes come first: every column of theirs has a type, which the NULLs of
        # the other parts take on Postgres.
        "SELECT 1, ch.depth, ch.cid, w.channel, w.type, w.task_path, w.task_id, w.idx, w.blob "
        "FROM chain ch JOIN {checkpoint_writes} w ON w.user_id = ? AND w.thread_id = ? AND w.checkpoint_ns = ? "
        "AND w.checkpoint_id = ch.cid AND w.channel IN (" + marks + ") "
        "UNION ALL SELECT 0, ch.depth, ch.cid, c.parent_checkpoint_id, NULL, NULL, NULL, NULL, NULL "
        "FROM chain ch " + ancestor + " "
        "UNION ALL SELECT 2, ch.depth, ch.cid, j.key, (SELECT b.type FROM {checkpoint_blobs} b WHERE b.user_id = ? "
        "AND b.thread_id = ? AND b.checkpoint_ns = ? AND b.channel = j.key AND b.version = CAST(j.value AS TEXT)), "
        "NULL, NULL, NULL, NULL FROM chain ch " + ancestor + ", " + entries + " WHERE j.key IN (" + marks + ")"
    )
    s = [uid, tid, ns]
    return query, [*s, start_id, *s, depth, *s, *channels, *s, *s, *s, *channels]


def delta_walk_steps(
    dialect: Dialect, uid: str, tid: str, ns: str, checkpoint_id: str | None, channels: Sequence[str]
) -> Steps:
    """Walk up from checkpoint ``checkpoint_id`` (else the namespace's latest) as
    LangGraph's ``BaseCheckpointSaver.get_delta_channel_history`` does.

    Returns ``{channel: (writes, seed)}``: the channel's writes oldest first (each
    ancestor's in ``get_tuple``'s order), from the ancestors below the target down to
    and including the seed, the nearest ancestor whose channel holds a value (its id;
    ``None`` when there is none).
    """
    if checkpoint_id is None:
        rows = yield (
            "SELECT checkpoint_id FROM {checkpoints} WHERE user_id = ? AND thread_id = ? AND checkpoint_ns = ? "
            "ORDER BY checkpoint_id DESC LIMIT 1",
            [uid, tid, ns],
            True,
        )
        checkpoint_id = rows[0][0] if rows else None
    groups: dict[str, list[list[WriteRow]]] = {ch: [] for ch in channels}  # nearest ancestor first
    seeds: dict[str, str | None] = {ch: None for ch in channels}
    remaining = set(channels)
    start = checkpoint_id
    while start is not None and remaining:
        rows = yield (*delta_walk_query(dialect, uid, tid, ns, start, channels, PAGE), True)
        parents: dict[int, tuple[str, str | None]] = {}
        writes: dict[tuple[int, str], list[WriteRow]] = {}
        stored: set[tuple[int, str]] = set()
        for kind, depth, cid, a, b, c, d, e, blob in rows:
            if kind == 0:
                parents[depth] = (cid, a)
            elif kind == 1:
                writes.setdefault((depth, a), []).append((c or "", d, int(e), b, blob))
            elif b is not None and b != "empty":
                stored.add((depth, a))
        for depth in sorted(parents):
            for ch in sorted(remaining):
                found = writes.get((depth, ch), [])
                groups[ch].append(sorted(found, key=lambda w: (w[0], w[1], w[2])))
                if (depth, ch) in stored:
                    seeds[ch] = parents[depth][0]
                    remaining.discard(ch)
        start = parents[PAGE][0] if len(parents) == PAGE and parents[PAGE][1] else None
    return {ch: ([w for group in reversed(groups[ch]) for w in group], seeds[ch]) for ch in channels}
