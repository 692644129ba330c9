"""Importers: the real anchor libraries write real tables; this package reads them back.

langchain-postgres (PGVectorStore v2, legacy PGVector, PostgresChatMessageHistory) and
LangGraph (PostgresSaver, PostgresStore) write a fresh schema of the test server; the
import goes into SQLite and Postgres targets; contents are compared exactly, a second run
changes nothing, and a LangGraph graph resumes an imported thread.
"""

from __future__ import annotations

import json
import operator
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from click.testing import CliRunner
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage, message_to_dict

from langchain_agentmem import (
    ChatMessageHistory,
    CheckpointSaver,
    Engine,
    LangGraphStore,
    MemoryVectorStore,
    connect,
)
from langchain_agentmem.cli import main
from langchain_agentmem.importers import Importer, MissingSourceError

from conftest import BACKENDS, make_engine

ODD = "h\u00e9llo \U0001f99c e\u0301 \u202eRTL\u202c zero\u200bwidth \uffff \U0010ffff"
EMB = DeterministicFakeEmbedding(size=4)


def _with_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema},public"


@pytest.fixture
def source(postgres_url: str) -> Iterator[tuple[str, str]]:
    """(URL whose search_path is a fresh schema, that schema); dropped afterwards."""
    schema = "src_" + uuid.uuid4().hex[:10]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield _with_path(postgres_url, schema), schema
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
async def target(
    request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path
) -> AsyncIterator[Engine]:
    engine = make_engine(request.param, postgres_url, tmp_path)
    await engine.amigrate()
    yield engine
    await engine.aclose()


def _sqlalchemy(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


# -- langchain-postgres ----------------------------------------------------------------


def _write_langchain_postgres(url: str, schema: str) -> dict[str, Any]:
    from langchain_postgres import Column, PGEngine, PGVector, PGVectorStore
    from langchain_postgres import PostgresChatMessageHistory as PGHistory

    pg = PGEngine.from_connection_string(url=_sqlalchemy(url))
    pg.init_vectorstore_table(
        "docs",
        vector_size=4,
        schema_name=schema,
        metadata_columns=[Column("topic", "TEXT"), Column("n", "INTEGER")],
    )
    v2 = PGVectorStore.create_sync(
        pg, embedding_service=EMB, table_name="docs", schema_name=schema,
        metadata_columns=["topic", "n"],
    )  # fmt: skip
    v2_ids = [str(uuid.UUID(int=i + 1)) for i in range(3)]
    v2.add_texts(
        [ODD, "tea\ttime\n", "plain"],
        [{"topic": "x", "n": 1, "extra": "nul\x00inside", "deep": {"a": [1, 2.5, None]}},
         {"topic": ODD, "n": 2}, {}],
        ids=v2_ids,
    )  # fmt: skip
    legacy = PGVector(EMB, connection=_sqlalchemy(url), collection_name="notes", use_jsonb=True)
    legacy.add_texts(["alpha " + ODD, "beta"], [{"k": ODD}, {"k": 2}], ids=["n1", "n2"])
    other = PGVector(EMB, connection=_sqlalchemy(url), collection_name="other", use_jsonb=True)
    other.add_texts(["gamma"], ids=["o1"])
    session = str(uuid.uuid4())
    messages = [
        HumanMessage(ODD, id="m1"),
        AIMessage("", tool_calls=[{"name": "f", "args": {"q": ODD}, "id": "c1"}], id="m2"),
        ToolMessage("result \u2603", tool_call_id="c1", id="m3"),
        AIMessage("done", additional_kwargs={"x": [1, {"y": "z"}]}, id="m4"),
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        PGHistory.create_tables(conn, "chat")
        PGHistory("chat", session, sync_connection=conn).add_messages(messages)
    v2_docs = v2.get_by_ids(v2_ids)
    notes = legacy.get_by_ids(["n1", "n2"])
    pg._run_as_sync(pg._pool.dispose())  # its pool runs on its own loop
    legacy._engine.dispose()
    other._engine.dispose()
    expected = {
        "v2_ids": v2_ids,
        "v2_docs": v2_docs,
        "notes": notes,
        "session": session,
        "messages": messages,
    }  # fmt: skip
    return expected


def _check_vectors(engine: Engine, collection: str, docs: list[Any]) -> None:
    store = MemoryVectorStore(engine, EMB, collection=collection, user_id="alice")
    got = store.get_by_ids([d.id for d in docs])
    assert [(d.id, d.page_content, d.metadata) for d in got] == [
        (d.id, d.page_content, d.metadata) for d in docs
    ]
    for d in docs:  # the vector came along: the document is its own nearest neighbour
        (hit, score), *_ = store.similarity_search_with_score_by_vector(
            EMB.embed_query(d.page_content), k=1
        )
        assert hit.id == d.id and score == pytest.approx(0.0, abs=1e-6)


async def test_langchain_postgres_tables(source: tuple[str, str], target: Engine) -> None:
    url, schema = source
    want = _write_langchain_postgres(url, schema)
    async with Importer(url, to=target, user_id="alice", source_schema=schema, page_size=2) as imp:
        seen: list[tuple[int, int]] = []
        dry = imp.vectorstore("docs", dry_run=True, progress=lambda d, t: seen.append((d, t)))
        assert (dry.found, dry.written, dry.dry_run) == (3, 3, True)
        assert seen == [(2, 3), (3, 3)]  # a page of two, then one
        assert MemoryVectorStore(target, EMB, collection="docs", user_id="alice").get_by_ids(
            want["v2_ids"]
        ) == []  # fmt: skip
        first = [imp.vectorstore("docs"), imp.pgvector(), imp.chat_history("chat")]
        assert [(r.found, r.written, r.unchanged, r.groups) for r in first] == [
            (3, 3, 0, 1), (3, 3, 0, 2), (4, 4, 0, 1)
        ]  # fmt: skip
        # A second run, in the async form, finds everything in place and writes nothing.
        again = [
            await imp.avectorstore("docs"),
            await imp.apgvector(["notes"]),
            await imp.achat_history("chat", [want["session"]]),
        ]
        assert [(r.found, r.written, r.unchanged) for r in again] == [
            (3, 0, 3),
            (2, 0, 2),
            (4, 0, 4),
        ]
        with pytest.raises(MissingSourceError, match="no table .*nope.*PGVectorStore"):
            imp.vectorstore("nope")
        with pytest.raises(MissingSourceError, match="no PGVector collection 'x'"):
            imp.pgvector(["x"])
    assert want["v2_docs"][0].metadata["extra"] == "nul\x00inside"  # the anchor kept the NUL
    _check_vectors(target, "docs", want["v2_docs"])
    _check_vectors(target, "notes", want["notes"])
    history = ChatMessageHistory(target, want["session"], user_id="alice")
    assert [message_to_dict(m) for m in history.messages] == [
        message_to_dict(m) for m in want["messages"]
    ]
    # The source grew: only the new message is appended.
    from langchain_postgres import PostgresChatMessageHistory as PGHistory

    with psycopg.connect(url, autocommit=True) as conn:
        PGHistory("chat", want["session"], sync_connection=conn).add_messages(
            [HumanMessage("more")]
        )
    async with Importer(url, to=target, user_id="alice", source_schema=schema) as imp:
        assert (await imp.achat_history("chat")).written == 1
    assert [m.content for m in history.messages][-2:] == ["done", "more"]


def _write_chat(url: str) -> str:
    from langchain_postgres import PostgresChatMessageHistory as PGHistory

    session = str(uuid.uuid4())
    with psycopg.connect(url, autocommit=True) as conn:
        PGHistory.create_tables(conn, "chat")
        PGHistory("chat", session, sync_connection=conn).add_messages(
            [HumanMessage(ODD), AIMessage("ok")]
        )
    return session


def test_cli_langchain_postgres(source: tuple[str, str], tmp_path: Path) -> None:
    url, schema = source
    session = _write_chat(url)
    db = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    runner = CliRunner()
    assert runner.invoke(main, ["migrate", "--url", db]).exit_code == 0
    base = ["import-from", "langchain-postgres", url, "--to", db, "--user-id", "bob",
            "--source-schema", schema]  # fmt: skip
    args = [*base, "--chat-table", "chat", "--json"]
    dry = runner.invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["imports"][0]["written"] == 2
    for written in (2, 0):  # the second run changes nothing
        out = runner.invoke(main, args)
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)["imports"][0]["written"] == written
    text = runner.invoke(main, args[:-1])
    assert f"chat_history {schema}.chat: 2 found, wrote 0, 2 unchanged" in text.output
    engine = connect(db)
    with engine:
        assert ChatMessageHistory(engine, session, user_id="bob").messages[0].content == ODD
    missing = runner.invoke(main, [*base, "--vectorstore-table", "nope"])
    assert missing.exit_code == 1, missing.output
    assert f"no table {schema}.nope in the source database" in missing.output
    assert "Traceback" not in missing.output
    none = runner.invoke(main, base)
    assert none.exit_code == 2 and "name what to import" in none.output


# -- LangGraph ---------------------------------------------------------------------------


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def _graph(checkpointer: Any) -> Any:
    from langgraph.graph import START, StateGraph
    from langgraph.types import interrupt

    def ask(state: State) -> dict[str, list[str]]:
        answer = interrupt({"question": ODD})
        return {"log": [f"answer {answer}"]}

    sub = StateGraph(State)
    sub.add_node("ask", ask)
    sub.add_edge(START, "ask")
    graph = StateGraph(State)
    graph.add_node("work", lambda s: {"log": ["work \x00 " + ODD]})
    graph.add_node("sub", sub.compile())
    graph.add_node("side", lambda s: {"log": ["side"]})
    graph.add_edge(START, "work")
    graph.add_edge("work", "sub")
    graph.add_edge("work", "side")  # runs beside sub: its writes pend while sub interrupts
    return graph.compile(checkpointer=checkpointer)


def _history(graph: Any, config: dict[str, Any]) -> list[Any]:
    out = []
    for snap in graph.get_state_history(config):
        out.append((snap.values, snap.next, snap.config, snap.metadata, snap.created_at,
                    snap.parent_config, [(t.id, t.name, t.path, t.interrupts) for t in snap.tasks]))  # fmt: skip
    return out


async def test_langgraph_postgres(source: tuple[str, str], target: Engine) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.store.postgres import PostgresStore
    from langgraph.types import Command

    url, schema = source
    config: Any = {"configurable": {"thread_id": "t1"}}
    with PostgresSaver.from_conn_string(url) as saver, PostgresStore.from_conn_string(url) as st:
        saver.setup()
        st.setup()
        graph = _graph(saver)
        graph.invoke({"log": ["start"]}, config)
        graph.invoke({"log": ["again"]}, {"configurable": {"thread_id": "t2 " + ODD}})
        expected = _history(graph, config)
        expected_sub = graph.get_state(config, subgraphs=True).tasks[0].state
        st.put(("users", ODD), "k1", {"text": ODD, "n": [1, 2.5]})
        st.put(("users",), "k2", {"nested": {"a": None}})
    assert set(expected[0][1]) == {"sub", "side"}  # interrupted; side's writes pend
    async with Importer(url, to=target, user_id="alice", source_schema=schema) as imp:
        dry = imp.checkpoints(dry_run=True)
        assert dry.written == dry.found > 0 and dry.groups == 2 and dry.writes > 0
        first = imp.checkpoints()
        assert (first.written, first.writes) == (dry.written, dry.writes)
        again = await imp.acheckpoints()
        assert (again.written, again.writes, again.unchanged) == (0, 0, first.found)
        items = imp.store_items()
        assert (items.found, items.written, items.groups) == (2, 2, 2)
        assert (await imp.astore_items()).written == 0
    ours = _graph(CheckpointSaver(target, user_id="alice"))
    assert _history(ours, config) == expected
    assert ours.get_state(config, subgraphs=True).tasks[0].state == expected_sub
    # LangGraph resumes the imported thread where it stopped, as it does on the source.
    with PostgresSaver.from_conn_string(url) as saver:
        resumed = _graph(saver).invoke(Command(resume="yes"), config)
        expected = _history(_graph(saver), config)
    final = ours.invoke(Command(resume="yes"), config)
    assert final == resumed and final["log"][-1] == "answer yes"
    later = _history(ours, config)
    assert [h[:2] for h in later] == [h[:2] for h in expected]  # same values, same next
    store = LangGraphStore(target, user_id="alice")
    got = store.get(("users", ODD), "k1")
    assert got is not None and got.value == {"text": ODD, "n": [1, 2.5]}


def test_missing_saver_tables(source: tuple[str, str], tmp_path: Path) -> None:
    url, _ = source
    db = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    runner = CliRunner()
    runner.invoke(main, ["migrate", "--url", db])
    out = runner.invoke(main, ["import-from", "langgraph-postgres", url, "--to", db])
    assert out.exit_code == 1 and "no PostgresSaver tables in the source database" in out.output
