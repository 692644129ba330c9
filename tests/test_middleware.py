"""MemoryMiddleware in LangChain 1.x ``create_agent``: reads memories into the request,
writes each turn back; sync and async agents, both backends."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _fakes import ScriptedChatModel
from langchain.agents import create_agent
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import HumanMessage
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_agentmem import ChatMessageHistory, Engine, EntityMemory, GraphMemory, SummaryMemory
from langchain_agentmem.middleware import MemoryMiddleware

from cassettes import openai_cassette


def memory_answers(prompt: str) -> str:
    """What the memory-writing model answers, by the prompt it gets."""
    if "long-term memory of an AI assistant" in prompt:
        if "Bob" in prompt:
            return json.dumps(
                {
                    "entities": [
                        {
                            "name": "Bob",
                            "type": "person",
                            "aliases": ["Bobby"],
                            "summary": "Alice's brother, lives in Lyon.",
                        }
                    ],
                    "triples": [{"subject": "Bob", "relation": "lives_in", "object": "Lyon"}],
                }
            )
        return json.dumps({"entities": [], "triples": []})
    if "keep notes about the entities" in prompt:
        if "Bob" in prompt:
            return json.dumps(
                {
                    "entities": [
                        {
                            "name": "Bob",
                            "type": "person",
                            "aliases": ["Bobby"],
                            "summary": "Alice's brother, lives in Lyon.",
                        }
                    ]
                }
            )
        return json.dumps({"entities": []})
    if "extract a knowledge graph" in prompt:
        if "Bob" in prompt:
            return json.dumps(
                {"triples": [{"subject": "Bob", "relation": "lives_in", "object": "Lyon"}]}
            )
        return json.dumps({"triples": []})
    if "running summary" in prompt:
        return "Alice told the assistant about her brother Bob in Lyon."
    raise AssertionError(f"unexpected memory prompt: {prompt[:200]!r}")


def system_text(call: list[Any]) -> str:
    return call[0].text if call and call[0].type == "system" else ""


def test_agent_remembers_the_user_across_sessions(engine: Engine) -> None:
    writer = ScriptedChatModel(responses=memory_answers)
    model = ScriptedChatModel(responses=["Noted!", "Bob lives in Lyon.", "I don't know Bob."])
    mw = MemoryMiddleware(engine, llm=writer, summary_token_limit=5)
    agent = create_agent(model, system_prompt="You are helpful.", middleware=[mw])

    agent.invoke(
        {"messages": [("user", "My brother Bob lives in Lyon.")]},
        {"configurable": {"thread_id": "monday"}},
        context={"user_id": "alice"},
    )
    # One call for entities and graph facts together, one for the session summary (over budget).
    assert len(writer.calls) == 2
    assert (
        EntityMemory(engine, user_id="alice").get("bobby").summary
        == "Alice's brother, lives in Lyon."
    )  # type: ignore[union-attr]
    assert GraphMemory(engine, user_id="alice").facts_text("Bob") == "Bob lives in Lyon"
    assert [m.content for m in ChatMessageHistory(engine, "monday", user_id="alice").messages] == [
        "My brother Bob lives in Lyon.",
        "Noted!",
    ]
    assert [s.session_id for s in SummaryMemory.list_summaries(engine, "alice")] == ["monday"]

    out = agent.invoke(
        {"messages": [("user", "Where does Bob live?")]},
        {"configurable": {"thread_id": "tuesday"}},
        context={"user_id": "alice"},
    )
    assert out["messages"][-1].content == "Bob lives in Lyon."
    seen = system_text(model.calls[1])
    assert seen.startswith("You are helpful.\n\nWhat you remember about this user")
    assert "- Bob (person; also: Bobby): Alice's brother, lives in Lyon." in seen
    assert "- Bob lives in Lyon" in seen
    assert "- Alice told the assistant about her brother Bob in Lyon." in seen
    # The agent state was not changed by the read side: only the user's and the model's messages.
    assert [m.type for m in out["messages"]] == ["human", "ai"]

    agent.invoke(
        {"messages": [("user", "Where does Bob live?")]},
        {"configurable": {"thread_id": "x"}},
        context={"user_id": "carol"},
    )
    assert system_text(model.calls[2]) == "You are helpful."  # another user: nothing known


def test_read_only_without_llm_and_vector_recall(engine: Engine) -> None:
    EntityMemory(engine, user_id="default").set("Paris", "Where the user lives.")
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_texts(["The user prefers window seats."])
    model = ScriptedChatModel(responses=["ok"])
    agent = create_agent(model, middleware=[MemoryMiddleware(engine, vectorstore=store, k=1)])
    agent.invoke({"messages": [("user", "Book me a flight to Paris")]})
    seen = system_text(model.calls[0])
    assert "- Paris: Where the user lives." in seen
    assert "Related memories:\n- The user prefers window seats." in seen
    assert (
        EntityMemory(engine).list_entities()[0].summary == "Where the user lives."
    )  # nothing written
    assert GraphMemory(engine).to_networkx().number_of_nodes() == 0
    with pytest.raises(TypeError, match="VectorStore"):
        MemoryMiddleware(engine, vectorstore="not a store")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="chat model"):
        MemoryMiddleware(engine, llm="gpt-4o")  # type: ignore[arg-type]


def test_separate_extraction_sync(engine: Engine) -> None:
    writer = ScriptedChatModel(responses=memory_answers)
    mw = MemoryMiddleware(engine, llm=writer, combined_extraction=False, session_summaries=False)
    create_agent(ScriptedChatModel(responses=["ok"]), middleware=[mw]).invoke(
        {"messages": [("user", "Bob lives in Lyon")]}
    )
    assert len(writer.calls) == 2
    assert GraphMemory(engine).facts_text("bobby") == ""  # graph nodes know no entity aliases
    assert GraphMemory(engine).facts_text("bob") == "Bob lives in Lyon"
    assert EntityMemory(engine).get("bobby") is not None


async def test_async_combined(aengine: Engine) -> None:
    writer = ScriptedChatModel(responses=memory_answers)
    agent = create_agent(
        ScriptedChatModel(responses=["ok"]),
        middleware=[MemoryMiddleware(aengine, llm=writer, user_id="u")],
    )
    await agent.ainvoke(
        {"messages": [("user", "Bob lives in Lyon")]}, {"configurable": {"thread_id": "t"}}
    )
    assert len(writer.calls) == 1  # under the summary budget: one call for the turn
    assert await GraphMemory(aengine, user_id="u").afacts_text("Bob") == "Bob lives in Lyon"
    assert (await EntityMemory(aengine, user_id="u").aget("Bobby")) is not None
    assert [
        m.content for m in await ChatMessageHistory(aengine, "t", user_id="u").aget_messages()
    ] == ["Bob lives in Lyon", "ok"]


async def test_async_agent(aengine: Engine) -> None:
    writer = ScriptedChatModel(responses=memory_answers)
    model = ScriptedChatModel(responses=["Noted!", "In Lyon."])
    agent = create_agent(
        model,
        middleware=[
            MemoryMiddleware(
                aengine,
                llm=writer,
                user_id="alice",
                session_summaries=False,
                combined_extraction=False,
            )
        ],
    )
    await agent.ainvoke({"messages": [("user", "My brother Bob lives in Lyon.")]})
    assert len(writer.calls) == 2  # entities + graph, no summary
    await agent.ainvoke({"messages": [("user", "Where is Bobby?")]})
    seen = system_text(model.calls[1])
    assert "Alice's brother, lives in Lyon." in seen and "- Bob lives in Lyon" in seen
    assert await SummaryMemory.alist_summaries(aengine, "alice") == []


def cassette_responder(request: dict[str, Any]) -> dict[str, Any]:
    system = (
        request["messages"][0]["content"]
        if request["messages"][0]["role"] in ("system", "developer")
        else ""
    )
    prompt = "\n".join(str(m.get("content")) for m in request["messages"])
    if "response_format" in request or "running summary" in system:
        return {"content": memory_answers(prompt)}
    if "What you remember" in system:
        return {"content": "Bob lives in Lyon."}
    return {"content": "Noted!"}


def test_middleware_through_openai_cassette(engine: Engine) -> None:
    from langchain_openai import ChatOpenAI

    with openai_cassette("memory_middleware", cassette_responder) as kw:
        llm = ChatOpenAI(model="gpt-4o-mini", temperature=0, **kw)
        agent = create_agent(
            llm,
            middleware=[MemoryMiddleware(engine, llm=llm, user_id="alice", summary_token_limit=5)],
        )
        agent.invoke(
            {"messages": [("user", "My brother Bob lives in Lyon.")]},
            {"configurable": {"thread_id": "s1"}},
        )
        out = agent.invoke(
            {"messages": [("user", "Where does Bob live?")]}, {"configurable": {"thread_id": "s2"}}
        )
    assert out["messages"][-1].content == "Bob lives in Lyon."
    assert GraphMemory(engine, user_id="alice").facts_text("bob") == "Bob lives in Lyon"


def test_remember_user_example_runs(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(root / "examples" / "remember_user.py"), str(tmp_path / "m.sqlite3")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "I don't know you yet." in out  # Monday: nothing known
    assert (
        "- Bob (person; also: Bobby): Alice's brother; lives in Lyon; plays chess." in out
    )  # Tuesday: remembered
    assert "Bob lives in Lyon [closed]" in out and "Bob lives in Berlin [open]" in out
    assert "path Alice -> chess: Alice -> Bob -> chess" in out
    assert "memory-writer model calls: 4 for 2 turns" in out


def test_the_user_named_in_configurable_or_by_another_key(engine: Engine) -> None:
    EntityMemory(engine, user_id="alice").set("Bob", "Alice's brother.")
    EntityMemory(engine, user_id="ann").set("Bob", "Ann's cat.")
    model = ScriptedChatModel(responses=["a", "b", "c"])
    agent = create_agent(model, middleware=[MemoryMiddleware(engine, graph=False)])
    # LangGraph's tutorials name the user in configurable: the middleware reads it there too.
    agent.invoke(
        {"messages": [("user", "Who is Bob?")]},
        {"configurable": {"thread_id": "t", "user_id": "alice"}},
    )
    assert "Alice's brother." in system_text(model.calls[0])
    # The context wins over configurable.
    agent.invoke(
        {"messages": [("user", "Who is Bob?")]},
        {"configurable": {"thread_id": "t", "user_id": "alice"}},
        context={"user_id": "ann"},
    )
    assert "Ann's cat." in system_text(model.calls[1])
    # LangMem's key.
    langmem = create_agent(
        model, middleware=[MemoryMiddleware(engine, graph=False, user_key="langgraph_user_id")]
    )
    langmem.invoke(
        {"messages": [("user", "Who is Bob?")]},
        {"configurable": {"thread_id": "t", "langgraph_user_id": "ann"}},
    )
    assert "Ann's cat." in system_text(model.calls[2])
    with pytest.raises(TypeError, match="user_key must be a non-empty str"):
        MemoryMiddleware(engine, user_key="")


def test_recall_of_past_turns_sync_and_async(engine: Engine) -> None:
    """With a MemoryRetriever, the past turns of the run's user that match the message are
    added (no model call for them), and another user's turns never are."""
    from langchain_agentmem import MemoryRetriever

    ChatMessageHistory(engine, "old", user_id="alice").add_messages(
        [HumanMessage("I always ask for a window seat on flights.", name="Alice")]
    )
    ChatMessageHistory(engine, "old", user_id="mallory").add_messages(
        [HumanMessage("Aisle seat on flights, please.")]
    )
    recall = MemoryRetriever(engine, DeterministicFakeEmbedding(size=16), user_id="nobody")
    for run_async in (False, True):
        model = ScriptedChatModel(responses=["ok"])
        mw = MemoryMiddleware(engine, retriever=recall, k=1, entities=False, graph=False)
        agent = create_agent(model, middleware=[mw])
        question = {"messages": [("user", "Book a seat on flights to Paris")]}
        if run_async:
            asyncio.run(agent.ainvoke(question, context={"user_id": "alice"}))
        else:
            agent.invoke(question, context={"user_id": "alice"})
        seen = system_text(model.calls[0])
        assert "Related memories:\n- [Alice, " in seen
        assert "I always ask for a window seat on flights." in seen
        assert "Aisle" not in seen
    with pytest.raises(TypeError, match="MemoryRetriever"):
        MemoryMiddleware(engine, retriever="not a retriever")  # type: ignore[arg-type]
