"""Tenant isolation read from the table catalog: row-level security, the application
role's privileges and the Citus distribution DDL.

Nothing here names a table: every tenant table of the catalog (:mod:`.catalog`) gets the
policy, the grants and its ``create_distributed_table``, so a table a later migration adds
is covered as soon as its catalog entry exists.

Example:
    >>> from langchain_agentmem.dialects import PostgresDialect
    >>> ddl = citus_statements(PostgresDialect("agent_mem"))
    >>> print(ddl[0])
    SELECT create_reference_table('"agent_mem"."vector_collections"')
    >>> print(ddl[len(reference_tables("postgres"))])
    SELECT create_distributed_table('"agent_mem"."sessions"', 'user_id')
"""

from __future__ import annotations

from ..dialects import Body, Dialect
from .catalog import TABLES, Table
from .plan import Atomic, Plan

__all__ = [
    "TenantRequiredError",
    "app_role_grants",
    "app_role_plan",
    "citus_statements",
    "distributed_tables",
    "reference_tables",
    "row_security_body",
]


class TenantRequiredError(RuntimeError):
    """An operation that reads every tenant's rows was run on an engine with
    ``row_level_security``, whose policies would silently hide all of them."""


def distributed_tables(dialect: str) -> list[Table]:
    """Tenant tables written directly (row-level security, Citus distribution)."""
    return [t for t in TABLES.values() if t.distributed and dialect in t.dialects]


def reference_tables(dialect: str) -> list[Table]:
    """Shared catalogue tables (readable by every tenant, replicated on Citus)."""
    return [t for t in TABLES.values() if t.reference and dialect in t.dialects]


def row_security_body(dialect: Dialect) -> Body[list[str]]:
    """Give every tenant table of the catalog what it lacks of row-level security
    (enabled, forced, the tenant policy); return the tables changed. Idempotent: when
    everything is in place it only reads ``pg_class``. Runs as the last step of
    ``migrate()``, under the migrations' lock."""
    if not dialect.supports_row_security:
        return []
    yield dialect.migration_prologue()[0]  # the migrations' lock
    rows = yield dialect.row_security_state()
    state = {r[0]: (bool(r[1]), bool(r[2]), bool(r[3]), r[4]) for r in rows}
    changes: list[tuple[str, str, list[str]]] = []
    for table in distributed_tables(dialect.name):
        if table.name not in state:
            continue  # created by a migration not applied yet
        enabled, forced, policy, form = state[table.name]
        current = not policy or form == dialect.TENANT_POLICY_FORM
        missing = [
            what
            for what, there in (
                ("enable", enabled),
                ("force", forced),
                ("policy", policy),
                ("policy form", current),
            )
            if not there
        ]
        if missing:
            assert table.tenant_column is not None
            changes.append((table.name, table.tenant_column, missing))
    if changes:
        yield dialect.row_security_ddl(changes)
    return [name for name, _, _ in changes]


def app_role_grants(dialect: str) -> list[tuple[str, str]]:
    """``(table, privileges)`` the application role gets, from the catalog."""
    return [
        (t.name, t.privileges)
        for t in TABLES.values()
        if dialect in t.dialects and t.derived_from is None
    ]


def _app_role_body(
    dialect: Dialect, role: str, password: str | None
) -> Body[list[tuple[str, str]]]:
    row = yield dialect.role_state(role)
    assert row is not None
    exists, owned = bool(row[0]), int(row[1])
    if owned:
        raise ValueError(
            f"role {role!r} owns {owned} database object(s): an application role must own "
            "nothing (an owner can turn row-level security off); pick another name or "
            "REASSIGN OWNED BY it first"
        )
    rows = yield dialect.row_security_state()
    present = {r[0] for r in rows}
    grants = [(t, p) for t, p in app_role_grants(dialect.name) if t in present]
    missing = sorted({t.name for t in distributed_tables(dialect.name)} - present)
    if missing:
        raise RuntimeError(
            f"tables {', '.join(missing)} do not exist in schema {dialect.schema!r}: run "
            "engine.migrate() (agentmem migrate) before granting the application role"
        )
    yield dialect.app_role_ddl(role, password, exists, grants)
    return grants


def app_role_plan(dialect: Dialect, role: str, password: str | None) -> Plan[list[tuple[str, str]]]:
    """Create or update the application role (see :func:`~langchain_agentmem.tenancy.grant_app_role`)."""
    if not dialect.supports_row_security:
        raise NotImplementedError(
            f"roles and row-level security need Postgres; {dialect.name} has one user"
        )
    return (yield Atomic(_app_role_body(dialect, role, password), user_id=None))


def citus_statements(dialect: Dialect) -> list[str]:
    """The Citus statements distributing the schema: every reference table first (tenant
    tables hold foreign keys to them), then every tenant table by its tenant column,
    colocated with the first one (so that joins and foreign keys between them stay on
    one node)."""
    from psycopg import sql as pgsql

    out: list[str] = []
    for table in reference_tables("postgres"):
        out.append(
            pgsql.SQL("SELECT create_reference_table({})")
            .format(pgsql.Literal(dialect.table(table.name)))
            .as_string(None)
        )
    first: str | None = None
    for table in distributed_tables("postgres"):
        name = pgsql.Literal(dialect.table(table.name))
        column = pgsql.Literal(table.tenant_column)
        if first is None:
            text = pgsql.SQL("SELECT create_distributed_table({}, {})").format(name, column)
            first = dialect.table(table.name)
        else:
            text = pgsql.SQL("SELECT create_distributed_table({}, {}, colocate_with => {})").format(
                name, column, pgsql.Literal(first)
            )
        out.append(text.as_string(None))
    return out


def statement_touches(sql: str, dialect: Dialect) -> list[str]:
    """The distributed tables a rendered statement names (for tests and tooling)."""
    return [t.name for t in distributed_tables(dialect.name) if dialect.table(t.name) in sql]
