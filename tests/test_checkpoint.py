"""CheckpointSaver: LangGraph's conformance suite, graphs that use it, and its extras, on
SQLite and Postgres, sync and async."""

from __future__ import annotations

import operator
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from langchain_agentmem import CheckpointSaver, Engine, connect
from langchain_agentmem._checkpoint.chunks import parse_chunk_type
from langchain_agentmem.checkpoint import version_text

from conftest import fresh_schema, make_engine

# -- conformance -----------------------------------------------------------------------


async def test_conformance_suite_passes_every_capability(aengine: Engine) -> None:
    @checkpointer_test(name=f"agentmem-{aengine.dialect.name}")
    async def factory():  # type: ignore[no-untyped-def]
        yield CheckpointSaver(aengine)

    report = await validate(factory)
    failures = {name: r.failures for name, r in report.results.items() if r.passed is not True}
    assert failures == {}
    assert {name for name, r in report.results.items() if r.detected} == {
        c.value for c in ALL_CAPABILITIES
    }
    assert report.conformance_level() == "FULL"


# -- graphs ----------------------------------------------------------------------------


class Chat(TypedDict):
    messages: Annotated[list[str], operator.add]
    note: str


def chat_graph(saver: CheckpointSaver) -> Any:
    builder = StateGraph(Chat)
    builder.add_node("a", lambda s: {"messages": [f"a{len(s['messages'])}"]})
    builder.add_node("b", lambda s: {"messages": [f"b{len(s['messages'])}"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    return builder.compile(checkpointer=saver)


def cfg(thread: str, **extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread, **extra}}


def test_graph_keeps_state_across_invocations_and_savers(engine: Engine) -> None:
    graph = chat_graph(CheckpointSaver(engine))
    graph.invoke({"messages": ["hi"], "note": "x"}, cfg("t"))
    out = graph.invoke({"messages": ["again"]}, cfg("t"))
    assert out["messages"] == ["hi", "a1", "b2", "again", "a4", "b5"]
    # A new saver (as after a restart) reads the same state.
    fresh = chat_graph(CheckpointSaver(engine))
    assert fresh.get_state(cfg("t")).values == {"messages": out["messages"], "note": "x"}
    assert fresh.get_state(cfg("other")).values == {}


async def test_graph_async(aengine: Engine) -> None:
    graph = chat_graph(CheckpointSaver(aengine))
    await graph.ainvoke({"messages": ["hi"], "note": "x"}, cfg("t"))
    out = await graph.ainvoke({"messages": ["again"]}, cfg("t"))
    assert out["messages"] == ["hi", "a1", "b2", "again", "a4", "b5"]
    history = [s async for s in graph.aget_state_history(cfg("t"))]
    assert [s.metadata["step"] for s in history] == [6, 5, 4, 3, 2, 1, 0, -1]
    assert history[-1].parent_config is None and history[0].values["messages"] == out["messages"]


def test_channel_values_are_stored_once_per_version(engine: Engine) -> None:
    saver = CheckpointSaver(engine)
    graph = chat_graph(saver)
    graph.invoke({"messages": ["hi"], "note": "constant"}, cfg("t"))
    for i in range(4):
        graph.invoke({"messages": [f"m{i}"]}, cfg("t"))
    with engine.transaction(readonly=True) as tx:
        notes = tx.fetchone("SELECT count(*) FROM {checkpoint_blobs} WHERE channel = 'note'")
        checkpoints = tx.fetchone("SELECT count(*) FROM {checkpoints}")
    assert checkpoints is not None and checkpoints[0] == 20
    # "note" was written once: one blob, referenced by every later checkpoint.
    assert notes == (1,)
    assert all(
        s.values["note"] == "constant"
        for s in graph.get_state_history(cfg("t"))
        if s.metadata["step"] >= 0
    )


class Approval(TypedDict):
    request: str
    answer: str


def approval_graph(saver: CheckpointSaver) -> Any:
    def ask(state: Approval) -> dict[str, str]:
        return {"answer": interrupt({"question": f"approve {state['request']}?"})}

    builder = StateGraph(Approval)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    return builder.compile(checkpointer=saver)


def test_interrupt_and_resume(engine: Engine) -> None:
    graph = approval_graph(CheckpointSaver(engine))
    first = graph.invoke({"request": "refund"}, cfg("t"))
    assert first["__interrupt__"][0].value == {"question": "approve refund?"}
    # The interrupt survives a restart: a new saver resumes it.
    graph = approval_graph(CheckpointSaver(engine))
    assert graph.get_state(cfg("t")).next == ("ask",)
    assert graph.invoke(Command(resume="yes"), cfg("t")) == {"request": "refund", "answer": "yes"}


async def test_interrupt_and_resume_async(aengine: Engine) -> None:
    graph = approval_graph(CheckpointSaver(aengine))
    first = await graph.ainvoke({"request": "refund"}, cfg("t"))
    assert first["__interrupt__"][0].value == {"question": "approve refund?"}
    assert await graph.ainvoke(Command(resume="no"), cfg("t")) == {
        "request": "refund",
        "answer": "no",
    }


def test_time_travel_and_fork(engine: Engine) -> None:
    graph = chat_graph(CheckpointSaver(engine))
    graph.invoke({"messages": ["one"], "note": ""}, cfg("t"))
    graph.invoke({"messages": ["two"]}, cfg("t"))
    history = list(graph.get_state_history(cfg("t")))
    after_first = next(s for s in history if s.metadata["step"] == 2)
    assert after_first.values["messages"] == ["one", "a1", "b2"] and after_first.next == ()
    # Fork: change the past state, then continue from there.
    forked = graph.update_state(after_first.config, {"messages": ["edited"]})
    out = graph.invoke({"messages": ["three"]}, forked)
    assert out["messages"] == ["one", "a1", "b2", "edited", "three", "a5", "b6"]
    # The original branch is intact.
    assert graph.get_state(history[0].config).values["messages"] == [
        "one",
        "a1",
        "b2",
        "two",
        "a4",
        "b5",
    ]
    # Replay from an old checkpoint re-runs from there.
    replay = graph.invoke(None, after_first.config)
    assert replay["messages"] == ["one", "a1", "b2"]


class Outer(TypedDict):
    log: Annotated[list[str], operator.add]


def subgraph_graph(saver: CheckpointSaver) -> Any:
    def inner_node(state: Outer) -> dict[str, list[str]]:
        answer = interrupt("inner?")
        return {"log": [f"inner:{answer}"]}

    inner = StateGraph(Outer)
    inner.add_node("inner_node", inner_node)
    inner.add_edge(START, "inner_node")
    outer = StateGraph(Outer)
    outer.add_node("sub", inner.compile())
    outer.add_node("after", lambda s: {"log": ["after"]})
    outer.add_edge(START, "sub")
    outer.add_edge("sub", "after")
    return outer.compile(checkpointer=saver)


def test_subgraph_namespaces_interrupt_and_resume(engine: Engine) -> None:
    saver = CheckpointSaver(engine)
    graph = subgraph_graph(saver)
    graph.invoke({"log": ["start"]}, cfg("t"))
    state = graph.get_state(cfg("t"), subgraphs=True)
    assert state.tasks[0].state.values == {"log": ["start"]}
    namespaces = {t.config["configurable"]["checkpoint_ns"] for t in saver.list(cfg("t"))}
    assert "" in namespaces and any(ns.startswith("sub:") for ns in namespaces)
    # The same result as LangGraph's own in-memory saver.
    from langgraph.checkpoint.memory import InMemorySaver

    reference = subgraph_graph(InMemorySaver())  # type: ignore[arg-type]
    reference.invoke({"log": ["start"]}, cfg("t"))
    expected = reference.invoke(Command(resume="ok"), cfg("t"))
    assert graph.invoke(Command(resume="ok"), cfg("t")) == expected
    assert expected["log"][-2:] == ["inner:ok", "after"]


def test_encrypted_serializer_round_trips_and_hides_values(engine: Engine) -> None:
    serde = EncryptedSerializer.from_pycryptodome_aes(key=b"0123456789abcdef")
    graph = chat_graph(CheckpointSaver(engine, serde=serde))
    out = graph.invoke({"messages": ["top secret"], "note": "classified"}, cfg("t"))
    assert out["messages"][0] == "top secret"
    with engine.transaction(readonly=True) as tx:
        blobs = [
            bytes(r[0])
            for r in tx.fetchall("SELECT blob FROM {checkpoint_blobs} WHERE blob IS NOT NULL")
        ]
    assert blobs and not any(b"secret" in b or b"classified" in b for b in blobs)
    # Without the key the values cannot be read back as plain data.
    assert (
        chat_graph(CheckpointSaver(engine, serde=serde)).get_state(cfg("t")).values["note"]
        == "classified"
    )


def test_user_key_scopes_rows_by_the_configurable_user(engine: Engine) -> None:
    graph = chat_graph(CheckpointSaver(engine, user_key="user_id"))
    graph.invoke({"messages": ["alice"], "note": ""}, cfg("shared", user_id="alice"))
    graph.invoke({"messages": ["bob"], "note": ""}, cfg("shared", user_id="bob"))
    assert graph.get_state(cfg("shared", user_id="alice")).values["messages"][0] == "alice"
    assert graph.get_state(cfg("shared", user_id="bob")).values["messages"][0] == "bob"
    assert graph.get_state(cfg("shared")).values == {}
    with engine.transaction(readonly=True) as tx:
        users = {r[0] for r in tx.fetchall("SELECT DISTINCT user_id FROM {checkpoints}")}
    assert users == {"alice", "bob"}
    saver = CheckpointSaver(engine, user_key="user_id")
    saver.delete_thread("shared", user_id="alice")
    assert graph.get_state(cfg("shared", user_id="alice")).values == {}
    assert graph.get_state(cfg("shared", user_id="bob")).values["messages"][0] == "bob"
    assert sorted(saver.list_users()) == ["bob"]


def test_concurrent_graphs_share_one_saver(engine: Engine) -> None:
    graph = chat_graph(CheckpointSaver(engine))

    def work(i: int) -> list[str]:
        for j in range(3):
            out = graph.invoke({"messages": [f"{i}-{j}"], "note": ""}, cfg(f"t{i}"))
        return out["messages"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    for i, messages in enumerate(results):
        assert messages[0] == f"{i}-0" and len(messages) == 9


async def test_concurrent_async_graphs_share_one_saver(aengine: Engine) -> None:
    import asyncio

    graph = chat_graph(CheckpointSaver(aengine))

    async def work(i: int) -> list[str]:
        for j in range(3):
            out = await graph.ainvoke({"messages": [f"{i}-{j}"], "note": ""}, cfg(f"t{i}"))
        return out["messages"]

    results = await asyncio.gather(*(work(i) for i in range(12)))
    for i, messages in enumerate(results):
        assert messages[0] == f"{i}-0" and len(messages) == 9
    assert len([t async for t in graph.checkpointer.alist(None)]) == 12 * 12


def test_pgbouncer_mode_without_prepared_statements(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    eng = make_engine(backend, url, tmp_path, prepare_threshold=None)
    eng.migrate()
    try:
        graph = chat_graph(CheckpointSaver(eng))
        for i in range(8):  # beyond the default prepare threshold
            out = graph.invoke({"messages": [str(i)], "note": ""}, cfg("t"))
        assert len(out["messages"]) == 24
    finally:
        eng.close()


# -- list ------------------------------------------------------------------------------


def put_chain(saver: CheckpointSaver, thread: str, n: int, **metadata: Any) -> list[dict[str, Any]]:
    from langgraph.checkpoint.base import empty_checkpoint

    configs = []
    parent = cfg(thread, checkpoint_ns="")
    for i in range(n):
        cp = empty_checkpoint()
        cp["channel_values"] = {"i": i}
        cp["channel_versions"] = {"i": saver.get_next_version(None if i == 0 else str(i), None)}
        parent = saver.put(
            parent, cp, {"source": "loop", "step": i, **metadata}, cp["channel_versions"]
        )
        configs.append(parent)
    return configs


def test_list_pages_through_long_histories_in_order(engine: Engine) -> None:
    saver = CheckpointSaver(engine)
    configs = put_chain(saver, "long", 230)
    listed = saver.list(cfg("long"))
    first = next(listed)  # a generator: nothing beyond the first page is read yet
    rest = list(listed)
    ids = [first.config["configurable"]["checkpoint_id"]] + [
        t.config["configurable"]["checkpoint_id"] for t in rest
    ]
    assert ids == [c["configurable"]["checkpoint_id"] for c in reversed(configs)]
    assert [t.checkpoint["channel_values"]["i"] for t in rest[:3]] == [228, 227, 226]
    assert len(list(saver.list(cfg("long"), limit=150))) == 150
    assert len(list(saver.list(cfg("long"), before=configs[200], limit=500))) == 200
    assert [t.metadata["step"] for t in saver.list(cfg("long"), filter={"step": 5})] == [5]


async def test_alist_filters_with_exact_json_values(aengine: Engine) -> None:
    saver = CheckpointSaver(aengine)
    put_chain(saver, "f", 1, flag=True, nested={"k": [1, 2], "s": "a\x00b"})
    put_chain(saver, "g", 1, flag=1, nested={"k": [1, 2, 3], "s": "a\x00c"})

    async def threads(**flt: Any) -> list[str]:
        return [t.config["configurable"]["thread_id"] async for t in saver.alist(None, filter=flt)]

    assert await threads(flag=True) == ["f"]
    assert await threads(flag=1) == ["g"]
    assert await threads(nested={"k": [1, 2], "s": "a\x00b"}) == ["f"]
    assert await threads(nested={"k": [1, 2]}) == []  # equality, not containment
    assert sorted(await threads(source="loop")) == ["f", "g"]
    tup = await saver.aget_tuple(cfg("f", checkpoint_ns=""))
    assert tup is not None and tup.metadata["nested"]["s"] == "a\x00b"


# -- maintenance -----------------------------------------------------------------------


def blob_count(engine: Engine, thread: str) -> int:
    with engine.transaction(readonly=True) as tx:
        row = tx.fetchone("SELECT count(*) FROM {checkpoint_blobs} WHERE thread_id = ?", (thread,))
    assert row is not None
    return int(row[0])


def test_prune_keep_latest_and_delete_free_blobs(engine: Engine) -> None:
    saver = CheckpointSaver(engine)
    graph = chat_graph(saver)
    for i in range(3):
        graph.invoke({"messages": [str(i)], "note": "n"}, cfg("p"))
    before = graph.get_state(cfg("p")).values
    assert blob_count(engine, "p") > 2
    assert saver.prune(["p"]) == 11
    assert [t.checkpoint["channel_values"] for t in saver.list(cfg("p"))] != []
    assert graph.get_state(cfg("p")).values == before
    assert len(list(saver.list(cfg("p")))) == 1
    kept = saver.get_tuple(cfg("p"))
    assert kept is not None
    # What stays: one blob per channel of the kept checkpoint, plus the earlier chunks
    # of its message list.
    with engine.transaction(readonly=True) as tx:
        row = tx.fetchone(
            "SELECT type FROM {checkpoint_blobs} WHERE thread_id = 'p' AND channel = 'messages' AND version = ?",
            (kept.checkpoint["channel_versions"]["messages"],),
        )
    assert row is not None and row[0].startswith("chunk:")
    earlier = parse_chunk_type(row[0])[2]
    assert blob_count(engine, "p") == len(kept.checkpoint["channel_versions"]) + len(earlier)
    assert (
        chat_graph(CheckpointSaver(engine)).get_state(cfg("p")).values == before
    )  # no cache: all read back
    assert saver.prune(["p"], strategy="delete") == 1
    assert blob_count(engine, "p") == 0 and list(saver.list(cfg("p"))) == []
    with pytest.raises(ValueError, match="unknown prune strategy 'all'"):
        saver.prune(["p"], strategy="all")
    with pytest.raises(TypeError, match="sequence of thread ids"):
        saver.prune("p")


def test_keep_latest_refuses_delta_channel_threads(engine: Engine) -> None:
    saver = CheckpointSaver(engine)
    put_chain(saver, "delta", 2, counters_since_delta_snapshot={"messages": [1, 1]})
    with pytest.raises(NotImplementedError, match="DeltaChannel"):
        saver.prune(["delta"])
    assert len(list(saver.list(cfg("delta")))) == 2
    assert saver.prune(["delta"], strategy="delete") == 2


async def test_aprune_before_keeps_latest(aengine: Engine) -> None:
    saver = CheckpointSaver(aengine)
    graph = chat_graph(saver)
    await graph.ainvoke({"messages": ["x"], "note": ""}, cfg("old"))
    await graph.ainvoke({"messages": ["y"], "note": ""}, cfg("old2"))
    future = datetime.now(timezone.utc) + timedelta(minutes=1)
    past = datetime.now(timezone.utc) - timedelta(days=1)
    assert await saver.aprune_before(past) == 0
    assert await saver.aprune_before(future) == 6  # 4 per thread, the latest of each kept
    for thread in ("old", "old2"):
        assert len([t async for t in saver.alist(cfg(thread))]) == 1
    assert (await graph.aget_state(cfg("old"))).values["messages"] == ["x", "a1", "b2"]
    assert await saver.aprune_before(future, keep_latest=False) == 2
    assert [t async for t in saver.alist(None)] == []
    with pytest.raises(TypeError, match="timezone-aware"):
        await saver.aprune_before(datetime.now())


def test_delete_for_runs_and_copy_thread_sync(engine: Engine) -> None:
    saver = CheckpointSaver(engine)
    configs = put_chain(saver, "src", 3, run_id="r1") + put_chain(saver, "src", 2, run_id="r2")
    saver.copy_thread("src", "dst")
    assert [t.checkpoint["id"] for t in saver.list(cfg("dst"))] == [
        t.checkpoint["id"] for t in saver.list(cfg("src"))
    ]
    saver.delete_for_runs(["r1"])
    assert {t.metadata["run_id"] for t in saver.list(cfg("src"))} == {"r2"}
    # A copy keeps the run ids of its checkpoints: deleting a run deletes its copies too.
    assert {t.metadata["run_id"] for t in saver.list(cfg("dst"))} == {"r2"}
    assert saver.get_tuple(configs[0]) is None
    with pytest.raises(TypeError, match="sequence of run ids"):
        saver.delete_for_runs("r2")


async def test_async_maintenance_forms(aengine: Engine) -> None:
    saver = CheckpointSaver(aengine)
    put_chain(saver, "a", 2, run_id="r")
    await saver.acopy_thread("a", "b")
    assert len([t async for t in saver.alist(cfg("b"))]) == 2
    assert await saver.aprune(["b"]) == 1
    await saver.adelete_for_runs(["r"])
    assert [t async for t in saver.alist(cfg("a"))] == []
    await saver.adelete_thread("b")
    assert await saver.aget_tuple(cfg("b")) is None
    assert await saver.alist_users() == []


# -- input checks and values -----------------------------------------------------------


def test_bad_input_is_refused_clearly(engine: Engine) -> None:
    with pytest.raises(TypeError, match="expected an Engine"):
        CheckpointSaver(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="user_key must be a non-empty str"):
        CheckpointSaver(engine, user_key="")
    saver = CheckpointSaver(engine, user_key="user_id")
    with pytest.raises(ValueError, match="thread_id"):
        saver.get_tuple({"configurable": {}})
    with pytest.raises(TypeError, match="configurable user_id must be a str"):
        saver.get_tuple(cfg("t", user_id=7))
    # Without a user key the configurable's user_id is not read at all.
    assert CheckpointSaver(engine).get_tuple(cfg("t", user_id=7)) is None
    with pytest.raises(ValueError, match="limit"):
        list(saver.list(cfg("t"), limit=-1))
    with pytest.raises(ValueError, match="checkpoint_id"):
        saver.put_writes(cfg("t"), [("ch", 1)], "task")


def test_any_thread_id_and_namespace_round_trip(engine: Engine) -> None:
    saver = CheckpointSaver(engine)
    weird = "th\x00read\\\ud800" + str(uuid.uuid4())
    graph = chat_graph(saver)
    graph.invoke({"messages": ["m"], "note": ""}, cfg(weird))
    tup = saver.get_tuple(cfg(weird))
    assert tup is not None and tup.config["configurable"]["thread_id"] == weird
    assert version_text(2) == "2"
    with pytest.raises(TypeError, match="channel version"):
        version_text(None)


def test_docstring_examples_run() -> None:
    import doctest

    from langchain_agentmem import checkpoint, store
    from langchain_agentmem._checkpoint import chunks, delta, serde
    from langchain_agentmem._core import plan

    for module in (checkpoint, store, serde, plan, chunks, delta):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_connect_url_engine_independent_of_fixture(tmp_path: Any) -> None:
    # A checkpointer on a file survives closing and reopening the engine.
    url = f"sqlite:///{tmp_path / 'cp.sqlite3'}"
    with connect(url) as eng:
        eng.migrate()
        chat_graph(CheckpointSaver(eng)).invoke({"messages": ["keep"], "note": ""}, cfg("t"))
    with connect(url) as eng:
        assert chat_graph(CheckpointSaver(eng)).get_state(cfg("t")).values["messages"][0] == "keep"


# -- growing lists are stored as chunks ------------------------------------------------


class Notes(TypedDict):
    messages: Annotated[list[str], operator.add]
    note: str


def notes_graph(saver: Any) -> Any:
    def talk(state: Notes) -> dict[str, Any]:
        return {"messages": [f"reply {len(state['messages'])}"]}

    def edit(state: Notes) -> dict[str, Any]:
        return {"note": f"seen {len(state['messages'])}"}

    return chain_graph(Notes, saver, talk, edit)


def chain_graph(state: Any, saver: Any, *nodes: Any) -> Any:
    """A graph of ``state`` that runs ``nodes`` one after the other."""
    builder = StateGraph(state)
    previous = START
    for node in nodes:
        builder.add_node(node.__name__, node)
        builder.add_edge(previous, node.__name__)
        previous = node.__name__
    return builder.compile(checkpointer=saver)


def history_values(graph: Any, thread: str) -> list[Any]:
    return [(s.values, s.next, s.metadata["step"]) for s in graph.get_state_history(cfg(thread))]


def test_chunked_lists_read_back_like_in_memory_saver(engine: Engine) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    reference = notes_graph(InMemorySaver())
    for i in range(8):
        # A new saver every other invocation: its chunk cache starts empty.
        saver = CheckpointSaver(engine) if i % 2 == 0 else saver  # noqa: F821
        graph = notes_graph(saver)
        for g in (graph, reference):
            g.invoke({"messages": [f"user {i}"], "note": ""}, cfg("n"))
    for g in (notes_graph(CheckpointSaver(engine)), reference):
        past = next(s for s in g.get_state_history(cfg("n")) if s.metadata["step"] == 4)
        g.invoke({"messages": ["fork"]}, g.update_state(past.config, {"note": "forked"}))
    ours = notes_graph(CheckpointSaver(engine))
    assert history_values(ours, "n") == history_values(reference, "n")


def test_chunks_store_a_growing_list_in_linear_space(engine: Engine) -> None:
    def stored_bytes(thread: str) -> int:
        with engine.transaction(readonly=True) as tx:
            row = tx.fetchone(
                "SELECT sum(length(blob)) FROM {checkpoint_blobs} WHERE thread_id = ? AND channel = 'messages'",
                (thread,),
            )
        assert row is not None
        return int(row[0])

    chunked, whole = (
        notes_graph(CheckpointSaver(engine)),
        notes_graph(CheckpointSaver(engine, chunk_cache_size=0)),
    )
    for i in range(40):
        for graph, thread in ((chunked, "chunked"), (whole, "whole")):
            graph.invoke({"messages": [f"message number {i} " * 5], "note": ""}, cfg(thread))
    assert chunked.get_state(cfg("chunked")).values == whole.get_state(cfg("whole")).values
    assert stored_bytes("chunked") * 4 < stored_bytes("whole")


async def test_chunks_written_async_read_by_a_fresh_saver(aengine: Engine) -> None:
    graph = notes_graph(CheckpointSaver(aengine))
    for i in range(6):
        await graph.ainvoke({"messages": [f"m{i}"], "note": ""}, cfg("a"))
    fresh = notes_graph(CheckpointSaver(aengine))
    state = await fresh.aget_state(cfg("a"))
    assert len(state.values["messages"]) == 12 and state.values["messages"][1] == "reply 1"
    assert len([s async for s in fresh.aget_state_history(cfg("a"))]) == 24


def test_chunks_compare_bytes_so_in_place_edits_are_kept(engine: Engine) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    saver = CheckpointSaver(engine)
    items: list[Any] = [{"n": i} for i in range(6)]
    config = cfg("edit", checkpoint_ns="")
    for step in range(3):
        cp = empty_checkpoint()
        version = saver.get_next_version(
            None if step == 0 else config["configurable"].get("v"), None
        )
        cp["channel_values"] = {"items": items}
        cp["channel_versions"] = {"items": version}
        config = saver.put(config, cp, {"step": step}, {"items": version})
        config["configurable"]["v"] = version
        items[2]["n"] = 100 + step  # edited in place after being saved
        items = [*items, {"n": 10 + step}]
    for step, tup in enumerate(reversed(list(saver.list(cfg("edit"))))):
        stored = tup.checkpoint["channel_values"]["items"]
        assert stored[2] == ({"n": 2} if step == 0 else {"n": 100 + step - 1})
        assert len(stored) == 6 + step


def test_listing_pauses_gc_only_while_it_builds_values(engine: Engine) -> None:
    import gc

    saver = CheckpointSaver(engine)
    put_chain(saver, "gc", 3)
    assert gc.isenabled()
    assert len(list(saver.list(cfg("gc")))) == 3 and gc.isenabled()
    gc.disable()
    try:
        assert saver.get_tuple(cfg("gc")) is not None and not gc.isenabled()
    finally:
        gc.enable()


async def test_checkpoint_that_does_not_list_its_chunks_reads_them_too(aengine: Engine) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    import langchain_agentmem.checkpoint as module

    writer = CheckpointSaver(aengine)
    items: list[Any] = []
    config: Any = cfg("quiet", checkpoint_ns="")
    version = None
    for step in range(4):
        items = [*items, *({"n": step * 10 + k} for k in range(5))]
        version = writer.get_next_version(version, None)
        cp = empty_checkpoint()
        cp["channel_values"] = {"items": items}
        cp["channel_versions"] = {"items": version}
        config = await writer.aput(config, cp, {"step": step}, {"items": version})
    # Another process (a new saver: nothing cached) saves a checkpoint that keeps the
    # list as it is; it cannot list the list's chunks.
    cp = empty_checkpoint()
    cp["channel_values"] = {"items": items, "flag": True}
    cp["channel_versions"] = {"items": version, "flag": "1"}
    await CheckpointSaver(aengine).aput(config, cp, {"step": 4}, {"flag": "1"})
    fetched: list[int] = []
    original = module.chunks_query

    def counting(dialect: Any, uid: str, keys: Any) -> Any:
        fetched.append(len(keys))
        return original(dialect, uid, keys)

    module.chunks_query = counting
    try:
        tup = await CheckpointSaver(aengine).aget_tuple(cfg("quiet"))
    finally:
        module.chunks_query = original
    assert fetched and fetched[0] >= 1  # the second query ran
    assert tup is not None and tup.checkpoint["channel_values"] == {"items": items, "flag": True}


# -- messages remembered between steps (ValueMemo) -------------------------------------


class Convo(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def convo_graph(saver: Any, edit: str | None = None) -> Any:
    """Each invocation: a reply, then a note that (with ``edit``) also edits the first
    message in place, the way careless node code does it: the saver has written that
    message object before and must see that it changed."""

    def reply(state: Convo) -> dict[str, Any]:
        return {
            "messages": [
                AIMessage(f"reply {len(state['messages'])}", id=f"r{len(state['messages'])}")
            ]
        }

    def editor(state: Convo) -> dict[str, Any]:
        first = state["messages"][0]
        if edit == "content":
            first.content = f"{first.content}+"
        elif edit == "nested":
            first.additional_kwargs.setdefault("seen", []).append(len(state["messages"]))
        return {"messages": [AIMessage("noted", id=f"n{len(state['messages'])}")]}

    return chain_graph(Convo, saver, reply, editor)


def message_history(graph: Any, thread: str) -> list[Any]:
    return [
        ([m.model_dump() for m in s.values.get("messages", [])], s.metadata["step"])
        for s in graph.get_state_history(cfg(thread))
    ]


@pytest.mark.parametrize("edit", ["content", "nested", None])
@pytest.mark.parametrize("cache_bytes", [64 * 1024 * 1024, 2000, 0])
def test_messages_edited_in_place_are_saved_like_in_memory_saver(
    engine: Engine, edit: str | None, cache_bytes: int
) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    ours = convo_graph(CheckpointSaver(engine, value_cache_bytes=cache_bytes), edit)
    reference = convo_graph(InMemorySaver(), edit)
    for i in range(6):
        for graph in (ours, reference):
            # durability="sync": each checkpoint is saved before the next step edits.
            graph.invoke(
                {"messages": [HumanMessage(f"user {i}", id=f"u{i}")]}, cfg("e"), durability="sync"
            )
    # Read by a new saver, as after a restart: what was stored, not what is in memory.
    stored = message_history(convo_graph(CheckpointSaver(engine)), "e")
    assert stored == message_history(reference, "e")
    first = convo_graph(CheckpointSaver(engine)).get_state(cfg("e")).values["messages"][0]
    if edit == "content":
        assert first.content == "user 0" + "+" * 6
    elif edit == "nested":
        assert first.additional_kwargs == {"seen": [2, 5, 8, 11, 14, 17]}


async def test_messages_edited_in_place_are_saved_async(aengine: Engine) -> None:
    graph = convo_graph(CheckpointSaver(aengine), "nested")
    for i in range(4):
        await graph.ainvoke({"messages": [HumanMessage(f"user {i}")]}, cfg("ae"), durability="sync")
    state = await convo_graph(CheckpointSaver(aengine)).aget_state(cfg("ae"))
    assert state.values["messages"][0].additional_kwargs == {"seen": [2, 5, 8, 11]}
    assert len(state.values["messages"]) == 12


def test_messages_read_are_independent_copies(engine: Engine) -> None:
    saver = CheckpointSaver(engine)
    graph = convo_graph(saver)
    for i in range(5):
        graph.invoke({"messages": [HumanMessage(f"user {i}")]}, cfg("c"))
    first = saver.get_tuple(cfg("c"))
    assert first is not None
    messages = first.checkpoint["channel_values"]["messages"]
    messages[0].content = "changed"
    messages[1].additional_kwargs["x"] = 1
    messages[1].response_metadata["y"] = [1]
    second = saver.get_tuple(cfg("c"))
    assert second is not None
    again = second.checkpoint["channel_values"]["messages"]
    assert again[0].content == "user 0"
    assert again[1].additional_kwargs == {} and again[1].response_metadata == {}
    fresh = CheckpointSaver(engine).get_tuple(cfg("c"))
    assert fresh is not None and fresh.checkpoint["channel_values"]["messages"] == again
    # Each listed checkpoint has its own objects too.
    listed = [t.checkpoint["channel_values"].get("messages") for t in saver.list(cfg("c"), limit=3)]
    assert listed[0] is not None and listed[1] is not None
    listed[1][0].additional_kwargs["z"] = True
    assert listed[0][0].additional_kwargs == {}


async def test_messages_read_are_independent_copies_async(aengine: Engine) -> None:
    saver = CheckpointSaver(aengine)
    graph = convo_graph(saver)
    for i in range(5):
        await graph.ainvoke({"messages": [HumanMessage(f"user {i}")]}, cfg("c"))
    first = await saver.aget_tuple(cfg("c"))
    assert first is not None
    first.checkpoint["channel_values"]["messages"][3].content = "changed"
    second = await saver.aget_tuple(cfg("c"))
    assert (
        second is not None
        and second.checkpoint["channel_values"]["messages"][3].content == "user 1"
    )


def test_value_cache_bytes_is_checked(engine: Engine) -> None:
    with pytest.raises(ValueError, match="value_cache_bytes"):
        CheckpointSaver(engine, value_cache_bytes=-1)


def test_value_memo_keeps_no_message_alive() -> None:
    import gc
    import weakref

    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    from langchain_agentmem._checkpoint.serde import ValueMemo

    serde, memo = JsonPlusSerializer(), ValueMemo(1 << 20)
    message = AIMessage("remembered while alive")
    encoding = memo.encode(serde, message)
    assert memo.encode(serde, message) == encoding == serde.dumps_typed(message)
    alive = weakref.ref(message)
    del message
    gc.collect()
    assert alive() is None
    another = AIMessage("another")  # may take the dead message's id: still encoded anew
    assert memo.encode(serde, another) == serde.dumps_typed(another)
    for i in range(10_000):  # entries of dead messages are dropped as they pile up
        memo.encode(serde, AIMessage(f"short-lived {i}"))
    assert len(memo._encoded) < 8_200


def test_messages_removed_and_replaced_by_id_are_saved_like_in_memory_saver(engine: Engine) -> None:
    from langchain_core.messages import RemoveMessage
    from langgraph.checkpoint.memory import InMemorySaver

    def reply(state: Convo) -> dict[str, Any]:
        n = len(state["messages"])
        update: list[Any] = [AIMessage(f"reply {n}", id=f"r{n}")]
        if n % 3 == 0:
            update.append(RemoveMessage(id=state["messages"][1].id))  # drop an early message
        if n % 4 == 1:
            first = state["messages"][0]  # replace one by id: same place, new object
            update.append(HumanMessage(f"{first.content} (revised)", id=first.id))
        return {"messages": update}

    def graph(saver: Any) -> Any:
        return chain_graph(Convo, saver, reply)

    ours, reference = graph(CheckpointSaver(engine)), graph(InMemorySaver())
    for i in range(12):
        for g in (ours, reference):
            g.invoke(
                {"messages": [HumanMessage(f"user {i}", id=f"u{i}")]}, cfg("rm"), durability="sync"
            )
    assert message_history(graph(CheckpointSaver(engine)), "rm") == message_history(reference, "rm")


def grow_list(saver: CheckpointSaver, thread: str, steps: int) -> tuple[Any, list[Any], Any]:
    """Save ``steps`` versions of a list that grows by 5 items (stored as chunks)."""
    from langgraph.checkpoint.base import empty_checkpoint

    items: list[Any] = []
    config: Any = cfg(thread, checkpoint_ns="")
    version = None
    for step in range(steps):
        items = [*items, *({"n": step * 10 + k} for k in range(5))]
        version = saver.get_next_version(version, None)
        cp = empty_checkpoint()
        cp["channel_values"] = {"items": items}
        cp["channel_versions"] = {"items": version}
        config = saver.put(config, cp, {"step": step}, {"items": version})
    return config, items, version


def test_thread_deleted_while_a_graph_writes_to_it_stays_readable(engine: Engine) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    writer = CheckpointSaver(engine)
    config, items, version = grow_list(writer, "race", 4)
    CheckpointSaver(engine).delete_thread("race")  # another process: the writer does not know
    items = [*items, {"n": 99}]
    version = writer.get_next_version(version, None)
    cp = empty_checkpoint()
    cp["channel_values"] = {"items": items}
    cp["channel_versions"] = {"items": version}
    writer.put(config, cp, {"step": 4}, {"items": version})  # its earlier chunks are gone
    got = CheckpointSaver(engine).get_tuple(cfg("race"))
    assert got is not None and got.checkpoint["channel_values"]["items"] == items


async def test_thread_deleted_while_a_graph_writes_to_it_stays_readable_async(
    aengine: Engine,
) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    writer = CheckpointSaver(aengine)
    config, items, version = grow_list(writer, "race", 4)
    await CheckpointSaver(aengine).adelete_thread("race")
    items = [*items, {"n": 99}]
    version = writer.get_next_version(version, None)
    cp = empty_checkpoint()
    cp["channel_values"] = {"items": items}
    cp["channel_versions"] = {"items": version}
    await writer.aput(config, cp, {"step": 4}, {"items": version})
    got = await CheckpointSaver(aengine).aget_tuple(cfg("race"))
    assert got is not None and got.checkpoint["channel_values"]["items"] == items


def test_prune_keeps_the_chunks_a_concurrent_put_builds_on(postgres_url: str) -> None:
    # A put that builds on a thread's chunks holds them (FOR KEY SHARE) until it commits;
    # a prune running meanwhile must wait, then see the new checkpoint and keep them.
    import threading
    import time

    import psycopg
    from psycopg import sql

    from langchain_agentmem._encoding.keys import encode_key

    with connect(postgres_url, schema=fresh_schema()) as engine:
        engine.migrate()
        saver = CheckpointSaver(engine)
        _, items, _ = grow_list(saver, "busy", 4)
        tid = encode_key("busy")

        def q(text: str) -> sql.Composed:
            return sql.SQL(text).format(schema=sql.Identifier(engine.schema))

        with psycopg.connect(postgres_url) as put_conn:  # the put in flight
            put_conn.execute(
                q("SELECT 1 FROM {schema}.checkpoint_blobs WHERE thread_id = %s FOR KEY SHARE"),
                (tid,),
            )
            head = put_conn.execute(
                q(
                    "SELECT checkpoint_id FROM {schema}.checkpoints WHERE thread_id = %s ORDER BY checkpoint_id DESC LIMIT 1"
                ),
                (tid,),
            ).fetchone()
            assert head is not None
            pruned: list[int] = []
            prune = threading.Thread(
                target=lambda: pruned.append(
                    saver.prune_before(
                        datetime.now(timezone.utc) + timedelta(hours=1), keep_latest=False
                    )
                )
            )
            prune.start()
            waited = 0.0
            while not put_conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()[0]:  # type: ignore[index]
                time.sleep(0.02)
                waited += 0.02
                assert waited < 20, "the prune never waited for the put's lock"
            # The put's checkpoint: the head's, under a new id (it lists the same chunks).
            put_conn.execute(
                q(
                    "INSERT INTO {schema}.checkpoints (user_id, thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata) "
                    "SELECT user_id, thread_id, checkpoint_ns, 'z-new', checkpoint, metadata FROM {schema}.checkpoints "
                    "WHERE thread_id = %s AND checkpoint_id = %s"
                ),
                (tid, head[0]),
            )
            put_conn.commit()
            prune.join(timeout=20)
        assert pruned == [4]
        got = saver.get_tuple(cfg("busy", checkpoint_id="z-new"))
        assert got is not None and got.checkpoint["channel_values"]["items"] == items


# -- LangGraph's DeltaChannel (beta): values rebuilt from ancestors' writes --------------


def _extend(state: list[str], writes: Any) -> list[str]:
    return state + [item for write in writes for item in write]


class Deltas(TypedDict):
    log: Annotated[list[str], DeltaChannel(_extend, snapshot_frequency=3)]
    messages: Annotated[list[str], operator.add]


def deltas_graph(saver: Any) -> Any:
    def first(state: Deltas) -> dict[str, Any]:
        return {"log": [f"first saw {len(state['log'])}"], "messages": ["a"]}

    def second(state: Deltas) -> dict[str, Any]:
        return {"log": [f"second saw {len(state['log'])}"]}

    return chain_graph(Deltas, saver, first, second)


def test_delta_channel_graph_reads_back_like_in_memory_saver(engine: Engine) -> None:
    """A DeltaChannel stores a snapshot every few updates and otherwise nothing: reading
    it walks the ancestors' writes, through a fresh saver too, and forks replay their own
    branch."""
    from langgraph.checkpoint.memory import InMemorySaver

    reference, ours = deltas_graph(InMemorySaver()), deltas_graph(CheckpointSaver(engine))
    for i in range(7):
        for g in (ours, reference):
            g.invoke({"log": [f"user {i}"], "messages": [f"u{i}"]}, cfg("d"))
    fresh = deltas_graph(CheckpointSaver(engine))
    assert fresh.get_state(cfg("d")).values == reference.get_state(cfg("d")).values
    assert len(fresh.get_state(cfg("d")).values["log"]) == 21
    for g in (fresh, reference):
        past = next(s for s in g.get_state_history(cfg("d")) if s.metadata["step"] == 7)
        g.invoke({"log": ["fork"]}, g.update_state(past.config, {"messages": ["edited"]}))
    assert history_values(fresh, "d") == history_values(reference, "d")


async def test_delta_channel_graph_async(aengine: Engine) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    reference, ours = deltas_graph(InMemorySaver()), deltas_graph(CheckpointSaver(aengine))
    for i in range(5):
        for g in (ours, reference):
            await g.ainvoke({"log": [f"user {i}"], "messages": [f"u{i}"]}, cfg("d"))
    fresh = deltas_graph(CheckpointSaver(aengine))
    assert (await fresh.aget_state(cfg("d"))).values == (
        await reference.aget_state(cfg("d"))
    ).values
    ours_history = [(s.values, s.next) async for s in fresh.aget_state_history(cfg("d"))]
    theirs_history = [(s.values, s.next) async for s in reference.aget_state_history(cfg("d"))]
    assert ours_history == theirs_history and len(ours_history) == 20


@pytest.mark.parametrize(("first", "page"), [(32, 200), (2, 2), (1, 200)])
def test_delta_channel_history_equals_langgraphs_walk(
    engine: Engine, first: int, page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For every checkpoint of a thread with a fork, with pages of ancestors as they are
    (32, then 128, 200), of 2, and of 1, 4, 16...: the same writes in the same order and
    the same seed as LangGraph's generic walk (one get_tuple per ancestor)."""
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from langchain_agentmem._checkpoint import delta as _delta

    monkeypatch.setattr(_delta, "FIRST_PAGE", first)
    monkeypatch.setattr(_delta, "PAGE", page)
    saver = CheckpointSaver(engine)
    graph = deltas_graph(saver)
    for i in range(5):
        graph.invoke({"log": [f"user {i}"], "messages": [f"u{i}"]}, cfg("d"))
    past = next(s for s in graph.get_state_history(cfg("d")) if s.metadata["step"] == 5)
    graph.invoke({"log": ["fork"]}, graph.update_state(past.config, {"messages": ["edited"]}))
    channels = ["log", "messages", "nowhere"]
    configs = [t.config for t in saver.list(cfg("d"))]
    assert len(configs) == 25
    for config in [*configs, cfg("d"), cfg("d", checkpoint_id="unknown"), cfg("elsewhere")]:
        ours = saver.get_delta_channel_history(config=config, channels=channels)
        theirs = BaseCheckpointSaver.get_delta_channel_history(
            saver, config=config, channels=channels
        )
        assert ours == theirs
    walked = saver.get_delta_channel_history(config=configs[1], channels=["log"])["log"]
    assert walked["writes"] and "seed" in walked
    assert saver.get_delta_channel_history(config=configs[0], channels=[]) == {}


async def test_adelta_channel_history_equals_langgraphs_walk(aengine: Engine) -> None:
    from langgraph.checkpoint.base import BaseCheckpointSaver

    saver = CheckpointSaver(aengine, user_key="user_id")
    graph = deltas_graph(saver)
    for i in range(4):
        await graph.ainvoke({"log": [f"user {i}"], "messages": [f"u{i}"]}, cfg("d", user_id="ann"))
    configs = [t.config async for t in saver.alist(cfg("d", user_id="ann"))]
    assert len(configs) == 16
    for config in [*configs, cfg("d", user_id="ann"), cfg("d")]:
        ours = await saver.aget_delta_channel_history(config=config, channels=["log", "messages"])
        theirs = await BaseCheckpointSaver.aget_delta_channel_history(
            saver, config=config, channels=["log", "messages"]
        )
        assert ours == theirs
    # Another tenant's thread of the same name has no history.
    assert (await saver.aget_delta_channel_history(config=cfg("d"), channels=["log"])) == {
        "log": {"writes": []}
    }


class DeltaConvo(TypedDict):
    messages: Annotated[
        list[AnyMessage],
        DeltaChannel(
            lambda state, writes: add_messages(state, [m for w in writes for m in w]),
            snapshot_frequency=4,
        ),
    ]


def test_delta_snapshot_messages_are_built_once_and_read_as_copies(engine: Engine) -> None:
    """The messages inside a DeltaChannel snapshot go through the saver's memo like a
    plain list's: equal to what LangGraph's serializer builds, and every read its own."""
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    serde, built = JsonPlusSerializer(), []
    hook = serde._unpack_ext_hook
    serde._unpack_ext_hook = lambda code, data: built.append(code) or hook(code, data)  # type: ignore[method-assign]
    saver = CheckpointSaver(engine, serde=serde)

    def reply(state: DeltaConvo) -> dict[str, Any]:
        return {"messages": [AIMessage(f"reply {len(state['messages'])}")]}

    graph = chain_graph(DeltaConvo, saver, reply)
    for i in range(7):
        graph.invoke({"messages": [HumanMessage(f"user {i}")]}, cfg("s"))
    at = saver.get_tuple(cfg("s"))
    assert at is not None
    first = saver.get_delta_channel_history(config=at.config, channels=["messages"])["messages"]
    plain = BaseCheckpointSaver.get_delta_channel_history(
        CheckpointSaver(engine, value_cache_bytes=0), config=at.config, channels=["messages"]
    )["messages"]
    assert first == plain and len(first["seed"].value) >= 4 and first["writes"]
    first["seed"].value[0].content = "changed"
    first["seed"].value[1].additional_kwargs["x"] = 1
    built.clear()
    second = saver.get_delta_channel_history(config=at.config, channels=["messages"])["messages"]
    assert second == plain and built == []  # every message copied, none built again
    assert graph.get_state(cfg("s")).values["messages"][0].content == "user 0"
