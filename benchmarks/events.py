"""The agent log at size: N events over S sessions (default 1,000,000 over 1,000), on Postgres
and SQLite.

Measures, per backend:
* batch ingest rate (``SessionLog.log_many``, one batch of N/S events per session, each
  event embedded by a fast fake model of --dims dimensions), beside the anchor
  langchain-postgres ``PostgresChatMessageHistory.add_messages`` writing the same batches
  as messages (no embeddings; on the first --anchor-n events, its batches alternating with
  ours; Postgres only: it has no SQLite form);
* filtered reads (event type + tag + minimum importance, newest 20) p50 / p95 over 200
  random filters (no anchor: langchain-postgres has no such read);
* each analytics view's run time (median of 5, all rows, every tenant), and on Postgres its
  ``EXPLAIN (ANALYZE, BUFFERS)`` (written to --explain);
* semantic search over the user's events (``EventLog.search``, k=10): exact before the
  HNSW index exists, then through the cost-based choice once ``EventLog.create_index``
  built it (Postgres): p50 and recall@10 against the exact answers, for no filter, a type
  filter and type + tag + importance; the index build time.

Timestamps are spread over 90 days after ingest (one UPDATE, then VACUUM ANALYZE as
autovacuum would), importance is skewed low (u**3: about 7% of events at 0.8 or more),
1-3 tags of 20 per event, 5 event types, 10 agents. Goals (issue 14): every view under
100 ms on Postgres at 1,000,000 events, filtered reads p50 under 5 ms.

    PYTHONPATH=src python benchmarks/events.py --quick      # 100,000 events, about 3 min
    PYTHONPATH=src python benchmarks/events.py              # 1,000,000 events

``--api-events K`` ingests only the first K events through ``SessionLog`` (the rate is
measured on those) and writes the rest with one plain INSERT per session batch (same
generator, same distribution): a 1,000,000-event database in a few minutes when the
ingest rate is not what is being measured.
"""

# Queries are composed of constants and dialect fragments; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]

from _server import server_url  # noqa: E402

from langchain_agentmem import Analytics, EventLog, SessionLog, connect  # noqa: E402
from langchain_agentmem.analytics import _ORDER, VIEWS, view_query  # noqa: E402
from langchain_agentmem.dialects import SQL  # noqa: E402

TYPES = ["tool_call", "tool_result", "observation", "decision", "plan"]
TAGS = [f"tag{i}" for i in range(20)]
AGENTS = [f"agent_{i}" for i in range(10)]
STATUSES = ["completed", "completed", "completed", "failed", "abandoned", None]
USER = "bench"
K = 10


class FastEmbeddings(Embeddings):
    """Unit vectors of ``dims`` dimensions from a seeded generator: a stand-in model that
    costs microseconds (documents in call order; a query by its text)."""

    def __init__(self, dims: int, seed: int = 3) -> None:
        self.dims = dims
        self.rng = np.random.default_rng(seed)

    def _unit(self, m: np.ndarray) -> list[list[float]]:
        return (m / np.linalg.norm(m, axis=1, keepdims=True)).tolist()  # type: ignore[no-any-return]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._unit(self.rng.standard_normal((len(texts), self.dims)))

    def embed_query(self, text: str) -> list[float]:
        rng = np.random.default_rng(zlib.crc32(text.encode()))
        return self._unit(rng.standard_normal((1, self.dims)))[0]


def batch(rng: random.Random, n: int) -> list[dict[str, Any]]:
    return [
        {
            "event_type": rng.choice(TYPES),
            "content": f"event {rng.randrange(10**9)} about {rng.choice(TAGS)}",
            "importance": round(rng.random() ** 3, 3),
            "tags": rng.sample(TAGS, rng.randint(1, 3)),
            "data": {"k": rng.randrange(1000)},
        }
        for _ in range(n)
    ]


def _raw_insert(engine: Any, sid: str, rows: list[dict[str, Any]], emb: Any, s: int) -> None:
    """One session's batch by plain INSERTs (the --api-events fill): what ``log_many``
    stores, without its per-event checks."""
    import json

    d = engine.dialect
    vectors = emb.embed_documents([r["content"] for r in rows]) if emb else [None] * len(rows)
    imps = [float(np.float32(r["importance"])) for r in rows]
    status = STATUSES[s % len(STATUSES)]
    with engine.transaction(USER) as tx:
        tx.executemany(
            "INSERT INTO {events} (user_id, session_id, seq, kind, role, content, payload, "
            "importance, tags, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    USER,
                    sid,
                    i + 1,
                    r["event_type"],
                    "agent",
                    r["content"],
                    json.dumps({"content": r["content"], "data": r["data"]}),
                    imp,
                    d.text_array_param(r["tags"]),
                    None if v is None else d.vector_param(np.asarray(v, dtype=np.float32)),
                ]
                for i, (r, imp, v) in enumerate(zip(rows, imps, vectors, strict=True))
            ],
        )
        tx.execute(
            "INSERT INTO {sessions} (user_id, session_id, agent_name, source, status, ended_at, "
            "last_seq, importance_sum, importance_count) VALUES (?, ?, ?, 'bench', ?, "
            + ("NULL" if status is None else "{now}")
            + ", ?, ?, ?)",
            [
                USER,
                sid,
                AGENTS[s % len(AGENTS)],
                status or "active",
                len(rows),
                float(sum(float(str(np.float32(x))) for x in imps)),
                len(rows),
            ],
        )


def ingest(
    engine: Any, url: str | None, n: int, sessions: int, api_events: int, anchor_n: int, dims: int
) -> tuple[float, float | None, int]:
    """Ingest; (events/s through SessionLog, anchor messages/s or None, events ingested
    through SessionLog). Our batch and the anchor's same batch alternate."""
    rng = random.Random(1)
    per = n // sessions
    emb = FastEmbeddings(dims) if dims else None
    ours, theirs, done, anchor_done = 0.0, 0.0, 0, 0
    anchor = _Anchor(url) if url is not None and anchor_n > 0 else None
    try:
        for s in range(sessions):
            rows = batch(rng, per)
            sid = f"s{s:05d}"
            if done + per > api_events:
                _raw_insert(engine, sid, rows, emb, s)
                continue
            log = SessionLog(
                engine,
                sid,
                user_id=USER,
                agent_name=AGENTS[s % len(AGENTS)],
                source="bench",
                embeddings=emb,
            )
            t = time.perf_counter()
            log.log_many(rows)
            status = STATUSES[s % len(STATUSES)]
            if status:
                log.end(status)
            ours += time.perf_counter() - t
            done += per
            if anchor is not None and anchor_done < anchor_n:
                theirs += anchor.add(rows)
                anchor_done += per
    finally:
        if anchor is not None:
            anchor.close()
    return (done / ours if ours else 0.0), (anchor_done / theirs if theirs else None), done


class _Anchor:
    """langchain-postgres chat history on the same server, one new session per batch."""

    def __init__(self, url: str) -> None:
        import psycopg
        from langchain_postgres import PostgresChatMessageHistory

        self.table = "bench_chat_" + uuid.uuid4().hex[:8]
        self.conn = psycopg.connect(url)
        PostgresChatMessageHistory.create_tables(self.conn, self.table)
        self.cls = PostgresChatMessageHistory

    def add(self, rows: list[dict[str, Any]]) -> float:
        from langchain_core.messages import AIMessage

        history = self.cls(self.table, str(uuid.uuid4()), sync_connection=self.conn)
        messages = [AIMessage(r["content"]) for r in rows]
        t = time.perf_counter()
        history.add_messages(messages)
        return time.perf_counter() - t

    def close(self) -> None:
        self.conn.execute(f"DROP TABLE {self.table}")  # noqa: S608 (generated name)
        self.conn.commit()
        self.conn.close()


def spread_times(engine: Any, url: str) -> None:
    """Spread created_at over 90 days (minutes back from now, by a hash of the key)."""
    with engine.transaction(USER) as tx:
        if engine.dialect.name == "postgres":
            tx.execute(
                "UPDATE {events} SET created_at = now() - ((seq * 7919 + length(session_id) * 104729 "
                "+ CAST(substr(session_id, 2) AS integer) * 31) % 129600) * interval '1 minute'"
            )
        else:
            tx.execute(
                "UPDATE {events} SET created_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-' || "
                "((seq * 7919 + length(session_id) * 104729 + CAST(substr(session_id, 2) AS integer) * 31) "
                "% 129600) || ' minutes')"
            )
    if engine.dialect.name == "postgres":
        # The UPDATE left a dead version of every row (and index entries for it): vacuum,
        # as autovacuum would after a bulk change, so the views read live rows only.
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"VACUUM ANALYZE {engine.dialect.table('events')}")  # noqa: S608
            conn.execute(f"VACUUM ANALYZE {engine.dialect.table('sessions')}")  # noqa: S608
    else:
        with engine.transaction(USER) as tx:
            tx.execute_raw("ANALYZE")


def filtered_reads(engine: Any, rounds: int = 200) -> tuple[float, float]:
    rng = random.Random(7)
    log = EventLog(engine, user_id=USER)
    times = []
    for _ in range(rounds):
        kw = {
            "event_type": rng.choice(TYPES),
            "tags": [rng.choice(TAGS)],
            "min_importance": rng.choice([0.3, 0.5, 0.8]),
            "limit": 20,
        }
        t = time.perf_counter()
        log.events(**kw)  # type: ignore[arg-type]
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


#: The views 0015 and 0019 rewrote (on Postgres; SQLite keeps 0012's): their 0012 form,
#: in the view's order, is the anchor (alternated, same data).
REWRITTEN = ("important_events_recent", "agent_activity_hourly", "importance_distribution")


def released(dialect: str, view: str) -> str:
    """The SELECT of ``view`` as migration 0012 released it, its tables as templates."""
    import re

    text = (ROOT / "sql" / dialect / "0012_skills_events.sql").read_text("utf-8")
    found = re.search(rf"CREATE VIEW {view}\b[^\n]*? AS\n(.*?);\n", text, re.S)
    assert found is not None, view
    body = re.sub(r"--[^\n]*", "", found.group(1))
    return re.sub(r"\b(FROM|JOIN) (events|sessions)\b", r"\1 {\2}", body)


def views(engine: Any, rounds: int = 5) -> dict[str, tuple[float, int, float | None, float | None]]:
    """Per view: median ms of ``rounds`` reads (all rows, every tenant) through Analytics,
    rows, and for a rewritten view the median ms of fetching its rows without Analytics'
    conversion, now and in its 0012 form (the anchor), alternating."""
    analytics = Analytics(engine, user_id=None)
    out: dict[str, tuple[float, int, float | None, float | None]] = {}
    for name in VIEWS:
        runs, old, raw, rows = [], [], [], 0
        rewritten = name in REWRITTEN and engine.dialect.name == "postgres"
        query = (
            f"SELECT * FROM ({released(engine.dialect.name, name)}) v ORDER BY {_ORDER[name]}"
            if rewritten
            else None
        )
        for _ in range(rounds):
            t = time.perf_counter()
            rows = len(analytics.view(name))
            runs.append((time.perf_counter() - t) * 1000)
            if query is not None:
                with engine.transaction(None, readonly=True) as tx:
                    t = time.perf_counter()
                    tx.fetchall(query)
                    old.append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    tx.fetchall(view_query(name, None, None)[0])
                    raw.append((time.perf_counter() - t) * 1000)
        med = [statistics.median(x) if x else None for x in (old, raw)]
        out[name] = (statistics.median(runs), rows, med[0], med[1])
    return out


def explain(engine: Any) -> str:
    parts = []
    with engine.transaction(None, readonly=True) as tx:
        for name in VIEWS:
            query, params = view_query(name, None, None)
            rows = tx.fetchall(SQL("EXPLAIN (ANALYZE, BUFFERS) ") + query, params)
            parts.append(f"-- {name}\n" + "\n".join(r[0] for r in rows))
        # The filtered read of the benchmark, as EventLog.events sends it.
        rows = tx.fetchall(
            "EXPLAIN (ANALYZE, BUFFERS) SELECT e.session_id, e.seq, e.kind, e.role, e.content, "
            "e.payload, e.importance, e.tags, e.created_at FROM {events} e WHERE e.user_id = ? "
            "AND e.kind IN (?) AND " + engine.dialect.text_array_contains("e.tags") + " AND "
            "e.importance >= ? ORDER BY e.created_at DESC, e.session_id DESC, e.seq DESC LIMIT 20",
            [USER, "decision", engine.dialect.text_array_param(["tag3"]), float(np.float32(0.5))],
        )
        parts.append(
            "-- filtered read (decision, tag3, importance >= 0.5)\n" + "\n".join(r[0] for r in rows)
        )
    return "\n\n".join(parts)


SEARCHES: dict[str, dict[str, Any]] = {
    "no filter": {},
    "type": {"event_type": "decision"},
    "type + tag + importance": {"event_type": "decision", "tags": ["tag3"], "min_importance": 0.5},
}


def search_runs(
    log: EventLog, queries: int, kinds: list[str]
) -> dict[str, tuple[float, list[list[tuple[str, int]]]]]:
    """Per filter kind: p50 ms and each query's top-K keys."""
    out = {}
    for kind in kinds:
        times, found = [], []
        for i in range(queries):
            t = time.perf_counter()
            hits = log.search(f"query {i}", k=K, **SEARCHES[kind])
            times.append((time.perf_counter() - t) * 1000)
            found.append([(h.session_id, h.seq) for h in hits])
        out[kind] = (statistics.median(times), found)
    return out


def recall(got: list[list[tuple[str, int]]], want: list[list[tuple[str, int]]]) -> float:
    hits = sum(len(set(g) & set(w)) for g, w in zip(got, want, strict=True))
    return hits / max(1, sum(len(w) for w in want))


def semantic(engine: Any, dims: int, queries: int, exact_queries: int) -> None:
    name = engine.dialect.name
    emb = FastEmbeddings(dims)
    kinds = list(SEARCHES)
    exact = search_runs(EventLog(engine, user_id=USER, embeddings=emb), exact_queries, kinds)
    for kind, (ms, _) in exact.items():
        print(f"{name}: search k={K} ({kind}), exact: p50 {ms:.1f} ms", flush=True)
    indexed = EventLog(engine, user_id=USER, embeddings=emb)
    t = time.perf_counter()
    built = indexed.create_index(dims, maintenance_work_mem="1GB")
    if not built:
        print(f"{name}: no HNSW index on this backend: search stays exact", flush=True)
        return
    print(f"{name}: HNSW index over {dims}-dim events built in {time.perf_counter() - t:.1f} s")
    got = search_runs(indexed, max(queries, exact_queries), kinds)
    for kind, (ms, found) in got.items():
        r = recall(found[:exact_queries], exact[kind][1])
        print(
            f"{name}: search k={K} ({kind}), cost-based (HNSW when large): p50 {ms:.1f} ms, "
            f"recall@{K} {r:.3f} over {exact_queries} queries ({exact[kind][0] / ms:.1f}x faster "
            "than exact)",
            flush=True,
        )


def fill(
    engine: Any, url: str | None, n: int, args: Any, api_events: int, anchor_n: int, backend: str
) -> None:
    """Ingest (the rate measured), then spread the times and vacuum."""
    t = time.perf_counter()
    rate, anchor, through = ingest(engine, url, n, args.sessions, api_events, anchor_n, args.dims)
    line = (
        f"{backend}: ingest {rate:,.0f} events/s ({through:,} of {n:,} events through "
        f"SessionLog.log_many, {n // args.sessions:,} a batch, {args.dims}-dim embeddings)"
    )
    if anchor:
        line += (
            f"; anchor PostgresChatMessageHistory {anchor:,.0f} messages/s ({rate / anchor:.2f}x)"
        )
    print(line + f"; {time.perf_counter() - t:.0f} s in all", flush=True)
    t = time.perf_counter()
    spread_times(engine, url or "")
    print(f"{backend}: times spread and vacuumed in {time.perf_counter() - t:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 events (about 3 min)")
    parser.add_argument("--n", type=int, default=None, help="events (default 1,000,000)")
    parser.add_argument("--sessions", type=int, default=1_000)
    parser.add_argument("--anchor-n", type=int, default=None, help="anchor events (100,000)")
    parser.add_argument("--api-events", type=int, default=None, help="see the module doc")
    parser.add_argument("--dims", type=int, default=32, help="event embedding size (0: none)")
    parser.add_argument("--queries", type=int, default=20, help="semantic searches per kind")
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--explain", default=str(Path(__file__).with_name("events_explain.txt")))
    parser.add_argument(
        "--schema",
        default=None,
        help="Postgres schema to keep between runs: filled on the first run (not dropped), "
        "reused as it is by later runs (ingest and time spread skipped)",
    )
    parser.add_argument("--view-rounds", type=int, default=5, help="reads per view (median)")
    parser.add_argument(
        "--views-only", action="store_true", help="only the views and their EXPLAIN"
    )
    args = parser.parse_args()
    n = args.n or (100_000 if args.quick else 1_000_000)
    anchor_n = (
        args.anchor_n if args.anchor_n is not None else min(n, 20_000 if args.quick else 100_000)
    )
    api_events = n if args.api_events is None else args.api_events
    backends = ["postgres", "sqlite"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "postgres":
            url: str | None = server_url()
            engine = connect(url, schema=args.schema or "bench_events_" + uuid.uuid4().hex[:6])
        else:
            url = None
            engine = connect(
                f"sqlite:///{tempfile.mkdtemp(prefix='agentmem-events-')}/events.sqlite3"
            )
        keep = backend == "postgres" and args.schema is not None
        with engine:
            engine.migrate()
            with engine.transaction(None, readonly=True) as tx:
                filled = tx.fetchall("SELECT 1 FROM {events} LIMIT 1")
            if filled and keep:
                print(f"{backend}: reusing the events of schema {args.schema}", flush=True)
            else:
                fill(engine, url, n, args, api_events, anchor_n, backend)
            if not args.views_only:
                p50, p95 = filtered_reads(engine)
                print(f"{backend}: filtered reads p50 {p50:.2f} ms, p95 {p95:.2f} ms", flush=True)
            for name, (ms, rows, old, raw) in views(engine, args.view_rounds).items():
                then = (
                    ""
                    if old is None or raw is None
                    else f"; rows fetched without conversion {raw:.1f} ms, 0012's form "
                    f"{old:.1f} ms ({raw / old:.2f}x)"
                )
                print(f"{backend}: view {name}: {ms:.1f} ms ({rows:,} rows){then}", flush=True)
            if backend == "postgres":
                Path(args.explain).write_text(explain(engine) + "\n", "utf-8")
                print(f"postgres: EXPLAIN ANALYZE written to {args.explain}", flush=True)
            if args.dims and not args.views_only:
                # SQLite's exact search reads every vector of the scope: fewer queries.
                exact_q = args.queries if backend == "postgres" else max(1, args.queries // 5)
                semantic(engine, args.dims, args.queries, exact_q)
            if backend == "postgres" and not keep:
                with engine.transaction(None) as tx:
                    tx.execute_raw(f"DROP SCHEMA {engine.dialect.schema} CASCADE")


if __name__ == "__main__":
    main()
