"""Drop-in for LangGraph's and langchain-postgres' entry points: the documented snippets with
only the import line changed, ``+psycopg`` URLs, SqliteSaver's connection strings, the
store's ``distance_type`` / ``ann_index_config``, and LangChain's indexing API ``index()``;
on both backends (a fresh Postgres database per test, a SQLite file)."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
import pytest
from langchain_core.documents import Document
from langchain_core.indexing import InMemoryRecordManager, aindex, index
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import START, MessagesState, StateGraph
from test_store import HashedEmbeddings

from langchain_agentmem import CheckpointSaver, LangGraphStore, MemoryVectorStore, connect
from langchain_agentmem import CheckpointSaver as PostgresSaver
from langchain_agentmem import LangGraphStore as PostgresStore


@pytest.fixture
def conn_string(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """What a user passes to ``from_conn_string``: a fresh Postgres database's URL in the
    SQLAlchemy ``+psycopg`` spelling, or a bare SQLite file path (SqliteSaver's form)."""
    if backend == "sqlite":
        yield str(tmp_path / "checkpoints.sqlite")
        return
    base = request.getfixturevalue("postgres_url")
    name = "dropin_" + uuid.uuid4().hex[:10]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # a generated identifier
    parts = urlsplit(base)
    yield urlunsplit(("postgresql+psycopg", parts.netloc, "/" + name, parts.query, ""))
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _model() -> FakeMessagesListChatModel:
    return FakeMessagesListChatModel(
        responses=[AIMessage("Hi Bob!"), AIMessage("Your name is Bob.")]
    )


# -- LangGraph's "add memory" snippets (persistence how-to), import line changed only ----------
def test_postgres_saver_snippet(conn_string: str) -> None:
    DB_URI = conn_string  # noqa: N806 (the docs' name)
    model = _model()
    with PostgresSaver.from_conn_string(DB_URI) as checkpointer:
        checkpointer.setup()

        def call_model(state: MessagesState) -> dict[str, Any]:
            response = model.invoke(state["messages"])
            return {"messages": response}

        builder = StateGraph(MessagesState)
        builder.add_node(call_model)
        builder.add_edge(START, "call_model")

        graph = builder.compile(checkpointer=checkpointer)

        config = {"configurable": {"thread_id": "1"}}
        for _chunk in graph.stream(
            {"messages": [{"role": "user", "content": "hi! I'm bob"}]},
            config,  # type: ignore[arg-type]
            stream_mode="values",
        ):
            pass
        out = graph.invoke(
            {"messages": [{"role": "user", "content": "what's my name?"}]},
            config,  # type: ignore[arg-type]
        )
        assert [m.content for m in out["messages"]] == [
            "hi! I'm bob",
            "Hi Bob!",
            "what's my name?",
            "Your name is Bob.",
        ]
        engine = checkpointer.engine
    # The engine the block opened is closed with it; a new saver on the same database
    # sees the thread (setup again is a no-op).
    if engine.dialect.name == "postgres":
        assert engine.raw_backend._pool is None  # closed by the block's exit
    with PostgresSaver.from_conn_string(DB_URI) as again:
        again.setup()
        state = again.get_tuple({"configurable": {"thread_id": "1"}})
        assert state is not None
        assert len(state.checkpoint["channel_values"]["messages"]) == 4


async def test_async_postgres_saver_snippet(conn_string: str) -> None:
    # AsyncPostgresSaver's snippet; our one class names the async forms with an ``a``:
    # ``afrom_conn_string`` and ``asetup`` (the only other difference).
    DB_URI = conn_string  # noqa: N806
    model = _model()
    async with PostgresSaver.afrom_conn_string(DB_URI) as checkpointer:
        await checkpointer.asetup()
        await checkpointer.asetup()  # idempotent

        async def call_model(state: MessagesState) -> dict[str, Any]:
            response = await model.ainvoke(state["messages"])
            return {"messages": response}

        builder = StateGraph(MessagesState)
        builder.add_node(call_model)
        builder.add_edge(START, "call_model")
        graph = builder.compile(checkpointer=checkpointer)

        config = {"configurable": {"thread_id": "1"}}
        async for _chunk in graph.astream(
            {"messages": [{"role": "user", "content": "hi! I'm bob"}]},
            config,  # type: ignore[arg-type]
            stream_mode="values",
        ):
            pass
        out = await graph.ainvoke(
            {"messages": [{"role": "user", "content": "what's my name?"}]},
            config,  # type: ignore[arg-type]
        )
        assert out["messages"][-1].content == "Your name is Bob."
        state = await graph.aget_state(config)  # type: ignore[arg-type]
        assert len(state.values["messages"]) == 4
    # AsyncPostgresSaver's own spelling, ``async with X.from_conn_string(...)``, works too.
    async with PostgresSaver.from_conn_string(DB_URI) as again:
        await again.asetup()
        assert await again.alist_threads() == ["1"]


def test_postgres_store_snippet(conn_string: str) -> None:
    DB_URI = conn_string  # noqa: N806
    with PostgresStore.from_conn_string(
        DB_URI, index={"dims": 32, "embed": HashedEmbeddings(32), "fields": ["text"]}
    ) as store:
        store.setup()
        namespace = ("1", "memories")
        store.put(namespace, str(uuid.uuid4()), {"text": "I love pizza"})
        store.put(namespace, str(uuid.uuid4()), {"text": "I am a plumber"})
        items = store.search(namespace, query="I'm hungry, pizza please", limit=1)
        assert [i.value["text"] for i in items] == ["I love pizza"]
        assert items[0].score is not None


async def test_async_store_snippet(conn_string: str) -> None:
    async with PostgresStore.afrom_conn_string(
        conn_string, index={"dims": 32, "embed": HashedEmbeddings(32)}
    ) as store:
        await store.asetup()
        await store.aput(("u", "m"), "a", {"text": "likes green tea"})
        await store.aput(("u", "m"), "b", {"text": "drives a red car"})
        hits = await store.asearch(("u",), query="green tea", limit=1)
        assert [h.key for h in hits] == ["a"]


def test_sqlite_saver_memory_conn_string() -> None:
    # SqliteSaver.from_conn_string(":memory:")
    with CheckpointSaver.from_conn_string(":memory:") as saver:
        assert saver.engine.dialect.name == "sqlite"
        saver.setup()
        assert saver.list_threads() == []
    with LangGraphStore.from_conn_string("sqlite://") as store:
        store.setup()
        assert store.search(("x",)) == []


def test_from_conn_string_rejects_bad_strings_and_reuse() -> None:
    opening = CheckpointSaver.from_conn_string(":memory:")
    with opening:
        pass
    with pytest.raises(RuntimeError, match="entered once"):
        with opening:
            pass
    with pytest.raises(ValueError, match="key=value connection strings are not supported"):
        with CheckpointSaver.from_conn_string("host=localhost dbname=x"):
            pass
    with pytest.raises(ValueError, match="unsupported database URL"):
        with LangGraphStore.from_conn_string("mysql://x"):
            pass
    with pytest.raises(TypeError):  # the constructor's options, checked
        with CheckpointSaver.from_conn_string(":memory:", pipeline=True):
            pass


def test_psycopg_urls(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    for scheme in ("postgresql+psycopg", "postgres+psycopg", "postgres"):
        url = urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))
        engine = connect(url, schema="t_" + uuid.uuid4().hex[:12])
        try:
            assert engine.dialect.name == "postgres"
            assert engine.migrate()
            assert engine.schema_version() > 0
        finally:
            engine.close()
    with pytest.raises(ValueError, match="unsupported database URL"):
        connect("postgresql+asyncpg://u@h/db")
    with pytest.raises(TypeError, match="max_pool"):
        connect("sqlite://", max_pool=3)


# -- the store's distance_type and ann_index_config ------------------------------------------------
class FixedEmbeddings(HashedEmbeddings):
    """A text names its vector (``"v0"``, or an item ``{"v": "v0"}`` embedded whole);
    not normalized, so that l2, inner product and cosine rank differently."""

    VECTORS = {
        "v0": [1.0, 0.0, 0.0, 0.0],
        "v1": [3.0, 0.5, 0.0, 0.0],
        "v2": [0.6, 0.8, 0.0, 0.0],
        "q": [0.9, 0.1, 0.0, 0.0],
    }

    def __init__(self) -> None:
        super().__init__(4)

    def _one(self, text: str) -> list[float]:
        (name,) = re.findall(r"v\d|q", text)
        return self.VECTORS[name]


def _expected(distance: str) -> list[tuple[str, float]]:
    q = np.array(FixedEmbeddings.VECTORS["q"])
    out = []
    for key in ("v0", "v1", "v2"):
        v = np.array(FixedEmbeddings.VECTORS[key])
        if distance == "l2":
            score = -float(np.linalg.norm(v - q))
        elif distance == "inner_product":
            score = float(v @ q)
        else:
            score = float(v @ q / (np.linalg.norm(v) * np.linalg.norm(q)))
        out.append((key, score))
    return sorted(out, key=lambda kv: -kv[1])


@pytest.mark.parametrize("distance", ["cosine", "l2", "inner_product"])
def test_store_distance_type(engine: Any, distance: str) -> None:
    store = LangGraphStore(
        engine,
        index={"dims": 4, "embed": FixedEmbeddings(), "distance_type": distance},  # type: ignore[typeddict-unknown-key]
    )
    for key in ("v0", "v1", "v2"):
        store.put(("d",), key, {"v": key})
    hits = store.search(("d",), query="q", limit=3)
    got = [(h.key, h.score) for h in hits]
    want = _expected(distance)
    assert [k for k, _ in got] == [k for k, _ in want]
    for (_, s), (_, w) in zip(got, want, strict=True):
        assert s is not None and math.isclose(s, w, rel_tol=1e-5, abs_tol=1e-6)


async def test_store_distance_type_async(aengine: Any) -> None:
    store = LangGraphStore(
        aengine,
        index={"dims": 4, "embed": FixedEmbeddings(), "distance_type": "l2"},  # type: ignore[typeddict-unknown-key]
    )
    for key in ("v0", "v1", "v2"):
        await store.aput(("d",), key, {"v": key})
    hits = await store.asearch(("d",), query="q", limit=3)
    assert [h.key for h in hits] == [k for k, _ in _expected("l2")]


def test_store_distance_scores_match_postgres_store(postgres_url: str) -> None:
    """The anchor itself, on the same vectors: the same order and the same scores."""
    from langgraph.store.postgres import PostgresStore as AnchorStore

    for distance in ("l2", "inner_product", "cosine"):
        index = {"dims": 4, "embed": FixedEmbeddings(), "distance_type": distance}
        with AnchorStore.from_conn_string(postgres_url, index=index) as anchor:  # type: ignore[arg-type]
            anchor.setup()
            ns = ("anchor", uuid.uuid4().hex)
            for key in ("v0", "v1", "v2"):
                anchor.put(ns, key, {"v": key})
            theirs = [(h.key, h.score) for h in anchor.search(ns, query="q", limit=3)]
        engine = connect(postgres_url, schema="t_" + uuid.uuid4().hex[:12])
        try:
            engine.migrate()
            ours_store = LangGraphStore(engine, index=index)  # type: ignore[arg-type]
            for key in ("v0", "v1", "v2"):
                ours_store.put(("d",), key, {"v": key})
            ours = [(h.key, h.score) for h in ours_store.search(("d",), query="q", limit=3)]
        finally:
            engine.close()
        assert [k for k, _ in ours] == [k for k, _ in theirs], distance
        for (_, a), (_, b) in zip(ours, theirs, strict=True):
            assert a is not None and b is not None
            assert math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6), distance


def test_store_ann_index_config(engine: Any, backend: str) -> None:
    index = {
        "dims": 4,
        "embed": FixedEmbeddings(),
        "distance_type": "l2",
        "ann_index_config": {"kind": "hnsw", "vector_type": "vector", "m": 8},
    }
    store = LangGraphStore(engine, index=index)  # type: ignore[arg-type]
    store.put(("d",), "v0", {"v": "v0"})  # the first embedded put builds the index
    assert store.create_index() is (backend == "postgres")
    if backend == "postgres":
        with engine.transaction(readonly=True) as tx:
            row = tx.fetchone(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = ? AND indexname = ?",
                (engine.schema, "store_vectors_d4_l2_hnsw"),
            )
        assert row is not None
        assert "vector_l2_ops" in row[0] and "m='8'" in row[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"distance_type": "hamming"}, "distance_type must be one of"),
        ({"ann_index_config": {"kind": "ivfflat", "nlist": 4}}, "kind 'ivfflat' is not supported"),
        (
            {"ann_index_config": {"vector_type": "halfvec"}},
            "vector_type 'halfvec' is not supported",
        ),
        ({"ann_index_config": {"lists": 4}}, "unknown ann_index_config key 'lists'"),
        ({"ann_index_config": {"m": 0}}, "m must be a positive int"),
        ({"text_fields": ["x"]}, "unknown index key"),
    ],
)
def test_store_index_options_rejected(engine: Any, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LangGraphStore(engine, index={"dims": 4, "embed": FixedEmbeddings(), **extra})  # type: ignore[typeddict-item]


def test_store_ann_index_config_and_hnsw_conflict(engine: Any) -> None:
    with pytest.raises(ValueError, match="not both"):
        LangGraphStore(
            engine,
            index={"dims": 4, "embed": FixedEmbeddings(), "ann_index_config": {"m": 8}},  # type: ignore[typeddict-unknown-key]
            hnsw={"m": 16},
        )


# -- LangChain's indexing API ----------------------------------------------------------------------
def _docs(*pairs: tuple[str, str]) -> list[Document]:
    return [Document(page_content=text, metadata={"source": src}) for text, src in pairs]


def test_indexing_api(engine: Any) -> None:
    store = MemoryVectorStore(engine, HashedEmbeddings(16))
    manager = InMemoryRecordManager(namespace="agentmem/test")
    manager.create_schema()
    docs = _docs(("kitty", "a"), ("doggy", "a"), ("birdy", "b"))

    first = index(
        docs,
        manager,
        store,
        cleanup="incremental",
        source_id_key="source",
        batch_size=2,
        key_encoder="sha256",
    )
    assert first == {"num_added": 3, "num_updated": 0, "num_skipped": 0, "num_deleted": 0}
    again = index(
        docs, manager, store, cleanup="incremental", source_id_key="source", key_encoder="sha256"
    )
    assert again == {"num_added": 0, "num_updated": 0, "num_skipped": 3, "num_deleted": 0}
    # Source "a" changes: its old document goes, the unchanged one stays.
    changed = _docs(("kitty", "a"), ("puppy", "a"))
    result = index(
        changed, manager, store, cleanup="incremental", source_id_key="source", key_encoder="sha256"
    )
    assert result == {"num_added": 1, "num_updated": 0, "num_skipped": 1, "num_deleted": 1}
    texts = sorted(d.page_content for d in store.similarity_search("x", k=10))
    assert texts == ["birdy", "kitty", "puppy"]
    # Full cleanup: what is not in this run goes.
    result = index(_docs(("kitty", "a")), manager, store, cleanup="full", key_encoder="sha256")
    assert result == {"num_added": 0, "num_updated": 0, "num_skipped": 1, "num_deleted": 2}
    assert [d.page_content for d in store.similarity_search("x", k=10)] == ["kitty"]


async def test_indexing_api_async(aengine: Any) -> None:
    store = MemoryVectorStore(aengine, HashedEmbeddings(16))
    manager = InMemoryRecordManager(namespace="agentmem/atest")
    await manager.acreate_schema()
    docs = _docs(("kitty", "a"), ("doggy", "a"), ("birdy", "b"))
    first = await aindex(
        docs, manager, store, cleanup="incremental", source_id_key="source", key_encoder="sha256"
    )
    assert first["num_added"] == 3
    changed = _docs(("kitty", "a"))
    result = await aindex(
        changed, manager, store, cleanup="incremental", source_id_key="source", key_encoder="sha256"
    )
    assert result == {"num_added": 0, "num_updated": 0, "num_skipped": 1, "num_deleted": 1}
    result = await aindex([], manager, store, cleanup="full", key_encoder="sha256")
    assert result["num_deleted"] == 2
    assert await store.asimilarity_search("x", k=10) == []


def test_add_texts_batch_size(engine: Any) -> None:
    class Counting(HashedEmbeddings):
        calls: list[int] = []

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            self.calls.append(len(texts))
            return super().embed_documents(texts)

    emb = Counting(8)
    store = MemoryVectorStore(engine, emb)
    ids = store.add_texts(["a", "b", "c", "d", "e"], ids=list("abcde"), batch_size=2)
    assert ids == list("abcde")
    assert emb.calls == [2, 2, 1]
    assert len(store.get_by_ids(ids)) == 5
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        store.add_texts(["a"], batch_size=0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        store.add_texts(["a"], bogus=1)
