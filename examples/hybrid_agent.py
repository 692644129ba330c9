"""An agent on the hybrid engine: it works on a local SQLite file while Postgres comes and goes.

THE MODEL HERE IS A FAKE, said plainly: LangChain's ``FakeListChatModel`` answers each turn
with the next canned reply. It stands for any chat model; what this example shows is the
memory around it: every turn's messages (``ChatMessageHistory``, read back as the model's
context) and one remembered fact per turn (``KeyValueStore``) are
written to the local cache, never waiting for Postgres, and the sync worker delivers them to
Postgres in the background, each exactly once, whenever Postgres answers.

Usage:
    python examples/hybrid_agent.py postgresql://user@host/db [path/to/cache.sqlite3]

(tests/test_hybrid.py runs it through a TCP proxy that it cuts and restores between
turns, then checks that Postgres got every write once.)
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_agentmem import ChatMessageHistory, KeyValueStore, connect_hybrid


def run_agent(
    remote: str,
    cache_file: str,
    *,
    user_id: str = "alice",
    session_id: str = "chat-1",
    turns: int = 10,
    schema: str = "agent_mem",
    between_turns: Callable[[int], None] | None = None,
) -> list[str]:
    """Run ``turns`` turns of a fake-model agent on a hybrid engine; the questions asked.

    ``between_turns(i)`` is called after turn ``i`` (the test cuts Postgres there).
    """
    model = FakeListChatModel(responses=[f"(fake model) answer {i}" for i in range(turns)])
    engine = connect_hybrid("sqlite:///" + cache_file, remote, schema=schema, sync_interval=0.2)
    engine.migrate()
    asked = []
    with engine:  # starts the sync worker; on exit a last sync, then close
        try:
            engine.load_user(user_id)  # the user's memories from Postgres, if it answers
        except ConnectionError:
            print("Postgres is away: starting from the local cache")
        history = ChatMessageHistory(engine, session_id, user_id=user_id)
        facts = KeyValueStore(engine, "facts", user_id=user_id)
        system = SystemMessage("You are a helpful assistant.")
        for i in range(turns):
            question = f"question {i}"
            asked_now = HumanMessage(question)
            reply = model.invoke([system, *history.messages, asked_now])  # reads: local
            history.add_messages([asked_now, reply])  # writes: local, queued for Postgres
            facts.set(f"turn {i}", {"asked": question, "answered": reply.content})
            asked.append(question)
            print(f"turn {i}: {reply.content}  (queued: {engine.outbox_depth()})")
            if between_turns is not None:
                between_turns(i)
    return asked


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    file = sys.argv[2] if len(sys.argv) > 2 else str(Path(tempfile.mkdtemp()) / "cache.db")
    run_agent(sys.argv[1], file)
