"""Checkpoint threads as LangGraph's: ``configurable["user_id"]`` (which LangGraph's
tutorials set for the store) does not split a thread unless the saver is told to partition
by it (``user_key``); rows stored the old way stay readable and can be moved. Both
backends, sync and async."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langgraph.graph import START, MessagesState, StateGraph

from langchain_agentmem import CheckpointSaver, Engine


def echo_graph(saver: CheckpointSaver) -> Any:
    def respond(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"got {len(state['messages'])}")]}

    builder = StateGraph(MessagesState).add_node("respond", respond)
    return builder.add_edge(START, "respond").compile(checkpointer=saver)


def rows(engine: Engine) -> dict[str, int]:
    with engine.transaction(readonly=True) as tx:
        return {
            t: tx.fetchone("SELECT count(*) FROM {" + t + "}")[0]  # type: ignore[index]  # noqa: S608
            for t in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        }


TUTORIAL = {"configurable": {"thread_id": "1", "user_id": "1"}}
PLAIN = {"configurable": {"thread_id": "1"}}


def test_user_id_in_configurable_does_not_split_the_thread(engine: Engine) -> None:
    saver = CheckpointSaver(engine)
    graph = echo_graph(saver)
    graph.invoke({"messages": [("user", "hi")]}, TUTORIAL)
    assert len(graph.get_state(PLAIN).values["messages"]) == 2
    graph.invoke({"messages": [("user", "again")]}, PLAIN)  # the same thread
    assert len(graph.get_state(TUTORIAL).values["messages"]) == 4
    assert {t.config["configurable"]["thread_id"] for t in saver.list(None)} == {"1"}
    assert "user_id" not in saver.get_tuple(TUTORIAL).config["configurable"]  # type: ignore[union-attr]
    saver.delete_thread("1")
    assert rows(engine) == {"checkpoints": 0, "checkpoint_blobs": 0, "checkpoint_writes": 0}
    assert graph.get_state(TUTORIAL).values == {}


async def test_user_id_in_configurable_does_not_split_the_thread_async(aengine: Engine) -> None:
    saver = CheckpointSaver(aengine)
    graph = echo_graph(saver)
    await graph.ainvoke({"messages": [("user", "hi")]}, TUTORIAL)
    assert len((await graph.aget_state(PLAIN)).values["messages"]) == 2
    assert [t.config["configurable"]["thread_id"] async for t in saver.alist(None, limit=1)] == [
        "1"
    ]
    await saver.adelete_thread("1")
    assert sum(rows(aengine).values()) == 0


def test_user_key_partitions_explicitly(engine: Engine) -> None:
    saver = CheckpointSaver(engine, user_key="user_id")
    graph = echo_graph(saver)
    graph.invoke({"messages": [("user", "hi")]}, TUTORIAL)
    graph.invoke({"messages": [("user", "hi")]}, PLAIN)  # the saver's tenant, "default"
    # Each tenant its own thread "1"; list(None) covers the saver's tenant only.
    assert len(graph.get_state(TUTORIAL).values["messages"]) == 2
    assert saver.get_tuple(TUTORIAL).config["configurable"]["user_id"] == "1"  # type: ignore[union-attr]
    assert len(list(saver.list(None))) == len(list(saver.list(PLAIN)))
    assert sorted(saver.list_users()) == ["1", "default"]
    saver.delete_thread("1")  # the saver's tenant
    assert graph.get_state(PLAIN).values == {}
    assert len(graph.get_state(TUTORIAL).values["messages"]) == 2
    saver.delete_thread("1", user_id="1")
    assert sum(rows(engine).values()) == 0
    # LangMem's key works the same way.
    langmem = CheckpointSaver(engine, user_key="langgraph_user_id")
    echo_graph(langmem).invoke(
        {"messages": [("user", "hi")]},
        {"configurable": {"thread_id": "1", "langgraph_user_id": "ann"}},
    )
    assert langmem.list_users() == ["ann"]


def test_rows_of_the_old_partitioning_stay_readable_and_move(engine: Engine) -> None:
    # An earlier version stored runs with configurable["user_id"] under that tenant; a
    # saver with user_key="user_id" writes exactly that layout.
    old = CheckpointSaver(engine, user_key="user_id")
    echo_graph(old).invoke({"messages": [("user", "hi")]}, TUTORIAL)
    saver = CheckpointSaver(engine)
    graph = echo_graph(saver)
    assert graph.get_state(TUTORIAL).values == {}  # stored under tenant "1"
    assert len(echo_graph(old).get_state(TUTORIAL).values["messages"]) == 2  # still readable
    before = rows(engine)
    assert saver.move_threads("1") == before["checkpoints"] == 3  # one invocation's
    assert saver.move_threads("1") == 0  # idempotent
    assert rows(engine) == before  # moved, nothing lost or doubled
    assert saver.list_users() == ["default"]
    graph.invoke({"messages": [("user", "again")]}, TUTORIAL)
    assert len(graph.get_state(PLAIN).values["messages"]) == 4


async def test_move_threads_async_selected_threads(aengine: Engine) -> None:
    old = CheckpointSaver(aengine, user_key="user_id")
    for thread in ("a", "b"):
        await echo_graph(old).ainvoke(
            {"messages": [("user", "hi")]}, {"configurable": {"thread_id": thread, "user_id": "u"}}
        )
    saver = CheckpointSaver(aengine, user_id="alice")
    assert await saver.amove_threads("u", thread_ids=["a"]) == 3
    assert await saver.alist_threads() == ["a"]
    assert await saver.alist_threads(user_id="u") == ["b"]
    assert await saver.amove_threads("u", to_user_id="bob", thread_ids=[]) == 0
    assert await saver.amove_threads("u", to_user_id="bob") == 3
    assert await saver.alist_threads(user_id="bob") == ["b"]


def test_cli_moves_a_user_s_threads(engine: Engine) -> None:
    import json

    from click.testing import CliRunner

    from langchain_agentmem.cli import main

    old = CheckpointSaver(engine, user_key="user_id")
    echo_graph(old).invoke({"messages": [("user", "hi")]}, TUTORIAL)
    args = ["checkpoints", "move-user", "1", "--url", engine.url, "--schema", engine.schema]
    dry = CliRunner().invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.strip() == "would move 1 thread from '1' to 'default'"
    assert old.list_users() == ["1"]
    done = CliRunner().invoke(main, [*args, "--json"])
    assert json.loads(done.output) == {
        "from": "1",
        "to": "default",
        "threads": ["1"],
        "dry_run": False,
        "checkpoints_moved": 3,
    }
    assert len(echo_graph(CheckpointSaver(engine)).get_state(PLAIN).values["messages"]) == 2
