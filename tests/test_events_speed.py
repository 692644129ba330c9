"""Migration 0015 (issue 14, speed): the views it rewrites return exactly what 0012's
definitions return, on both backends, over a workload whose importances sit on every
edge of the distribution's buckets (float32 neighbours of j/10 and of j/10 - 5e-7) and
whose events fall inside and outside each window; the filtered reads the new indexes
serve keep their order."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from test_store import HashedEmbeddings

from langchain_agentmem import Engine, Event, EventLog, SessionLog, SkillRegistry

SQL = Path(__file__).resolve().parents[1] / "sql"
REWRITTEN = ("agent_activity_hourly", "importance_distribution")


def _released(dialect: str, view: str) -> str:
    """The SELECT of ``view`` as 0012 released it, its tables as templates."""
    text = (SQL / dialect / "0012_skills_events.sql").read_text("utf-8")
    found = re.search(rf"CREATE VIEW {view}\b[^\n]*? AS\n(.*?);\n", text, re.S)
    assert found is not None, view
    body = re.sub(r"--[^\n]*", "", found.group(1))
    return re.sub(r"\b(FROM|JOIN) (events|sessions)\b", r"\1 {\2}", body)


def _edges() -> list[float]:
    """Importances on both sides of every bucket edge (as float32 values)."""
    out: list[float] = [0.0, 1.0]
    for j in range(1, 11):
        for centre in (j / 10, j / 10 - 5e-7, j / 10 - 5e-8):
            v = np.float32(min(centre, 1.0))
            for _ in range(3):
                v = np.nextafter(v, np.float32(0))
            for _ in range(7):
                if 0 <= v <= 1:
                    out.append(float(v))
                v = np.nextafter(v, np.float32(2))
    return out


def _workload(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    ages = [timedelta(minutes=m) for m in (5, 70, 130, 23 * 60, 25 * 60, 3 * 1440, 8 * 1440)]
    values: list[float | None] = [*_edges(), None]
    agents = ["ops", "fin", None]
    for s in range(6):
        user = "acme" if s < 5 else "other"
        log = SessionLog(engine, f"s{s}", user_id=user, agent_name=agents[s % 3])
        log.log_many(
            [
                {"event_type": ("tool_call", "decision")[i % 2], "importance": v, "tags": ["t"]}
                for i, v in enumerate(values[s::3])
            ]
        )
        with engine.transaction(user) as tx:
            rows = tx.fetchall(
                "SELECT seq FROM {events} WHERE user_id = ? AND session_id = ?", [user, f"s{s}"]
            )
            for (seq,) in rows:
                when = now - ages[(seq * 5 + s) % len(ages)]
                tx.execute(
                    "UPDATE {events} SET created_at = ? WHERE user_id = ? AND session_id = ? "
                    "AND seq = ?",
                    [engine.dialect.from_datetime(when), user, f"s{s}", seq],
                )


def test_rewritten_views_return_what_the_released_ones_do(engine: Engine) -> None:
    _workload(engine)
    with engine.transaction(None, readonly=True) as tx:
        for view in REWRITTEN:
            now = sorted(tx.fetchall("SELECT * FROM {" + view + "}"), key=repr)  # noqa: S608 (constant)
            then = sorted(tx.fetchall(_released(engine.dialect.name, view)), key=repr)
            assert now == then, view
            assert len(now) > 3, view
    with engine.transaction(None, readonly=True) as tx:
        buckets = tx.fetchall("SELECT DISTINCT bucket FROM {importance_distribution}")
    assert len(buckets) == 11  # every tenth is reached by the edges


def test_filtered_reads_keep_their_order(engine: Engine) -> None:
    _workload(engine)
    log = EventLog(engine, user_id="acme")
    for kw in (
        {},
        {"event_type": "decision"},
        {"event_type": "tool_call", "tags": ["t"], "min_importance": 0.3},
        {"min_importance": 0.8},
    ):
        newest = log.events(limit=1000, **kw)  # type: ignore[arg-type]
        oldest = log.events(limit=1000, newest_first=False, **kw)  # type: ignore[arg-type]
        keys = [(e.created_at, e.session_id, e.seq) for e in newest]
        assert keys == sorted(keys, reverse=True) and len(keys) > 3
        assert [(e.session_id, e.seq) for e in oldest] == [(e.session_id, e.seq) for e in newest][
            ::-1
        ]
        if "min_importance" in kw:
            assert all(
                e.importance is not None and e.importance >= kw["min_importance"] for e in newest
            )  # type: ignore[operator]


WORDS = "disk pool cache deploy rollback queue latency error timeout shard replica lock".split()


def _embedded(engine: Engine, emb: HashedEmbeddings) -> None:
    for s in range(3):
        SessionLog(engine, f"e{s}", user_id="acme", embeddings=emb).log_many(
            [
                {
                    "event_type": ("observation", "decision")[i % 2],
                    "content": " ".join(WORDS[(i * k + s) % len(WORDS)] for k in (1, 3, 5))
                    + f" w{s}x{i}",  # no two alike: no ties to order
                    "importance": round((i % 10) / 10, 1),
                    "tags": ["even" if i % 2 == 0 else "odd"],
                }
                for i in range(40)
            ]
        )
    SessionLog(engine, "x", user_id="intruder", embeddings=emb).log("observation", "disk pool")


def _ranked(events: list[Event]) -> list[tuple[float, tuple[str, int]]]:
    """(score, key) best first, ties by key (the index orders ties as it finds them)."""
    out = [(round(e.score or 0.0, 6), (e.session_id, e.seq)) for e in events]
    return sorted(out, key=lambda r: (-r[0], r[1]))


def test_event_search_through_the_hnsw_index_finds_what_exact_search_does(engine: Engine) -> None:
    emb = HashedEmbeddings(16)
    _embedded(engine, emb)
    exact = EventLog(engine, user_id="acme", embeddings=emb)
    # A scope of more than one row goes through the index (where there is one).
    indexed = EventLog(
        engine,
        user_id="acme",
        embeddings=emb,
        search={"exact_search_threshold": 1, "hnsw_min_share": 0.0},
    )
    built = indexed.create_index(16)
    assert built is engine.dialect.supports_ann
    assert indexed.create_index(16) is built  # exists already: no error, same answer
    if built:
        with engine.transaction(None, readonly=True) as tx:
            row = tx.fetchone(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'events_d16_hnsw' "
                "AND schemaname = ?",
                [engine.dialect.schema],
            )
        assert row is not None and "hnsw" in row[0] and "vector_dims(embedding) = 16" in row[0]
    for query, kw in (
        ("disk pool latency", {}),
        ("deploy rollback", {"event_type": "decision"}),
        ("queue timeout", {"tags": ["even"], "min_importance": 0.3}),
    ):
        want = _ranked(exact.search(query, k=5, **kw))  # type: ignore[arg-type]
        got = _ranked(indexed.search(query, k=5, **kw))  # type: ignore[arg-type]
        # The same scores; the same events but where a tie at the 5th score leaves a choice.
        assert [s for s, _ in got] == [s for s, _ in want] and len(want) == 5
        assert [i for s, i in got if s != got[-1][0]] == [i for s, i in want if s != want[-1][0]]
        assert all(e.session_id != "x" for e in indexed.search(query, k=200, **kw))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dims must be a positive int"):
        indexed.create_index(0)


async def test_create_index_async_and_skills(aengine: Engine) -> None:
    emb = HashedEmbeddings(8)
    log = SessionLog(aengine, "a", user_id="u", embeddings=emb)
    await log.alog("observation", "disk pool")
    assert await log.acreate_index(8) is aengine.dialect.supports_ann
    assert [e.content for e in await log.asearch("disk", k=1)] == ["disk pool"]
    reg = SkillRegistry(aengine, user_id="u", embeddings=emb)
    spec = {"name": "deploy", "description": "d", "inputSchema": {"type": "object"}}
    await reg.aregister("deploy", description="deploy a service", spec=spec)
    assert await reg.acreate_index(8) is aengine.dialect.supports_ann
    assert reg.create_index(8) is aengine.dialect.supports_ann
    [(skill, score)] = await reg.asearch("deploy", k=1)
    assert skill.name == "deploy" and score > 0.5
