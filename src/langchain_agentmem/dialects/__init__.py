"""The only place that knows how Postgres and SQLite differ.

Queries in this package are written once, in a neutral form:

* ``?`` is a positional placeholder (never use Postgres' ``?`` JSON operators; use
  ``jsonb_exists`` and friends instead),
* ``{name}`` is a table of the shared schema, quoted and schema-qualified by the dialect,
* ``{now}`` is the current time as stored in timestamp columns,
* ``{bparam}`` is a placeholder whose value is sent in binary (Postgres ``%b``; large arrays
  dump much faster that way), ``?`` on SQLite,
* ``{for_update}`` ends a SELECT in a write transaction whose rows it locks until the
  commit (Postgres ``FOR UPDATE``; nothing on SQLite, whose write transactions already
  run one at a time),
* ``%`` is a literal percent sign.

:meth:`Dialect.render` turns such a template into the SQL text of one backend. Table names
are checked against :data:`IDENTIFIER` and quoted (``psycopg.sql.Identifier`` on Postgres);
nothing a user typed is ever formatted into SQL. A query whose shape code chooses (columns,
a catalog table, a dialect fragment) is composed with :mod:`.compose` (``SQL``, ``Ident``,
``Table``, ``Unnest``, ``RowLock``), never with f-strings.

Example:
    >>> PostgresDialect("agent_mem").render("SELECT seq FROM {events} WHERE user_id = ?")
    'SELECT seq FROM "agent_mem"."events" WHERE user_id = %s'
    >>> SQLiteDialect().render("SELECT seq FROM {events} WHERE user_id = ?")
    'SELECT seq FROM "events" WHERE user_id = ?'
"""

from __future__ import annotations

from .base import IDENTIFIER, Dialect, check_identifier
from .compose import SQL, Composable, Composed, Ident, RowLock, Table, Template, Unnest
from .postgres import PostgresDialect
from .sqlite import SQLiteDialect
from .statements import Body, Copy, Many, One, Op, Raw, Stmt

__all__ = [
    "IDENTIFIER",
    "SQL",
    "Composable",
    "Composed",
    "Ident",
    "RowLock",
    "Table",
    "Template",
    "Unnest",
    "Body",
    "Copy",
    "Dialect",
    "Many",
    "One",
    "Op",
    "PostgresDialect",
    "Raw",
    "SQLiteDialect",
    "Stmt",
    "check_identifier",
]
