"""Hybrid mode against the real test Postgres: a SQLite cache whose writes reach Postgres
exactly once, through a link a test can cut, slow down or make flaky, and processes
killed in the middle of a sync."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _proxy import Proxy
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage, HumanMessage

from langchain_agentmem import (
    ChatMessageHistory,
    DocumentStore,
    KeyValueStore,
    MemoryVectorStore,
    connect,
)
from langchain_agentmem._core.plan import run
from langchain_agentmem.dialects import SQL, Ident, Table
from langchain_agentmem.hybrid import HybridEngine, connect_hybrid


@pytest.fixture
def schema() -> str:
    return "h_" + uuid.uuid4().hex[:12]


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[Proxy]:
    p = Proxy(postgres_url)
    yield p
    p.close()


@pytest.fixture
def cache(tmp_path: Path, proxy: Proxy, schema: str) -> Callable[..., HybridEngine]:
    """A factory of migrated caches (one file each) reaching Postgres through the proxy."""
    made: list[HybridEngine] = []

    def make(name: str = "a", **options: Any) -> HybridEngine:
        engine = connect_hybrid(
            f"sqlite:///{tmp_path / (name + '.db')}", proxy.url, schema=schema, **options
        )
        engine.migrate()
        made.append(engine)
        return engine

    yield make  # type: ignore[misc]
    for engine in made:
        engine.close()


def messages(engine: Any, session: str, user: str = "u") -> list[str]:
    return [str(m.content) for m in ChatMessageHistory(engine, session, user_id=user).messages]


def contents(engine: HybridEngine, user: str = "u") -> tuple[dict[str, Any], dict[str, Any]]:
    """Every synced table's rows of ``user`` in the cache and in Postgres, in the cache's
    form (JSON compared parsed, reference ids by name)."""
    run(engine, None, engine._prepare())
    local: dict[str, Any] = {}
    remote: dict[str, Any] = {}
    with engine.transaction(readonly=True) as tx:
        names = dict(tx.fetchall("SELECT collection_id, name FROM {vector_collections}"))
    ids = {"vector_collections": {v: k for k, v in names.items()}}
    for t in engine.tables:
        cols = engine._cols(t.name)
        select = SQL(", ").join(Ident(c) for c in cols.names)
        with engine.transaction(readonly=True) as tx:
            rows = tx.fetchall(
                SQL("SELECT {} FROM {} WHERE user_id = ?").format(select, Table(t.name)), [user]
            )
        with engine.remote.transaction(readonly=True) as tx:
            got = tx.fetchall(
                SQL("SELECT {} FROM {} t WHERE t.user_id = ?").format(
                    engine._select(t), Table(t.name)
                ),
                [user],
            )

        def norm(row: tuple[Any, ...], cols: Any = cols) -> tuple[Any, ...]:
            out = []
            for c, v in zip(cols.names, row, strict=True):
                kind = cols.kinds[c]
                if kind in ("json", "array") and isinstance(v, str):
                    v = json.dumps(json.loads(v), sort_keys=True)
                out.append(v)
            return tuple(out)

        local[t.name] = sorted((norm(r) for r in rows), key=repr)
        remote[t.name] = sorted((norm(engine._to_local(t, r, ids)) for r in got), key=repr)
    return local, remote


def assert_same(engine: HybridEngine, user: str = "u") -> None:
    local, remote = contents(engine, user)
    assert local == remote


def log(engine: HybridEngine) -> list[tuple[Any, ...]]:
    with engine.transaction(readonly=True) as tx:
        return tx.fetchall(
            "SELECT run_id, status, events_synced, rows_synced, error FROM {memory_sync_log} "
            "ORDER BY run_id"
        )


def remote_log(engine: HybridEngine) -> list[tuple[Any, ...]]:
    with engine.remote.transaction(readonly=True) as tx:
        return tx.fetchall(
            "SELECT source, run_id, status, events_synced, rows_synced FROM {memory_sync_log} "
            "ORDER BY source, run_id"
        )


def source(engine: HybridEngine) -> str:
    with engine.transaction(readonly=True) as tx:
        row = tx.fetchone("SELECT value FROM {sync_state} WHERE key = 'source'")
    assert row is not None
    return str(row[0])


def seqs(pg: Any, session: str, user: str = "u") -> list[int]:
    with pg.transaction(readonly=True) as tx:
        rows = tx.fetchall(
            "SELECT seq FROM {events} WHERE user_id = ? AND session_id = ? ORDER BY seq",
            [user, session],
        )
    return [r[0] for r in rows]


# -- every memory goes up, and comes down in another cache ------------------------------


def test_memories_reach_postgres_and_load_into_another_cache(
    cache: Callable[..., HybridEngine], postgres_url: str, schema: str
) -> None:
    a = cache("a")
    history = ChatMessageHistory(a, "s1", user_id="u")
    history.add_messages([HumanMessage("hi \x00 \ud800"), AIMessage("hello")])
    KeyValueStore(a, "ns", user_id="u").set("k", {"n": 1, "text": "é"})
    DocumentStore(a, "docs", user_id="u").mset([("d1", Document("x", metadata={"a": 1}))])
    vs = MemoryVectorStore(a, DeterministicFakeEmbedding(size=8), collection="c", user_id="u")
    vs.add_texts(["alpha", "beta"], metadatas=[{"i": 1}, {"i": 2}], ids=["1", "2"])
    assert a.outbox_depth() > 0
    report = a.sync()
    assert (report.status, report.events_synced) == ("ok", 2)
    assert a.outbox_depth() == 0
    assert_same(a)
    pg = connect(postgres_url, schema=schema)
    try:
        assert messages(pg, "s1") == ["hi \x00 \ud800", "hello"]
        assert KeyValueStore(pg, "ns", user_id="u").get("k") == {"n": 1, "text": "é"}
        found = MemoryVectorStore(
            pg, DeterministicFakeEmbedding(size=8), collection="c", user_id="u"
        ).similarity_search("alpha", k=1)
        assert found[0].page_content == "alpha"
    finally:
        pg.close()
    b = cache("b")
    pulled = b.load_user("u")
    assert pulled.full and pulled.rows > 0
    assert b.outbox_depth() == 0  # nothing pulled is queued back
    assert messages(b, "s1") == ["hi \x00 \ud800", "hello"]
    assert DocumentStore(b, "docs", user_id="u").mget(["d1"])[0].metadata == {"a": 1}  # type: ignore[union-attr]
    assert_same(b)
    # Incremental: only what changed since.
    KeyValueStore(a, "ns", user_id="u").set("k2", 2)
    history.add_messages([HumanMessage("more")])
    a.sync()
    again = b.load_user("u")
    assert not again.full and again.rows == 3  # k2, the session row, the event
    assert messages(b, "s1") == ["hi \x00 \ud800", "hello", "more"]
    assert_same(b)
    statuses = [r[1] for r in log(a)]
    assert statuses == ["ok", "ok"]


async def test_async_forms(cache: Callable[..., HybridEngine]) -> None:
    a = cache("a")
    await ChatMessageHistory(a, "s", user_id="u").aadd_messages([HumanMessage("x")])
    report = await a.async_sync()
    assert (report.status, report.events_synced) == ("ok", 1)
    b = cache("b")
    assert (await b.aload_user("u")).full
    assert messages(b, "s") == ["x"]
    async with a:  # starts the worker task; a last sync on exit
        await ChatMessageHistory(a, "s", user_id="u").aadd_messages([HumanMessage("y")])
    assert a.outbox_depth() == 0
    await b.aload_user("u")
    assert messages(b, "s") == ["x", "y"]


def test_worker_thread(cache: Callable[..., HybridEngine]) -> None:
    a = cache("a", sync_interval=0.05)
    with a:
        ChatMessageHistory(a, "s", user_id="u").add_messages([HumanMessage("x")])
    assert a.outbox_depth() == 0
    assert all(r[1] == "ok" for r in log(a))
    assert sum(r[2] for r in log(a)) == 1


# -- Postgres away -------------------------------------------------------------------------


def test_postgres_down_from_the_start_then_back(
    cache: Callable[..., HybridEngine], proxy: Proxy
) -> None:
    proxy.cut()
    a = cache("a", batch_size=7)
    history = ChatMessageHistory(a, "s", user_id="u")
    for i in range(10):  # never waits for Postgres
        history.add_messages([HumanMessage(f"m{i}")])
    with pytest.raises(ConnectionError):
        a.sync()
    # One row per message and one for the new session: an append's update of the
    # session's counter and activity time queues nothing (its delivery carries them).
    assert a.outbox_depth() == 11
    proxy.restore()
    report = a.sync()
    assert (report.status, report.events_synced, report.rows_synced) == ("ok", 10, 11)
    assert messages(a.remote, "s") == [f"m{i}" for i in range(10)]
    assert seqs(a.remote, "s") == list(range(1, 11))
    runs = log(a)
    assert [r[1] for r in runs] == ["failed", "ok"]
    assert "cannot connect" in runs[0][4] or "connection" in runs[0][4].lower()
    # Both runs reached Postgres's log once it answered.
    assert [(r[2], r[3]) for r in remote_log(a)] == [("failed", 0), ("ok", 10)]


def test_postgres_lost_mid_batch(cache: Callable[..., HybridEngine], proxy: Proxy) -> None:
    a = cache("a", batch_size=5)
    history = ChatMessageHistory(a, "s", user_id="u")
    a.sync()  # migrates Postgres
    written = []
    failures = 0
    for budget in (400, 900, 1500, 2200, 3000, 4500):
        for i in range(3):
            text = f"m{budget}-{i}"
            history.add_messages([HumanMessage(text)])
            written.append(text)
        a.remote.close()  # the next connection goes through the proxy afresh...
        proxy.drop_after(budget)  # ...and is cut after this many bytes towards Postgres
        try:
            a.sync()
        except ConnectionError:
            failures += 1
    a.remote.close()
    a.sync()
    assert failures >= 3
    assert a.outbox_depth() == 0
    assert messages(a.remote, "s") == written
    assert seqs(a.remote, "s") == list(range(1, len(written) + 1))
    runs = log(a)
    assert [r[1] for r in runs].count("failed") == failures
    assert sum(r[2] for r in runs) == len(written)  # each event counted once
    assert_same(a)


def test_flaky_link_converges(cache: Callable[..., HybridEngine], proxy: Proxy) -> None:
    from psycopg_pool import PoolTimeout

    a = cache("a", batch_size=8, remote_config={"timeout": 1.0})
    history = ChatMessageHistory(a, "s", user_id="u")
    for i in range(30):
        history.add_messages([HumanMessage(f"m{i}")])
        KeyValueStore(a, "ns", user_id="u").set(f"k{i % 5}", i)
    a.sync(max_batches=1)
    proxy.flaky(0.03, seed=3)
    for _ in range(25):
        if a.outbox_depth() == 0:
            break
        try:
            a.sync()
        except (ConnectionError, PoolTimeout):
            pass
    proxy.restore()
    assert proxy.drops > 0
    assert a.outbox_depth() < 120  # progress through the flaky link
    a.remote.close()
    a.sync()
    assert a.outbox_depth() == 0
    assert messages(a.remote, "s") == [f"m{i}" for i in range(30)]
    assert seqs(a.remote, "s") == list(range(1, 31))
    assert [KeyValueStore(a.remote, "ns", user_id="u").get(f"k{j}") for j in range(5)] == [
        25,
        26,
        27,
        28,
        29,
    ]
    runs = log(a)
    assert sum(r[2] for r in runs) == 30
    assert all(r[4] for r in runs if r[1] == "failed")  # every failure carries its error
    assert_same(a)


# -- processes killed mid-sync -------------------------------------------------------------


def _fork(child: Callable[[], None]) -> int:
    """Run ``child`` in a forked process (no new interpreter, no imports); its status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 0
        try:
            child()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def _kill_on(cls: type, name: str, *, nth: int, after: bool = False) -> None:
    """Make the ``nth`` call of the body method ``name`` SIGKILL its process (before its
    first statement, or after its last one with ``after``)."""
    original = getattr(cls, name)
    calls = {"n": 0}

    def body(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == nth and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        result = yield from original(self, *args, **kwargs)
        if calls["n"] == nth and after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(cls, name, body)


@pytest.mark.parametrize(
    ("point", "method", "after"),
    [
        ("inside the Postgres transaction", "_remote_append", True),
        ("between the Postgres commit and the local one", "_finish", False),
        ("inside the local transaction", "_renumber", True),
        ("after the batches, before the log upload", "_upload_log", False),
    ],
)
def test_sigkill_mid_sync(
    cache: Callable[..., HybridEngine],
    tmp_path: Path,
    proxy: Proxy,
    schema: str,
    point: str,
    method: str,
    after: bool,
) -> None:
    b = cache("b")  # another cache wrote to the session first: the seqs a gets differ
    ChatMessageHistory(b, "s", user_id="u").add_messages([HumanMessage("b0"), HumanMessage("b1")])
    b.sync()
    path = tmp_path / "a.db"

    def child() -> None:
        a = connect_hybrid(f"sqlite:///{path}", proxy.url, schema=schema, batch_size=4)
        a.migrate()
        history = ChatMessageHistory(a, "s", user_id="u")
        for i in range(6):
            history.add_messages([HumanMessage(f"a{i}")])
        KeyValueStore(a, "ns", user_id="u").set("k", "v")
        _kill_on(HybridEngine, method, nth=1 if method == "_upload_log" else 2, after=after)
        a.sync()

    status = _fork(child)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, point
    a = cache("a", batch_size=4)
    report = a.sync()
    assert report.status == "ok"
    assert a.outbox_depth() == 0
    assert messages(a.remote, "s") == ["b0", "b1"] + [f"a{i}" for i in range(6)]
    assert seqs(a.remote, "s") == list(range(1, 9))
    a.load_user("u")
    b.load_user("u")
    assert messages(a, "s") == messages(b, "s") == messages(a.remote, "s")
    assert_same(a)
    assert_same(b)
    runs = log(a)
    # The killed run is in the log (interrupted, or ok when only its upload was left).
    first = "ok" if method == "_upload_log" else "interrupted"
    assert [r[1] for r in runs] == [first, "ok"]
    assert sum(r[2] for r in runs) == 6  # each event counted once, by the run that finished it
    assert [r[1:3] for r in remote_log(a) if r[0] == source(a)] == [
        (1, first),
        (2, "ok"),
    ]


@pytest.mark.parametrize(
    ("killed", "next_run"),
    [
        ({}, {}),
        ({"batch_size": 3}, {"batch_size": 1}),  # the next run reads smaller batches
        ({"session_id": "s"}, {}),  # the killed run delivered one session's rows only
    ],
)
def test_a_batch_killed_before_its_local_commit_is_finished_once(
    cache: Callable[..., HybridEngine],
    tmp_path: Path,
    proxy: Proxy,
    schema: str,
    killed: dict[str, Any],
    next_run: dict[str, Any],
) -> None:
    """The next run finishes locally, once, the batch a run killed between the Postgres
    commit and the local one delivered; the writes queued beside it or since go up."""
    path = tmp_path / "a.db"
    size = killed.get("batch_size", 5000)

    def child() -> None:
        a = connect_hybrid(f"sqlite:///{path}", proxy.url, schema=schema, batch_size=size)
        a.migrate()
        KeyValueStore(a, "ns", user_id="u").set("k0", 0)
        history = ChatMessageHistory(a, "s", user_id="u")
        for i in range(2):
            history.add_messages([HumanMessage(f"before {i}")])
        _kill_on(HybridEngine, "_finish", nth=1, after=False)
        a.sync(session_id=killed.get("session_id"))

    status = _fork(child)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    a = cache("a", batch_size=next_run.get("batch_size", 5000))
    ChatMessageHistory(a, "s", user_id="u").add_messages([HumanMessage("after")])
    KeyValueStore(a, "ns", user_id="u").set("k1", 1)
    assert a.sync().status == "ok"
    assert a.outbox_depth() == 0
    assert messages(a.remote, "s") == ["before 0", "before 1", "after"]
    assert seqs(a.remote, "s") == [1, 2, 3]
    assert [KeyValueStore(a.remote, "ns", user_id="u").get(k) for k in ("k0", "k1")] == [0, 1]
    assert_same(a)
    assert sum(r[2] for r in log(a)) == 3  # each event counted once


def test_two_caches_write_one_session_at_once(
    tmp_path: Path, proxy: Proxy, schema: str, cache: Callable[..., HybridEngine]
) -> None:
    cache("x").sync()  # migrates Postgres before the two processes race

    def writer(name: str) -> Callable[[], None]:
        def child() -> None:
            e = connect_hybrid(
                f"sqlite:///{tmp_path / (name + '.db')}", proxy.url, schema=schema, batch_size=3
            )
            e.migrate()
            history = ChatMessageHistory(e, "shared", user_id="u")
            for i in range(10):
                history.add_messages([HumanMessage(f"{name}{i}"), AIMessage(f"{name}{i}!")])
                if i % 2:
                    e.sync()
            e.sync()
            e.close()

        return child

    pids = []
    for name in ("a", "b"):
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            code = 0
            try:
                writer(name)()
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            os._exit(code)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    a, b = cache("a"), cache("b")
    for e in (a, b):
        e.load_user("u")
    pg = messages(a.remote, "shared")
    assert sorted(pg) == sorted([f"{n}{i}{s}" for n in "ab" for i in range(10) for s in ("", "!")])
    assert seqs(a.remote, "shared") == list(range(1, 41))  # no gap, no collision
    for n in "ab":  # each cache's order kept
        assert [m for m in pg if m.startswith(n)] == [
            f"{n}{i}{s}" for i in range(10) for s in ("", "!")
        ]
    assert messages(a, "shared") == messages(b, "shared") == pg
    assert_same(a)
    assert_same(b)


# -- last writer wins -------------------------------------------------------------------------


def test_last_writer_wins_for_kv_documents_and_entities(
    cache: Callable[..., HybridEngine],
) -> None:
    from langchain_agentmem import EntityStore

    a, b = cache("a"), cache("b")
    KeyValueStore(a, "ns", user_id="u").set("k", "older")
    DocumentStore(a, "d", user_id="u").mset([("doc", Document("older"))])
    EntityStore(a, user_id="u").set("Paris", "older")
    KeyValueStore(b, "ns", user_id="u").set("k", "newer")
    DocumentStore(b, "d", user_id="u").mset([("doc", Document("newer"))])
    EntityStore(b, user_id="u").set("Paris", "newer")
    b.sync()
    a.sync()  # delivered last, written first: loses, and a's cache takes the winner
    for e in (a, a.remote, b):
        assert KeyValueStore(e, "ns", user_id="u").get("k") == "newer"
        assert DocumentStore(e, "d", user_id="u").mget(["doc"])[0].page_content == "newer"  # type: ignore[union-attr]
        assert EntityStore(e, user_id="u").get("Paris") == "newer"
    # A delete is a write too: a later one wins over an earlier set delivered after it.
    KeyValueStore(b, "ns", user_id="u").set("k", "set before the delete")
    time.sleep(0.005)  # two caches' writes in one millisecond have no order to test
    KeyValueStore(a, "ns", user_id="u").delete("k")
    a.sync()
    b.sync()
    assert KeyValueStore(a.remote, "ns", user_id="u").get("k") is None
    assert KeyValueStore(b, "ns", user_id="u").get("k") is None
    assert_same(a)
    assert_same(b)


def test_outbox_seqs_that_come_back_are_not_taken_for_a_delivered_batch(
    cache: Callable[..., HybridEngine],
) -> None:
    a = cache("a")
    kv = KeyValueStore(a, "ns", user_id="u")
    kv.set("k1", 1)
    a.sync()  # the delivery record now names outbox seq 1
    kv.set("k2", 2)  # the outbox is empty again: the sync queues this write as seq 1 too
    with a.transaction(readonly=True) as tx:
        assert tx.fetchall("SELECT seq FROM {sync_outbox}") == []
    assert a.outbox_depth() == 1
    assert a.sync().rows_synced == 1
    assert KeyValueStore(a.remote, "ns", user_id="u").get("k2") == 2
    assert_same(a)


def test_an_update_of_the_key_queues_a_delete_of_the_old_key(
    cache: Callable[..., HybridEngine],
) -> None:
    a = cache("a")
    kv = KeyValueStore(a, "ns", user_id="u")
    kv.set("old", "v")
    kv.set("old", "w")  # an upsert: one update, no delete (kv rows carry their version)
    with a.transaction() as tx:
        assert tx.fetchall("SELECT op, pk FROM {sync_outbox} ORDER BY seq") == []
        tx.execute("UPDATE {kv} SET key = 'new' WHERE user_id = 'u'")
        ops = tx.fetchall("SELECT op, pk FROM {sync_outbox} ORDER BY seq")
    assert [(op, json.loads(pk)[-1]) for op, pk in ops] == [("d", "old")]
    assert a.outbox_depth() == 2  # the delete, and the row under its new key
    a.sync()
    with a.remote.transaction(readonly=True) as tx:
        assert tx.fetchall("SELECT key FROM {kv} WHERE user_id = 'u'") == [("new",)]
    assert_same(a)


def test_an_update_that_changes_nothing_queues_nothing(
    cache: Callable[..., HybridEngine],
) -> None:
    a = cache("a")
    KeyValueStore(a, "ns", user_id="u").set("k", "v")
    a.sync()
    with a.transaction() as tx:
        # An upsert of the row's own values (the same value again within one millisecond).
        tx.execute("UPDATE {kv} SET value = value, updated_at = updated_at WHERE user_id = 'u'")
        assert tx.fetchall("SELECT op FROM {sync_outbox}") == []
    assert a.outbox_depth() == 0
    with a.transaction() as tx:
        tx.execute("UPDATE {kv} SET value = '\"w\"' WHERE user_id = 'u'")
    assert a.outbox_depth() == 1
    assert a.sync().rows_synced == 1
    assert KeyValueStore(a.remote, "ns", user_id="u").get("k") == "w"
    assert_same(a)


def _kv_versions(engine: HybridEngine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The cache's kv rows (key, version), its outbox rows (op, key) and the kv mark."""
    with engine.transaction(readonly=True) as tx:
        rows = tx.fetchall("SELECT key, sync_version FROM {kv} ORDER BY key")
        ops = tx.fetchall("SELECT op, pk FROM {sync_outbox} ORDER BY seq")
    return rows, [(op, json.loads(pk)[-1]) for op, pk in ops]


def _kv_mark(engine: HybridEngine) -> int:
    with engine.transaction(readonly=True) as tx:
        return int(tx.fetchall("SELECT value FROM {sync_state} WHERE key = 'rows:kv'")[0][0])


def test_a_kv_write_carries_its_version_and_the_sync_queues_it(
    cache: Callable[..., HybridEngine],
) -> None:
    a = cache("a")
    kv = KeyValueStore(a, "ns", user_id="u")
    kv.set("k", 1)
    ((_, first),) = _kv_versions(a)[0]
    kv.set("k", 2)  # two writes of one key between syncs
    kv.set("j", 3)
    rows, ops = _kv_versions(a)
    assert ops == []  # no outbox row per write
    (_, vj), (_, vk) = rows
    assert vk > first > _kv_mark(a) == 0 and vj > 0  # a key's versions never go back
    vj = max(vj, vk)
    assert a.outbox_depth() == 2
    report = a.sync()
    assert report.rows_synced == 2  # the last value of each key, once
    assert [KeyValueStore(a.remote, "ns", user_id="u").get(x) for x in ("k", "j")] == [2, 3]
    assert _kv_mark(a) == vj
    assert a.outbox_depth() == 0
    assert a.sync().rows_synced == 0  # nothing is queued twice
    kv.set("k", 4)
    assert _kv_versions(a)[0][1][1] > vj  # above the mark: queued by the next sync
    assert a.sync().rows_synced == 1
    assert KeyValueStore(a.remote, "ns", user_id="u").get("k") == 4
    assert_same(a)


def test_a_delete_after_an_unqueued_set_is_delivered(
    cache: Callable[..., HybridEngine],
) -> None:
    a = cache("a")
    kv = KeyValueStore(a, "ns", user_id="u")
    kv.set("kept", 0)
    kv.set("gone", 1)
    a.sync()
    kv.set("gone", 2)  # not queued yet
    kv.set("never", 3)  # never delivered
    (_, v_gone), _, _ = _kv_versions(a)[0]
    kv.delete("gone")
    kv.delete("never")
    rows, ops = _kv_versions(a)
    assert [r[0] for r in rows] == ["kept"]
    assert ops == [("d", "gone"), ("d", "never")]  # the tombstones
    with a.transaction(readonly=True) as tx:
        (version,) = tx.fetchall("SELECT version FROM {sync_outbox} ORDER BY seq LIMIT 1")[0]
    assert version > v_gone  # a delete is newer than the set it removes
    assert a.sync().status == "ok"
    assert a.outbox_depth() == 0
    with a.remote.transaction(readonly=True) as tx:
        assert tx.fetchall("SELECT key FROM {kv} WHERE user_id = 'u'") == [("kept",)]
    assert_same(a)


def test_kv_writes_killed_between_the_mark_and_the_delivery(
    cache: Callable[..., HybridEngine], tmp_path: Path, proxy: Proxy, schema: str
) -> None:
    """A run killed after the sync queued the kv rows above the mark (and raised it), before
    Postgres got them: the queued rows wait in the outbox; a later write of the same key
    is queued again by the next run, which delivers the last value once."""
    path = tmp_path / "a.db"

    def child() -> None:
        a = connect_hybrid(f"sqlite:///{path}", proxy.url, schema=schema)
        a.migrate()
        kv = KeyValueStore(a, "ns", user_id="u")
        kv.set("k", "first")
        kv.set("j", "only")
        _kill_on(HybridEngine, "_deliver", nth=1, after=False)
        a.sync()

    status = _fork(child)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    a = cache("a")
    rows, ops = _kv_versions(a)
    assert sorted(ops) == [("u", "j"), ("u", "k")]  # queued by the killed run
    assert _kv_mark(a) == max(v for _, v in rows)
    assert a.outbox_depth() == 2
    KeyValueStore(a, "ns", user_id="u").set("k", "second")
    assert a.outbox_depth() == 3
    assert a.sync().status == "ok"
    assert a.outbox_depth() == 0
    got = [KeyValueStore(a.remote, "ns", user_id="u").get(x) for x in ("k", "j")]
    assert got == ["second", "only"]
    with a.remote.transaction(readonly=True) as tx:
        assert tx.fetchall("SELECT count(*) FROM {kv} WHERE user_id = 'u'") == [(2,)]
    assert_same(a)


def test_filters_leave_the_rest_queued(cache: Callable[..., HybridEngine]) -> None:
    a = cache("a")
    ChatMessageHistory(a, "s1", user_id="u").add_messages([HumanMessage("one")])
    ChatMessageHistory(a, "s2", user_id="u").add_messages([HumanMessage("two")])
    report = a.sync(session_id="s1")
    assert report.events_synced == 1
    assert messages(a.remote, "s1") == ["one"] and messages(a.remote, "s2") == []
    with a.transaction() as tx:  # an unimportant event stays local
        tx.execute("UPDATE {events} SET importance = 0.1 WHERE session_id = 's2'")
    report = a.sync(min_importance=0.3)
    assert report.events_synced == 0
    assert messages(a.remote, "s2") == []
    assert a.outbox_depth() > 0
    report = a.sync()
    assert messages(a.remote, "s2") == ["two"]
    assert a.outbox_depth() == 0


def test_local_policy_keeps_checkpoints_local(cache: Callable[..., HybridEngine]) -> None:
    a = cache("a")
    assert "working_memory" not in {t.name for t in a.tables}
    assert "checkpoints" in {t.name for t in cache("b", policy={"checkpoints": "up"}).tables}
    with pytest.raises(ValueError, match="unknown table"):
        cache("c", policy={"nope": "up"})


# -- the command line -----------------------------------------------------------------------


def test_sync_cli(
    cache: Callable[..., HybridEngine], tmp_path: Path, proxy: Proxy, schema: str
) -> None:
    from click.testing import CliRunner

    from langchain_agentmem.cli import main

    a = cache("a")
    ChatMessageHistory(a, "s", user_id="u").add_messages([HumanMessage("x"), HumanMessage("y")])
    ChatMessageHistory(a, "t", user_id="u").add_messages([HumanMessage("z")])
    a.close()
    base = [
        "sync",
        "--url",
        f"sqlite:///{tmp_path / 'a.db'}",
        "--remote",
        proxy.url,
        "--schema",
        schema,
    ]
    out = CliRunner().invoke(main, [*base, "--session-id", "s"])
    assert out.exit_code == 0, out.output
    assert "run 1: ok, 2 events and 3 rows synced in 1 batch, 2 queued" in out.output
    out = CliRunner().invoke(main, [*base, "--daemon", "--interval", "0", "--runs", "2"])
    assert out.exit_code == 0, out.output
    assert "run 2: ok, 1 event" in out.output and "run 3: ok, 0 events" in out.output
    proxy.cut()
    out = CliRunner().invoke(main, [*base])
    assert out.exit_code == 1 and "cannot connect" in out.output
    proxy.restore()
    out = CliRunner().invoke(main, [*base, "status"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("outbox: 0 rows queued, lag 0.0 s")
    assert "run 4" in out.output and "failed" in out.output
    out = CliRunner().invoke(main, [*base, "status", "--json"])
    assert json.loads(out.output)["runs"][0]["status"] == "failed"
    out = CliRunner().invoke(main, [*base, "--since", "yesterday"])
    assert out.exit_code == 2 and "expected a duration" in out.output


# -- the example ------------------------------------------------------------------------------


def test_example_agent_while_postgres_stops_and_starts(
    tmp_path: Path, proxy: Proxy, schema: str, cache: Callable[..., HybridEngine]
) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "hybrid_agent.py"
    spec = importlib.util.spec_from_file_location("hybrid_agent", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    probe = cache("probe")
    watcher = connect(f"sqlite:///{tmp_path / 'agent.db'}")  # reads the agent's outbox

    def delivered() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with watcher.transaction(readonly=True) as tx:
                row = tx.fetchone("SELECT count(*) FROM {sync_outbox}")
            if row is not None and row[0] == 0:
                return
            time.sleep(0.05)
        raise AssertionError("the worker delivered nothing in 30 s with Postgres back")

    def between_turns(i: int) -> None:
        if i == 2:
            proxy.restore()  # Postgres comes back: the worker delivers turns 0-2
            delivered()
        elif i == 4:
            proxy.cut()  # and goes away again mid-run
        elif i == 7:
            proxy.restore()

    proxy.cut()  # Postgres is away when the agent starts
    asked = example.run_agent(
        proxy.url,
        str(tmp_path / "agent.db"),
        schema=schema,
        turns=10,
        between_turns=between_turns,
    )
    assert asked == [f"question {i}" for i in range(10)]
    expected = [t for i in range(10) for t in (f"question {i}", f"(fake model) answer {i}")]
    assert messages(probe.remote, "chat-1", "alice") == expected  # each once, in order
    assert seqs(probe.remote, "chat-1", "alice") == list(range(1, 21))
    facts = KeyValueStore(probe.remote, "facts", user_id="alice")
    assert sorted(facts.keys()) == sorted(f"turn {i}" for i in range(10))
    assert facts.get("turn 9") == {"asked": "question 9", "answered": "(fake model) answer 9"}
    agent_cache = cache("agent")  # the agent's file, reopened
    assert agent_cache.outbox_depth() == 0
    assert_same(agent_cache, "alice")
    runs = log(agent_cache)
    assert "failed" in [r[1] for r in runs]
    assert sum(r[2] for r in runs) == 20  # every event counted once, by the run that sent it
    watcher.close()


# -- appends queue no outbox row (per-session marks) -----------------------------------------


def outbox(engine: HybridEngine) -> list[tuple[str, str, list[Any]]]:
    with engine.transaction(readonly=True) as tx:
        rows = tx.fetchall("SELECT table_name, op, pk FROM {sync_outbox} ORDER BY seq")
    return [(r[0], r[1], json.loads(r[2])) for r in rows]


def test_an_append_queues_no_outbox_row_and_the_sync_delivers_it(
    cache: Callable[..., HybridEngine],
) -> None:
    a = cache("a")
    history = ChatMessageHistory(a, "s", user_id="u")
    history.add_messages([HumanMessage("m0"), HumanMessage("m1")])
    assert outbox(a) == [("sessions", "i", ["u", "s"])]  # the new session only
    assert a.outbox_depth() == 3  # the appends count as queued
    report = a.sync()
    assert (report.events_synced, report.rows_synced) == (2, 3)
    history.add_messages([HumanMessage("m2")])
    assert outbox(a) == [] and a.outbox_depth() == 1
    with a.transaction() as tx:
        # A delivered row's update queues as before; an undelivered one's queues nothing
        # (its delivery carries the row as it is then).
        tx.execute("UPDATE {events} SET importance = 0.5 WHERE user_id = 'u' AND seq IN (1, 3)")
    assert outbox(a) == [("events", "u", ["u", "s", 1])]
    report = a.sync()
    assert (report.events_synced, report.rows_synced) == (1, 2)
    assert a.outbox_depth() == 0
    assert messages(a.remote, "s") == ["m0", "m1", "m2"]
    with a.remote.transaction(readonly=True) as tx:
        got = tx.fetchall("SELECT seq, importance FROM {events} WHERE user_id = 'u' ORDER BY seq")
    assert got == [(1, 0.5), (2, None), (3, 0.5)]
    # A full pull keeps the appends not queued yet (it drops local rows Postgres lacks
    # unless they are queued), and pulled rows are not delivered again.
    history.add_messages([HumanMessage("m3")])
    a.load_user("u", full=True)
    assert messages(a, "s") == ["m0", "m1", "m2", "m3"]
    assert a.sync().events_synced == 1
    assert a.sync().rows_synced == 0
    assert messages(a.remote, "s") == ["m0", "m1", "m2", "m3"]
    assert_same(a)


@pytest.mark.parametrize("delivered_first", [True, False])
def test_append_clear_then_sync(cache: Callable[..., HybridEngine], delivered_first: bool) -> None:
    a = cache("a")
    history = ChatMessageHistory(a, "s", user_id="u")
    history.add_messages([HumanMessage("old0"), HumanMessage("old1")])
    if delivered_first:
        a.sync()
    history.add_messages([HumanMessage("old2")])  # never delivered
    history.clear()
    history.add_messages([HumanMessage("new0"), HumanMessage("new1")])
    assert a.sync().status == "ok"
    assert a.outbox_depth() == 0
    assert messages(a.remote, "s") == ["new0", "new1"]
    history.add_messages([HumanMessage("new2")])
    a.sync()
    assert messages(a.remote, "s") == messages(a, "s") == ["new0", "new1", "new2"]
    assert_same(a)


def test_append_while_a_sync_runs(
    cache: Callable[..., HybridEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An append made while a batch is on its way is queued before the batch's rows are
    renumbered (Postgres handed out other seqs: another cache wrote first), and goes up in
    the same run."""
    b = cache("b")
    ChatMessageHistory(b, "s", user_id="u").add_messages([HumanMessage("b0"), HumanMessage("b1")])
    b.sync()
    a = cache("a", batch_size=2)
    history = ChatMessageHistory(a, "s", user_id="u")
    history.add_messages([HumanMessage(f"a{i}") for i in range(3)])
    original = HybridEngine._deliver
    calls = {"n": 0}

    def deliver(self: HybridEngine, source: str, batch: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:  # between the batch's read and its local finish
            history.add_messages([HumanMessage("during")])
        return (yield from original(self, source, batch))

    monkeypatch.setattr(HybridEngine, "_deliver", deliver)
    report = a.sync()
    assert (report.status, report.events_synced) == ("ok", 4)
    assert a.outbox_depth() == 0
    assert messages(a.remote, "s") == ["b0", "b1", "a0", "a1", "a2", "during"]
    assert seqs(a.remote, "s") == list(range(1, 7))
    assert messages(a, "s") == ["a0", "a1", "a2", "during"]
    assert seqs(a, "s") == [3, 4, 5, 6]
    assert sum(r[2] for r in log(a)) == 4
    a.load_user("u")
    assert messages(a, "s") == messages(a.remote, "s")
    assert_same(a)


def test_a_cache_migrated_before_the_marks_delivers_its_queued_appends_once(
    tmp_path: Path, cache: Callable[..., HybridEngine]
) -> None:
    a = cache("a")
    # The cache as the release before the marks left it: no sync_marks, triggers that
    # queue every append.
    with a.transaction() as tx:
        tx.execute("DROP TABLE {sync_marks}")
        tx.execute("DELETE FROM {schema_version} WHERE version = 20")
        tx.execute("DELETE FROM {sync_state} WHERE key = 'marks'")
        names = [r[0] for r in tx.fetchall("SELECT name FROM pragma_table_info('events')")]
        for raw in a.dialect.sync_triggers(
            "events", ["user_id", "session_id", "seq"], names, install=True
        ):
            tx.execute(raw.sql)
    history = ChatMessageHistory(a, "s", user_id="u")
    history.add_messages([HumanMessage("q0"), HumanMessage("q1")])
    assert [op for _, op, _ in outbox(a)] == ["i", "i", "i"]  # the session, two events
    a.close()
    a = cache("a")  # migrated again: 0020, and the marks set over the queued rows
    with a.transaction(readonly=True) as tx:
        assert tx.fetchall("SELECT user_id, session_id, seq FROM {sync_marks}") == [("u", "s", 2)]
    history = ChatMessageHistory(a, "s", user_id="u")
    history.add_messages([HumanMessage("n0")])
    assert len(outbox(a)) == 3 and a.outbox_depth() == 4
    a.migrate()  # the marks are set once: this append stays pending
    report = a.sync()
    assert (report.status, report.events_synced, report.rows_synced) == ("ok", 3, 4)
    assert messages(a.remote, "s") == ["q0", "q1", "n0"]
    assert seqs(a.remote, "s") == [1, 2, 3]
    assert a.sync().rows_synced == 0
    assert_same(a)


def test_a_parent_whose_version_lost_keeps_its_counter_above_the_queued_rows(
    cache: Callable[..., HybridEngine],
) -> None:
    """Another cache wrote the session later and delivered first: the cache takes
    Postgres's session row, but its counter stays above the rows it still queues."""
    a, b = cache("a", batch_size=2), cache("b")
    history = ChatMessageHistory(a, "s", user_id="u")
    history.add_messages([HumanMessage(f"a{i}") for i in range(4)])
    time.sleep(0.005)  # b's write is the later one
    ChatMessageHistory(b, "s", user_id="u").add_messages([HumanMessage("b0")])
    b.sync()
    assert a.sync(max_batches=1).status == "ok"  # the session and a0: its version loses
    history.add_messages([HumanMessage("a4")])  # numbered above every row a holds
    a.sync()
    assert messages(a.remote, "s") == ["b0", "a0", "a1", "a2", "a3", "a4"]
    assert seqs(a.remote, "s") == list(range(1, 7))
    a.load_user("u")
    assert messages(a, "s") == messages(a.remote, "s")
    assert_same(a)
