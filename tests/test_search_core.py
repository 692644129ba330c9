"""The one vector index and the one filter compiler, through the public API: concurrency
(rows locked in key order), filter limits, exact numbers, collection names, and the
LangGraph store searching large namespaces through HNSW. Both backends, sync and async."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langgraph.store.base import PutOp

from langchain_agentmem import Engine, LangGraphStore, MemoryVectorStore
from langchain_agentmem._search.filters import MAX_DEPTH


class UnitEmbeddings(Embeddings):
    """A fixed random unit vector per text (seeded by the text)."""

    def __init__(self, dims: int = 16) -> None:
        self.dims = dims

    def _one(self, text: str) -> list[float]:
        import hashlib

        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
        v = np.random.default_rng(seed).standard_normal(self.dims)
        return (v / np.linalg.norm(v)).tolist()  # type: ignore[no-any-return]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def _threads(n: int, work: Any) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:  # collected and asserted on
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


# -- deadlocks: rows written in key order ------------------------------------------------


def test_concurrent_add_texts_with_the_same_ids_do_not_deadlock(engine: Engine) -> None:
    emb = DeterministicFakeEmbedding(size=8)
    MemoryVectorStore(engine, emb, user_id="u").add_texts(["seed"], ids=["seed"])
    ids = [f"id{i:03}" for i in range(60)]

    def work(i: int) -> None:
        store = MemoryVectorStore(engine, emb, user_id="u")
        rng = random.Random(i)
        for _ in range(6):
            order = ids[:]
            rng.shuffle(order)
            store.add_texts([f"text {x}" for x in order], ids=order)

    assert _threads(8, work) == []
    got = MemoryVectorStore(engine, emb, user_id="u").get_by_ids(ids)
    assert sorted(d.id for d in got) == ids  # type: ignore[type-var]


async def test_concurrent_aadd_texts_with_the_same_ids_do_not_deadlock(aengine: Engine) -> None:
    emb = DeterministicFakeEmbedding(size=8)
    await MemoryVectorStore(aengine, emb, user_id="u").aadd_texts(["seed"], ids=["seed"])
    ids = [f"id{i:03}" for i in range(60)]

    async def work(i: int) -> None:
        store = MemoryVectorStore(aengine, emb, user_id="u")
        rng = random.Random(i)
        for _ in range(6):
            order = ids[:]
            rng.shuffle(order)
            await store.aadd_texts([f"text {x}" for x in order], ids=order)

    await asyncio.gather(*(work(i) for i in range(8)))
    got = await MemoryVectorStore(aengine, emb, user_id="u").aget_by_ids(ids)
    assert sorted(d.id for d in got) == ids  # type: ignore[type-var]


def _batch(rng: random.Random, keys: list[str], round_: int) -> list[PutOp]:
    order = keys[:]
    rng.shuffle(order)
    return [
        PutOp(("ns",), k, None if (round_ + j) % 7 == 0 else {"text": k, "r": round_})
        for j, k in enumerate(order)
    ]


def test_concurrent_store_batch_puts_do_not_deadlock(engine: Engine) -> None:
    keys = [f"k{i:03}" for i in range(60)]

    def work(i: int) -> None:
        store = LangGraphStore(engine, user_id="u")
        rng = random.Random(i)
        for r in range(6):
            store.batch(_batch(rng, keys, r))

    assert _threads(8, work) == []


async def test_concurrent_store_abatch_puts_do_not_deadlock(aengine: Engine) -> None:
    keys = [f"k{i:03}" for i in range(60)]

    async def work(i: int) -> None:
        store = LangGraphStore(aengine, user_id="u")
        rng = random.Random(i)
        for r in range(6):
            await store.abatch(_batch(rng, keys, r))

    await asyncio.gather(*(work(i) for i in range(8)))


# -- filter limits ---------------------------------------------------------------------------


def _numbers(engine: Engine) -> MemoryVectorStore:
    store = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=8), user_id="n")
    values = {"below": -(2**63) - 1, "min": -(2**63), "zero": 0, "max": 2**63 - 1, "above": 2**63}
    store.add_texts(list(values), [{"n": v} for v in values.values()], ids=list(values))
    return store


def _ids(store: MemoryVectorStore, flt: dict[str, Any]) -> list[str]:
    return sorted(d.id or "" for d in store.similarity_search("x", k=20, filter=flt))


def test_numbers_beyond_64_bits_compare_exactly_in_metadata_filters(engine: Engine) -> None:
    store = _numbers(engine)
    assert _ids(store, {"n": {"$lt": -(2**63)}}) == ["below"]
    assert _ids(store, {"n": {"$lte": -(2**63)}}) == ["below", "min"]
    assert _ids(store, {"n": {"$gt": 2**63 - 1}}) == ["above"]
    assert _ids(store, {"n": -(2**63)}) == ["min"]
    assert _ids(store, {"n": {"$gte": 9.2e18}}) == ["above", "max"]
    # a float stands for its shortest decimal: 2.0**63 is 9223372036854776000
    assert _ids(store, {"n": {"$gte": 2.0**63}}) == []
    assert _ids(store, {"n": {"$ne": 2**63 - 1}}) == ["above", "below", "min", "zero"]


def test_store_filters_compare_numbers_beyond_64_bits_exactly(engine: Engine) -> None:
    store = LangGraphStore(engine)
    for key, n in {"below": -(2**63) - 1, "min": -(2**63), "above": 2**64}.items():
        store.put(("f",), key, {"n": n})

    def keys(flt: dict[str, Any]) -> list[str]:
        return sorted(i.key for i in store.search(("f",), filter=flt))

    assert keys({"n": {"$lt": -(2**63)}}) == ["below"]
    assert keys({"n": {"$gt": 0}}) == ["above"]
    assert keys({"n": -(2**63)}) == ["min"]


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        ({"a\x00b": 1}, "NUL"),
        ({"a": {"$gt": 2**64}}, "2\\*\\*63"),
        ({"a": {"$lt": -(2**63) - 1}}, "2\\*\\*63"),
        ({"a\ud800": 1}, "surrogate"),
    ],
)
def test_filters_beyond_the_limits_raise_value_error(
    engine: Engine, flt: dict[str, Any], message: str
) -> None:
    store = _numbers(engine)
    with pytest.raises(ValueError, match=message):
        store.similarity_search("x", k=3, filter=flt)
    lg = LangGraphStore(engine)
    lg.put(("f",), "k", {"a": 1})
    with pytest.raises(ValueError, match=message):
        lg.search(("f",), filter=flt)


def _nested(depth: int) -> dict[str, Any]:
    flt: dict[str, Any] = {"n": {"$gte": 0}}
    for i in range(depth - 1):
        flt = {"$not": flt} if i % 2 else {"$and": [flt]}
    return flt


def test_nesting_up_to_the_limit_works_and_beyond_raises(engine: Engine) -> None:
    store = _numbers(engine)
    base = _ids(store, _nested(1))
    negated = (MAX_DEPTH - 1) // 2 % 2 == 1  # how many $not the nesting holds, mod 2
    everything = ["above", "below", "max", "min", "zero"]
    expected = [i for i in everything if i not in base] if negated else base
    assert _ids(store, _nested(MAX_DEPTH)) == expected
    for depth in (MAX_DEPTH + 1, 200, 1000):
        with pytest.raises(ValueError, match=f"at most {MAX_DEPTH}"):
            _ids(store, _nested(depth))
    lg = LangGraphStore(engine)
    lg.put(("f",), "k", {"a": {"b": 1}})
    deep: dict[str, Any] = {"b": 1}
    for _ in range(MAX_DEPTH + 1):
        deep = {"a": deep}
    with pytest.raises(ValueError, match=f"at most {MAX_DEPTH}"):
        lg.search(("f",), filter=deep)


async def test_filter_limits_async(aengine: Engine) -> None:
    store = MemoryVectorStore(aengine, DeterministicFakeEmbedding(size=8), user_id="n")
    await store.aadd_texts(["b", "m"], [{"n": -(2**63) - 1}, {"n": -(2**63)}], ids=["b", "m"])
    got = await store.asimilarity_search("x", k=5, filter={"n": {"$lt": -(2**63)}})
    assert [d.id for d in got] == ["b"]
    with pytest.raises(ValueError, match="NUL"):
        await store.asimilarity_search("x", k=5, filter={"\x00": 1})
    with pytest.raises(ValueError, match="2\\*\\*63"):
        await LangGraphStore(aengine).asearch(("f",), filter={"a": 2**64})


# -- exact numbers in vector metadata -------------------------------------------------------


NUMBERS = {"neg_zero": -0.0, "huge": 1e308, "big": 1e20, "tiny": 1.5e-7, "one": 1.0, "int": 7}


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and repr(a) == repr(b)


def test_metadata_numbers_round_trip_exactly(engine: Engine) -> None:
    store = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=8))
    store.add_texts(["a"], [{**NUMBERS, "nested": [NUMBERS]}], ids=["a"])
    for doc in (store.get_by_ids(["a"])[0], store.similarity_search("a", k=1)[0]):
        for key, value in NUMBERS.items():
            assert _same(doc.metadata[key], value), (key, doc.metadata[key])
            assert _same(doc.metadata["nested"][0][key], value)


async def test_metadata_numbers_round_trip_exactly_async(aengine: Engine) -> None:
    store = MemoryVectorStore(aengine, DeterministicFakeEmbedding(size=8))
    await store.aadd_texts(["a"], [NUMBERS], ids=["a"])
    doc = (await store.aget_by_ids(["a"]))[0]
    assert all(_same(doc.metadata[k], v) for k, v in NUMBERS.items())
    # and the search columns still filter them as numbers
    got = await store.asimilarity_search("a", k=1, filter={"big": {"$gt": 1e19}})
    assert [d.id for d in got] == ["a"]


# -- collection names -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a\x00b", "x\ud800"])
def test_collection_names_with_nul_or_lone_surrogates_are_refused(
    engine: Engine, name: str
) -> None:
    with pytest.raises(ValueError, match="NUL or lone surrogates"):
        MemoryVectorStore(engine, DeterministicFakeEmbedding(size=8), collection=name)


def test_collection_names_are_data(engine: Engine) -> None:
    name = "Wörter 'und' \"Sätze\"; DROP TABLE x; \\ 😀"
    store = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=8), collection=name)
    store.add_texts(["a"], ids=["a"])
    again = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=8), collection=name)
    assert [d.id for d in again.get_by_ids(["a"])] == ["a"]


# -- the LangGraph store through the vector index --------------------------------------------


def _items(n: int) -> list[tuple[tuple[str, ...], str, dict[str, Any]]]:
    return [
        (("big", "mem"), f"k{i:04}", {"text": f"memory {i}", "i": i, "tag": "x" * (i % 3)})
        for i in range(n)
    ]


def _truth(
    emb: UnitEmbeddings, items: list[Any], query: str, k: int, keep: Any = None
) -> list[str]:
    q = np.asarray(emb.embed_query(query))
    scored = sorted(
        (-float(q @ np.asarray(emb.embed_query(v["text"]))), key)
        for _, key, v in items
        if keep is None or keep(v)
    )
    return [key for _, key in scored[:k]]


@pytest.mark.parametrize("path", ["exact", "hnsw"])
def test_store_search_large_namespace(engine: Engine, path: str) -> None:
    emb = UnitEmbeddings()
    settings: Any = {"exact_search_threshold": 0, "hnsw_min_share": 0.0} if path == "hnsw" else {}
    store = LangGraphStore(
        engine, index={"dims": 16, "embed": emb, "fields": ["text"]}, search=settings
    )
    items = _items(400)
    store.batch([PutOp(ns, k, v) for ns, k, v in items])
    assert store.create_index() is (engine.dialect.supports_ann)
    found = total = 0
    for q in range(10):
        truth = _truth(emb, items, f"query {q}", 10)
        hits = store.search(("big",), query=f"query {q}", limit=10)
        assert len(hits) == 10
        found += len(set(truth) & {h.key for h in hits})
        total += 10
        # filtered: the filter runs in SQL, the answer is never short
        flt = {"tag": "xx", "i": {"$gte": 100}}
        got = store.search(("big", "mem"), query=f"query {q}", limit=5, filter=flt)
        keep = _truth(emb, items, f"query {q}", 5, lambda v: v["tag"] == "xx" and v["i"] >= 100)
        assert [h.key for h in got] == keep or path == "hnsw"
        assert len(got) == 5 and all(h.value["tag"] == "xx" for h in got)
    recall = found / total
    assert recall == 1.0 if path == "exact" else recall >= 0.9


async def test_store_search_through_hnsw_async(aengine: Engine) -> None:
    emb = UnitEmbeddings()
    store = LangGraphStore(
        aengine,
        index={"dims": 16, "embed": emb, "fields": ["text"]},
        search={"exact_search_threshold": 0, "hnsw_min_share": 0.0},
        hnsw={"m": 16, "ef_construction": 64},  # the first embedded put builds the index
    )
    items = _items(300)
    await store.abatch([PutOp(ns, k, v) for ns, k, v in items])
    hits = await store.asearch(("big",), query="query 1", limit=10, offset=2)
    truth = _truth(emb, items, "query 1", 12)[2:]
    assert len(hits) == 10 and len(set(truth) & {h.key for h in hits}) >= 8
    assert await store.acreate_index() is aengine.dialect.supports_ann
    if aengine.dialect.supports_ann:
        with aengine.transaction(readonly=True) as tx:
            assert tx.fetchone(
                "SELECT to_regclass(?)", [aengine.dialect.qualified("store_vectors_d16_hnsw")]
            )[0]


def test_store_filters_in_sql_keep_langgraph_semantics(engine: Engine) -> None:
    store = LangGraphStore(engine)
    values = {
        "a": {"n": 1, "obj": {"x": 1, "y": [1, "two"]}, "s": "na\x00me"},
        "b": {"n": 1.0, "obj": {"y": [1, "two"], "x": 1.0}, "s": "name"},
        "c": {"n": "1", "obj": {"x": 1}, "s": "n\ud800"},
        "d": {"obj": 5},
        "e": {"n": True, "obj": {"x": 2, "y": []}},
    }
    for key, value in values.items():
        store.put(("f",), key, value)

    def keys(flt: dict[str, Any]) -> list[str]:
        return sorted(i.key for i in store.search(("f",), filter=flt, limit=20))

    assert keys({"n": 1}) == ["a", "b"]
    assert keys({"n": {"$ne": 1}}) == ["c", "d", "e"]  # $ne matches a missing field
    assert keys({"obj": {"x": 1, "y": [1, "two"]}}) == ["a", "b"]  # nested fields
    assert keys({"obj": {"$eq": {"y": [1, "two"], "x": 1}}}) == ["a", "b"]  # JSON equality
    assert keys({"obj": {"x": {"$ne": 2}}}) == ["a", "b", "c"]  # d's obj is not an object
    assert keys({"s": "na\x00me"}) == ["a"]
    assert keys({"s": {"$gt": "na"}}) == ["a", "b", "c"]
    assert keys({"n": {"$gt": "0"}}) == ["c"]
    assert keys({"n": {"$gte": [1]}}) == []
    assert keys({"n": True}) == ["e"]
