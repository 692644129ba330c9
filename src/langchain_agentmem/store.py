"""LangGraph long-term memory on the shared schema: :class:`LangGraphStore`.

A LangGraph ``BaseStore`` (``get``, ``put``, ``delete``, ``search``, ``list_namespaces``
and their async forms, all through ``batch`` / ``abatch``) over ``store_items`` and
``store_vectors``, on Postgres and SQLite.

* Namespace prefixes match whole labels literally (range conditions on the encoded
  namespace, no LIKE patterns): ``("user_1",)`` never matches ``("userX1",)`` or
  ``("user_10",)``.
* Filters run in SQL (:func:`~langchain_agentmem._search.filters.compile_store_filter`,
  compiled once per search) and compare numbers as numbers: ``{"age": {"$gte": 10}}``
  does not match 9, nor the string ``"9"``.
* Semantic search (``index={"dims", "embed", "fields"}``) goes through the one vector
  index (:mod:`langchain_agentmem._search.vector_index`): a namespace prefix (with its
  filter) of up to 1,000 vectors, or under a tenth of the store's, is searched exactly
  (the true top k); a larger one through an HNSW index (Postgres, pgvector, when built:
  ``hnsw=`` or :meth:`LangGraphStore.create_index`), exactly again when the index leaves
  fewer than asked. On SQLite the search is always exact.
* TTL (``ttl={"default_ttl", "refresh_on_read", "sweep_interval_minutes"}``): expired
  items are not returned (unless ``omit_expired`` is ``False``) and :meth:`sweep_ttl`
  or the sweeper thread deletes them.

Example:
    >>> from langchain_agentmem import LangGraphStore, connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> store = LangGraphStore(engine)
    >>> store.put(("alice", "memories"), "m1", {"text": "likes tea", "stars": 9})
    >>> store.get(("alice", "memories"), "m1").value
    {'text': 'likes tea', 'stars': 9}
    >>> [i.key for i in store.search(("alice",), filter={"stars": {"$gte": 10}})]
    []
    >>> store.list_namespaces(prefix=("alice",))
    [('alice', 'memories')]
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

from ._core.plan import Atomic, Body, Copy, Embed, Many, Plan, Stmt, dual
from ._encoding.json import dumps, loads
from ._encoding.keys import check_key_size, decode_key, encode_key
from ._entry import ConnStringEntry
from ._search.filters import Fragment, compile_store_filter
from ._search.vector_index import (
    HNSWSettings,
    SearchQuery,
    SearchSettings,
    VectorIndex,
    describe,
    search_settings,
)
from .dialects import SQL, Dialect, Ident, Template, Unnest
from .dialects.statements import in_key_order
from .engine import EngineLike, as_engine

__all__ = ["LangGraphStore"]

logger = logging.getLogger(__name__)

Query = tuple[Template, list[Any]]

_ITEM_NAMES = ("namespace", "key", "value", "created_at", "updated_at", "ttl_minutes")
# The value as its stored text, decoded by the package's codec (a driver's JSON parser
# would join a surrogate pair written as two code points into one character).
_ITEM_COLS = SQL(", ").join(
    SQL("CAST({} AS TEXT)").format(Ident("i", c)) if c == "value" else Ident("i", c)
    for c in _ITEM_NAMES
)
_KEY_COLS = [("ns", "text"), ("k", "text")]
_KEYS = Unnest(_KEY_COLS)


# -- namespaces ------------------------------------------------------------------------


def encode_namespace(namespace: Sequence[str]) -> str:
    """The stored form of a namespace: encoded labels joined by ``.`` (no label has one).

    Example:
        >>> encode_namespace(("users", "a\\\\b"))
        'users.a\\\\\\\\b'
    """
    return check_key_size(".".join(encode_key(label) for label in namespace))


def decode_namespace(text: str) -> tuple[str, ...]:
    return tuple(decode_key(label) for label in text.split("."))


def prefix_condition(column: str, prefix: Sequence[str]) -> tuple[str, list[Any]]:
    """Rows whose namespace is ``prefix`` or lies under it, label by label, literally:
    equal, or in the range [``p.``, ``p/``) (``/`` follows ``.``). Written as the range
    [``p``, ``p/``) (which an index serves) and that exact test."""
    if not prefix:
        return "1 = 1", []
    text = encode_namespace(prefix)
    # One index range [p, p/) for the planner, then the exact test (p itself, or p.*).
    return (
        f"({column} >= ? AND {column} < ? AND ({column} = ? OR {column} >= ?))",
        [text, text + "/", text, text + "."],
    )


def namespace_matches(namespace: tuple[str, ...], condition: MatchCondition) -> bool:
    """LangGraph's namespace matching: ``*`` stands for any one label."""
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise ValueError(
            f"unsupported match_type {condition.match_type!r}: expected 'prefix' or 'suffix'"
        )
    return all(p == "*" or n == p for n, p in pairs)


# -- query builders (pure) -------------------------------------------------------------


_INDEX_KEYS = ("dims", "embed", "fields", "distance_type", "ann_index_config")
_DISTANCES = ("cosine", "l2", "inner_product")


def index_options(index: Mapping[str, Any]) -> tuple[str, HNSWSettings | None]:
    """The distance and the HNSW settings named by an ``index`` config in the form of
    LangGraph's ``PostgresStore`` (``distance_type``, ``ann_index_config``); what this
    store cannot honour raises :class:`ValueError` instead of being ignored.

    Example:
        >>> index_options({"dims": 2, "embed": None, "distance_type": "l2"})
        ('l2', None)
        >>> index_options({"dims": 2, "embed": None, "ann_index_config": {"kind": "hnsw", "m": 8}})
        ('cosine', {'m': 8})
        >>> index_options({"dims": 2, "embed": None, "ann_index_config": {"kind": "ivfflat"}})
        Traceback (most recent call last):
        ...
        ValueError: index ann_index_config kind 'ivfflat' is not supported: expected 'hnsw' (pgvector HNSW; exact search on SQLite)
    """
    unknown = sorted(set(index) - set(_INDEX_KEYS))
    if unknown:
        raise ValueError(
            f"unknown index key(s) {', '.join(map(repr, unknown))}: expected {', '.join(_INDEX_KEYS)}"
        )
    distance = index.get("distance_type", "cosine")
    if distance not in _DISTANCES:
        raise ValueError(
            f"index distance_type must be one of {', '.join(map(repr, _DISTANCES))}, got {distance!r}"
        )
    ann = index.get("ann_index_config")
    if ann is None:
        return distance, None
    if not isinstance(ann, dict):
        raise ValueError(f"index ann_index_config must be a dict, got {ann!r}")
    kind = ann.get("kind", "hnsw")
    if kind != "hnsw":
        raise ValueError(
            f"index ann_index_config kind {kind!r} is not supported: expected 'hnsw' "
            "(pgvector HNSW; exact search on SQLite)"
        )
    vector_type = ann.get("vector_type", "vector")
    if vector_type != "vector":
        raise ValueError(
            f"index ann_index_config vector_type {vector_type!r} is not supported: expected "
            "'vector' (the index casts to halfvec by itself above 2,000 dimensions)"
        )
    hnsw: dict[str, int] = {}
    for key, value in ann.items():
        if key in ("kind", "vector_type"):
            continue
        if key not in ("m", "ef_construction"):
            raise ValueError(
                f"unknown ann_index_config key {key!r} for kind 'hnsw': expected m, ef_construction"
            )
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"ann_index_config {key} must be a positive int, got {value!r}")
        hnsw[key] = value
    return distance, hnsw  # type: ignore[return-value]


_DISTANCE_TAGS = {"cosine": "", "l2": "_l2", "inner_product": "_ip"}


def _score(distance: str, value: Any) -> float:
    """A hit's score as LangGraph's ``PostgresStore`` reports it: ``1 - d`` for cosine,
    ``-d`` for l2 and for inner product (pgvector's ``<#>`` is the negated product, so
    the score is the product itself). Higher is nearer for each."""
    d = float(value)
    return 1.0 - d if distance == "cosine" else -d


class _Config:
    """What a store needs from its settings, prepared once."""

    def __init__(self, index: IndexConfig | None, ttl: TTLConfig | None) -> None:
        self.index = index
        self.ttl = ttl
        self.fields: list[tuple[str, Any]] = []
        self.dims = 0
        self.distance = "cosine"
        self.ann: HNSWSettings | None = None
        if index is not None:
            if not isinstance(index, dict) or "dims" not in index or "embed" not in index:
                raise ValueError(
                    f'index must be a dict with "dims" and "embed" (and optional "fields"), got {index!r}'
                )
            dims = index["dims"]
            if not isinstance(dims, int) or isinstance(dims, bool) or dims <= 0:
                raise ValueError(f"index dims must be a positive int, got {dims!r}")
            self.dims = dims
            fields = index.get("fields") or ["$"]
            self.fields = [(f, "$" if f == "$" else tokenize_path(f)) for f in fields]
            self.distance, self.ann = index_options(index)
        self.omit_expired = True if ttl is None else bool(ttl.get("omit_expired", True))


_LIVE = SQL(" AND (i.expires_at IS NULL OR i.expires_at > {now})")


def _expiry(omit_expired: bool) -> SQL:
    return _LIVE if omit_expired else SQL("")


def get_query(
    dialect: Dialect, uid: str, keys: Sequence[tuple[str, str]], omit_expired: bool
) -> Query:
    query = SQL(
        "SELECT {cols} FROM {store_items} i JOIN {keys} "
        "ON i.namespace = m.ns AND i.key = m.k WHERE i.user_id = ?{live}"
    ).format(cols=_ITEM_COLS, keys=_KEYS, live=_expiry(omit_expired))
    return query, [*dialect.unnest_params(_KEY_COLS, keys), uid]


def refresh_query(dialect: Dialect, uid: str, keys: Sequence[tuple[str, str]]) -> Query:
    """Restart the TTL clock of the items ``keys`` that have one."""
    return (
        SQL(
            "UPDATE {store_items} SET expires_at = {expires} WHERE user_id = ? AND ttl_minutes "
            "IS NOT NULL AND (namespace, key) IN (SELECT ns, k FROM {keys})"
        ).format(expires=SQL(dialect.now_plus_minutes("ttl_minutes")), keys=_KEYS),
        [uid, *dialect.unnest_params(_KEY_COLS, keys)],
    )


_PUT_COLS = [("ns", "text"), ("k", "text"), ("value", "json"), ("ttl", "double")]
_PUT_ROWS = Unnest(_PUT_COLS)


def put_queries(
    dialect: Dialect,
    uid: str,
    deletes: Sequence[tuple[str, str]],
    upserts: Sequence[tuple[str, str, str, float | None]],
    reindex: Sequence[tuple[str, str]],
    vectors: Sequence[tuple[str, str, str, Sequence[float]]],
) -> tuple[list[Query], list[tuple[str, str, str, str, Any]]]:
    """Statements of a batch of puts: one upsert of every item, the deletes, the removal
    of the vectors of re-indexed items; and the rows of the new vectors (see
    :data:`VECTOR_COPY`).

    Every item row is locked in key order (``deletes`` and ``upserts`` come sorted), in
    one pass, so that concurrent batches of the same keys cannot deadlock: a batch that
    both writes and deletes writes its deleted keys too (then deletes them), and a batch
    that only deletes locks its rows in key order first."""
    queries: list[Query] = []
    written = list(upserts)
    if deletes and upserts:
        written = in_key_order(
            [*upserts, *((ns, k, "null", None) for ns, k in deletes)], key=lambda r: (r[0], r[1])
        )
    if written:
        queries.append(
            (
                SQL(
                    "INSERT INTO {store_items} (user_id, namespace, key, value, expires_at, ttl_minutes) "
                    "SELECT ?, m.ns, m.k, m.value, {expires}, m.ttl FROM {rows} "
                    "WHERE true ORDER BY m.ord ON CONFLICT (user_id, namespace, key) DO UPDATE SET value = excluded.value, "
                    "updated_at = {now}, expires_at = excluded.expires_at, ttl_minutes = excluded.ttl_minutes"
                ).format(expires=SQL(dialect.now_plus_minutes("m.ttl")), rows=_PUT_ROWS),
                [uid, *dialect.unnest_params(_PUT_COLS, written)],
            )
        )
    if deletes:
        queries.append(
            (
                SQL(
                    "DELETE FROM {store_items} WHERE user_id = ? AND (namespace, key) IN (SELECT s.namespace, "
                    "s.key FROM {store_items} s JOIN {keys} ON s.namespace = m.ns AND s.key = m.k "
                    "WHERE s.user_id = ? ORDER BY s.namespace, s.key {for_update})"
                ).format(keys=_KEYS),
                [uid, *dialect.unnest_params(_KEY_COLS, deletes), uid],
            )
        )
    if reindex:
        queries.append(
            (
                SQL(
                    "DELETE FROM {store_vectors} WHERE user_id = ? AND (namespace, key) IN "
                    "(SELECT ns, k FROM {keys})"
                ).format(keys=_KEYS),
                [uid, *dialect.unnest_params(_KEY_COLS, reindex)],
            )
        )
    return queries, [
        (uid, ns, k, field, dialect.vector_param(vec)) for ns, k, field, vec in vectors
    ]


def put_mode(
    dialect: Dialect, queries: Sequence[Query], vector_rows: Sequence[Any]
) -> tuple[bool, bool]:
    """How a batch of puts runs: ``(copy, single)``. ``copy``: the vectors go in by binary
    COPY (Postgres, from :data:`COPY_MIN_ROWS`; COPY cannot be pipelined), else by one
    pipelined INSERT each. ``single``: one statement, run alone; more run in one
    transaction (one round trip when pipelined)."""
    copy = len(vector_rows) >= COPY_MIN_ROWS and dialect.supports_copy
    return copy, len(queries) + bool(vector_rows) == 1


#: The vectors of a batch of puts (the batch's old vectors were deleted first, in the
#: same transaction): loaded by binary COPY on Postgres when there are many, else
#: inserted row by row.
VECTOR_COPY = (
    "COPY {store_vectors} (user_id, namespace, key, field, embedding) FROM STDIN (FORMAT BINARY)"
)
VECTOR_COPY_TYPES = ("text", "text", "text", "text", "vector")
#: Fewer vectors go in by one pipelined INSERT each (see :func:`put_mode`).
COPY_MIN_ROWS = 32
VECTOR_INSERT = (
    "INSERT INTO {store_vectors} (user_id, namespace, key, field, embedding) VALUES (?, ?, ?, ?, ?)"
)


def search_query(
    dialect: Dialect,
    uid: str,
    prefix: Sequence[str],
    omit_expired: bool,
    where: Fragment,
    limit: int,
    offset: int,
) -> Query:
    """Items under ``prefix`` that pass the compiled filter ``where``, most recently
    updated first."""
    cond, params = prefix_condition("i.namespace", prefix)
    query = SQL(
        "SELECT {cols} FROM {store_items} i WHERE i.user_id = ? AND {cond}{live} AND {where} "
        "ORDER BY i.updated_at DESC, i.namespace, i.key LIMIT ? OFFSET ?"
    ).format(cols=_ITEM_COLS, cond=SQL(cond), live=_expiry(omit_expired), where=SQL(where[0]))
    return query, [uid, *params, *where[1], limit, offset]


def vector_query(
    dialect: Dialect,
    uid: str,
    prefix: Sequence[str],
    omit_expired: bool,
    where: Fragment,
    vector: Sequence[float],
    limit: int,
    fanout: int,
    settings: SearchSettings | None = None,
) -> SearchQuery:
    """The nearest ``limit`` items under ``prefix`` that pass ``where``, each at its
    nearest vector (see :class:`~langchain_agentmem._search.vector_index.VectorIndex`)."""
    cond, params = prefix_condition("v.namespace", prefix)
    # The items' side of the scope too, so that the planner reads both by key range.
    icond, iparams = prefix_condition("i.namespace", prefix)
    return SearchQuery(
        np.asarray(vector, dtype=np.float32),
        limit,
        select=[f"i.{c}" for c in _ITEM_NAMES],
        where=(
            SQL("v.user_id = ? AND {cond} AND i.user_id = ? AND {icond}{live} AND {where}").format(
                cond=SQL(cond), icond=SQL(icond), live=_expiry(omit_expired), where=SQL(where[0])
            ),
            [uid, *params, uid, *iparams, *where[1]],
        ),
        order=["v.namespace", "v.key"],
        joins=" JOIN {store_items} i ON i.user_id = v.user_id AND i.namespace = v.namespace AND i.key = v.key",
        group=(0, 1),
        fanout=fanout,
        settings=search_settings(settings),
    )


def namespaces_query(dialect: Dialect, uid: str, op: ListNamespacesOp, omit_expired: bool) -> Query:
    """Distinct namespaces, narrowed in SQL by the literal head of a prefix condition."""
    head: tuple[str, ...] = ()
    for cond in op.match_conditions or ():
        if cond.match_type == "prefix":
            literal = []
            for label in cond.path:
                if label == "*":
                    break
                literal.append(label)
            if len(literal) > len(head):
                head = tuple(literal)
    cond_sql, params = prefix_condition("i.namespace", head)
    query = SQL(
        "SELECT DISTINCT i.namespace FROM {store_items} i WHERE i.user_id = ? AND {cond}{live}"
    ).format(cond=SQL(cond_sql), live=_expiry(omit_expired))
    return query, [uid, *params]


def sweep_query(uid: str | None) -> Query:
    if uid is None:
        return "DELETE FROM {store_items} WHERE expires_at IS NOT NULL AND expires_at <= {now}", []
    return (
        "DELETE FROM {store_items} WHERE user_id = ? AND expires_at IS NOT NULL AND expires_at <= {now}",
        [uid],
    )


# -- results ---------------------------------------------------------------------------


def _item(dialect: Dialect, row: Sequence[Any]) -> Item:
    return Item(
        namespace=decode_namespace(row[0]),
        key=decode_key(row[1]),
        value=loads(row[2]),
        created_at=_dt(dialect, row[3]),
        updated_at=_dt(dialect, row[4]),
    )


def _search_item(dialect: Dialect, row: Sequence[Any], score: float | None) -> SearchItem:
    return SearchItem(
        namespace=decode_namespace(row[0]),
        key=decode_key(row[1]),
        value=loads(row[2]),
        created_at=_dt(dialect, row[3]),
        updated_at=_dt(dialect, row[4]),
        score=score,
    )


def _dt(dialect: Dialect, value: Any) -> datetime:
    out = dialect.to_datetime(value)
    assert out is not None
    return out


# -- bodies ----------------------------------------------------------------------------


def _fetch(query: Query) -> Body[list[tuple[Any, ...]]]:
    return (yield Stmt(query[0], query[1], fetch=True))


def _execute(queries: Sequence[Query]) -> Body[list[int]]:
    out = []
    for sql, params in queries:
        out.append((yield Stmt(sql, params)))
    return out


def _put_body(queries: Sequence[Query], rows: Sequence[Any], copy: bool) -> Body[None]:
    for sql, params in queries:
        yield Stmt(sql, params)
    if copy:
        yield Copy(VECTOR_COPY, VECTOR_COPY_TYPES, rows)
    elif rows:
        yield Many(VECTOR_INSERT, rows)


def _create_index(
    dialect: Dialect, index: VectorIndex, name: str, hnsw: HNSWSettings
) -> Body[bool]:
    lock = dialect.lock_keys([("store_vectors", name)])
    if lock is not None:
        yield lock
    return (yield from index.create(int(hnsw.get("m", 16)), int(hnsw.get("ef_construction", 64))))


# -- the store -------------------------------------------------------------------------


class LangGraphStore(ConnStringEntry, BaseStore):
    """A LangGraph ``BaseStore`` on the shared schema, with semantic search and TTL.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        user_id: the tenant whose items this store reads and writes.
        index: ``{"dims": int, "embed": Embeddings | callable | "provider:model",
            "fields": ["$"]}`` to embed items for ``search(query=...)``.
        ttl: ``{"default_ttl": minutes, "refresh_on_read": True,
            "sweep_interval_minutes": 5, "omit_expired": True}``.
        hnsw: settings of an HNSW index over the vectors (Postgres; ``m``,
            ``ef_construction``, ``ef_search``). Given (``{}`` for the defaults), the
            first embedded put builds the index; without it, only :meth:`create_index`
            does. Searches use an index that exists for large namespaces, else search
            exactly. The index costs every later embedded put its upkeep (batched
            embedded puts run about 5x slower with it).
        search: how a semantic search chooses between an exact scan and the HNSW index
            (see :class:`~langchain_agentmem._search.vector_index.SearchSettings`).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_agentmem import connect
        >>> engine = connect("sqlite://"); _ = engine.migrate()
        >>> store = LangGraphStore(engine, index={"dims": 16, "embed": DeterministicFakeEmbedding(size=16)})
        >>> store.put(("u1",), "a", {"text": "tea"}); store.put(("u1",), "b", {"text": "coffee"})
        >>> [(h.key, round(h.score, 3)) for h in store.search(("u1",), query='{"text": "tea"}', limit=1)]
        [('a', 1.0)]
    """

    supports_ttl = True

    def __init__(
        self,
        engine: EngineLike,
        *,
        user_id: str = "default",
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        hnsw: HNSWSettings | None = None,
        search: SearchSettings | None = None,
    ) -> None:
        engine = as_engine(engine)
        self.engine = engine
        self.user_id = user_id
        self._uid = encode_key(user_id)
        self._cfg = _Config(index, ttl)
        if self._cfg.ann is not None:
            if hnsw is not None:
                raise ValueError(
                    "give the HNSW settings once: index ann_index_config or hnsw=, not both"
                )
            hnsw = self._cfg.ann
        self.index_config = index
        self.ttl_config = ttl
        self._embeddings = ensure_embeddings(index["embed"]) if index is not None else None
        self._hnsw: HNSWSettings = dict(hnsw or {})  # type: ignore[assignment]
        # An HNSW index costs every later put its upkeep: built on request only.
        self._auto_index = hnsw is not None
        self._search_settings = search_settings(search, ef_search=self._hnsw.get("ef_search"))
        # pgvector's version and whether the HNSW index exists (read once).
        self._ann: tuple[tuple[int, ...], bool] | None = None
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"LangGraphStore({self.engine!r}, user_id={self.user_id!r})"

    # -- LangGraph's entry points ---------------------------------------------------------

    # -- batch ---------------------------------------------------------------------------
    @dual
    def batch(self, ops: Iterable[Op]) -> Plan[list[Result]]:
        """Run ``ops`` in order; consecutive operations of one kind go together."""
        ops = _check_ops(ops)
        results: list[Result] = [None] * len(ops)
        for kind, group in _groups(ops):
            if kind is PutOp:
                yield from self._put_plan(group)
            elif kind is GetOp:
                yield from self._get_plan(group, results)
            elif kind is SearchOp:
                for i, op in group:
                    results[i] = yield from self._search_plan(op)
            else:
                for i, op in group:
                    results[i] = yield from self._list_namespaces_plan(op)
        return results

    abatch = batch.async_  # type: ignore[assignment]

    # -- get -----------------------------------------------------------------------------
    def _get_plan(self, group: list[tuple[int, GetOp]], results: list[Result]) -> Plan[None]:
        wanted: dict[tuple[str, str], list[int]] = {}
        for i, op in group:
            wanted.setdefault((encode_namespace(op.namespace), encode_key(op.key)), []).append(i)
        query = get_query(self.engine.dialect, self._uid, list(wanted), self._cfg.omit_expired)
        rows = yield Atomic(_fetch(query), readonly=True)
        refresh_idx = {i for i, op in group if op.refresh_ttl}
        refresh: list[tuple[str, str]] = []
        for row in rows:
            key = (row[0], row[1])
            item = _item(self.engine.dialect, row)
            for i in wanted.get(key, ()):
                results[i] = item
            if row[5] is not None and refresh_idx.intersection(wanted.get(key, ())):
                refresh.append(key)
        yield from self._refresh_plan(refresh)

    def _refresh_plan(self, keys: list[tuple[str, str]]) -> Plan[None]:
        if keys:
            query = refresh_query(self.engine.dialect, self._uid, in_key_order(keys, key=tuple))
            yield Atomic(_execute([query]), single=True)

    # -- put -----------------------------------------------------------------------------
    def _put_rows(
        self, group: list[tuple[int, PutOp]]
    ) -> tuple[
        list[tuple[str, str]],
        list[tuple[str, str, str, float | None]],
        list[tuple[str, str]],
        list[tuple[str, str, str, str]],
    ]:
        last: dict[tuple[str, str], PutOp] = {}
        for _, op in group:
            last[(encode_namespace(op.namespace), encode_key(op.key))] = op
        deletes, upserts, reindex, texts = [], [], [], []
        # In key order: concurrent batches of the same keys lock them in one order.
        for key, op in in_key_order(last.items(), key=lambda kv: kv[0]):
            if op.value is None:
                deletes.append(key)
                continue
            upserts.append((key[0], key[1], dumps(dict(op.value)), _check_ttl(op.ttl)))
            if self._cfg.index is None:
                continue
            reindex.append(key)
            if op.index is False:
                continue
            paths = (
                self._cfg.fields
                if op.index is None
                else [(f, "$" if f == "$" else tokenize_path(f)) for f in op.index]
            )
            for path, tokens in paths:
                found = get_text_at_path(dict(op.value), tokens)
                for n, text in enumerate(found):
                    texts.append((key[0], key[1], f"{path}.{n}" if len(found) > 1 else path, text))
        return deletes, upserts, reindex, texts

    def _check_vectors(self, vectors: list[list[float]], count: int) -> None:
        if len(vectors) != count:
            raise ValueError(
                f"the embedding function returned {len(vectors)} vectors for {count} texts"
            )
        for v in vectors:
            if len(v) != self._cfg.dims:
                raise ValueError(
                    f"expected embeddings of {self._cfg.dims} dimensions (index dims), got {len(v)}"
                )
            if not all(math.isfinite(x) for x in v):
                raise ValueError("embeddings must be finite numbers (no NaN or infinity)")

    def _put_plan(self, group: list[tuple[int, PutOp]]) -> Plan[None]:
        deletes, upserts, reindex, texts = self._put_rows(group)
        vectors: list[list[float]] = []
        if texts:
            assert self._embeddings is not None
            vectors = yield Embed(self._embeddings, [t[3] for t in texts])
            self._check_vectors(vectors, len(texts))
            yield from self._index_plan(create=self._auto_index)
        queries, rows = put_queries(
            self.engine.dialect,
            self._uid,
            deletes,
            upserts,
            reindex,
            [(t[0], t[1], t[2], v) for t, v in zip(texts, vectors, strict=True)],
        )
        copy, single = put_mode(self.engine.dialect, queries, rows)
        yield Atomic(_put_body(queries, rows, copy), pipeline=not copy, single=single)

    # -- the vector index ------------------------------------------------------------------
    def _index_name(self) -> str:
        # Cosine keeps the name it always had; another distance needs its own opclass.
        tag = _DISTANCE_TAGS[self._cfg.distance]
        return f"store_vectors_d{self._cfg.dims}{tag}_hnsw"

    def _vector_index(self, exists: bool) -> VectorIndex:
        dims = self._cfg.dims
        return VectorIndex(
            self.engine.dialect,
            "store_vectors",
            dims=dims,
            distance=self._cfg.distance,
            index=self._index_name() if exists else None,
            where=self.engine.dialect.vector_dims_is("embedding", dims),
            version=self._ann[0] if self._ann else (0, 0, 0),
        )

    def _index_plan(self, *, create: bool = False) -> Plan[VectorIndex]:
        """The index of this store's vectors; with ``create``, build its HNSW index first
        when there is none (once per store object)."""
        name = self._index_name()
        if self._ann is None:
            self._ann = yield Atomic(describe(self.engine.dialect, name), readonly=True)
        version, exists = self._ann
        if create and not exists:
            index = self._vector_index(True)
            if index.cast is not None:
                yield Atomic(_create_index(self.engine.dialect, index, name, self._hnsw))
                exists = True
            self._ann = (version, exists)
        return self._vector_index(exists)

    @dual
    def create_index(self) -> Plan[bool]:
        """Build the HNSW index over this store's vectors (Postgres, ``index=`` set) if it
        does not exist (the first embedded put does so too when ``hnsw=`` is given).
        Returns whether one exists (never on SQLite, whose search is exact)."""
        if self._cfg.index is None:
            return False
        index = yield from self._index_plan(create=True)
        return index.index is not None and index.cast is not None

    acreate_index = create_index.async_

    # -- search --------------------------------------------------------------------------
    def _search_plan(self, op: SearchOp) -> Plan[list[SearchItem]]:
        if (
            not isinstance(op.limit, int)
            or op.limit < 0
            or not isinstance(op.offset, int)
            or op.offset < 0
        ):
            raise ValueError(
                f"limit and offset must be non-negative ints, got limit={op.limit!r}, offset={op.offset!r}"
            )
        dialect = self.engine.dialect
        where = compile_store_filter(op.filter, dialect.json_sql("i.value", exact=True))
        if not op.query or self._embeddings is None:
            if op.limit == 0:
                return []
            query = search_query(
                dialect,
                self._uid,
                op.namespace_prefix,
                self._cfg.omit_expired,
                where,
                op.limit,
                op.offset,
            )
            rows = yield Atomic(_fetch(query), readonly=True)
            hits = [_search_item(dialect, r, None) for r in rows]
        else:
            vector = yield Embed(self._embeddings, [op.query], query=True)
            if len(vector) != self._cfg.dims:
                raise ValueError(
                    f"expected a query embedding of {self._cfg.dims} dimensions (index dims), got {len(vector)}"
                )
            if op.limit == 0:
                return []
            index = yield from self._index_plan()
            search = vector_query(
                dialect,
                self._uid,
                op.namespace_prefix,
                self._cfg.omit_expired,
                where,
                vector,
                op.offset + op.limit,
                max(1, len(self._cfg.fields)),
                self._search_settings,
            )
            found = yield Atomic(index.search_small(search), readonly=True)
            if found is None:
                found = yield Atomic(index.search_large(search), pipeline=True)
            rows = found[op.offset :]
            hits = [_search_item(dialect, r, _score(self._cfg.distance, r[-1])) for r in rows]
        if op.refresh_ttl:
            yield from self._refresh_plan([(r[0], r[1]) for r in rows if r[5] is not None])
        return hits

    # -- namespaces ----------------------------------------------------------------------
    def _list_namespaces_plan(self, op: ListNamespacesOp) -> Plan[list[tuple[str, ...]]]:
        _check_list_op(op)
        query = namespaces_query(self.engine.dialect, self._uid, op, self._cfg.omit_expired)
        rows = yield Atomic(_fetch(query), readonly=True)
        found: set[tuple[str, ...]] = set()
        for (text,) in rows:
            ns = decode_namespace(text)
            if all(namespace_matches(ns, c) for c in op.match_conditions or ()):
                found.add(ns[: op.max_depth] if op.max_depth is not None else ns)
        return sorted(found)[op.offset : op.offset + op.limit]

    # -- TTL -----------------------------------------------------------------------------
    @dual
    def sweep_ttl(self, *, all_users: bool = False) -> Plan[int]:
        """Delete expired items (of this store's tenant, or of every tenant); return how
        many."""
        counts = yield Atomic(
            _execute([sweep_query(None if all_users else self._uid)]),
            single=True,
            every_tenant=all_users,
        )
        return int(counts[0])

    asweep_ttl = sweep_ttl.async_

    def start_ttl_sweeper(
        self, sweep_interval_minutes: float | None = None
    ) -> concurrent.futures.Future[None]:
        """Sweep expired items every ``sweep_interval_minutes`` (default: the ttl config's,
        else 5) in a daemon thread until :meth:`stop_ttl_sweeper`. Returns a future that
        completes when the sweeper stops."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        if self._sweeper is not None and self._sweeper.is_alive():
            future.set_result(None)
            return future
        interval = float(
            sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes") or 5
        )
        if interval <= 0:
            raise ValueError(f"sweep_interval_minutes must be positive, got {interval!r}")
        self._stop.clear()

        def loop() -> None:
            try:
                while not self._stop.wait(interval * 60):
                    try:
                        self.sweep_ttl()
                    except Exception:  # keep sweeping; the next round may work
                        logger.exception("store TTL sweep failed")
                future.set_result(None)
            except BaseException as exc:  # pragma: no cover
                future.set_exception(exc)

        self._sweeper = threading.Thread(target=loop, name="agentmem-ttl-sweeper", daemon=True)
        self._sweeper.start()
        return future

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread; ``True`` once it has stopped (or never ran)."""
        if self._sweeper is None:
            return True
        self._stop.set()
        self._sweeper.join(timeout)
        stopped = not self._sweeper.is_alive()
        if stopped:
            self._sweeper = None
        return stopped

    async def astart_ttl_sweeper(
        self, sweep_interval_minutes: float | None = None
    ) -> asyncio.Task[None]:
        """Async form of :meth:`start_ttl_sweeper`: a task sweeping with :meth:`asweep_ttl`
        until cancelled."""
        interval = float(
            sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes") or 5
        )
        if interval <= 0:
            raise ValueError(f"sweep_interval_minutes must be positive, got {interval!r}")

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval * 60)
                try:
                    await self.asweep_ttl()
                except Exception:
                    logger.exception("store TTL sweep failed")

        return asyncio.get_running_loop().create_task(loop())


# -- helpers ---------------------------------------------------------------------------


def _check_ops(ops: Iterable[Op]) -> list[Op]:
    ops = list(ops)
    for op in ops:
        if not isinstance(op, (GetOp, PutOp, SearchOp, ListNamespacesOp)):
            raise TypeError(
                f"expected GetOp, PutOp, SearchOp or ListNamespacesOp, got {type(op).__name__}: {op!r:.80}"
            )
        validate_op_namespace(op)
        if isinstance(op, (GetOp, PutOp)):
            if not op.namespace:
                raise ValueError("namespace must not be empty")
            if not isinstance(op.key, str):
                raise TypeError(f"key must be a str, got {type(op.key).__name__}: {op.key!r}")
        if isinstance(op, PutOp) and op.value is not None and not isinstance(op.value, dict):
            from collections.abc import Mapping

            if not isinstance(op.value, Mapping):
                raise TypeError(
                    f"value must be a dict (or None to delete), got {type(op.value).__name__}: {op.value!r:.80}"
                )
    return ops


def _groups(ops: list[Op]) -> list[tuple[type, list[tuple[int, Any]]]]:
    groups: list[tuple[type, list[tuple[int, Any]]]] = []
    for i, op in enumerate(ops):
        kind = type(op)
        if groups and groups[-1][0] is kind:
            groups[-1][1].append((i, op))
        else:
            groups.append((kind, [(i, op)]))
    return groups


def _check_ttl(ttl: Any) -> float | None:
    if ttl is None:
        return None
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, (int, float))
        or not math.isfinite(ttl)
        or ttl <= 0
    ):
        raise ValueError(f"ttl must be a positive number of minutes or None, got {ttl!r}")
    return float(ttl)


def _check_list_op(op: ListNamespacesOp) -> None:
    if op.max_depth is not None and (not isinstance(op.max_depth, int) or op.max_depth < 1):
        raise ValueError(f"max_depth must be a positive int or None, got {op.max_depth!r}")
    for cond in op.match_conditions or ():
        if cond.match_type not in ("prefix", "suffix"):
            raise ValueError(
                f"unsupported match_type {cond.match_type!r}: expected 'prefix' or 'suffix'"
            )
