"""The knowledge base: facts, rules and strategies learned from episodes, on both backends."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from _fakes import ScriptedChatModel
from _threads import run_threads
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from langchain_agentmem import Engine, KnowledgeBase, knowledge_tools
from langchain_agentmem.knowledge import check_pattern, matches

from cassettes import openai_cassette
from openai_compat_server import hash_embedding


class WordEmbeddings(Embeddings):
    """Texts sharing words are similar (the hashed bag of words of the test server)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [hash_embedding(t, 64) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return hash_embedding(text, 64)


def kb_for(engine: Engine, user: str = "alice", **kw: Any) -> KnowledgeBase:
    return KnowledgeBase(engine, WordEmbeddings(), user_id=user, single_valued=["lives_in"], **kw)


EPISODES = ["ep-1", "ep-2", "ep-3"]


# -- facts ------------------------------------------------------------------------------


def test_asserting_a_fact_again_raises_its_confidence_instead_of_adding_a_row(
    engine: Engine,
) -> None:
    kb = kb_for(engine)
    first = kb.assert_fact("Bob", "likes", "chess", confidence=0.5, source="chat 1")
    again = kb.assert_fact("Bob", "likes", "chess", confidence=0.5)
    assert (first.confidence, again.confidence) == (0.5, 0.75)
    assert again.times_asserted == 2 and again.source == "chat 1"
    assert again.created_at == first.created_at and again.updated_at >= first.updated_at  # type: ignore[operator]
    kb.assert_fact("Bob", "likes", "tea", confidence=0.4)  # not single-valued: both stay
    assert [(f.object, f.confidence) for f in kb.facts("Bob", "likes")] == [
        ("chess", 0.75),
        ("tea", 0.4),
    ]
    assert [f.subject for f in kb.facts(predicate="likes", object="tea")] == ["Bob"]
    assert len(kb.facts()) == 2


def test_a_contradiction_on_a_single_valued_predicate_lowers_the_old_fact_and_keeps_both(
    engine: Engine,
) -> None:
    kb = kb_for(engine)
    lyon = kb.assert_fact("Bob", "lives_in", "Lyon", confidence=0.9)
    paris = kb.assert_fact("Bob", "lives_in", "Paris", confidence=0.8)
    facts = {f.object: f for f in kb.facts("Bob", "lives_in")}
    assert list(facts) == ["Paris", "Lyon"]  # most confident first
    assert facts["Paris"].confidence == 0.8 and facts["Paris"].contradicted_at is None
    assert math.isclose(facts["Lyon"].confidence, 0.9 * 0.2)
    assert facts["Lyon"].contradicted_at is not None
    assert facts["Lyon"].created_at == lyon.created_at and paris.created_at is not None
    # Other subjects and predicates are untouched.
    kb.assert_fact("Carol", "lives_in", "Lyon", confidence=0.9)
    assert kb.facts("Carol")[0].confidence == 0.9
    assert kb.facts(min_confidence=0.5, limit=1)[0].object in {"Paris", "Lyon"}


def test_retract_deletes_one_fact_or_every_object_of_a_predicate(engine: Engine) -> None:
    kb = kb_for(engine)
    for obj in ("chess", "tea", "jazz"):
        kb.assert_fact("Bob", "likes", obj)
    assert kb.retract("Bob", "likes", "tea") == 1
    assert kb.retract("Bob", "likes", "tea") == 0
    assert kb.retract("Bob", "likes") == 2
    assert kb.facts("Bob") == []


def test_concurrent_assertions_are_all_counted(engine: Engine) -> None:
    kb = kb_for(engine)
    run_threads(16, lambda i: kb.assert_fact("Bob", "likes", "chess", confidence=0.5))
    (fact,) = kb.facts("Bob")
    assert fact.times_asserted == 16
    assert math.isclose(fact.confidence, 1 - 0.5**16)


def test_concurrent_contradicting_writers_leave_exactly_one_uncontradicted_fact(
    engine: Engine,
) -> None:
    # Writers of one (subject, single-valued predicate) run one after the other: each
    # sees the facts before it and lowers them; only the last one written stays intact.
    kb = kb_for(engine)
    run_threads(10, lambda i: kb.facts("warm-up"))  # every pooled connection open
    for subject in ("Bob", "Carol"):
        run_threads(
            10, lambda i, s=subject: kb.assert_fact(s, "lives_in", f"city {i}", confidence=0.9)
        )
        facts = kb.facts(subject, "lives_in")
        assert len(facts) == 10
        intact = [f for f in facts if f.contradicted_at is None]
        assert len(intact) == 1 and intact[0].confidence == 0.9
        assert all(f.confidence < 0.9 for f in facts if f is not intact[0])


# -- rules ------------------------------------------------------------------------------


def test_matching_rules_returns_the_active_matches_by_priority(engine: Engine) -> None:
    kb = kb_for(engine)
    low = kb.add_rule({"task": "deploy"}, {"notify": "team"}, priority=1)
    high = kb.add_rule(
        {"task": "deploy", "env": {"$in": ["prod"]}}, {"require": "approval"}, priority=10
    )
    off = kb.add_rule({"task": "deploy"}, "never", priority=99, is_active=False)
    kb.add_rule({"task": "test", "failures": {"$gte": 3}}, {"quarantine": True}, rule_id="flaky")
    assert [r.id for r in kb.matching_rules({"task": "deploy", "env": "prod"})] == [
        high.id,
        low.id,
    ]
    assert [r.id for r in kb.matching_rules({"task": "deploy", "env": "dev"})] == [low.id]
    assert [r.action for r in kb.matching_rules({"task": "test", "failures": 4})] == [
        {"quarantine": True}
    ]
    assert kb.matching_rules({"task": "test", "failures": 2}) == []
    assert kb.matching_rules({"task": "deploy", "env": "prod"}, limit=1)[0].id == high.id
    assert kb.set_rule_active(off.id, True) is True
    assert kb.matching_rules({"task": "deploy"})[0].action == "never"
    # Replacing a rule by id, and deleting it.
    kb.add_rule({"task": "test"}, {"quarantine": False}, rule_id="flaky", priority=5)
    assert [r.priority for r in kb.rules() if r.id == "flaky"] == [5]
    assert kb.delete_rule("flaky") is True and kb.delete_rule("flaky") is False
    assert kb.set_rule_active("flaky", False) is False
    assert len(kb.rules()) == 3 and len(kb.rules(active_only=True)) == 3


def test_the_pattern_language() -> None:
    ctx = {"user": {"tier": "gold", "age": 40}, "tags": ["a", "b"], "n": 1, "flag": False}
    assert matches({}, ctx)
    assert matches({"user": {"tier": "gold"}}, ctx)
    assert not matches({"user": {"tier": "silver"}}, ctx)
    assert matches({"user": {"age": {"$gt": 30, "$lte": 40}}}, ctx)
    assert not matches({"user": {"age": {"$gt": "30"}}}, ctx)  # no string/number mixing
    assert matches({"tags": ["b"]}, ctx) and not matches({"tags": ["c"]}, ctx)
    assert matches({"n": 1.0}, ctx) and not matches({"n": True}, ctx)
    assert not matches({"flag": 0}, ctx)
    assert matches({"missing": {"$exists": False}}, ctx)
    assert matches({"missing": {"$ne": 3}}, ctx) and matches({"missing": {"$nin": [3]}}, ctx)
    assert not matches({"missing": {"$eq": None}}, ctx) and not matches({"missing": None}, ctx)
    assert matches({"user": {"tier": {"$nin": ["bronze"]}}}, ctx)
    for bad, message in [
        ({"n": {"$regex": "."}}, "unknown operator"),
        ({"n": {"$in": 3}}, "takes a list"),
        ({"$gt": 1, "n": 2}, "mixes operators"),
        ({"n": {"$exists": 1}}, "true or false"),
        ({"n": float("nan")}, "NaN"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_pattern(bad)


def test_bad_rules_are_refused_and_nothing_is_written(engine: Engine) -> None:
    kb = kb_for(engine)
    with pytest.raises(TypeError, match="condition must be a dict"):
        kb.add_rule(["x"], "a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown operator"):
        kb.add_rule({"x": {"$where": "1"}}, "a")
    with pytest.raises(TypeError, match="priority must be an int"):
        kb.add_rule({"x": 1}, "a", priority=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected JSON"):
        kb.add_rule({"x": 1}, object())
    assert kb.rules() == []


# -- knowledge --------------------------------------------------------------------------


def test_a_strategy_needs_three_supporting_episodes(engine: Engine) -> None:
    kb = kb_for(engine)
    with pytest.raises(ValueError, match="at least 3 distinct supporting episodes, got 2"):
        kb.add_strategy("retry with backoff", supporting_episodes=["ep-1", "ep-2"])
    with pytest.raises(ValueError, match="got 2"):  # duplicates count once
        kb.add_strategy("retry with backoff", supporting_episodes=["ep-1", "ep-2", "ep-1"])
    assert kb.list_knowledge() == []
    # Other kinds need no support; a strategy with three is written.
    pattern = kb.add_knowledge("pattern", "builds fail on Mondays", {"day": "Monday"})
    strategy = kb.add_strategy(
        "retry with backoff", ["wait 1s", "wait 2s"], supporting_episodes=EPISODES
    )
    assert strategy.supporting_episodes == EPISODES and strategy.content == ["wait 1s", "wait 2s"]
    assert strategy.success_rate is None and strategy.times_applied == 0 and strategy.is_active
    assert [k.kind for k in kb.list_knowledge("pattern")] == ["pattern"]
    assert kb.get_knowledge(pattern.id) == pattern
    # The database enforces the rule itself.
    with pytest.raises(Exception, match="knowledge_strategy_support"):
        with engine.transaction("alice") as tx:
            tx.execute(
                "INSERT INTO {knowledge} (user_id, id, kind, description, supporting_episodes) "
                "VALUES ('alice', 'x', 'strategy', 'd', '[\"a\"]')"
            )


def test_bad_knowledge_input_gets_clear_errors_and_nothing_is_lost(engine: Engine) -> None:
    kb = kb_for(engine)
    kept = kb.add_knowledge("heuristic", "small steps", confidence=0.6)
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (lambda: kb.add_knowledge("recipe", "x"), ValueError, "kind must be one of strategy"),
        (
            lambda: kb.add_knowledge("pattern", "x", confidence=1.5),
            ValueError,
            "from 0 to 1, got 1.5",
        ),
        (lambda: kb.add_knowledge("pattern", "x", confidence=math.nan), ValueError, "got nan"),
        (lambda: kb.add_knowledge("pattern", "x", confidence=True), TypeError, "got bool"),
        (lambda: kb.add_knowledge("pattern", "  "), ValueError, "description must not be empty"),
        (lambda: kb.add_knowledge("pattern", "x", {1: 2}), TypeError, "JSON object keys"),
        (lambda: kb.add_strategy("x", supporting_episodes="abc"), TypeError, "list of episode ids"),
        (lambda: kb.assert_fact("a", "b", "c", confidence=-0.1), ValueError, "from 0 to 1"),
        (lambda: kb.assert_fact("a", "", "c"), ValueError, "predicate must not be empty"),
        (lambda: kb.assert_fact("a", "b", 3), TypeError, "object must be a str"),  # type: ignore[arg-type]
        (lambda: kb.record_application(kept.id, "yes"), TypeError, "True, False or None"),  # type: ignore[arg-type]
        (lambda: kb.best_strategies("x", 0), ValueError, "k must be at least 1"),
        (lambda: kb.best_strategies("x", weights={"recency": 1}), ValueError, "unknown weight"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
    assert kb.list_knowledge() == [kb.get_knowledge(kept.id)]
    assert kb.facts() == []
    with pytest.raises(KeyError, match="no knowledge item 'nope'"):
        kb.record_application("nope", True)


def test_any_text_round_trips_exactly(engine: Engine) -> None:
    kb = kb_for(engine)
    odd = "a\x00b \ud800 \\0 é😀"
    fact = kb.assert_fact(odd, odd, odd, source=odd)
    assert (fact.subject, fact.predicate, fact.object, fact.source) == (odd, odd, odd, odd)
    assert kb.facts(odd, odd)[0] == fact
    rule = kb.add_rule({odd: odd}, {odd: [odd]}, description=odd, rule_id=odd)
    assert kb.matching_rules({odd: odd}) == [rule]
    assert (rule.id, rule.description, rule.action) == (odd, odd, {odd: [odd]})
    item = kb.add_strategy(odd, {odd: odd}, supporting_episodes=[odd, "b", "c"], knowledge_id=odd)
    got = kb.get_knowledge(odd)
    assert got is not None
    assert (got.id, got.description, got.content, got.supporting_episodes[0]) == (
        odd,
        odd,
        {odd: odd},
        odd,
    )
    assert got == item
    assert [s.knowledge.id for s in kb.best_strategies(odd)] == [odd]
    with engine.transaction("alice", readonly=True) as tx:  # the view reads the search copy
        (row,) = tx.fetchall("SELECT description FROM {v_strategy_effectiveness}")
    assert row[0] == "a\ufffdb \ufffd \\0 é😀"


def test_record_application_counts_and_the_database_derives_the_success_rate(
    engine: Engine,
) -> None:
    kb = kb_for(engine)
    s = kb.add_strategy("retry with backoff", supporting_episodes=EPISODES)
    kb.record_application(s.id, True)
    kb.record_application(s.id, True)
    kb.record_application(s.id, None)  # applied, outcome unknown
    after = kb.record_application(s.id, False)
    assert (after.times_applied, after.success_count, after.failure_count) == (4, 2, 1)
    assert math.isclose(after.success_rate or 0, 2 / 3) and after.last_applied is not None
    with engine.transaction("alice", readonly=True) as tx:
        row = tx.fetchone(
            "SELECT success_rate, supporting_count, contradicting_count, times_applied "
            "FROM {v_strategy_effectiveness} WHERE user_id = ? AND id = ?",
            ("alice", s.id),
        )
        # success_rate is the database's (a generated column): a direct write updates it.
        tx.execute("UPDATE {knowledge} SET failure_count = 3 WHERE id = ?", (s.id,))
        rate = tx.fetchone("SELECT success_rate FROM {knowledge} WHERE id = ?", (s.id,))
    assert row is not None and math.isclose(row[0], 2 / 3) and tuple(row[1:]) == (3, 0, 4)
    assert rate is not None and math.isclose(rate[0], 2 / 5)


def test_64_concurrent_threads_lose_no_count(engine: Engine) -> None:
    kb = kb_for(engine)
    s = kb.add_strategy("retry with backoff", supporting_episodes=EPISODES)
    run_threads(64, lambda i: kb.record_application(s.id, i % 4 != 0))
    got = kb.get_knowledge(s.id)
    assert got is not None
    assert (got.times_applied, got.success_count, got.failure_count) == (64, 48, 16)


async def test_64_concurrent_coroutines_lose_no_count(aengine: Engine) -> None:
    kb = kb_for(aengine)
    s = await kb.aadd_strategy("retry with backoff", supporting_episodes=EPISODES)
    await asyncio.gather(*(kb.arecord_application(s.id, i % 2 == 0) for i in range(64)))
    got = await kb.aget_knowledge(s.id)
    assert got is not None
    assert (got.times_applied, got.success_count, got.failure_count) == (64, 32, 32)
    assert got.success_rate == 0.5


def test_best_strategies_weighs_similarity_confidence_and_success(engine: Engine) -> None:
    kb = kb_for(engine)
    net = kb.add_strategy(
        "retry the network call with backoff", supporting_episodes=EPISODES, confidence=0.5
    )
    net2 = kb.add_strategy(
        "retry the network call after a timeout", supporting_episodes=EPISODES, confidence=0.5
    )
    disk = kb.add_strategy("free disk space first", supporting_episodes=EPISODES, confidence=0.9)
    retired = kb.add_strategy("retry the network call", supporting_episodes=EPISODES)
    kb.set_active(retired.id, False)
    hint = kb.add_knowledge("heuristic", "a network call that fails twice is down")
    for _ in range(5):
        kb.record_application(net2.id, True)
        kb.record_application(net.id, False)
    found = kb.best_strategies("the network call failed", k=3)
    assert [s.knowledge.id for s in found] == [net2.id, net.id, disk.id]
    assert found[0].score > found[1].score > found[2].score
    assert found[0].similarity > found[2].similarity
    # Similarity alone: the two network strategies tie on words, confidence decides nothing.
    only_sim = kb.best_strategies(
        "the network call failed", k=2, weights={"confidence": 0, "success_rate": 0}
    )
    assert {s.knowledge.id for s in only_sim} == {net.id, net2.id}
    # Confidence alone puts the disk strategy first.
    only_conf = kb.best_strategies("network", k=1, weights={"similarity": 0, "success_rate": 0})
    assert only_conf[0].knowledge.id == disk.id
    assert [s.knowledge.id for s in kb.best_strategies("network", kinds=["heuristic"])] == [hint.id]
    assert kb.best_strategies("network", min_confidence=0.8)[0].knowledge.id == disk.id
    assert kb.delete_knowledge(disk.id) is True and kb.get_knowledge(disk.id) is None


def test_tenants_are_isolated(engine: Engine) -> None:
    alice, bob = kb_for(engine, "alice"), kb_for(engine, "bob")
    s = alice.add_strategy("retry with backoff", supporting_episodes=EPISODES)
    alice.assert_fact("Bob", "likes", "chess")
    alice.add_rule({}, "always")
    assert bob.facts() == [] and bob.rules() == [] and bob.matching_rules({}) == []
    assert bob.get_knowledge(s.id) is None and bob.list_knowledge() == []
    assert bob.best_strategies("retry") == []
    with pytest.raises(KeyError):
        bob.record_application(s.id, True)
    assert bob.set_active(s.id, False) is False and bob.delete_knowledge(s.id) is False
    assert bob.retract("Bob", "likes") == 0
    got = alice.get_knowledge(s.id)
    assert got is not None and got.times_applied == 0 and got.is_active


# -- distillation -------------------------------------------------------------------------


def episode(i: int, quality: float = 0.9, outcome: Any = "passed") -> dict[str, Any]:
    return {
        "id": f"ep-{i}",
        "perception": {"error": "network timeout"},
        "reasoning": "the service is flaky",
        "action": "retried with backoff",
        "outcome": outcome,
        "quality": quality,
    }


class Episode:
    """Episodes may be objects too (an episode memory's rows)."""

    def __init__(self, i: int) -> None:
        self.id, self.perception, self.action = f"ep-{i}", "disk full", "cleaned the cache"
        self.outcome, self.quality = "ok", 0.8


def proposal(kind: str, description: str, supporting: list[str], **kw: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "description": description,
        "content": kw.get("content", ""),
        "confidence": kw.get("confidence", 0.7),
        "supporting_episodes": supporting,
        "contradicting_episodes": kw.get("contradicting", []),
        "updates": kw.get("updates"),
    }


def test_distill_makes_one_model_call_per_batch_and_checks_every_proposal(
    engine: Engine,
) -> None:
    kb = kb_for(engine)
    model = ScriptedChatModel(
        responses=[
            json.dumps(
                {
                    "items": [
                        proposal(
                            "strategy",
                            "retry flaky network calls with backoff",
                            ["ep-1", "ep-2", "ep-3"],
                        ),
                        proposal("strategy", "too early to tell", ["ep-1", "ep-2", "ep-99"]),
                        proposal("ritual", "knock on wood", ["ep-1"]),
                        proposal("pattern", "timeouts come in bursts", ["ep-2"], confidence=1.5),
                    ]
                }
            ),
            # The second batch refines the strategy the first one created (id filled in below).
            "",
        ]
    )

    def second(prompt: str) -> str:
        known_id = kb.list_knowledge("strategy")[0].id
        assert known_id in prompt and "ep-4" in prompt
        return json.dumps(
            {
                "items": [
                    proposal(
                        "strategy",
                        "retry flaky network calls with exponential backoff",
                        ["ep-4"],
                        updates=known_id,
                        contradicting=["ep-5"],
                        confidence=0.85,
                    ),
                    proposal("constraint", "never clean the cache twice in a row", ["ep-6"]),
                ]
            }
        )

    first = kb.distill([episode(1), episode(2), episode(3)], model, batch_size=3)
    assert len(model.calls) == 1 and first.model_calls == 1
    (made,) = first.created
    assert made.kind == "strategy" and made.supporting_episodes == ["ep-1", "ep-2", "ep-3"]
    reasons = [reason for _, reason in first.rejected]
    assert len(reasons) == 3
    assert "got 2" in reasons[0]  # ep-99 is not in the batch: dropped, then short of support
    assert "kind must be one of" in reasons[1] and "from 0 to 1, got 1.5" in reasons[2]
    assert '"id": "ep-1"' in model.prompt(0) and "network timeout" in model.prompt(0)

    model.responses = second
    batches = [episode(4), episode(5, 0.1, "failed again"), Episode(6), episode(7, outcome=None)]
    result = kb.distill(batches, model, batch_size=3)
    assert result.model_calls == 1 and len(model.calls) == 2  # ep-7 has no outcome: left out
    (updated,) = result.updated
    assert updated.id == made.id and updated.confidence == 0.85
    assert updated.description == "retry flaky network calls with exponential backoff"
    assert updated.supporting_episodes == ["ep-1", "ep-2", "ep-3", "ep-4"]
    assert updated.contradicting_episodes == ["ep-5"] and updated.last_validated is not None
    assert [k.kind for k in result.created] == ["constraint"]
    assert kb.best_strategies("network calls keep failing")[0].knowledge.id == made.id


def test_distill_batches_and_bad_episodes(engine: Engine) -> None:
    kb = kb_for(engine)
    model = FakeListChatModel(responses=['{"items": []}'] * 3)
    result = kb.distill([episode(i) for i in range(5)], model, batch_size=2)
    assert result.model_calls == 3 and result.created == []
    assert kb.distill([], model).model_calls == 0
    with pytest.raises(TypeError, match="an episode needs an id"):
        kb.distill([{"perception": "x", "outcome": "y"}], model)
    with pytest.raises(
        ValueError, match="quality of episode 'ep-1' must be a number from 0 to 1, got 1.5"
    ):
        kb.distill([episode(1, quality=1.5)], model)
    with pytest.raises(TypeError, match="must be a list of episodes"):
        kb.distill(episode(1), model)  # type: ignore[arg-type]


async def test_async_forms(aengine: Engine) -> None:
    kb = kb_for(aengine)
    fact = await kb.aassert_fact("Bob", "lives_in", "Lyon")
    assert (await kb.afacts("Bob"))[0] == fact
    rule = await kb.aadd_rule({"a": 1}, "b")
    assert await kb.amatching_rules({"a": 1}) == [rule] and await kb.arules() == [rule]
    assert await kb.aset_rule_active(rule.id, False) is True
    assert await kb.adelete_rule(rule.id) is True
    model = FakeListChatModel(
        responses=[json.dumps({"items": [proposal("strategy", "retry", ["ep-1", "ep-2", "ep-3"])]})]
    )
    result = await kb.adistill([episode(1), episode(2), episode(3)], model)
    (made,) = result.created
    assert (await kb.abest_strategies("retry", 1))[0].knowledge.id == made.id
    extra = await kb.aadd_knowledge("pattern", "p")
    assert len(await kb.alist_knowledge()) == 2
    assert await kb.aset_active(extra.id, False) is True
    assert await kb.adelete_knowledge(extra.id) is True
    assert await kb.aretract("Bob", "lives_in") == 1
    (tool,) = knowledge_tools(kb)
    assert "retry" in await tool.ainvoke({"situation": "retry"})


def test_the_best_strategies_tool(engine: Engine) -> None:
    kb = kb_for(engine)
    s = kb.add_strategy("retry the network call with backoff", supporting_episodes=EPISODES)
    kb.record_application(s.id, True)
    (tool,) = knowledge_tools(kb, k=1)
    assert tool.name == "best_strategies"
    text = tool.invoke({"situation": "a network call failed"})
    assert text == (
        f"- [strategy {s.id}] retry the network call with backoff (confidence 0.50, 1/1 successes)"
    )


def test_middleware_injects_the_best_strategies_before_the_model(engine: Engine) -> None:
    from langchain.agents import create_agent

    from langchain_agentmem import MemoryMiddleware

    kb = kb_for(engine)
    kb.add_strategy("retry the network call with backoff", supporting_episodes=EPISODES)
    model = ScriptedChatModel(responses=["I will retry with backoff."])
    mw = MemoryMiddleware(engine, user_id="alice", graph=False, knowledge=kb)
    create_agent(model, system_prompt="You are an agent.", middleware=[mw]).invoke(
        {"messages": [("user", "The network call failed, what now?")]}
    )
    prompt = model.prompt(0)
    assert "Strategies that worked before:" in prompt
    assert "retry the network call with backoff" in prompt


# -- through the real OpenAI client (replayed) -----------------------------------------------


def distill_responder(request: dict[str, Any]) -> dict[str, Any]:
    assert request["response_format"]["type"] == "json_schema"
    prompt = request["messages"][-1]["content"]
    assert "ep-1" in prompt and "network timeout" in prompt
    return {
        "content": json.dumps(
            {
                "items": [
                    proposal(
                        "strategy",
                        "retry flaky network calls with backoff",
                        ["ep-1", "ep-2", "ep-3"],
                        content="wait 1s, then 2s, then 4s",
                        confidence=0.8,
                    )
                ]
            }
        )
    }


def test_distill_through_openai_cassette(engine: Engine) -> None:
    from langchain_openai import ChatOpenAI

    kb = kb_for(engine)
    with openai_cassette("knowledge_distill", distill_responder) as kw:
        llm = ChatOpenAI(model="gpt-4o-mini", temperature=0, **kw)
        result = kb.distill([episode(1), episode(2), episode(3)], llm)
    (made,) = result.created
    assert made.kind == "strategy" and made.content == "wait 1s, then 2s, then 4s"
    assert made.confidence == 0.8 and result.rejected == []
