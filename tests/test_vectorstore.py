"""MemoryVectorStore: the API on both backends, sync and async."""

from __future__ import annotations

import math

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from langchain_agentmem import Engine, MemoryVectorStore


class AxisEmbeddings(Embeddings):
    """Texts like "3" or "3 7" embed to known vectors: unit axis 3, or axes 3 and 7."""

    def __init__(self, dims: int = 8) -> None:
        self.dims = dims

    def _one(self, text: str) -> list[float]:
        v = [0.0] * self.dims
        for word in text.split():
            if word.isdigit():
                v[int(word) % self.dims] += 1.0
        if not any(v):
            v[-1] = 1.0
        return v

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


BOOKS = [
    ("a", "0", {"year": 2019, "genre": "scifi", "rating": 4.5, "tags": ["x"], "author": {"name": "Ann", "age": 40}}),
    ("b", "1", {"year": 2020, "genre": "fantasy", "rating": 3.0, "author": {"name": "bob", "age": 30}}),
    ("c", "2", {"year": 2021, "genre": "scifi", "rating": 5, "draft": True, "author": {"name": "Cid"}}),
    ("d", "3", {"year": "2022", "genre": "Scifi", "rating": None, "draft": False}),
    ("e", "4", {"year": 2022.0, "genre": "horror%_", "note": "50% off"}),
]


def _books(engine: Engine, **kw: object) -> MemoryVectorStore:
    store = MemoryVectorStore(engine, AxisEmbeddings(), collection="books", user_id="alice", **kw)  # type: ignore[arg-type]
    store.add_texts([t for _, t, _ in BOOKS], [m for _, _, m in BOOKS], ids=[i for i, _, _ in BOOKS])
    return store


FILTERS = [
    ({"genre": "scifi"}, "ac"),
    ({"genre": {"$eq": "scifi"}}, "ac"),
    ({"genre": {"$ne": "scifi"}}, "bde"),
    ({"year": 2022}, "e"),  # numbers match numbers only (2022.0 == 2022), not "2022"
    ({"year": "2022"}, "d"),
    ({"year": {"$gt": 2019}}, "bce"),
    ({"year": {"$gte": 2020, "$lt": 2022}}, "bc"),
    ({"year": {"$lte": 2019}}, "a"),
    ({"year": {"$between": [2020, 2021]}}, "bc"),
    ({"genre": {"$gt": "h"}}, "ace"),  # code point order: "Scifi" < "fantasy" < "h" < "horror" < "scifi"
    ({"rating": {"$in": [5, 3]}}, "bc"),
    ({"rating": {"$in": [4.5, None]}}, "ad"),
    ({"rating": {"$nin": [5, 3]}}, "ade"),
    ({"rating": {"$in": []}}, ""),
    ({"draft": True}, "c"),
    ({"draft": {"$ne": True}}, "abde"),
    ({"draft": {"$exists": True}}, "cd"),
    ({"draft": {"$exists": False}}, "abe"),
    ({"author.name": "bob"}, "b"),
    ({"author.age": {"$gt": 35}}, "a"),
    ({"author.name": {"$like": "%b"}}, "b"),
    ({"author.name": {"$like": "A%"}}, "a"),
    ({"author.name": {"$ilike": "B%"}}, "b"),
    ({"genre": {"$like": "horror\\%\\_"}}, "e"),
    ({"note": {"$like": "50\\%%"}}, "e"),
    ({"genre": {"$like": "S%"}}, "d"),
    ({"$or": [{"genre": "fantasy"}, {"year": {"$lt": 2020}}]}, "ab"),
    ({"$and": [{"genre": "scifi"}, {"rating": {"$gte": 5}}]}, "c"),
    ({"$not": {"genre": "scifi"}}, "bde"),
    ({"genre": "scifi", "$not": {"draft": True}}, "a"),
    ({}, "abcde"),
]


@pytest.mark.parametrize(("filter", "expected"), FILTERS)
def test_filters_same_on_both_backends(engine: Engine, filter: dict, expected: str) -> None:
    store = _books(engine)
    found = store.similarity_search("0", k=10, filter=filter)
    assert sorted(d.id for d in found) == list(expected)  # type: ignore[type-var]


async def test_filters_async(aengine: Engine) -> None:
    store = MemoryVectorStore(aengine, AxisEmbeddings(), collection="books", user_id="alice")
    await store.aadd_texts([t for _, t, _ in BOOKS], [m for _, _, m in BOOKS], ids=[i for i, _, _ in BOOKS])
    for filter, expected in FILTERS:
        found = await store.asimilarity_search("0", k=10, filter=filter)
        assert sorted(d.id for d in found) == list(expected), filter  # type: ignore[type-var]


@pytest.mark.parametrize(
    "bad",
    [
        {"year": {"$near": 1}},
        {"$nor": [{"a": 1}]},
        {"year": {"$in": 5}},
        {"year": {"$between": [1]}},
        {"year": {"$between": [1, "z"]}},
        {"year": {"$gt": None}},
        {"year": {"$gt": [1]}},
        {"year": {"$exists": "yes"}},
        {"year": {"$like": 3}},
        {"$and": []},
        {"$or": {"a": 1}},
        {"year": {}},
        {"year": [1, 2]},
        {"a..b": 1},
        {"year": float("nan")},
        "year = 1",
    ],
)
def test_malformed_filter_raises_value_error(engine: Engine, bad: object) -> None:
    store = _books(engine)
    with pytest.raises(ValueError):
        store.similarity_search("0", k=2, filter=bad)  # type: ignore[arg-type]
    empty = MemoryVectorStore(engine, AxisEmbeddings(), collection="none-yet")
    with pytest.raises(ValueError):
        empty.similarity_search("0", k=2, filter=bad)  # type: ignore[arg-type]


def test_search_order_scores_and_relevance(engine: Engine) -> None:
    store = _books(engine)
    found = store.similarity_search_with_score("1", k=3)
    assert found[0][0] == Document(id="b", page_content="1", metadata=BOOKS[1][2])
    assert found[0][1] == pytest.approx(0.0, abs=1e-6)
    assert found[1][1] == pytest.approx(1.0, abs=1e-6)  # orthogonal: cosine distance 1
    rel = store.similarity_search_with_relevance_scores("1", k=1)
    assert rel[0][1] == pytest.approx(1.0, abs=1e-6)
    by_vec = store.similarity_search_by_vector([0, 0, 1, 0, 0, 0, 0, 0], k=1)
    assert [d.id for d in by_vec] == ["c"]
    assert store.similarity_search("1", k=0) == []


@pytest.mark.parametrize("distance", ["cosine", "l2", "inner_product"])
def test_distances_match_numpy(engine: Engine, distance: str) -> None:
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(40, 6)).astype(np.float32)
    store = MemoryVectorStore(engine, AxisEmbeddings(6), collection=f"d_{distance}", distance=distance)  # type: ignore[arg-type]
    store.add_embeddings([str(i) for i in range(40)], vecs.tolist(), ids=[str(i) for i in range(40)])
    q = rng.normal(size=6).astype(np.float32)
    if distance == "cosine":
        d = 1 - vecs @ q / (np.linalg.norm(vecs, axis=1) * np.linalg.norm(q))
    elif distance == "l2":
        d = np.linalg.norm(vecs - q, axis=1)
    else:
        d = -(vecs @ q)
    expected = np.argsort(d)[:5]
    found = store.similarity_search_with_score_by_vector(q.tolist(), k=5)
    assert [doc.id for doc, _ in found] == [str(i) for i in expected]
    assert [s for _, s in found] == pytest.approx(d[expected].tolist(), rel=1e-4, abs=1e-5)
    with pytest.raises(ValueError, match="uses distance"):
        other = "l2" if distance != "l2" else "cosine"
        MemoryVectorStore(engine, AxisEmbeddings(6), collection=f"d_{distance}", distance=other).similarity_search("1")  # type: ignore[arg-type]


def test_wrong_dimension_raises_at_add_and_query(engine: Engine) -> None:
    store = _books(engine)
    with pytest.raises(ValueError, match="expected 8 dimensions, got 5"):
        store.add_embeddings(["x"], [[1.0] * 5])
    with pytest.raises(ValueError, match="expected 8 dimensions, got 3"):
        store.similarity_search_by_vector([1.0, 0.0, 0.0], k=1)
    fresh = MemoryVectorStore(engine, AxisEmbeddings(4), collection="books", user_id="bob")
    with pytest.raises(ValueError, match="expected 8 dimensions, got 4"):
        fresh.add_texts(["1"])
    with pytest.raises(ValueError, match="expected 8 dimensions, got 4"):
        fresh.similarity_search("1")
    with pytest.raises(ValueError, match="expected 3 dimensions .*got 2"):
        MemoryVectorStore(engine, AxisEmbeddings(3), collection="new").add_embeddings(["a", "b"], [[1, 2, 3], [1, 2]])
    assert len(store.similarity_search("0", k=10)) == 5  # nothing half-written


async def test_wrong_dimension_async(aengine: Engine) -> None:
    store = MemoryVectorStore(aengine, AxisEmbeddings(8), collection="books")
    await store.aadd_texts(["1"], ids=["one"])
    with pytest.raises(ValueError, match="expected 8 dimensions, got 2"):
        await store.aadd_embeddings(["x"], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="expected 8 dimensions, got 2"):
        await store.asimilarity_search_by_vector([1.0, 2.0])
    fresh = MemoryVectorStore(aengine, AxisEmbeddings(4), collection="books")
    with pytest.raises(ValueError, match="expected 8 dimensions, got 4"):
        await fresh.asimilarity_search("1")


def test_upsert_replaces_and_duplicates_in_batch_keep_last(engine: Engine) -> None:
    store = _books(engine)
    store.add_texts(["7"], [{"v": 2}], ids=["a"])
    store.add_texts(["5", "6"], [{"v": 1}, {"v": 3}], ids=["z", "z"])
    assert store.get_by_ids(["a", "z"]) == [
        Document(id="a", page_content="7", metadata={"v": 2}),
        Document(id="z", page_content="6", metadata={"v": 3}),
    ]
    assert [d.id for d in store.similarity_search("7", k=1)] == ["a"]
    assert len(store.similarity_search("0", k=100)) == 6


def test_failing_batch_writes_nothing(engine: Engine, backend: str) -> None:
    store = MemoryVectorStore(engine, AxisEmbeddings(), collection="atomic", batch_size=2)
    store.add_texts(["1"], [{"v": "old"}], ids=["keep"])
    _install_boom_trigger(engine, backend)
    texts = ["1", "2", "3", "4", "boom", "5"]
    with pytest.raises(Exception, match="boom"):
        store.add_texts(texts, [{"v": "new"}] * 6, ids=["keep", "n1", "n2", "n3", "n4", "n5"])
    assert store.get_by_ids(["keep", "n1", "n2", "n3", "n4", "n5"]) == [
        Document(id="keep", page_content="1", metadata={"v": "old"})
    ]
    with pytest.raises(ValueError, match="NaN"):
        store.add_texts(["1"], [{"v": math.nan}], ids=["keep"])
    assert store.get_by_ids(["keep"])[0].metadata == {"v": "old"}


async def test_failing_batch_writes_nothing_async(aengine: Engine, backend: str) -> None:
    store = MemoryVectorStore(aengine, AxisEmbeddings(), collection="atomic", batch_size=2)
    await store.aadd_texts(["1"], [{"v": "old"}], ids=["keep"])
    _install_boom_trigger(aengine, backend)
    with pytest.raises(Exception, match="boom"):
        await store.aadd_texts(["1", "2", "3", "boom"], ids=["keep", "n1", "n2", "n3"])
    assert await store.aget_by_ids(["keep", "n1", "n2", "n3"]) == [
        Document(id="keep", page_content="1", metadata={"v": "old"})
    ]


def _install_boom_trigger(engine: Engine, backend: str) -> None:
    with engine.transaction() as tx:
        if backend == "postgres":
            schema = engine.schema
            tx.conn.execute(
                f'CREATE FUNCTION "{schema}".boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
                "IF NEW.content = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$"
            )
            tx.conn.execute(
                f'CREATE TRIGGER boom BEFORE INSERT OR UPDATE ON "{schema}".vectors '
                f'FOR EACH ROW EXECUTE FUNCTION "{schema}".boom()'
            )
        else:
            tx.conn.execute(
                "CREATE TRIGGER boom BEFORE INSERT ON vectors WHEN new.content = 'boom' "
                "BEGIN SELECT RAISE(ABORT, 'boom'); END"
            )


def test_scoped_to_user_and_collection(engine: Engine) -> None:
    emb = AxisEmbeddings()
    alice = MemoryVectorStore(engine, emb, collection="notes", user_id="alice")
    bob = MemoryVectorStore(engine, emb, collection="notes", user_id="bob")
    alice_other = MemoryVectorStore(engine, emb, collection="other", user_id="alice")
    alice.add_texts(["1", "2"], ids=["same", "a2"])
    bob.add_texts(["1"], ids=["same"])
    alice_other.add_texts(["1"], ids=["same"])
    assert [d.id for d in bob.similarity_search("2", k=5)] == ["same"]
    assert sorted(d.id for d in alice.similarity_search("2", k=5)) == ["a2", "same"]  # type: ignore[type-var]
    bob.delete(filter={})
    assert bob.similarity_search("1") == []
    assert len(alice.similarity_search("1")) == 2
    alice.delete(["same"])
    assert [d.id for d in alice.similarity_search("1")] == ["a2"]
    assert [d.id for d in alice_other.similarity_search("1")] == ["same"]


def test_delete_by_filter_and_ids(engine: Engine) -> None:
    store = _books(engine)
    store.delete(filter={"genre": "scifi"})
    assert sorted(d.id for d in store.similarity_search("0", k=10)) == ["b", "d", "e"]  # type: ignore[type-var]
    store.delete(["b", "d"], filter={"genre": "fantasy"})  # both: only b matches
    assert sorted(d.id for d in store.similarity_search("0", k=10)) == ["d", "e"]  # type: ignore[type-var]
    with pytest.raises(ValueError, match="needs ids"):
        store.delete()
    with pytest.raises(ValueError, match="unknown filter operator"):
        store.delete(filter={"x": {"$bad": 1}})


async def test_async_api(aengine: Engine) -> None:
    store = await MemoryVectorStore.afrom_texts(
        ["0", "1", "2"], AxisEmbeddings(), [{"n": 0}, {"n": 1}, {"n": 2}], ids=["x", "y", "z"], engine=aengine, user_id="u"
    )
    assert [d.id for d in await store.asimilarity_search("1", k=1)] == ["y"]
    scored = await store.asimilarity_search_with_score("1", k=1, filter={"n": {"$ne": 1}})
    assert scored[0][1] == pytest.approx(1.0, abs=1e-6)
    rel = await store.asimilarity_search_with_relevance_scores("2", k=1)
    assert rel[0][0].id == "z" and rel[0][1] == pytest.approx(1.0, abs=1e-6)
    assert [d.id for d in await store.asimilarity_search_by_vector([0, 0, 1, 0, 0, 0, 0, 0], k=1)] == ["z"]
    mmr = await store.amax_marginal_relevance_search("1", k=2, fetch_k=3)
    assert mmr[0].id == "y" and len(mmr) == 2
    mmr_v = await store.amax_marginal_relevance_search_by_vector([0, 1, 0, 0, 0, 0, 0, 0], k=1)
    assert [d.id for d in mmr_v] == ["y"]
    await store.aadd_documents([Document(page_content="3", metadata={"n": 3}, id="w")])
    assert [d.id for d in await store.aget_by_ids(["w", "missing", "x"])] == ["w", "x"]
    await store.adelete(["w"])
    await store.adelete(filter={"n": {"$gte": 2}})
    assert sorted(d.id for d in await store.asimilarity_search("0", k=10)) == ["x", "y"]  # type: ignore[type-var]
    retriever = store.as_retriever(search_kwargs={"k": 1})
    assert [d.id for d in await retriever.ainvoke("1")] == ["y"]
    hybrid = await store.ahybrid_search("1", k=1)
    assert [d.id for d in hybrid] == ["y"]


def test_sync_api_misc(engine: Engine) -> None:
    store = MemoryVectorStore.from_texts(["0", "1", "2"], AxisEmbeddings(), ids=["x", "y", "z"], engine=engine)
    assert [d.id for d in store.as_retriever(search_kwargs={"k": 2}).invoke("2")][0] == "z"
    mmr = store.max_marginal_relevance_search("0 1", k=2, fetch_k=3, lambda_mult=0.5)
    assert sorted(d.id for d in mmr) == ["x", "y"]  # type: ignore[type-var]
    assert store.get_by_ids([]) == []
    with pytest.raises(TypeError, match="engine="):
        MemoryVectorStore.from_texts(["a"], AxisEmbeddings())
    with pytest.raises(ValueError, match="unknown distance"):
        MemoryVectorStore(engine, AxisEmbeddings(), distance="dot")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected 3 metadatas"):
        store.add_texts(["a", "b", "c"], [{}])
    with pytest.raises(ValueError, match="k must be"):
        store.similarity_search("1", k=-1)


def test_exact_round_trip_of_any_text(engine: Engine) -> None:
    store = MemoryVectorStore(engine, AxisEmbeddings(), user_id="u\x00\ud800")
    weird = "nul\x00 and \ud800 lone, emoji 🧠 3"
    meta = {"k\x00": ["v\x00", {"deep": "\udfff"}], "plain": 1}
    store.add_texts([weird, "plain"], [meta, {"a": "b"}], ids=["id\x00\\", "p"])
    got = store.get_by_ids(["id\x00\\", "p"])
    assert got == [Document(id="id\x00\\", page_content=weird, metadata=meta), Document(id="p", page_content="plain", metadata={"a": "b"})]
    assert store.similarity_search(weird, k=1)[0].page_content == weird


def test_hybrid_search_finds_keyword_matches(engine: Engine) -> None:
    store = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=16), collection="hybrid")
    texts = [f"note number {i} about the weather" for i in range(30)] + ["the invoice zx81 is overdue"]
    store.add_texts(texts, [{"i": i} for i in range(31)], ids=[str(i) for i in range(31)])
    found = store.hybrid_search_with_score("invoice ZX81?", k=3)
    assert found[0][0].id == "30"
    assert found[0][1] > found[1][1]
    assert store.hybrid_search("invoice", k=3, filter={"i": {"$lt": 30}})[0].id != "30"
    assert store.hybrid_search("!!!", k=2)  # no words: dense results only
    with pytest.raises(ValueError, match="rrf_k"):
        store.hybrid_search("x", rrf_k=0)


def test_collections_of_different_sizes_side_by_side(engine: Engine, backend: str) -> None:
    small = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=3), collection="small")
    large = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=3072), collection="large")
    small.add_texts(["a", "b"], ids=["a", "b"])
    large.add_texts([f"t{i}" for i in range(20)], ids=[f"t{i}" for i in range(20)])
    assert [d.id for d in small.similarity_search("a", k=1)] == ["a"]
    # Force the index path: halfvec HNSW index for 3,072 dimensions.
    indexed = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=3072), collection="large", exact_search_threshold=0)
    assert [d.id for d in indexed.similarity_search("t7", k=1)] == ["t7"]
    if backend == "postgres":
        with engine.transaction(readonly=True) as tx:
            rows = tx.fetchall(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = ? AND tablename = 'vectors' AND indexname LIKE 'vectors_c%%'",
                [engine.schema],
            )
        defs = " ".join(r[0] for r in rows)
        assert "halfvec(3072)" in defs and "vector(3)" in defs and "m='16'" in defs


def test_hnsw_settings_recorded(engine: Engine) -> None:
    store = MemoryVectorStore(engine, AxisEmbeddings(), collection="tuned", m=8, ef_construction=32, ef_search=100)
    store.add_texts(["1"])
    with engine.transaction(readonly=True) as tx:
        row = tx.fetchone("SELECT dims, distance, m, ef_construction FROM {vector_collections} WHERE name = ?", ["tuned"])
    assert row == (8, "cosine", 8, 32)
    assert store.similarity_search("1", k=1, ef_search=200)
    with pytest.raises(ValueError, match="ef_search"):
        store.similarity_search("1", ef_search=0)


def _has_hnsw(engine: Engine, backend: str) -> bool:
    if backend != "postgres":
        return False
    with engine.transaction(readonly=True) as tx:
        row = tx.fetchone(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = ? AND indexname LIKE 'vectors_c%%_hnsw'",
            [engine.schema],
        )
    return bool(row and row[0])


def test_deferred_index_then_create_index(engine: Engine, backend: str) -> None:
    store = MemoryVectorStore(engine, AxisEmbeddings(), collection="bulk", defer_index=True, exact_search_threshold=0)
    store.add_texts([str(i % 8) for i in range(50)], [{"i": i} for i in range(50)], ids=[str(i) for i in range(50)])
    assert not _has_hnsw(engine, backend)
    before = [d.id for d in store.similarity_search("3", k=5, filter={"i": {"$lt": 30}})]
    assert store.create_index() is (backend == "postgres")
    assert _has_hnsw(engine, backend) is (backend == "postgres")
    assert store.create_index() is (backend == "postgres")  # idempotent
    after = [d.id for d in store.similarity_search("3", k=5, filter={"i": {"$lt": 30}})]
    for found in (before, after):
        assert len(found) == 5
        assert sorted(found[:4]) == ["11", "19", "27", "3"]  # type: ignore[type-var]


async def test_deferred_index_async(aengine: Engine, backend: str) -> None:
    store = MemoryVectorStore(aengine, AxisEmbeddings(), collection="bulk", defer_index=True)
    assert await store.acreate_index() is False  # no collection yet
    await store.aadd_texts(["1", "2"], ids=["a", "b"])
    assert await store.acreate_index() is (backend == "postgres")
    assert [d.id for d in await store.asimilarity_search("2", k=1)] == ["b"]
