"""Episodic memory: an agent records what it saw, did and how that turned out, and recalls
similar situations before it decides. Every test runs on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import math
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from langchain_agentmem import Engine, EpisodicMemory, Ranking
from langchain_agentmem.episodes import (
    EpisodeNotFoundError,
    OutcomeExistsError,
    episode_tools,
)

DIMS = 16


def memory(engine: Engine, user: str = "alice", project: str = "billing") -> EpisodicMemory:
    return EpisodicMemory(
        engine, DeterministicFakeEmbedding(size=DIMS), user_id=user, project=project
    )


class Lookup(Embeddings):
    """Embeds texts of the form ``"v<n>"`` as row ``n`` of a fixed matrix."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix

    def _one(self, text: str) -> list[float]:
        return [float(x) for x in self.matrix[int(text[1:])]]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def test_record_then_outcome_then_recall(engine: Engine) -> None:
    mem = memory(engine)
    ep = mem.record(
        {"alert": "invoice 42 failed", "queue": 3},
        "the mail server timed out",
        {"tool": "retry", "after_s": 300},
        control_mode="rule_based_only",
        decision_source="rule:R12",
        agent_version="1.4.0",
        tags=["email", "retry"],
        metadata={"sprint_id": "S-12"},
    )
    assert ep.outcome is None and ep.outcome_quality is None and ep.outcome_at is None
    assert ep.timestamp.tzinfo is not None and ep.project == "billing"
    assert [e.id for e in mem.pending_outcomes()] == [ep.id]

    done = mem.record_outcome(ep.id, {"sent": True}, 0.9)
    assert done.outcome == {"sent": True} and done.outcome_quality == 0.9
    assert done.outcome_at is not None and done.outcome_at >= ep.created_at
    assert mem.pending_outcomes() == []

    again = mem.get(ep.id)
    assert again == done
    assert again.tags == ["email", "retry"] and again.metadata == {"sprint_id": "S-12"}
    assert (again.control_mode, again.decision_source, again.agent_version) == (
        "rule_based_only",
        "rule:R12",
        "1.4.0",
    )

    found = mem.recall_similar({"alert": "invoice 42 failed", "queue": 3}, k=3)
    assert [r.episode.id for r in found] == [ep.id]
    assert math.isclose(found[0].similarity, 1.0, abs_tol=1e-5)
    assert mem.recall_similar("anything", k=3, project="other") == []
    assert mem.delete(ep.id) == 1 and mem.get(ep.id) is None and mem.delete([ep.id]) == 0


async def test_async_forms(aengine: Engine) -> None:
    mem = memory(aengine)
    ep = await mem.arecord(
        "disk full", "logs grew", "rotate logs", outcome="freed", outcome_quality=1
    )
    assert ep.outcome_at is not None and (await mem.apending_outcomes()) == []
    later = await mem.arecord("disk full again", "logs grew", "rotate logs")
    await mem.arecord_outcome(later.id, "freed 10 GB", 0.4)
    ids = await mem.arecord_many([{"perception": "cpu hot", "reasoning": "r", "action": "a"}])
    # Newest first, ties (the same stored instant, on a fast machine) by id.
    eps = [await mem.aget(i) for i in (ids[0], later.id, ep.id)]
    by_id = sorted(eps, key=lambda e: e.id)  # type: ignore[union-attr]
    newest = sorted(by_id, key=lambda e: e.created_at, reverse=True)  # type: ignore[union-attr]
    assert [e.id for e in await mem.alist()] == [e.id for e in newest]  # type: ignore[union-attr]
    found = await mem.arecall_similar("disk full", k=1, min_quality=0.5)
    assert [r.episode.id for r in found] == [ep.id]
    assert await mem.adelete([ep.id, later.id]) == 2
    assert (await mem.aget(ids[0])).perception == "cpu hot"  # type: ignore[union-attr]


def test_list_by_project_time_mode_and_metadata(engine: Engine) -> None:
    mem = memory(engine)
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    ids = mem.record_many(
        [
            {
                "perception": f"p{i}",
                "reasoning": "r",
                "action": "a",
                "project": "billing" if i % 2 else "search",
                "created_at": t0 + timedelta(days=i),
                "control_mode": "memory_augmented" if i < 4 else "intelligence_enhanced",
                "metadata": {"sprint_id": f"S-{i % 3}"},
                **({"outcome": "ok", "outcome_quality": i / 10} if i >= 3 else {}),
            }
            for i in range(8)
        ]
    )
    assert [e.id for e in mem.list()] == [ids[7], ids[5], ids[3], ids[1]]
    assert [e.id for e in mem.list("search", since=t0 + timedelta(days=2))] == [
        ids[6],
        ids[4],
        ids[2],
    ]
    assert [e.id for e in mem.list(all_projects=True, until=t0 + timedelta(days=2))] == [
        ids[1],
        ids[0],
    ]
    assert [
        e.id for e in mem.list(all_projects=True, control_mode="intelligence_enhanced", limit=2)
    ] == [ids[7], ids[6]]
    assert [e.id for e in mem.list(all_projects=True, with_outcome=False)] == [
        ids[2],
        ids[1],
        ids[0],
    ]
    assert [e.id for e in mem.list(all_projects=True, filter={"sprint_id": "S-1"})] == [
        ids[7],
        ids[4],
        ids[1],
    ]
    assert [e.id for e in mem.pending_outcomes(all_projects=True)] == [ids[0], ids[1], ids[2]]
    assert [e.id for e in mem.pending_outcomes("search", older_than=timedelta(days=1))] == [
        ids[0],
        ids[2],
    ]
    assert mem.get(ids[5]).outcome_at == t0 + timedelta(days=5)  # type: ignore[union-attr]


def test_the_view_sums_quality_up_per_project(engine: Engine) -> None:
    mem = memory(engine)
    mem.record_many(
        [
            {
                "perception": "a",
                "reasoning": "r",
                "action": "x",
                "outcome": "ok",
                "outcome_quality": 0.5,
            },
            {
                "perception": "b",
                "reasoning": "r",
                "action": "x",
                "outcome": "ok",
                "outcome_quality": 1.0,
            },
            {"perception": "c", "reasoning": "r", "action": "x"},
            {"perception": "d", "reasoning": "r", "action": "x", "project": "ops"},
        ]
    )
    with engine.transaction(readonly=True) as tx:
        rows = tx.fetchall(
            "SELECT project, episodes, with_outcome, pending, avg_quality, min_quality, max_quality "
            "FROM {v_episode_quality_by_project} WHERE user_id = ? ORDER BY project",
            ["alice"],
        )
    for bad in ("outcome_quality = 1.5", "control_mode = 'yolo'"):  # the table's CHECKs too
        with pytest.raises(Exception, match="(?i)check"), engine.transaction() as tx:
            tx.execute("UPDATE {episodes} SET " + bad + " WHERE user_id = ?", ["alice"])  # noqa: S608 (constants)
    assert [tuple(r) for r in rows] == [
        ("billing", 3, 2, 1, 0.75, 0.5, 1.0),
        ("ops", 1, 0, 1, None, None, None),
    ]


def test_recall_is_the_true_top_k_in_scope_against_brute_force(engine: Engine) -> None:
    rng = np.random.default_rng(7)
    n = 300
    vecs = rng.normal(size=(n, DIMS)).astype(np.float32)
    queries = rng.normal(size=(10, DIMS)).astype(np.float32)
    emb = Lookup(np.vstack([vecs, queries]))
    projects = [f"p{i % 3}" for i in range(n)]
    sprints = [f"S-{i % 4}" for i in range(n)]
    quality = [None if i % 5 == 0 else (i % 11) / 10 for i in range(n)]
    mem = EpisodicMemory(engine, emb, user_id="alice", project="p1")
    memory(engine, user="bob", project="p1").record_many(
        [{"perception": "x", "reasoning": "r", "action": "a", "embedding": v} for v in vecs[:50]]
    )  # another tenant's near-identical rows stay out
    ids = mem.record_many(
        [
            {
                "perception": f"v{i}",
                "reasoning": "r",
                "action": "a",
                "project": projects[i],
                "metadata": {"sprint_id": sprints[i]},
                **(
                    {"outcome": "done", "outcome_quality": quality[i]}
                    if quality[i] is not None
                    else {}
                ),
            }
            for i in range(n)
        ]
    )
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    for j, q in enumerate(queries):
        keep = np.array(
            [
                projects[i] == "p1"
                and sprints[i] in ("S-1", "S-2")
                and quality[i] is not None
                and quality[i] >= 0.3
                for i in range(n)
            ]
        )
        sims = unit @ (q / np.linalg.norm(q))
        order = sorted(np.flatnonzero(keep), key=lambda i: -sims[i])[:10]
        found = mem.recall_similar(
            f"v{n + j}", k=10, min_quality=0.3, filter={"sprint_id": {"$in": ["S-1", "S-2"]}}
        )
        assert [r.episode.id for r in found] == [ids[i] for i in order]
        assert np.allclose([r.similarity for r in found], sims[order], atol=1e-5)


def test_ranking_weighs_quality_and_recency_over_an_exact_pool(engine: Engine) -> None:
    base = np.eye(DIMS, dtype=np.float32)[0]
    near = base + 0.1 * np.eye(DIMS, dtype=np.float32)[1]
    emb = Lookup(np.vstack([base, near, base]))
    mem = EpisodicMemory(engine, emb, user_id="alice")
    now = datetime.now(timezone.utc)
    best, good_old, bad = mem.record_many(
        [
            {
                "perception": "v0",
                "reasoning": "r",
                "action": "exact match, bad outcome",
                "outcome": "no",
                "outcome_quality": 0.0,
            },
            {
                "perception": "v1",
                "reasoning": "r",
                "action": "close, good outcome",
                "outcome": "yes",
                "outcome_quality": 1.0,
                "created_at": now - timedelta(days=60),
            },
            {"perception": "v1", "reasoning": "r", "action": "close, pending"},
        ]
    )
    plain = mem.recall_similar("v2", k=3)
    assert plain[0].episode.id == best and plain[0].score == plain[0].similarity
    ranked = mem.recall_similar("v2", k=2, ranking=Ranking(quality=1.0))
    assert [r.episode.id for r in ranked] == [good_old, bad]  # pending counts as 0.5
    recent = mem.recall_similar(
        "v2", k=1, ranking=Ranking(quality=1.0, recency=2.0, half_life=timedelta(days=30))
    )
    expected = Ranking(quality=1.0, recency=2.0).score(recent[0].similarity, None, timedelta(0))
    assert recent[0].episode.id == bad and math.isclose(recent[0].score, expected, rel_tol=1e-3)
    assert len(mem.recall_similar("v2", k=3, only_with_outcome=True)) == 2


BAD_INPUT: list[tuple[Any, str]] = [
    (lambda m, e: m.record_outcome(e, "ok", 1.5), "quality must be a number from 0 to 1, got 1.5"),
    (lambda m, e: m.record_outcome(e, "ok", float("nan")), "got nan"),
    (lambda m, e: m.record_outcome(e, "ok", True), "got True"),
    (
        lambda m, e: m.record("p", "r", "a", control_mode="yolo"),
        "control_mode must be one of 'rule_based_only'",
    ),
    (lambda m, e: m.record("p", "r", "a", outcome="x", outcome_quality=-0.1), "got -0.1"),
    (
        lambda m, e: m.record("p", "r", "a", outcome_quality=0.5),
        "an outcome_quality needs an outcome",
    ),
    (
        lambda m, e: m.record("p", "r", "a", metadata={"score": float("inf")}),
        "metadata['score'] is inf",
    ),
    (
        lambda m, e: m.record_many(
            [
                {"perception": "p", "reasoning": "r", "action": "a"},
                {"perception": "p", "reasoning": "r", "action": "a", "embedding": [0.0] * 3},
            ]
        ),
        "expected 16 dimensions, got 3",
    ),
    (
        lambda m, e: m.record_many(
            [{"perception": "p", "reasoning": "r", "action": "a", "mood": 1}]
        ),
        "unknown fields ['mood']",
    ),
    (lambda m, e: m.recall_similar("p", min_quality=2), "min_quality must be a number from 0 to 1"),
    (lambda m, e: m.recall_similar("p", filter={"$nope": 1}), "unknown filter operator"),
]


def test_bad_input_is_refused_and_nothing_is_lost(engine: Engine) -> None:
    mem = memory(engine)
    ep = mem.record("p", "r", "a")
    mem.record_outcome(ep.id, "first", 0.2)
    before = mem.list(all_projects=True)
    for call, message in BAD_INPUT:
        with pytest.raises((ValueError, TypeError)) as info:
            call(mem, ep.id)
        assert message in str(info.value)
        assert mem.list(all_projects=True) == before


def test_another_users_episode_is_neither_read_nor_changed(engine: Engine) -> None:
    alice, bob = memory(engine, "alice"), memory(engine, "bob")
    theirs = bob.record("bob's situation", "r", "a")
    with pytest.raises(EpisodeNotFoundError, match="user 'alice' has no episode"):
        alice.record_outcome(theirs.id, "hijacked", 0.0)
    assert alice.get(theirs.id) is None and alice.delete(theirs.id) == 0
    assert alice.recall_similar("bob's situation", k=5) == []
    assert alice.list(all_projects=True) == [] and alice.pending_outcomes(all_projects=True) == []
    assert bob.get(theirs.id) == theirs


def test_any_text_round_trips_exactly(engine: Engine) -> None:
    odd = "nul\x00 lone\ud800 pair\ud83d\ude00 emoji😀 back\\slash"
    mem = EpisodicMemory(engine, DeterministicFakeEmbedding(size=DIMS), user_id=odd, project=odd)
    ep = mem.record(
        {odd: [odd, 1, 2.5, None, True]},
        odd,
        [odd],
        outcome={"said": odd},
        outcome_quality=0.5,
        decision_source=odd,
        agent_version=odd,
        tags=[odd, "plain"],
        metadata={"ref": odd, odd: odd},
    )
    ids = mem.record_many(
        [
            {
                "id": odd,
                "perception": odd,
                "reasoning": odd,
                "action": odd,
                "tags": [odd],
                "metadata": {"ref": odd},
            }
        ]
    )
    assert ids == [odd]
    got = mem.get(ep.id)
    assert got == ep
    assert (got.perception, got.reasoning, got.action, got.outcome) == (
        {odd: [odd, 1, 2.5, None, True]},
        odd,
        [odd],
        {"said": odd},
    )  # type: ignore[union-attr]
    assert (got.project, got.decision_source, got.agent_version, got.tags) == (
        odd,
        odd,
        odd,
        [odd, "plain"],
    )  # type: ignore[union-attr]
    other = mem.get(odd)
    assert other is not None and other.metadata == {"ref": odd} and other.perception == odd
    assert [r.episode.id for r in mem.recall_similar(odd, k=1)] == [odd]
    # Filters compare strings with NUL exactly (lone surrogates: see the filter compiler).
    mem.record_many(
        [
            {
                "id": "n",
                "perception": odd,
                "reasoning": "r",
                "action": "a",
                "metadata": {"ref": "a\x00b"},
            }
        ]
    )
    assert [r.episode.id for r in mem.recall_similar(odd, k=5, filter={"ref": "a\x00b"})] == ["n"]


def test_wrong_embedding_size_is_a_clear_error(engine: Engine) -> None:
    mem = EpisodicMemory(engine, DeterministicFakeEmbedding(size=8), user_id="alice", dims=16)
    with pytest.raises(ValueError, match="expected 16 dimensions, got 8"):
        mem.record("p", "r", "a")
    with pytest.raises(ValueError, match="expected 16 dimensions, got 8"):
        mem.recall_similar("p")
    assert mem.list(all_projects=True) == []


def test_outcomes_arriving_concurrently(engine: Engine) -> None:
    mem = memory(engine)
    ids = mem.record_many(
        [{"perception": f"p{i}", "reasoning": "r", "action": "a"} for i in range(8)]
    )
    first = ids[0]
    barrier = threading.Barrier(8)
    winners: list[int] = []
    refused: list[int] = []

    def report(n: int) -> None:
        barrier.wait()
        # every worker races for the first episode once (exactly one wins) and writes its own
        try:
            EpisodicMemory(
                engine, DeterministicFakeEmbedding(size=DIMS), user_id="alice", project="billing"
            ).record_outcome(first, f"w{n}", n / 10, replace=False)
            winners.append(n)
        except OutcomeExistsError:
            refused.append(n)
        if n:
            mem.record_outcome(ids[n], f"own{n}", n / 10)

    threads = [threading.Thread(target=report, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(refused) == 7
    assert mem.get(first).outcome == f"w{winners[0]}"  # type: ignore[union-attr]
    assert {e.id: e.outcome for e in mem.list(limit=10) if e.id != first} == {
        ids[n]: f"own{n}" for n in range(1, 8)
    }
    assert mem.pending_outcomes() == []


async def test_async_outcomes_concurrently(aengine: Engine) -> None:
    mem = memory(aengine)
    ids = await mem.arecord_many(
        [{"perception": f"p{i}", "reasoning": "r", "action": "a"} for i in range(6)]
    )
    await asyncio.gather(*(mem.arecord_outcome(i, {"n": n}, n / 10) for n, i in enumerate(ids)))
    assert sorted(e.outcome["n"] for e in await mem.alist()) == list(range(6))


def test_retriever_and_tools(engine: Engine) -> None:
    mem = memory(engine)
    record, recall, outcome = episode_tools(mem)
    reply = record.invoke(
        {"perception": "disk full on db-1", "reasoning": "logs", "action": "rotate logs"}
    )
    ep_id = reply.split()[-1]
    assert outcome.invoke({"episode_id": "nope", "outcome": "x", "quality": 0.5}).startswith(
        "Error: user 'alice' has no episode 'nope'"
    )
    assert (
        outcome.invoke({"episode_id": ep_id, "outcome": "freed 40 GB", "quality": 0.8})
        == f"Outcome recorded for episode {ep_id}"
    )
    assert "freed 40 GB (quality 0.80)" in recall.invoke(
        {"situation": "disk full on db-1", "only_with_outcome": True}
    )
    docs = mem.as_retriever(k=2, min_quality=0.5).invoke("disk full on db-1")
    assert [d.metadata["id"] for d in docs] == [ep_id] and docs[0].metadata[
        "outcome_quality"
    ] == 0.8
    assert "Action: rotate logs" in docs[0].page_content


async def test_async_retriever_and_tools(aengine: Engine) -> None:
    mem = memory(aengine)
    record, recall, outcome = episode_tools(mem)
    ep_id = (await record.ainvoke({"perception": "p", "reasoning": "r", "action": "a"})).split()[-1]
    assert (await outcome.ainvoke({"episode_id": ep_id, "outcome": "o", "quality": 2})).startswith(
        "Error:"
    )
    await outcome.ainvoke({"episode_id": ep_id, "outcome": "o", "quality": 1})
    assert f"Episode {ep_id}:" in await recall.ainvoke({"situation": "p"})
    assert [d.id for d in await mem.as_retriever().ainvoke("p")] == [ep_id]


def test_hnsw_index_on_request(engine: Engine) -> None:
    mem = EpisodicMemory(engine, DeterministicFakeEmbedding(size=DIMS), user_id="alice", hnsw={})
    ep = mem.record("p", "r", "a")
    assert mem.create_index() is (engine.dialect.name == "postgres")
    assert [r.episode.id for r in mem.recall_similar("p", k=1, all_projects=True)] == [ep.id]


def _system_text(messages: Any) -> str:
    return "\n".join(str(m.content) for m in messages if m.type == "system")


def test_middleware_injects_similar_episodes_for_the_runs_user(engine: Engine) -> None:
    from _fakes import ScriptedChatModel
    from langchain.agents import create_agent

    from langchain_agentmem import MemoryMiddleware

    mem = memory(engine, user="default")
    ep = mem.record("the deploy to prod failed", "a migration locked a table", "retry at night")
    mem.record_outcome(ep.id, "deployed at 2am", 0.9)
    memory(engine, user="carol").record("the deploy to prod failed", "r", "carol's action")
    model = ScriptedChatModel(responses=["ok", "ok"])
    mw = MemoryMiddleware(
        engine, entities=False, graph=False, session_summaries=False, episodes=mem
    )
    agent = create_agent(model, middleware=[mw])
    agent.invoke({"messages": [("user", "the deploy to prod failed")]})
    seen = _system_text(model.calls[0])
    assert "Similar past episodes" in seen and "Action: retry at night" in seen
    assert "Outcome: deployed at 2am (quality 0.90)" in seen and "carol" not in seen
    agent.invoke(
        {"messages": [("user", "the deploy to prod failed")]}, context={"user_id": "carol"}
    )
    assert "carol's action" in _system_text(model.calls[1])
    with pytest.raises(TypeError, match="EpisodicMemory"):
        MemoryMiddleware(engine, episodes="not a memory")  # type: ignore[arg-type]


async def test_middleware_episodes_async(aengine: Engine) -> None:
    from _fakes import ScriptedChatModel
    from langchain.agents import create_agent

    from langchain_agentmem import MemoryMiddleware

    mem = memory(aengine, user="default")
    await mem.arecord("cache miss storm", "ttl too short", "raise ttl to 10 min")
    model = ScriptedChatModel(responses=["ok"])
    mw = MemoryMiddleware(
        aengine, entities=False, graph=False, session_summaries=False, episodes=mem
    )
    await create_agent(model, middleware=[mw]).ainvoke({"messages": [("user", "cache miss storm")]})
    assert "Action: raise ttl to 10 min" in _system_text(model.calls[0])
