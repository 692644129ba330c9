"""Scrape cost of the Prometheus collector as agent_memory_metrics grows, on SQLite and Postgres.

Each round fills ``agent_memory_metrics`` with N rows over 200 tenants, 8 memory types and
40 operations (about 2% errors), then times ``generate_latest`` of a registry holding
``MemoryCollector(engine)`` (every tenant, one snapshot per scrape: the operations
aggregate, table and index sizes, index usage, the sync log) and ``Monitor.operations()``
alone. There is no anchor library here: the figure to read is how the scrape grows with
the table (it aggregates every row), to choose a scrape interval and a deletion policy.

    PYTHONPATH=src python benchmarks/monitoring.py --quick      # 100,000 rows, ~1 minute
    PYTHONPATH=src python benchmarks/monitoring.py              # 100,000 and 1,000,000 rows
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import server_url  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from langchain_agentmem import Engine, MemoryCollector, Monitor, connect  # noqa: E402

TYPES = ["KeyValueStore", "EventLog", "SessionLog", "SkillRegistry", "KnowledgeBase",
         "EpisodicMemory", "MemoryVectorStore", "ChatMessageHistory"]  # fmt: skip
INSERT = (
    "INSERT INTO {agent_memory_metrics} (user_id, id, operation, memory_type, latency_ms, "
    "results_count, error) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def fill(engine: Engine, rows: int, batch: int = 20_000) -> None:
    rng = random.Random(14)
    done = 0
    while done < rows:
        n = min(batch, rows - done)
        params = []
        for _ in range(n):
            failed = rng.random() < 0.02
            params.append(
                (
                    f"tenant{rng.randrange(200):03}",
                    uuid.uuid4().hex,
                    f"op{rng.randrange(5)}",
                    rng.choice(TYPES),
                    rng.lognormvariate(1.0, 1.0),
                    None if failed else rng.randrange(20),
                    "ValueError: bad" if failed else None,
                )
            )
        with engine.transaction() as tx:
            tx.executemany(INSERT, params)
        done += n


def timed(action, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows only")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    pg = server_url()
    work = Path(tempfile.mkdtemp(prefix="agentmem-monitoring-"))
    print(
        f"{'backend':<9} {'rows':>9} {'scrape p50 ms':>14} {'operations p50 ms':>18} {'exposition bytes':>17}"
    )
    for rows in sizes:
        for backend in ("sqlite", "postgres"):
            if backend == "sqlite":
                engine = connect(f"sqlite:///{work / f'm{rows}.db'}")
            else:
                engine = connect(pg, schema="bench_mon_" + uuid.uuid4().hex[:8])
            engine.migrate()
            fill(engine, rows)
            registry = CollectorRegistry()
            registry.register(MemoryCollector(engine))
            size = len(generate_latest(registry))  # warm
            scrape = timed(lambda: generate_latest(registry), args.repeat)  # noqa: B023
            ops = timed(Monitor(engine).operations, args.repeat)
            print(f"{backend:<9} {rows:>9,} {scrape:>14.1f} {ops:>18.1f} {size:>17,}")
            engine.close()


if __name__ == "__main__":
    main()
