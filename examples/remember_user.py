"""An agent that remembers a user across sessions with summary, entity and graph memory.

Runs on SQLite with no API key. THE MODELS HERE ARE FAKES, said plainly:

* the agent's model is ``MemoryEchoModel`` below: it does not think, it repeats the memory
  block that ``MemoryMiddleware`` put in its system message, so you can see what the agent
  would know;
* the model that writes memories is LangChain's ``FakeListChatModel`` answering the
  extraction and summary prompts with canned JSON/text, in the order the middleware asks
  (entities + graph facts in one call, then the session summary).

Swap both for a real chat model (e.g. ``ChatOpenAI(model="gpt-4o-mini")``) and the same code
runs for real: the prompts ask for exactly the JSON the fakes return.

Usage:
    python examples/remember_user.py [path/to/memory.sqlite3]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_agentmem import EntityMemory, GraphMemory, SummaryMemory, connect
from langchain_agentmem.middleware import MemoryMiddleware


class MemoryEchoModel(BaseChatModel):
    """A fake agent model: answers with what its system message says it remembers."""

    @property
    def _llm_type(self) -> str:
        return "memory-echo-fake"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        system = messages[0].text if messages and messages[0].type == "system" else ""
        _, _, memory = system.partition(
            "What you remember about this user (from earlier conversations):\n"
        )
        text = (
            "(fake model) I remember:\n" + memory
            if memory
            else "(fake model) Nice to meet you! I don't know you yet."
        )
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


class CallCounter(BaseCallbackHandler):
    """Counts model calls."""

    def __init__(self) -> None:
        self.calls = 0

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1


# What the memory-writing fake answers, call by call (a real model would produce these).
CANNED = [
    # session 1, turn 1: entities and graph facts in ONE call, then the session summary
    '{"entities": [{"name": "Bob", "type": "person", "aliases": ["Bobby"], '
    '"summary": "Alice\'s brother; lives in Lyon; plays chess."}, '
    '{"name": "Lyon", "type": "place", "aliases": [], "summary": "City in France where Bob lives."}], '
    '"triples": [{"subject": "Alice", "relation": "sister_of", "object": "Bob"}, '
    '{"subject": "Bob", "relation": "lives_in", "object": "Lyon"}, '
    '{"subject": "Bob", "relation": "plays", "object": "chess"}]}',
    "Alice introduced her brother Bob (Bobby), who lives in Lyon and plays chess.",
    # session 2, turn 1: Bob moved; the graph closes the Lyon edge instead of deleting it
    '{"entities": [{"name": "Bob", "type": "person", "aliases": [], '
    '"summary": "Alice\'s brother; moved from Lyon to Berlin; plays chess."}], '
    '"triples": [{"subject": "Bob", "relation": "lives_in", "object": "Berlin"}]}',
    "Alice said Bob moved to Berlin.",
]


def session(db: str, writer: FakeListChatModel, thread: str, text: str) -> str:
    """One session in a fresh engine, as a new process would run it."""
    with connect(f"sqlite:///{db}") as engine:
        engine.migrate()
        agent = create_agent(
            MemoryEchoModel(),
            system_prompt="You are Alice's assistant.",
            middleware=[MemoryMiddleware(engine, llm=writer, summary_token_limit=10)],
        )
        out = agent.invoke(
            {"messages": [("user", text)]},
            {"configurable": {"thread_id": thread}},
            context={"user_id": "alice"},
        )
        return str(out["messages"][-1].content)


def main() -> None:
    db = sys.argv[1] if len(sys.argv) > 1 else str(Path(tempfile.mkdtemp()) / "memory.sqlite3")
    counter = CallCounter()
    writer = FakeListChatModel(responses=CANNED, callbacks=[counter])

    print("== Monday ==")
    print("user: My brother Bobby lives in Lyon and plays chess.")
    print(
        "agent:", session(db, writer, "monday", "My brother Bobby lives in Lyon and plays chess.")
    )

    print("\n== Tuesday (new session, new engine) ==")
    print("user: Bob moved to Berlin!")
    print("agent:", session(db, writer, "tuesday", "Bob moved to Berlin!"))

    with connect(f"sqlite:///{db}") as engine:
        print("\n== What is stored ==")
        bob = EntityMemory(engine, user_id="alice").get("bobby")
        print("entity Bob:", bob.summary if bob else None)
        kg = GraphMemory(engine, user_id="alice")
        print("graph now:", "; ".join(e.as_text() for e in kg.facts("Bob")))
        print(
            "graph history:",
            "; ".join(
                f"{e.as_text()} [{'open' if e.valid_to is None else 'closed'}]"
                for e in kg.facts("Bob", history=True)
            ),
        )
        print(
            "path Alice -> chess:",
            " -> ".join(n.name for n in kg.shortest_path("Alice", "chess") or []),
        )
        for s in SummaryMemory.list_summaries(engine, "alice"):
            print(f"summary of {s.session_id}: {s.summary}")
    print(
        f"\nmemory-writer model calls: {counter.calls} for 2 turns (each turn: one for entities + graph facts, one for the session summary)"
    )


if __name__ == "__main__":
    main()
