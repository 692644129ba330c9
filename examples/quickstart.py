"""Quickstart: memory that survives a restart of the process.

Run it twice. Without a URL it uses the local SQLite file (one notice line tells where);
set AGENTMEM_URL=postgresql://... to use Postgres instead. No API key, no server.

    python examples/quickstart.py
    python examples/quickstart.py   # remembers the first run

With the ``local`` extra (``pip install "langchain-agentmem[local]"``: the offline wordllama
embedder) it also recalls the turn that answers a question, with MemoryRetriever.
"""

from __future__ import annotations

from datetime import datetime, timezone

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage

from langchain_agentmem import ChatMessageHistory, DocumentStore, MemoryRetriever, connect
from langchain_agentmem.cli import table_counts


def recall(engine: object, question: str) -> None:
    """Recall the turn that answers ``question`` (needs the ``local`` extra)."""
    try:
        import wordllama  # noqa: F401
    except ImportError:
        print('Recall: pip install "langchain-agentmem[local]" for offline semantic recall.')
        return
    from langchain_agentmem import LocalEmbeddings

    retriever = MemoryRetriever(engine, LocalEmbeddings(), user_id="alice", k=1)  # type: ignore[arg-type]
    for doc in retriever.invoke(question):
        print(f"Recall ({question!r}): {doc.page_content}")


def main() -> None:
    engine = connect()  # AGENTMEM_URL, else a local SQLite file
    engine.migrate()  # idempotent

    history = ChatMessageHistory(engine, "quickstart", user_id="alice", agent_name="quickstart")
    notes = DocumentStore(engine, "notes", user_id="alice")

    earlier = history.get_messages(limit=2)
    runs = sum(1 for _ in notes.yield_keys(prefix="run/"))
    if earlier:
        print(f"Welcome back: this is run {runs + 1}. The last thing we said:")
        for message in earlier:
            print(f"  {message.type:>5}: {message.content}")
    else:
        print("First run: nothing remembered yet.")

    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    history.add_messages(
        [
            HumanMessage(f"Remember that run {runs + 1} happened at {now}."),
            AIMessage(f"Noted: run {runs + 1} at {now}."),
        ]
    )
    notes.mset([(f"run/{runs + 1:04d}", Document(f"run {runs + 1}", metadata={"at": now}))])

    total = len(history.messages)
    print(
        f"The session now holds {total} messages; notes: {', '.join(notes.yield_keys(prefix='run/'))}"
    )
    recall(engine, "when did run 1 happen?")
    print("Rows per table:", ", ".join(f"{k}={v}" for k, v in table_counts(engine).items()))
    engine.close()


if __name__ == "__main__":
    main()
