"""A small workload of every memory class for one tenant, through the public API: the
row-level security tests and the Citus statement test run it so that every tenant table
of the catalog holds rows of the tenant (a table it leaves empty fails those tests: add
the new memory class here)."""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, TypedDict

from _fakes import ScriptedChatModel
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, StateGraph

from langchain_agentmem import (
    ByteStore,
    ChatMessageHistory,
    CheckpointSaver,
    DocumentStore,
    Engine,
    EntityMemory,
    EpisodicMemory,
    GraphMemory,
    KeyValueStore,
    KnowledgeBase,
    LangGraphStore,
    MemoryRetriever,
    MemoryVectorStore,
    SkillRegistry,
    SummaryMemory,
    WorkingMemory,
)

#: The vector collection the workload writes to (registered once by the schema's owner:
#: registering one builds its HNSW index, which only the table's owner may).
COLLECTION = "workload"
DIMS = 16


class Hashed(Embeddings):
    """Deterministic bag-of-words embeddings."""

    def _one(self, text: str) -> list[float]:
        vec = [0.0] * DIMS
        for word in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big")
            vec[h % DIMS] += 1.0 if (h >> 32) % 2 else -1.0
        norm = math.sqrt(sum(x * x for x in vec)) or 1.0
        return [x / norm for x in vec]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


class _State(TypedDict):
    n: int


def _graph(saver: CheckpointSaver) -> Any:
    builder = StateGraph(_State)
    builder.add_node("step", lambda s: {"n": s["n"] + 1})
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder.compile(checkpointer=saver)


def register_collection(engine: Engine) -> None:
    """Register the workload's collection (run as the schema's owner)."""
    MemoryVectorStore(engine, Hashed(), collection=COLLECTION, user_id="__owner__").add_texts(
        ["seed"], ids=["seed"]
    )


def exercise(engine: Engine, user: str) -> None:
    """Write (and read back) a little of every kind of memory as tenant ``user``."""
    chat = ChatMessageHistory(engine, "s1", user_id=user)
    chat.add_messages([HumanMessage(f"hello from {user}"), AIMessage("hi")])
    assert len(chat.messages) == 2

    DocumentStore(engine, "docs", user_id=user).mset([("d1", Document(page_content=user))])
    ByteStore(engine, "bytes", user_id=user).mset([("b1", user.encode())])

    vs = MemoryVectorStore(engine, Hashed(), collection=COLLECTION, user_id=user)
    vs.add_texts([f"{user} likes tea", f"{user} likes rain"], ids=["v1", "v2"])
    assert vs.similarity_search("tea", k=1)

    store = LangGraphStore(
        engine, user_id=user, index={"dims": DIMS, "embed": Hashed(), "fields": ["text"]}
    )
    store.put(("memories", user), "m1", {"text": f"{user} prefers mornings"})
    assert store.search(("memories", user), query="mornings", limit=1)

    saver = CheckpointSaver(engine, user_id=user)
    graph = _graph(saver)
    assert graph.invoke({"n": 1}, {"configurable": {"thread_id": "t1"}})["n"] == 2

    model = ScriptedChatModel(responses=lambda prompt: "a summary")
    summary = SummaryMemory(engine, model, "s1", user_id=user, max_token_limit=5)
    summary.add_messages([HumanMessage("one two three four five six"), AIMessage("seven eight")])

    entities = EntityMemory(engine, user_id=user)
    entities.set("Ada", f"{user}'s friend", aliases=["ada l"])
    assert entities.get("Ada") is not None

    graph_memory = GraphMemory(engine, user_id=user)
    graph_memory.add_triple("Ada", "knows", "Bob")
    assert graph_memory.neighbors("Ada")

    wm = WorkingMemory(engine, user_id=user, session_id="s1")
    wm.set_goal("test")
    wm.add_thought("thinking")

    kv = KeyValueStore(engine, "kv", user_id=user)
    kv.set("k", {"user": user})
    assert kv.get("k") == {"user": user}

    episodes = EpisodicMemory(engine, Hashed(), user_id=user, project="ops")
    ep = episodes.record({"alert": f"{user} disk full"}, "archive stuck", {"do": "clear"})
    episodes.record_outcome(ep.id, {"freed": 1}, 0.9)
    assert episodes.recall_similar({"alert": "disk full"}, k=1)

    kb = KnowledgeBase(engine, Hashed(), user_id=user)
    kb.assert_fact(user, "likes", "tea")
    kb.add_rule({"topic": "disk"}, {"do": "clear"}, priority=1)
    strategy = kb.add_strategy("clear the disk", supporting_episodes=["e1", "e2", "e3"])
    kb.record_application(strategy.id, True)
    assert kb.best_strategies("disk full", k=1)

    skills = SkillRegistry(engine, user_id=user)
    spec = {"name": "look", "description": "Look up.", "inputSchema": {"type": "object"}}
    skills.register("look", description="looks things up", spec=spec)
    skills.bind("agent", "look", priority=1)
    assert skills.skills_for("agent")

    metrics, engine.metrics = engine.metrics, True  # one operation in agent_memory_metrics
    try:
        assert kv.get("k") == {"user": user}
    finally:
        engine.metrics = metrics

    retriever = MemoryRetriever(engine, Hashed(), user_id=user)
    assert retriever.search(user, k=1)  # indexes the chat turns first ("hello" is a stopword)
