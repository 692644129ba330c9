"""Scoped recall: searches scoped to one user (1% of the rows), or filtered to 1% of a
user's rows, return the true top 10 (recall@10 >= 0.99 against exact search).

One seeded, clustered data set: 100 small users of 60 rows each and one large user of
6,000 rows (half the collection) whose field ``rare`` is true on 1% of them. Postgres is
searched through every path: the default (exact for small scopes, iterative HNSW scans
for large ones), forced HNSW with iterative scans (strict and relaxed order), and forced
HNSW without iterative scans (the path for pgvector older than 0.8). When the ``pgserver``
wheel is installed, the same runs on its PostgreSQL 16 with pgvector 0.6.2.

The collection's HNSW index is built with ``ef_construction=128`` (default 64): on these
well-separated clusters, about one build in fifteen with the default graph leaves one
query's cluster reachable only with ``ef_search`` near 1,000, so that query loses its whole
top 10 on every path (ef 80 to 200, iterative or not) and recall drops to 0.96. That is the
graph pgvector builds, not the search paths measured here; with 128, 31 builds in a row
answered every query in full (and 55 builds with 64 gave 7 imperfect, 2 below 0.99). The
index is built once after the load (``defer_index``); 20 such builds in a row answered
every query of every path in full too.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_agentmem import Engine, MemoryVectorStore
from langchain_agentmem._search.vector_index import SearchQuery
from langchain_agentmem.dialects import SQL
from langchain_agentmem.vectorstore import _distances

from conftest import make_engine

DIMS = 24
SMALL_USERS = 100
SMALL_ROWS = 60
LARGE_ROWS = 6000
K = 10
QUERIES = 25
EF_CONSTRUCTION = 128  # see the module docstring


class _NoEmbeddings:
    """Searches here go by vector; nothing should embed text."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise AssertionError("not used")

    def embed_query(self, text: str) -> list[float]:
        raise AssertionError("not used")


def _dataset() -> dict[str, Any]:
    rng = np.random.default_rng(2024)
    centers = rng.normal(size=(40, DIMS))
    n = SMALL_USERS * SMALL_ROWS + LARGE_ROWS
    labels = rng.integers(0, len(centers), size=n)
    vecs = (centers[labels] + 0.35 * rng.normal(size=(n, DIMS))).astype(np.float32)
    users = [f"user{i % SMALL_USERS}" for i in range(SMALL_USERS * SMALL_ROWS)] + [
        "large"
    ] * LARGE_ROWS
    rare = np.zeros(n, dtype=bool)
    large_idx = np.arange(SMALL_USERS * SMALL_ROWS, n)
    rare[rng.choice(large_idx, size=LARGE_ROWS // 100, replace=False)] = True
    queries = (
        centers[rng.integers(0, len(centers), size=QUERIES)]
        + 0.35 * rng.normal(size=(QUERIES, DIMS))
    ).astype(np.float32)
    return {"vecs": vecs, "users": np.array(users), "rare": rare, "queries": queries}


DATA = _dataset()


def _load(engine: Engine) -> None:
    """Every user's rows, then the HNSW index built once (``defer_index``: a third of the
    time of growing the index row by row)."""
    by_user: dict[str, list[int]] = {}
    for i, u in enumerate(DATA["users"]):
        by_user.setdefault(str(u), []).append(i)
    for user, idx in by_user.items():
        store = MemoryVectorStore(
            engine,
            _NoEmbeddings(),
            collection="recall",
            user_id=user,
            ef_construction=EF_CONSTRUCTION,
            defer_index=True,
        )  # type: ignore[arg-type]
        store.add_embeddings(
            [f"doc {i}" for i in idx],
            DATA["vecs"][idx].tolist(),
            [{"rare": bool(DATA["rare"][i]), "n": int(i)} for i in idx],
            ids=[str(i) for i in idx],
        )
    store.create_index()


def _truth(user: str, q: np.ndarray, rare_only: bool) -> list[str]:
    mask = DATA["users"] == user
    if rare_only:
        mask &= DATA["rare"]
    idx = np.flatnonzero(mask)
    d = _distances(DATA["vecs"][idx], q, "cosine")
    return [str(i) for i in idx[np.argsort(d)[:K]]]


def _recall(store: MemoryVectorStore, user: str, rare_only: bool) -> float:
    hits = 0
    filter = {"rare": True} if rare_only else None
    for q in DATA["queries"]:
        got = [d.id for d in store.similarity_search_by_vector(q.tolist(), k=K, filter=filter)]
        assert len(got) == K
        hits += len(set(got) & set(_truth(user, q, rare_only)))
    return hits / (K * len(DATA["queries"]))


@pytest.fixture(scope="module")
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Engine]]:
    engines: dict[str, Engine] = {}
    sqlite = make_engine("sqlite", "", tmp_path_factory.mktemp("recall"))
    postgres = make_engine("postgres", request.getfixturevalue("postgres_url"), Path())
    for name, eng in (("sqlite", sqlite), ("postgres", postgres)):
        eng.migrate()
        _load(eng)
        engines[name] = eng
    with postgres.transaction() as tx:
        tx.execute("ANALYZE {vectors}")
    yield engines
    for eng in engines.values():
        eng.close()


MODES: dict[str, dict[str, Any]] = {
    "default": {},
    "hnsw_strict": {
        "exact_search_threshold": 0,
        "hnsw_min_share": 0,
        "iterative_scan": "strict_order",
    },
    "hnsw_relaxed": {
        "exact_search_threshold": 0,
        "hnsw_min_share": 0,
        "iterative_scan": "relaxed_order",
    },
    "hnsw_legacy": {"exact_search_threshold": 0, "hnsw_min_share": 0, "iterative_scan": "off"},
}
SCOPES = [("user7", False), ("large", True), ("large", False)]


@pytest.mark.parametrize(
    ("user", "rare_only"), SCOPES, ids=["user_1pct", "filter_1pct_of_user", "half_of_rows"]
)
@pytest.mark.parametrize("mode", list(MODES))
def test_scoped_recall_postgres(
    loaded: dict[str, Engine], mode: str, user: str, rare_only: bool
) -> None:
    store = MemoryVectorStore(
        loaded["postgres"], _NoEmbeddings(), collection="recall", user_id=user, **MODES[mode]
    )  # type: ignore[arg-type]
    assert _recall(store, user, rare_only) >= 0.99


@pytest.mark.parametrize(
    ("user", "rare_only"), SCOPES, ids=["user_1pct", "filter_1pct_of_user", "half_of_rows"]
)
def test_scoped_recall_sqlite(loaded: dict[str, Engine], user: str, rare_only: bool) -> None:
    store = MemoryVectorStore(loaded["sqlite"], _NoEmbeddings(), collection="recall", user_id=user)  # type: ignore[arg-type]
    assert _recall(store, user, rare_only) == 1.0


@pytest.mark.parametrize("backend_name", ["sqlite", "postgres"])
async def test_scoped_recall_async(loaded: dict[str, Engine], backend_name: str) -> None:
    store = MemoryVectorStore(
        loaded[backend_name],
        _NoEmbeddings(),
        collection="recall",
        user_id="large",
        exact_search_threshold=0,
    )  # type: ignore[arg-type]
    hits = 0
    for q in DATA["queries"]:
        got = await store.asimilarity_search_by_vector(q.tolist(), k=K, filter={"rare": True})
        hits += len({d.id for d in got} & set(_truth("large", q, True)))
    assert hits / (K * QUERIES) >= 0.99
    await loaded[backend_name].aclose()


def test_postgres_uses_the_hnsw_index_for_large_scopes(loaded: dict[str, Engine]) -> None:
    """The plan the indexed path sends really is an HNSW index scan (so the recall above
    measured the index, not a sequential scan)."""
    engine = loaded["postgres"]
    store = MemoryVectorStore(
        engine, _NoEmbeddings(), collection="recall", user_id="large", exact_search_threshold=0
    )  # type: ignore[arg-type]
    store.similarity_search_by_vector(DATA["queries"][0].tolist(), k=K)
    coll = store._coll
    assert coll is not None
    query = SearchQuery(
        DATA["queries"][0],
        K,
        select=["v.id"],
        where=("v.user_id = ? AND v.collection_id = ?", ["large", coll.collection_id]),
        order="v.id",
    )
    sql, params = store._index(coll).indexed(query, K)
    with engine.transaction() as tx:
        tx.execute("SET LOCAL enable_seqscan = off")
        plan = tx.fetchall(SQL("EXPLAIN ") + sql, params)
    assert f"vectors_c{coll.collection_id}_hnsw" in "\n".join(r[0] for r in plan)


# -- pgvector 0.6.2 (PostgreSQL 16) through the pgserver wheel --------------------------


@pytest.fixture(scope="module")
def old_pgvector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    pgserver = pytest.importorskip(
        "pgserver", reason="pgserver wheel (pgvector 0.6.2) not installed"
    )
    if os.environ.get("AGENTMEM_SKIP_PGSERVER"):
        pytest.skip("AGENTMEM_SKIP_PGSERVER is set")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR not set
        server = pgserver.get_server(tmp_path_factory.mktemp("pg16"), cleanup_mode="stop")
    engine = make_engine("postgres", server.get_uri(), Path())
    engine.migrate()
    _load(engine)
    with engine.transaction() as tx:
        tx.execute("ANALYZE {vectors}")
    yield engine
    engine.close()
    server.cleanup()


@pytest.mark.parametrize(
    ("user", "rare_only"), SCOPES, ids=["user_1pct", "filter_1pct_of_user", "half_of_rows"]
)
@pytest.mark.parametrize("threshold", [1000, 0], ids=["default", "hnsw"])
def test_scoped_recall_old_pgvector(
    old_pgvector: Engine, threshold: int, user: str, rare_only: bool
) -> None:
    store = MemoryVectorStore(
        old_pgvector,
        _NoEmbeddings(),
        collection="recall",
        user_id=user,
        exact_search_threshold=threshold,
    )  # type: ignore[arg-type]
    version = store._collection(None) and store._server_version
    assert version is not None and version < (0, 8, 0)
    assert store._iterative_mode() is None
    assert _recall(store, user, rare_only) >= 0.99


def test_old_pgvector_async(old_pgvector: Engine) -> None:
    store = MemoryVectorStore(
        old_pgvector,
        _NoEmbeddings(),
        collection="recall",
        user_id="user3",
        exact_search_threshold=0,
    )  # type: ignore[arg-type]

    async def run() -> list[str]:
        try:
            docs = await store.asimilarity_search_by_vector(DATA["queries"][1].tolist(), k=K)
            return [str(d.id) for d in docs]
        finally:
            await old_pgvector.aclose()

    assert asyncio.run(run()) == _truth("user3", DATA["queries"][1], False)


def test_old_pgvector_ignores_requested_iterative_scan(old_pgvector: Engine) -> None:
    """Asking for iterative scans on pgvector < 0.8 falls back to the legacy path instead
    of failing on the unknown setting."""
    store = MemoryVectorStore(
        old_pgvector,
        _NoEmbeddings(),  # type: ignore[arg-type]
        collection="recall",
        user_id="large",
        exact_search_threshold=0,
        iterative_scan="strict_order",
    )
    q = DATA["queries"][2]
    got = [d.id for d in store.similarity_search_by_vector(q.tolist(), k=K, filter={"rare": True})]
    assert got == _truth("large", q, True)


@pytest.mark.parametrize("backend_name", ["sqlite", "postgres"])
@pytest.mark.parametrize("kind", ["range", "like"])
def test_selective_non_equality_filter_recall(
    loaded: dict[str, Engine], backend_name: str, kind: str
) -> None:
    """A range or pattern filter keeping 60 of the large user's 6,000 rows (0.5% of the
    collection; no index serves it): the default store searches it exactly, since the
    HNSW graph under so selective a filter misses neighbours (forcing the HNSW plan with
    iterative scans here measured recall@10 of 0.89 to 0.98 at ef_search 80 and 400)."""
    first = SMALL_USERS * SMALL_ROWS
    store = MemoryVectorStore(
        loaded[backend_name],
        _NoEmbeddings(),  # type: ignore[arg-type]
        collection="recall",
        user_id="large",
        exact_search_threshold=10,
    )
    if kind == "range":
        filter: dict[str, Any] = {"n": {"$gte": first, "$lt": first + 60}}
    else:
        filter = {"n": {"$between": [first, first + 59]}, "rare": {"$exists": True}}
    idx = np.arange(first, first + 60)
    for q in DATA["queries"]:
        got = [d.id for d in store.similarity_search_by_vector(q.tolist(), k=K, filter=filter)]
        d = _distances(DATA["vecs"][idx], q, "cosine")
        assert got == [str(i) for i in idx[np.argsort(d)[:K]]]
