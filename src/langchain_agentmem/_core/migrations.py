"""Schema migrations: numbered SQL files per dialect, applied in order.

Files live in ``sql/<dialect>/NNNN_name.sql`` (shipped inside the wheel as
``langchain_agentmem/sql``). Each file is applied together with its ``schema_version`` row
in one transaction. On Postgres every file's transaction first takes one advisory lock, so
concurrent ``migrate()`` calls from many processes serialize and apply each file once; on
SQLite ``BEGIN IMMEDIATE`` does the same. A released file is never edited: add a new one.

Postgres files run with ``search_path`` set to the target schema, then ``public``: they
name tables unqualified, and create extensions ``WITH SCHEMA public``.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg import sql as pgsql

if TYPE_CHECKING:
    from ..engine import Engine

__all__ = [
    "Migration",
    "load_migrations",
    "migrate",
    "amigrate",
    "current_version",
    "split_sqlite_script",
]

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: One advisory lock for every schema: CREATE EXTENSION is database-wide.
_LOCK_KEY = "langchain_agentmem.migrate"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def _sql_root() -> Path:
    packaged = resources.files("langchain_agentmem").joinpath("sql")
    if packaged.is_dir():
        return Path(str(packaged))
    # A source checkout (editable install): the repository's top-level sql/.
    return Path(__file__).resolve().parents[3] / "sql"


def load_migrations(dialect: str) -> list[Migration]:
    """The migrations of one dialect (``postgres`` or ``sqlite``), in order.

    Example:
        >>> [m.version for m in load_migrations("sqlite")][:1]
        [1]
    """
    folder = _sql_root() / dialect
    if not folder.is_dir():
        raise FileNotFoundError(f"no migrations for {dialect!r} at {folder}")
    found: list[Migration] = []
    for path in sorted(folder.iterdir()):
        match = _FILE.match(path.name)
        if match is None:
            continue
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text("utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations of {dialect!r} share a number: {versions}")
    return found


def split_sqlite_script(script: str) -> list[str]:
    """Split a SQLite script into complete statements (triggers stay whole).

    Example:
        >>> split_sqlite_script("CREATE TABLE a (x); -- note\\nCREATE TABLE b (y);")
        ['CREATE TABLE a (x);', 'CREATE TABLE b (y);']
    """
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            for piece in _split_line_statements(current):
                statements.append(piece)
            current = ""
    if not _only_comments(current):
        raise ValueError(
            f"incomplete SQL statement at the end of the script: {current.strip()[:80]!r}"
        )
    return [s.strip() for s in statements if not _only_comments(s)]


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.strip().startswith("--") for ln in text.splitlines())


def _split_line_statements(text: str) -> list[str]:
    # Several statements on one line: split where each prefix is complete.
    out, start = [], 0
    for i, ch in enumerate(text):
        if ch == ";" and sqlite3.complete_statement(text[start : i + 1]):
            out.append(text[start : i + 1])
            start = i + 1
    if text[start:].strip():
        out.append(text[start:])
    return out


_PG_BOOTSTRAP = [
    "SELECT pg_advisory_xact_lock(hashtextextended({key}, 0))",
    "CREATE SCHEMA IF NOT EXISTS {schema}",
    "CREATE TABLE IF NOT EXISTS {schema}.schema_version ("
    " version integer PRIMARY KEY, name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())",
]
_SQLITE_BOOTSTRAP = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')))"
)


def _pg(query: str, schema: str) -> pgsql.Composed:
    return pgsql.SQL(query).format(schema=pgsql.Identifier(schema), key=pgsql.Literal(_LOCK_KEY))


def _pg_steps(schema: str, migration: Migration) -> list[tuple[Any, tuple[Any, ...] | None]]:
    return [
        (_pg("SET LOCAL search_path TO {schema}, public", schema), None),
        (migration.sql, None),
        (
            _pg("INSERT INTO {schema}.schema_version (version, name) VALUES (%s, %s)", schema),
            (migration.version, migration.name),
        ),
    ]


def migrate(engine: Engine) -> list[int]:
    """Apply what is missing; return the versions applied now. See module docs."""
    name = engine.dialect.name
    applied: list[int] = []
    for migration in load_migrations(name):
        with engine.transaction() as tx:
            conn = tx.conn
            if name == "postgres":
                for step in _PG_BOOTSTRAP:
                    conn.execute(_pg(step, engine.schema))
                row = conn.execute(
                    _pg("SELECT 1 FROM {schema}.schema_version WHERE version = %s", engine.schema),
                    (migration.version,),
                ).fetchone()
                if row is not None:
                    continue
                for query, params in _pg_steps(engine.schema, migration):
                    conn.execute(query, params, prepare=False)
            else:
                conn.execute(_SQLITE_BOOTSTRAP)
                if conn.execute(
                    "SELECT 1 FROM schema_version WHERE version = ?", (migration.version,)
                ).fetchone():
                    continue
                for statement in split_sqlite_script(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name) VALUES (?, ?)",
                    (migration.version, migration.name),
                )
        applied.append(migration.version)
    return applied


async def amigrate(engine: Engine) -> list[int]:
    """Async form of :func:`migrate`."""
    name = engine.dialect.name
    if name != "postgres":
        import asyncio

        return await asyncio.to_thread(migrate, engine)
    applied: list[int] = []
    for migration in load_migrations(name):
        async with engine.atransaction() as tx:
            conn = tx.conn
            for step in _PG_BOOTSTRAP:
                await conn.execute(_pg(step, engine.schema))
            cur = await conn.execute(
                _pg("SELECT 1 FROM {schema}.schema_version WHERE version = %s", engine.schema),
                (migration.version,),
            )
            if await cur.fetchone() is not None:
                continue
            for query, params in _pg_steps(engine.schema, migration):
                await conn.execute(query, params, prepare=False)
        applied.append(migration.version)
    return applied


def current_version(engine: Engine) -> int:
    """The highest applied version, 0 when nothing is applied."""
    if engine.dialect.name == "postgres":
        query = "SELECT max(version) FROM {schema_version}"
        exists = "SELECT to_regclass(?) IS NOT NULL"
        with engine.transaction(readonly=True) as tx:
            qualified = engine.dialect.table("schema_version")
            row = tx.fetchone(exists, (qualified,))
            if not row or not row[0]:
                return 0
            row = tx.fetchone(query)
    else:
        with engine.transaction(readonly=True) as tx:
            row = tx.fetchone(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            )
            if not row or not row[0]:
                return 0
            row = tx.fetchone("SELECT max(version) FROM {schema_version}")
    return int(row[0] or 0) if row else 0
