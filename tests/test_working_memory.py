"""WorkingMemory on both backends, sync and async: goal, context, thoughts and related
episodes of a session; writes refresh the expiry; expired sessions are never active;
clean-up in batches; concurrent appends lose nothing; bad input changes nothing."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from langchain_agentmem import Engine, WorkingMemory

PAST = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _set_times(engine: Engine, user_id: str, **columns: datetime) -> None:
    """Move timestamps of a user's sessions (no sleeping to make time pass)."""
    sets = ", ".join(f"{name} = ?" for name in columns)
    values = [engine.dialect.from_datetime(v) for v in columns.values()]
    with engine.transaction(user_id) as tx:
        tx.execute(
            "UPDATE {working_memory} SET " + sets + " WHERE user_id = ?",  # noqa: S608 (test)
            [*values, user_id],
        )


def _expire_all(engine: Engine, user_id: str = "alice") -> None:
    _set_times(engine, user_id, expires_at=PAST)


def _count(engine: Engine, table: str, where: str = "1 = 1") -> int:
    with engine.transaction(readonly=True) as tx:
        row = tx.fetchone("SELECT count(*) FROM {" + table + "} WHERE " + where)  # noqa: S608 (test)
    assert row is not None
    return int(row[0])


def test_a_session_holds_goal_context_thoughts_and_episodes(engine: Engine) -> None:
    wm = WorkingMemory(engine, user_id="alice", session_id="s1")
    assert wm.is_active() is False and wm.get() is None
    assert wm.get_goal() is None and wm.get_context() == {} and wm.get_thoughts() == []
    assert wm.get_related_episodes() == []

    wm.set_goal("plan the sprint")
    assert wm.is_active() is True and wm.get_goal() == "plan the sprint"
    wm.set_context({"team": ["ana", "bo"], "points": 21})
    assert wm.update_context({"points": 34, "risk": None}) == {
        "team": ["ana", "bo"],
        "points": 34,
        "risk": None,
    }
    assert wm.add_thought("velocity was 30 last time") == 1
    assert wm.add_thoughts(["bo is away on Friday", "keep 10% slack"]) == [2, 3]
    assert wm.add_thoughts([]) == []
    assert wm.add_related_episodes(["ep-1", "ep-2", "ep-1"]) == ["ep-1", "ep-2"]
    assert wm.add_related_episodes(["ep-2", "ep-3"]) == ["ep-1", "ep-2", "ep-3"]

    state = wm.get()
    assert state is not None
    assert state.session_id == "s1" and state.goal == "plan the sprint"
    assert state.context == {"team": ["ana", "bo"], "points": 34, "risk": None}
    assert [(t.seq, t.text) for t in state.thoughts] == [
        (1, "velocity was 30 last time"),
        (2, "bo is away on Friday"),
        (3, "keep 10% slack"),
    ]
    assert state.related_episodes == ["ep-1", "ep-2", "ep-3"]
    assert state.created_at <= state.last_updated < state.expires_at
    assert all(t.created_at.tzinfo is not None for t in state.thoughts)
    assert [t.text for t in wm.get_thoughts(last=2)] == ["bo is away on Friday", "keep 10% slack"]
    assert wm.get_thoughts(last=0) == []

    wm.set_goal(None)
    assert wm.get_goal() is None and wm.is_active() is True
    wm.set_context({})
    assert wm.get_context() == {} and len(wm.get_thoughts()) == 3  # thoughts stay


async def test_async_session(aengine: Engine) -> None:
    wm = WorkingMemory(aengine, user_id="alice", session_id="s1")
    assert await wm.ais_active() is False and await wm.aget() is None
    await wm.aset_goal("answer the ticket")
    await wm.aset_context({"ticket": 42})
    assert await wm.aupdate_context({"priority": "high"}) == {"ticket": 42, "priority": "high"}
    assert await wm.aadd_thought("check the logs") == 1
    assert await wm.aadd_thoughts(["found a timeout"]) == [2]
    assert await wm.aadd_related_episodes(["ep-9"]) == ["ep-9"]
    assert await wm.aget_goal() == "answer the ticket"
    assert await wm.aget_context() == {"ticket": 42, "priority": "high"}
    assert [t.text for t in await wm.aget_thoughts()] == ["check the logs", "found a timeout"]
    assert await wm.aget_related_episodes() == ["ep-9"]
    state = await wm.aget()
    assert state is not None and state.goal == "answer the ticket" and len(state.thoughts) == 2
    expires = await wm.atouch()
    assert expires >= state.expires_at
    assert await wm.aend() is True and await wm.aend() is False
    assert await wm.ais_active() is False
    assert await wm.aclear() is True and await wm.aclear() is False


def test_any_text_round_trips(engine: Engine) -> None:
    odd = "nul \x00, lone \ud800, emoji 😀, back\\slash, 100%_"
    wm = WorkingMemory(engine, user_id="u\x00\ud800", session_id=odd)
    wm.set_goal(odd)
    wm.set_context({odd: [odd, {"\x00": odd}]})
    wm.add_thought(odd)
    wm.add_related_episodes([odd])
    state = wm.get()
    assert state is not None and state.session_id == odd and state.goal == odd
    assert state.context == {odd: [odd, {"\x00": odd}]}
    assert [t.text for t in state.thoughts] == [odd] and state.related_episodes == [odd]


def test_every_write_refreshes_last_updated_and_expires_at(engine: Engine) -> None:
    wm = WorkingMemory(engine, user_id="alice", session_id="s1", ttl=timedelta(hours=1))
    writes: list[Any] = [
        lambda: wm.set_goal("g"),
        lambda: wm.set_context({"a": 1}),
        lambda: wm.update_context({"b": 2}),
        lambda: wm.add_thought("t"),
        lambda: wm.add_thoughts(["t2", "t3"]),
        lambda: wm.add_related_episodes(["e"]),
        wm.touch,
    ]
    wm.touch()
    for write in writes:
        soon = datetime.now(timezone.utc) + timedelta(minutes=1)
        _set_times(engine, "alice", last_updated=PAST, expires_at=soon)
        write()
        state = wm.get()
        assert state is not None
        assert state.last_updated > PAST
        # ttl after the write's own time (the database's clock), not the minute left before.
        assert state.expires_at - state.last_updated == timedelta(hours=1)
    state = wm.get()
    assert state is not None and state.goal == "g" and state.context == {"a": 1, "b": 2}
    assert [t.text for t in state.thoughts] == ["t", "t2", "t3"]  # refreshing kept everything


def test_expired_sessions_are_never_active_and_restart_on_write(engine: Engine) -> None:
    wm = WorkingMemory(engine, user_id="alice", session_id="s1")
    other = WorkingMemory(engine, user_id="alice", session_id="s2")
    wm.set_goal("old goal")
    wm.set_context({"old": True})
    wm.add_thoughts(["one", "two"])
    wm.add_related_episodes(["ep-old"])
    other.set_goal("gone")
    _set_times(engine, "alice", expires_at=PAST)
    other.set_goal("still here")  # a write to an expired session: a fresh context
    # Expired, not cleaned up yet: nothing of it is returned.
    assert wm.is_active() is False and wm.get() is None and wm.get_goal() is None
    assert wm.get_context() == {} and wm.get_thoughts() == [] and wm.get_related_episodes() == []
    assert wm.end() is False
    assert other.get_goal() == "still here"
    assert other.get_thoughts() == [] and other.get_context() == {}
    assert _count(engine, "working_memory_thoughts") == 2  # still stored

    assert wm.add_thought("fresh start") == 1  # the next write starts a new context
    state = wm.get()
    assert state is not None and state.goal is None and state.context == {}
    assert state.related_episodes == [] and [t.text for t in state.thoughts] == ["fresh start"]
    assert _count(engine, "working_memory_thoughts") == 1


def test_ended_sessions_restart_on_write(engine: Engine) -> None:
    wm = WorkingMemory(engine, user_id="alice", session_id="s1")
    wm.set_goal("g")
    wm.add_thought("t")
    assert wm.end() is True and wm.is_active() is False and wm.get_thoughts() == []
    wm.update_context({"k": 1})
    assert wm.get_goal() is None and wm.get_context() == {"k": 1} and wm.get_thoughts() == []


def test_users_with_the_same_session_id_are_separate(engine: Engine) -> None:
    alice = WorkingMemory(engine, user_id="alice", session_id="shared")
    bob = WorkingMemory(engine, user_id="bob", session_id="shared")
    alice.set_goal("alice's")
    alice.add_thought("a")
    assert bob.get() is None and bob.add_thought("b") == 1
    assert alice.get_goal() == "alice's" and [t.text for t in alice.get_thoughts()] == ["a"]
    assert bob.clear() is True and alice.is_active() is True


def test_cleanup_expired_deactivates_then_deletes_in_batches(engine: Engine) -> None:
    for i in range(5):
        wm = WorkingMemory(engine, user_id="alice", session_id=f"old{i}")
        wm.add_thoughts(["a", "b"])
    _expire_all(engine, "alice")
    live = WorkingMemory(engine, user_id="alice", session_id="live")
    live.add_thought("keep me")
    bobs = WorkingMemory(engine, user_id="bob", session_id="old")
    bobs.add_thought("bob's")
    _expire_all(engine, "bob")

    assert live.cleanup_expired(batch_size=2) == 5
    assert live.cleanup_expired() == 0  # already inactive
    assert _count(engine, "working_memory", "is_active") == 2  # live, and bob's (other user)
    assert _count(engine, "working_memory_thoughts") == 12  # deactivated, not deleted

    live.end()  # ended sessions go with delete=True too
    assert live.cleanup_expired(delete=True, batch_size=4) == 6
    assert _count(engine, "working_memory") == 1  # bob's, untouched
    assert _count(engine, "working_memory_thoughts") == 1  # the deleted sessions' thoughts went


async def test_async_cleanup_expired(aengine: Engine) -> None:
    wm = WorkingMemory(aengine, user_id="alice", session_id="s")
    await wm.aadd_thought("x")
    assert await wm.acleanup_expired() == 0
    _expire_all(aengine)
    assert await wm.acleanup_expired(delete=True, batch_size=1) == 1
    assert _count(aengine, "working_memory") == 0


def test_concurrent_appends_from_threads_lose_nothing(engine: Engine) -> None:
    wm = WorkingMemory(engine, user_id="alice", session_id="busy")
    start = threading.Barrier(16)

    def work(i: int) -> list[int]:
        start.wait()
        seqs = [wm.add_thought(f"t{i}-{j}") for j in range(6)]
        seqs += wm.add_thoughts([f"t{i}-batch-a", f"t{i}-batch-b"])
        wm.update_context({f"worker{i}": i})
        wm.add_related_episodes([f"ep-{i}", "ep-shared"])
        return seqs

    with ThreadPoolExecutor(16) as pool:
        seqs = [s for part in pool.map(work, range(16)) for s in part]
    assert sorted(seqs) == list(range(1, 16 * 8 + 1))
    thoughts = wm.get_thoughts()
    assert [t.seq for t in thoughts] == list(range(1, 16 * 8 + 1))
    expected = {f"t{i}-{j}" for i in range(16) for j in range(6)}
    expected |= {f"t{i}-batch-{x}" for i in range(16) for x in "ab"}
    assert {t.text for t in thoughts} == expected
    assert wm.get_context() == {f"worker{i}": i for i in range(16)}
    assert sorted(wm.get_related_episodes()) == sorted(
        [f"ep-{i}" for i in range(16)] + ["ep-shared"]
    )


async def test_concurrent_appends_from_coroutines_lose_nothing(aengine: Engine) -> None:
    wm = WorkingMemory(aengine, user_id="alice", session_id="busy")
    seqs = await asyncio.gather(*(wm.aadd_thought(f"t{i}") for i in range(64)))
    assert sorted(seqs) == list(range(1, 65))
    thoughts = await wm.aget_thoughts()
    assert {t.text for t in thoughts} == {f"t{i}" for i in range(64)}
    assert {t.seq: t.text for t in thoughts} == {s: f"t{i}" for i, s in enumerate(seqs)}
    merged = await asyncio.gather(*(wm.aupdate_context({f"k{i}": i}) for i in range(16)))
    assert max(len(m) for m in merged) == 16
    assert await wm.aget_context() == {f"k{i}": i for i in range(16)}


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda wm: wm.set_goal(42), TypeError, "goal must be a str, got int: 42"),
        (lambda wm: wm.set_context(["a"]), TypeError, "context must be a dict, got list"),
        (lambda wm: wm.set_context({"x": float("nan")}), ValueError, "JSON has no NaN"),
        (lambda wm: wm.update_context({1: "a"}), TypeError, "has the key 1 of type int"),
        (lambda wm: wm.update_context({"t": (1,)}), TypeError, "is a tuple"),
        (lambda wm: wm.add_thought(None), TypeError, "thought must be a str, got NoneType"),
        (lambda wm: wm.add_thoughts("abc"), TypeError, "thoughts must be a list of str"),
        (lambda wm: wm.add_thoughts(["ok", 3]), TypeError, "each of thoughts must be a str"),
        (lambda wm: wm.add_related_episodes("ep-1"), TypeError, "episode_ids must be a list"),
        (lambda wm: wm.get_thoughts(last=-1), ValueError, "last must be at least 0"),
        (lambda wm: wm.get_thoughts(last="2"), TypeError, "last must be an int or None"),
        (lambda wm: wm.cleanup_expired(batch_size=0), ValueError, "batch_size must be at least 1"),
        (lambda wm: wm.cleanup_expired(delete="yes"), TypeError, "delete must be a bool"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    engine: Engine, call: Any, error: type[Exception], message: str
) -> None:
    wm = WorkingMemory(engine, user_id="alice", session_id="s1")
    wm.set_goal("g")
    wm.set_context({"a": 1})
    wm.add_thought("t")
    before = wm.get()
    with pytest.raises(error, match=message):
        call(wm)
    after = wm.get()
    assert after is not None and before is not None
    assert (after.goal, after.context, after.thoughts, after.related_episodes) == (
        before.goal,
        before.context,
        before.thoughts,
        before.related_episodes,
    )
    assert after.last_updated == before.last_updated  # not even touched


async def test_async_bad_input_is_refused(aengine: Engine) -> None:
    wm = WorkingMemory(aengine, user_id="alice", session_id="s1")
    with pytest.raises(ValueError, match="JSON has no NaN"):
        await wm.aupdate_context({"x": float("inf")})
    with pytest.raises(TypeError, match="thought must be a str"):
        await wm.aadd_thought(b"bytes")  # type: ignore[arg-type]
    assert await wm.ais_active() is False  # nothing was created


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ttl": timedelta(seconds=-5)}, ValueError, "ttl must be a positive timedelta"),
        ({"ttl": timedelta(0)}, ValueError, "ttl must be a positive timedelta"),
        ({"ttl": 3600}, TypeError, "ttl must be a timedelta, got int: 3600"),
        ({"ttl": None}, TypeError, "ttl must be a timedelta, got NoneType"),
        ({"session_id": 7}, TypeError, "session_id must be a str, got int: 7"),
        ({"user_id": None}, TypeError, "user_id must be a str"),
    ],
)
def test_bad_constructor_arguments(
    engine: Engine, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    args: dict[str, Any] = {"user_id": "alice", "session_id": "s1", **kwargs}
    with pytest.raises(error, match=message):
        WorkingMemory(engine, **args)


def test_repr(engine: Engine) -> None:
    wm = WorkingMemory(engine, user_id="alice", session_id="s1", ttl=timedelta(minutes=5))
    assert repr(wm) == (
        "WorkingMemory(user_id='alice', session_id='s1', ttl=datetime.timedelta(seconds=300))"
    )


def test_every_method_has_an_async_form_with_the_same_parameters(engine: Engine) -> None:
    # tests/test_api_parity.py looks at class attributes, where a `dual` method is not a
    # function; bound methods are.
    import inspect

    from langchain_agentmem import KeyValueStore

    for obj in (
        WorkingMemory(engine, user_id="u", session_id="s"),
        KeyValueStore(engine, "n", user_id="u"),
    ):
        names = [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n))]
        pairs = [n for n in names if "a" + n in names]
        assert len(pairs) == len(names) // 2 >= 12, (type(obj), names)
        for name in pairs:
            sync, async_ = getattr(obj, name), getattr(obj, "a" + name)
            assert not inspect.iscoroutinefunction(sync), name
            assert inspect.iscoroutinefunction(async_), name
            assert inspect.signature(sync) == inspect.signature(async_), name
            assert sync.__doc__ and async_.__doc__ == f"Async form of :meth:`{name}`."
