"""langchain-postgres's documented snippets with only the import line changed
(``langchain_agentmem.compat``), every public class built from a URL or a connection, and
the ``langgraph.json`` factories; both backends where the snippet allows, sync and async."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from psycopg_pool import ConnectionPool
from test_dropin import conn_string  # noqa: F401 (the fixture)

import langchain_agentmem
from langchain_agentmem import (
    ChatMessageHistory,
    CheckpointSaver,
    Engine,
    LangGraphStore,
    MemoryVectorStore,
)
from langchain_agentmem.compat import PGEngine, PGVector, PGVectorStore, PostgresChatMessageHistory


# -- langchain-postgres's README: PGVectorStore ---------------------------------------------------
def test_pgvectorstore_snippet(conn_string: str) -> None:  # noqa: F811
    CONNECTION_STRING = conn_string  # noqa: N806 (the docs' names)
    engine = PGEngine.from_connection_string(url=CONNECTION_STRING)
    VECTOR_SIZE = 768  # noqa: N806
    embedding = DeterministicFakeEmbedding(size=VECTOR_SIZE)
    TABLE_NAME = "my_doc_collection"  # noqa: N806
    engine.init_vectorstore_table(
        table_name=TABLE_NAME,
        vector_size=VECTOR_SIZE,
    )
    store = PGVectorStore.create_sync(
        engine=engine,
        table_name=TABLE_NAME,
        embedding_service=embedding,
    )
    docs = [
        Document(page_content="Apples and oranges"),
        Document(page_content="Cars and airplanes"),
        Document(page_content="Train"),
    ]
    store.add_documents(docs)
    query = "I'd like a fruit."
    docs = store.similarity_search(query)
    assert sorted(d.page_content for d in docs) == [
        "Apples and oranges",
        "Cars and airplanes",
        "Train",
    ]
    assert isinstance(engine, Engine) and isinstance(store, MemoryVectorStore)
    assert store.collection == TABLE_NAME
    engine.close()


async def test_pgvectorstore_async_snippet(conn_string: str) -> None:  # noqa: F811
    from langchain_postgres.v2.indexes import DistanceStrategy

    engine = PGEngine.from_connection_string(url=conn_string)
    await engine.ainit_vectorstore_table(table_name="docs", vector_size=16)
    store = await PGVectorStore.create(
        engine=engine,
        table_name="docs",
        embedding_service=DeterministicFakeEmbedding(size=16),
        distance_strategy=DistanceStrategy.EUCLIDEAN,
    )
    ids = await store.aadd_texts(["a", "b"], metadatas=[{"n": 1}, {"n": 2}])
    hits = await store.asimilarity_search("a", k=1, filter={"n": 2})
    assert [h.id for h in hits] == [ids[1]]
    assert store.distance == "l2"  # type: ignore[attr-defined]
    await engine.aclose()


def test_pgengine_refuses_what_it_does_not_do() -> None:
    with pytest.raises(TypeError, match="unknown from_connection_string"):
        PGEngine.from_connection_string(url="sqlite://", pool_size=5)
    engine = PGEngine.from_connection_string(url="sqlite://")
    with pytest.raises(ValueError, match="overwrite_existing=True is not supported"):
        engine.init_vectorstore_table("t", 8, overwrite_existing=True)
    with pytest.raises(ValueError, match="vector_size must be a positive int"):
        engine.init_vectorstore_table("t", 0)
    with pytest.raises(ValueError, match="k, fetch_k and lambda_mult are per search"):
        PGVectorStore.create_sync(engine, DeterministicFakeEmbedding(size=8), "t", k=10)
    with pytest.raises(ValueError, match="unknown distance_strategy"):
        PGVectorStore.create_sync(
            engine, DeterministicFakeEmbedding(size=8), "t", distance_strategy="hamming"
        )


# -- langchain-postgres's legacy PGVector (its docs page) -----------------------------------------
def test_pgvector_snippet(conn_string: str) -> None:  # noqa: F811
    connection = conn_string
    collection_name = "my_docs"
    embeddings = DeterministicFakeEmbedding(size=32)
    vector_store = PGVector(
        embeddings=embeddings,
        collection_name=collection_name,
        connection=connection,
        use_jsonb=True,
    )
    docs = [
        Document(page_content="there are cats in the pond", metadata={"id": 1, "topic": "animals"}),
        Document(
            page_content="ducks are also found in the pond", metadata={"id": 2, "topic": "animals"}
        ),
        Document(
            page_content="fresh apples are available at the market",
            metadata={"id": 3, "topic": "food"},
        ),
    ]
    vector_store.add_documents(docs, ids=[doc.metadata["id"] for doc in docs])
    results = vector_store.similarity_search("kitty", k=10, filter={"id": {"$in": [1, 5, 2, 9]}})
    assert sorted(d.metadata["id"] for d in results) == [1, 2]
    results = vector_store.similarity_search(
        "ducks",
        k=10,
        filter={"$and": [{"id": {"$in": [1, 5, 2, 9]}}, {"topic": {"$in": ["animals"]}}]},
    )
    assert len(results) == 2
    vector_store.delete(ids=["3"])
    again = PGVector(embeddings=embeddings, collection_name=collection_name, connection=connection)
    assert len(again.similarity_search("x", k=10)) == 2
    fresh = PGVector(
        embeddings=embeddings,
        collection_name=collection_name,
        connection=connection,
        pre_delete_collection=True,
    )
    assert fresh.similarity_search("x", k=10) == []
    vector_store.engine.close()


# -- langchain-postgres's README: PostgresChatMessageHistory --------------------------------------
def _chat_snippet(sync_connection: Any) -> list[Any]:
    table_name = "chat_history"
    PostgresChatMessageHistory.create_tables(sync_connection, table_name)
    session_id = str(uuid.uuid4())
    chat_history = PostgresChatMessageHistory(
        table_name, session_id, sync_connection=sync_connection
    )
    chat_history.add_messages(
        [
            SystemMessage(content="Meow"),
            AIMessage(content="woof"),
            HumanMessage(content="bark"),
        ]
    )
    return chat_history.messages


def test_chat_history_snippet_psycopg(postgres_url: str) -> None:
    conn_info = postgres_url
    sync_connection = psycopg.connect(conn_info)
    try:
        messages = _chat_snippet(sync_connection)
        assert [(m.type, m.content) for m in messages] == [
            ("system", "Meow"),
            ("ai", "woof"),
            ("human", "bark"),
        ]
        # The same connection gives the same engine (one pool, not one per history).
        a = PostgresChatMessageHistory("chat_history", "s", sync_connection=sync_connection)
        b = PostgresChatMessageHistory("chat_history", "s", sync_connection=sync_connection)
        assert a.engine is b.engine
        assert not sync_connection.closed
    finally:
        a.engine.close()
        sync_connection.close()


def test_chat_history_snippet_sqlite3(tmp_path: Path) -> None:
    sync_connection = sqlite3.connect(tmp_path / "chat.db")  # SQLite's connection instead
    messages = _chat_snippet(sync_connection)
    assert [m.content for m in messages] == ["Meow", "woof", "bark"]
    with pytest.raises(ValueError, match="in-memory database"):
        PostgresChatMessageHistory("t", "s", sync_connection=sqlite3.connect(":memory:"))
    with pytest.raises(ValueError, match="table_name must be letters"):
        PostgresChatMessageHistory("drop table;", "s", sync_connection=sync_connection)
    with pytest.raises(ValueError, match="expected sync_connection= or async_connection="):
        PostgresChatMessageHistory("t", "s")
    sync_connection.close()


async def test_chat_history_async_connection(postgres_url: str) -> None:
    async_connection = await psycopg.AsyncConnection.connect(postgres_url)
    try:
        await PostgresChatMessageHistory.acreate_tables(async_connection, "chat_history")
        history = PostgresChatMessageHistory(
            "chat_history", "s-async", async_connection=async_connection
        )
        await history.aadd_messages([HumanMessage("hi")])
        assert [m.content for m in await history.aget_messages()] == ["hi"]
        await history.engine.aclose()
    finally:
        await async_connection.close()


# -- every public class takes a URL or a connection where it takes an engine -----------------------
def _build(cls: type, source: Any) -> Any:
    emb = DeterministicFakeEmbedding(size=8)
    special: dict[str, Any] = {
        "ChatMessageHistory": lambda: cls(source, "s1"),
        "DocumentStore": lambda: cls(source),
        "ByteStore": lambda: cls(source),
        "KeyValueStore": lambda: cls(source, "ns", user_id="u"),
        "MemoryVectorStore": lambda: cls(source, emb),
        "SummaryMemory": lambda: cls(source, FakeListChatModel(responses=["x"]), "s1"),
        "WorkingMemory": lambda: cls(source, user_id="u", session_id="s1"),
        "EpisodicMemory": lambda: cls(source, emb, user_id="u"),
        "KnowledgeBase": lambda: cls(source, emb, user_id="u"),
        "MemoryRetriever": lambda: cls(source, emb, user_id="u"),
        "SessionLog": lambda: cls(source, "s1", user_id="u"),
    }
    return special.get(cls.__name__, lambda: cls(source))()


ENGINE_CLASSES = [
    "Analytics",
    "ByteStore",
    "ChatMessageHistory",
    "CheckpointSaver",
    "DocumentStore",
    "EntityMemory",
    "EntityStore",
    "EpisodicMemory",
    "EventLog",
    "GraphMemory",
    "KeyValueStore",
    "KnowledgeBase",
    "LangGraphStore",
    "MemoryCollector",
    "MemoryMiddleware",
    "MemoryRetriever",
    "MemoryVectorStore",
    "Monitor",
    "Retention",
    "SessionLog",
    "SkillRegistry",
    "SummaryMemory",
    "WorkingMemory",
]


def test_every_class_takes_a_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    langchain_agentmem.connect(url).migrate()
    for name in ENGINE_CLASSES:
        obj = _build(getattr(langchain_agentmem, name), url)
        assert isinstance(obj.engine, Engine), name
        assert obj.engine.url == url, name
        obj.engine.close()
    # Every class in __all__ whose constructor takes an engine is in the list above.
    import inspect

    takes_engine = {
        n
        for n in langchain_agentmem.__all__
        if isinstance(getattr(langchain_agentmem, n), type)
        and "engine" in inspect.signature(getattr(langchain_agentmem, n).__init__).parameters
        and n != "Engine"
    }
    assert takes_engine == set(ENGINE_CLASSES)


def test_classes_take_a_psycopg_connection_or_pool(postgres_url: str) -> None:
    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url) as conn:
        saver = CheckpointSaver(conn)
        assert saver.engine.dialect.name == "postgres"
        saver.engine.close()
    pool = ConnectionPool(postgres_url, open=False)
    store = LangGraphStore(pool)
    assert store.engine.dialect.name == "postgres"
    history = ChatMessageHistory(
        langchain_agentmem.engine.as_engine(postgres_url, schema=schema), "s"
    )
    history.engine.migrate()
    history.add_messages([HumanMessage("hi")])
    assert [m.content for m in history.messages] == ["hi"]
    history.engine.close()
    assert "password" not in repr(store) or "***" in repr(store)
    with pytest.raises(TypeError, match="expected an Engine"):
        LangGraphStore(object())  # type: ignore[arg-type]


# -- langgraph.json factories -------------------------------------------------------------------
async def test_langgraph_json_factories(conn_string: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from langgraph.graph import START, MessagesState, StateGraph

    from langchain_agentmem import langgraph_factory
    from langchain_agentmem.engine import conn_string_url

    monkeypatch.setenv("AGENTMEM_URL", conn_string_url(conn_string))

    def respond(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"got {len(state['messages'])}")]}

    async with langgraph_factory.checkpointer() as saver, langgraph_factory.store() as store:
        assert isinstance(saver, CheckpointSaver) and isinstance(store, LangGraphStore)
        graph = (
            StateGraph(MessagesState)
            .add_node("respond", respond)
            .add_edge(START, "respond")
            .compile(checkpointer=saver, store=store)
        )
        config: Any = {"configurable": {"thread_id": "1"}}
        await graph.ainvoke({"messages": [("user", "hi")]}, config)
        await store.aput(("u", "m"), "k", {"text": "x"})
        engine = saver.engine
    if engine.dialect.name == "postgres":
        assert engine.raw_backend._pool is None and not engine.raw_backend._apools
    # A factory of one's own, with options; the data is still there.
    factory = langgraph_factory.checkpointer_factory(user_key="user_id")
    async with factory() as again:
        assert again.user_key == "user_id"
        assert (await again.aget_tuple({"configurable": {"thread_id": "1"}})) is not None
