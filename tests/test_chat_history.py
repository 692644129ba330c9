"""ChatMessageHistory on both backends, sync and async; on Postgres also through the
application role with row-level security on (``postgres_rls``)."""

from __future__ import annotations

import asyncio
import json
import math
import threading

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    messages_from_dict,
)

from langchain_agentmem import ChatMessageHistory, Engine
from langchain_agentmem.chat_history import message_json

from conftest import BACKENDS_WITH_RLS


@pytest.fixture(params=BACKENDS_WITH_RLS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


ODD_TEXT = "nul\x00 byte, emoji 😀, RTL עברית, combining e\u0301, lone \ud800 surrogate, \u2028 sep, \\ back\\slash, 'quote' \"dq\" %s ?"


def every_kind_of_message() -> list[BaseMessage]:
    return [
        SystemMessage("You are terse.", id="sys-1"),
        HumanMessage(
            content=[
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
            name="alice",
            id="h-1",
        ),
        AIMessage(
            content="",
            tool_calls=[
                {
                    "name": "lookup",
                    "args": {"q": ODD_TEXT, "n": 3},
                    "id": "call_1",
                    "type": "tool_call",
                }
            ],
            additional_kwargs={"refusal": None, "nested": {"a": [1, 2.5, None, True]}},
            response_metadata={"model_name": "gpt-x", "finish_reason": "tool_calls"},
            usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
            id="ai-1",
        ),
        ToolMessage(
            content=ODD_TEXT,
            tool_call_id="call_1",
            name="lookup",
            artifact={"rows": [1, 2]},
            status="success",
        ),
        AIMessage(content="Done. " + ODD_TEXT, name="bot", id="ai-2"),
        ChatMessage(content="custom role", role="critic"),
        FunctionMessage(content="legacy", name="fn"),
        AIMessageChunk(content="chunk", id="chunk-1"),
    ]


def test_every_message_type_round_trips(engine: Engine) -> None:
    history = ChatMessageHistory(engine, "round-trip", user_id="alice")
    messages = every_kind_of_message()
    history.add_messages(messages)
    assert history.messages == messages
    assert [type(m) for m in history.messages] == [type(m) for m in messages]


async def test_every_message_type_round_trips_async(aengine: Engine) -> None:
    history = ChatMessageHistory(aengine, "round-trip", user_id="alice")
    messages = every_kind_of_message()
    await history.aadd_messages(messages)
    assert await history.aget_messages() == messages


def _construct(message: BaseMessage) -> BaseMessage:
    """What reading a message built before the fast path (``model_construct`` on the
    stored data), for comparison."""
    return message_from_json_via_model_construct(message_json(message))


def message_from_json_via_model_construct(payload: str) -> BaseMessage:
    data = json.loads(payload)
    cls = type(messages_from_dict([data])[0])
    return (
        cls.model_construct(**data["data"])
        if data["type"] != "AIMessageChunk"
        else cls(**data["data"])
    )


def _state(message: BaseMessage) -> tuple[object, ...]:
    return (
        type(message),
        list(message.__dict__.items()),
        message.__pydantic_fields_set__,
        message.__pydantic_extra__,
        message.__pydantic_private__,
    )


def test_messages_read_are_built_exactly_as_model_construct_builds_them(engine: Engine) -> None:
    history = ChatMessageHistory(engine, "exact")
    messages = every_kind_of_message()
    history.add_messages(messages)
    read, again = history.messages, history.get_messages()
    assert [_state(m) for m in read] == [_state(_construct(m)) for m in messages]
    read[2].tool_calls[0]["args"]["n"] = 4  # a read message is its own object
    read[0].additional_kwargs["k"] = "v"
    assert [_state(m) for m in again] == [_state(_construct(m)) for m in messages]
    assert history.messages == messages


async def test_messages_read_are_built_exactly_as_model_construct_builds_them_async(
    aengine: Engine,
) -> None:
    history = ChatMessageHistory(aengine, "exact")
    messages = every_kind_of_message()
    await history.aadd_messages(messages)
    read = await history.aget_messages()
    assert [_state(m) for m in read] == [_state(_construct(m)) for m in messages]
    assert [_state(m) for m in await history.aget_messages(limit=3)] == [
        _state(_construct(m)) for m in messages[-3:]
    ]


def test_payloads_with_fields_missing_or_reordered_still_read(engine: Engine) -> None:
    """Payloads written by another LangChain version (a field fewer, another order)."""
    history = ChatMessageHistory(engine, "old", user_id="u")
    history.add_messages([HumanMessage("first")])
    older = {"type": "ai", "data": {"type": "ai", "content": "old", "id": "x"}}
    with engine.transaction("u") as tx:
        tx.execute(
            "INSERT INTO {events} (user_id, session_id, seq, role, kind, content, payload) "
            "VALUES (?, ?, 2, 'ai', 'message', 'old', ?)",
            ["u", "old", json.dumps(older)],
        )
    first, second = history.messages
    assert first == HumanMessage("first")
    assert second == AIMessage("old", id="x")
    assert _state(second) == _state(AIMessage.model_construct(**older["data"]))


def test_ten_megabyte_message(engine: Engine) -> None:
    big = ("x" * 1023 + "\x00") * 10 * 1024
    history = ChatMessageHistory(engine, "big")
    history.add_messages([HumanMessage(big)])
    (back,) = history.messages
    assert back.content == big


@pytest.mark.parametrize(
    "session_id",
    [
        "",
        " ",
        "a/b?c=d&e#f",
        "50%_off\\",
        "\x00",
        "nul\x00in the middle",
        "\ud800",
        "😀" * 100,
        "x" * 510,  # keys are at most 512 bytes (issue 11); the test appends a "\\" (2 bytes)
        "'; DROP TABLE events; --",
    ],
)
def test_any_string_is_a_session_id(engine: Engine, session_id: str) -> None:
    history = ChatMessageHistory(engine, session_id, user_id="u\x00\\")
    history.add_messages([HumanMessage("hi")])
    assert [
        m.content for m in ChatMessageHistory(engine, session_id, user_id="u\x00\\").messages
    ] == ["hi"]
    assert [s.session_id for s in ChatMessageHistory.list_sessions(engine, "u\x00\\")] == [
        session_id
    ]
    # A session whose stored form differs only by escaping is another session.
    assert ChatMessageHistory(engine, session_id + "\\", user_id="u\x00\\").messages == []


def test_last_k_messages_in_order(engine: Engine) -> None:
    history = ChatMessageHistory(engine, "long")
    history.add_messages([HumanMessage(str(i)) for i in range(50)])
    assert [m.content for m in history.get_messages(limit=3)] == ["47", "48", "49"]
    assert [m.content for m in history.get_messages(limit=100)] == [str(i) for i in range(50)]
    assert history.get_messages(limit=0) == []
    with pytest.raises(ValueError, match="limit must be a non-negative int"):
        history.get_messages(limit=-1)


async def test_last_k_messages_async(aengine: Engine) -> None:
    history = ChatMessageHistory(aengine, "long")
    await history.aadd_messages([HumanMessage(str(i)) for i in range(10)])
    assert [m.content for m in await history.aget_messages(limit=2)] == ["8", "9"]


def test_last_k_uses_the_primary_key_index(engine: Engine) -> None:
    """The last-k query reads backwards along (user_id, session_id, seq), not the session."""
    from langchain_agentmem.chat_history import read_query

    query, params = read_query("u", "s", 20)
    with engine.transaction(readonly=True) as tx:
        if engine.dialect.name == "postgres":
            tx.execute("SET enable_seqscan = off")  # tiny table: ask what the index can do
            plan = "\n".join(r[0] for r in tx.fetchall("EXPLAIN " + query, params))
            tx.execute("RESET enable_seqscan")
            assert "Index Scan Backward using events_pkey" in plan
            assert "Sort" not in plan
        else:
            plan = " ".join(str(r[-1]) for r in tx.fetchall("EXPLAIN QUERY PLAN " + query, params))
            assert "USING PRIMARY KEY" in plan or "USING INDEX" in plan
            assert "TEMP B-TREE" not in plan


def test_users_are_isolated(engine: Engine) -> None:
    alice = ChatMessageHistory(engine, "shared-id", user_id="alice")
    bob = ChatMessageHistory(engine, "shared-id", user_id="bob")
    alice.add_messages([HumanMessage("alice's secret")])
    bob.add_messages([HumanMessage("bob's note")])
    assert [m.content for m in alice.messages] == ["alice's secret"]
    assert [m.content for m in bob.messages] == ["bob's note"]
    bob.clear()
    assert bob.messages == []
    assert [m.content for m in alice.messages] == ["alice's secret"]
    assert [s.session_id for s in ChatMessageHistory.list_sessions(engine, "bob")] == []
    assert [s.session_id for s in ChatMessageHistory.list_sessions(engine, "alice")] == [
        "shared-id"
    ]


async def test_clear_async_and_reuse(aengine: Engine) -> None:
    history = ChatMessageHistory(aengine, "s", user_id="carol")
    await history.aadd_messages([HumanMessage("one")])
    await history.aclear()
    assert await history.aget_messages() == []
    await history.aadd_messages([HumanMessage("two")])
    assert [m.content for m in await history.aget_messages()] == ["two"]


def test_sessions_record_user_agent_and_activity(engine: Engine) -> None:
    ChatMessageHistory(engine, "first", user_id="dave", agent_name="planner").add_messages(
        [HumanMessage("a")]
    )
    ChatMessageHistory(engine, "second", user_id="dave").add_messages(
        [HumanMessage("b"), AIMessage("c")]
    )
    sessions = ChatMessageHistory.list_sessions(engine, "dave")
    assert sorted(s.session_id for s in sessions) == ["first", "second"]
    assert sessions[0].last_activity_at >= sessions[1].last_activity_at  # most recent first
    first, second = sorted(sessions, key=lambda s: s.session_id)
    assert first.agent_name == "planner" and second.agent_name is None
    assert second.last_seq == 2 and second.user_id == "dave"
    assert first.created_at is not None and first.created_at <= second.last_activity_at
    assert first.last_activity_at.tzinfo is not None
    assert len(ChatMessageHistory.list_sessions(engine, "dave", limit=1)) == 1


async def test_alist_sessions(aengine: Engine) -> None:
    await ChatMessageHistory(aengine, "x", user_id="erin").aadd_messages([HumanMessage("a")])
    assert [s.session_id for s in await ChatMessageHistory.alist_sessions(aengine, "erin")] == ["x"]


def test_bad_input_is_rejected_and_loses_nothing(engine: Engine) -> None:
    history = ChatMessageHistory(engine, "strict")
    history.add_messages([HumanMessage("kept")])
    with pytest.raises(TypeError, match="expected LangChain messages"):
        history.add_messages([HumanMessage("not stored"), "plain string"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="expected a str key"):
        ChatMessageHistory(engine, 42)  # type: ignore[arg-type]
    assert [m.content for m in history.messages] == ["kept"]
    history.add_messages([])
    assert len(history.messages) == 1


def _check_batches(messages: list[BaseMessage], writers: int, per_batch: int) -> None:
    contents = [m.content for m in messages]
    assert len(contents) == writers * per_batch  # nothing lost
    assert len(set(contents)) == len(contents)  # nothing duplicated
    for start in range(0, len(contents), per_batch):  # each batch contiguous and in order
        batch = contents[start : start + per_batch]
        writer = batch[0].split(":")[0]
        assert batch == [f"{writer}:{i}" for i in range(per_batch)]


def test_64_threads_write_one_session(engine: Engine) -> None:
    writers, per_batch = 64, 5
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            history = ChatMessageHistory(engine, "busy", user_id="team")
            barrier.wait()
            history.add_messages([HumanMessage(f"w{n}:{i}") for i in range(per_batch)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    _check_batches(ChatMessageHistory(engine, "busy", user_id="team").messages, writers, per_batch)
    (session,) = ChatMessageHistory.list_sessions(engine, "team")
    assert session.last_seq == writers * per_batch


async def test_64_tasks_write_one_session(aengine: Engine) -> None:
    writers, per_batch = 64, 5
    history = ChatMessageHistory(aengine, "busy", user_id="team")
    await asyncio.gather(
        *(
            history.aadd_messages([HumanMessage(f"t{n}:{i}") for i in range(per_batch)])
            for n in range(writers)
        )
    )
    _check_batches(await history.aget_messages(), writers, per_batch)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
async def test_non_finite_numbers_in_a_message_are_refused_and_nothing_is_written(
    engine: Engine, value: float
) -> None:
    history = ChatMessageHistory(engine, "nan", user_id="u")
    bad = AIMessage("x", additional_kwargs={"logprob": value})
    with pytest.raises(ValueError, match=r"additional_kwargs\['logprob'\]"):
        history.add_messages([HumanMessage("kept?"), bad])
    with pytest.raises(ValueError, match="tool_calls"):
        await history.aadd_messages(
            [AIMessage("", tool_calls=[{"name": "f", "args": {"x": value}, "id": "1"}])]
        )
    assert history.messages == []
