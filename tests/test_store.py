"""LangGraphStore on SQLite and Postgres, sync and async: the BaseStore API, literal
namespace prefixes, numeric filters, exact semantic search, TTL and tenants."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime, timezone
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langgraph.store.base import GetOp, InvalidNamespaceError, PutOp, SearchOp

from langchain_agentmem import Engine, LangGraphStore


class HashedEmbeddings(Embeddings):
    """Deterministic bag-of-words embeddings: texts sharing words are close."""

    def __init__(self, size: int = 32) -> None:
        self.size = size

    def _one(self, text: str) -> list[float]:
        vec = [0.0] * self.size
        for word in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big")
            vec[h % self.size] += 1.0 if (h >> 32) % 2 else -1.0
        norm = math.sqrt(sum(x * x for x in vec)) or 1.0
        return [x / norm for x in vec]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def index(size: int = 32, fields: list[str] | None = None) -> dict[str, Any]:
    return {"dims": size, "embed": HashedEmbeddings(size), "fields": fields or ["text"]}


# -- the basic API ---------------------------------------------------------------------


def test_put_get_update_delete(engine: Engine) -> None:
    store = LangGraphStore(engine)
    store.put(("users", "alice"), "prefs", {"theme": "dark", "n": 1})
    first = store.get(("users", "alice"), "prefs")
    assert first is not None and first.value == {"theme": "dark", "n": 1}
    assert first.namespace == ("users", "alice") and first.key == "prefs"
    store.put(("users", "alice"), "prefs", {"theme": "light"})
    second = store.get(("users", "alice"), "prefs")
    assert second is not None and second.value == {"theme": "light"}
    assert second.created_at == first.created_at and second.updated_at >= first.updated_at
    store.delete(("users", "alice"), "prefs")
    assert store.get(("users", "alice"), "prefs") is None
    assert store.get(("users", "nobody"), "prefs") is None


async def test_async_api(aengine: Engine) -> None:
    store = LangGraphStore(aengine, index=index())
    await store.aput(("docs",), "a", {"text": "green tea and biscuits"})
    await store.aput(("docs",), "b", {"text": "black coffee"})
    item = await store.aget(("docs",), "a")
    assert item is not None and item.value["text"] == "green tea and biscuits"
    hits = await store.asearch(("docs",), query="tea biscuits", limit=1)
    assert [h.key for h in hits] == ["a"] and hits[0].score is not None
    assert await store.alist_namespaces() == [("docs",)]
    await store.adelete(("docs",), "a")
    assert await store.aget(("docs",), "a") is None
    assert [h.key for h in await store.asearch(("docs",), query="tea")] == ["b"]


def test_batch_keeps_order_and_last_put_wins(engine: Engine) -> None:
    store = LangGraphStore(engine)
    results = store.batch(
        [
            PutOp(("n",), "k", {"v": 1}),
            PutOp(("n",), "k", {"v": 2}),
            GetOp(("n",), "k"),
            PutOp(("n",), "k", None),
            GetOp(("n",), "k"),
            SearchOp(("n",)),
        ]
    )
    assert results[0] is None and results[2].value == {"v": 2}  # type: ignore[union-attr]
    assert results[4] is None and results[5] == []


def test_values_and_keys_round_trip_exactly(engine: Engine) -> None:
    store = LangGraphStore(engine)
    value = {"text": "nul\x00 and \ud800 surrogate", "nested": {"list": [1, 2.5, None, True]}}
    store.put(("a\\b", "50%_off"), "key\x00\\x", value)
    item = store.get(("a\\b", "50%_off"), "key\x00\\x")
    assert item is not None and item.value == value and item.key == "key\x00\\x"
    assert store.list_namespaces() == [("a\\b", "50%_off")]
    assert [i.key for i in store.search(("a\\b",))] == ["key\x00\\x"]


def test_bad_input_is_refused_clearly(engine: Engine) -> None:
    store = LangGraphStore(engine)
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b",), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp(("",), "k", {"v": 1})])
    with pytest.raises(TypeError, match="value must be a dict"):
        store.batch([PutOp(("a",), "k", ["not", "a", "dict"])])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unsupported filter operator '\\$regex'"):
        store.search(("a",), filter={"v": {"$regex": "x"}})
    with pytest.raises(ValueError, match="ttl must be a positive number"):
        store.put(("a",), "k", {"v": 1}, ttl=-1)
    with pytest.raises(ValueError, match='index must be a dict with "dims" and "embed"'):
        LangGraphStore(engine, index={"dims": 3})  # type: ignore[typeddict-item]
    with pytest.raises(TypeError, match="expected an Engine"):
        LangGraphStore(None)  # type: ignore[arg-type]
    assert store.get(("a",), "k") is None  # nothing half-written


# -- namespaces ------------------------------------------------------------------------


def test_namespace_prefixes_match_whole_labels_literally(engine: Engine) -> None:
    store = LangGraphStore(engine)
    for ns in [
        ("user_1",),
        ("userX1",),
        ("user_10",),
        ("user_1", "notes"),
        ("user%1",),
        ("user_1x",),
    ]:
        store.put(ns, "k", {"ns": list(ns)})
    found = sorted(tuple(i.namespace) for i in store.search(("user_1",)))
    assert found == [("user_1",), ("user_1", "notes")]
    assert [tuple(i.namespace) for i in store.search(("user%1",))] == [("user%1",)]
    assert store.list_namespaces(prefix=("user_1",)) == [("user_1",), ("user_1", "notes")]


async def test_list_namespaces_conditions_depth_and_paging(aengine: Engine) -> None:
    store = LangGraphStore(aengine)
    for ns in [("a", "x", "v1"), ("a", "y", "v1"), ("a", "y", "v2"), ("b", "x", "v1"), ("a",)]:
        await store.aput(ns, "k", {})
    assert await store.alist_namespaces(prefix=("a", "*", "v1")) == [
        ("a", "x", "v1"),
        ("a", "y", "v1"),
    ]
    assert await store.alist_namespaces(suffix=("v1",)) == [
        ("a", "x", "v1"),
        ("a", "y", "v1"),
        ("b", "x", "v1"),
    ]
    assert await store.alist_namespaces(prefix=("a",), max_depth=2) == [
        ("a",),
        ("a", "x"),
        ("a", "y"),
    ]
    assert await store.alist_namespaces(limit=2, offset=1) == [("a", "x", "v1"), ("a", "y", "v1")]
    assert store.list_namespaces(prefix=("a",), suffix=("v2",)) == [("a", "y", "v2")]


# -- filters ---------------------------------------------------------------------------


def test_filters_compare_numbers_as_numbers(engine: Engine) -> None:
    store = LangGraphStore(engine)
    for key, value in {
        "nine": 9,
        "ten": 10,
        "hundred": 100,
        "text9": "9",
        "float": 10.5,
        "yes": True,
    }.items():
        store.put(("f",), key, {"n": value, "kind": "num" if not isinstance(value, str) else "str"})

    def keys(flt: dict[str, Any]) -> list[str]:
        return sorted(i.key for i in store.search(("f",), filter=flt, limit=50))

    assert keys({"n": {"$gte": 10}}) == ["float", "hundred", "ten"]
    assert keys({"n": {"$lt": 10}}) == ["nine"]
    assert keys({"n": {"$gt": 9, "$lte": 10.5}}) == ["float", "ten"]
    assert keys({"n": 10}) == ["ten"]
    assert keys({"n": {"$eq": 10.0}}) == ["ten"]
    assert keys({"n": True}) == ["yes"]
    assert keys({"n": {"$ne": 9}, "kind": "num"}) == ["float", "hundred", "ten", "yes"]
    assert keys({"n": {"$gte": "5"}}) == ["text9"]  # strings compare with strings
    assert keys({"missing": {"$gte": 0}}) == []


async def test_search_paging_and_recency_order(aengine: Engine) -> None:
    store = LangGraphStore(aengine)
    for i in range(30):
        await store.aput(("p",), f"k{i:02}", {"i": i, "even": i % 2 == 0})
    first = await store.asearch(("p",), filter={"even": True}, limit=5)
    second = await store.asearch(("p",), filter={"even": True}, limit=5, offset=5)
    both = await store.asearch(("p",), filter={"even": True}, limit=10)
    assert [i.key for i in first + second] == [i.key for i in both]
    assert len({i.key for i in both}) == 10 and all(i.value["even"] for i in both)
    everything = await store.asearch(("p",), limit=100)
    assert len(everything) == 30
    assert [i.updated_at for i in everything] == sorted(
        (i.updated_at for i in everything), reverse=True
    )


# -- semantic search -------------------------------------------------------------------


TOPICS = ["tea", "coffee", "rain", "python", "music", "garden", "chess", "bread"]


def corpus(users: int, per_user: int) -> list[tuple[tuple[str, ...], str, dict[str, Any]]]:
    items = []
    for u in range(users):
        for j in range(per_user):
            words = [TOPICS[(u + j) % len(TOPICS)], TOPICS[(j * 3) % len(TOPICS)], f"w{j % 7}"]
            items.append((("memories", f"user{u}"), f"m{j}", {"text": " ".join(words), "j": j}))
    return items


def brute_force(
    emb: HashedEmbeddings, items: list[Any], prefix: tuple[str, ...], query: str, k: int
) -> list[float]:
    """The true top-k cosine similarities under ``prefix``."""
    q = emb.embed_query(query)
    scores = [
        sum(a * b for a, b in zip(q, emb.embed_query(value["text"]), strict=True))
        for ns, _, value in items
        if ns[: len(prefix)] == prefix
    ]
    return sorted(scores, reverse=True)[:k]


def test_semantic_search_is_exact_within_a_namespace(engine: Engine) -> None:
    cfg = index()
    store = LangGraphStore(engine, index=cfg)
    items = corpus(users=6, per_user=25)
    store.batch([PutOp(ns, key, value) for ns, key, value in items])
    for u in range(6):
        prefix = ("memories", f"user{u}")
        hits = store.search(prefix, query="tea garden w3", limit=10)
        assert len(hits) == 10 and all(tuple(h.namespace) == prefix for h in hits)
        expected = brute_force(cfg["embed"], items, prefix, "tea garden w3", 10)
        assert [round(h.score, 4) for h in hits] == [round(x, 4) for x in expected]  # type: ignore[arg-type]
    filtered = store.search(("memories", "user1"), query="tea", filter={"j": {"$gte": 20}}, limit=3)
    assert len(filtered) == 3 and all(h.value["j"] >= 20 for h in filtered)
    scores = [h.score for h in store.search(("memories",), query="chess bread", limit=20, offset=3)]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]


async def test_index_fields_false_and_reindex(aengine: Engine) -> None:
    store = LangGraphStore(aengine, index=index(fields=["title", "tags[*]"]))
    await store.aput(("d",), "a", {"title": "sourdough bread", "tags": ["baking", "yeast"]})
    await store.aput(("d",), "b", {"title": "chess openings"}, index=False)
    await store.aput(("d",), "c", {"body": "rain", "title": "x"}, index=["body"])
    with aengine.transaction(readonly=True) as tx:
        fields = sorted(tx.fetchall("SELECT key, field FROM {store_vectors}"))
    assert fields == [("a", "tags[*].0"), ("a", "tags[*].1"), ("a", "title"), ("c", "body")]
    hits = await store.asearch(("d",), query="rain", limit=5)
    assert [h.key for h in hits][0] == "c" and "b" not in [h.key for h in hits]
    # A put that is not indexed removes the old vectors.
    await store.aput(("d",), "a", {"title": "gone"}, index=False)
    assert "a" not in [h.key for h in await store.asearch(("d",), query="sourdough")]


def test_wrong_embedding_size_is_refused(engine: Engine) -> None:
    store = LangGraphStore(
        engine, index={"dims": 8, "embed": HashedEmbeddings(16), "fields": ["text"]}
    )
    with pytest.raises(ValueError, match="expected embeddings of 8 dimensions"):
        store.put(("x",), "k", {"text": "hello"})
    assert store.get(("x",), "k") is None


def test_large_batches_of_embedded_puts_index_every_item(engine: Engine) -> None:
    # 100 vectors per batch: Postgres loads them by binary COPY.
    store = LangGraphStore(engine, index=index(16))
    store.batch([PutOp(("bulk",), f"k{i}", {"text": f"alpha number {i}"}) for i in range(100)])
    store.batch(
        [PutOp(("bulk",), f"k{i}", {"text": f"omega number {i}"}) for i in range(0, 100, 2)]
    )
    hits = store.search(("bulk",), query="omega number 42", limit=100)
    assert len(hits) == 100 and hits[0].key == "k42"
    assert store.get(("bulk",), "k42").value == {"text": "omega number 42"}  # type: ignore[union-attr]
    with engine.transaction(readonly=True) as tx:
        assert tx.fetchone("SELECT count(*) FROM {store_vectors}") == (100,)


async def test_large_batches_of_embedded_puts_async(aengine: Engine) -> None:
    store = LangGraphStore(aengine, index=index(16))
    await store.abatch(
        [PutOp(("bulk",), f"k{i}", {"text": f"alpha number {i}"}) for i in range(100)]
    )
    await store.abatch(
        [PutOp(("bulk",), f"k{i}", {"text": f"omega number {i}"}) for i in range(0, 100, 2)]
    )
    hits = await store.asearch(("bulk",), query="omega number 42", limit=100)
    assert len(hits) == 100 and hits[0].key == "k42"


def test_non_finite_embeddings_are_refused_and_keep_the_old_item(engine: Engine) -> None:
    store = LangGraphStore(engine, index=index(8))
    store.put(("x",), "k", {"text": "first"})
    broken = LangGraphStore(
        engine,
        index={
            "dims": 8,
            "embed": lambda texts: [[float("nan")] * 8 for _ in texts],
            "fields": ["text"],
        },
    )
    with pytest.raises(ValueError, match="finite"):
        broken.put(("x",), "k", {"text": "second"})
    item = store.get(("x",), "k")
    assert item is not None and item.value == {"text": "first"}
    assert [h.key for h in store.search(("x",), query="first")] == ["k"]


async def test_non_finite_embeddings_are_refused_async(aengine: Engine) -> None:
    broken = LangGraphStore(
        aengine,
        index={
            "dims": 4,
            "embed": lambda texts: [[float("inf")] * 4 for _ in texts],
            "fields": ["text"],
        },
    )
    with pytest.raises(ValueError, match="finite"):
        await broken.aput(("x",), "k", {"text": "second"})
    assert await broken.aget(("x",), "k") is None


# -- TTL -------------------------------------------------------------------------------


def expires(engine: Engine, key: str) -> datetime | None:
    with engine.transaction(readonly=True) as tx:
        row = tx.fetchone("SELECT expires_at FROM {store_items} WHERE key = ?", (key,))
    assert row is not None
    return engine.dialect.to_datetime(row[0])


def expire_now(engine: Engine, key: str) -> None:
    past = engine.dialect.from_datetime(datetime(2000, 1, 1, tzinfo=timezone.utc))
    with engine.transaction() as tx:
        tx.execute("UPDATE {store_items} SET expires_at = ? WHERE key = ?", (past, key))


def test_ttl_expiry_refresh_and_sweep(engine: Engine) -> None:
    store = LangGraphStore(engine, index=index(), ttl={"default_ttl": 60, "refresh_on_read": True})
    store.put(("t",), "short", {"text": "short lived"})
    store.put(("t",), "forever", {"text": "stays"}, ttl=None)
    first = expires(engine, "short")
    assert first is not None and expires(engine, "forever") is None
    remaining = (first - datetime.now(timezone.utc)).total_seconds()
    assert 3500 < remaining <= 3600
    # Reading restarts the clock.
    with engine.transaction() as tx:
        tx.execute(
            "UPDATE {store_items} SET expires_at = ? WHERE key = 'short'",
            (engine.dialect.from_datetime(datetime(2100, 1, 1, tzinfo=timezone.utc)),),
        )
    store.get(("t",), "short", refresh_ttl=False)
    assert expires(engine, "short").year == 2100  # type: ignore[union-attr]
    store.get(("t",), "short")
    assert expires(engine, "short").year < 2100  # type: ignore[union-attr]
    # Expired items are not returned, then swept with their vectors.
    expire_now(engine, "short")
    assert store.get(("t",), "short") is None
    assert [i.key for i in store.search(("t",), query="short lived")] == ["forever"]
    assert store.sweep_ttl() == 1
    with engine.transaction(readonly=True) as tx:
        assert tx.fetchall("SELECT key FROM {store_vectors}") == [("forever",)]
    assert store.sweep_ttl() == 0


async def test_async_ttl_and_sweeper(aengine: Engine) -> None:
    store = LangGraphStore(aengine, ttl={"default_ttl": 5, "sweep_interval_minutes": 1})
    await store.aput(("t",), "a", {"v": 1})
    await store.aput(("t",), "b", {"v": 2}, ttl=30)
    expire_now(aengine, "a")
    assert [i.key for i in await store.asearch(("t",))] == ["b"]
    assert await store.alist_namespaces() == [("t",)]
    assert await store.asweep_ttl() == 1
    future = store.start_ttl_sweeper()
    assert store.stop_ttl_sweeper(timeout=5)
    assert future.result(timeout=5) is None
    task = await store.astart_ttl_sweeper()
    task.cancel()


# -- tenants ---------------------------------------------------------------------------


def test_stores_of_two_tenants_never_see_each_other(engine: Engine) -> None:
    alice = LangGraphStore(engine, user_id="alice", index=index())
    bob = LangGraphStore(engine, user_id="bob", index=index())
    alice.put(("memories",), "m", {"text": "alice likes tea"})
    bob.put(("memories",), "m", {"text": "bob likes coffee"})
    assert alice.get(("memories",), "m").value["text"] == "alice likes tea"  # type: ignore[union-attr]
    assert [h.value["text"] for h in bob.search(("memories",), query="tea")] == ["bob likes coffee"]
    assert bob.list_namespaces() == [("memories",)]
    bob.delete(("memories",), "m")
    assert alice.get(("memories",), "m") is not None
