"""SummaryMemory: recent messages verbatim, older ones in a running summary, on both
backends, sync and async."""

from __future__ import annotations

from typing import Any

import pytest
from _fakes import ScriptedChatModel
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_agentmem import ChatMessageHistory, Engine, SummaryMemory
from langchain_agentmem.summary import safe_cut

from cassettes import openai_cassette


def count(messages: Any) -> int:
    """One token per message: budgets in tests are message counts."""
    return len(messages)


def turn(i: int) -> list[BaseMessage]:
    return [HumanMessage(f"question {i}"), AIMessage(f"answer {i}")]


def call(*ids: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "lookup", "args": {"q": i}, "id": i} for i in ids])


def assert_tool_safe(messages: list[BaseMessage]) -> None:
    """Every tool result kept has its AI call kept before it."""
    requested: set[str] = set()
    for m in messages:
        if isinstance(m, AIMessage):
            requested.update(tc["id"] for tc in m.tool_calls)
        if isinstance(m, ToolMessage):
            assert m.tool_call_id in requested, f"orphan tool result {m.tool_call_id} in {messages}"


# -- sync ---------------------------------------------------------------------------


def test_under_budget_keeps_everything_without_a_model_call(engine: Engine) -> None:
    llm = ScriptedChatModel()
    memory = SummaryMemory(engine, llm, "s", user_id="u", max_token_limit=10, token_counter=count)
    memory.add_messages(turn(1) + turn(2))
    assert [m.content for m in memory.messages] == [
        "question 1",
        "answer 1",
        "question 2",
        "answer 2",
    ]
    assert llm.calls == []
    assert memory.get_summary() is None
    assert memory.moving_summary_buffer == ""


def test_folds_oldest_messages_incrementally(engine: Engine) -> None:
    llm = ScriptedChatModel(responses=["S1: asked 1 and 2", "S2: asked 1 to 4"])
    memory = SummaryMemory(engine, llm, "s", user_id="u", max_token_limit=2, token_counter=count)
    memory.add_messages(turn(1))
    memory.add_messages(turn(2))  # 4 > 2: fold turn 1... and keep 2 messages
    assert len(llm.calls) == 1
    assert "question 1" in llm.prompt() and "question 2" not in llm.prompt()
    msgs = memory.messages
    assert msgs[0] == SystemMessage("S1: asked 1 and 2")
    assert [m.content for m in msgs[1:]] == ["question 2", "answer 2"]

    memory.add_messages(turn(3) + turn(4))
    assert len(llm.calls) == 2
    second = llm.prompt()
    # Only what is not summarized yet goes to the model, with the previous summary.
    assert "S1: asked 1 and 2" in second
    assert "question 1" not in second and "question 2" in second and "question 3" in second
    assert "question 4" not in second
    assert [m.content for m in memory.messages] == ["S2: asked 1 to 4", "question 4", "answer 4"]
    info = memory.get_summary()
    assert (
        info is not None
        and info.message_count == 6
        and info.last_seq == 6
        and info.summary == "S2: asked 1 to 4"
    )
    # The full log is still there for a plain chat history.
    assert len(ChatMessageHistory(engine, "s", user_id="u").messages) == 8


def test_restart_costs_no_model_call(engine: Engine) -> None:
    SummaryMemory(
        engine,
        ScriptedChatModel(responses=["the summary"]),
        "s",
        user_id="u",
        max_token_limit=2,
        token_counter=count,
    ).add_messages(turn(1) + turn(2))
    silent = ScriptedChatModel()  # fails on any call
    again = SummaryMemory(engine, silent, "s", user_id="u", max_token_limit=2, token_counter=count)
    assert [m.content for m in again.messages] == ["the summary", "question 2", "answer 2"]
    assert again.prune() is False  # nothing over budget: nothing to summarize again
    assert silent.calls == []


def test_default_token_counter_and_default_budget(engine: Engine) -> None:
    llm = ScriptedChatModel(responses=["long chat summarized"])
    memory = SummaryMemory(engine, llm, "s", max_token_limit=60)
    memory.add_messages([HumanMessage("word " * 50), AIMessage("short answer")])
    assert len(llm.calls) == 1
    assert [m.type for m in memory.messages] == ["system", "ai"]


def test_prune_to_a_low_water_mark_makes_fewer_calls(engine: Engine) -> None:
    legacy_like = ScriptedChatModel(responses=lambda prompt: "s")
    lower = ScriptedChatModel(responses=lambda prompt: "s")
    a = SummaryMemory(engine, legacy_like, "a", max_token_limit=6, token_counter=count)
    b = SummaryMemory(engine, lower, "b", max_token_limit=6, token_counter=count, prune_to=2)
    for i in range(10):
        a.add_messages(turn(i))
        b.add_messages(turn(i))
        assert len(a.messages) - 1 <= 6 and len(b.messages) - 1 <= 6
    assert len(legacy_like.calls) == 7  # every turn once over budget
    assert len(lower.calls) == 3  # every third turn
    assert [m.content for m in b.messages[1:]][-2:] == ["question 9", "answer 9"]
    with pytest.raises(ValueError, match="prune_to"):
        SummaryMemory(engine, lower, "c", prune_to=-5)


def test_cut_never_separates_tool_calls_from_results(engine: Engine) -> None:
    llm = ScriptedChatModel(responses=["summary A", "summary B"])
    memory = SummaryMemory(engine, llm, "s", max_token_limit=3, token_counter=count)
    memory.add_messages(
        [
            HumanMessage("weather in Paris and Rome?"),
            call("c1", "c2"),
            ToolMessage("sunny", tool_call_id="c1"),
            ToolMessage("rainy", tool_call_id="c2"),
            AIMessage("Paris sunny, Rome rainy"),
        ]
    )
    kept = memory.messages
    assert kept[0].type == "system"
    assert_tool_safe(kept[1:])
    # A naive cut at 2 would have kept [tool c2, AI]; the safe cut folds both tool results.
    assert [m.content for m in kept[1:]] == ["Paris sunny, Rome rainy"]
    assert "sunny" in llm.prompt() and "rainy" in llm.prompt()


def test_pending_tool_call_is_not_folded_without_its_results(engine: Engine) -> None:
    llm = ScriptedChatModel(responses=["summary", "summary 2"])
    memory = SummaryMemory(engine, llm, "s", max_token_limit=1, token_counter=count)
    memory.add_messages([HumanMessage("a"), AIMessage("b"), HumanMessage("look it up"), call("x")])
    kept = memory.messages
    # The call has no result yet: it stays with whatever comes after it.
    assert isinstance(kept[-1], AIMessage) and kept[-1].tool_calls
    memory.add_messages([ToolMessage("found", tool_call_id="x")])
    assert_tool_safe([m for m in memory.messages if m.type != "system"])


def test_list_summaries_of_earlier_sessions(engine: Engine) -> None:
    for sid, text in [("mon", "Monday: talked about Paris"), ("tue", "Tuesday: talked about Rome")]:
        SummaryMemory(
            engine,
            ScriptedChatModel(responses=[text]),
            sid,
            user_id="alice",
            max_token_limit=0,
            token_counter=count,
        ).add_messages(turn(1))
    SummaryMemory(
        engine,
        ScriptedChatModel(responses=["bob's"]),
        "mon",
        user_id="bob",
        max_token_limit=0,
        token_counter=count,
    ).add_messages(turn(1))
    got = SummaryMemory.list_summaries(engine, "alice")
    assert {s.session_id: s.summary for s in got} == {
        "mon": "Monday: talked about Paris",
        "tue": "Tuesday: talked about Rome",
    }
    assert all(s.message_count == 2 and s.user_id == "alice" for s in got)
    assert [s.session_id for s in SummaryMemory.list_summaries(engine, "alice", exclude="tue")] == [
        "mon"
    ]
    assert len(SummaryMemory.list_summaries(engine, "alice", limit=1)) == 1
    with pytest.raises(ValueError, match="limit"):
        SummaryMemory.list_summaries(engine, "alice", limit=-1)


def test_clear_removes_messages_and_summary(engine: Engine) -> None:
    memory = SummaryMemory(
        engine, ScriptedChatModel(responses=["s"]), "s", max_token_limit=1, token_counter=count
    )
    memory.add_messages(turn(1))
    memory.clear()
    assert memory.messages == []
    assert SummaryMemory.list_summaries(engine) == []


def test_exact_text_round_trips(engine: Engine) -> None:
    odd = 'nul\x00 and \ud800 surrogate, quote " and backslash \\'
    memory = SummaryMemory(
        engine,
        ScriptedChatModel(responses=[odd]),
        "s\x00id",
        user_id="u\\",
        max_token_limit=1,
        token_counter=count,
    )
    memory.add_messages([HumanMessage(odd), AIMessage("ok")])
    assert memory.messages == [SystemMessage(odd), AIMessage("ok")]
    assert SummaryMemory.list_summaries(engine, "u\\")[0].session_id == "s\x00id"


def test_bad_arguments(engine: Engine) -> None:
    with pytest.raises(ValueError, match="max_token_limit"):
        SummaryMemory(engine, ScriptedChatModel(), "s", max_token_limit=-1)
    with pytest.raises(TypeError, match="chat model"):
        SummaryMemory(engine, "gpt-4o", "s")  # type: ignore[arg-type]
    memory = SummaryMemory(engine, ScriptedChatModel(), "s")
    with pytest.raises(TypeError, match="BaseMessage"):
        memory.add_messages(["not a message"])  # type: ignore[list-item]
    assert memory.messages == []


@pytest.mark.filterwarnings("ignore::langchain_core._api.deprecation.LangChainDeprecationWarning")
def test_drops_in_where_a_chat_history_goes(engine: Engine) -> None:
    from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
    from langchain_core.runnables.history import RunnableWithMessageHistory

    summarizer = ScriptedChatModel(responses=lambda prompt: "summary so far")
    chat = ScriptedChatModel(responses=lambda prompt: "reply")
    prompt = ChatPromptTemplate.from_messages(
        [MessagesPlaceholder("history"), ("human", "{input}")]
    )
    chain = RunnableWithMessageHistory(
        prompt | chat,
        lambda sid: SummaryMemory(engine, summarizer, sid, max_token_limit=2, token_counter=count),
        input_messages_key="input",
        history_messages_key="history",
    )
    for i in range(3):
        chain.invoke({"input": f"q{i}"}, config={"configurable": {"session_id": "s"}})
    assert [(m.type, m.content) for m in chat.calls[-1]] == [
        ("system", "summary so far"),
        ("human", "q1"),
        ("ai", "reply"),
        ("human", "q2"),
    ]
    assert len(summarizer.calls) == 2


# -- async --------------------------------------------------------------------------


async def test_async_fold_restart_list_and_clear(aengine: Engine) -> None:
    llm = ScriptedChatModel(responses=["S1", "S2"])
    memory = SummaryMemory(aengine, llm, "s", user_id="u", max_token_limit=2, token_counter=count)
    await memory.aadd_messages(turn(1) + turn(2))
    assert [m.content for m in await memory.aget_messages()] == ["S1", "question 2", "answer 2"]
    await memory.aadd_messages(
        [HumanMessage("q3"), call("t"), ToolMessage("r", tool_call_id="t"), AIMessage("a3")]
    )
    assert len(llm.calls) == 2
    kept = await memory.aget_messages()
    assert kept[0].content == "S2"
    assert_tool_safe(kept[1:])
    again = SummaryMemory(
        aengine, ScriptedChatModel(), "s", user_id="u", max_token_limit=2, token_counter=count
    )
    assert await again.aget_messages() == kept
    assert await again.aprune() is False
    info = await again.aget_summary()
    assert info is not None and info.summary == "S2"
    assert [s.session_id for s in await SummaryMemory.alist_summaries(aengine, "u")] == ["s"]
    await again.aclear()
    assert await memory.aget_messages() == []
    assert await SummaryMemory.alist_summaries(aengine, "u") == []


# -- the cut, for any sequence --------------------------------------------------------


@st.composite
def conversations(draw: st.DrawFn) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    n = 0
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["human", "ai", "tools"]))
        if kind == "human":
            out.append(HumanMessage("h"))
        elif kind == "ai":
            out.append(AIMessage("a"))
        else:
            ids = [f"t{n + i}" for i in range(draw(st.integers(1, 3)))]
            n += len(ids)
            out.append(call(*ids))
            answered = draw(st.integers(0, len(ids))) if draw(st.booleans()) else len(ids)
            out.extend(ToolMessage("r", tool_call_id=i) for i in ids[:answered])
    return out


@settings(max_examples=300, deadline=None)
@given(conversations(), st.integers(0, 10))
def test_safe_cut_keeps_tool_pairs_together(messages: list[BaseMessage], budget: int) -> None:
    cut = safe_cut(messages, budget, counter=count)
    assert 0 <= cut <= len(messages)
    kept, folded = messages[cut:], messages[:cut]
    assert_tool_safe(kept)
    if cut:
        open_ids = {tc["id"] for m in folded if isinstance(m, AIMessage) for tc in m.tool_calls}
        open_ids -= {m.tool_call_id for m in folded if isinstance(m, ToolMessage)}
        assert not open_ids, "a folded tool call lost its results"
    if len(messages) <= budget:
        assert cut == 0


# -- the real OpenAI client, replayed ---------------------------------------------------


def summary_responder(request: dict[str, Any]) -> dict[str, Any]:
    prompt = request["messages"][-1]["content"]
    assert "New lines of conversation" in prompt
    return {"content": "The user, Alice, lives in Paris and likes cycling."}


def test_summary_through_openai_cassette(engine: Engine) -> None:
    from langchain_openai import ChatOpenAI

    with openai_cassette("summary_memory", summary_responder) as kw:
        llm = ChatOpenAI(model="gpt-4o-mini", temperature=0, **kw)
        memory = SummaryMemory(engine, llm, "trip", user_id="alice", max_token_limit=30)
        memory.add_messages(
            [
                HumanMessage(
                    "Hi, I'm Alice. I live in Paris and I love cycling along the Seine on weekends."
                ),
                AIMessage("Nice to meet you, Alice!"),
            ]
        )
        memory.add_messages(
            [HumanMessage("Any tips for a ride?"), AIMessage("Try the Canal Saint-Martin.")]
        )
    msgs = memory.messages
    assert msgs[0] == SystemMessage("The user, Alice, lives in Paris and likes cycling.")
    assert msgs[-1].content == "Try the Canal Saint-Martin."
