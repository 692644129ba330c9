"""Knowledge-graph memory: facts as edges between entities, with time.

* Nodes (``graph_nodes``) are deduplicated like entities: one per normalized name, and
  every name and alias resolves through ``entity_aliases`` ("Bob", "bob", "Bobby").
* Edges (``graph_edges``) carry a relation, a weight, properties, the session and ``seq``
  of the event they came from, and a validity interval ``[valid_from, valid_to)``.
* Time-aware: a new fact on a *single-valued* relation (``lives_in``, ``works_at``, ...)
  closes the subject's open edge for that relation (``valid_to``) instead of deleting it.
  Queries answer "now" by default and "as of" a given time with ``as_of=``.
* Queries run as recursive SQL on both backends: :meth:`GraphMemory.neighbors` to depth
  n, :meth:`GraphMemory.subgraph`, :meth:`GraphMemory.shortest_path`,
  :meth:`GraphMemory.facts` / :meth:`GraphMemory.facts_text` for prompts, and
  :meth:`GraphMemory.to_networkx`.
* With a model, :meth:`GraphMemory.add_text` extracts triples in one call; the
  ``ConversationKGMemory`` methods ``get_knowledge_triplets`` and ``get_current_entities``
  behave like the legacy ones (one model call each).

Example:
    >>> from datetime import datetime, timezone
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> kg = GraphMemory(engine, user_id="alice")
    >>> t1, t2 = datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 1, tzinfo=timezone.utc)
    >>> _ = kg.add_triple("Alice", "lives in", "Paris", at=t1)
    >>> _ = kg.add_triple("Alice", "lives_in", "Rome", at=t2)     # closes the Paris edge
    >>> kg.facts_text("alice")
    'Alice lives in Rome'
    >>> kg.facts_text("alice", as_of=datetime(2024, 6, 1, tzinfo=timezone.utc))
    'Alice lives in Paris'
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, NamedTuple

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, get_buffer_string
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, Field

from ._core.llm import structured
from ._core.names import candidate_names, normalize, normalize_relation
from ._core.plan import Atomic, Body, Model, Plan, Sql, Stmt, dual
from ._encoding.json import dumps, loads
from ._encoding.keys import decode_key, encode_key
from .dialects import SQL, Composed, Dialect, Template, Unnest
from .engine import EngineLike, as_engine
from .entities import _text_of_turn, resolve_query

__all__ = [
    "DEFAULT_SINGLE_VALUED",
    "Edge",
    "GraphMemory",
    "KnowledgeTriple",
    "Node",
    "Subgraph",
]

Query = tuple[Template, list[Any]]
Direction = Literal["out", "in", "both"]

#: Relations a subject has one value of at a time: a new value closes the old edge.
DEFAULT_SINGLE_VALUED = frozenset(
    {
        "lives_in",
        "works_at",
        "works_for",
        "employed_by",
        "married_to",
        "spouse",
        "age",
        "located_in",
        "job_title",
        "has_job_title",
        "current_city",
        "favorite_color",
        "status",
    }
)

TRIPLE_SYSTEM_PROMPT = (
    "You extract a knowledge graph from a conversation between a human (the user) and an "
    "AI. Return every fact stated as a triple: subject, relation, object. Use the canonical "
    'name of each entity; refer to the human as "User". Relations are short lower-case '
    "verb phrases in snake_case (lives_in, works_at, likes, is_a, brother_of). Only facts "
    "stated or clearly implied; none from questions. "
    'Answer with JSON only: {"triples": [{"subject": "...", "relation": "...", "object": "..."}]}, '
    'or {"triples": []} when there are none.'
)

ENTITY_SYSTEM_PROMPT = (
    "List the proper nouns and named entities (people, places, organizations, things) that "
    "the text mentions, as they are written. "
    'Answer with JSON only: {"entities": ["..."]}, or {"entities": []} when there are none.'
)


class KnowledgeTriple(NamedTuple):
    """A fact, field-compatible with langchain-community's ``KnowledgeTriple``."""

    subject: str
    predicate: str
    object_: str


class ExtractedTriple(BaseModel):
    subject: str = Field(description="canonical name of the subject entity")
    relation: str = Field(description="snake_case relation, e.g. lives_in")
    object: str = Field(description="canonical name of the object entity or value")


class TripleExtraction(BaseModel):
    triples: list[ExtractedTriple]


class EntityNames(BaseModel):
    entities: list[str]


@dataclass(frozen=True)
class Node:
    """One row of ``graph_nodes``."""

    key: str
    name: str
    type: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Edge:
    """One row of ``graph_edges``, with the display names of its ends."""

    id: str
    source: str
    relation: str
    target: str
    source_name: str
    target_name: str
    weight: float = 1.0
    properties: dict[str, Any] = field(default_factory=dict)
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    source_session: str | None = None
    source_seq: int | None = None

    def as_text(self) -> str:
        """``"Alice lives in Rome"``."""
        return f"{self.source_name} {self.relation.replace('_', ' ')} {self.target_name}"

    def as_triple(self) -> KnowledgeTriple:
        return KnowledgeTriple(self.source_name, self.relation, self.target_name)


@dataclass(frozen=True)
class Subgraph:
    """Nodes around a center (with their distance) and the edges between them."""

    nodes: list[tuple[Node, int]]
    edges: list[Edge]


# -- query builders (pure) ------------------------------------------------------------
# Templates are literals composed with dialects.compose (the direction join, the valid-time
# condition, dialect.unnest); values are always parameters.

_VALID = SQL("e.valid_from <= ? AND (e.valid_to IS NULL OR e.valid_to > ?)")

_EDGE_SELECT = SQL(
    "SELECT e.id, e.source, e.relation, e.target, CAST(s.name AS text), CAST(t.name AS text), e.weight, "
    "CAST(e.properties AS text), e.valid_from, e.valid_to, e.source_session, e.source_seq "
    "FROM {graph_edges} e "
    "JOIN {graph_nodes} s ON s.user_id = e.user_id AND s.graph = e.graph AND s.key = e.source "
    "JOIN {graph_nodes} t ON t.user_id = e.user_id AND t.graph = e.graph AND t.key = e.target "
)
#: Edges in time: by start, then (equal starts: two writes in one stored millisecond on
#: SQLite) the closed before the open and the earlier closed first, so that a history
#: reads as the chain it is.
_EDGE_ORDER = SQL(
    "ORDER BY e.valid_from, e.valid_to IS NULL, e.valid_to, e.source, e.relation, e.target, e.id"
)
_UNNEST_K = Unnest([("k", "text")])

_STEP = {
    "out": (SQL("e.source = w.node"), SQL("e.target")),
    "in": (SQL("e.target = w.node"), SQL("e.source")),
    "both": (
        SQL("(e.source = w.node OR e.target = w.node)"),
        SQL("CASE WHEN e.source = w.node THEN e.target ELSE e.source END"),
    ),
}


def _walk_cte(direction: Direction) -> Composed:
    join, nxt = _STEP[direction]
    return SQL(
        "WITH RECURSIVE walk(node, depth) AS (SELECT n.key, 0 FROM {graph_nodes} n "
        "WHERE n.user_id = ? AND n.graph = ? AND n.key = ? UNION "
        "SELECT {nxt}, w.depth + 1 FROM walk w JOIN {graph_edges} e ON e.user_id = ? AND e.graph = ? AND {join} "
        "WHERE w.depth < ? AND {valid}) "
    ).format(nxt=nxt, join=join, valid=_VALID)


def neighbors_query(
    user_id: str, graph: str, key: str, depth: int, at: Any, direction: Direction
) -> Query:
    """Nodes within ``depth`` hops of ``key`` (itself at 0) with their distance. The walk
    starts from the node row (not a parameter) so that, on Postgres, both terms of the
    recursive query have the ``"C"`` collation of the key columns."""
    return (
        SQL(
            "{walk}SELECT n.key, CAST(n.name AS text), n.type, CAST(n.properties AS text), d.depth "
            "FROM (SELECT node, min(depth) AS depth FROM walk GROUP BY node) d "
            "JOIN {graph_nodes} n ON n.user_id = ? AND n.graph = ? AND n.key = d.node ORDER BY d.depth, n.key"
        ).format(walk=_walk_cte(direction)),
        [user_id, graph, key, user_id, graph, depth, at, at, user_id, graph],
    )


def edges_among_query(
    dialect: Dialect, user_id: str, graph: str, keys: Sequence[str], at: Any
) -> Query:
    keyset = dialect.unnest_params(_UNNEST_K.columns, [(k,) for k in keys])
    return (
        SQL(
            "{select}WHERE e.user_id = ? AND e.graph = ? AND {valid} "
            "AND e.source IN (SELECT m.k FROM {keys}) AND e.target IN (SELECT m.k FROM {keys}) {order}"
        ).format(select=_EDGE_SELECT, valid=_VALID, keys=_UNNEST_K, order=_EDGE_ORDER),
        [user_id, graph, at, at, *keyset, *keyset],
    )


_PATH = SQL(
    "WITH RECURSIVE hop(a, nxt) AS ("
    "SELECT e.source, e.target FROM {graph_edges} e WHERE e.user_id = ? AND e.graph = ? AND {valid} "
    "UNION ALL SELECT e.target, e.source FROM {graph_edges} e WHERE e.user_id = ? AND e.graph = ? AND {valid}), "
    "walk(node, depth, path) AS (SELECT n.key, 0, ? || n.key || ? FROM {graph_nodes} n "
    "WHERE n.user_id = ? AND n.graph = ? AND n.key = ? UNION ALL "
    "SELECT x.nxt, w.depth + 1, w.path || x.nxt || ? FROM walk w JOIN hop x ON x.a = w.node "
    "WHERE w.depth < ? AND w.node <> ? AND w.path NOT LIKE '%' || ? || "
    "replace(replace(replace(x.nxt, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || ? || '%' ESCAPE '\\') "
    "SELECT path FROM walk WHERE node = ? ORDER BY depth, path LIMIT 1"
).format(valid=_VALID)


def path_query(user_id: str, graph: str, start: str, goal: str, max_depth: int, at: Any) -> Query:
    """The shortest path from ``start`` to ``goal`` (edges in either direction) as a
    path string ``SEP key SEP key ... SEP``; keys never contain SEP (``\\x1f``, which
    normalization removes as whitespace). Paths do not revisit a node."""
    sep = "\x1f"
    return (
        _PATH,
        [
            user_id,
            graph,
            at,
            at,
            user_id,
            graph,
            at,
            at,
            sep,
            sep,
            user_id,
            graph,
            start,
            sep,
            max_depth,
            goal,
            sep,
            sep,
            goal,
        ],
    )


def facts_query(user_id: str, graph: str, key: str, at: Any | None, limit: int | None) -> Query:
    """Edges touching ``key``: valid at ``at``, or all of them (history) for ``at=None``."""
    parts = [
        _EDGE_SELECT,
        SQL("WHERE e.user_id = ? AND e.graph = ? AND (e.source = ? OR e.target = ?) "),
    ]
    params: list[Any] = [user_id, graph, key, key]
    if at is not None:
        parts += [SQL("AND "), _VALID, SQL(" ")]
        params += [at, at]
    parts.append(_EDGE_ORDER)
    if limit is not None:
        parts.append(SQL(" LIMIT ?"))
        params.append(limit)
    return Composed(parts), params


_MENTIONED_FACTS = SQL(
    "WITH k AS (SELECT a.key FROM {entity_aliases} a WHERE a.user_id = ? AND a.kind = 'node' "
    "AND a.space = ? AND a.alias IN (SELECT m.alias FROM {names})) "
    "{select}WHERE e.user_id = ? AND e.graph = ? AND {valid} "
    "AND (e.source IN (SELECT key FROM k) OR e.target IN (SELECT key FROM k)) {order}"
).format(names=Unnest([("alias", "text")]), select=_EDGE_SELECT, valid=_VALID, order=_EDGE_ORDER)


def mentioned_facts_query(
    dialect: Dialect, user_id: str, graph: str, names: Sequence[str], at: Any, limit: int | None
) -> Query:
    """Edges valid at ``at`` touching a node any of ``names`` (normalized, encoded) names."""
    cols = [("alias", "text")]
    query: Composed = _MENTIONED_FACTS
    params: list[Any] = [
        user_id,
        graph,
        *dialect.unnest_params(cols, [(n,) for n in names]),
        user_id,
        graph,
        at,
        at,
    ]
    if limit is not None:
        query += SQL(" LIMIT ?")
        params.append(limit)
    return query, params


_ALL_EDGES = SQL("{select}WHERE e.user_id = ? AND e.graph = ? AND {valid} {order}").format(
    select=_EDGE_SELECT, valid=_VALID, order=_EDGE_ORDER
)


def all_edges_query(user_id: str, graph: str, at: Any) -> Query:
    return _ALL_EDGES, [user_id, graph, at, at]


def all_nodes_query(user_id: str, graph: str) -> Query:
    return (
        "SELECT key, CAST(name AS text), type, CAST(properties AS text) FROM {graph_nodes} WHERE user_id = ? AND graph = ? ORDER BY key",
        [user_id, graph],
    )


_OPEN_EDGES = SQL(
    "SELECT id, source, relation, target FROM {graph_edges} WHERE user_id = ? AND graph = ? "
    "AND valid_to IS NULL AND source IN (SELECT m.k FROM {keys})"
).format(keys=_UNNEST_K)


def open_edges_query(dialect: Dialect, user_id: str, graph: str, sources: Sequence[str]) -> Query:
    return (
        _OPEN_EDGES,
        [user_id, graph, *dialect.unnest_params(_UNNEST_K.columns, [(s,) for s in sources])],
    )


_NODE_COLS = [("key", "text"), ("name", "json"), ("type", "text")]
_ALIAS_COLS = [("alias", "text"), ("key", "text")]
_EDGE_COLS = [
    ("id", "text"),
    ("source", "text"),
    ("relation", "text"),
    ("target", "text"),
    ("weight", "double"),
    ("properties", "json"),
]
_UPSERT_NODES = SQL(
    "INSERT INTO {graph_nodes} AS g (user_id, graph, key, name, type) SELECT ?, ?, m.key, m.name, m.type FROM "
    "{rows} WHERE true ON CONFLICT (user_id, graph, key) DO UPDATE SET type = coalesce(g.type, excluded.type)"
).format(rows=Unnest(_NODE_COLS))
_NODE_ALIASES = SQL(
    "INSERT INTO {entity_aliases} (user_id, kind, space, alias, key) SELECT ?, 'node', ?, m.alias, m.key FROM "
    "{rows} WHERE true ON CONFLICT (user_id, kind, space, alias) DO NOTHING"
).format(rows=Unnest(_ALIAS_COLS))
_CLOSE_EDGES = SQL(
    "UPDATE {graph_edges} SET valid_to = ? WHERE user_id = ? AND graph = ? AND valid_to IS NULL "
    "AND id IN (SELECT m.id FROM {ids})"
).format(ids=Unnest([("id", "text")]))
_INSERT_EDGES = SQL(
    "INSERT INTO {graph_edges} (user_id, graph, id, source, relation, target, weight, properties, "
    "valid_from, source_session, source_seq) SELECT ?, ?, m.id, m.source, m.relation, m.target, m.weight, "
    "m.properties, ?, ?, ? FROM {rows}"
).format(rows=Unnest(_EDGE_COLS))


def write_statements(
    dialect: Dialect,
    user_id: str,
    graph: str,
    nodes: Sequence[tuple[str, str, str | None]],
    edges: Sequence[tuple[str, str, str, str, float, str]],
    close_ids: Sequence[str],
    at: Any,
    session: str | None,
    seq: int | None,
) -> list[Stmt]:
    """Upsert nodes (+ their name as alias), close replaced edges at ``at``, insert new
    edges valid from ``at``; all in one transaction. ``WHERE true`` lets SQLite parse
    ``INSERT ... SELECT ... ON CONFLICT``."""
    out = [
        Stmt(_UPSERT_NODES, [user_id, graph, *dialect.unnest_params(_NODE_COLS, nodes)]),
        Stmt(
            _NODE_ALIASES,
            [user_id, graph, *dialect.unnest_params(_ALIAS_COLS, [(k, k) for k, _, _ in nodes])],
        ),
    ]
    if close_ids:
        cols = [("id", "text")]
        out.append(
            Stmt(
                _CLOSE_EDGES,
                [at, user_id, graph, *dialect.unnest_params(cols, [(i,) for i in close_ids])],
            )
        )
    if edges:
        out.append(
            Stmt(
                _INSERT_EDGES,
                [user_id, graph, at, session, seq, *dialect.unnest_params(_EDGE_COLS, edges)],
            )
        )
    return out


_NAMES_OF = SQL(
    "SELECT key, CAST(name AS text) FROM {graph_nodes} WHERE user_id = ? AND graph = ? "
    "AND key IN (SELECT m.k FROM {keys})"
).format(keys=_UNNEST_K)


def _node(row: tuple[Any, ...]) -> Node:
    return Node(
        key=decode_key(row[0]), name=loads(row[1]), type=row[2], properties=loads(row[3]) or {}
    )


def _edge(dialect: Dialect, row: tuple[Any, ...]) -> Edge:
    return Edge(
        id=row[0],
        source=decode_key(row[1]),
        relation=decode_key(row[2]),
        target=decode_key(row[3]),
        source_name=loads(row[4]),
        target_name=loads(row[5]),
        weight=float(row[6]),
        properties=loads(row[7]) or {},
        valid_from=dialect.to_datetime(row[8]),
        valid_to=dialect.to_datetime(row[9]),
        source_session=decode_key(row[10]) if row[10] is not None else None,
        source_seq=int(row[11]) if row[11] is not None else None,
    )


def _check_time(value: datetime | None, what: str) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")
    return value


def _check_int(value: Any, what: str, low: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{what} must be an int >= {low}, got {value!r}")
    return value


TripleLike = KnowledgeTriple | tuple[str, str, str] | Sequence[str]


class GraphMemory:
    """A user's knowledge graph.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        llm: optional chat model, for :meth:`add_text`, :meth:`get_knowledge_triplets`
            and :meth:`get_current_entities`.
        user_id: the tenant.
        graph: a namespace of graphs (e.g. one per agent).
        single_valued: relations (normalized, e.g. ``lives_in``) a subject has one value
            of at a time (default :data:`DEFAULT_SINGLE_VALUED`).
        chat_history, k: as in ``ConversationKGMemory``: the last ``k`` exchanges of
            ``chat_history`` go with :meth:`get_knowledge_triplets` and
            :meth:`get_current_entities`, so "her" or "he" can be resolved.

    Concurrent writers: every add runs in ONE write transaction that resolves the names,
    locks each ``(user, graph, source, relation)`` it writes, reads the open edges and
    writes. On Postgres the lock is :meth:`~langchain_agentmem.Dialect.lock_keys` (an
    advisory lock held until commit), so writers of the same subject and relation run one
    after the other and a single-valued relation keeps exactly one open edge however many
    write at once; on SQLite write transactions are serialized already (one writer at a
    time). Each method has an ``a``-prefixed async form.

    Example:
        >>> from langchain_agentmem import connect
        >>> engine = connect("sqlite://"); _ = engine.migrate()
        >>> kg = GraphMemory(engine)
        >>> _ = kg.add_triples([("Alice", "knows", "Bob"), ("Bob", "knows", "Carol")])
        >>> [n.name for n in kg.shortest_path("alice", "carol")]
        ['Alice', 'Bob', 'Carol']
        >>> [(n.name, d) for n, d in kg.neighbors("Alice", depth=2)]
        [('Alice', 0), ('Bob', 1), ('Carol', 2)]
    """

    def __init__(
        self,
        engine: EngineLike,
        llm: BaseLanguageModel[Any] | Runnable[Any, Any] | None = None,
        *,
        user_id: str = "default",
        graph: str = "default",
        single_valued: Iterable[str] = DEFAULT_SINGLE_VALUED,
        chat_history: BaseChatMessageHistory | None = None,
        k: int = 2,
    ) -> None:
        engine = as_engine(engine)
        self.engine = engine
        self.llm = llm
        self.user_id = user_id
        self.graph = graph
        self.single_valued = frozenset(normalize_relation(r) for r in single_valued)
        if chat_history is not None and not isinstance(chat_history, BaseChatMessageHistory):
            raise TypeError(
                f"chat_history must be a BaseChatMessageHistory, got {type(chat_history).__name__}"
            )
        self.chat_history = chat_history
        self.k = _check_int(k, "k")
        self._uid = encode_key(user_id)
        self._graph = encode_key(graph)
        self._triples: Runnable[Any, TripleExtraction] | None = (
            structured(llm, TripleExtraction) if llm is not None else None
        )
        self._names: Runnable[Any, EntityNames] | None = (
            structured(llm, EntityNames) if llm is not None else None
        )

    @property
    def _dialect(self) -> Dialect:
        return self.engine.dialect

    def _ts(self, value: datetime) -> Any:
        return self._dialect.from_datetime(value)

    # -- bodies: statements of one transaction -------------------------------------------
    def _resolve(self, names: Sequence[str]) -> Body[dict[str, str]]:
        """Normalized name -> node key (the name itself when no alias is known)."""
        keys = sorted({normalize(n) for n in names})
        if not keys:
            return {}
        q = resolve_query(
            self._dialect, self._uid, self._graph, [encode_key(k) for k in keys], kind="node"
        )
        rows = yield Stmt(*q, fetch=True)
        found = {decode_key(a): decode_key(k) for a, k in rows}
        return {k: found.get(k, k) for k in keys}

    def _key_of(self, name: str) -> Body[str]:
        resolved = yield from self._resolve([name])
        return resolved[normalize(name)]

    def _names_of(self, keys: Sequence[str]) -> Body[dict[str, str]]:
        d = self._dialect
        params = [self._uid, self._graph]
        params += d.unnest_params(_UNNEST_K.columns, [(encode_key(k),) for k in keys])
        rows = yield Stmt(_NAMES_OF, params, fetch=True)
        return {decode_key(k): loads(n) for k, n in rows}

    def _add(
        self,
        triples: Sequence[TripleLike],
        weight: float,
        properties: dict[str, Any] | None,
        at: datetime | None,
        session_id: str | None,
        seq: int | None,
    ) -> Body[list[Edge]]:
        """Check the arguments now, then return the body that writes them."""
        if at is not None:
            _check_time(at, "at")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool):
            raise TypeError(f"weight must be a number, got {weight!r}")
        if properties is not None and not isinstance(properties, dict):
            raise TypeError(f"properties must be a dict, got {type(properties).__name__}")
        if seq is not None:
            _check_int(seq, "seq")
        parsed: list[tuple[str, str, str]] = []
        for t in triples:
            if isinstance(t, str) or len(t) != 3 or not all(isinstance(x, str) for x in t):
                raise TypeError(
                    f"expected a (subject, relation, object) triple of str, got {t!r:.80}"
                )
            s, r, o = t
            normalize(s), normalize(o)
            parsed.append((s.strip(), normalize_relation(r), o.strip()))
        return self._add_body(parsed, float(weight), properties, at, session_id, seq)

    def _add_body(
        self,
        parsed: list[tuple[str, str, str]],
        weight: float,
        properties: dict[str, Any] | None,
        at: datetime | None,
        session_id: str | None,
        seq: int | None,
    ) -> Body[list[Edge]]:
        """Resolve, lock, read the open edges, decide and write: one transaction, so that
        no other writer of the same ``(source, relation)`` runs in between (see the class
        docstring). "Now" (``at=None``) is read once the lock is held, so the edges of
        writers that waited for each other follow each other in time too."""
        if not parsed:
            return []
        d = self._dialect
        keys = yield from self._resolve([n for s, _, o in parsed for n in (s, o)])
        names: dict[str, str] = {}
        for s, _, o in parsed:
            names.setdefault(keys[normalize(s)], s)
            names.setdefault(keys[normalize(o)], o)
        lock = d.lock_keys(
            [
                ("graph_edges", self._uid, self._graph, encode_key(keys[normalize(s)]), r)
                for s, r, _ in parsed
            ]
        )
        if lock is not None:
            yield lock
        when = _check_time(at, "at")
        sources = sorted({keys[normalize(s)] for s, _, _ in parsed})
        open_rows = yield Stmt(
            *open_edges_query(d, self._uid, self._graph, [encode_key(k) for k in sources]),
            fetch=True,
        )
        open_edges = [
            (r[0], decode_key(r[1]), decode_key(r[2]), decode_key(r[3])) for r in open_rows
        ]
        close: list[str] = []
        new: dict[tuple[str, str, str], str] = {}
        props = dumps(properties or {})
        for s, r, o in parsed:
            sk, ok = keys[normalize(s)], keys[normalize(o)]
            existing = [e for e in open_edges if e[1] == sk and e[2] == r and e[0] not in close]
            if any(e[3] == ok for e in existing) or (sk, r, ok) in new:
                continue  # already true: keep the original edge and its valid_from
            if r in self.single_valued:
                close.extend(e[0] for e in existing)
                for triple in [t for t in new if t[0] == sk and t[1] == r]:
                    del new[triple]  # a later fact in the same batch wins
            new[(sk, r, ok)] = uuid.uuid4().hex
        # Rows in key order: concurrent writers of overlapping nodes lock them in one order.
        node_rows = sorted((encode_key(k), dumps(n), None) for k, n in names.items())
        edge_rows = [
            (i, encode_key(s), encode_key(r), encode_key(o), weight, props)
            for (s, r, o), i in new.items()
        ]
        session = encode_key(session_id) if session_id is not None else None
        writes = write_statements(
            d, self._uid, self._graph, node_rows, edge_rows, close, self._ts(when), session, seq
        )
        for stmt in writes:  # noqa: UP028 (a list cannot receive the results yield from sends)
            yield stmt
        stored_names = yield from self._names_of(list(names))
        return [
            Edge(
                id=i,
                source=s,
                relation=r,
                target=o,
                source_name=stored_names.get(s, names[s]),
                target_name=stored_names.get(o, names[o]),
                weight=weight,
                properties=properties or {},
                valid_from=when,
                valid_to=None,
                source_session=session_id,
                source_seq=seq,
            )
            for (s, r, o), i in new.items()
        ]

    def _neighbors(
        self, name: str, depth: int, as_of: datetime | None, direction: Direction
    ) -> Body[list[tuple[Node, int]]]:
        _check_int(depth, "depth")
        if direction not in _STEP:
            raise ValueError(f"direction must be 'out', 'in' or 'both', got {direction!r}")
        at = self._ts(_check_time(as_of, "as_of"))
        key = yield from self._key_of(name)
        rows = yield Stmt(
            *neighbors_query(self._uid, self._graph, encode_key(key), depth, at, direction),
            fetch=True,
        )
        return [(_node(r), int(r[4])) for r in rows]

    def _facts(
        self, name: str, as_of: datetime | None, history: bool, limit: int | None
    ) -> Body[list[Edge]]:
        if limit is not None:
            _check_int(limit, "limit")
        at = None if history else self._ts(_check_time(as_of, "as_of"))
        key = yield from self._key_of(name)
        rows = yield Stmt(
            *facts_query(self._uid, self._graph, encode_key(key), at, limit), fetch=True
        )
        return [_edge(self._dialect, r) for r in rows]

    def _relevant(self, text: str, as_of: datetime | None, limit: int | None) -> Body[list[Edge]]:
        """Facts about the nodes ``text`` names (shared with the agent middleware)."""
        if not isinstance(text, str):
            raise TypeError(f"expected text as str, got {type(text).__name__}")
        names = candidate_names(text)
        if not names:
            return []
        if limit is not None:
            _check_int(limit, "limit")
        at = self._ts(_check_time(as_of, "as_of"))
        q = mentioned_facts_query(
            self._dialect, self._uid, self._graph, [encode_key(n) for n in names], at, limit
        )
        rows = yield Stmt(*q, fetch=True)
        return [_edge(self._dialect, r) for r in rows]

    def _export(self, as_of: datetime | None) -> Body[tuple[list[Node], list[Edge]]]:
        at = self._ts(_check_time(as_of, "as_of"))
        nodes = yield Stmt(*all_nodes_query(self._uid, self._graph), fetch=True)
        edges = yield Stmt(*all_edges_query(self._uid, self._graph, at), fetch=True)
        return [_node(r) for r in nodes], [_edge(self._dialect, r) for r in edges]

    # -- plans shared by several methods -------------------------------------------------
    def _extract(self, text: str | Sequence[BaseMessage]) -> Plan[list[KnowledgeTriple]]:
        """The triples of ``text``: one model call (after the recent conversation, when
        there is a ``chat_history``)."""
        if self._triples is None:
            raise ValueError("extracting triples needs an llm: GraphMemory(engine, llm, ...)")
        body = _text_of_turn(text)
        answer: TripleExtraction = yield Model(
            self._triples, [SystemMessage(TRIPLE_SYSTEM_PROMPT), HumanMessage(body)]
        )
        return _triples_of(answer)

    def _add_text(
        self,
        text: str | Sequence[BaseMessage],
        session_id: str | None,
        seq: int | None,
        at: datetime | None,
    ) -> Plan[list[Edge]]:
        triples = yield from self._extract(text)
        body = self._add(triples, 1.0, None, at, session_id, seq)
        return (yield Atomic(body, pipeline=True))

    def _with_recent(self, text: str) -> Plan[str]:
        """``text`` after the last ``k`` exchanges of ``chat_history``, when there is one."""
        if self.chat_history is None or self.k == 0:
            return text
        context: str = yield Model(_recent_conversation(self.chat_history, self.k), None)
        return _with_context(text, context)

    # -- writes -------------------------------------------------------------------------
    @dual
    def add_triple(
        self,
        subject: str,
        relation: str,
        object: str,  # noqa: A002
        *,
        weight: float = 1.0,
        properties: dict[str, Any] | None = None,
        at: datetime | None = None,
        session_id: str | None = None,
        seq: int | None = None,
    ) -> Plan[list[Edge]]:
        """Add one fact; returns the edge created ([] when the same fact is already true).
        On a single-valued relation, the subject's other open edge is closed at ``at``
        (default now). ``session_id``/``seq`` record the event the fact came from."""
        body = self._add([(subject, relation, object)], weight, properties, at, session_id, seq)
        return (yield Atomic(body, pipeline=True))

    aadd_triple = add_triple.async_

    @dual
    def add_triples(
        self,
        triples: Sequence[TripleLike],
        *,
        weight: float = 1.0,
        properties: dict[str, Any] | None = None,
        at: datetime | None = None,
        session_id: str | None = None,
        seq: int | None = None,
    ) -> Plan[list[Edge]]:
        """Add many facts in one transaction (see :meth:`add_triple`)."""
        body = self._add(triples, weight, properties, at, session_id, seq)
        return (yield Atomic(body, pipeline=True))

    aadd_triples = add_triples.async_

    @dual
    def add_text(
        self,
        text: str | Sequence[BaseMessage],
        *,
        session_id: str | None = None,
        seq: int | None = None,
        at: datetime | None = None,
    ) -> Plan[list[Edge]]:
        """Extract the facts of ``text`` (or a turn's messages) with the model (one call)
        and add them."""
        return (yield from self._add_text(text, session_id, seq, at))

    aadd_text = add_text.async_

    @dual
    def add_alias(self, name: str, alias: str) -> Plan[bool]:
        """Make ``alias`` resolve to the node ``name`` names; False if the alias already
        names a node."""

        def body() -> Body[bool]:
            key = yield from self._key_of(name)
            exists = yield from self._names_of([key])
            if key not in exists:
                raise KeyError(f"no node named {name!r} in graph {self.graph!r}")
            q = write_alias(
                self._dialect, self._uid, self._graph, encode_key(normalize(alias)), encode_key(key)
            )
            return bool((yield Stmt(*q)))

        return (yield Atomic(body()))

    aadd_alias = add_alias.async_

    @dual
    def delete_node(self, name: str) -> Plan[None]:
        """Delete a node, its edges (history included) and its aliases."""

        def body() -> Body[None]:
            key = encode_key((yield from self._key_of(name)))
            yield Stmt(
                "DELETE FROM {graph_edges} WHERE user_id = ? AND graph = ? AND (source = ? OR target = ?)",
                [self._uid, self._graph, key, key],
            )
            yield Stmt(
                "DELETE FROM {graph_nodes} WHERE user_id = ? AND graph = ? AND key = ?",
                [self._uid, self._graph, key],
            )
            yield Stmt(
                "DELETE FROM {entity_aliases} WHERE user_id = ? AND kind = 'node' AND space = ? AND key = ?",
                [self._uid, self._graph, key],
            )

        yield Atomic(body())

    adelete_node = delete_node.async_

    @dual
    def clear(self) -> Plan[None]:
        """Delete the whole graph of this user."""
        yield Sql(
            [
                Stmt(
                    "DELETE FROM {graph_edges} WHERE user_id = ? AND graph = ?",
                    [self._uid, self._graph],
                ),
                Stmt(
                    "DELETE FROM {graph_nodes} WHERE user_id = ? AND graph = ?",
                    [self._uid, self._graph],
                ),
                Stmt(
                    "DELETE FROM {entity_aliases} WHERE user_id = ? AND kind = 'node' AND space = ?",
                    [self._uid, self._graph],
                ),
            ]
        )

    aclear = clear.async_

    # -- reads --------------------------------------------------------------------------
    @dual
    def neighbors(
        self,
        name: str,
        depth: int = 1,
        *,
        as_of: datetime | None = None,
        direction: Direction = "both",
    ) -> Plan[list[tuple[Node, int]]]:
        """Nodes within ``depth`` hops of ``name`` (itself at distance 0), nearest first,
        following edges valid now (or ``as_of``); ``direction``: ``out``, ``in``, ``both``."""
        return (yield Atomic(self._neighbors(name, depth, as_of, direction), readonly=True))

    aneighbors = neighbors.async_

    @dual
    def subgraph(
        self, name: str, depth: int = 1, *, as_of: datetime | None = None
    ) -> Plan[Subgraph]:
        """The nodes within ``depth`` hops of ``name`` and the edges between them."""

        def body() -> Body[Subgraph]:
            nodes = yield from self._neighbors(name, depth, as_of, "both")
            if not nodes:
                return Subgraph([], [])
            at = self._ts(_check_time(as_of, "as_of"))
            q = edges_among_query(
                self._dialect, self._uid, self._graph, [encode_key(n.key) for n, _ in nodes], at
            )
            rows = yield Stmt(*q, fetch=True)
            return Subgraph(nodes, [_edge(self._dialect, r) for r in rows])

        return (yield Atomic(body(), readonly=True))

    asubgraph = subgraph.async_

    @dual
    def shortest_path(
        self, a: str, b: str, *, max_depth: int = 6, as_of: datetime | None = None
    ) -> Plan[list[Node] | None]:
        """A shortest path from ``a`` to ``b`` (edges either way), as nodes; None if
        there is none within ``max_depth`` hops."""
        _check_int(max_depth, "max_depth")
        at = self._ts(_check_time(as_of, "as_of"))

        def body() -> Body[list[Node] | None]:
            keys = yield from self._resolve([a, b])
            start, goal = keys[normalize(a)], keys[normalize(b)]
            rows = yield Stmt(
                *path_query(
                    self._uid, self._graph, encode_key(start), encode_key(goal), max_depth, at
                ),
                fetch=True,
            )
            if not rows:
                return None
            path = [decode_key(k) for k in rows[0][0].split("\x1f") if k]
            found = yield from self._names_of(path)
            if len(found) != len(set(path)):
                return None  # an end that is not a node
            return [Node(key=k, name=found[k]) for k in path]

        return (yield Atomic(body(), readonly=True))

    ashortest_path = shortest_path.async_

    @dual
    def facts(
        self,
        name: str,
        *,
        as_of: datetime | None = None,
        history: bool = False,
        limit: int | None = None,
    ) -> Plan[list[Edge]]:
        """Edges touching ``name`` valid now (or ``as_of``); ``history=True``: all of
        them, closed ones included, oldest first."""
        return (yield Atomic(self._facts(name, as_of, history, limit), readonly=True))

    afacts = facts.async_

    @dual
    def facts_text(self, name: str, *, as_of: datetime | None = None) -> Plan[str]:
        """The facts about ``name`` as lines of text for a prompt."""
        edges = yield Atomic(self._facts(name, as_of, False, None), readonly=True)
        return "\n".join(e.as_text() for e in edges)

    afacts_text = facts_text.async_

    @dual
    def relevant_facts(
        self, text: str, *, as_of: datetime | None = None, limit: int | None = 20
    ) -> Plan[list[Edge]]:
        """Facts about the nodes ``text`` mentions by name or alias (no model call)."""
        return (yield Atomic(self._relevant(text, as_of, limit), readonly=True))

    arelevant_facts = relevant_facts.async_

    @dual
    def edges(self, *, as_of: datetime | None = None) -> Plan[list[Edge]]:
        """Every edge valid now (or ``as_of``), oldest first."""
        _, edges = yield Atomic(self._export(as_of), readonly=True)
        return edges

    aedges = edges.async_

    @dual
    def to_networkx(self, *, as_of: datetime | None = None) -> Plan[Any]:
        """The graph valid now (or ``as_of``) as a ``networkx.MultiDiGraph`` (nodes keyed
        by normalized name, edges keyed by id); needs ``pip install networkx``."""
        return _to_networkx(*(yield Atomic(self._export(as_of), readonly=True)))

    ato_networkx = to_networkx.async_

    # -- ConversationKGMemory compatibility -------------------------------------------------
    @dual
    def get_knowledge_triplets(self, input_string: str) -> Plan[list[KnowledgeTriple]]:
        """The triples the model finds in ``input_string`` (one call; not stored, as in
        the legacy class: use :meth:`add_text` to store them)."""
        if self._triples is None:
            raise ValueError("extracting triples needs an llm: GraphMemory(engine, llm, ...)")
        body = yield from self._with_recent(_text_of_turn(input_string))
        answer: TripleExtraction = yield Model(
            self._triples, [SystemMessage(TRIPLE_SYSTEM_PROMPT), HumanMessage(body)]
        )
        return _triples_of(answer)

    aget_knowledge_triplets = get_knowledge_triplets.async_

    @dual
    def get_current_entities(self, input_string: str) -> Plan[list[str]]:
        """The entity names the model finds in ``input_string`` (one call)."""
        if self._names is None:
            raise ValueError("get_current_entities needs an llm: GraphMemory(engine, llm, ...)")
        body = yield from self._with_recent(_text_of_turn(input_string))
        answer: EntityNames = yield Model(
            self._names, [SystemMessage(ENTITY_SYSTEM_PROMPT), HumanMessage(body)]
        )
        return [n.strip() for n in answer.entities if n.strip()]

    aget_current_entities = get_current_entities.async_

    def __repr__(self) -> str:
        return f"GraphMemory(user_id={self.user_id!r}, graph={self.graph!r})"


def _triples_of(answer: TripleExtraction) -> list[KnowledgeTriple]:
    return [
        KnowledgeTriple(t.subject.strip(), t.relation.strip(), t.object.strip())
        for t in answer.triples
        if t.subject.strip() and t.relation.strip() and t.object.strip()
    ]


def _recent_conversation(history: BaseChatMessageHistory, k: int) -> Runnable[Any, str]:
    """A runnable reading the last ``k`` exchanges of ``history`` as text: the one step
    through which a plan reads any ``BaseChatMessageHistory`` (``messages`` when run sync,
    ``aget_messages`` when run async)."""

    def read(_: Any) -> str:
        return get_buffer_string(history.messages[-2 * k :])

    async def aread(_: Any) -> str:
        return get_buffer_string((await history.aget_messages())[-2 * k :])

    return RunnableLambda(read, afunc=aread, name="recent_conversation")


def _with_context(body: str, context: str) -> str:
    """The text to extract from, after the recent conversation (for coreference: "her",
    "he") when there is one, as the legacy ConversationKGMemory prompts do."""
    if not context:
        return body
    return f"Conversation history (for reference only):\n{context}\n\nExtract from this text only:\n{body}"


def write_alias(dialect: Dialect, user_id: str, graph: str, alias: str, key: str) -> Query:
    return (
        "INSERT INTO {entity_aliases} (user_id, kind, space, alias, key) VALUES (?, 'node', ?, ?, ?) "
        "ON CONFLICT (user_id, kind, space, alias) DO NOTHING",
        [user_id, graph, alias, key],
    )


def _to_networkx(nodes: list[Node], edges: list[Edge]) -> Any:
    try:
        import networkx as nx
    except ImportError as exc:  # pragma: no cover - networkx is in the test extra
        raise ImportError(
            "to_networkx needs networkx: pip install 'langchain-agentmem[graph]'"
        ) from exc
    g = nx.MultiDiGraph()
    for n in nodes:
        g.add_node(n.key, name=n.name, type=n.type, **n.properties)
    for e in edges:
        g.add_edge(
            e.source,
            e.target,
            key=e.id,
            relation=e.relation,
            weight=e.weight,
            valid_from=e.valid_from,
            valid_to=e.valid_to,
            source_session=e.source_session,
            source_seq=e.source_seq,
            **e.properties,
        )
    return g
