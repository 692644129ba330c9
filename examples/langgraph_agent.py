"""An agent that remembers across process restarts: LangChain's ``create_agent`` with
agentmem's checkpointer (the conversation) and store (long-term memories).

Run it twice with the same database; the second process knows what the first was told::

    python examples/langgraph_agent.py --url sqlite:///agent.sqlite3 "My favourite drink is green tea."
    python examples/langgraph_agent.py --url sqlite:///agent.sqlite3 "What is my favourite drink?"

    # the same on Postgres (pgvector installed):
    python examples/langgraph_agent.py --url postgresql://localhost/mydb "My favourite drink is green tea."

With ``OPENAI_API_KEY`` set it uses ``ChatOpenAI`` and ``OpenAIEmbeddings``; without one, a
small offline stand-in model (questions recall, statements remember) and hashed
embeddings, so the example runs anywhere.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import re
import uuid
from typing import Any

from langchain.agents import create_agent
from langchain.tools import ToolRuntime, tool
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_agentmem import CheckpointSaver, LangGraphStore, connect

USER = "alice"


@tool
def remember(fact: str, runtime: ToolRuntime) -> str:
    """Save a fact about the user for future conversations."""
    assert runtime.store is not None
    runtime.store.put(("memories", USER), uuid.uuid4().hex, {"text": fact})
    return f"remembered: {fact}"


@tool
def recall(query: str, runtime: ToolRuntime) -> str:
    """Search the saved facts about the user."""
    assert runtime.store is not None
    hits = runtime.store.search(("memories", USER), query=query, limit=3)
    return "; ".join(h.value["text"] for h in hits) or "I have nothing saved about that."


class HashedEmbeddings(Embeddings):
    """Offline bag-of-words embeddings (texts sharing words are close)."""

    size = 64

    def embed_query(self, text: str) -> list[float]:
        vec = [0.0] * self.size
        for word in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big")
            vec[h % self.size] += 1.0
        norm = math.sqrt(sum(x * x for x in vec)) or 1.0
        return [x / norm for x in vec]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]


class OfflineModel(BaseChatModel):
    """Stands in for an LLM: a question calls ``recall``, a statement ``remember``, and a
    tool result is repeated as the answer."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> OfflineModel:  # type: ignore[override]
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            reply = AIMessage(str(last.content))
        else:
            text = str(last.content)
            name, args = (
                ("recall", {"query": text})
                if text.rstrip().endswith("?")
                else ("remember", {"fact": text})
            )
            reply = AIMessage(
                "",
                tool_calls=[
                    {"name": name, "args": args, "id": uuid.uuid4().hex[:8], "type": "tool_call"}
                ],
            )
        return ChatResult(generations=[ChatGeneration(message=reply)])

    @property
    def _llm_type(self) -> str:
        return "offline-stand-in"


def build(url: str, schema: str) -> tuple[Any, Any]:
    engine = connect(url, schema=schema)
    engine.migrate()  # idempotent
    if os.environ.get("OPENAI_API_KEY"):
        from langchain_openai import ChatOpenAI, OpenAIEmbeddings

        model: BaseChatModel = ChatOpenAI(model="gpt-4o-mini")
        index = {
            "dims": 1536,
            "embed": OpenAIEmbeddings(model="text-embedding-3-small"),
            "fields": ["text"],
        }
    else:
        model = OfflineModel()
        index = {"dims": HashedEmbeddings.size, "embed": HashedEmbeddings(), "fields": ["text"]}
    agent = create_agent(
        model,
        tools=[remember, recall],
        system_prompt="Save facts the user tells you with `remember`; answer questions using `recall`.",
        checkpointer=CheckpointSaver(engine, user_id=USER),
        store=LangGraphStore(engine, user_id=USER, index=index),  # type: ignore[arg-type]
    )
    return agent, engine


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("message")
    parser.add_argument("--url", default=os.environ.get("AGENTMEM_URL", "sqlite:///agent.sqlite3"))
    parser.add_argument("--schema", default="agent_mem")
    parser.add_argument("--thread", default="demo-thread")
    args = parser.parse_args()

    agent, engine = build(args.url, args.schema)
    config = {"configurable": {"thread_id": args.thread}}
    result = agent.invoke({"messages": [HumanMessage(args.message)]}, config)
    print(result["messages"][-1].content)
    turns = sum(isinstance(m, HumanMessage) for m in agent.get_state(config).values["messages"])
    print(f"turns on this thread so far: {turns}")
    engine.close()


if __name__ == "__main__":
    main()
