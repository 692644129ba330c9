"""Drop-in: CheckpointSaver and LangGraphStore in StateGraph.compile(...) and LangChain's
create_agent(...), sync and async, on both backends; the example across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.tools import ToolRuntime, tool
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from test_store import HashedEmbeddings

from langchain_agentmem import CheckpointSaver, Engine, LangGraphStore


class ScriptedModel(FakeMessagesListChatModel):
    """A fake chat model that accepts tools (create_agent binds them)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self


@tool
def remember(fact: str, runtime: ToolRuntime) -> str:
    """Save a fact about the user for later conversations."""
    assert runtime.store is not None
    runtime.store.put(("memories", "alice"), uuid.uuid4().hex, {"text": fact})
    return f"saved: {fact}"


@tool
def recall(query: str, runtime: ToolRuntime) -> str:
    """Look up facts about the user."""
    assert runtime.store is not None
    hits = runtime.store.search(("memories", "alice"), query=query, limit=3)
    return "; ".join(h.value["text"] for h in hits) or "nothing"


def call(name: str, **args: Any) -> AIMessage:
    return AIMessage(
        "",
        tool_calls=[{"name": name, "args": args, "id": uuid.uuid4().hex[:8], "type": "tool_call"}],
    )


def agent(engine: Engine, script: list[BaseMessage]) -> Any:
    store = LangGraphStore(
        engine, index={"dims": 32, "embed": HashedEmbeddings(32), "fields": ["text"]}
    )
    return create_agent(
        ScriptedModel(responses=script),
        tools=[remember, recall],
        checkpointer=CheckpointSaver(engine),
        store=store,
    )


def tool_outputs(messages: list[BaseMessage]) -> list[str]:
    return [str(m.content) for m in messages if isinstance(m, ToolMessage)]


def test_create_agent_remembers_across_threads_and_restarts(engine: Engine) -> None:
    first = agent(engine, [call("remember", fact="Alice drinks green tea"), AIMessage("Noted.")])
    out = first.invoke(
        {"messages": [HumanMessage("I drink green tea")]}, {"configurable": {"thread_id": "t1"}}
    )
    assert tool_outputs(out["messages"]) == ["saved: Alice drinks green tea"]
    # "Restart": new saver, store and agent on the same database.
    second = agent(engine, [call("recall", query="tea"), AIMessage("You drink green tea.")])
    same_thread = second.get_state({"configurable": {"thread_id": "t1"}}).values["messages"]
    assert [m.type for m in same_thread] == ["human", "ai", "tool", "ai"]
    out = second.invoke(
        {"messages": [HumanMessage("What do I drink?")]}, {"configurable": {"thread_id": "t2"}}
    )
    assert tool_outputs(out["messages"]) == ["Alice drinks green tea"]
    assert out["messages"][-1].content == "You drink green tea."


async def test_create_agent_async(aengine: Engine) -> None:
    first = agent(aengine, [call("remember", fact="Alice plays chess"), AIMessage("Noted.")])
    await first.ainvoke(
        {"messages": [HumanMessage("I play chess")]}, {"configurable": {"thread_id": "a1"}}
    )
    second = agent(aengine, [call("recall", query="chess"), AIMessage("Chess.")])
    out = await second.ainvoke(
        {"messages": [HumanMessage("Hobby?")]}, {"configurable": {"thread_id": "a1"}}
    )
    assert tool_outputs(out["messages"]) == ["saved: Alice plays chess", "Alice plays chess"]
    assert len(out["messages"]) == 8


def memory_graph(engine: Engine) -> Any:
    def respond(state: MessagesState, runtime: Runtime[Any]) -> dict[str, Any]:
        store: BaseStore | None = runtime.store
        assert store is not None
        last = str(state["messages"][-1].content)
        if last.startswith("remember "):
            store.put(("notes",), "latest", {"text": last.removeprefix("remember ")})
            return {"messages": [AIMessage("ok")]}
        item = store.get(("notes",), "latest")
        return {"messages": [AIMessage(item.value["text"] if item else "?")]}

    builder = StateGraph(MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(START, "respond")
    return builder.compile(checkpointer=CheckpointSaver(engine), store=LangGraphStore(engine))


def test_state_graph_with_checkpointer_and_store(engine: Engine) -> None:
    graph = memory_graph(engine)
    graph.invoke(
        {"messages": [HumanMessage("remember the code is 42")]},
        {"configurable": {"thread_id": "x"}},
    )
    out = memory_graph(engine).invoke(
        {"messages": [HumanMessage("code?")]}, {"configurable": {"thread_id": "y"}}
    )
    assert out["messages"][-1].content == "the code is 42"
    history = (
        memory_graph(engine).get_state({"configurable": {"thread_id": "x"}}).values["messages"]
    )
    assert [m.content for m in history] == ["remember the code is 42", "ok"]


async def test_state_graph_async(aengine: Engine) -> None:
    graph = memory_graph(aengine)
    await graph.ainvoke(
        {"messages": [HumanMessage("remember blue")]}, {"configurable": {"thread_id": "x"}}
    )
    out = await graph.ainvoke(
        {"messages": [HumanMessage("colour?")]}, {"configurable": {"thread_id": "x"}}
    )
    assert [m.content for m in out["messages"]] == ["remember blue", "ok", "colour?", "blue"]


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "langgraph_agent.py"


def run_example(url: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.pop("OPENAI_API_KEY", None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--url", url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_example_remembers_across_process_restarts(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "postgres":
        url = request.getfixturevalue("postgres_url")
        schema = ["--schema", "ex_" + uuid.uuid4().hex[:10]]
    else:
        url, schema = f"sqlite:///{tmp_path / 'agent.sqlite3'}", []
    first = run_example(url, *schema, "My favourite drink is green tea.")
    assert "remembered" in first
    second = run_example(url, *schema, "What is my favourite drink?")
    assert "green tea" in second
    assert "turns on this thread so far: 2" in second
