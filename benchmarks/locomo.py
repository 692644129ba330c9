"""Benchmark: evidence recall on LoCoMo conversations, MemoryRetriever beside the anchors.

    PYTHONPATH=src python benchmarks/locomo.py /path/to/locomo-dev [--holdout 42,43]

PATH holds LoCoMo's per-conversation JSON files (``speaker_a``, ``session_N``, ``qa``; the
data is CC BY-NC 4.0, for benchmarking only: it is read from PATH, never copied). Every
turn is one message of its conversation's tenant, written through ChatMessageHistory (one
chat session per LoCoMo session, the speaker as the message's ``name``), then indexed by
MemoryRetriever. Every question of categories 1-4 is asked; evidence recall@k is the share
of its evidence turns among the first k results.

All searches use the same offline embedder (LocalEmbeddings, wordllama 256-d) in one run:

* MemoryRetriever (defaults), on SQLite and on Postgres (embedded PostgreSQL + pgvector);
* dense only (MemoryRetriever with every other signal off) and the ablation of each signal;
* BM25 only (rank_bm25's BM25Okapi over the same turns, lower-cased words);
* LangGraph's InMemoryStore semantic search;
* langchain-postgres' PGVectorStore (similarity_search, filtered on the tenant);
* MemoryVectorStore.hybrid_search_with_score(fetch_k=50) (this package before the retriever).

Latency is per question, the whole search (the query's embedding included), p50 and p95.
``--holdout`` names conversations the defaults were not tuned on (reported apart).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from langchain_agentmem import (
    ChatMessageHistory,
    LocalEmbeddings,
    MemoryRetriever,
    MemoryVectorStore,
    connect,
)
from langchain_agentmem.recall import RecallSettings

KS = (5, 10, 25)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


@dataclass
class Conversation:
    name: str
    tenant: str
    turns: list[tuple[str, str, str, str]]  # (dia_id, session_id, speaker, text)
    questions: list[tuple[str, list[str], int]]  # (question, evidence dia_ids, category)
    ids: dict[str, str] = field(default_factory=dict)  # dia_id -> "<session>:<seq>"


def load(path: Path) -> list[Conversation]:
    convs = []
    for file in sorted(path.glob("*.json")):
        data = json.loads(file.read_text())
        turns = []
        n = 1
        while f"session_{n}" in data:
            for turn in data[f"session_{n}"]:
                turns.append((turn["dia_id"], f"session_{n:03d}", turn["speaker"], turn["text"]))
            n += 1
        questions = [
            (str(q["question"]), list(q["evidence"]), int(q["category"]))
            for q in data["qa"]
            if q.get("category") in CATEGORIES and q.get("evidence")
        ]
        convs.append(Conversation(file.stem, f"locomo-{file.stem}", turns, questions))
    return convs


def ingest(engine: Any, conv: Conversation, embeddings: LocalEmbeddings) -> float:
    """Write the turns through ChatMessageHistory and index them; seconds taken."""
    t = time.perf_counter()
    speakers: list[str] = []
    by_session: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for dia_id, session, speaker, text in conv.turns:
        if speaker not in speakers:
            speakers.append(speaker)
        by_session[session].append((dia_id, speaker, text))
    for session, turns in by_session.items():
        messages: list[BaseMessage] = [
            (HumanMessage if speaker == speakers[0] else AIMessage)(text, name=speaker)
            for _, speaker, text in turns
        ]
        ChatMessageHistory(engine, session, user_id=conv.tenant).add_messages(messages)
        for seq, (dia_id, _, _) in enumerate(turns, start=1):
            conv.ids[dia_id] = f"{session}:{seq}"
    MemoryRetriever(engine, embeddings, user_id=conv.tenant).index()
    return time.perf_counter() - t


Search = Callable[[Conversation, str, int], list[str]]


def evaluate(convs: Sequence[Conversation], search: Search) -> dict[str, Any]:
    hits: dict[Any, list[float]] = defaultdict(list)
    latency = []
    for conv in convs:
        for question, evidence, category in conv.questions:
            t = time.perf_counter()
            found = search(conv, question, max(KS))
            latency.append((time.perf_counter() - t) * 1000)
            wanted = {conv.ids[e] for e in evidence if e in conv.ids}
            if not wanted:
                continue
            for k in KS:
                r = len(wanted & set(found[:k])) / len(wanted)
                hits[k].append(r)
                hits[(k, category)].append(r)
                hits[(k, conv.name)].append(r)
    out: dict[str, Any] = {key: statistics.fmean(v) for key, v in hits.items()}
    latency.sort()
    out["p50"] = latency[len(latency) // 2]
    out["p95"] = latency[int(len(latency) * 0.95)]
    out["n"] = len(hits[10])
    return out


def retriever_search(engine: Any, embeddings: Any, settings: RecallSettings | None) -> Search:
    retrievers: dict[str, MemoryRetriever] = {}

    def search(conv: Conversation, question: str, k: int) -> list[str]:
        r = retrievers.get(conv.tenant)
        if r is None:
            r = retrievers[conv.tenant] = MemoryRetriever(
                engine, embeddings, user_id=conv.tenant, settings=settings
            )
        return [str(d.id) for d in r.search(question, k)]

    return search


def bm25_search(convs: Sequence[Conversation]) -> Search:
    from rank_bm25 import BM25Okapi

    def tokens(text: str) -> list[str]:
        return re.findall(r"\w+", text.lower())

    models = {}
    for conv in convs:
        docs = [f"{speaker}: {text}" for _, _, speaker, text in conv.turns]
        models[conv.tenant] = (
            BM25Okapi([tokens(d) for d in docs]),
            [conv.ids[t[0]] for t in conv.turns],
        )

    def search(conv: Conversation, question: str, k: int) -> list[str]:
        model, ids = models[conv.tenant]
        scores = model.get_scores(tokens(question))
        order = sorted(range(len(ids)), key=lambda i: -scores[i])[:k]
        return [ids[i] for i in order]

    return search


def inmemorystore_search(convs: Sequence[Conversation], embeddings: Any) -> Search:
    from langgraph.store.base import PutOp
    from langgraph.store.memory import InMemoryStore

    store = InMemoryStore(index={"dims": 256, "embed": embeddings, "fields": ["text"]})
    for conv in convs:
        store.batch(
            [
                PutOp(("locomo", conv.tenant), conv.ids[d], {"text": f"{s}: {t}"})
                for d, _, s, t in conv.turns
            ]
        )

    def search(conv: Conversation, question: str, k: int) -> list[str]:
        return [item.key for item in store.search(("locomo", conv.tenant), query=question, limit=k)]

    return search


def pgvectorstore_search(url: str, convs: Sequence[Conversation], embeddings: Any) -> Search:
    from langchain_postgres import Column, PGEngine, PGVectorStore

    pg = PGEngine.from_connection_string(url.replace("postgresql://", "postgresql+psycopg://", 1))
    table = "bench_locomo_" + uuid.uuid4().hex[:6]
    pg.init_vectorstore_table(
        table, 256, metadata_columns=[Column("tenant", "TEXT"), Column("turn", "TEXT")]
    )
    store = PGVectorStore.create_sync(pg, embeddings, table, metadata_columns=["tenant", "turn"])
    for conv in convs:
        store.add_texts(
            [f"{s}: {t}" for _, _, s, t in conv.turns],
            [{"tenant": conv.tenant, "turn": conv.ids[d]} for d, _, _, _ in conv.turns],
        )

    def search(conv: Conversation, question: str, k: int) -> list[str]:
        docs = store.similarity_search(question, k=k, filter={"tenant": conv.tenant})
        return [d.metadata["turn"] for d in docs]

    return search


def hybrid_search(engine: Any, convs: Sequence[Conversation], embeddings: Any) -> Search:
    stores = {}
    for conv in convs:
        store = MemoryVectorStore(engine, embeddings, collection="locomo", user_id=conv.tenant)
        store.add_texts(
            [f"{s}: {t}" for _, _, s, t in conv.turns],
            ids=[conv.ids[d] for d, _, _, _ in conv.turns],
        )
        stores[conv.tenant] = store

    def search(conv: Conversation, question: str, k: int) -> list[str]:
        pairs = stores[conv.tenant].hybrid_search_with_score(question, k=k, fetch_k=50)
        return [str(d.id) for d, _ in pairs]

    return search


ABLATIONS: list[tuple[str, RecallSettings]] = [
    (
        "dense only",
        {
            "dense": 1.0,
            "lexical": 0,
            "neighbours": 0,
            "session": 0,
            "names": 0,
            "time": 0,
            "entities": 0,
        },
    ),
    (
        "lexical only (our BM25)",
        {
            "dense": 0,
            "neighbours": 0,
            "session": 0,
            "names": 0,
            "time": 0,
            "entities": 0,
            "context": 0,
        },
    ),
    ("+ dense (weight 0.2, the default before)", {"dense": 0.2}),
    ("- lexical (dense on at weight 1)", {"lexical": 0, "dense": 1.0}),
    ("- context (BM25 widening)", {"context": 0}),
    ("- neighbours", {"neighbours": 0}),
    ("- session", {"session": 0}),
    ("- names", {"names": 0}),
    ("- time", {"time": 0}),
    ("fusion rrf", {"fusion": "rrf"}),
]


def row(
    label: str, m: dict[str, Any], holdout: Sequence[str], convs: Sequence[Conversation]
) -> str:
    cells = [f"{m[k]:.3f}" for k in KS] + [
        f"{m.get((10, c), float('nan')):.3f}" for c in CATEGORIES
    ]
    tuned = [c.name for c in convs if c.name not in holdout]
    if holdout:
        held = [m[(10, c)] for c in holdout if (10, c) in m]
        seen = [m[(10, c)] for c in tuned if (10, c) in m]
        cells += [f"{statistics.fmean(seen):.3f}", f"{statistics.fmean(held):.3f}"]
    cells += [f"{m['p50']:.2f}", f"{m['p95']:.2f}"]
    return f"| {label} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", type=Path)
    parser.add_argument(
        "--holdout", default="42,43", help="conversations not tuned on (comma separated)"
    )
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--no-anchors", action="store_true")
    parser.add_argument("--no-ablation", action="store_true")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one round per backend, the anchors, and of the ablation only dense only, "
        "lexical only and + dense (about 3 minutes on a quiet machine)",
    )
    args = parser.parse_args()
    holdout = [h for h in args.holdout.split(",") if h]
    embeddings = LocalEmbeddings()
    embeddings.embed_query("warm up")
    convs = load(args.path)
    print(
        f"{len(convs)} conversations, {sum(len(c.turns) for c in convs)} turns, "
        f"{sum(len(c.questions) for c in convs)} questions (categories 1-4); holdout {holdout}"
    )

    if args.postgres_url:
        url = args.postgres_url
    else:
        from _server import server_url

        url = server_url()
    lite = connect(f"sqlite:///{tempfile.mkdtemp(prefix='locomo-')}/bench.sqlite3")
    lite.migrate()
    pg = connect(url, schema="locomo_bench_" + uuid.uuid4().hex[:6])
    pg.migrate()
    for engine, name in ((lite, "sqlite"), (pg, "postgres")):
        seconds = sum(ingest(engine, c, embeddings) for c in convs)
        print(f"ingest + index on {name}: {seconds:.1f} s")

    results: list[tuple[str, dict[str, Any]]] = []

    def measure(label: str, search: Search) -> None:
        search(convs[0], convs[0].questions[0][0], 10)  # warm up
        m = evaluate(convs, search)
        results.append((label, m))
        print(
            f"{label:42} R@5 {m[5]:.3f}  R@10 {m[10]:.3f}  R@25 {m[25]:.3f}  "
            f"p50 {m['p50']:.2f} ms  p95 {m['p95']:.2f} ms",
            flush=True,
        )

    print(f"load average at start: {os.getloadavg()}")
    # Alternate the backends twice; the latency reported is the second round's.
    for _ in range(1 if args.quick else 2):
        results.clear()
        measure("MemoryRetriever, SQLite", retriever_search(lite, embeddings, None))
        measure("MemoryRetriever, Postgres", retriever_search(pg, embeddings, None))

    # The async form on one backend (same figures expected).
    async def arun() -> dict[str, Any]:
        retrievers = {c.tenant: MemoryRetriever(pg, embeddings, user_id=c.tenant) for c in convs}
        hits = []
        for conv in convs:
            for question, evidence, _ in conv.questions:
                docs = await retrievers[conv.tenant].asearch(question, 10)
                wanted = {conv.ids[e] for e in evidence if e in conv.ids}
                if wanted:
                    hits.append(len(wanted & {str(d.id) for d in docs}) / len(wanted))
        return {"R@10": statistics.fmean(hits)}

    print("MemoryRetriever, Postgres, asearch:", asyncio.run(arun()))
    if not args.no_anchors:
        measure("anchor: BM25 (rank_bm25)", bm25_search(convs))
        measure("anchor: LangGraph InMemoryStore", inmemorystore_search(convs, embeddings))
        measure(
            "anchor: PGVectorStore (langchain-postgres)",
            pgvectorstore_search(url, convs, embeddings),
        )
        if not args.quick:
            measure(
                "MemoryVectorStore hybrid (fetch_k=50), SQLite",
                hybrid_search(lite, convs, embeddings),
            )
    if not args.no_ablation:
        for label, settings in ABLATIONS[:3] if args.quick else ABLATIONS:
            measure(f"{label}, SQLite", retriever_search(lite, embeddings, settings))

    head = "| search | R@5 | R@10 | R@25 | " + " | ".join(f"R@10 {c}" for c in CATEGORIES.values())
    if holdout:
        head += " | R@10 tuned | R@10 held out"
    head += " | p50 ms | p95 ms |"
    print("\n" + head)
    print("|" + "---|" * (head.count("|") - 1))
    for label, m in results:
        print(row(label, m, holdout, convs))
    print(
        "\nper conversation, R@10 (MemoryRetriever, SQLite):",
        {c.name: round(results[0][1][(10, c.name)], 3) for c in convs},
    )
    print(f"load average at end: {os.getloadavg()}")
    lite.close()
    pg.close()


if __name__ == "__main__":
    main()
