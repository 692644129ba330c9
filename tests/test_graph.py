"""GraphMemory: time-aware knowledge graph with recursive SQL, both backends, sync and async."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _fakes import ScriptedChatModel
from _threads import run_threads
from langchain_core.messages import AIMessage, HumanMessage

from langchain_agentmem import ChatMessageHistory, Engine, GraphMemory, KnowledgeTriple

from cassettes import openai_cassette

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def triples(*ts: tuple[str, str, str]) -> str:
    return json.dumps({"triples": [{"subject": s, "relation": r, "object": o} for s, r, o in ts]})


def names(path: Any) -> list[str] | None:
    return None if path is None else [n.name for n in path]


def test_nodes_dedup_and_same_fact_once(engine: Engine) -> None:
    kg = GraphMemory(engine, user_id="alice")
    assert len(kg.add_triple("Bob", "Brother Of", "Alice")) == 1
    assert kg.add_triple(" bob ", "brother_of", "ALICE") == []  # already true
    kg.add_alias("Bob", "Bobby")
    kg.add_triple("Bobby", "likes", "Chess")
    g = kg.to_networkx()
    assert sorted(g.nodes) == ["alice", "bob", "chess"]
    assert g.nodes["bob"]["name"] == "Bob"
    assert sorted(d["relation"] for _, _, d in g.edges(data=True)) == ["brother_of", "likes"]
    assert kg.add_alias("chess", "Bobby") is False  # alias taken: stays with Bob
    with pytest.raises(KeyError):
        kg.add_alias("nobody", "x")


def test_single_valued_relation_closes_the_old_edge(engine: Engine) -> None:
    kg = GraphMemory(engine, user_id="alice")
    kg.add_triple("Alice", "lives in", "Paris", at=day(0), session_id="s1", seq=3)
    kg.add_triple("Alice", "likes", "Cheese", at=day(1))
    kg.add_triple("Alice", "likes", "Wine", at=day(2))  # multi-valued: both stay
    kg.add_triple("Alice", "lives_in", "Rome", at=day(10))
    now = kg.facts("alice")
    assert sorted(e.as_text() for e in now) == [
        "Alice likes Cheese",
        "Alice likes Wine",
        "Alice lives in Rome",
    ]
    assert kg.facts_text("Alice", as_of=day(5)).splitlines() == [
        "Alice lives in Paris",
        "Alice likes Cheese",
        "Alice likes Wine",
    ]
    assert kg.facts_text("Alice", as_of=day(1) - timedelta(seconds=1)) == "Alice lives in Paris"
    assert kg.facts("Alice", as_of=day(-1)) == []
    history = [e for e in kg.facts("Alice", history=True) if e.relation == "lives_in"]
    assert [(e.target_name, e.valid_from, e.valid_to) for e in history] == [
        ("Paris", day(0), day(10)),
        ("Rome", day(10), None),
    ]
    assert (history[0].source_session, history[0].source_seq) == ("s1", 3)
    # Back to Paris: a new edge, the Rome one closed; Paris' old edge stays closed.
    kg.add_triple("Alice", "lives_in", "Paris", at=day(20))
    assert [e.target_name for e in kg.facts("Alice") if e.relation == "lives_in"] == ["Paris"]
    assert len([e for e in kg.facts("Alice", history=True) if e.relation == "lives_in"]) == 3
    # Within one batch the later fact wins.
    kg.add_triples([("Bob", "works_at", "Acme"), ("Bob", "works_at", "Initech")], at=day(30))
    assert [e.target_name for e in kg.facts("Bob")] == ["Initech"]


def test_neighbors_subgraph_and_directions(engine: Engine) -> None:
    kg = GraphMemory(engine)
    kg.add_triples(
        [
            ("A", "knows", "B"),
            ("B", "knows", "C"),
            ("C", "knows", "D"),
            ("D", "knows", "A"),
            ("X", "knows", "B"),
        ]
    )
    assert [(n.name, d) for n, d in kg.neighbors("A", 1)] == [("A", 0), ("B", 1), ("D", 1)]
    assert [(n.name, d) for n, d in kg.neighbors("A", 2)] == [
        ("A", 0),
        ("B", 1),
        ("D", 1),
        ("C", 2),
        ("X", 2),
    ]
    assert [n.name for n, _ in kg.neighbors("A", 3, direction="out")] == ["A", "B", "C", "D"]
    assert [n.name for n, _ in kg.neighbors("B", 1, direction="in")] == ["B", "A", "X"]
    assert kg.neighbors("A", 0)[0][1] == 0 and len(kg.neighbors("A", 0)) == 1
    assert kg.neighbors("nobody", 2) == []
    sub = kg.subgraph("A", 1)
    assert [n.name for n, _ in sub.nodes] == ["A", "B", "D"]
    assert sorted(e.as_text() for e in sub.edges) == ["A knows B", "D knows A"]
    assert kg.subgraph("nobody").nodes == []


def test_shortest_path(engine: Engine) -> None:
    kg = GraphMemory(engine)
    kg.add_triples(
        [
            ("A", "r", "B"),
            ("B", "r", "C"),
            ("C", "r", "D"),
            ("A", "r", "X"),
            ("X", "r", "Y"),
            ("Y", "r", "D"),
            ("Z", "r", "Z2"),
        ]
    )
    assert names(kg.shortest_path("A", "D")) == ["A", "B", "C", "D"]
    assert names(kg.shortest_path("d", "a")) == ["D", "C", "B", "A"]  # edges either way
    assert names(kg.shortest_path("A", "A")) == ["A"]
    assert kg.shortest_path("A", "Z") is None
    assert kg.shortest_path("A", "D", max_depth=2) is None
    assert kg.shortest_path("A", "nobody") is None
    # Names with LIKE wildcards and backslashes do not confuse the cycle check.
    kg.add_triples([("50%_off\\", "r", "5_"), ("5_", "r", "5%"), ("5%", "r", "end")])
    assert names(kg.shortest_path("50%_off\\", "end")) == ["50%_off\\", "5_", "5%", "end"]


def test_path_and_neighbors_as_of(engine: Engine) -> None:
    kg = GraphMemory(engine)
    kg.add_triple("Alice", "works_at", "Acme", at=day(0))
    kg.add_triple("Bob", "works_at", "Acme", at=day(0))
    kg.add_triple("Alice", "works_at", "Initech", at=day(10))
    assert names(kg.shortest_path("Alice", "Bob", as_of=day(5))) == ["Alice", "Acme", "Bob"]
    assert kg.shortest_path("Alice", "Bob") is None
    assert [n.name for n, _ in kg.neighbors("Acme", as_of=day(5))] == ["Acme", "Alice", "Bob"]
    assert [n.name for n, _ in kg.neighbors("Acme")] == ["Acme", "Bob"]
    assert len(kg.to_networkx(as_of=day(5)).edges) == 2
    with pytest.raises(ValueError, match="timezone-aware"):
        kg.facts("Alice", as_of=datetime(2024, 1, 1))


def test_add_text_with_a_model_and_legacy_methods(engine: Engine) -> None:
    llm = ScriptedChatModel(
        responses=[
            triples(("User", "lives_in", "Paris"), ("Sam", "friend_of", "User")),
            triples(("Sam", "favorite color", "red")),
            json.dumps({"entities": ["Sam"]}),
        ]
    )
    kg = GraphMemory(engine, llm, user_id="alice")
    edges = kg.add_text(
        [HumanMessage("I live in Paris. Sam is my friend."), AIMessage("Nice!")],
        session_id="chat",
        seq=7,
    )
    assert len(llm.calls) == 1
    assert sorted(e.as_text() for e in edges) == ["Sam friend of User", "User lives in Paris"]
    assert {(e.source_session, e.source_seq) for e in kg.facts("User")} == {("chat", 7)}
    assert kg.get_knowledge_triplets("her favorite color is red") == [
        KnowledgeTriple("Sam", "favorite color", "red")
    ]
    assert (
        kg.facts("Sam", history=True)[0].relation == "friend_of"
    )  # extraction alone stores nothing
    assert kg.get_current_entities("what's Sam's favorite color?") == ["Sam"]
    assert len(llm.calls) == 3
    assert [e.as_text() for e in kg.relevant_facts("tell me about sam")] == ["Sam friend of User"]


def test_legacy_methods_see_the_recent_conversation(engine: Engine) -> None:
    history = ChatMessageHistory(engine, "chat", user_id="alice")
    history.add_messages(
        [
            HumanMessage("say hi to sam"),
            AIMessage("who is sam"),
            HumanMessage("sam is a friend"),
            AIMessage("okay"),
        ]
    )
    llm = ScriptedChatModel(
        responses=[json.dumps({"entities": ["Sam"]}), triples(("Sam", "favorite color", "red"))]
    )
    kg = GraphMemory(engine, llm, user_id="alice", chat_history=history, k=1)
    assert kg.get_current_entities("what's her favorite color?") == ["Sam"]
    prompt = llm.prompt()
    assert (
        "Human: sam is a friend\nAI: okay" in prompt and "say hi to sam" not in prompt
    )  # last k=1 exchange
    assert prompt.endswith("Extract from this text only:\nwhat's her favorite color?")
    assert kg.get_knowledge_triplets("her favorite color is red") == [
        KnowledgeTriple("Sam", "favorite color", "red")
    ]
    assert "sam is a friend" in llm.prompt()
    with pytest.raises(TypeError, match="chat_history"):
        GraphMemory(engine, llm, chat_history=["not a history"])  # type: ignore[arg-type]


def test_isolation_delete_clear_and_bad_input(engine: Engine) -> None:
    a = GraphMemory(engine, user_id="alice")
    b = GraphMemory(engine, user_id="bob")
    work = GraphMemory(engine, user_id="alice", graph="work")
    a.add_triple("X", "r", "Y")
    b.add_triple("X", "r", "Z")
    work.add_triple("X", "r", "W")
    assert [e.target_name for e in a.facts("X")] == ["Y"]
    assert [e.target_name for e in b.facts("X")] == ["Z"]
    assert [e.target_name for e in work.facts("X")] == ["W"]
    a.delete_node("y")
    assert a.facts("X") == [] and a.neighbors("Y") == []
    b.clear()
    assert b.to_networkx().number_of_nodes() == 0
    assert work.facts("X") != []
    with pytest.raises(TypeError, match="triple"):
        a.add_triples([("only", "two")])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="non-empty"):
        a.add_triple("", "r", "x")
    with pytest.raises(ValueError, match="non-empty relation"):
        a.add_triple("x", " ", "y")
    with pytest.raises(ValueError, match="timezone-aware"):
        a.add_triple("x", "r", "y", at=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="depth"):
        a.neighbors("X", -1)
    with pytest.raises(ValueError, match="direction"):
        a.neighbors("X", 1, direction="up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs an llm"):
        a.add_text("X likes Y")
    with pytest.raises(TypeError, match="weight"):
        a.add_triple("x", "r", "y", weight="heavy")  # type: ignore[arg-type]
    assert a.facts("x") == []  # nothing half-written


def test_exact_names_round_trip(engine: Engine) -> None:
    kg = GraphMemory(engine, user_id="u\x00")
    odd = "Zoë \x00 \ud800"
    kg.add_triple(odd, "likes", "tea", properties={"note": "\x00"})
    (edge,) = kg.facts(odd.upper())
    assert edge.source_name == odd and edge.properties == {"note": "\x00"}


async def test_async_forms(aengine: Engine) -> None:
    llm = ScriptedChatModel(
        responses=[
            triples(("Ann", "lives_in", "Oslo")),
            triples(("Ann", "likes", "ski")),
            json.dumps({"entities": ["Ann"]}),
        ]
    )
    history = ChatMessageHistory(aengine, "chat", user_id="ann")
    await history.aadd_messages([HumanMessage("I'm Ann"), AIMessage("Hi Ann")])
    kg = GraphMemory(aengine, llm, user_id="ann", chat_history=history)
    await kg.aadd_text("I'm Ann, I live in Oslo", at=day(0))
    await kg.aadd_triple("Ann", "lives_in", "Bergen", at=day(5))
    await kg.aadd_triples([("Bergen", "in", "Norway"), ("Oslo", "in", "Norway")], at=day(5))
    assert await kg.afacts_text("ann") == "Ann lives in Bergen"
    assert await kg.afacts_text("ann", as_of=day(1)) == "Ann lives in Oslo"
    assert [n.name for n, _ in await kg.aneighbors("Ann", 2)] == ["Ann", "Bergen", "Norway"]
    assert names(await kg.ashortest_path("Ann", "Oslo")) == ["Ann", "Bergen", "Norway", "Oslo"]
    assert names(await kg.ashortest_path("Ann", "Oslo", as_of=day(1))) == ["Ann", "Oslo"]
    assert len((await kg.asubgraph("Norway")).edges) == 2
    assert (await kg.ato_networkx()).number_of_edges() == 3
    assert len(await kg.aedges()) == 3 and len(await kg.aedges(as_of=day(1))) == 1
    assert await kg.aget_knowledge_triplets("Ann likes ski") == [
        KnowledgeTriple("Ann", "likes", "ski")
    ]
    assert await kg.aget_current_entities("Ann?") == ["Ann"]
    assert "Human: I'm Ann\nAI: Hi Ann" in llm.prompt()
    assert await kg.aadd_alias("Ann", "Annie") is True
    assert [e.target_name for e in await kg.arelevant_facts("where is annie now")] == ["Bergen"]
    await kg.adelete_node("Oslo")
    assert len(await kg.afacts("Ann", history=True)) == 1
    await kg.aclear()
    assert await kg.afacts("Ann", history=True) == []


def graph_responder(request: dict[str, Any]) -> dict[str, Any]:
    assert request["response_format"]["type"] == "json_schema"
    name = request["response_format"]["json_schema"]["name"]
    text = request["messages"][-1]["content"]
    if name == "EntityNames":
        return {"content": json.dumps({"entities": ["Sam"]})}
    if "moved to Berlin" in text:
        return {"content": triples(("Sam", "lives_in", "Berlin"))}
    return {"content": triples(("Sam", "lives_in", "Munich"), ("Sam", "friend_of", "User"))}


def test_graph_through_openai_cassette(engine: Engine) -> None:
    from langchain_openai import ChatOpenAI

    with openai_cassette("graph_memory", graph_responder) as kw:
        kg = GraphMemory(
            engine, ChatOpenAI(model="gpt-4o-mini", temperature=0, **kw), user_id="alice"
        )
        kg.add_text("My friend Sam lives in Munich.", at=day(0))
        kg.add_text("Sam moved to Berlin last week.", at=day(7))
        current = kg.get_current_entities("How is Sam doing?")
    assert current == ["Sam"]
    assert sorted(kg.facts_text("Sam").splitlines()) == [
        "Sam friend of User",
        "Sam lives in Berlin",
    ]
    assert "Sam lives in Munich" in kg.facts_text("Sam", as_of=day(1))


# -- concurrent writers ---------------------------------------------------------------

CITIES = ["Paris", "Rome", "Oslo", "Berlin", "Madrid", "Vienna", "Prague", "Lisbon"]


def check_one_open_edge(kg: GraphMemory, subject: str, writers: int, moves: list[str]) -> None:
    """One open edge of ``lives_in``; every writer's fact was seen by the next one, so the
    history is a chain: each edge closed at the moment the next one opened."""
    now = [e for e in kg.facts(subject) if e.relation == "lives_in"]
    assert len(now) == 1, [e.as_text() for e in now]
    history = [e for e in kg.facts(subject, history=True) if e.relation == "lives_in"]
    assert len(history) == writers + 1
    first, *later = history
    assert first.target_name == "Lyon" and sorted(e.target_name for e in later) == sorted(moves)
    closed = [e.valid_to for e in history if e.valid_to is not None]
    assert sorted(closed) == sorted(e.valid_from for e in later)  # type: ignore[type-var]


async def test_a_fact_replaced_within_its_own_instant_comes_first_in_the_history(
    aengine: Engine,
) -> None:
    # Two writes in one stored instant (SQLite keeps milliseconds): the replaced edge is
    # empty, [t, t), and the history still lists it before the edge that replaced it.
    kg = GraphMemory(aengine)
    t = day(3)
    for city in ("Lyon", "Berlin"):  # in an order their names would not give
        await kg.aadd_triple("Bob", "lives_in", city, at=t)
    kg.add_triple("Bob", "lives_in", "Zurich", at=t + timedelta(days=1))
    history = [e for e in await kg.afacts("Bob", history=True) if e.relation == "lives_in"]
    assert [(e.target_name, e.valid_from, e.valid_to) for e in history] == [
        ("Lyon", t, t),
        ("Berlin", t, t + timedelta(days=1)),
        ("Zurich", t + timedelta(days=1), None),
    ]
    assert kg.facts_text("Bob") == "Bob lives in Zurich"


def test_concurrent_writers_of_a_single_valued_relation_leave_one_open_edge(
    engine: Engine,
) -> None:
    writers = 4
    for trial in range(3):
        subject = f"Bob{trial}"
        GraphMemory(engine).add_triple(subject, "lives_in", "Lyon")
        moves = CITIES[:writers]
        run_threads(
            writers,
            lambda i, s=subject: GraphMemory(engine).add_triple(s, "lives_in", CITIES[i]),  # type: ignore[misc]
        )
        check_one_open_edge(GraphMemory(engine), subject, writers, moves)


async def test_concurrent_async_writers_of_a_single_valued_relation_leave_one_open_edge(
    aengine: Engine,
) -> None:
    writers = 8
    kg = GraphMemory(aengine)
    for trial in range(3):
        subject = f"Bob{trial}"
        await kg.aadd_triple(subject, "lives_in", "Lyon")
        await asyncio.gather(
            *(kg.aadd_triple(subject, "lives_in", city) for city in CITIES[:writers])
        )
        now = [e for e in await kg.afacts(subject) if e.relation == "lives_in"]
        assert len(now) == 1, [e.as_text() for e in now]
        history = await kg.afacts(subject, history=True)
        assert len(history) == writers + 1
        assert sum(e.valid_to is None for e in history) == 1


def test_concurrent_batches_in_opposite_orders_neither_deadlock_nor_duplicate(
    engine: Engine,
) -> None:
    # Writers lock (source, relation) pairs and node rows in one order, whatever the order
    # of their batch, so none dies of a deadlock; a multi-valued fact written by every
    # writer at once is stored once.
    writers = 6

    def work(i: int) -> None:
        a, b = ("Ann", "Ben") if i % 2 else ("Ben", "Ann")
        GraphMemory(engine).add_triples(
            [(a, "works_at", f"Firm{i}"), (b, "works_at", f"Firm{i}"), (a, "likes", "tea")]
        )

    run_threads(writers, work)
    kg = GraphMemory(engine)
    for name in ["Ann", "Ben"]:
        now = kg.facts(name)
        assert [e.relation for e in now].count("works_at") == 1
        assert len([e for e in kg.facts(name, history=True) if e.relation == "works_at"]) == writers
    assert len([e for e in kg.facts("tea") if e.relation == "likes"]) == 2
