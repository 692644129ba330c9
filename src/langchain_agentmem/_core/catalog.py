"""The table catalog: what every table of the shared schema is, in one place.

Status, export, forget, retention, row-level security, backup, sync and the Citus DDL read
this list instead of naming tables themselves, so a table added later cannot be forgotten
by any of them: a test migrates both backends and fails when the database holds a table
the catalog does not name (or the catalog names one the database lacks).

A new memory type adds its migration per dialect and one :class:`Table` entry here.

Example:
    >>> TABLES["events"].primary_key
    ('user_id', 'session_id', 'seq')
    >>> [t.name for t in tenant_tables()][:3]
    ['sessions', 'events', 'documents']
    >>> TABLES["vector_collections"].reference
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["TABLES", "Sync", "Table", "derived_tables", "tenant_tables"]

Sync = Literal["up", "local"]
"""``up``: a persistent memory, delivered to the canonical Postgres in hybrid mode;
``local``: transient state that may stay in the local cache."""


@dataclass(frozen=True)
class Table:
    """One table of the shared schema."""

    name: str
    primary_key: tuple[str, ...]
    """Columns of the primary key, the tenant first for tenant tables."""
    tenant_column: str | None = "user_id"
    """The column holding the tenant; ``None`` for shared reference tables."""
    time_column: str | None = None
    """When a row was written or last changed (timestamps stored by the dialect)."""
    vector_column: str | None = None
    """The embedding column, if any."""
    sync: Sync = "up"
    """Hybrid-mode sync policy."""
    retention_key: str | None = None
    """The timestamp a retention policy ages rows by; ``None``: rows are kept until their
    owner deletes them (or until the rows they belong to go)."""
    reference: bool = False
    """A shared catalogue row (not per tenant): readable by every tenant, written by the
    package itself (e.g. a vector collection's dimension and index)."""
    parent: str | None = None
    """The table whose rows own this one's (deleted with them, exported with them)."""
    derived_from: str | None = None
    """An index kept by the database from another table (e.g. SQLite's full-text table):
    never written, exported or synced by itself."""
    dialects: tuple[str, ...] = ("postgres", "sqlite")
    """The backends on which the table exists."""


_ALL: tuple[Table, ...] = (
    # conversations (0001)
    Table("sessions", ("user_id", "session_id"), time_column="last_activity_at", retention_key="last_activity_at"),
    Table("events", ("user_id", "session_id", "seq"), time_column="created_at", retention_key="created_at", parent="sessions"),
    # documents (0001; the kind joins the key in 0005)
    Table("documents", ("user_id", "namespace", "kind", "key"), time_column="updated_at", retention_key="updated_at"),
    # vectors (0002)
    Table("vector_collections", ("collection_id",), tenant_column=None, time_column="created_at", reference=True),
    Table("vectors", ("user_id", "collection_id", "id"), time_column="updated_at", vector_column="embedding", retention_key="updated_at"),
    Table("vectors_fts", ("rowid",), tenant_column=None, derived_from="vectors", dialects=("sqlite",)),
    # LangGraph (0003)
    Table("checkpoints", ("user_id", "thread_id", "checkpoint_ns", "checkpoint_id"), time_column="created_at", sync="local", retention_key="created_at"),
    Table("checkpoint_blobs", ("user_id", "thread_id", "checkpoint_ns", "channel", "version"), sync="local", parent="checkpoints"),
    Table("checkpoint_writes", ("user_id", "thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"), sync="local", parent="checkpoints"),
    Table("store_items", ("user_id", "namespace", "key"), time_column="updated_at", retention_key="expires_at"),
    Table("store_vectors", ("user_id", "namespace", "key", "field"), vector_column="embedding", parent="store_items"),
    # model-written memories (0004)
    Table("conversation_summaries", ("user_id", "session_id"), time_column="updated_at", retention_key="updated_at"),
    Table("entities", ("user_id", "entity_system", "key"), time_column="updated_at"),
    Table("entity_aliases", ("user_id", "kind", "space", "alias"), parent="entities"),
    Table("graph_nodes", ("user_id", "graph", "key"), time_column="created_at"),
    Table("graph_edges", ("user_id", "graph", "id"), time_column="created_at", parent="graph_nodes"),
    # working memory and the key-value store (0009)
    Table("working_memory", ("user_id", "session_id"), time_column="last_updated", sync="local", retention_key="last_updated"),
    Table("working_memory_thoughts", ("user_id", "session_id", "seq"), time_column="created_at", sync="local", parent="working_memory"),
    Table("kv", ("user_id", "namespace", "key"), time_column="updated_at", retention_key="updated_at"),
    # the recall index over the chat history (0013)
    Table("recall_events", ("user_id", "session_id", "seq"), time_column="created_at", vector_column="embedding", parent="events"),
    Table("recall_terms", ("user_id", "term", "session_id", "seq"), parent="recall_events"),
    # bookkeeping
    Table("schema_version", ("version",), tenant_column=None, time_column="applied_at", reference=True, sync="local"),
)  # fmt: skip

#: Every table by name, in the order of the migrations that create them.
TABLES: dict[str, Table] = {t.name: t for t in _ALL}


def tenant_tables(dialect: str | None = None) -> list[Table]:
    """The tables whose rows belong to one tenant (``user_id``), in creation order; of one
    backend when ``dialect`` (``"postgres"``, ``"sqlite"``) is given."""
    return [
        t
        for t in _ALL
        if t.tenant_column is not None and (dialect is None or dialect in t.dialects)
    ]


def derived_tables(dialect: str) -> list[Table]:
    """Tables the database maintains from others (never written directly)."""
    return [t for t in _ALL if t.derived_from is not None and dialect in t.dialects]
