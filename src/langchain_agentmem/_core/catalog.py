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

__all__ = [
    "CACHE_COLUMNS",
    "TABLES",
    "VIEWS",
    "Sync",
    "Table",
    "View",
    "derived_tables",
    "synced_tables",
    "tenant_tables",
]

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
    seq_counter: tuple[str, str] | None = None
    """``(table, column)``: the last primary-key column is a sequence that column of the
    table keyed by the rest of this key hands out (``events.seq`` from
    ``sessions.last_seq``). In hybrid mode Postgres hands it out when the row is delivered,
    so two caches appending to one parent never collide."""
    natural_key: tuple[str, ...] | None = None
    """Reference tables: the columns that name a row in every database (its primary key
    is a local number that differs between a cache and Postgres, or between the database
    an export came from and the one it is imported into). An export carries the reference
    rows a user's rows point to; an import and a sync find them by these columns, or
    create them."""
    bookkeeping: bool = False
    """The package's own state about a tenant (hybrid sync cursors and delivery
    versions), not a memory: deleted with the tenant by a forget, never exported,
    imported or counted as the tenant's data."""
    refs: tuple[tuple[str, str], ...] = ()
    """``(column, reference table)``: the column holds that reference table's primary key;
    sync translates it through the table's :attr:`natural_key`."""
    app_privileges: str | None = None
    """What the application role (``agentmem grant-app-role``) may do on the table;
    ``None``: ``SELECT, INSERT, UPDATE, DELETE`` on a tenant table (its rows limited to the
    transaction's tenant by row-level security), ``SELECT`` on a reference table."""

    @property
    def privileges(self) -> str:
        """:attr:`app_privileges` with its default applied."""
        if self.app_privileges is not None:
            return self.app_privileges
        return "SELECT" if self.tenant_column is None else "SELECT, INSERT, UPDATE, DELETE"

    @property
    def distributed(self) -> bool:
        """A tenant table written directly: row-level security keys it on the tenant, and
        on Citus it is distributed by the tenant column (reference tables are replicated)."""
        return self.tenant_column is not None and self.derived_from is None


_ALL: tuple[Table, ...] = (
    # conversations (0001)
    Table("sessions", ("user_id", "session_id"), time_column="last_activity_at", retention_key="last_activity_at"),
    Table("events", ("user_id", "session_id", "seq"), time_column="created_at", vector_column="embedding", retention_key="created_at", parent="sessions", seq_counter=("sessions", "last_seq")),
    # documents (0001; the kind joins the key in 0005)
    Table("documents", ("user_id", "namespace", "kind", "key"), time_column="updated_at", retention_key="updated_at"),
    # vectors (0002)
    # Every tenant registers collections (a name, a size, a distance) and reads them all.
    Table("vector_collections", ("collection_id",), tenant_column=None, time_column="created_at", reference=True, natural_key=("name",), app_privileges="SELECT, INSERT"),
    Table("vectors", ("user_id", "collection_id", "id"), time_column="updated_at", vector_column="embedding", retention_key="updated_at", refs=(("collection_id", "vector_collections"),)),
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
    # episodic memory (0010)
    Table("episodes", ("user_id", "id"), time_column="created_at", vector_column="embedding", retention_key="created_at"),
    # the knowledge base and the operation metrics (0011)
    Table("knowledge_facts", ("user_id", "subject", "predicate", "object"), time_column="updated_at"),
    Table("knowledge_rules", ("user_id", "id"), time_column="updated_at"),
    Table("knowledge", ("user_id", "id"), time_column="updated_at", vector_column="embedding"),
    Table("agent_memory_metrics", ("user_id", "id"), time_column="created_at", sync="local", retention_key="created_at"),
    # skills registry and agent bindings (0012; sessions and events gain columns there)
    Table("skills", ("user_id", "name", "version"), time_column="updated_at", vector_column="embedding"),
    Table("agent_skill_bindings", ("user_id", "agent_name", "skill_name"), time_column="updated_at"),
    # the recall index over the chat history (0013)
    Table("recall_events", ("user_id", "session_id", "seq"), time_column="created_at", vector_column="embedding", parent="events"),
    Table("recall_terms", ("user_id", "term", "session_id", "seq"), parent="recall_events"),
    # hybrid mode (0014): the cache's outbox and pull state, Postgres's delivery state
    Table("sync_outbox", ("seq",), tenant_column=None, time_column="created_at", sync="local", dialects=("sqlite",)),
    Table("sync_state", ("key",), tenant_column=None, sync="local", dialects=("sqlite",)),
    Table("sync_pulls", ("user_id",), time_column="pulled_at", sync="local", dialects=("sqlite",), bookkeeping=True),
    Table("sync_cursors", ("user_id", "table_name", "parent"), sync="local", dialects=("sqlite",), bookkeeping=True),
    Table("memory_sync_log", ("source", "run_id"), tenant_column=None, time_column="started_at", sync="local", retention_key="started_at"),
    Table("sync_sources", ("source",), tenant_column=None, time_column="updated_at", sync="local", dialects=("postgres",)),
    Table("sync_versions", ("user_id", "table_name", "pk"), sync="local", dialects=("postgres",), bookkeeping=True),
    # hybrid mode (0020): per session, the seq up to which the cache's events are queued or delivered
    Table("sync_marks", ("user_id", "session_id"), sync="local", dialects=("sqlite",), bookkeeping=True),
    # bookkeeping
    Table("schema_version", ("version",), tenant_column=None, time_column="applied_at", reference=True, sync="local"),
)  # fmt: skip

#: Every table by name, in the order of the migrations that create them.
TABLES: dict[str, Table] = {t.name: t for t in _ALL}

#: Columns of a hybrid cache's own bookkeeping in a memory table (SQLite only, NULL outside
#: a cache): never synced (Postgres lacks them), never in an export archive.
#: ``kv.sync_version`` (migration 0021): the row's local version, see ``_core/marks.py``.
CACHE_COLUMNS: dict[str, tuple[str, ...]] = {"kv": ("sync_version",)}


@dataclass(frozen=True)
class View:
    """One view of the shared schema: plain SQL over tables, readable by any client."""

    name: str
    reads: tuple[str, ...]
    """The tables it reads."""
    tenant_column: str | None = "user_id"
    """The column naming the tenant of each row (filter on it)."""
    dialects: tuple[str, ...] = ("postgres", "sqlite")


_MEMORY_TABLES = (
    "sessions", "events", "documents", "vectors", "checkpoints", "store_items",
    "conversation_summaries", "entities", "graph_nodes", "graph_edges", "working_memory", "kv",
    "knowledge_facts", "knowledge_rules", "knowledge", "agent_memory_metrics",
)  # fmt: skip

#: Every view by name (0010: episodes; 0011: the knowledge base's and the system's health;
#: 0012: the agent log's and the skills').
VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        View("v_episode_quality_by_project", ("episodes",)),
        View("agent_performance_summary", ("sessions",)),
        View("skill_usage_summary", ("skills", "agent_skill_bindings")),
        View("important_events_recent", ("events", "sessions")),
        View("agent_activity_hourly", ("events", "sessions")),
        View("importance_distribution", ("events",)),
        View("v_strategy_effectiveness", ("knowledge",)),
        View("v_memory_system_health", _MEMORY_TABLES),
    )
}


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


def synced_tables(policy: dict[str, Sync] | None = None) -> list[Table]:
    """The tenant tables hybrid mode delivers to Postgres, in creation order (parents
    first): sync policy ``up`` (``policy`` overrides it per table name), present on both
    backends, not derived.

    Example:
        >>> "events" in [t.name for t in synced_tables()]
        True
        >>> "checkpoints" in [t.name for t in synced_tables({"checkpoints": "up"})]
        True
    """
    policy = policy or {}
    unknown = set(policy) - set(TABLES)
    if unknown:
        raise ValueError(f"unknown table(s) in the sync policy: {', '.join(sorted(unknown))}")
    return [
        t
        for t in tenant_tables()
        if policy.get(t.name, t.sync) == "up"
        and t.derived_from is None
        and set(t.dialects) >= {"postgres", "sqlite"}
    ]
