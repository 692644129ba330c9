"""Citus readiness, checked without Citus (no Citus package here): every tenant table of
the catalog can be distributed by ``user_id``, and every statement the package sends
during a workload of every memory class that touches a distributed table is
router-executable: it is bound to one ``user_id`` value."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from _workload import exercise, register_collection
from click.testing import CliRunner

from langchain_agentmem import CheckpointSaver, Engine, LangGraphStore, connect
from langchain_agentmem._core.catalog import TABLES
from langchain_agentmem._core.tenancy import distributed_tables, reference_tables
from langchain_agentmem.cli import main
from langchain_agentmem.tenancy import citus_ddl


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Engine]:
    engine = connect(postgres_url, schema="t_" + uuid.uuid4().hex[:12])
    engine.migrate()
    yield engine
    engine.close()


def test_every_tenant_table_can_be_distributed_by_user_id(pg: Engine) -> None:
    """Citus needs the distribution column in the primary key, in every unique index,
    and in every foreign key between distributed tables (a foreign key to a reference
    table is allowed)."""
    distributed = {t.name for t in distributed_tables("postgres")}
    reference = {t.name for t in reference_tables("postgres")}
    assert distributed and reference
    with pg.transaction(readonly=True) as tx:
        indexes = tx.fetchall(
            "SELECT c.relname, i.indisprimary, ARRAY(SELECT a.attname FROM unnest(i.indkey) k "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ? AND i.indisunique",
            [pg.schema],
        )
        fkeys = tx.fetchall(
            "SELECT c.relname, f.relname, ARRAY(SELECT a.attname FROM unnest(k.conkey) x JOIN "
            "pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = x), ARRAY(SELECT a.attname "
            "FROM unnest(k.confkey) x JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = x) "
            "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class f ON f.oid = "
            "k.confrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND k.contype = 'f'",
            [pg.schema],
        )
    primary = {name: cols for name, is_pk, cols in indexes if is_pk}
    for name in distributed:
        assert TABLES[name].primary_key[0] == "user_id", name
        assert primary[name][0] == "user_id", f"{name}: primary key {primary[name]}"
    for name, _, cols in indexes:
        if name in distributed:
            assert "user_id" in cols, f"unique index on {name} {cols} lacks user_id"
    for child, parent, cols, ref in fkeys:
        if child in distributed and parent in distributed:
            assert ("user_id", "user_id") in set(zip(cols, ref, strict=True)), (child, parent)
        elif child in distributed:
            assert parent in reference, (child, parent)


def test_citus_ddl_names_every_catalog_table_once(pg: Engine) -> None:
    ddl = citus_ddl(pg)
    text = "\n".join(ddl)
    for table in distributed_tables("postgres"):
        q = pg.dialect.table(table.name)
        assert text.count(f"create_distributed_table('{q}', 'user_id'") == 1, table.name
    for table in reference_tables("postgres"):
        assert text.count(f"create_reference_table('{pg.dialect.table(table.name)}')") == 1
    # Reference tables first: distributed tables hold foreign keys to them.
    last_reference = max(i for i, s in enumerate(ddl) if "create_reference_table" in s)
    first_distributed = min(i for i, s in enumerate(ddl) if "create_distributed_table" in s)
    assert last_reference < first_distributed
    out = CliRunner().invoke(main, ["citus-ddl", "--schema", pg.schema])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == [s + ";" for s in ddl]
    assert CliRunner().invoke(main, ["citus-ddl", "--schema", "x;y"]).exit_code != 0


# -- every statement of a workload is bound to one tenant ------------------------------

_PLACEHOLDER = re.compile(r"%%|%[sb]")
_TENANT_EQ = re.compile(r'(?<![\w."])(?:"?\w+"?\.)?"?user_id"?\s*=\s*(%[sb])')
_INSERT = re.compile(r'INSERT INTO "[^"]+"\."[^"]+"(?: AS \w+)? \("?user_id\b')


def _placeholders(sql: str) -> list[int]:
    """Offsets of the ``%s``/``%b`` placeholders."""
    return [m.start() for m in _PLACEHOLDER.finditer(sql) if m.group() != "%%"]


def _tenants_bound(sql: str, params: Sequence[Any]) -> set[Any] | None:
    """The user_id values a statement is bound to; ``None`` when it names none."""
    spots = _placeholders(sql)
    found: set[Any] = set()
    for m in _TENANT_EQ.finditer(sql):
        found.add(params[spots.index(m.start(1))])
    for insert in _INSERT.finditer(sql):
        # The row's first value (or selected expression) is the tenant: a placeholder, or
        # the user_id of a tenant-bound source (``SELECT r.user_id ... FROM r``).
        close = sql.index(")", insert.end())
        first = re.match(
            r"\s*(?:VALUES\s*\(|SELECT\s+(?:DISTINCT\s+)?)\s*(%[sb])?", sql[close + 1 :]
        )
        if first and first.group(1):
            found.add(params[spots.index(close + 1 + first.start(1))])
    return found or None


class Recorder:
    """Every statement psycopg sends, with its parameters (a hook at the cursor, where
    the backends execute)."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, list[Sequence[Any]]]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        rec = self.statements

        def text(query: Any, cur: Any) -> str:
            return query if isinstance(query, str) else query.as_string(cur)

        execute, executemany, copy = (
            psycopg.Cursor.execute,
            psycopg.Cursor.executemany,
            psycopg.Cursor.copy,
        )

        def hooked_execute(cur: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            rec.append((text(query, cur), [list(params or ())]))
            return execute(cur, query, params, **kw)

        def hooked_executemany(cur: Any, query: Any, params_seq: Any, **kw: Any) -> Any:
            rows = [list(p) for p in params_seq]
            rec.append((text(query, cur), rows))
            return executemany(cur, query, rows, **kw)

        def hooked_copy(cur: Any, statement: Any, params: Any = None, **kw: Any) -> Any:
            rec.append((text(statement, cur), [list(params or ())]))
            return copy(cur, statement, params, **kw)

        monkeypatch.setattr(psycopg.Cursor, "execute", hooked_execute)
        monkeypatch.setattr(psycopg.Cursor, "executemany", hooked_executemany)
        monkeypatch.setattr(psycopg.Cursor, "copy", hooked_copy)


def test_every_statement_on_a_distributed_table_is_bound_to_one_tenant(
    pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_collection(pg)
    recorder = Recorder()
    recorder.install(monkeypatch)
    exercise(pg, "alice")
    exercise(pg, "bob")
    monkeypatch.undo()
    names = {
        t.name: pg.dialect.table(t.name)
        for t in distributed_tables("postgres")
        if not t.bookkeeping  # hybrid sync's own state: no memory class writes it
    }
    touched: set[str] = set()
    offenders: list[str] = []
    checked = 0
    for sql, rows in recorder.statements:
        tables = [n for n, q in names.items() if q in sql]
        if not tables:
            continue
        checked += 1
        touched.update(tables)
        if sql.lstrip().upper().startswith(("CREATE INDEX", "COPY")):
            if sql.lstrip().upper().startswith("COPY"):
                offenders.append(f"COPY is not checked here: {sql[:120]}")
            continue  # DDL: Citus propagates it to every shard
        for params in rows:
            tenants = _tenants_bound(sql, params)
            if tenants is None or len(tenants) != 1:
                offenders.append(f"{tenants}: {sql[:900]} {params[:6]}")
    assert checked > 50
    assert offenders == [], "\n".join(offenders)
    assert touched == set(names), f"the workload never touched {set(names) - touched}"


def test_the_statement_check_catches_statements_spanning_tenants(
    pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: maintenance that spans tenants is caught by it."""
    recorder = Recorder()
    recorder.install(monkeypatch)
    CheckpointSaver(pg).list_users()
    LangGraphStore(pg, user_id="alice").sweep_ttl(all_users=True)
    monkeypatch.undo()
    spanning = [
        sql
        for sql, rows in recorder.statements
        if any(pg.dialect.table(t.name) in sql for t in distributed_tables("postgres"))
        and _tenants_bound(sql, rows[0]) is None
    ]
    assert len(spanning) == 2, spanning
    assert _tenants_bound("SELECT 1 FROM x WHERE user_id = %s OR user_id = %s", ["a", "b"]) == {
        "a",
        "b",
    }
