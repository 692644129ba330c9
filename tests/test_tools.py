"""Memory tools in an agent (save, update, delete, search over the vector, entity and graph
memories, scoped to the run's user) and the middleware's background write-back; both
backends, sync and async."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from _fakes import ScriptedChatModel
from langchain.agents import create_agent
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage
from test_checkpoint_dropin import ScriptedModel
from test_middleware import memory_answers

from langchain_agentmem import Engine, EntityMemory, GraphMemory, MemoryVectorStore
from langchain_agentmem._core.background import BackgroundWriteError
from langchain_agentmem.middleware import MemoryMiddleware
from langchain_agentmem.tools import (
    MEMORY_KINDS,
    create_manage_memory_tool,
    create_search_memory_tool,
    memory_tools,
)

EMB = DeterministicFakeEmbedding(size=16)


def by_name(tools: list[Any]) -> dict[str, Any]:
    return {t.name: t for t in tools}


def test_tools_over_every_kind_scoped_to_the_user(engine: Engine) -> None:
    tools = by_name(memory_tools(engine, embeddings=EMB))
    assert sorted(tools) == sorted(
        f"{a}_{k}_memory" for k in MEMORY_KINDS for a in ("manage", "search")
    )
    alice = {"configurable": {"user_id": "alice"}}
    saved = tools["manage_vector_memory"].invoke(
        {"action": "create", "content": "likes green tea"}, alice
    )
    mid = saved["created"]
    tools["manage_vector_memory"].invoke(
        {"action": "update", "id": mid, "content": "likes black tea"}, alice
    )
    hits = tools["search_vector_memory"].invoke({"query": "tea"}, alice)
    assert hits == [{"id": mid, "content": "likes black tea"}]
    assert (
        tools["search_vector_memory"].invoke({"query": "tea"}, {"configurable": {"user_id": "bob"}})
        == []
    )
    assert MemoryVectorStore(engine, EMB, collection="memories", user_id="alice").get_by_ids([mid])

    tools["manage_entities_memory"].invoke(
        {"action": "create", "name": "Bob", "summary": "Alice's brother.", "type": "person"}, alice
    )
    found = tools["search_entities_memory"].invoke({"query": "Where is Bob?"}, alice)
    assert found == [{"name": "Bob", "type": "person", "summary": "Alice's brother."}]
    assert EntityMemory(engine, user_id="alice").get("bob") is not None
    assert EntityMemory(engine, user_id="bob").get("bob") is None

    tools["manage_graph_memory"].invoke(
        {"action": "create", "subject": "Bob", "relation": "lives_in", "object": "Lyon"}, alice
    )
    assert tools["search_graph_memory"].invoke({"query": "Bob"}, alice) == ["Bob lives in Lyon"]
    assert GraphMemory(engine, user_id="alice").facts_text("Bob") == "Bob lives in Lyon"

    tools["manage_graph_memory"].invoke({"action": "delete", "subject": "Bob"}, alice)
    tools["manage_entities_memory"].invoke({"action": "delete", "name": "Bob"}, alice)
    tools["manage_vector_memory"].invoke({"action": "delete", "id": mid}, alice)
    assert tools["search_graph_memory"].invoke({"query": "Bob"}, alice) == []
    assert tools["search_entities_memory"].invoke({"query": "Bob"}, alice) == []
    assert tools["search_vector_memory"].invoke({"query": "tea"}, alice) == []


async def test_tools_async_and_the_context_names_the_user(aengine: Engine) -> None:
    manage = create_manage_memory_tool(
        aengine, "vector", embeddings=EMB, actions_permitted=("create",)
    )
    search = create_search_memory_tool(aengine, "vector", embeddings=EMB, limit=1)
    await manage.ainvoke(
        {"action": "create", "content": "plays chess"}, {"configurable": {"user_id": "ann"}}
    )
    assert [
        h["content"]
        for h in await search.ainvoke({"query": "chess"}, {"configurable": {"user_id": "ann"}})
    ] == ["plays chess"]
    with pytest.raises(ValueError, match="action 'delete' is not permitted"):
        await manage.ainvoke({"action": "delete", "id": "x"})
    with pytest.raises(ValueError, match="update needs"):
        await create_manage_memory_tool(aengine, "vector", embeddings=EMB).ainvoke(
            {"action": "update", "content": "x"}
        )


def test_an_agent_saves_and_recalls_with_the_tools(engine: Engine) -> None:
    tools = memory_tools(engine, kinds=["vector"], embeddings=EMB)
    call = {
        "name": "manage_vector_memory",
        "args": {"action": "create", "content": "likes green tea"},
        "id": "c1",
    }
    ask = {"name": "search_vector_memory", "args": {"query": "tea"}, "id": "c2"}
    model = ScriptedModel(
        responses=[
            AIMessage("", tool_calls=[call]),
            AIMessage("Saved."),
            AIMessage("", tool_calls=[ask]),
            AIMessage("Green tea."),
        ]
    )
    agent = create_agent(model, tools=tools)
    agent.invoke({"messages": [("user", "I like green tea")]}, context={"user_id": "carol"})  # type: ignore[arg-type]
    out = agent.invoke({"messages": [("user", "What do I drink?")]}, context={"user_id": "carol"})  # type: ignore[arg-type]
    assert "likes green tea" in out["messages"][-2].content  # the tool's answer
    store = MemoryVectorStore(engine, EMB, collection="memories", user_id="carol")
    assert [d.page_content for d in store.similarity_search("tea", k=5)] == ["likes green tea"]


def test_unknown_kind_and_missing_embeddings(engine: Engine) -> None:
    with pytest.raises(ValueError, match="unknown memory kind 'episodes'"):
        create_manage_memory_tool(engine, "episodes")
    tool = create_search_memory_tool(engine, "vector")
    with pytest.raises(TypeError, match="need embeddings="):
        tool.invoke({"query": "x"})


# -- background write-back --------------------------------------------------------------------
def _agent(engine: Engine, writer: Any, **kwargs: Any) -> tuple[Any, MemoryMiddleware]:
    mw = MemoryMiddleware(engine, llm=writer, session_summaries=False, background=True, **kwargs)
    model = ScriptedChatModel(responses=["Noted!", "Noted again!"])
    return create_agent(model, middleware=[mw]), mw


def test_background_write_back_does_not_hold_the_answer(engine: Engine) -> None:
    release = threading.Event()

    def slow(prompt: str) -> str:
        release.wait(60)  # the write waits until the test lets it go
        return memory_answers(prompt)

    agent, mw = _agent(engine, ScriptedChatModel(responses=slow))
    out = agent.invoke(
        {"messages": [("user", "My brother Bob lives in Lyon.")]}, context={"user_id": "alice"}
    )
    assert out["messages"][-1].content == "Noted!"  # answered while the write is pending
    assert EntityMemory(engine, user_id="alice").get("Bob") is None
    with pytest.raises(TimeoutError, match="still running"):
        mw.flush(timeout=0)
    release.set()
    mw.flush()
    assert (
        EntityMemory(engine, user_id="alice").get("Bob").summary
        == "Alice's brother, lives in Lyon."
    )  # type: ignore[union-attr]


async def test_background_write_back_async_and_errors_surface(aengine: Engine) -> None:
    def broken(prompt: str) -> str:
        raise RuntimeError("the writer model is down")

    agent, mw = _agent(aengine, ScriptedChatModel(responses=broken))
    await agent.ainvoke({"messages": [("user", "Bob lives in Lyon.")]})
    with pytest.raises(BackgroundWriteError, match="the writer model is down"):
        await mw.aflush()
    await mw.aflush()  # reported once
    ok, mw2 = _agent(aengine, ScriptedChatModel(responses=memory_answers))
    await ok.ainvoke(
        {"messages": [("user", "My brother Bob lives in Lyon.")]}, context={"user_id": "z"}
    )
    await mw2.aflush()
    assert (await EntityMemory(aengine, user_id="z").aget("Bob")) is not None


SHUTDOWN = """
import sys
sys.path[:0] = [{tests!r}]
from _fakes import ScriptedChatModel
from test_checkpoint_dropin import ScriptedModel
from test_middleware import memory_answers
from langchain.agents import create_agent
from langchain_agentmem import connect
from langchain_agentmem.middleware import MemoryMiddleware

import atexit, threading
exiting = threading.Event()  # the write is held until the interpreter is exiting

def answer(prompt):
    exiting.wait()
    return memory_answers(prompt)

engine = connect({url!r}); engine.migrate()
mw = MemoryMiddleware(engine, llm=ScriptedChatModel(responses=answer),
                      session_summaries=False, background=True)
atexit.register(exiting.set)  # registered after the middleware's drain: runs before it
agent = create_agent(ScriptedChatModel(responses=["Noted!"]), middleware=[mw])
agent.invoke({{"messages": [("user", "My brother Bob lives in Lyon.")]}}, context={{"user_id": "alice"}})
print("pending at exit:", mw._runner.pending)
"""


def test_nothing_is_lost_at_shutdown(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
    script = SHUTDOWN.format(tests=str(Path(__file__).parent), url=url)
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(root / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pending at exit: 1"
    from langchain_agentmem import connect

    with connect(url) as engine:
        assert EntityMemory(engine, user_id="alice").get("Bob") is not None
        assert GraphMemory(engine, user_id="alice").facts_text("Bob") == "Bob lives in Lyon"
