"""Row-level security through the application role (Postgres).

Every tenant table of the catalog (so a table a later migration adds is covered by its
catalog entry) is checked with raw SQL as tenant A: none of tenant B's rows is visible,
and writing a row of B is refused. Then the same through a real PgBouncer in transaction
mode: tenants interleaved on few server connections read only their own rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from _workload import exercise, register_collection
from click.testing import CliRunner
from pgbouncer_server import pgbouncer
from psycopg import sql as pgsql

from langchain_agentmem import CheckpointSaver, Engine, connect
from langchain_agentmem._core.catalog import TABLES
from langchain_agentmem._core.tenancy import distributed_tables
from langchain_agentmem.cli import main, table_counts
from langchain_agentmem.tenancy import TenantRequiredError, citus_ddl, grant_app_role

PASSWORD = "app-secret-Ω"


def as_role(url: str, role: str, password: str) -> str:
    """``url`` with another user and password."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    from urllib.parse import quote

    return urlunsplit(parts._replace(netloc=f"{role}:{quote(password, safe='')}@{host}"))


@pytest.fixture
def rls_db(postgres_url: str) -> Iterator[tuple[Engine, str, str]]:
    """A migrated schema, its owner's engine (a superuser here) and a fresh application
    role's URL; the role is dropped afterwards."""
    owner = connect(postgres_url, schema="t_" + uuid.uuid4().hex[:12])
    owner.migrate()
    role = "agentmem_app_" + uuid.uuid4().hex[:8]
    grant_app_role(owner, role, password=PASSWORD)
    try:
        yield owner, role, as_role(postgres_url, role, PASSWORD)
    finally:
        owner.close()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(pgsql.SQL("DROP OWNED BY {}").format(pgsql.Identifier(role)))
            conn.execute(pgsql.SQL("DROP ROLE {}").format(pgsql.Identifier(role)))


def _columns(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = %s AND is_generated = 'NEVER' AND is_identity = 'NO' ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    return [r[0] for r in rows]


def test_every_tenant_table_has_forced_row_security_and_the_policy(
    rls_db: tuple[Engine, str, str],
) -> None:
    owner, _, _ = rls_db
    with owner.transaction(readonly=True) as tx:
        rows = tx.fetchall(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, p.qual, p.with_check "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_policies p "
            "ON p.schemaname = n.nspname AND p.tablename = c.relname WHERE n.nspname = ? AND c.relkind = 'r'",
            [owner.schema],
        )
    state = {r[0]: r[1:] for r in rows}
    tenant = [t.name for t in distributed_tables("postgres")]
    assert tenant and set(tenant) <= set(state)
    for name in tenant:
        enabled, forced, qual, check = state[name]
        assert enabled and forced, name
        assert (
            qual
            == check
            == "(user_id = ( SELECT current_setting('agent_mem.user_id'::text, true) AS current_setting))"
        ), name
    for table in TABLES.values():
        if table.reference and "postgres" in table.dialects:
            assert not state[table.name][0], f"{table.name} is shared: no policy"
    # Idempotent: a second migrate() changes nothing and applies nothing.
    assert owner.migrate() == []


def test_migrate_brings_a_policy_of_the_first_form_to_the_current_one(
    rls_db: tuple[Engine, str, str], postgres_url: str
) -> None:
    """A schema secured by an older version (the tenant read once a row, no comment) gets
    the current policy from ``migrate()``."""
    owner, _, _ = rls_db
    target = pgsql.Identifier(owner.schema, "events")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            pgsql.SQL(
                "ALTER POLICY agentmem_tenant ON {} USING "
                "(user_id = current_setting('agent_mem.user_id', true)) "
                "WITH CHECK (user_id = current_setting('agent_mem.user_id', true))"
            ).format(target)
        )
        conn.execute(pgsql.SQL("COMMENT ON POLICY agentmem_tenant ON {} IS NULL").format(target))
    owner.migrate()
    with owner.transaction(readonly=True) as tx:
        qual, comment = tx.fetchone(
            "SELECT p.qual, obj_description(q.oid, 'pg_policy') FROM pg_policies p JOIN "
            "pg_policy q ON q.polname = p.policyname AND q.polrelid = CAST(? AS regclass) "
            "WHERE p.schemaname = ? AND p.tablename = 'events'",
            [owner.dialect.table("events"), owner.schema],
        )
    assert "SELECT current_setting" in qual
    assert comment == owner.dialect.TENANT_POLICY_FORM


def test_tenant_a_sees_and_writes_nothing_of_tenant_b(rls_db: tuple[Engine, str, str]) -> None:
    owner, role, app_url = rls_db
    register_collection(owner)
    app = connect(app_url, schema=owner.schema, row_level_security=True)
    try:
        exercise(app, "alice")
        exercise(app, "bob")
    finally:
        app.close()
    url = app_url
    schema = owner.schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT 1")
        assert conn.execute(
            "SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False,)
    with psycopg.connect(owner.url, autocommit=True) as admin:
        for table in distributed_tables("postgres"):
            if table.bookkeeping:  # hybrid sync's own state: written by a sync, not a memory
                continue
            t = pgsql.Identifier(schema, table.name)
            counts = dict(
                admin.execute(
                    pgsql.SQL("SELECT user_id, count(*) FROM {} GROUP BY user_id").format(t)
                ).fetchall()
            )
            assert counts.get("alice", 0) > 0 and counts.get("bob", 0) > 0, (
                f"the workload (tests/_workload.py) leaves {table.name} without rows of both "
                f"tenants: {counts}"
            )
            cols = _columns(admin, schema, table.name)
            with psycopg.connect(url) as conn:  # one transaction per table, rolled back
                conn.execute("SELECT set_config('agent_mem.user_id', 'alice', true)")
                rows = conn.execute(pgsql.SQL("SELECT user_id FROM {}").format(t)).fetchall()
                assert {r[0] for r in rows} == {"alice"}, table.name
                assert len(rows) == counts["alice"], table.name
                none = conn.execute(
                    pgsql.SQL("SELECT count(*) FROM {} WHERE user_id = 'bob'").format(t)
                ).fetchone()
                assert none == (0,), table.name
                # bob's rows can be neither changed nor deleted (they are not there for alice)
                assert (
                    conn.execute(
                        pgsql.SQL("DELETE FROM {} WHERE user_id = 'bob'").format(t)
                    ).rowcount
                    == 0
                )
                assert (
                    conn.execute(
                        pgsql.SQL("UPDATE {} SET user_id = user_id WHERE user_id = 'bob'").format(t)
                    ).rowcount
                    == 0
                )
                # ... and a row of bob cannot be written: an insert of one, nor moving alice's
                conn.execute("SAVEPOINT s")
                others = [pgsql.Identifier(c) for c in cols if c != "user_id"]
                with pytest.raises(
                    psycopg.errors.InsufficientPrivilege, match="row-level security"
                ):
                    conn.execute(
                        pgsql.SQL(
                            "INSERT INTO {} (user_id, {}) SELECT 'bob', {} FROM {} LIMIT 1"
                        ).format(t, pgsql.SQL(", ").join(others), pgsql.SQL(", ").join(others), t)
                    )
                conn.execute("ROLLBACK TO SAVEPOINT s")
                with pytest.raises(
                    psycopg.errors.InsufficientPrivilege, match="row-level security"
                ):
                    conn.execute(pgsql.SQL("UPDATE {} SET user_id = 'bob'").format(t))
                conn.execute("ROLLBACK TO SAVEPOINT s")
                conn.rollback()
            with psycopg.connect(url, autocommit=True) as conn:  # no tenant: nothing (fails closed)
                assert conn.execute(pgsql.SQL("SELECT count(*) FROM {}").format(t)).fetchone() == (
                    0,
                ), table.name


def test_the_app_role_owns_nothing_and_has_only_the_catalog_privileges(
    rls_db: tuple[Engine, str, str],
) -> None:
    owner, role, app_url = rls_db
    with psycopg.connect(owner.url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT table_name, string_agg(privilege_type, ', ' ORDER BY privilege_type) FROM "
            "information_schema.role_table_grants WHERE grantee = %s AND table_schema = %s GROUP BY table_name",
            [role, owner.schema],
        ).fetchall()
        flags = admin.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = %s",
            [role],
        ).fetchone()
    assert flags == (False, False, False, False, True)
    granted = dict(rows)
    for table in TABLES.values():
        if "postgres" not in table.dialects or table.derived_from:
            continue
        want = ", ".join(sorted(p.strip() for p in table.privileges.split(",")))
        assert granted.pop(table.name) == want, table.name
    assert granted == {}
    # The role cannot turn the policies off, nor create anything in the schema.
    with psycopg.connect(app_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                pgsql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(
                    pgsql.Identifier(owner.schema, "events")
                )
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                pgsql.SQL("CREATE TABLE {} (x int)").format(pgsql.Identifier(owner.schema, "mine"))
            )
    # Granting again (e.g. after a migration added tables) is idempotent; a password
    # never shows in an error.
    grant_app_role(owner, role, password=PASSWORD)
    with pytest.raises(ValueError, match="owns") as info:
        grant_app_role(owner, "postgres", password="leak-me")
    assert "leak-me" not in str(info.value)


def test_grant_app_role_command(
    rls_db: tuple[Engine, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, role, app_url = rls_db
    monkeypatch.setenv("AGENTMEM_TEST_APP_PW", "new-pw-Ω")
    args = ["grant-app-role", role, "--url", owner.url, "--schema", owner.schema]
    out = CliRunner().invoke(main, [*args, "--password-env", "AGENTMEM_TEST_APP_PW"])
    assert out.exit_code == 0, out.output
    assert f"role {role}: " in out.output and "events" in out.output
    with psycopg.connect(as_role(app_url, role, "new-pw-Ω")) as conn:  # the new password
        assert conn.execute("SELECT current_user").fetchone() == (role,)
    missing = CliRunner().invoke(main, [*args, "--password-env", "AGENTMEM_TEST_UNSET_PW"])
    assert missing.exit_code != 0 and "AGENTMEM_TEST_UNSET_PW" in missing.output
    owns = CliRunner().invoke(
        main, ["grant-app-role", "postgres", "--url", owner.url, "--schema", owner.schema]
    )
    assert owns.exit_code != 0 and "owns" in owns.output


def test_sqlite_has_no_roles_and_migrates_as_before(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'm.db'}", row_level_security=True) as engine:
        engine.migrate()
        with pytest.raises(NotImplementedError, match="Postgres"):
            grant_app_role(engine, "app")
        with pytest.raises(NotImplementedError):
            citus_ddl(engine)
        assert engine.migrate() == []


def test_operations_reading_every_tenant_are_refused_under_row_level_security(
    rls_db: tuple[Engine, str, str],
) -> None:
    owner, _, app_url = rls_db
    with connect(app_url, schema=owner.schema, row_level_security=True) as app:
        with pytest.raises(TenantRequiredError, match="every tenant"):
            CheckpointSaver(app).list_users()
        with pytest.raises(TenantRequiredError):
            table_counts(app)
        # Tenant-scoped work and schema reads run.
        assert CheckpointSaver(app, user_id="u").list_threads() == []
        assert app.schema_version() > 0

    async def async_form() -> None:
        async with connect(app_url, schema=owner.schema, row_level_security=True) as app:
            with pytest.raises(TenantRequiredError):
                await CheckpointSaver(app).alist_users()

    asyncio.run(async_form())


def test_a_tenant_setting_made_per_session_does_not_outlive_the_transaction(
    rls_db: tuple[Engine, str, str],
) -> None:
    """The engine sets the tenant with SET LOCAL semantics: the connection it returns
    to the pool carries no tenant."""
    owner, _, app_url = rls_db
    with connect(app_url, schema=owner.schema, row_level_security=True, max_size=1) as app:
        with app.transaction("alice") as tx:
            assert tx.fetchone("SELECT current_setting('agent_mem.user_id', true)") == ("alice",)
        with app.transaction(None) as tx:
            assert tx.fetchone("SELECT current_setting('agent_mem.user_id', true)") in [
                (None,),
                ("",),
            ]
        with app.transaction("bob", readonly=True) as tx:
            assert tx.fetchone("SELECT current_setting('agent_mem.user_id', true)") == ("bob",)


def test_a_refused_or_failed_write_rolls_back_and_the_connection_is_reusable(
    rls_db: tuple[Engine, str, str],
) -> None:
    owner, _, app_url = rls_db
    insert = "INSERT INTO {kv} (user_id, namespace, key, value) VALUES (?, 'n', ?, '1')"

    async def async_form(app: Engine) -> None:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with app.atransaction("alice") as tx:
                await tx.execute(insert, ["alice", "a2"])
                await tx.execute(insert, ["bob", "b2"])
        with pytest.raises(KeyError):
            async with app.atransaction("alice") as tx:
                await tx.execute(insert, ["alice", "a3"])
                raise KeyError("stop")
        async with app.atransaction("alice", readonly=True) as tx:
            assert await tx.fetchall("SELECT key FROM {kv}") == [("a1",)]

    with connect(app_url, schema=owner.schema, row_level_security=True, max_size=1) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            with app.transaction("alice") as tx:
                tx.execute(insert, ["alice", "a1"])
                tx.execute(insert, ["bob", "b1"])  # refused: the whole transaction rolls back
        with pytest.raises(KeyError):
            with app.transaction("alice") as tx:
                tx.execute(insert, ["alice", "a1"])
                raise KeyError("stop")
        with app.transaction("alice") as tx:
            tx.execute(insert, ["alice", "a1"])
        with app.transaction("alice", readonly=True) as tx:
            assert tx.fetchall("SELECT key FROM {kv}") == [("a1",)]
        asyncio.run(async_form(app))


def test_a_one_statement_write_commits_alone_and_leaves_no_tenant(
    rls_db: tuple[Engine, str, str],
) -> None:
    """A ``single`` write under row-level security (the tenant and the statement in one
    pipeline, one implicit transaction): committed when it succeeds, nothing when the
    policy refuses it, and the connection carries no tenant afterwards."""
    owner, _, app_url = rls_db
    insert = "INSERT INTO {kv} (user_id, namespace, key, value) VALUES (?, 's', ?, '1')"
    keys = "SELECT key FROM {kv} WHERE namespace = 's' ORDER BY key"
    tenant = "SELECT current_setting('agent_mem.user_id', true)"

    async def async_form(app: Engine) -> None:
        async with app.atransaction("alice", single=True) as tx:
            assert await tx.execute(insert, ["alice", "s2"]) == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with app.atransaction("alice", single=True) as tx:
                await tx.execute(insert, ["bob", "b2"])
        async with app.atransaction(None) as tx:
            assert await tx.fetchone(tenant) in [(None,), ("",)]
        async with app.atransaction("alice", readonly=True) as tx:
            assert await tx.fetchall(keys) == [("s1",), ("s2",)]

    with connect(app_url, schema=owner.schema, row_level_security=True, max_size=1) as app:
        with app.transaction("alice", single=True) as tx:
            assert tx.execute(insert, ["alice", "s1"]) == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            with app.transaction("alice", single=True) as tx:
                tx.execute(insert, ["bob", "b1"])
        with app.transaction(None) as tx:
            assert tx.fetchone(tenant) in [(None,), ("",)]
        with app.transaction("alice", readonly=True) as tx:
            assert tx.fetchall(keys) == [("s1",)]
        asyncio.run(async_form(app))
    with owner.transaction(None, readonly=True) as tx:
        assert tx.fetchall("SELECT user_id, key FROM {kv} WHERE namespace = 's' ORDER BY key") == [
            ("alice", "s1"),
            ("alice", "s2"),
        ]


# -- through PgBouncer in transaction mode --------------------------------------------


def test_tenants_interleaved_through_pgbouncer_read_only_their_rows(
    rls_db: tuple[Engine, str, str],
) -> None:
    owner, role, app_url = rls_db
    tenants = [f"tenant-{i:02d}" for i in range(32)]
    with psycopg.connect(owner.url, autocommit=True) as admin:
        table = pgsql.Identifier(owner.schema, "kv")
        for t in tenants:
            admin.execute(
                pgsql.SQL(
                    "INSERT INTO {} (user_id, namespace, key, value) SELECT %s, 'n', 'k' || g, %s "
                    "FROM generate_series(1, 3) g"
                ).format(table),
                [t, '"' + t + '"'],
            )
    with pgbouncer(app_url, pool_size=4) as bouncer:
        ops = 10_000
        seen: dict[str, set[str]] = {t: set() for t in tenants}
        errors: list[BaseException] = []
        server_pids: set[int] = set()

        async def main() -> None:
            engine = connect(
                bouncer,
                schema=owner.schema,
                row_level_security=True,
                prepare_threshold=None,
                min_size=32,
                max_size=32,
            )
            async with engine:

                async def one(i: int) -> None:
                    tenant = tenants[i % len(tenants)]
                    try:
                        async with engine.atransaction(tenant, readonly=True) as tx:
                            # No user_id filter: only row-level security keeps the rows apart.
                            rows = await tx.fetchall("SELECT user_id, pg_backend_pid() FROM {kv}")
                        if len(rows) != 3:
                            raise AssertionError(f"{tenant} read {len(rows)} rows")
                        for user, pid in rows:
                            seen[tenant].add(user)
                            server_pids.add(pid)
                    except Exception as exc:  # counted, reported below
                        errors.append(exc)

                sem = asyncio.Semaphore(64)

                async def limited(i: int) -> None:
                    async with sem:
                        await one(i)

                await asyncio.gather(*(limited(i) for i in range(ops)))

        asyncio.run(main())
        assert errors == []
        assert {t: s for t, s in seen.items() if s != {t}} == {}, "rows of another tenant"
        assert 1 <= len(server_pids) <= 4, server_pids


# -- round trips ------------------------------------------------------------------------


def _round_trips(trace: str) -> int:
    """How many times the client sent and then waited for the server, in a libpq trace
    (each line: direction ``F`` or ``B``, length, message)."""
    trips, last = 0, "B"
    for line in trace.splitlines():
        direction = line.split("\t", 1)[0]
        if direction == "F" and last == "B":
            trips += 1
        last = direction
    return trips


@contextlib.contextmanager
def _traced(conn: Any, path: Path) -> Iterator[list[str]]:
    """Trace the libpq messages of ``conn`` into ``path``; the list gets the trace text."""
    out: list[str] = []
    with path.open("w") as f:
        conn.pgconn.trace(f.fileno())
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield out
        finally:
            conn.pgconn.untrace()
    out.append(path.read_text())


def test_an_implicit_transaction_costs_one_round_trip_a_statement_as_without_the_tenant(
    rls_db: tuple[Engine, str, str], tmp_path: Path
) -> None:
    """Under row-level security a read, and a one-statement write, send the tenant with the
    statement (one pipeline, one implicit transaction): one round trip each, as with no
    tenant, instead of BEGIN with the tenant, the statement and COMMIT."""
    owner, _, app_url = rls_db
    insert = "INSERT INTO {kv} (user_id, namespace, key, value) VALUES (?, 'r', ?, '1')"
    many = "INSERT INTO {kv} (user_id, namespace, key, value) VALUES (?, 'm', ?, '1')"
    keys = "SELECT key FROM {kv} ORDER BY key"
    trace = tmp_path / "trace.txt"

    async def async_form(app: Engine) -> None:
        async with app.atransaction(None, readonly=True) as tx:
            conn = tx.conn  # the pool's one connection
        with _traced(conn, trace) as out:
            async with app.atransaction("alice", single=True) as tx:
                assert await tx.execute(insert, ["alice", "a2"]) == 1
        assert _round_trips(out[0]) == 1, out[0]
        with _traced(conn, trace) as out:
            async with app.atransaction("alice", readonly=True) as tx:
                assert await tx.fetchall(keys) == [("a1",), ("a2",), ("m1",), ("m2",)]
                assert await tx.fetchone(keys) == ("a1",)
                assert [r async for r in tx.iterate(keys)][-1] == ("m2",)
        assert _round_trips(out[0]) == 3, out[0]

    with connect(app_url, schema=owner.schema, row_level_security=True, max_size=1) as app:
        with app.transaction(None, readonly=True) as tx:
            conn = tx.conn  # the pool's one connection
        with _traced(conn, trace) as out:
            with app.transaction("alice", single=True) as tx:
                assert tx.execute(insert, ["alice", "a1"]) == 1
        assert _round_trips(out[0]) == 1, out[0]
        with _traced(conn, trace) as out:
            with app.transaction("alice", single=True) as tx:
                tx.executemany(many, [["alice", "m1"], ["alice", "m2"]])
        assert _round_trips(out[0]) == 1, out[0]
        with _traced(conn, trace) as out:
            with app.transaction("alice", readonly=True) as tx:
                assert tx.fetchall(keys) == [("a1",), ("m1",), ("m2",)]
                assert tx.fetchone(keys) == ("a1",)
                assert list(tx.iterate(keys))[-1] == ("m2",)
        assert _round_trips(out[0]) == 3, out[0]
        # A refused statement of many rows commits none of them.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with app.transaction("alice", single=True) as tx:
                tx.executemany(many, [["alice", "m3"], ["bob", "m4"]])
        asyncio.run(async_form(app))
    with owner.transaction(None, readonly=True) as tx:
        assert tx.fetchall("SELECT user_id, key FROM {kv} ORDER BY key") == [
            ("alice", "a1"),
            ("alice", "a2"),
            ("alice", "m1"),
            ("alice", "m2"),
        ]


def test_export_and_import_through_the_application_role(
    rls_db: tuple[Engine, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import under row-level security: COPY into a temporary table, then INSERT ...
    SELECT, which the tenant policy checks row by row."""
    from langchain_core.messages import HumanMessage

    from langchain_agentmem import ChatMessageHistory
    from langchain_agentmem._core import lifecycle

    monkeypatch.setattr(lifecycle, "COPY_MIN_ROWS", 1)
    owner, _, app_url = rls_db
    register_collection(owner)
    with connect(app_url, schema=owner.schema, row_level_security=True) as app:
        exercise(app, "alice")
        ChatMessageHistory(app, "s", user_id="alice").add_messages(
            [HumanMessage(f"m{i}\x00") for i in range(40)]
        )
        counts = app.export_user("alice", tmp_path / "alice.zip")
        assert app.import_user(tmp_path / "alice.zip", user_id="carol") == counts
        assert app.count_user("carol") == app.count_user("alice")
        messages = ChatMessageHistory(app, "s", user_id="carol").messages
        assert [m.content for m in messages][-1] == "m39\x00"
