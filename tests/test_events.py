"""SessionLog / EventLog and the analytics views on both backends, sync and async: sessions
with a source, status and end; events with type, importance, tags and embeddings; filtered
and semantic reads; chat history unchanged on the same tables; bad input refused; another
tenant sees nothing; `agentmem stats`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from langchain_core.messages import AIMessage, HumanMessage
from test_store import HashedEmbeddings

from langchain_agentmem import (
    Analytics,
    ChatMessageHistory,
    Engine,
    EventLog,
    SessionLog,
    SkillRegistry,
)
from langchain_agentmem.cli import main

NOW = datetime.now(timezone.utc)


def _age(engine: Engine, user_id: str, session_id: str, seq: int, when: datetime) -> None:
    """Move one event back in time (no sleeping to make time pass)."""
    with engine.transaction(user_id) as tx:
        tx.execute(
            "UPDATE {events} SET created_at = ? WHERE user_id = ? AND session_id = ? AND seq = ?",
            [engine.dialect.from_datetime(when), user_id, session_id, seq],
        )


def test_session_lifecycle_and_events(engine: Engine) -> None:
    log = SessionLog(engine, "run-1", user_id="acme", agent_name="ops", source="slack")
    assert log.info() is None
    started = log.start(metadata={"ticket": "OPS-1", "n": 2})
    assert (started.status, started.source, started.agent_name) == ("active", "slack", "ops")
    assert started.metadata == {"ticket": "OPS-1", "n": 2} and started.ended_at is None
    call = log.log(
        "tool_call", "kubectl get pods", data={"args": ["-n", "web"]}, importance=0.2, tags=["k8s"]
    )
    assert call.seq == 1
    batch = log.log_many(
        [
            {"event_type": "tool_result", "content": "3 pods", "role": "tool", "tags": ["k8s"]},
            {"event_type": "observation", "content": "one pod restarting", "importance": 0.7},
            {
                "event_type": "decision",
                "content": "roll back\x00 now",
                "importance": 1,
                "tags": ["k8s", "incident"],
            },
        ]
    )
    assert [e.seq for e in batch] == [2, 3, 4]
    ended = log.end("failed")
    assert ended.status == "failed" and ended.ended_at is not None and ended.events == 4
    assert ended.avg_importance == pytest.approx((0.2 + 0.7 + 1.0) / 3)
    events = log.events(newest_first=False)
    assert [(e.seq, e.event_type) for e in events] == [
        (1, "tool_call"),
        (2, "tool_result"),
        (3, "observation"),
        (4, "decision"),
    ]
    assert events[0].data == {"args": ["-n", "web"]} and events[0].tags == ["k8s"]
    assert events[3].content == "roll back\x00 now"  # exact, NUL included
    assert events[1].role == "tool" and events[1].importance is None
    # Re-opening makes it active again; metadata stays when not given.
    again = log.start()
    assert (
        again.status == "active" and again.ended_at is None and again.metadata["ticket"] == "OPS-1"
    )
    sessions = EventLog(engine, user_id="acme").sessions(status="active", agent_name="ops")
    assert [s.session_id for s in sessions] == ["run-1"]


def test_filtered_reads(engine: Engine) -> None:
    log = SessionLog(engine, "s", user_id="u", agent_name="a")
    log.log_many(
        [
            {"event_type": "tool_call", "content": "one", "importance": 0.1, "tags": ["x"]},
            {"event_type": "tool_call", "content": "two", "importance": 0.8, "tags": ["x", "y"]},
            {"event_type": "decision", "content": "three", "importance": 0.95, "tags": ["y"]},
            {"event_type": "observation", "content": "four"},
        ]
    )
    other = SessionLog(engine, "s2", user_id="u")
    other.log("tool_call", "five", importance=0.99, tags=["x", "y"])
    _age(engine, "u", "s", 1, NOW - timedelta(days=3))
    users = EventLog(engine, user_id="u")

    def contents(**kw: object) -> list[str]:
        return sorted(e.content for e in users.events(**kw))  # type: ignore[arg-type]

    assert contents(event_type="tool_call") == ["five", "one", "two"]
    assert contents(event_type=["decision", "observation"]) == ["four", "three"]
    assert contents(tags=["x", "y"]) == ["five", "two"]
    assert contents(tags=["y"], min_importance=0.95) == ["five", "three"]
    assert contents(min_importance=0.8) == ["five", "three", "two"]  # float32 on both backends
    assert [e.importance for e in users.events(min_importance=0.8)] == [0.99, 0.95, 0.8]
    assert contents(event_type="tool_call", tags=["x"], min_importance=0.5) == ["five", "two"]
    assert contents(since=NOW - timedelta(days=1), event_type="tool_call") == ["five", "two"]
    assert contents(until=NOW - timedelta(days=1)) == ["one"]
    assert [e.content for e in log.events(tags=["x"])] == [
        "two",
        "one",
    ]  # this session, newest first
    assert len(users.events(limit=2)) == 2


def test_chat_history_keeps_working_on_the_same_session(engine: Engine) -> None:
    history = ChatMessageHistory(engine, "chat", user_id="u", agent_name="bot")
    history.add_messages([HumanMessage("hi"), AIMessage("hello")])
    log = SessionLog(engine, "chat", user_id="u")
    log.log("tool_call", "lookup", importance=0.5)
    history.add_messages([AIMessage("done")])
    assert [m.content for m in history.messages] == ["hi", "hello", "done"]
    events = log.events(newest_first=False)
    assert [(e.seq, e.event_type) for e in events] == [
        (1, "message"),
        (2, "message"),
        (3, "tool_call"),
        (4, "message"),
    ]
    assert events[0].content == "hi" and events[0].data["type"] == "human"
    assert history.end_session("completed") is True
    info = log.info()
    assert info is not None and info.status == "completed" and info.agent_name == "bot"
    assert ChatMessageHistory(engine, "nope", user_id="u").end_session() is False
    history.clear()
    assert log.events() == [] and log.info() is None


def test_semantic_search_over_a_users_events(engine: Engine) -> None:
    emb = HashedEmbeddings(64)
    log = SessionLog(engine, "s1", user_id="u", embeddings=emb)
    log.log("observation", "the database connection pool is exhausted", importance=0.8, tags=["db"])
    log.log("observation", "the frontend bundle is too large", importance=0.3)
    log.log(
        "decision", "raise the connection pool size of the database", importance=0.9, tags=["db"]
    )
    log.log("tool_call", "no embedding here", embed=False)
    SessionLog(engine, "s2", user_id="u", embeddings=emb).log(
        "observation", "database backups ran fine"
    )
    SessionLog(engine, "s3", user_id="intruder", embeddings=emb).log(
        "observation", "database connection pool"
    )
    users = EventLog(engine, user_id="u", embeddings=emb)
    hits = users.search("database connection pool", k=3)
    assert [h.content for h in hits][:2] == [
        "the database connection pool is exhausted",
        "raise the connection pool size of the database",
    ]
    assert all(h.score is not None for h in hits) and hits[0].score >= hits[1].score  # type: ignore[operator]
    assert {h.session_id for h in users.search("database", k=10)} == {"s1", "s2"}
    assert [h.event_type for h in users.search("database pool", k=5, event_type="decision")] == [
        "decision"
    ]
    assert [h.content for h in log.search("database", k=5, min_importance=0.85)] == [
        "raise the connection pool size of the database"
    ]
    with pytest.raises(ValueError, match="needs embeddings"):
        EventLog(engine, user_id="u").search("x")


def test_bad_input_is_refused_and_writes_nothing(engine: Engine) -> None:
    log = SessionLog(engine, "s", user_id="u")
    with pytest.raises(ValueError, match="tag .* NUL"):
        log.log("observation", "x", tags=["ok", "bad\x00tag"])
    with pytest.raises(ValueError, match="lone surrogate"):
        log.log("observation", "x", tags=["\ud800"])
    with pytest.raises(TypeError, match="tags must be a list"):
        log.log("observation", "x", tags="k8s")
    with pytest.raises(ValueError, match="importance must be from 0 to 1"):
        log.log("observation", "x", importance=1.5)
    with pytest.raises(TypeError, match="importance must be a number"):
        log.log("observation", "x", importance="high")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chat history's"):
        log.log("message", "x")
    with pytest.raises(ValueError, match="event type .* NUL"):
        log.log("bad\x00type", "x")
    with pytest.raises(ValueError, match="unknown keys"):
        log.log_many([{"event_type": "observation", "contents": "typo"}])
    with pytest.raises(ValueError, match="nan"):
        log.log_many(
            [{"event_type": "observation"}, {"event_type": "decision", "data": float("nan")}]
        )
    with pytest.raises(ValueError, match="status must be one of"):
        log.end("done")
    with pytest.raises(LookupError, match="no session"):
        log.end("completed")
    with pytest.raises(ValueError, match="jsonb"):
        log.start(metadata={"k": "a\x00b"})
    with pytest.raises(ValueError, match="tag .* NUL"):
        log.events(tags=["a\x00"])
    with pytest.raises(TypeError, match="aware datetime"):
        log.events(since=datetime(2020, 1, 1))
    assert log.info() is None and EventLog(engine, user_id="u").events() == []


def test_another_tenant_sees_none_of_it(engine: Engine) -> None:
    SessionLog(engine, "s", user_id="alice", agent_name="a").log(
        "decision", "secret", importance=0.9, tags=["t"]
    )
    SessionLog(engine, "s", user_id="alice").end("completed")
    bob = EventLog(engine, user_id="bob")
    assert bob.events() == [] and bob.events(tags=["t"]) == [] and bob.sessions() == []
    assert SessionLog(engine, "s", user_id="bob").info() is None
    with pytest.raises(LookupError):
        SessionLog(engine, "s", user_id="bob").end("failed")
    report = Analytics(engine, user_id="bob").report()
    assert all(rows == [] for rows in report.values())
    assert (
        Analytics(engine, user_id="alice").view("important_events_recent")[0]["content"] == "secret"
    )


def test_views_hold_plain_text_and_the_right_figures(engine: Engine) -> None:
    reg = SkillRegistry(engine, user_id="acme")
    spec = {"name": "s", "description": "d", "inputSchema": {"type": "object"}}
    reg.register("deploy", description="d", spec={**spec, "name": "deploy"}, category="devops")
    reg.register("audit", description="d", spec={**spec, "name": "audit"}, category="finance")
    reg.bind("ops", "deploy")
    reg.bind("fin", "deploy", enabled=False)
    reg.bind("fin", "audit")
    for i, status in enumerate(["completed", "completed", "failed", None]):
        log = SessionLog(engine, f"s{i}", user_id="acme", agent_name="ops")
        log.log_many(
            [
                {
                    "event_type": "tool_call",
                    "content": f"call {i}",
                    "importance": 0.5,
                    "tags": ["a", "b"],
                },
                {"event_type": "decision", "content": f"décision «{i}»", "importance": 0.85},
            ]
        )
        if status:
            log.end(status)
    _age(engine, "acme", "s0", 2, NOW - timedelta(days=8))  # outside the recent windows
    views = Analytics(engine, user_id="acme").report()
    [perf] = views["agent_performance_summary"]
    assert (
        perf["agent_name"],
        perf["sessions"],
        perf["completed"],
        perf["failed"],
        perf["active"],
    ) == (
        "ops",
        4,
        2,
        1,
        1,
    )
    assert perf["completion_rate"] == 0.5 and perf["events"] == 8
    assert perf["avg_importance"] == pytest.approx(0.675)
    usage = {r["skill_name"]: r for r in views["skill_usage_summary"]}
    assert (usage["deploy"]["bound_agents"], usage["deploy"]["active_bindings"]) == (2, 1)
    assert usage["audit"]["category"] == "finance" and usage["audit"]["is_active"] is True
    recent = views["important_events_recent"]
    assert sorted(r["content"] for r in recent) == ["décision «1»", "décision «2»", "décision «3»"]
    assert recent[0]["event_type"] == "decision" and recent[0]["agent_name"] == "ops"
    hourly = views["agent_activity_hourly"]
    assert sum(r["events"] for r in hourly) == 7 and {r["agent_name"] for r in hourly} == {"ops"}
    assert sum(r["sessions"] for r in hourly) >= 4
    dist = {r["bucket"]: r["events"] for r in views["importance_distribution"]}
    assert dist == {0.5: 4, 0.8: 3}
    # Plain text to a plain SQL reader (no JSON quotes).
    with engine.transaction("acme", readonly=True) as tx:
        row = tx.fetchone(
            "SELECT content, tags FROM {important_events_recent} ORDER BY content LIMIT 1"
        )
        tagged = tx.fetchone(
            "SELECT count(*) FROM {events} WHERE user_id = 'acme' AND kind = 'tool_call'"
        )
    assert row == ("décision «1»", None) or row == ("décision «1»", "")
    assert tagged is not None and tagged[0] == 4


async def test_async_forms(aengine: Engine) -> None:
    emb = HashedEmbeddings(32)
    log = SessionLog(aengine, "a1", user_id="u", agent_name="bot", source="api", embeddings=emb)
    assert (await log.astart()).status == "active"
    ev = await log.alog("observation", "cache miss storm", importance=0.9, tags=["cache"])
    assert ev.seq == 1
    await log.alog_many(
        [{"event_type": "decision", "content": "warm the cache", "tags": ["cache"]}]
    )
    assert [e.content for e in await log.aevents(tags=["cache"], newest_first=False)] == [
        "cache miss storm",
        "warm the cache",
    ]
    hits = await EventLog(aengine, user_id="u", embeddings=emb).asearch("cache miss", k=1)
    assert hits[0].content == "cache miss storm"
    assert (await log.aend("abandoned")).status == "abandoned"
    assert (await log.ainfo()).status == "abandoned"  # type: ignore[union-attr]
    assert [s.status for s in await EventLog(aengine, user_id="u").asessions(source="api")] == [
        "abandoned"
    ]
    view = await Analytics(aengine, user_id="u").aview("agent_performance_summary")
    assert view[0]["abandoned"] == 1
    assert (await Analytics(aengine, user_id="u").areport())["importance_distribution"][0][
        "events"
    ] == 1
    history = ChatMessageHistory(aengine, "a1", user_id="u")
    assert await history.aend_session("completed") is True


def test_stats_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'memory.sqlite3'}"
    runner = CliRunner()
    assert runner.invoke(main, ["migrate", "--url", url]).exit_code == 0
    from langchain_agentmem import connect

    with connect(url) as engine:
        SessionLog(engine, "s", user_id="acme", agent_name="ops").log(
            "decision", "ship it", importance=0.9
        )
    out = runner.invoke(main, ["stats", "--url", url, "--user", "acme"])
    assert out.exit_code == 0, out.output
    assert (
        "== agent_performance_summary ==" in out.output
        and "== importance_distribution ==" in out.output
    )
    assert "ship it" in out.output and "ops" in out.output
    out = runner.invoke(
        main, ["stats", "--url", url, "--json", "--view", "important_events_recent"]
    )
    data = json.loads(out.output)
    assert (
        list(data) == ["important_events_recent"]
        and data["important_events_recent"][0]["content"] == "ship it"
    )
    out = runner.invoke(main, ["stats", "--url", url, "--view", "nope"])
    assert out.exit_code == 2 and "unknown view" in out.output
