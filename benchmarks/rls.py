"""Row-level security on versus off: chat history, vector search and checkpoints.

One schema, one process, the same rows. "off" is today's engine: the schema's owner (a
superuser here, whom policies never bind) without ``row_level_security``. "on" is the
application role (``agentmem grant-app-role``: no BYPASSRLS, owns nothing) with
``row_level_security=True``: every transaction sets its tenant (``SET LOCAL``
semantics) and every row goes through the tenant policy. Rounds alternate off/on and the
medians of the rounds' p50s are printed with the ratio (goal: on at most 10% slower).
A third side, "set", is the owner with ``row_level_security=True``: the tenant set in
every transaction but no policy applied (superusers bypass them), which tells the cost
of the setting from the cost of the policies.

    python benchmarks/rls.py                 # --quick for a smoke run
    python benchmarks/rls.py --rtt-ms 1      # the server one network hop away
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from _server import server_url
from langchain_core.messages import AIMessage, HumanMessage

from langchain_agentmem import ChatMessageHistory, CheckpointSaver, MemoryVectorStore, connect
from langchain_agentmem.tenancy import grant_app_role

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _workload import Hashed, _graph  # noqa: E402

TENANTS = 8


def role_url(url: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}:{quote(password, safe='')}@{host}"))


def p50_ms(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


#: The tables the load writes (the checkpoint tables stay empty until the rounds).
LOADED = ("vector_collections", "vectors", "sessions", "events")


def analyze(url: str, schema: str) -> None:
    """VACUUM ANALYZE the loaded tables, as autovacuum would after a load."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        for table in LOADED:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(schema, table)))


@contextlib.contextmanager
def hop(url: str, rtt_ms: float) -> Iterator[str]:
    if rtt_ms <= 0:
        yield url
        return
    from _latency import delayed_url

    with delayed_url(url, one_way_ms=rtt_ms / 2) as slow:
        yield slow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and rows")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="network round trip to add")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    calls = 20 if args.quick else 60
    vectors = 300 if args.quick else 2000

    base = server_url()
    schema = "bench_rls_" + uuid.uuid4().hex[:6]
    role, password = "bench_app_" + uuid.uuid4().hex[:6], "bench-pw"
    with connect(base, schema=schema) as owner:
        owner.migrate()
        grant_app_role(owner, role, password=password)
        MemoryVectorStore(owner, Hashed(), collection="bench", user_id="__owner__").add_texts(
            ["seed"]
        )
    with hop(base, args.rtt_ms) as url:
        off = connect(url, schema=schema, max_size=2)
        # The owner (a superuser: policies never bind it) setting the tenant: the cost of
        # the per-transaction setting alone, without the policies.
        setting = connect(url, schema=schema, max_size=2, row_level_security=True)
        on = connect(
            role_url(url, role, password), schema=schema, max_size=2, row_level_security=True
        )
        words = "tea rain mornings music cats dogs rivers hills books code".split()
        # Rows of every tenant (written with RLS on: the policy's WITH CHECK admits them).
        for t in range(TENANTS):
            user = f"user-{t}"
            vs = MemoryVectorStore(on, Hashed(), collection="bench", user_id=user)
            vs.add_texts([f"{words[i % 10]} {words[(i * 7) % 10]} {i}" for i in range(vectors)])
            ChatMessageHistory(on, "long", user_id=user).add_messages(
                [HumanMessage(f"message {i} " * 8) for i in range(200)]
            )
        # Statistics as autovacuum keeps them. Without them the planner takes every
        # tenant for a few rows, which under the policy makes a handle list look costlier
        # than a scan of the tenant (see vector_index: the exact search by handle).
        analyze(base, schema)

        def ops(engine: Any) -> dict[str, Callable[[], object]]:
            user = "user-3"
            chat = ChatMessageHistory(engine, "s-" + uuid.uuid4().hex[:6], user_id=user)
            long = ChatMessageHistory(engine, "long", user_id=user)
            vs = MemoryVectorStore(engine, Hashed(), collection="bench", user_id=user)
            graph = _graph(CheckpointSaver(engine, user_id=user))
            thread = {"configurable": {"thread_id": "t-" + uuid.uuid4().hex[:6]}}
            return {
                "chat: add one message": lambda: chat.add_messages([AIMessage("hello there")]),
                "chat: last 20 messages": lambda: long.get_messages(limit=20),
                "chat: read 200 messages": lambda: long.messages,
                "vector: similarity search k=4": lambda: vs.similarity_search("tea music", k=4),
                "checkpoint: graph step (put+get)": lambda: graph.invoke({"n": 1}, thread),
            }

        sides = {"off": ops(off), "set": ops(setting), "on": ops(on)}
        for side in sides.values():  # warm up
            for fn in side.values():
                for _ in range(5):
                    fn()
        figures: dict[str, dict[str, list[float]]] = {
            name: {side: [] for side in sides} for name in sides["off"]
        }
        for r in range(rounds):
            order = ["off", "set", "on"] if r % 2 == 0 else ["on", "set", "off"]
            for name in figures:
                for side in order:
                    figures[name][side].append(p50_ms(sides[side][name], calls))
        print(
            f"\nrow-level security, {rounds} alternating rounds of {calls} calls, "
            f"{TENANTS} tenants x {vectors} vectors, added rtt {args.rtt_ms} ms"
        )
        print("set: the owner with row_level_security=True (tenant set, no policy applies)")
        print(f"{'p50 (ms)':<36} {'off':>8} {'set':>8} {'on':>8} {'set/off':>8} {'on/off':>8}")
        for name, by in figures.items():
            a, m, b = (statistics.median(by[k]) for k in ("off", "set", "on"))
            print(f"{name:<36} {a:>8.2f} {m:>8.2f} {b:>8.2f} {m / a:>7.2f}x {b / a:>7.2f}x")
        off.close()
        setting.close()
        on.close()
    with connect(base, schema=schema) as owner, owner.transaction() as tx:
        tx.execute_raw(f'DROP SCHEMA "{schema}" CASCADE')  # noqa: S608 (generated name)
        tx.execute_raw(f'DROP OWNED BY "{role}"')
        tx.execute_raw(f'DROP ROLE "{role}"')


if __name__ == "__main__":
    main()
