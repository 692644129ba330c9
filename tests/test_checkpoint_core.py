"""The checkpointer and the chat history on the core driver: one definition per operation
(sync and async forms of the same plan), paged reads, and the capabilities they use."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from test_checkpoint import put_chain

from langchain_agentmem import ChatMessageHistory, CheckpointSaver, Engine, connect
from langchain_agentmem._core.plan import Atomic, One, Plan, apages, pages
from langchain_agentmem.checkpoint import _Scope, put_steps
from langchain_agentmem.dialects import SQL, PostgresDialect, SQLiteDialect

from conftest import fresh_schema


def twins(cls: type) -> list[str]:
    """Names ``aX`` defined by ``cls`` whose ``X`` it defines too."""
    return sorted(
        name
        for name in vars(cls)
        if name.startswith("a") and name[1:] in vars(cls) and not name.startswith("__")
    )


def test_every_async_form_is_the_sync_methods_one_definition() -> None:
    engine = connect("sqlite://")
    objects = [CheckpointSaver(engine), ChatMessageHistory(engine, "s")]
    checked = []
    for obj in objects:
        for name in twins(type(obj)):
            sync, async_ = getattr(obj, name[1:]), getattr(obj, name)
            assert inspect.signature(sync).parameters == inspect.signature(async_).parameters, name
            if isinstance(vars(type(obj))[name], staticmethod):
                continue  # two one-line runners of one plan (they take the engine)
            assert inspect.unwrap(async_) is inspect.unwrap(sync), f"{name} is a separate copy"
            checked.append(name)
    assert {"aget_tuple", "alist", "aput", "aput_writes", "aprune", "aget_messages"} <= set(checked)
    assert "aadd_messages" in checked and "aclear" in checked


def test_put_is_one_statement_text_whatever_the_number_of_blobs() -> None:
    """The text is what the server prepares: one text, one preparation per connection."""
    dialect = PostgresDialect("agent_mem")
    scope = _Scope({"configurable": {"thread_id": "t"}}, "u")

    def first(blobs: list[tuple[str, str, str, bytes | None]], earlier: list[Any]) -> Any:
        stmt = next(put_steps(dialect, scope, None, {"id": "c"}, {}, blobs, earlier))
        return stmt._replace(sql=dialect.render(stmt.sql))

    texts = {
        first([], []).sql,
        first([("a", "1", "msgpack", b"x")], []).sql,
        first([("a", "1", "msgpack", b"x"), ("b", "2", "empty", None)], [("c", "0")]).sql,
    }
    assert len(texts) == 1
    assert " FOR KEY SHARE" in texts.pop()


def test_row_locks_are_a_named_capability() -> None:
    assert PostgresDialect().supports_row_locks and not SQLiteDialect().supports_row_locks
    assert PostgresDialect().row_lock("key share") == " FOR KEY SHARE"
    assert PostgresDialect().row_lock("update") == " FOR UPDATE"
    assert SQLiteDialect().row_lock("update") == ""
    with pytest.raises(ValueError, match="'key share' or 'update', got 'share'"):
        SQLiteDialect().row_lock("share")
    with pytest.raises(ValueError, match="SQLite cannot unnest bytes"):
        SQLiteDialect().unnest([("b", "bytes")])


def counting_pages(engine: Engine, started: list[int], page: int, last: int) -> Plan[Any]:
    """Pages of two numbers each; ``started`` records each page as it is read."""
    started.append(page)
    row = yield Atomic(_one(page), readonly=True, user_id="u")
    items = [row[0] * 2, row[0] * 2 + 1]
    return items, (counting_pages(engine, started, page + 1, last) if page < last else None)


def _one(page: int) -> Any:
    return (yield One("SELECT ?", [page]))


def test_paged_reads_read_a_page_only_when_it_is_reached(engine: Engine) -> None:
    started: list[int] = []
    items = pages(engine, "u", counting_pages(engine, started, 0, 4))
    assert started == []  # nothing is read before the first item is asked for
    assert next(items) == 0 and next(items) == 1
    assert started == [0]
    assert next(items) == 2
    assert started == [0, 1]
    items.close()
    assert list(pages(engine, "u", counting_pages(engine, [], 0, 4))) == list(range(10))


async def test_paged_reads_read_a_page_only_when_it_is_reached_async(aengine: Engine) -> None:
    started: list[int] = []
    items = apages(aengine, "u", counting_pages(aengine, started, 0, 4))
    assert started == []
    assert await items.__anext__() == 0 and await items.__anext__() == 1
    assert started == [0]
    assert await items.__anext__() == 2
    assert started == [0, 1]
    await items.aclose()
    assert [i async for i in apages(aengine, "u", counting_pages(aengine, [], 0, 4))] == list(
        range(10)
    )


async def test_alist_pages_through_long_histories_in_order(aengine: Engine) -> None:
    saver = CheckpointSaver(aengine)
    configs = put_chain(saver, "long", 230)
    cfg = {"configurable": {"thread_id": "long"}}
    listed = saver.alist(cfg)
    first = await listed.__anext__()
    rest = [t async for t in listed]
    ids = [first.config["configurable"]["checkpoint_id"]] + [
        t.config["configurable"]["checkpoint_id"] for t in rest
    ]
    assert ids == [c["configurable"]["checkpoint_id"] for c in reversed(configs)]
    assert [t.checkpoint["channel_values"]["i"] for t in rest[:3]] == [228, 227, 226]
    assert len([t async for t in saver.alist(cfg, limit=150)]) == 150
    assert len([t async for t in saver.alist(cfg, before=configs[200], limit=500)]) == 200
    assert [t.metadata["step"] async for t in saver.alist(cfg, filter={"step": 5})] == [5]
    assert [t async for t in saver.alist(cfg, limit=0)] == []
    with pytest.raises(ValueError, match="limit must be a non-negative int"):
        [t async for t in saver.alist(cfg, limit=-1)]


async def test_async_reads_of_users_threads_and_sessions(aengine: Engine) -> None:
    saver = CheckpointSaver(aengine, user_id="ann")
    put_chain(saver, "t1", 1)
    assert await saver.alist_threads() == ["t1"] == saver.list_threads()
    assert await saver.alist_users() == ["ann"] == saver.list_users()
    history = ChatMessageHistory(aengine, "s1", user_id="ann")
    await history.aadd_messages([HumanMessage("hi")])
    sessions = await ChatMessageHistory.alist_sessions(aengine, "ann")
    assert [s.session_id for s in sessions] == ["s1"]
    assert ChatMessageHistory.list_sessions(aengine, "ann") == sessions


def test_a_transaction_that_need_not_be_durable_skips_the_disk_flush_alone(
    postgres_url: str,
) -> None:
    # Sessions that wait for the disk by default (the test server itself does not).
    sep = "&" if "?" in postgres_url else "?"
    eng = connect(postgres_url + sep + "options=-csynchronous_commit%3Don", schema=fresh_schema())
    try:
        for single in (False, True):
            with eng.transaction("u", durable=False, single=single) as tx:
                assert tx.fetchone("SHOW synchronous_commit") == ("off",)
            with eng.transaction("u") as tx:
                assert tx.fetchone("SHOW synchronous_commit") == ("on",)
    finally:
        eng.close()


async def test_a_transaction_that_need_not_be_durable_skips_the_disk_flush_alone_async(
    postgres_url: str,
) -> None:
    sep = "&" if "?" in postgres_url else "?"
    eng = connect(postgres_url + sep + "options=-csynchronous_commit%3Don", schema=fresh_schema())
    try:
        async with eng.atransaction("u", durable=False, single=True) as tx:
            assert await tx.fetchone("SHOW synchronous_commit") == ("off",)
        async with eng.atransaction("u") as tx:
            assert await tx.fetchone("SHOW synchronous_commit") == ("on",)
    finally:
        await eng.aclose()
        eng.close()


def test_pending_writes_wait_for_the_disk_unless_told_not_to() -> None:
    assert CheckpointSaver(connect("sqlite://")).durable_writes is True
    assert CheckpointSaver(connect("sqlite://"), durable_writes=False).durable_writes is False


def test_unnest_arrays_of_str_and_bytes_are_built_directly_and_round_trip(
    postgres_url: str,
) -> None:
    """A checkpoint write sends its blobs and chunk keys as arrays: lists of exactly str
    (or bytes) and None are encoded without psycopg's per-element list dumper, to the same
    bytes, and come back unchanged; other values keep psycopg's way."""
    import psycopg
    from psycopg.adapt import PyFormat, Transformer

    dialect = PostgresDialect("agent_mem")
    cols = [("t", "text"), ("b", "bytes")]
    rows = [("messages", b"\x00\xff" * 3000), ("", None), ("Ω \ud7ff 𝄞", b""), (None, b"x")]
    texts, blobs = dialect.unnest_params(cols, rows)
    assert type(texts).__name__ == "_FlatTextList" and type(blobs).__name__ == "_FlatByteaList"
    for flat, plain in ((texts, [r[0] for r in rows]), (blobs, [r[1] for r in rows])):
        ours, generic = (
            bytes(Transformer().dump_sequence([v], [PyFormat.BINARY])[0]) for v in (flat, plain)
        )
        assert ours == generic
    # Other element types (an int in a text column, a bytearray) are not flattened.
    odd = dialect.unnest_params(cols, [(1, bytearray(b"y"))])
    assert [type(v) for v in odd] == [list, list]
    query = "SELECT m.t, m.b FROM " + dialect.unnest(cols) + " ORDER BY m.ord"  # noqa: S608
    with psycopg.connect(postgres_url) as conn:
        got = conn.execute(dialect.render(query), [texts, blobs]).fetchall()
        assert got == [(t, b) for t, b in rows]
        empty = dialect.unnest_params(cols, [])
        assert conn.execute(dialect.render(query), empty).fetchall() == []


def test_get_tuple_reads_the_writes_of_its_checkpoint_only(engine: Engine) -> None:
    """The writes of the checkpoint read are found by its id in the primary key, not by
    filtering every write of the thread (what a planner without statistics chose)."""
    from langchain_agentmem.checkpoint import get_query

    saver = CheckpointSaver(engine)
    configs = put_chain(saver, "w", 20)
    for i, config in enumerate(configs):
        saver.put_writes(config, [("a", i), ("b", -i)], f"task-{i}")
    middle = configs[10]
    got = saver.get_tuple(middle)
    assert got is not None and [(c, v) for _, c, v in got.pending_writes] == [("a", 10), ("b", -10)]
    scope = _Scope({"configurable": {"thread_id": "w", "checkpoint_ns": ""}}, "default")
    query, params = get_query(engine.dialect, scope, None)
    with engine.transaction(readonly=True) as tx:
        if engine.dialect.name == "postgres":
            plan = tx.fetchall(SQL("EXPLAIN (ANALYZE, COSTS OFF) ") + query, params)
            lines = [r[0] for r in plan]
            writes = next(i for i, line in enumerate(lines) if "checkpoint_writes_pkey" in line)
            assert "checkpoint_id" in lines[writes + 1], lines
            assert not any("Rows Removed by Join Filter" in line for line in lines), lines
        else:
            plan = " ".join(
                str(r[-1]) for r in tx.fetchall(SQL("EXPLAIN QUERY PLAN ") + query, params)
            )
            assert "checkpoint_id=?" in plan or "checkpoint_id=" in plan, plan
