"""Tenant isolation in the database: the application role and the Citus DDL.

On Postgres, ``engine.migrate()`` ends by enabling and forcing row-level security on every
tenant table of the catalog, with one policy: a row is visible and writable only when its
``user_id`` is the transaction's ``agent_mem.user_id`` setting, which an engine connected
with ``row_level_security=True`` sets (``SET LOCAL`` semantics) in every transaction. With
no tenant set, a query sees no row (the policy fails closed).

The policies bind every role except superusers and roles with ``BYPASSRLS`` (the tables'
owner too: they are forced). :func:`grant_app_role` makes the role an application should
connect as: it owns nothing and has exactly the privileges the package needs.

Example:
    >>> from langchain_agentmem import connect
    >>> print(citus_ddl(connect("postgresql://localhost/db"))[0])
    SELECT create_reference_table('"agent_mem"."vector_collections"')
"""

from __future__ import annotations

from ._core.plan import arun, run
from ._core.tenancy import TenantRequiredError, app_role_plan, citus_statements
from .engine import Engine

__all__ = ["TenantRequiredError", "agrant_app_role", "citus_ddl", "grant_app_role"]


def grant_app_role(
    engine: Engine, role: str, *, password: str | None = None
) -> list[tuple[str, str]]:
    """Create (or update) ``role``, the login role an application connects as under
    row-level security; return the ``(table, privileges)`` granted.

    The role is a ``LOGIN`` role without ``SUPERUSER``, ``BYPASSRLS``, ``CREATEDB``,
    ``CREATEROLE`` or ``REPLICATION``; every privilege it had in the schema is revoked,
    then it gets ``USAGE`` on the schema and, from the catalog, ``SELECT, INSERT, UPDATE,
    DELETE`` on every tenant table and what each shared table needs (``SELECT`` on
    ``schema_version``, ``SELECT, INSERT`` on ``vector_collections``). A role that owns
    any object is refused (an owner can switch row-level security off). Run it as a
    superuser or a role with ``CREATEROLE``, after ``migrate()``, and again after a
    migration that adds tables (it is idempotent). ``password`` (optional) is set on the
    role; it never appears in errors.

    Args:
        engine: a Postgres engine connected as the schema's owner (or a superuser).
        role: the role name (lower-case letters, digits, underscores).
        password: the role's password; ``None`` leaves it as it is.
    """
    return run(engine, None, app_role_plan(engine.dialect, role, password))


async def agrant_app_role(
    engine: Engine, role: str, *, password: str | None = None
) -> list[tuple[str, str]]:
    """Async form of :func:`grant_app_role`."""
    return await arun(engine, None, app_role_plan(engine.dialect, role, password))


def citus_ddl(engine: Engine) -> list[str]:
    """The statements that distribute the schema on Citus, from the catalog:
    ``create_reference_table`` for the shared tables, then ``create_distributed_table``
    by ``user_id`` for every tenant table, colocated. Run them once after ``migrate()``
    on the coordinator. Pure: nothing is sent to the database."""
    if not engine.dialect.supports_row_security:
        raise NotImplementedError(f"Citus is a Postgres extension, not {engine.dialect.name}")
    return citus_statements(engine.dialect)
