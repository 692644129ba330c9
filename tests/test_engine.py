"""connect(), the engine's pools and transactions, and migrations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from langchain_agentmem import ChatMessageHistory, Engine, connect
from langchain_agentmem._core.migrations import load_migrations

from conftest import fresh_schema

ROOT = Path(__file__).resolve().parents[1]


def test_sqlite_memory_url_is_transient() -> None:
    engine = connect("sqlite://")
    engine.migrate()
    ChatMessageHistory(engine, "s").add_messages([HumanMessage("hi")])
    assert len(ChatMessageHistory(engine, "s").messages) == 1
    engine.close()  # the database is gone with its connection: later use raises (issue 11)
    with pytest.raises(RuntimeError, match="in-memory SQLite engine is closed"):
        engine.migrate()
    fresh = connect("sqlite://")  # a new engine is a new, empty database
    fresh.migrate()
    assert ChatMessageHistory(fresh, "s").messages == []


def test_sqlite_file_persists_across_engines(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'mem.db'}"
    with connect(url) as engine:
        engine.migrate()
        ChatMessageHistory(engine, "s").add_messages([HumanMessage("kept")])
    with connect(url) as engine:
        assert [m.content for m in ChatMessageHistory(engine, "s").messages] == ["kept"]
        with engine.transaction(readonly=True) as tx:
            assert tx.fetchone("PRAGMA journal_mode") == ("wal",)
            assert tx.fetchone("PRAGMA busy_timeout")[0] >= 1000


def test_url_from_environment_then_default_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENTMEM_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert connect().url.endswith("env.db")
    monkeypatch.delenv("AGENTMEM_URL")
    monkeypatch.setenv("AGENTMEM_HOME", str(tmp_path / "home"))
    engine = connect()
    notice = capsys.readouterr().err
    assert notice.count("\n") == 1 and "using SQLite at" in notice
    engine.migrate()
    assert (tmp_path / "home" / "memory.sqlite3").exists()
    engine.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://localhost/db", "unsupported database URL"),
        ("just-a-path.db", "unsupported database URL"),
        ("sqlite:relative.db", "invalid SQLite URL"),
    ],
)
def test_bad_urls_raise_clear_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        connect(url)


def test_bad_options_and_names() -> None:
    with pytest.raises(TypeError, match="unknown connect\\(\\) option"):
        connect("sqlite://", pool_size=3)
    with pytest.raises(ValueError, match="invalid schema name"):
        connect("sqlite://", schema="Robert'); DROP TABLE students;--")


def test_password_is_redacted() -> None:
    engine = connect("postgresql://me:s3cret@localhost:1/db")
    assert "s3cret" not in repr(engine)


def test_unreachable_postgres_fails_fast_with_the_reason() -> None:
    engine = connect("postgresql://nobody@127.0.0.1:1/none", timeout=5)
    with pytest.raises(ConnectionError, match="cannot connect to Postgres at .*Connection refused"):
        engine.migrate()


async def test_unreachable_postgres_fails_fast_async() -> None:
    engine = connect("postgresql://nobody@127.0.0.1:1/none", timeout=5)
    with pytest.raises(ConnectionError, match="cannot connect"):
        await engine.amigrate()


def test_postgres_pool_settings_and_other_schema(postgres_url: str) -> None:
    schema = fresh_schema()
    engine = connect(postgres_url, schema=schema, min_size=1, max_size=3, prepare_threshold=None)
    with engine:
        assert engine.migrate() == [m.version for m in load_migrations("postgres")]
        history = ChatMessageHistory(engine, "s")
        for i in range(10):  # no prepared statements: PgBouncer transaction mode works
            history.add_messages([HumanMessage(str(i))])
        assert len(history.messages) == 10
        pool = engine.raw_backend.pool()
        assert pool.max_size == 3
        with engine.transaction(readonly=True) as tx:
            assert tx.conn.prepare_threshold is None
            rows = tx.fetchall(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", (schema,)
            )
        assert {"sessions", "events", "documents", "schema_version"} <= {r[0] for r in rows}
    assert engine.raw_backend._pool is None  # closed by `with`


def test_prepare_every_statement_still_migrates(postgres_url: str) -> None:
    # prepare_threshold=0 prepares every statement; a migration file holds many.
    with connect(postgres_url, schema=fresh_schema(), prepare_threshold=0) as engine:
        assert engine.migrate()
        history = ChatMessageHistory(engine, "s")
        history.add_messages([HumanMessage("prepared")])
        assert [m.content for m in history.messages] == ["prepared"]


async def test_prepare_every_statement_still_migrates_async(postgres_url: str) -> None:
    async with connect(postgres_url, schema=fresh_schema(), prepare_threshold=0) as engine:
        assert await engine.amigrate()
        history = ChatMessageHistory(engine, "s")
        await history.aadd_messages([HumanMessage("prepared")])
        assert [m.content for m in await history.aget_messages()] == ["prepared"]


async def test_many_first_async_uses_at_once_open_one_pool(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    import psycopg_pool

    opened: list[object] = []

    class CountingPool(psycopg_pool.AsyncConnectionPool):
        async def open(self, *args: object, **kwargs: object) -> None:
            opened.append(self)
            await super().open(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(psycopg_pool, "AsyncConnectionPool", CountingPool)
    async with connect(postgres_url, schema=fresh_schema()) as engine:
        await engine.amigrate()
        opened.clear()
        histories = [ChatMessageHistory(engine, f"s{i}") for i in range(20)]
        await asyncio.gather(*(h.aadd_messages([HumanMessage("first")]) for h in histories))
        assert len(opened) == 1
        for history in histories:
            assert [m.content for m in await history.aget_messages()] == ["first"]


async def test_async_context_manager_closes_pools(postgres_url: str) -> None:
    async with connect(postgres_url, schema=fresh_schema()) as engine:
        await engine.amigrate()
        await ChatMessageHistory(engine, "s").aadd_messages([HumanMessage("x")])
        assert engine.raw_backend._apools
    assert not engine.raw_backend._apools


def test_row_level_security_setting_reaches_the_transaction(postgres_url: str) -> None:
    engine = connect(postgres_url, schema=fresh_schema(), row_level_security=True)
    with engine:
        engine.migrate()
        with engine.transaction("tenant-7", readonly=True) as tx:
            assert tx.fetchone("SELECT current_setting('agent_mem.user_id')") == ("tenant-7",)


async def test_row_level_security_setting_async(postgres_url: str) -> None:
    engine = connect(postgres_url, schema=fresh_schema(), row_level_security=True)
    async with engine:
        await engine.amigrate()
        async with engine.atransaction("tenant-8") as tx:
            assert await tx.fetchone("SELECT current_setting('agent_mem.user_id')") == ("tenant-8",)


def test_a_failed_transaction_rolls_back(engine: Engine) -> None:
    history = ChatMessageHistory(engine, "s")
    history.add_messages([HumanMessage("kept")])
    with pytest.raises(RuntimeError, match="boom"):
        with engine.transaction("default") as tx:
            tx.execute("DELETE FROM {events}")
            raise RuntimeError("boom")
    assert [m.content for m in history.messages] == ["kept"]


async def test_a_failed_async_transaction_rolls_back(aengine: Engine) -> None:
    history = ChatMessageHistory(aengine, "s")
    await history.aadd_messages([HumanMessage("kept")])
    with pytest.raises(RuntimeError, match="boom"):
        async with aengine.atransaction("default") as tx:
            await tx.execute("DELETE FROM {events}")
            raise RuntimeError("boom")
    assert [m.content for m in await history.aget_messages()] == ["kept"]


def test_migrate_is_idempotent(engine: Engine) -> None:
    expected = max(m.version for m in load_migrations(engine.dialect.name))
    assert engine.migrate() == []
    assert engine.schema_version() == expected


async def test_amigrate_is_idempotent(aengine: Engine) -> None:
    assert await aengine.amigrate() == []


_MIGRATE_SCRIPT = """
import json, os, sys, time, traceback
from pathlib import Path
from langchain_agentmem import connect
url, schema, go, out = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
# The imports are paid once; each migrator is a process of its own (forked before any
# connection is opened), started together on the same go signal.
children = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            while not go.exists():
                time.sleep(0.005)
            engine = connect(url, schema=schema)
            (out / f"{i}.json").write_text(json.dumps(engine.migrate()))
            engine.close()
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    children.append(pid)
(out / "ready").touch()
sys.exit(max(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0 for pid in children))
"""


def test_four_processes_migrate_one_empty_database(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = (
        request.getfixturevalue("postgres_url")
        if backend == "postgres"
        else f"sqlite:///{tmp_path / 'm.db'}"
    )
    schema = fresh_schema()
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", _MIGRATE_SCRIPT, url, schema, str(go), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not (out / "ready").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    results = [json.loads((out / f"{i}.json").read_text()) for i in range(4)]
    versions = [m.version for m in load_migrations(backend)]
    applied = sorted(v for r in results for v in r)
    assert applied == versions  # every file applied exactly once, by some process
    engine = connect(url, schema=schema)
    with engine.transaction(readonly=True) as tx:
        rows = tx.fetchall("SELECT version FROM {schema_version} ORDER BY version")
    engine.close()
    assert [r[0] for r in rows] == versions


def test_the_wheel_ships_the_sql_files(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("langchain_agentmem-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for dialect in ("postgres", "sqlite"):
        for migration in load_migrations(dialect):
            assert (
                f"langchain_agentmem/sql/{dialect}/{migration.version:04d}_{migration.name}.sql"
                in names
            )
    assert "langchain_agentmem/py.typed" in names
    # Packaging: the license file, the extras, and upper bounds where private internals are used.
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    meta = zipfile.ZipFile(wheel).read(meta_name).decode()
    assert "License-Expression: MIT" in meta and "License-File: LICENSE" in meta
    for extra in ("postgres", "all", "agents", "openai"):
        assert f"Provides-Extra: {extra}" in meta
    assert "Requires-Dist: langgraph-checkpoint<5,>=4.0" in meta
    assert "Requires-Dist: langgraph<2,>=1.0" in meta
