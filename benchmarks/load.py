"""Load: many simulated users at once on one engine, row-level security on.

Each user (an asyncio task) runs one session: two chat messages written and the last ten
read, three texts added to the vector memory and one similarity search, one LangGraph
store put and search, and one checkpointed graph step. All users start together on one
engine connected as the application role (``agentmem grant-app-role``) with
``row_level_security=True``: directly (a pool of 20 connections), and through a real
PgBouncer in transaction mode (20 server connections). Reported: throughput, p50/p99 per
operation, errors, and rows of another tenant seen by any read (every row a user reads
carries its owner's name). Goal: p99 under 100 ms, zero errors, zero cross-tenant rows.

    python benchmarks/load.py                      # 100 and 1,000 users
    python benchmarks/load.py --users 50 200       # smaller
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from _server import server_url
from langchain_core.messages import AIMessage, HumanMessage

from langchain_agentmem import (
    ChatMessageHistory,
    CheckpointSaver,
    Engine,
    LangGraphStore,
    MemoryVectorStore,
    connect,
)
from langchain_agentmem.tenancy import grant_app_role

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _workload import DIMS, Hashed, _graph  # noqa: E402
from pgbouncer_server import available, pgbouncer  # noqa: E402

POOL = 20


def role_url(url: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}:{quote(password, safe='')}@{host}"))


class Stats:
    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.leaks = 0

    async def time(self, name: str, op: Callable[[], Awaitable[Any]]) -> Any:
        start = time.perf_counter()
        try:
            return await op()
        except Exception as exc:
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            return None
        finally:
            self.ms[name].append((time.perf_counter() - start) * 1000)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def user_session(engine: Engine, user: str, stats: Stats) -> None:
    tag = f"[{user}]"
    chat = ChatMessageHistory(engine, "session", user_id=user)
    await stats.time(
        "chat write (2 msgs)",
        lambda: chat.aadd_messages([HumanMessage(f"{tag} hello"), AIMessage(f"{tag} hi there")]),
    )
    got = await stats.time("chat read (last 10)", lambda: chat.aget_messages(limit=10))
    stats.leaks += sum(1 for m in got or [] if tag not in m.text)

    vs = MemoryVectorStore(engine, Hashed(), collection="load", user_id=user)
    await stats.time(
        "vector add (3 texts)",
        lambda: vs.aadd_texts([f"{tag} likes tea", f"{tag} likes rain", f"{tag} reads books"]),
    )
    docs = await stats.time("vector search k=3", lambda: vs.asimilarity_search("tea", k=3))
    stats.leaks += sum(1 for d in docs or [] if tag not in d.page_content)

    store = LangGraphStore(
        engine, user_id=user, index={"dims": DIMS, "embed": Hashed(), "fields": ["text"]}
    )
    await stats.time(
        "store put", lambda: store.aput(("memories",), "m1", {"text": f"{tag} mornings"})
    )
    items = await stats.time(
        "store search", lambda: store.asearch(("memories",), query="mornings", limit=3)
    )
    stats.leaks += sum(1 for i in items or [] if tag not in i.value["text"])

    graph = _graph(CheckpointSaver(engine, user_id=user))
    thread = {"configurable": {"thread_id": "t"}}
    out = await stats.time("graph step (checkpointed)", lambda: graph.ainvoke({"n": 1}, thread))
    if out is not None and out["n"] != 2:
        stats.leaks += 1


async def run_users(url: str, schema: str, users: int, bouncer: bool) -> tuple[Stats, float]:
    stats = Stats()
    extra: dict[str, Any] = {"prepare_threshold": None} if bouncer else {}
    size = 4 * POOL if bouncer else POOL  # through PgBouncer: more clients than servers
    engine = connect(
        url,
        schema=schema,
        row_level_security=True,
        min_size=size,
        max_size=size,
        timeout=120,
        **extra,
    )
    async with engine:
        run = uuid.uuid4().hex[:6]
        await user_session(engine, f"warmup-{run}", Stats())
        start = time.perf_counter()
        await asyncio.gather(*(user_session(engine, f"u{i}-{run}", stats) for i in range(users)))
        elapsed = time.perf_counter() - start
    return stats, elapsed


def report(label: str, users: int, stats: Stats, elapsed: float) -> dict[str, float]:
    ops = sum(len(v) for v in stats.ms.values())
    print(
        f"\n{label}, {users} users: {ops} operations in {elapsed:.1f} s = {ops / elapsed:,.0f} ops/s, "
        f"{len(stats.errors)} errors, {stats.leaks} cross-tenant rows"
    )
    print(f"  {'operation':<28} {'p50 ms':>8} {'p99 ms':>8}")
    p99s = {}
    for name, values in stats.ms.items():
        p99s[name] = _pct(values, 0.99)
        print(f"  {name:<28} {statistics.median(values):>8.1f} {p99s[name]:>8.1f}")
    for err in stats.errors[:5]:
        print("  error:", err)
    return p99s


@contextlib.contextmanager
def direct(url: str) -> Iterator[str]:
    yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--no-pgbouncer", action="store_true")
    args = parser.parse_args()

    base = server_url()
    schema = "bench_load_" + uuid.uuid4().hex[:6]
    role, password = "load_app_" + uuid.uuid4().hex[:6], "load-pw"
    with connect(base, schema=schema) as owner:
        owner.migrate()
        grant_app_role(owner, role, password=password)
        MemoryVectorStore(owner, Hashed(), collection="load", user_id="__owner__").add_texts(
            ["seed"]
        )
    app = role_url(base, role, password)
    routes: list[tuple[str, Callable[[str], contextlib.AbstractContextManager[str]]]] = [
        (f"direct, pool of {POOL}", direct)
    ]
    if not args.no_pgbouncer and available():
        routes.append(
            (
                f"PgBouncer transaction mode, {POOL} server connections",
                lambda u: pgbouncer(u, pool_size=POOL),
            )
        )
    growth: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
    for label, route in routes:
        with route(app) as url:
            for users in args.users:
                stats, elapsed = asyncio.run(run_users(url, schema, users, route is not direct))
                growth[label][users] = report(label, users, stats, elapsed)
    if len(args.users) > 1:
        lo, hi = min(args.users), max(args.users)
        print(f"\np99 growth from {lo} to {hi} users (ms)")
        for label, by in growth.items():
            print(f"  {label}")
            for name in by[lo]:
                print(
                    f"    {name:<28} {by[lo][name]:>8.1f} -> {by[hi][name]:>8.1f}  "
                    f"({by[hi][name] / by[lo][name]:.1f}x)"
                )
    with connect(base, schema=schema) as owner, owner.transaction() as tx:
        tx.execute_raw(f'DROP SCHEMA "{schema}" CASCADE')  # noqa: S608 (generated name)
        tx.execute_raw(f'DROP OWNED BY "{role}"')
        tx.execute_raw(f'DROP ROLE "{role}"')


if __name__ == "__main__":
    main()
