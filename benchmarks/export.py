"""Export and import of one user with 100,000 memories: time, rows/s and memory.

One user of one embedded PostgreSQL 18 holds ``--n`` vector memories (384 dimensions,
a text and a metadata dict each) and ``--n / 10`` chat messages. ``engine.export_user``
writes them to a zip archive; the archive is then imported into a fresh Postgres schema
(the collection created by the import, so no HNSW index to keep up: the way from a SQLite
dev file to Postgres), as another user into the same schema (every row kept up in the
collection's HNSW index: the server's work, about 100 rows/s at load 10 on 2 cores; only
up to ``--same-schema-max`` memories) and into a SQLite file. Reported per step: seconds, rows/s and the
growth of this process's peak resident memory (``ru_maxrss``) over its resident memory
before the step; the archive's size and the in-memory size of the data (what a
non-streaming export would hold at once) for scale. Bounded memory means the peak growth
stays flat when ``--n`` grows (``--n 10000`` against the default).

No anchor: none of the memory libraries compared elsewhere exports one user's data.

    python benchmarks/export.py               # 100,000 memories
    python benchmarks/export.py --quick       # 10,000 and 30,000 (about a minute)
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _server import server_url
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import HumanMessage

from langchain_agentmem import ChatMessageHistory, MemoryVectorStore, connect

DIMS = 384


def rss_mb() -> float:
    """Resident memory now (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """Peak resident memory so far (ru_maxrss: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step(label: str, rows: int, fn: Callable[[], Any]) -> None:
    gc.collect()
    before, peak_before = rss_mb(), peak_mb()
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    growth = max(0.0, peak_mb() - max(before, peak_before))
    print(
        f"  {label:<34} {seconds:>7.1f} s {rows / seconds:>9,.0f} rows/s   "
        f"peak RSS +{growth:,.0f} MB (RSS before {before:,.0f} MB)"
    )


def run(base: str, n: int, same_max: int) -> None:
    schema = "bench_export_" + uuid.uuid4().hex[:6]
    rng = random.Random(n)
    tmp = Path(tempfile.mkdtemp(prefix="agentmem-export-"))
    archive = tmp / "user.zip"
    with connect(base, schema=schema) as engine:
        engine.migrate()
        vs = MemoryVectorStore(
            engine, DeterministicFakeEmbedding(size=DIMS), collection="bench", user_id="big"
        )
        chat = ChatMessageHistory(engine, "s", user_id="big")
        for lo in range(0, n, 10_000):
            size = min(10_000, n - lo)
            vs.add_embeddings(
                [
                    f"memory {i}: the user likes tea at {i % 24} o'clock"
                    for i in range(lo, lo + size)
                ],
                [[rng.gauss(0, 1) for _ in range(DIMS)] for _ in range(size)],
                [{"i": i, "topic": f"t{i % 100}"} for i in range(lo, lo + size)],
            )
        chat.add_messages([HumanMessage(f"message {i}") for i in range(n // 10)])
        rows = n + n // 10 + 1
        # What holding it all at once would take: the rows as Python objects.
        sample = [[rng.gauss(0, 1) for _ in range(DIMS)] for _ in range(1000)]
        per_row = (sys.getsizeof(sample[0]) + DIMS * sys.getsizeof(1.0)) / 2**20
        print(
            f"\n{n:,} memories + {n // 10:,} messages ({rows:,} rows; as Python objects "
            f"about {per_row * n:,.0f} MB of vectors), load average {os.getloadavg()[0]:.1f}"
        )
        step("export_user (Postgres)", rows, lambda: engine.export_user("big", archive))
        print(f"  archive: {archive.stat().st_size / 2**20:,.0f} MB")
        fresh = schema + "_fresh"
        with connect(base, schema=fresh) as other:
            other.migrate()
            # The collection is created by the import: no HNSW index to keep up yet (the
            # way from a SQLite dev file to Postgres).
            step("import_user (Postgres, fresh schema)", rows, lambda: other.import_user(archive))
            with other.transaction() as tx:
                tx.execute_raw(f'DROP SCHEMA "{fresh}" CASCADE')  # noqa: S608 (generated name)
        if n <= same_max:
            # Into the collection's HNSW index, kept up row by row: the server's work.
            step(
                "import_user (Postgres, as another)",
                rows,
                lambda: engine.import_user(archive, user_id="copy"),
            )
        else:
            print(
                f"  import_user (Postgres, as another): skipped above --same-schema-max {same_max}"
            )
        with connect(f"sqlite:///{tmp / 'dev.db'}") as lite:
            lite.migrate()
            step("import_user (SQLite file)", rows, lambda: lite.import_user(archive))
        with engine.transaction() as tx:
            tx.execute_raw(f'DROP SCHEMA "{schema}" CASCADE')  # noqa: S608 (generated name)
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, nargs="+", default=None, help="memories")
    parser.add_argument("--quick", action="store_true", help="10,000 and 30,000")
    parser.add_argument(
        "--same-schema-max",
        type=int,
        default=10_000,
        help="largest size also imported into the source schema (HNSW kept up per row)",
    )
    args = parser.parse_args()
    sizes = args.n or ([10_000, 30_000] if args.quick else [10_000, 100_000])
    base = server_url()
    for n in sizes:
        run(base, n, args.same_schema_max)


if __name__ == "__main__":
    main()
