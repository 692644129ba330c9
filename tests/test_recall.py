"""MemoryRetriever on both backends, sync and async, on a small made-up conversation shaped
like LoCoMo's (two speakers, dated sessions, questions with planted evidence turns): each
signal finds the evidence it is built for, and only within the tenant.

(The conversation below was written for these tests; the LoCoMo data is read only by
benchmarks/locomo.py.)"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage

from langchain_agentmem import (
    ChatMessageHistory,
    Engine,
    EntityMemory,
    LocalEmbeddings,
    MemoryRetriever,
    RecallSettings,
)
from langchain_agentmem._search import fusion
from langchain_agentmem.recall import period

from conftest import BACKENDS, make_engine

EMB = LocalEmbeddings()

# (session, date, [(speaker, text)]); Nadia speaks first in every session.
CONVERSATION: list[tuple[str, datetime, list[tuple[str, str]]]] = [
    (
        "s1",
        datetime(2023, 3, 4, 10, tzinfo=timezone.utc),
        [
            ("Nadia", "Morning Tomas! How was the weekend?"),
            ("Tomas", "Busy. I finally bought a ukulele and practised all Sunday."),
            ("Nadia", "Ha, brave. I love hiking in the hills, that is my Sunday."),
            ("Tomas", "I love hiking in the hills as well."),
            ("Nadia", "Did you finish the marathon in Lisbon last month?"),
            ("Tomas", "Yes! Four hours and ten minutes, slow but happy."),
        ],
    ),
    (
        "s2",
        datetime(2023, 5, 8, 18, tzinfo=timezone.utc),
        [
            ("Nadia", "Guess what, we adopted a tabby cat from the shelter."),
            ("Tomas", "Lovely, what is her name?"),
            ("Nadia", "Pepper. She sleeps on the keyboard all day."),
            ("Tomas", "I spent the evening fixing the garden fence."),
            ("Nadia", "My sister moved to Porto for a new job in a bakery."),
            ("Tomas", "Porto is wonderful, the bakery smell alone is worth it."),
        ],
    ),
    (
        "s3",
        datetime(2023, 9, 1, 9, tzinfo=timezone.utc),
        [
            ("Nadia", "Back from holidays. I love hiking in the hills of Madeira."),
            ("Tomas", "Nice. I signed up for a pottery course on Mondays."),
            ("Nadia", "Pottery sounds relaxing. Is the teacher good?"),
            ("Tomas", "She is great, very patient with beginners."),
        ],
    ),
]


def _write(engine: Engine, user_id: str = "nadia") -> dict[str, str]:
    """Write the conversation through ChatMessageHistory, date its sessions; returns
    "<session>:<seq>" by the first words of each turn."""
    ids = {}
    for session, at, turns in CONVERSATION:
        messages = [
            (HumanMessage if who == "Nadia" else AIMessage)(text, name=who) for who, text in turns
        ]
        ChatMessageHistory(engine, session, user_id=user_id).add_messages(messages)
        with engine.transaction(user_id) as tx:
            tx.execute(
                "UPDATE {events} SET created_at = ? WHERE user_id = ? AND session_id = ?",
                [engine.dialect.from_datetime(at), user_id, session],
            )
        for seq, (_, text) in enumerate(turns, start=1):
            ids[" ".join(text.split()[:3])] = f"{session}:{seq}"
    return ids


ONLY_LEXICAL: RecallSettings = {
    "dense": 0,
    "context": 0,
    "neighbours": 0,
    "session": 0,
    "names": 0,
    "entities": 0,
    "time": 0,
}


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def search(
    retriever: MemoryRetriever, query: str, mode: str, k: int = 3, **settings: Any
) -> list[Document]:
    cfg: Any = settings or None
    if mode == "sync":
        return retriever.search(query, k, settings=cfg)
    import asyncio

    return asyncio.run(retriever.asearch(query, k, settings=cfg))


def ids(docs: Sequence[Document]) -> list[str]:
    return [str(d.id) for d in docs]


@pytest.fixture(scope="module", params=BACKENDS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, dict[str, str]]]:
    """One migrated engine per backend for the whole module, the conversation written
    once (tests that write use tenants of their own)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    engine = make_engine(request.param, url, tmp_path_factory.mktemp("recall"))
    engine.migrate()
    turns = _write(engine)
    yield engine, turns
    engine.close()


@pytest.fixture
def recall(shared: tuple[Engine, dict[str, str]]) -> tuple[MemoryRetriever, dict[str, str]]:
    engine, turns = shared
    return MemoryRetriever(engine, EMB, user_id="nadia"), turns


def test_lexical_finds_a_rare_word(recall: Any, mode: str) -> None:
    retriever, turns = recall
    docs = search(retriever, "Who bought a ukulele?", mode, **ONLY_LEXICAL)
    assert ids(docs)[0] == turns["Busy. I finally"]
    assert docs[0].page_content.startswith("Busy. I finally bought a ukulele")
    meta = docs[0].metadata
    assert (meta["session_id"], meta["seq"], meta["speaker"], meta["role"]) == (
        "s1",
        2,
        "Tomas",
        "ai",
    )
    assert meta["created_at"].startswith("2023-03-04")


def test_dense_finds_a_paraphrase(recall: Any, mode: str) -> None:
    retriever, turns = recall
    settings = {**ONLY_LEXICAL, "dense": 1.0, "lexical": 0}
    docs = search(retriever, "kitten pet animal", mode, k=2, **settings)
    assert turns["Guess what, we"] in ids(docs)
    # Without the dense signal nothing shares a word with the query.
    assert search(retriever, "kitten pet animal", mode, **{**settings, "dense": 0}) == []


def test_context_finds_the_answer_to_a_question(recall: Any, mode: str) -> None:
    """The reply ("Yes! Four hours...") shares no word with the query: BM25 finds it
    through the words of the turn before it."""
    retriever, turns = recall
    query = "How long did the Lisbon marathon last?"
    answer = turns["Yes! Four hours"]
    assert answer not in ids(search(retriever, query, mode, k=10, **ONLY_LEXICAL))
    with_context = search(retriever, query, mode, k=2, **{**ONLY_LEXICAL, "context": 0.5})
    assert answer in ids(with_context)


def test_neighbours_bring_the_turn_after_a_hit(recall: Any, mode: str) -> None:
    retriever, turns = recall
    query = "What is the cat's name?"
    settings = {**ONLY_LEXICAL, "neighbours": 0.5}
    assert turns["Pepper. She sleeps"] not in ids(
        search(retriever, query, mode, k=10, **ONLY_LEXICAL)
    )
    assert turns["Pepper. She sleeps"] in ids(search(retriever, query, mode, k=4, **settings))


def test_session_lifts_turns_of_a_session_with_several_hits(recall: Any, mode: str) -> None:
    retriever, turns = recall
    # Hiking is in s1 (twice) and s3; pottery in s3 only (twice): s3's hiking turn, the
    # longest of the three, rises above s1's with the session signal.
    query = "hiking pottery"
    plain = ids(search(retriever, query, mode, k=10, **ONLY_LEXICAL))
    lifted = ids(search(retriever, query, mode, k=10, **{**ONLY_LEXICAL, "session": 1.0}))
    s3_hike, s1_hike = turns["Back from holidays."], turns["I love hiking"]
    assert plain.index(s3_hike) > plain.index(s1_hike)
    assert lifted.index(s3_hike) < lifted.index(s1_hike)


def test_names_of_known_entities(shared: Any, mode: str) -> None:
    """ "Tommy" is an alias of the entity Tomas: the query's entity adds its names to the
    lexical query and lifts the turns Tomas speaks."""
    engine, _ = shared
    user = f"ent-{mode}"
    _write(engine, user)
    EntityMemory(engine, user_id=user).set("Tomas", "Nadia's friend.", aliases=["Tommy"])
    retriever = MemoryRetriever(engine, EMB, user_id=user)
    query = "Does Tommy love hiking on Sunday?"
    off = search(retriever, query, mode, k=1, **ONLY_LEXICAL)
    on = search(retriever, query, mode, k=1, **{**ONLY_LEXICAL, "names": 0.5, "entities": 0.5})
    assert off[0].metadata["speaker"] == "Nadia"
    assert on[0].metadata["speaker"] == "Tomas"
    # The entity memory of another tenant lifts nothing here.
    other = MemoryRetriever(engine, EMB, user_id="nadia")
    names_on = search(other, query, mode, k=1, **{**ONLY_LEXICAL, "names": 0.5, "entities": 0.5})
    assert names_on[0].metadata["speaker"] == "Nadia"


def test_names_of_speakers(recall: Any, mode: str) -> None:
    retriever, turns = recall
    query = "what does tomas say about hiking hills love"
    settings = {**ONLY_LEXICAL, "lexical": 0.01, "names": 1.0}
    docs = search(retriever, query, mode, k=2, **settings)
    assert {d.metadata["speaker"] for d in docs} == {"Tomas"}


def test_time_lifts_the_period_the_query_names(recall: Any, mode: str) -> None:
    retriever, turns = recall
    query = "hiking in the hills in September 2023"
    off = ids(search(retriever, query, mode, k=1, **ONLY_LEXICAL))
    on = ids(search(retriever, query, mode, k=1, **{**ONLY_LEXICAL, "time": 2.0}))
    assert off != [turns["Back from holidays."]]
    assert on == [turns["Back from holidays."]]


def test_defaults_find_each_planted_evidence(recall: Any, mode: str) -> None:
    retriever, turns = recall
    for query, evidence in [
        ("Who bought a ukulele?", "Busy. I finally"),
        ("How long did the Lisbon marathon take Tomas?", "Yes! Four hours"),
        ("Where did Nadia's sister move?", "My sister moved"),
        ("What course did Tomas sign up for?", "Nice. I signed"),
    ]:
        assert turns[evidence] in ids(search(retriever, query, mode, k=3)), query


def test_tenants_are_isolated(shared: Any, recall: Any, mode: str) -> None:
    engine, _ = shared
    retriever, turns = recall
    ChatMessageHistory(engine, "other", user_id=f"bob-{mode}").add_messages(
        [HumanMessage("my ukulele ukulele ukulele is out of tune", name="Bob")]
    )
    bob = MemoryRetriever(engine, EMB, user_id=f"bob-{mode}")
    docs = search(retriever, "ukulele", mode, k=10)
    assert docs and all(d.metadata["session_id"] in ("s1", "s2", "s3") for d in docs)
    assert ids(search(bob, "ukulele", mode, k=10)) == ["other:1"]
    assert search(bob, "Lisbon marathon Porto bakery", mode, k=10, dense=0) == []


def test_new_turns_are_indexed_and_deleted_turns_leave(shared: Any, mode: str) -> None:
    engine, _ = shared
    user = f"new-{mode}"
    _write(engine, user)
    retriever = MemoryRetriever(engine, EMB, user_id=user, auto_index=False)
    assert retriever.index() == sum(len(t) for _, _, t in CONVERSATION)
    retriever = MemoryRetriever(engine, EMB, user_id=user)
    history = ChatMessageHistory(engine, "s4", user_id=user)
    history.add_messages([HumanMessage("I ordered a red kayak today.", name="Nadia")])
    assert ids(search(retriever, "kayak", mode, k=1)) == ["s4:1"]
    history.clear()
    assert "s4:1" not in ids(search(retriever, "kayak", mode, k=10))
    assert retriever.index() == 0


def test_retriever_interface(recall: Any) -> None:
    retriever, turns = recall
    import asyncio

    assert retriever.invoke("ukulele")[0].id == turns["Busy. I finally"]
    assert asyncio.run(retriever.ainvoke("ukulele"))[0].id == turns["Busy. I finally"]
    assert len(retriever.invoke("hiking")) <= retriever.k


def test_bad_input(shared: Any) -> None:
    engine, _ = shared
    with pytest.raises(ValueError, match="unknown recall setting"):
        MemoryRetriever(engine, EMB, settings={"bogus": 1})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(ValueError, match="k must be a positive int"):
        MemoryRetriever(engine, EMB, k=0)
    with pytest.raises(TypeError, match="LangChain Embeddings"):
        MemoryRetriever(engine, object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fusion must be"):
        MemoryRetriever(engine, EMB).search("x", settings={"fusion": "max"})  # type: ignore[typeddict-item]


def test_fusion_functions() -> None:
    dense = {"a": 0.9, "b": 0.8, "c": 0.1}
    lexical = {"c": 9.0, "b": 1.0}
    fused = fusion.combine([(fusion.normalized(dense), 1.0), (fusion.normalized(lexical), 1.0)])
    assert fusion.ranked(fused) == ["c", "a", "b"] or fusion.ranked(fused)[0] in ("a", "c")
    assert fusion.normalized({"x": 2.0, "y": 2.0}) == {"x": 1.0, "y": 1.0}
    spread = fusion.spread({1: 1.0}, lambda i: (i - 1, i + 1), 0.5, {0, 1})
    assert spread == {1: 1.0, 0: 0.5}
    grouped = fusion.group_boost({"a1": 1.0, "a2": 1.0, "b1": 1.0}, lambda x: x[0], 1.0, top=2)
    assert grouped["a1"] > grouped["b1"]
    assert fusion.rrf([(["x", "y"], 1.0), (["y"], 1.0)])["y"] > fusion.rrf([(["x", "y"], 1.0)])["x"]


def test_period() -> None:
    start, end = period("what happened on 8 May 2023?") or (None, None)
    assert start == datetime(2023, 5, 8, tzinfo=timezone.utc)
    assert end == datetime(2023, 5, 9, tzinfo=timezone.utc)
    assert period("in December 2022")[1] == datetime(2023, 1, 1, tzinfo=timezone.utc)  # type: ignore[index]
    assert period("no date here, may I?") is None


def test_local_embeddings() -> None:
    a = EMB.embed_query("a grey cat")
    assert len(a) == 256 and abs(sum(x * x for x in a) - 1.0) < 1e-4
    assert EMB.embed_documents(["a grey cat"]) == [a]
    assert len(LocalEmbeddings(dims=64).embed_query("x")) == 64
    with pytest.raises(ValueError, match="dims must be"):
        LocalEmbeddings(dims=100)


class _CountingEmbeddings(LocalEmbeddings):
    def __init__(self) -> None:
        super().__init__()
        self.queries = 0

    def embed_query(self, text: str) -> list[float]:
        self.queries += 1
        return super().embed_query(text)


def test_defaults_embed_no_query(shared: Any, mode: str) -> None:
    """The dense signal is off by default (it adds no recall with a static embedder, see
    benchmarks/RESULTS.md): a search embeds nothing; switched on, it embeds the query."""
    engine, turns = shared
    emb = _CountingEmbeddings()
    retriever = MemoryRetriever(engine, emb, user_id="nadia")
    assert ids(search(retriever, "Who bought a ukulele?", mode))[0] == turns["Busy. I finally"]
    assert emb.queries == 0
    search(retriever, "Who bought a ukulele?", mode, dense=0.2)
    assert emb.queries == 1


def test_neighbours_reach_past_a_widened_turn(recall: Any, mode: str) -> None:
    """The turn after a hit is a candidate through BM25's widening alone; the neighbours
    signal spreads its score to the turn after it in turn."""
    retriever, turns = recall
    settings = {**ONLY_LEXICAL, "context": 0.3, "neighbours": 0.1}
    found = ids(search(retriever, "ukulele", mode, k=10, **settings))
    assert found[0] == turns["Busy. I finally"]
    assert turns["Ha, brave. I"] in found  # seq 3: widened
    assert turns["I love hiking"] in found  # seq 4: two turns after the only posting
    assert turns["Did you finish"] not in found


QUERIES = [
    "Who bought a ukulele?",
    "What did Nadia adopt in May 2023?",
    "Does Tomas love hiking in the hills?",
    "Where did the sister move for a bakery job?",
    "pottery teacher",
    "Does Tommy love hiking on Sunday?",  # an entity's alias: its names join the query
]


def test_both_statement_forms_rank_alike(
    shared: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server reads the postings with the turns around them in one statement
    (``round_trips``), SQLite in two smaller ones; both find the same turns, scores and
    metadata (with the dense signal on too, whose candidates the postings do not bring)."""
    engine, _ = shared
    user = f"forms-{mode}"
    _write(engine, user)
    EntityMemory(engine, user_id=user).set("Tomas", "Nadia's friend.", aliases=["Tommy"])
    retriever = MemoryRetriever(engine, EMB, user_id=user)
    found = {}
    for form in (True, False):
        monkeypatch.setattr(engine.dialect, "round_trips", form)
        found[form] = [
            [(d.id, round(d.metadata["score"], 9), d.metadata) for d in docs]
            for dense in (0.0, 0.5)
            for docs in (search(retriever, q, mode, k=8, dense=dense) for q in QUERIES)
        ]
        assert all(found[form])
    assert found[True] == found[False]


def test_told() -> None:
    """The rows read around the posted turns (seq - 1 to seq + 2) tell a candidate's
    neighbourhood when it lies within them."""
    from langchain_agentmem.recall import _told

    posted = {("s", 5)}
    assert _told(posted, ("s", 5)) and _told(posted, ("s", 6))
    assert not _told(posted, ("s", 4))  # its turn before (3) was not read
    assert not _told(posted, ("s", 7))  # its turn after (8) was not read
    assert _told({("s", 2), ("s", 5)}, ("s", 4))
    assert not _told(posted, ("t", 5))


def test_batch_runs_independent_statements_together(shared: Any, mode: str) -> None:
    """A Batch gives one result per statement, in order (one pipeline on Postgres); a
    failing statement fails the body with the driver's error."""
    import asyncio

    from langchain_agentmem._core.plan import Atomic, arun, run
    from langchain_agentmem.dialects.statements import Batch, Stmt

    engine, _ = shared

    def body(bad: bool) -> Any:
        results = yield Batch(
            [
                Stmt("SELECT count(*) FROM {events} WHERE user_id = ?", ["nadia"], True),
                Stmt("SELECT ? || 'b'", ["a"], True),
                Stmt("SELECT * FROM no_such_table" if bad else "SELECT 2", [], True),
            ]
        )
        return [list(map(tuple, r)) for r in results]

    def plan(bad: bool) -> Any:
        return (yield Atomic(body(bad), readonly=True))

    def go(bad: bool) -> Any:
        if mode == "sync":
            return run(engine, "nadia", plan(bad))
        return asyncio.run(arun(engine, "nadia", plan(bad)))

    assert go(False) == [[(16,)], [("ab",)], [(2,)]]
    with pytest.raises(Exception, match="no_such_table"):
        go(True)
