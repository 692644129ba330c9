"""Load: many simulated users at once on one engine, row-level security on.

Each user (an asyncio task) repeats one session cycle: two chat messages written and the
last ten read, three texts added to the vector memory and one similarity search, one
LangGraph store put and search, and one checkpointed graph step. Between two operations a
user *thinks*: an exponential pause, mean ``--think-ms`` (default 1,000 ms). An agent's
memory operations are separated by at least one model call (0.5-5 s for a chat model's
answer, longer for a human's turn), so a mean of 1 s is a heavy user, not a light one;
``--think-ms 0`` gives the closed loop (every user hammering), which measures only the
queue. Users start spread over the first ``2 x think`` (no thundering herd) and run for
``--duration`` seconds.

All users share one engine connected as the application role (``agentmem
grant-app-role``) with ``row_level_security=True``: directly (a pool of 20 connections),
and through a real PgBouncer in transaction mode (20 server connections). Reported per
run: the offered load (users / (think + latency)) and the achieved throughput, p50/p99 per
operation, errors, rows of another tenant seen by any read (every row a user reads
carries its owner's name), and the CPU one operation costs (this process and the server's
backends), hence the cores the offered load would need. Goal: p99 under 100 ms, zero
errors, zero cross-tenant rows.

    python benchmarks/load.py                       # 100, 300 and 1,000 users, 60 s each
    python benchmarks/load.py --quick               # 100 and 300 users, 15 s each (~3 min)
    python benchmarks/load.py --users 1000 --think-ms 0   # the closed loop
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
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


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of processes (Linux /proc; 0 elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def _backends(owner_url: str) -> list[int]:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity")]


class User:
    """One simulated user: its memories, and the session cycle it repeats."""

    def __init__(self, engine: Engine, user: str, stats: Stats) -> None:
        self.tag, self.stats = f"[{user}]", stats
        self.chat = ChatMessageHistory(engine, "session", user_id=user)
        self.vs = MemoryVectorStore(engine, Hashed(), collection="load", user_id=user)
        self.store = LangGraphStore(
            engine, user_id=user, index={"dims": DIMS, "embed": Hashed(), "fields": ["text"]}
        )
        self.graph = _graph(CheckpointSaver(engine, user_id=user))
        self.n = 0

    def cycle(self) -> list[Callable[[], Awaitable[None]]]:
        return [
            self.chat_write,
            self.chat_read,
            self.vector_add,
            self.vector_search,
            self.store_put,
            self.store_search,
            self.graph_step,
        ]

    async def chat_write(self) -> None:
        tag = self.tag
        await self.stats.time(
            "chat write (2 msgs)",
            lambda: self.chat.aadd_messages(
                [HumanMessage(f"{tag} hello"), AIMessage(f"{tag} hi there")]
            ),
        )

    async def chat_read(self) -> None:
        got = await self.stats.time(
            "chat read (last 10)", lambda: self.chat.aget_messages(limit=10)
        )
        self.stats.leaks += sum(1 for m in got or [] if self.tag not in m.text)

    async def vector_add(self) -> None:
        tag = self.tag
        await self.stats.time(
            "vector add (3 texts)",
            lambda: self.vs.aadd_texts([f"{tag} likes tea", f"{tag} likes rain", f"{tag} reads"]),
        )

    async def vector_search(self) -> None:
        docs = await self.stats.time(
            "vector search k=3", lambda: self.vs.asimilarity_search("tea", k=3)
        )
        self.stats.leaks += sum(1 for d in docs or [] if self.tag not in d.page_content)

    async def store_put(self) -> None:
        self.n += 1
        key, text = f"m{self.n % 5}", f"{self.tag} mornings {self.n}"
        await self.stats.time(
            "store put", lambda: self.store.aput(("memories",), key, {"text": text})
        )

    async def store_search(self) -> None:
        items = await self.stats.time(
            "store search", lambda: self.store.asearch(("memories",), query="mornings", limit=3)
        )
        self.stats.leaks += sum(1 for i in items or [] if self.tag not in i.value["text"])

    async def graph_step(self) -> None:
        before = self.n
        out = await self.stats.time(
            "graph step (checkpointed)",
            lambda: self.graph.ainvoke({"n": before}, {"configurable": {"thread_id": "t"}}),
        )
        if out is not None and out["n"] != before + 1:
            self.stats.leaks += 1


async def user_loop(
    engine: Engine, user: str, stats: Stats, think_s: float, deadline: float, rng: random.Random
) -> None:
    if think_s > 0:  # spread the starts over the first two think times
        await asyncio.sleep(rng.uniform(0, 2 * think_s))
    me = User(engine, user, stats)
    while True:
        for op in me.cycle():
            if time.perf_counter() >= deadline:
                return
            await op()
            if think_s > 0:
                await asyncio.sleep(rng.expovariate(1 / think_s))


class Run:
    def __init__(self, stats: Stats, elapsed: float, cpu_client: float, cpu_server: float) -> None:
        self.stats, self.elapsed = stats, elapsed
        self.cpu_client, self.cpu_server = cpu_client, cpu_server


async def run_users(
    url: str,
    owner_url: str,
    schema: str,
    users: int,
    bouncer: bool,
    think_s: float,
    duration: float,
) -> Run:
    stats = Stats()
    extra: dict[str, Any] = {"prepare_threshold": None} if bouncer else {}
    size = 4 * POOL if bouncer else POOL  # through PgBouncer: more clients than servers
    engine = connect(
        url,
        schema=schema,
        row_level_security=True,
        min_size=size,
        max_size=size,
        timeout=600,
        **extra,
    )
    rng = random.Random(users)
    async with engine:
        run = uuid.uuid4().hex[:6]
        warm = User(engine, f"warmup-{run}", Stats())
        for op in warm.cycle():
            await op()
        pids = _backends(owner_url)
        cpu0, srv0 = time.process_time(), _cpu_seconds(pids)
        start = time.perf_counter()
        await asyncio.gather(
            *(
                user_loop(engine, f"u{i}-{run}", stats, think_s, start + duration, rng)
                for i in range(users)
            )
        )
        elapsed = time.perf_counter() - start
        cpu_client = time.process_time() - cpu0
        cpu_server = _cpu_seconds(_backends(owner_url)) - srv0
    return Run(stats, elapsed, cpu_client, cpu_server)


def report(label: str, users: int, think_s: float, r: Run) -> dict[str, tuple[float, float]]:
    stats = r.stats
    ops = sum(len(v) for v in stats.ms.values())
    every = [x for v in stats.ms.values() for x in v]
    mean_s = statistics.fmean(every) / 1000 if every else 0.0
    offered = users / (think_s + mean_s) if think_s > 0 else float("nan")
    ideal = users / (think_s + 0.001) if think_s > 0 else float("nan")
    achieved = ops / r.elapsed
    cpu_op = (r.cpu_client + r.cpu_server) / ops * 1000 if ops else 0.0
    print(
        f"\n{label}, {users} users, think {think_s * 1000:.0f} ms: {ops} operations in "
        f"{r.elapsed:.1f} s; achieved {achieved:,.1f} ops/s, offered {offered:,.1f} ops/s "
        f"(at zero latency {ideal:,.0f}); {len(stats.errors)} errors, "
        f"{stats.leaks} cross-tenant rows; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"  CPU per operation: {r.cpu_client / max(ops, 1) * 1000:.1f} ms client + "
        f"{r.cpu_server / max(ops, 1) * 1000:.1f} ms server = {cpu_op:.1f} ms; "
        f"the offered load needs {ideal * cpu_op / 1000:,.1f} cores at zero latency, "
        f"used {r.cpu_client / r.elapsed:.2f} (this process, one thread: at most 1) + "
        f"{r.cpu_server / r.elapsed:.2f} (server) cores"
    )
    print(f"  {'operation':<28} {'n':>6} {'p50 ms':>8} {'p99 ms':>8}")
    out = {}
    for name, values in stats.ms.items():
        out[name] = (statistics.median(values), _pct(values, 0.99))
        print(f"  {name:<28} {len(values):>6} {out[name][0]:>8.1f} {out[name][1]:>8.1f}")
    for err in stats.errors[:5]:
        print("  error:", err)
    return out


@contextlib.contextmanager
def direct(url: str) -> Iterator[str]:
    yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, nargs="+", default=None)
    parser.add_argument("--think-ms", type=float, default=1000.0, help="mean think time")
    parser.add_argument("--duration", type=float, default=None, help="seconds per run")
    parser.add_argument("--quick", action="store_true", help="100 and 300 users, 15 s each")
    parser.add_argument("--no-pgbouncer", action="store_true")
    args = parser.parse_args()
    users_list = args.users or ([100, 300] if args.quick else [100, 300, 1000])
    duration = args.duration or (15.0 if args.quick else 60.0)
    think_s = args.think_ms / 1000

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
    growth: dict[str, dict[int, dict[str, tuple[float, float]]]] = defaultdict(dict)
    for label, route in routes:
        with route(app) as url:
            for users in users_list:
                r = asyncio.run(
                    run_users(url, base, schema, users, route is not direct, think_s, duration)
                )
                growth[label][users] = report(label, users, think_s, r)
    if len(users_list) > 1:
        print("\np99 ms by users (p50 in brackets)")
        for label, by in growth.items():
            print(f"  {label}")
            print(f"    {'operation':<28}" + "".join(f"{u:>18}" for u in users_list))
            for name in by[users_list[0]]:
                cells = "".join(
                    f"{by[u][name][1]:>10.1f} ({by[u][name][0]:>5.1f})" for u in users_list
                )
                print(f"    {name:<28}{cells}")
    with connect(base, schema=schema) as owner, owner.transaction() as tx:
        tx.execute_raw(f'DROP SCHEMA "{schema}" CASCADE')  # noqa: S608 (generated name)
        tx.execute_raw(f'DROP OWNED BY "{role}"')
        tx.execute_raw(f'DROP ROLE "{role}"')


if __name__ == "__main__":
    main()
