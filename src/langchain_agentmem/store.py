"""LangGraph long-term memory on the shared schema: :class:`LangGraphStore`.

A LangGraph ``BaseStore`` (``get``, ``put``, ``delete``, ``search``, ``list_namespaces``
and their async forms, all through ``batch`` / ``abatch``) over ``store_items`` and
``store_vectors``, on Postgres and SQLite.

* Namespace prefixes match whole labels literally (range conditions on the encoded
  namespace, no LIKE patterns): ``("user_1",)`` never matches ``("userX1",)`` or
  ``("user_10",)``.
* Filters compare numbers as numbers: ``{"age": {"$gte": 10}}`` does not match 9, nor
  the string ``"9"``.
* Semantic search (``index={"dims", "embed", "fields"}``) is exact within the namespace
  prefix: every vector under the prefix is scored (pgvector's ``<=>`` on Postgres, in
  Python on SQLite), so the top k are the true top k.
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

# Queries are composed of constants and dialect fragments only; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

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

from ._encoding.json import dumps, loads
from ._encoding.keys import decode_key, encode_key
from .dialects import Dialect
from .engine import Engine

__all__ = ["LangGraphStore"]

logger = logging.getLogger(__name__)

Query = tuple[str, list[Any]]

_ITEM_COLS = "i.namespace, i.key, i.value, i.created_at, i.updated_at, i.ttl_minutes"
_KEY_COLS = [("ns", "text"), ("k", "text")]
_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


# -- namespaces ------------------------------------------------------------------------


def encode_namespace(namespace: Sequence[str]) -> str:
    """The stored form of a namespace: encoded labels joined by ``.`` (no label has one).

    Example:
        >>> encode_namespace(("users", "a\\\\b"))
        'users.a\\\\\\\\b'
    """
    return ".".join(encode_key(label) for label in namespace)


def decode_namespace(text: str) -> tuple[str, ...]:
    return tuple(decode_key(label) for label in text.split("."))


def prefix_condition(column: str, prefix: Sequence[str]) -> tuple[str, list[Any]]:
    """Rows whose namespace is ``prefix`` or lies under it, label by label, literally:
    equal, or in the range [``p.``, ``p/``) (``/`` follows ``.``)."""
    if not prefix:
        return "1 = 1", []
    text = encode_namespace(prefix)
    return f"({column} = ? OR ({column} >= ? AND {column} < ?))", [text, text + ".", text + "/"]


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


# -- filters ---------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _compare(value: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return _json_equal(value, operand)
    if op == "$ne":
        return not _json_equal(value, operand)
    # Order only numbers with numbers and strings with strings.
    if _is_number(value) and _is_number(operand):
        pass
    elif isinstance(value, str) and isinstance(operand, str):
        pass
    else:
        return False
    if op == "$gt":
        return value > operand
    if op == "$gte":
        return value >= operand
    if op == "$lt":
        return value < operand
    return value <= operand


_MISSING = object()


def _matches_value(value: Any, expected: Any) -> bool:
    if isinstance(expected, dict) and expected and all(k.startswith("$") for k in expected):
        if value is _MISSING:
            return all(op == "$ne" for op in expected)
        return all(_compare(value, op, operand) for op, operand in expected.items())
    if isinstance(expected, dict):
        return isinstance(value, dict) and all(
            _matches_value(value.get(k, _MISSING), v) for k, v in expected.items()
        )
    return value is not _MISSING and _json_equal(value, expected)


def matches_filter(value: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    """Whether an item's value passes a LangGraph store filter.

    Example:
        >>> matches_filter({"n": 9}, {"n": {"$gte": 10}})
        False
        >>> matches_filter({"n": 10.0, "tag": "a"}, {"n": {"$gte": 10}, "tag": "a"})
        True
        >>> matches_filter({"n": "9"}, {"n": {"$lt": 10}})
        False
    """
    if not filter:
        return True
    return all(_matches_value(value.get(k, _MISSING), v) for k, v in filter.items())


def check_filter(filter: dict[str, Any] | None) -> None:
    if filter is None:
        return
    if not isinstance(filter, dict):
        raise TypeError(f"filter must be a dict, got {type(filter).__name__}: {filter!r}")
    for key, value in filter.items():
        if isinstance(value, dict):
            for op in value:
                if isinstance(op, str) and op.startswith("$") and op not in _OPERATORS:
                    raise ValueError(
                        f"unsupported filter operator {op!r} for {key!r}: expected one of {', '.join(_OPERATORS)}"
                    )


# -- vectors ---------------------------------------------------------------------------


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(math.fsum(x * x for x in a))
    nb = math.sqrt(math.fsum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def _unpack(blob: bytes) -> Any:
    from array import array

    values = array("f")
    values.frombytes(bytes(blob))
    return values


def _score_python(query: Sequence[float], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows ending in an embedding BLOB -> rows ending in the cosine distance, nearest
    first (numpy when installed)."""
    if not rows:
        return []
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is installed in tests
        scored = [(*r[:-1], 1.0 - cosine_similarity(query, _unpack(r[-1]))) for r in rows]
    else:
        matrix = np.frombuffer(b"".join(bytes(r[-1]) for r in rows), dtype=np.float32).reshape(
            len(rows), -1
        )
        q = np.asarray(query, dtype=np.float64)
        norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(q) or 1.0)
        sims = (matrix @ q) / np.where(norms == 0, 1.0, norms)
        scored = [(*r[:-1], 1.0 - float(s)) for r, s in zip(rows, sims, strict=True)]
    scored.sort(key=lambda r: (r[-1], r[0], r[1]))
    return scored


# -- query builders (pure) -------------------------------------------------------------


class _Config:
    """What a store needs from its settings, prepared once."""

    def __init__(self, index: IndexConfig | None, ttl: TTLConfig | None) -> None:
        self.index = index
        self.ttl = ttl
        self.fields: list[tuple[str, Any]] = []
        self.dims = 0
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
        self.omit_expired = True if ttl is None else bool(ttl.get("omit_expired", True))


def _expiry(dialect: Dialect, alias: str = "i") -> str:
    return f" AND ({alias}.expires_at IS NULL OR {alias}.expires_at > {{now}})"


def get_query(
    dialect: Dialect, uid: str, keys: Sequence[tuple[str, str]], omit_expired: bool
) -> Query:
    query = (
        "SELECT " + _ITEM_COLS + " FROM {store_items} i JOIN " + dialect.unnest(_KEY_COLS) + " "
        "ON i.namespace = m.ns AND i.key = m.k WHERE i.user_id = ?"
        + (_expiry(dialect) if omit_expired else "")
    )
    return query, [*dialect.unnest_params(_KEY_COLS, keys), uid]


def refresh_query(dialect: Dialect, uid: str, keys: Sequence[tuple[str, str]]) -> Query:
    """Restart the TTL clock of the items ``keys`` that have one."""
    return (
        "UPDATE {store_items} SET expires_at = " + dialect.now_plus_minutes("ttl_minutes") + " "
        "WHERE user_id = ? AND ttl_minutes IS NOT NULL AND (namespace, key) IN (SELECT ns, k FROM "
        + dialect.unnest(_KEY_COLS)
        + ")",
        [uid, *dialect.unnest_params(_KEY_COLS, keys)],
    )


_PUT_COLS = [("ns", "text"), ("k", "text"), ("value", "json"), ("ttl", "double")]


def put_queries(
    dialect: Dialect,
    uid: str,
    deletes: Sequence[tuple[str, str]],
    upserts: Sequence[tuple[str, str, str, float | None]],
    reindex: Sequence[tuple[str, str]],
    vectors: Sequence[tuple[str, str, str, Sequence[float]]],
) -> tuple[list[Query], list[tuple[str, str, str, str, Any]]]:
    """Statements of a batch of puts: deletes, one upsert of every item, the removal of
    the vectors of re-indexed items; and the rows of the new vectors (see
    :data:`VECTOR_COPY`)."""
    queries: list[Query] = []
    if deletes:
        queries.append(
            (
                "DELETE FROM {store_items} WHERE user_id = ? AND (namespace, key) IN (SELECT ns, k FROM "
                + dialect.unnest(_KEY_COLS)
                + ")",
                [uid, *dialect.unnest_params(_KEY_COLS, deletes)],
            )
        )
    if upserts:
        queries.append(
            (
                "INSERT INTO {store_items} (user_id, namespace, key, value, expires_at, ttl_minutes) "
                "SELECT ?, m.ns, m.k, m.value, "
                + dialect.now_plus_minutes("m.ttl")
                + ", m.ttl FROM "
                + dialect.unnest(_PUT_COLS)
                + " WHERE true ON CONFLICT (user_id, namespace, key) DO UPDATE SET value = excluded.value, "
                "updated_at = {now}, expires_at = excluded.expires_at, ttl_minutes = excluded.ttl_minutes",
                [uid, *dialect.unnest_params(_PUT_COLS, upserts)],
            )
        )
    if reindex:
        queries.append(
            (
                "DELETE FROM {store_vectors} WHERE user_id = ? AND (namespace, key) IN (SELECT ns, k FROM "
                + dialect.unnest(_KEY_COLS)
                + ")",
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
    dialect: Dialect, uid: str, prefix: Sequence[str], omit_expired: bool, limit: int
) -> Query:
    """Items under ``prefix``, most recently updated first."""
    cond, params = prefix_condition("i.namespace", prefix)
    query = (
        "SELECT "
        + _ITEM_COLS
        + " FROM {store_items} i WHERE i.user_id = ? AND "
        + cond
        + (_expiry(dialect) if omit_expired else "")
        + " ORDER BY i.updated_at DESC, i.namespace, i.key LIMIT ?"
    )
    return query, [uid, *params, limit]


def vector_search_query(
    dialect: Dialect,
    uid: str,
    prefix: Sequence[str],
    omit_expired: bool,
    vector: Sequence[float],
    limit: int,
) -> tuple[Query, bool]:
    """Every vector under ``prefix`` with its item, nearest first (exact: no ANN index).
    Returns the query and whether the distance must still be computed in Python (the
    rows then end in the embedding instead)."""
    cond, params = prefix_condition("v.namespace", prefix)
    distance = dialect.cosine_distance("v.embedding")
    joined = (
        " FROM {store_vectors} v JOIN {store_items} i ON i.user_id = v.user_id AND i.namespace = v.namespace "
        "AND i.key = v.key WHERE v.user_id = ? AND "
        + cond
        + (_expiry(dialect) if omit_expired else "")
    )
    if distance is None:
        return ("SELECT " + _ITEM_COLS + ", v.embedding" + joined, [uid, *params]), True
    query = (
        "SELECT "
        + _ITEM_COLS
        + ", "
        + distance
        + " AS d"
        + joined
        + " ORDER BY d, i.namespace, i.key LIMIT ?"
    )
    return (query, [dialect.vector_param(vector), uid, *params, limit]), False


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
    query = (
        "SELECT DISTINCT i.namespace FROM {store_items} i WHERE i.user_id = ? AND "
        + cond_sql
        + (_expiry(dialect) if omit_expired else "")
    )
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


def select_hits(
    dialect: Dialect, rows: Sequence[Sequence[Any]], op: SearchOp, scored: bool
) -> tuple[list[SearchItem], list[tuple[str, str]], bool]:
    """Apply the filter, one hit per item (its nearest vector), offset and limit.
    Returns the hits, the keys whose TTL to refresh, and whether enough were found."""
    seen: set[tuple[str, str]] = set()
    hits: list[SearchItem] = []
    refresh: list[tuple[str, str]] = []
    skip = op.offset
    for row in rows:
        key = (row[0], row[1])
        if key in seen:
            continue
        seen.add(key)
        value = loads(row[2])
        if not matches_filter(value, op.filter):
            continue
        if skip:
            skip -= 1
            continue
        hits.append(_search_item(dialect, row, 1.0 - float(row[-1]) if scored else None))
        if row[5] is not None:
            refresh.append(key)
        if len(hits) >= op.limit:
            return hits, refresh, True
    return hits, refresh, False


# -- the store -------------------------------------------------------------------------


class LangGraphStore(BaseStore):
    """A LangGraph ``BaseStore`` on the shared schema, with semantic search and TTL.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        user_id: the tenant whose items this store reads and writes.
        index: ``{"dims": int, "embed": Embeddings | callable | "provider:model",
            "fields": ["$"]}`` to embed items for ``search(query=...)``.
        ttl: ``{"default_ttl": minutes, "refresh_on_read": True,
            "sweep_interval_minutes": 5, "omit_expired": True}``.

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
        engine: Engine,
        *,
        user_id: str = "default",
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
    ) -> None:
        if not isinstance(engine, Engine):
            raise TypeError(
                f"expected an Engine from langchain_agentmem.connect(), got {type(engine).__name__}"
            )
        self.engine = engine
        self.user_id = user_id
        self._uid = encode_key(user_id)
        self._cfg = _Config(index, ttl)
        self.index_config = index
        self.ttl_config = ttl
        self._embeddings = ensure_embeddings(index["embed"]) if index is not None else None
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"LangGraphStore({self.engine!r}, user_id={self.user_id!r})"

    # -- batch ---------------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` in order; consecutive operations of one kind go together."""
        ops = _check_ops(ops)
        results: list[Result] = [None] * len(ops)
        for kind, group in _groups(ops):
            if kind is PutOp:
                self._put(group)
            elif kind is GetOp:
                self._get(group, results)
            elif kind is SearchOp:
                for i, op in group:
                    results[i] = self._search(op)
            else:
                for i, op in group:
                    results[i] = self._list_namespaces(op)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async form of :meth:`batch`."""
        ops = _check_ops(ops)
        results: list[Result] = [None] * len(ops)
        for kind, group in _groups(ops):
            if kind is PutOp:
                await self._aput(group)
            elif kind is GetOp:
                await self._aget(group, results)
            elif kind is SearchOp:
                for i, op in group:
                    results[i] = await self._asearch(op)
            else:
                for i, op in group:
                    results[i] = await self._alist_namespaces(op)
        return results

    # -- get -----------------------------------------------------------------------------
    def _get_plan(
        self, group: list[tuple[int, GetOp]]
    ) -> tuple[Query, dict[tuple[str, str], list[int]]]:
        wanted: dict[tuple[str, str], list[int]] = {}
        for i, op in group:
            wanted.setdefault((encode_namespace(op.namespace), encode_key(op.key)), []).append(i)
        return get_query(
            self.engine.dialect, self._uid, list(wanted), self._cfg.omit_expired
        ), wanted

    def _get_results(
        self,
        rows: list[tuple[Any, ...]],
        wanted: dict[tuple[str, str], list[int]],
        group: list[tuple[int, GetOp]],
        results: list[Result],
    ) -> list[tuple[str, str]]:
        refresh_idx = {i for i, op in group if op.refresh_ttl}
        refresh: list[tuple[str, str]] = []
        for row in rows:
            key = (row[0], row[1])
            item = _item(self.engine.dialect, row)
            for i in wanted.get(key, ()):
                results[i] = item
            if row[5] is not None and refresh_idx.intersection(wanted.get(key, ())):
                refresh.append(key)
        return refresh

    def _get(self, group: list[tuple[int, GetOp]], results: list[Result]) -> None:
        query, wanted = self._get_plan(group)
        with self.engine.transaction(self._uid, readonly=True) as tx:
            rows = tx.fetchall(*query)
        self._refresh(self._get_results(rows, wanted, group, results))

    async def _aget(self, group: list[tuple[int, GetOp]], results: list[Result]) -> None:
        query, wanted = self._get_plan(group)
        async with self.engine.atransaction(self._uid, readonly=True) as tx:
            rows = await tx.fetchall(*query)
        await self._arefresh(self._get_results(rows, wanted, group, results))

    def _refresh(self, keys: list[tuple[str, str]]) -> None:
        if keys:
            with self.engine.transaction(self._uid, single=True) as tx:
                tx.execute(*refresh_query(self.engine.dialect, self._uid, keys))

    async def _arefresh(self, keys: list[tuple[str, str]]) -> None:
        if keys:
            async with self.engine.atransaction(self._uid, single=True) as tx:
                await tx.execute(*refresh_query(self.engine.dialect, self._uid, keys))

    # -- put -----------------------------------------------------------------------------
    def _put_plan(
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
        for key, op in last.items():
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

    def _put(self, group: list[tuple[int, PutOp]]) -> None:
        deletes, upserts, reindex, texts = self._put_plan(group)
        vectors: list[list[float]] = []
        if texts:
            assert self._embeddings is not None
            vectors = self._embeddings.embed_documents([t[3] for t in texts])
            self._check_vectors(vectors, len(texts))
        queries, rows = put_queries(
            self.engine.dialect,
            self._uid,
            deletes,
            upserts,
            reindex,
            [(t[0], t[1], t[2], v) for t, v in zip(texts, vectors, strict=True)],
        )
        copy, single = put_mode(self.engine.dialect, queries, rows)
        with self.engine.transaction(self._uid, pipeline=not copy, single=single) as tx:
            for query in queries:
                tx.execute(*query)
            if copy:
                tx.copy_rows(VECTOR_COPY, VECTOR_COPY_TYPES, rows)
            elif rows:
                tx.executemany(VECTOR_INSERT, rows)

    async def _aput(self, group: list[tuple[int, PutOp]]) -> None:
        deletes, upserts, reindex, texts = self._put_plan(group)
        vectors: list[list[float]] = []
        if texts:
            assert self._embeddings is not None
            vectors = await self._embeddings.aembed_documents([t[3] for t in texts])
            self._check_vectors(vectors, len(texts))
        queries, rows = put_queries(
            self.engine.dialect,
            self._uid,
            deletes,
            upserts,
            reindex,
            [(t[0], t[1], t[2], v) for t, v in zip(texts, vectors, strict=True)],
        )
        copy, single = put_mode(self.engine.dialect, queries, rows)
        async with self.engine.atransaction(self._uid, pipeline=not copy, single=single) as tx:
            for query in queries:
                await tx.execute(*query)
            if copy:
                await tx.copy_rows(VECTOR_COPY, VECTOR_COPY_TYPES, rows)
            elif rows:
                await tx.executemany(VECTOR_INSERT, rows)

    # -- search --------------------------------------------------------------------------
    def _batch_size(self, op: SearchOp, attempt: int) -> int:
        per_item = max(1, len(self._cfg.fields)) if op.query else 1
        return (op.offset + op.limit) * per_item * (4**attempt) + 1

    def _search(self, op: SearchOp) -> list[SearchItem]:
        vector = None
        if op.query and self._embeddings is not None:
            vector = self._embeddings.embed_query(op.query)
        attempt = 0
        while True:
            size = self._batch_size(op, attempt)
            query, python_scored = self._search_query(op, vector, size)
            with self.engine.transaction(self._uid, readonly=True) as tx:
                rows = tx.fetchall(*query)
            hits, refresh, done = self._hits(op, vector, rows, python_scored)
            if done or python_scored or len(rows) < size:
                break
            attempt += 1
        if op.refresh_ttl:
            self._refresh(refresh)
        return hits

    async def _asearch(self, op: SearchOp) -> list[SearchItem]:
        vector = None
        if op.query and self._embeddings is not None:
            vector = await self._embeddings.aembed_query(op.query)
        attempt = 0
        while True:
            size = self._batch_size(op, attempt)
            query, python_scored = self._search_query(op, vector, size)
            async with self.engine.atransaction(self._uid, readonly=True) as tx:
                rows = await tx.fetchall(*query)
            hits, refresh, done = self._hits(op, vector, rows, python_scored)
            if done or python_scored or len(rows) < size:
                break
            attempt += 1
        if op.refresh_ttl:
            await self._arefresh(refresh)
        return hits

    def _search_query(
        self, op: SearchOp, vector: list[float] | None, size: int
    ) -> tuple[Query, bool]:
        check_filter(op.filter)
        if (
            not isinstance(op.limit, int)
            or op.limit < 0
            or not isinstance(op.offset, int)
            or op.offset < 0
        ):
            raise ValueError(
                f"limit and offset must be non-negative ints, got limit={op.limit!r}, offset={op.offset!r}"
            )
        if vector is None:
            return search_query(
                self.engine.dialect, self._uid, op.namespace_prefix, self._cfg.omit_expired, size
            ), False
        if len(vector) != self._cfg.dims:
            raise ValueError(
                f"expected a query embedding of {self._cfg.dims} dimensions (index dims), got {len(vector)}"
            )
        return vector_search_query(
            self.engine.dialect,
            self._uid,
            op.namespace_prefix,
            self._cfg.omit_expired,
            vector,
            size,
        )

    def _hits(
        self,
        op: SearchOp,
        vector: list[float] | None,
        rows: list[tuple[Any, ...]],
        python_scored: bool,
    ) -> tuple[list[SearchItem], list[tuple[str, str]], bool]:
        if op.limit == 0:
            return [], [], True
        if python_scored:
            assert vector is not None
            rows = _score_python(vector, rows)
        return select_hits(self.engine.dialect, rows, op, scored=vector is not None)

    # -- namespaces ----------------------------------------------------------------------
    def _namespaces(
        self, op: ListNamespacesOp, rows: list[tuple[Any, ...]]
    ) -> list[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        for (text,) in rows:
            ns = decode_namespace(text)
            if all(namespace_matches(ns, c) for c in op.match_conditions or ()):
                found.add(ns[: op.max_depth] if op.max_depth is not None else ns)
        return sorted(found)[op.offset : op.offset + op.limit]

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        _check_list_op(op)
        with self.engine.transaction(self._uid, readonly=True) as tx:
            rows = tx.fetchall(
                *namespaces_query(self.engine.dialect, self._uid, op, self._cfg.omit_expired)
            )
        return self._namespaces(op, rows)

    async def _alist_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        _check_list_op(op)
        async with self.engine.atransaction(self._uid, readonly=True) as tx:
            rows = await tx.fetchall(
                *namespaces_query(self.engine.dialect, self._uid, op, self._cfg.omit_expired)
            )
        return self._namespaces(op, rows)

    # -- TTL -----------------------------------------------------------------------------
    def sweep_ttl(self, *, all_users: bool = False) -> int:
        """Delete expired items (of this store's tenant, or of every tenant); return how
        many."""
        with self.engine.transaction(self._uid, single=True) as tx:
            return tx.execute(*sweep_query(None if all_users else self._uid))

    async def asweep_ttl(self, *, all_users: bool = False) -> int:
        """Async form of :meth:`sweep_ttl`."""
        async with self.engine.atransaction(self._uid, single=True) as tx:
            return await tx.execute(*sweep_query(None if all_users else self._uid))

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
