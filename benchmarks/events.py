"""The agent log at size: N events over S sessions (default 1,000,000 over 1,000), on Postgres
and SQLite.

Measures, per backend:
* batch ingest rate (``SessionLog.log_many``, one batch of N/S events per session), beside
  the anchor langchain-postgres ``PostgresChatMessageHistory.add_messages`` writing the same
  batches of messages (on at most --anchor-n events; Postgres only: it has no SQLite form);
* filtered reads (event type + tag + minimum importance, newest 20) p50 / p95 over 200
  random filters (no anchor: langchain-postgres has no such read);
* each analytics view's run time (median of 5, all rows), and on Postgres its
  ``EXPLAIN ANALYZE`` (written to --explain, default benchmarks/events_explain.txt).

Timestamps are spread over 90 days after ingest (one UPDATE), importance is skewed low
(u**3: about 7% of events at 0.8 or more), 1-3 tags of 20 per event, 5 event types,
10 agents. Goals (issue 14): every view under 100 ms on Postgres at 1,000,000 events,
filtered reads p50 under 5 ms.

    PYTHONPATH=src python benchmarks/events.py --n 100000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import server_url  # noqa: E402

from langchain_agentmem import Analytics, EventLog, SessionLog, connect  # noqa: E402
from langchain_agentmem.analytics import VIEWS, view_query  # noqa: E402

TYPES = ["tool_call", "tool_result", "observation", "decision", "plan"]
TAGS = [f"tag{i}" for i in range(20)]
AGENTS = [f"agent_{i}" for i in range(10)]
STATUSES = ["completed", "completed", "completed", "failed", "abandoned", None]
USER = "bench"


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


def ingest(engine: Any, n: int, sessions: int, seed: int = 1) -> float:
    rng = random.Random(seed)
    per = n // sessions
    total = 0.0
    for s in range(sessions):
        rows = batch(rng, per)
        log = SessionLog(
            engine, f"s{s:05d}", user_id=USER, agent_name=AGENTS[s % len(AGENTS)], source="bench"
        )
        t = time.perf_counter()
        log.log_many(rows)
        status = STATUSES[s % len(STATUSES)]
        if status:
            log.end(status)
        total += time.perf_counter() - t
    return per * sessions / total


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


def views(engine: Any) -> dict[str, tuple[float, int]]:
    analytics = Analytics(engine, user_id=None)
    out = {}
    for name in VIEWS:
        runs, rows = [], 0
        for _ in range(5):
            t = time.perf_counter()
            rows = len(analytics.view(name))
            runs.append((time.perf_counter() - t) * 1000)
        out[name] = (statistics.median(runs), rows)
    return out


def explain(engine: Any) -> str:
    parts = []
    with engine.transaction(None, readonly=True) as tx:
        for name in VIEWS:
            query, params = view_query(name, None, None)
            rows = tx.fetchall("EXPLAIN (ANALYZE, BUFFERS) " + query, params)
            parts.append(f"-- {name}\n" + "\n".join(r[0] for r in rows))
    return "\n\n".join(parts)


def anchor_ingest(url: str, n: int, per: int) -> float:
    import psycopg
    from langchain_core.messages import AIMessage
    from langchain_postgres import PostgresChatMessageHistory

    table = "bench_chat_" + uuid.uuid4().hex[:8]
    rng = random.Random(1)
    with psycopg.connect(url) as conn:
        PostgresChatMessageHistory.create_tables(conn, table)
        total = 0.0
        for _ in range(max(1, n // per)):
            history = PostgresChatMessageHistory(table, str(uuid.uuid4()), sync_connection=conn)
            messages = [AIMessage(r["content"]) for r in batch(rng, per)]
            t = time.perf_counter()
            history.add_messages(messages)
            total += time.perf_counter() - t
        conn.execute(f"DROP TABLE {table}")  # noqa: S608 (generated name)
        conn.commit()
    return (n // per) * per / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=1_000)
    parser.add_argument("--anchor-n", type=int, default=100_000)
    parser.add_argument("--backend", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--explain", default=str(Path(__file__).with_name("events_explain.txt")))
    args = parser.parse_args()
    per = args.n // args.sessions
    backends = ["postgres", "sqlite"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "postgres":
            url = server_url()
            engine = connect(url, schema="bench_events_" + uuid.uuid4().hex[:6])
        else:
            url = f"sqlite:///{tempfile.mkdtemp(prefix='agentmem-events-')}/events.sqlite3"
            engine = connect(url)
        with engine:
            engine.migrate()
            rate = ingest(engine, args.n, args.sessions)
            line = f"{backend}: ingest {rate:,.0f} events/s ({args.n:,} events, {args.sessions:,} sessions)"
            if backend == "postgres":
                anchor = anchor_ingest(url, min(args.n, args.anchor_n), per)
                line += f"; anchor PostgresChatMessageHistory {anchor:,.0f} messages/s ({rate / anchor:.2f}x)"
            print(line, flush=True)
            spread_times(engine, url)
            p50, p95 = filtered_reads(engine)
            print(f"{backend}: filtered reads p50 {p50:.2f} ms, p95 {p95:.2f} ms", flush=True)
            for name, (ms, rows) in views(engine).items():
                print(f"{backend}: view {name}: {ms:.1f} ms ({rows:,} rows)", flush=True)
            if backend == "postgres":
                Path(args.explain).write_text(explain(engine) + "\n", "utf-8")
                print(f"postgres: EXPLAIN ANALYZE written to {args.explain}", flush=True)
                with engine.transaction(None) as tx:
                    tx.execute_raw(f"DROP SCHEMA {engine.dialect.schema} CASCADE")


if __name__ == "__main__":
    main()
