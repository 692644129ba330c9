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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..dialects import Body, Dialect, One, Stmt
from .plan import Atomic, Plan
from .tenancy import row_security_body

__all__ = ["Migration", "load_migrations", "migrate_plan", "version_plan"]

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


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


def _apply(dialect: Dialect, migration: Migration) -> Body[bool]:
    for statement in dialect.migration_prologue():
        yield statement
    done = yield One("SELECT 1 FROM {schema_version} WHERE version = ?", [migration.version])
    if done is not None:
        return False
    for statement in dialect.migration_script(migration.sql):
        yield statement
    yield Stmt(
        "INSERT INTO {schema_version} (version, name) VALUES (?, ?)",
        [migration.version, migration.name],
    )
    return True


def migrate_plan(dialect: Dialect) -> Plan[list[int]]:
    """Apply what is missing, each file and its version row in one transaction; return
    the versions applied now (run by :meth:`~langchain_agentmem.Engine.migrate`)."""
    applied: list[int] = []
    for migration in load_migrations(dialect.name):
        if (yield Atomic(_apply(dialect, migration), user_id=None)):
            applied.append(migration.version)
    if dialect.supports_row_security:
        # Last: every tenant table of the catalog, however recent, gets its policy.
        yield Atomic(row_security_body(dialect), user_id=None)
    return applied


def _version(dialect: Dialect) -> Body[int]:
    exists = yield dialect.table_exists("schema_version")
    if not exists or not exists[0]:
        return 0
    row = yield One("SELECT max(version) FROM {schema_version}")
    return int(row[0] or 0) if row else 0


def version_plan(dialect: Dialect) -> Plan[int]:
    """The highest applied version, 0 when nothing is applied."""
    return (yield Atomic(_version(dialect), readonly=True, user_id=None))
