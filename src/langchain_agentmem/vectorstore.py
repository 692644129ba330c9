"""Vector memory: a LangChain ``VectorStore`` that stays correct when scoped to a user.

Every search is scoped to one tenant (``user_id``) and one collection, and returns the
true top ``k`` within that scope and the metadata filter:

* **Postgres** (pgvector): each collection has its own HNSW index (a partial expression
  index, ``halfvec`` above 2,000 dimensions). A search first counts the scope's rows, up
  to ``exact_search_threshold``; a scope that small is searched exactly (a plan that
  cannot use the HNSW index). A larger scope uses the index with pgvector's iterative
  index scans (0.8+, ``hnsw.iterative_scan``), so a filter that removes most candidates
  still yields ``k`` rows; on older pgvector (or ``iterative_scan="off"``) the index is
  read with a raised ``ef_search`` and, when the scope or the filter left fewer than
  ``k`` rows, the search is repeated exactly. Either way the answer is never short.
  Equality conditions of a filter are also served by a GIN index on the metadata, so
  the planner can answer a selective filter from its few matching rows.
* **SQLite**: exact search (numpy) over the rows of the scope that pass the filter.

Writes go in one transaction per call (a failing batch leaves nothing behind); on
Postgres rows travel through binary ``COPY`` into a staging table and are upserted from
there, batch by batch. Adding an existing id replaces it. For a first large load,
``defer_index=True`` and :meth:`MemoryVectorStore.create_index` afterwards build the HNSW
index once instead of row by row.

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> from langchain_agentmem import MemoryVectorStore, connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> store = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=8), user_id="alice")
    >>> store.add_texts(["cats purr", "dogs bark"], [{"kind": "cat"}, {"kind": "dog"}], ids=["c", "d"])
    ['c', 'd']
    >>> [d.id for d in store.similarity_search("cats purr", k=1)]
    ['c']
    >>> [d.id for d in store.similarity_search("cats purr", k=2, filter={"kind": {"$ne": "cat"}})]
    ['d']
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from psycopg import sql as pgsql

from ._encoding.json import clean_text, dumps, loads
from ._encoding.keys import decode_key, encode_key
from ._search.filters import JsonSQL, PostgresJson, SQLiteJson, compile_filter
from .dialects import PostgresDialect
from .engine import Engine

__all__ = ["MemoryVectorStore", "DistanceStrategy"]

DistanceStrategy = Literal["cosine", "l2", "inner_product"]
_DISTANCES = ("cosine", "l2", "inner_product")
_PG_OPERATOR = {"cosine": "<=>", "l2": "<->", "inner_product": "<#>"}
_PG_OPCLASS = {"cosine": "cosine_ops", "l2": "l2_ops", "inner_product": "ip_ops"}
#: HNSW indexes ``vector`` up to 2,000 dimensions and ``halfvec`` up to 4,000.
_VECTOR_INDEX_MAX = 2000
_HALFVEC_INDEX_MAX = 4000
_COPY_BATCH = 5000
#: Column types of the rows copied into the staging table.
_STAGE_TYPES = ("text", "text", "text", "text", "vector")
#: hnsw.ef_search when none is given: pgvector's default of 40 misses about 1% of the true
#: top 10 on clustered 384-dim data; 80 keeps recall@10 above 0.99.
_DEFAULT_EF_SEARCH = 80

Step = tuple[str, str, Any]
Plan = Generator[Step, Any, Any]


@dataclass(frozen=True)
class _Collection:
    collection_id: int
    name: str
    dims: int
    distance: str


@dataclass
class _Hit:
    id: str
    content: str
    metadata: Any
    exact: Any
    distance: float
    embedding: Any = None

    def document(self) -> Document:
        if self.exact is not None:
            content, metadata = loads(self.exact)
        else:
            content, metadata = self.content, loads(self.metadata)
        return Document(id=decode_key(self.id), page_content=content, metadata=metadata)


_STRICT = json.JSONEncoder(ensure_ascii=True, allow_nan=False, default=str)


def _clean_json(value: Any) -> Any:
    """``value`` with NUL and lone surrogates replaced in every string (keys too)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    return value


def _row(doc_id: str, text: str, metadata: Mapping[str, Any]) -> tuple[str, str, str, str | None]:
    """(stored id, search text, search metadata JSON, exact JSON or None)."""
    if not isinstance(text, str):
        raise TypeError(f"expected str texts, got {type(text).__name__}: {text!r:.80}")
    if not isinstance(metadata, Mapping):
        raise TypeError(f"expected dict metadata, got {type(metadata).__name__}: {metadata!r:.80}")
    try:
        # What a reader gets back: plain JSON values (NaN and infinity are not JSON).
        metadata = loads(_STRICT.encode(dict(metadata)))
    except ValueError as exc:
        raise ValueError(
            f"metadata must be JSON-serializable without NaN or infinity: {exc}"
        ) from exc
    content = clean_text(text)
    clean_meta = _clean_json(metadata)
    exact = None
    if content != text or clean_meta != metadata:
        exact = dumps([text, metadata])
    return encode_key(doc_id), content, dumps(clean_meta), exact


def _check_k(k: Any, name: str = "k") -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"{name} must be a non-negative int, got {k!r}")
    return k


def _as_matrix(
    vectors: Sequence[Sequence[float]] | np.ndarray, dims: int | None, what: str
) -> np.ndarray:
    arrays = [np.asarray(v, dtype=np.float32) for v in vectors]
    for i, a in enumerate(arrays):
        if a.ndim != 1:
            raise ValueError(f"{what} {i}: expected a flat list of floats, got shape {a.shape}")
        if dims is not None and a.shape[0] != dims:
            raise ValueError(
                f"wrong embedding size for {what} {i}: expected {dims} dimensions, got {a.shape[0]}"
            )
    if not arrays:
        return np.zeros((0, dims or 0), dtype=np.float32)
    size = arrays[0].shape[0]
    for i, a in enumerate(arrays):
        if a.shape[0] != size:
            raise ValueError(
                f"wrong embedding size for {what} {i}: expected {size} dimensions (as the first), got {a.shape[0]}"
            )
    matrix = np.stack(arrays)
    if size == 0:
        raise ValueError(f"{what}: expected at least 1 dimension, got 0")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{what}: embeddings must be finite numbers (no NaN or infinity)")
    return matrix


def _fts_tokens(query: str) -> list[str]:
    return [t.lower() for t in re.findall(r"[^\W_]+", query)]


def _rrf(
    legs: Sequence[Sequence[_Hit]], k: int, rrf_k: int, weights: Sequence[float]
) -> list[tuple[_Hit, float]]:
    scores: dict[str, float] = {}
    first: dict[str, _Hit] = {}
    for leg, weight in zip(legs, weights, strict=True):
        for rank, hit in enumerate(leg, start=1):
            scores[hit.id] = scores.get(hit.id, 0.0) + weight / (rrf_k + rank)
            first.setdefault(hit.id, hit)
    order = sorted(scores, key=lambda i: (-scores[i], i))
    return [(first[i], scores[i]) for i in order[:k]]


# ---------------------------------------------------------------------------------
# Backends: pure query plans (generators of steps) that a sync or an async driver runs.
# A step is (method, query, params); method is a Transaction method, or "copy".
# ---------------------------------------------------------------------------------


class _Ops:
    json: ClassVar[JsonSQL]
    search_readonly: ClassVar[bool] = True

    def __init__(self, store: MemoryVectorStore) -> None:
        self.s = store

    # -- collections ----------------------------------------------------------------
    def lookup(self) -> Plan:
        row = yield (
            "fetchone",
            "SELECT collection_id, dims, distance FROM {vector_collections} WHERE name = ?",
            [self.s.collection],
        )
        return (
            None
            if row is None
            else _Collection(int(row[0]), self.s.collection, int(row[1]), str(row[2]))
        )

    def create(self, dims: int) -> Plan:
        s = self.s
        yield (
            "execute",
            "INSERT INTO {vector_collections} (name, dims, distance, model, m, ef_construction) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            [s.collection, dims, s.distance, s.model, s.m, s.ef_construction],
        )
        coll = yield from self.lookup()
        return coll

    def server_info(self) -> Plan:
        return None
        yield  # pragma: no cover

    def create_index(self, coll: _Collection, maintenance_work_mem: str | None) -> Plan:
        return False  # SQLite searches exactly
        yield  # pragma: no cover

    # -- writes -----------------------------------------------------------------------
    def upsert(
        self, coll: _Collection, uid: str, rows: list[tuple[Any, ...]], matrix: np.ndarray
    ) -> Plan:
        raise NotImplementedError
        yield  # pragma: no cover

    def delete(
        self, coll: _Collection, uid: str, ids: list[str] | None, filter: Mapping[str, Any] | None
    ) -> Plan:
        fsql, fparams = compile_filter(filter, self.json)
        query = "DELETE FROM {vectors} AS v WHERE v.user_id = ? AND v.collection_id = ? AND " + fsql  # noqa: S608 (fixed fragments; values are parameters)
        params: list[Any] = [uid, coll.collection_id, *fparams]
        if ids is not None:
            cols = [("id", "text")]
            query += " AND v.id IN (SELECT m.id FROM " + self.s.engine.dialect.unnest(cols) + ")"  # noqa: S608 (fixed fragments; values are parameters)
            params += self.s.engine.dialect.unnest_params(cols, [(i,) for i in ids])
        n = yield ("execute", query, params)
        return n

    def get(self, coll: _Collection, uid: str, ids: list[str]) -> Plan:
        cols = [("id", "text")]
        rows = yield (
            "fetchall",
            "SELECT v.id, v.content, v.metadata, v.exact FROM {vectors} v WHERE v.user_id = ? AND "  # noqa: S608 (fixed fragments; values are parameters)
            "v.collection_id = ? AND v.id IN (SELECT m.id FROM "
            + self.s.engine.dialect.unnest(cols)
            + ")",
            [
                uid,
                coll.collection_id,
                *self.s.engine.dialect.unnest_params(cols, [(i,) for i in ids]),
            ],
        )
        return [_Hit(r[0], r[1], r[2], r[3], 0.0) for r in rows]

    # -- reads ------------------------------------------------------------------------
    def search(
        self,
        coll: _Collection,
        uid: str,
        q: np.ndarray,
        k: int,
        filter: Mapping[str, Any] | None,
        with_embeddings: bool,
        ef_search: int | None,
    ) -> Plan:
        raise NotImplementedError
        yield  # pragma: no cover

    def text_search(
        self,
        coll: _Collection,
        uid: str,
        tokens: list[str],
        k: int,
        filter: Mapping[str, Any] | None,
    ) -> Plan:
        raise NotImplementedError
        yield  # pragma: no cover


class _PgOps(_Ops):
    json = PostgresJson()
    search_readonly = False  # SET LOCAL of the hnsw.* settings needs a transaction

    def server_info(self) -> Plan:
        row = yield ("fetchone", "SELECT extversion FROM pg_extension WHERE extname = 'vector'", [])
        if row is None:
            return (0, 0, 0)
        return tuple(int(x) for x in re.findall(r"\d+", str(row[0]))[:3])

    def _cast(self, coll: _Collection) -> str:
        kind = "halfvec" if coll.dims > _VECTOR_INDEX_MAX else "vector"
        return f"{kind}({int(coll.dims)})"

    def index_name(self, coll: _Collection) -> str:
        return f"vectors_c{int(coll.collection_id)}_hnsw"

    def create(self, dims: int) -> Plan:
        s = self.s
        yield (
            "execute",
            "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
            [f"langchain_agentmem.vectors:{s.engine.schema}:{s.collection}"],
        )
        coll = yield from super().create(dims)
        if coll is not None and not s.defer_index:
            yield from self.create_index(coll, None)
        return coll

    def create_index(self, coll: _Collection, maintenance_work_mem: str | None) -> Plan:
        version = self.s._server_version or (0, 0, 0)
        if coll.dims > _HALFVEC_INDEX_MAX or (
            coll.dims > _VECTOR_INDEX_MAX and version < (0, 7, 0)
        ):
            return False  # too large for HNSW (halfvec needs pgvector 0.7): exact search only
        cast = self._cast(coll)
        opclass = cast.split("(")[0] + "_" + _PG_OPCLASS[coll.distance]
        row = yield (
            "fetchone",
            "SELECT m, ef_construction FROM {vector_collections} WHERE collection_id = ?",
            [coll.collection_id],
        )
        m, ef_construction = int(row[0]), int(row[1])
        if maintenance_work_mem is not None:
            yield (
                "execute",
                "SELECT set_config('maintenance_work_mem', ?, true)",
                [maintenance_work_mem],
            )
        # DDL takes no parameters: compose it with psycopg.sql (identifiers quoted, integers
        # as literals; the cast and operator class come from fixed tables).
        ddl = pgsql.SQL(
            "CREATE INDEX IF NOT EXISTS {index} ON {table} USING hnsw (({column}::{cast}) {opclass}) "
            "WITH (m = {m}, ef_construction = {ef}) WHERE collection_id = {cid}"
        ).format(
            index=pgsql.Identifier(self.index_name(coll)),
            table=pgsql.Identifier(self.s.engine.schema, "vectors"),
            column=pgsql.Identifier("embedding"),
            cast=pgsql.SQL(cast),
            opclass=pgsql.SQL(opclass),
            m=pgsql.Literal(int(m)),
            ef=pgsql.Literal(int(ef_construction)),
            cid=pgsql.Literal(int(coll.collection_id)),
        )
        yield ("execute", ddl.as_string(None), [])
        return True

    _STAGE = (
        "CREATE TEMP TABLE IF NOT EXISTS agentmem_vector_stage (id text, content text, "
        "metadata text, exact text, embedding public.vector) ON COMMIT DELETE ROWS"
    )
    _COPY = (
        "COPY agentmem_vector_stage (id, content, metadata, exact, embedding) "
        "FROM STDIN WITH (FORMAT BINARY)"
    )
    _MERGE = (
        "INSERT INTO {vectors} AS t (user_id, collection_id, id, content, metadata, exact, embedding) "
        "SELECT ?, ?, s.id, s.content, s.metadata::jsonb, s.exact::json, s.embedding "
        "FROM agentmem_vector_stage s "
        "ON CONFLICT (user_id, collection_id, id) DO UPDATE SET content = excluded.content, "
        "metadata = excluded.metadata, exact = excluded.exact, embedding = excluded.embedding, "
        "updated_at = now()"
    )

    def upsert(
        self, coll: _Collection, uid: str, rows: list[tuple[Any, ...]], matrix: np.ndarray
    ) -> Plan:
        yield ("execute", "SET LOCAL client_min_messages = warning", [])
        yield ("execute", self._STAGE, [])
        size = self.s.batch_size
        for start in range(0, len(rows), size):
            batch = [(*rows[i], matrix[i]) for i in range(start, min(start + size, len(rows)))]
            yield ("copy", self._COPY, batch)
            yield ("execute", self._MERGE, [uid, coll.collection_id])
            yield ("execute", "TRUNCATE agentmem_vector_stage", [])
        return len(rows)

    def _select(self, coll: _Collection, with_embeddings: bool) -> str:
        op = _PG_OPERATOR[coll.distance]
        emb = ", v.embedding" if with_embeddings else ""
        return (
            f"SELECT v.id, v.content, v.metadata, v.exact, (v.embedding {op} ?::vector) AS d{emb} "  # noqa: S608 (fixed fragments; values are parameters)
            "FROM {vectors} v "
        )

    def _exact(
        self,
        coll: _Collection,
        uid: str,
        q: np.ndarray,
        k: int,
        fsql: str,
        fparams: list[Any],
        with_embeddings: bool,
    ) -> Step:
        # Ordering by the plain column (not the indexed cast expression) cannot use the
        # HNSW index: this plan is exact.
        return (
            "fetchall",
            self._select(coll, with_embeddings)
            + "WHERE v.user_id = ? AND v.collection_id = ? AND "
            + fsql
            + " ORDER BY d, v.id LIMIT ?",
            [q, uid, coll.collection_id, *fparams, k],
        )

    def _indexed(
        self,
        coll: _Collection,
        uid: str,
        q: np.ndarray,
        k: int,
        fsql: str,
        fparams: list[Any],
        with_embeddings: bool,
    ) -> Step:
        op = _PG_OPERATOR[coll.distance]
        cast = self._cast(coll)
        # collection_id as a literal so that the partial index matches any plan.
        return (
            "fetchall",
            self._select(coll, with_embeddings)
            + f"WHERE v.collection_id = {int(coll.collection_id)} AND v.user_id = ? AND "
            + fsql
            + f" ORDER BY (v.embedding::{cast}) {op} (?::vector)::{cast} LIMIT ?",
            [q, uid, *fparams, q, k],
        )

    def search(
        self,
        coll: _Collection,
        uid: str,
        q: np.ndarray,
        k: int,
        filter: Mapping[str, Any] | None,
        with_embeddings: bool,
        ef_search: int | None,
    ) -> Plan:
        s = self.s
        fsql, fparams = compile_filter(filter, self.json)
        has_index = coll.dims <= _HALFVEC_INDEX_MAX and not (
            coll.dims > _VECTOR_INDEX_MAX and (s._server_version or (0, 0, 0)) < (0, 7, 0)
        )
        threshold = s.exact_search_threshold
        if not has_index:
            small = True
        elif s._large_scope and filter is None:
            # Counted before: scopes rarely shrink, and if this one did, the indexed path
            # below still answers in full (exact fallback).
            small = False
        else:
            # An HNSW graph searched under a filter that keeps a small share of the
            # collection misses true neighbours, iterative scans or not: the scope (with
            # its filter) must hold at least `hnsw_min_share` of the collection, and more
            # than exact_search_threshold rows, before the index is used.
            row = yield (
                "fetchone",
                # The collection's size: its index's row count (set by index builds and
                # VACUUM), else the whole table's (larger: more exact searches, never fewer).
                "SELECT greatest(coalesce((SELECT CASE WHEN reltuples > 0 THEN reltuples END "
                "FROM pg_class WHERE oid = to_regclass(?)), "
                "(SELECT reltuples FROM pg_class WHERE oid = to_regclass(?)), 0), 0)",
                [f'"{s.engine.schema}".{self.index_name(coll)}', f'"{s.engine.schema}".vectors'],
            )
            limit = max(threshold, math.ceil(float(row[0]) * s.hnsw_min_share))
            row = yield (
                "fetchone",
                "SELECT count(*) FROM (SELECT 1 FROM {vectors} v WHERE v.user_id = ? "  # noqa: S608 (fixed fragments; values are parameters)
                "AND v.collection_id = ? AND " + fsql + " LIMIT ?) s",
                [uid, coll.collection_id, *fparams, limit + 1],
            )
            small = int(row[0]) <= limit
            if filter is None:
                s._large_scope = not small
        if small:
            rows = yield self._exact(coll, uid, q, k, fsql, fparams, with_embeddings)
            return rows
        iterative = s._iterative_mode()
        ef = max(ef_search or s.ef_search or _DEFAULT_EF_SEARCH, k)
        if iterative is None:
            ef = max(ef, s.legacy_ef_search)
        # Custom plans only: a generic plan of this prepared statement cannot see how many
        # rows the user holds and may trade the HNSW index for a scan of the scope.
        yield (
            "execute",
            "SELECT set_config('hnsw.ef_search', ?, true), set_config('plan_cache_mode', 'force_custom_plan', true)",
            [str(min(ef, 1000))],
        )
        if iterative is not None:
            yield (
                "execute",
                "SELECT set_config('hnsw.iterative_scan', ?, true), set_config('hnsw.max_scan_tuples', ?, true)",
                [iterative, str(s.max_scan_tuples)],
            )
        rows = yield self._indexed(coll, uid, q, k, fsql, fparams, with_embeddings)
        if len(rows) < k:
            # The scope (or the filter) kept fewer than k of the candidates the index
            # handed out: answer exactly instead of short.
            rows = yield self._exact(coll, uid, q, k, fsql, fparams, with_embeddings)
        return rows

    def text_search(
        self,
        coll: _Collection,
        uid: str,
        tokens: list[str],
        k: int,
        filter: Mapping[str, Any] | None,
    ) -> Plan:
        fsql, fparams = compile_filter(filter, self.json)
        rows = yield (
            "fetchall",
            "SELECT v.id, v.content, v.metadata, v.exact, ts_rank_cd(v.tsv, tq) AS r "
            "FROM {vectors} v, to_tsquery('simple', ?) tq "
            "WHERE v.user_id = ? AND v.collection_id = ? AND v.tsv @@ tq AND "
            + fsql
            + " ORDER BY r DESC, v.id LIMIT ?",
            [" | ".join(tokens), uid, coll.collection_id, *fparams, k],
        )
        return rows


class _SQLiteOps(_Ops):
    json = SQLiteJson()

    def upsert(
        self, coll: _Collection, uid: str, rows: list[tuple[Any, ...]], matrix: np.ndarray
    ) -> Plan:
        blobs = matrix.astype("<f4", copy=False)
        yield (
            "executemany",
            "INSERT INTO {vectors} (user_id, collection_id, id, content, metadata, exact, embedding) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, collection_id, id) DO UPDATE SET "
            "content = excluded.content, metadata = excluded.metadata, exact = excluded.exact, "
            "embedding = excluded.embedding, updated_at = {now}",
            [(uid, coll.collection_id, *r, blobs[i].tobytes()) for i, r in enumerate(rows)],
        )
        return len(rows)

    def search(
        self,
        coll: _Collection,
        uid: str,
        q: np.ndarray,
        k: int,
        filter: Mapping[str, Any] | None,
        with_embeddings: bool,
        ef_search: int | None,
    ) -> Plan:
        fsql, fparams = compile_filter(filter, self.json)
        cand = yield (
            "fetchall",
            "SELECT v.rowid, v.embedding FROM {vectors} v "  # noqa: S608 (fixed fragments; values are parameters)
            "WHERE v.user_id = ? AND v.collection_id = ? AND " + fsql,
            [uid, coll.collection_id, *fparams],
        )
        if not cand:
            return []
        matrix = np.frombuffer(b"".join(r[1] for r in cand), dtype="<f4").reshape(
            len(cand), coll.dims
        )
        dist = _distances(matrix, q, coll.distance)
        top = _top_k(dist, k)
        rowids = [int(cand[i][0]) for i in top]
        emb = ", v.embedding" if with_embeddings else ""
        rows = yield (
            "fetchall",
            f"SELECT v.rowid, v.id, v.content, v.metadata, v.exact{emb} FROM {{vectors}} v "  # noqa: S608 (fixed fragments; values are parameters)
            "WHERE v.rowid IN (SELECT value FROM json_each(?))",
            [dumps(rowids)],
        )
        by_rowid = {r[0]: r for r in rows}
        out = []
        for i in top:
            r = by_rowid[int(cand[i][0])]
            vec = np.frombuffer(r[5], dtype="<f4") if with_embeddings else None
            out.append(
                (r[1], r[2], r[3], r[4], float(dist[i]), *([vec] if with_embeddings else []))
            )
        return out

    def text_search(
        self,
        coll: _Collection,
        uid: str,
        tokens: list[str],
        k: int,
        filter: Mapping[str, Any] | None,
    ) -> Plan:
        fsql, fparams = compile_filter(filter, self.json)
        match = " OR ".join(f'"{t}"' for t in tokens)
        rows = yield (
            "fetchall",
            "SELECT v.id, v.content, v.metadata, v.exact, bm25({vectors_fts}) AS r "
            "FROM {vectors_fts} JOIN {vectors} v ON v.rowid = {vectors_fts}.rowid "
            "WHERE {vectors_fts} MATCH ? AND v.user_id = ? AND v.collection_id = ? AND "
            + fsql
            + " ORDER BY r, v.id LIMIT ?",
            [match, uid, coll.collection_id, *fparams, k],
        )
        return rows


def _distances(matrix: np.ndarray, q: np.ndarray, distance: str) -> np.ndarray:
    m = matrix.astype(np.float64)
    qv = q.astype(np.float64)
    if distance == "l2":
        return np.sqrt(((m - qv) ** 2).sum(axis=1))
    dots = m @ qv
    if distance == "inner_product":
        return -dots
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - dots / (np.linalg.norm(m, axis=1) * np.linalg.norm(qv))


def _top_k(dist: np.ndarray, k: int) -> list[int]:
    n = len(dist)
    if k >= n:
        idx = np.arange(n)
    else:
        idx = np.argpartition(dist, k - 1)[:k]
    return sorted(idx.tolist(), key=lambda i: (math.inf if math.isnan(dist[i]) else dist[i], i))


def _run(tx: Any, plan: Plan) -> Any:
    """Drive ``plan`` on a sync :class:`~.engine.Transaction`."""
    try:
        step = next(plan)
        while True:
            method, query, params = step
            if method == "copy":
                tx.copy_rows(query, _STAGE_TYPES, params)
                result = None
            else:
                result = getattr(tx, method)(query, params)
            step = plan.send(result)
    except StopIteration as stop:
        return stop.value


async def _arun(tx: Any, plan: Plan) -> Any:
    """Drive ``plan`` on an :class:`~.engine.AsyncTransaction`."""
    try:
        step = next(plan)
        while True:
            method, query, params = step
            if method == "copy":
                await tx.copy_rows(query, _STAGE_TYPES, params)
                result = None
            else:
                result = await getattr(tx, method)(query, params)
            step = plan.send(result)
    except StopIteration as stop:
        return stop.value


def _hits(rows: Sequence[Sequence[Any]], with_embeddings: bool) -> list[_Hit]:
    hits = []
    for r in rows:
        emb = r[5] if with_embeddings else None
        if emb is not None and not isinstance(emb, np.ndarray):
            emb = np.asarray(emb.to_numpy() if hasattr(emb, "to_numpy") else emb, dtype=np.float32)
        hits.append(_Hit(r[0], r[1], r[2], r[3], float(r[4]), emb))
    # Postgres' indexed plan orders by the indexed (possibly half-precision) expression;
    # report in the order of the exact distances returned.
    hits.sort(key=lambda h: math.inf if math.isnan(h.distance) else h.distance)
    return hits


class MemoryVectorStore(VectorStore):
    """Semantic memories of one user in one collection, on Postgres (pgvector) or SQLite.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        embeddings: any LangChain ``Embeddings``.
        collection: the collection name (any string). A collection fixes the embedding
            size and distance; it is registered (with its HNSW index on Postgres) on the
            first write.
        user_id: the tenant; every read and write is scoped to it.
        distance: ``"cosine"`` (default), ``"l2"`` or ``"inner_product"``. Scores from
            ``similarity_search_with_score`` are distances (lower is closer): cosine
            distance, Euclidean distance, negative inner product.
        model: optional model name recorded on the collection.
        m: HNSW ``m`` for a new collection (default 16).
        ef_construction: HNSW ``ef_construction`` for a new collection (default 64).
        ef_search: HNSW ``ef_search`` per query (default 80, at least ``k``);
            each search method also takes ``ef_search=``.
        exact_search_threshold: Postgres: a scope (with its filter) of at most this many
            rows is searched exactly (default 1,000).
        hnsw_min_share: Postgres: a scope (with its filter) that holds less than this
            share of the collection's rows is searched exactly too (default 0.1): an
            HNSW graph searched under a very selective filter misses true neighbours,
            with iterative scans as well (measured: recall@10 0.89 to 0.98 at 0.5%).
        iterative_scan: Postgres: ``"auto"`` (pgvector 0.8+ uses ``strict_order``
            iterative index scans), ``"strict_order"``, ``"relaxed_order"``, or ``"off"``
            (the path for pgvector older than 0.8: a raised ``ef_search``, then exact
            search when the index left fewer than ``k`` rows).
        max_scan_tuples: Postgres: ``hnsw.max_scan_tuples`` for iterative scans
            (default 50,000).
        legacy_ef_search: ``ef_search`` used without iterative scans (default 200).
        batch_size: Postgres: rows per binary ``COPY`` batch when adding (default 5,000);
            all batches of one call commit together.
        defer_index: Postgres: a collection this store registers gets no HNSW index
            until :meth:`create_index` is called (load first, index once: a much faster
            bulk load). Searches stay exact, and correct, meanwhile.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_agentmem import connect
        >>> engine = connect("sqlite://"); _ = engine.migrate()
        >>> store = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=4), user_id="bob")
        >>> ids = store.add_texts(["I like tea"], [{"topic": "drinks"}])
        >>> store.similarity_search("tea", k=1, filter={"topic": "drinks"})[0].page_content
        'I like tea'
    """

    def __init__(
        self,
        engine: Engine,
        embeddings: Embeddings,
        *,
        collection: str = "default",
        user_id: str = "default",
        distance: DistanceStrategy = "cosine",
        model: str | None = None,
        m: int = 16,
        ef_construction: int = 64,
        ef_search: int | None = None,
        exact_search_threshold: int = 1000,
        iterative_scan: Literal["auto", "strict_order", "relaxed_order", "off"] = "auto",
        max_scan_tuples: int = 50_000,
        legacy_ef_search: int = 200,
        batch_size: int = _COPY_BATCH,
        defer_index: bool = False,
        hnsw_min_share: float = 0.1,
    ) -> None:
        if not isinstance(engine, Engine):
            raise TypeError(
                f"expected an Engine from langchain_agentmem.connect(), got {type(engine).__name__}"
            )
        if distance not in _DISTANCES:
            raise ValueError(
                f"unknown distance {distance!r}: expected one of {', '.join(_DISTANCES)}"
            )
        if not isinstance(collection, str) or not collection:
            raise ValueError(f"collection must be a non-empty str, got {collection!r}")
        if iterative_scan not in ("auto", "strict_order", "relaxed_order", "off"):
            raise ValueError(
                f"unknown iterative_scan {iterative_scan!r}: expected auto, strict_order, relaxed_order or off"
            )
        for name, value, low in (
            ("m", m, 2),
            ("ef_construction", ef_construction, 4),
            ("exact_search_threshold", exact_search_threshold, 0),
            ("max_scan_tuples", max_scan_tuples, 1),
            ("legacy_ef_search", legacy_ef_search, 1),
            ("batch_size", batch_size, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if ef_search is not None and (not isinstance(ef_search, int) or not 1 <= ef_search <= 1000):
            raise ValueError(f"ef_search must be an int from 1 to 1000, got {ef_search!r}")
        self.engine = engine
        self._embeddings = embeddings
        self.collection = collection
        self.user_id = user_id
        self._uid = encode_key(user_id)
        self.distance = distance
        self.model = model
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.exact_search_threshold = exact_search_threshold
        self.iterative_scan = iterative_scan
        self.max_scan_tuples = max_scan_tuples
        self.legacy_ef_search = legacy_ef_search
        self.batch_size = batch_size
        self.defer_index = bool(defer_index)
        if not isinstance(hnsw_min_share, (int, float)) or not 0.0 <= hnsw_min_share <= 1.0:
            raise ValueError(f"hnsw_min_share must be a number from 0 to 1, got {hnsw_min_share!r}")
        self.hnsw_min_share = float(hnsw_min_share)
        self._ops: _Ops = (
            _PgOps(self) if isinstance(engine.dialect, PostgresDialect) else _SQLiteOps(self)
        )
        self._coll: _Collection | None = None
        self._server_version: tuple[int, ...] | None = None
        self._large_scope = False  # this store's scope was seen above exact_search_threshold

    def __repr__(self) -> str:
        return f"MemoryVectorStore(collection={self.collection!r}, user_id={self.user_id!r}, distance={self.distance!r})"

    @property
    def embeddings(self) -> Embeddings:
        return self._embeddings

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        if self.distance == "cosine":
            return self._cosine_relevance_score_fn
        if self.distance == "l2":
            return self._euclidean_relevance_score_fn
        return self._max_inner_product_relevance_score_fn

    def _iterative_mode(self) -> str | None:
        if self.iterative_scan == "off" or (self._server_version or (0, 0, 0)) < (0, 8, 0):
            return None  # iterative index scans came with pgvector 0.8
        return "strict_order" if self.iterative_scan == "auto" else self.iterative_scan

    # -- collection -----------------------------------------------------------------------
    def _check_collection(self, coll: _Collection | None) -> _Collection | None:
        if coll is not None and coll.distance != self.distance:
            raise ValueError(
                f"collection {self.collection!r} uses distance {coll.distance!r}, not {self.distance!r}: "
                "open it with the same distance"
            )
        self._coll = coll
        return coll

    def _collection(self, dims: int | None) -> _Collection | None:
        """The collection, registered with ``dims`` when it does not exist yet."""
        if self._coll is not None:
            return self._coll
        with self.engine.transaction(self._uid, readonly=True) as tx:
            if self._server_version is None:
                self._server_version = _run(tx, self._ops.server_info()) or (0, 0, 0)
            coll = _run(tx, self._ops.lookup())
        if coll is None and dims is not None:
            with self.engine.transaction(self._uid) as tx:
                coll = _run(tx, self._ops.create(dims))
        return self._check_collection(coll)

    async def _acollection(self, dims: int | None) -> _Collection | None:
        if self._coll is not None:
            return self._coll
        async with self.engine.atransaction(self._uid, readonly=True) as tx:
            if self._server_version is None:
                self._server_version = await _arun(tx, self._ops.server_info()) or (0, 0, 0)
            coll = await _arun(tx, self._ops.lookup())
        if coll is None and dims is not None:
            async with self.engine.atransaction(self._uid) as tx:
                coll = await _arun(tx, self._ops.create(dims))
        return self._check_collection(coll)

    # -- writes -----------------------------------------------------------------------------
    def _prepare(
        self,
        texts: Iterable[str],
        metadatas: Sequence[Mapping[str, Any] | None] | None,
        ids: Sequence[str | None] | None,
    ) -> tuple[list[str], list[tuple[Any, ...]], list[str]]:
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, got a single str")
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(
                f"expected {len(texts)} metadatas (one per text), got {len(metadatas)}"
            )
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"expected {len(texts)} ids (one per text), got {len(ids)}")
        out_ids = [i if i is not None else str(uuid.uuid4()) for i in (ids or [None] * len(texts))]
        for i in out_ids:
            if not isinstance(i, str):
                raise TypeError(f"ids must be strings, got {type(i).__name__}: {i!r}")
        rows = [
            _row(i, t, (metadatas[n] if metadatas else None) or {})
            for n, (i, t) in enumerate(zip(out_ids, texts, strict=True))
        ]
        return texts, rows, out_ids

    @staticmethod
    def _dedupe(
        rows: list[tuple[Any, ...]], matrix: np.ndarray
    ) -> tuple[list[tuple[Any, ...]], np.ndarray]:
        last = {r[0]: n for n, r in enumerate(rows)}
        if len(last) == len(rows):
            return rows, matrix
        keep = sorted(last.values())
        return [rows[n] for n in keep], matrix[keep]

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed ``texts`` and store them (replacing rows with the same ids), atomically.

        Args:
            texts: the texts.
            metadatas: one JSON-serializable dict per text.
            ids: one id per text (any string); new UUIDs when omitted.

        Returns:
            The ids, in order.

        Raises:
            ValueError: an embedding's size differs from the collection's (the message
                names both sizes), or the counts of texts, metadatas and ids differ.
        """
        _no_kwargs(kwargs, "add_texts")
        texts, rows, out_ids = self._prepare(texts, metadatas, ids)
        if not rows:
            return []
        vectors = self._embeddings.embed_documents(texts)
        return self._add_rows(rows, vectors, out_ids)

    def _add_rows(
        self, rows: list[tuple[Any, ...]], vectors: Sequence[Sequence[float]], out_ids: list[str]
    ) -> list[str]:
        coll = self._coll
        matrix = _as_matrix(vectors, coll.dims if coll else None, "text")
        coll = self._collection(matrix.shape[1])
        matrix = _as_matrix(matrix, coll.dims if coll else None, "text")
        rows, matrix = self._dedupe(rows, matrix)
        with self.engine.transaction(self._uid) as tx:
            _run(tx, self._ops.upsert(coll, self._uid, rows, matrix))  # type: ignore[arg-type]
        return out_ids

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async form of :meth:`add_texts`."""
        _no_kwargs(kwargs, "aadd_texts")
        texts, rows, out_ids = self._prepare(texts, metadatas, ids)
        if not rows:
            return []
        vectors = await self._embeddings.aembed_documents(texts)
        coll = self._coll
        matrix = _as_matrix(vectors, coll.dims if coll else None, "text")
        coll = await self._acollection(matrix.shape[1])
        matrix = _as_matrix(matrix, coll.dims if coll else None, "text")
        rows, matrix = self._dedupe(rows, matrix)
        async with self.engine.atransaction(self._uid) as tx:
            await _arun(tx, self._ops.upsert(coll, self._uid, rows, matrix))  # type: ignore[arg-type]
        return out_ids

    def add_embeddings(
        self,
        texts: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        metadatas: Sequence[Mapping[str, Any]] | None = None,
        *,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Store texts with embeddings computed elsewhere (bulk ingest), atomically.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_agentmem import connect
            >>> engine = connect("sqlite://"); _ = engine.migrate()
            >>> store = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=2))
            >>> store.add_embeddings(["a"], [[0.0, 1.0]], ids=["a"])
            ['a']
            >>> store.add_embeddings(["b"], [[0.0, 1.0, 2.0]])
            Traceback (most recent call last):
            ...
            ValueError: wrong embedding size for text 0: expected 2 dimensions, got 3
        """
        _, rows, out_ids = self._prepare(texts, metadatas, ids)
        if len(embeddings) != len(rows):
            raise ValueError(
                f"expected {len(rows)} embeddings (one per text), got {len(embeddings)}"
            )
        if not rows:
            return []
        return self._add_rows(rows, embeddings, out_ids)

    async def aadd_embeddings(
        self,
        texts: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        metadatas: Sequence[Mapping[str, Any]] | None = None,
        *,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Async form of :meth:`add_embeddings`."""
        _, rows, out_ids = self._prepare(texts, metadatas, ids)
        if len(embeddings) != len(rows):
            raise ValueError(
                f"expected {len(rows)} embeddings (one per text), got {len(embeddings)}"
            )
        if not rows:
            return []
        coll = self._coll
        matrix = _as_matrix(embeddings, coll.dims if coll else None, "text")
        coll = await self._acollection(matrix.shape[1])
        matrix = _as_matrix(matrix, coll.dims if coll else None, "text")
        rows, matrix = self._dedupe(rows, matrix)
        async with self.engine.atransaction(self._uid) as tx:
            await _arun(tx, self._ops.upsert(coll, self._uid, rows, matrix))  # type: ignore[arg-type]
        return out_ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete rows of this user's collection by ``ids``, by ``filter=``, or both
        (rows matching both). ``filter={}`` deletes the whole scope. Missing ids are
        ignored.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_agentmem import connect
            >>> engine = connect("sqlite://"); _ = engine.migrate()
            >>> store = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=4))
            >>> _ = store.add_texts(["a", "b"], [{"n": 1}, {"n": 2}], ids=["a", "b"])
            >>> store.delete(filter={"n": {"$gt": 1}})
            True
            >>> [d.id for d in store.get_by_ids(["a", "b"])]
            ['a']
        """
        ids_, filter = _delete_args(ids, kwargs)
        coll = self._collection(None)
        if coll is None:
            return True
        with self.engine.transaction(self._uid) as tx:
            _run(tx, self._ops.delete(coll, self._uid, ids_, filter))
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Async form of :meth:`delete`."""
        ids_, filter = _delete_args(ids, kwargs)
        coll = await self._acollection(None)
        if coll is None:
            return True
        async with self.engine.atransaction(self._uid) as tx:
            await _arun(tx, self._ops.delete(coll, self._uid, ids_, filter))
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids (missing ids are skipped), in the order asked."""
        keys = _keys(ids)
        coll = self._collection(None)
        if coll is None or not keys:
            return []
        with self.engine.transaction(self._uid, readonly=True) as tx:
            hits = _run(tx, self._ops.get(coll, self._uid, keys))
        return _in_order(hits, keys)

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Async form of :meth:`get_by_ids`."""
        keys = _keys(ids)
        coll = await self._acollection(None)
        if coll is None or not keys:
            return []
        async with self.engine.atransaction(self._uid, readonly=True) as tx:
            hits = await _arun(tx, self._ops.get(coll, self._uid, keys))
        return _in_order(hits, keys)

    def create_index(self, *, maintenance_work_mem: str | None = "512MB") -> bool:
        """Build the collection's HNSW index if it does not exist (Postgres; a no-op on
        SQLite). Use after a bulk load with ``defer_index=True``. The build blocks writes
        to the ``vectors`` table while it runs. Returns whether an index exists now.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_agentmem import connect
            >>> engine = connect("sqlite://"); _ = engine.migrate()
            >>> store = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=4), defer_index=True)
            >>> _ = store.add_texts(["a", "b"])
            >>> store.create_index()
            False
        """
        coll = self._collection(None)
        if coll is None:
            return False
        with self.engine.transaction(self._uid) as tx:
            return bool(_run(tx, self._ops.create_index(coll, maintenance_work_mem)))

    async def acreate_index(self, *, maintenance_work_mem: str | None = "512MB") -> bool:
        """Async form of :meth:`create_index`."""
        coll = await self._acollection(None)
        if coll is None:
            return False
        async with self.engine.atransaction(self._uid) as tx:
            return bool(await _arun(tx, self._ops.create_index(coll, maintenance_work_mem)))

    # -- search -----------------------------------------------------------------------------
    def _query_vector(self, embedding: Sequence[float], coll: _Collection) -> np.ndarray:
        return _as_matrix([embedding], coll.dims, "query")[0]

    def _search_hits(
        self,
        embedding: Sequence[float],
        k: int,
        filter: Mapping[str, Any] | None,
        *,
        with_embeddings: bool = False,
        ef_search: int | None = None,
    ) -> list[_Hit]:
        _check_k(k)
        compile_filter(filter, self._ops.json)  # malformed filters fail even on empty stores
        coll = self._collection(None)
        if coll is None:
            _as_matrix([embedding], None, "query")
            return []
        q = self._query_vector(embedding, coll)
        if k == 0:
            return []
        plan = self._ops.search(coll, self._uid, q, k, filter, with_embeddings, ef_search)
        with self.engine.transaction(
            self._uid, readonly=self._ops.search_readonly, pipeline=True
        ) as tx:
            rows = _run(tx, plan)
        return _hits(rows, with_embeddings)

    async def _asearch_hits(
        self,
        embedding: Sequence[float],
        k: int,
        filter: Mapping[str, Any] | None,
        *,
        with_embeddings: bool = False,
        ef_search: int | None = None,
    ) -> list[_Hit]:
        _check_k(k)
        compile_filter(filter, self._ops.json)
        coll = await self._acollection(None)
        if coll is None:
            _as_matrix([embedding], None, "query")
            return []
        q = self._query_vector(embedding, coll)
        if k == 0:
            return []
        plan = self._ops.search(coll, self._uid, q, k, filter, with_embeddings, ef_search)
        async with self.engine.atransaction(
            self._uid, readonly=self._ops.search_readonly, pipeline=True
        ) as tx:
            rows = await _arun(tx, plan)
        return _hits(rows, with_embeddings)

    def similarity_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents closest to ``query`` in this user's collection that pass
        ``filter`` (see :mod:`langchain_agentmem._filters` for the operators)."""
        return [d for d, _ in self.similarity_search_with_score(query, k, filter=filter, **kwargs)]

    async def asimilarity_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async form of :meth:`similarity_search`."""
        return [
            d
            for d, _ in await self.asimilarity_search_with_score(query, k, filter=filter, **kwargs)
        ]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Like :meth:`similarity_search`, with each document's distance (lower is closer)."""
        ef_search = _search_kwargs(kwargs)
        _check_k(k)
        compile_filter(filter, self._ops.json)
        embedding = self._embeddings.embed_query(query)
        return self.similarity_search_with_score_by_vector(
            embedding, k, filter=filter, ef_search=ef_search
        )

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async form of :meth:`similarity_search_with_score`."""
        ef_search = _search_kwargs(kwargs)
        _check_k(k)
        compile_filter(filter, self._ops.json)
        embedding = await self._embeddings.aembed_query(query)
        return await self.asimilarity_search_with_score_by_vector(
            embedding, k, filter=filter, ef_search=ef_search
        )

    def similarity_search_with_score_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Like :meth:`similarity_search_with_score`, for an embedding."""
        ef_search = _search_kwargs(kwargs)
        hits = self._search_hits(embedding, k, filter, ef_search=ef_search)
        return [(h.document(), h.distance) for h in hits]

    async def asimilarity_search_with_score_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Async form of :meth:`similarity_search_with_score_by_vector`."""
        ef_search = _search_kwargs(kwargs)
        hits = await self._asearch_hits(embedding, k, filter, ef_search=ef_search)
        return [(h.document(), h.distance) for h in hits]

    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """The ``k`` documents closest to ``embedding``."""
        return [
            d
            for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        ]

    async def asimilarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async form of :meth:`similarity_search_by_vector`."""
        return [
            d
            for d, _ in await self.asimilarity_search_with_score_by_vector(
                embedding, k, filter, **kwargs
            )
        ]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` documents relevant to ``query`` yet diverse, picked from the ``fetch_k``
        closest (maximal marginal relevance)."""
        _check_k(k)
        _check_k(fetch_k, "fetch_k")
        embedding = self._embeddings.embed_query(query)
        return self.max_marginal_relevance_search_by_vector(
            embedding, k, fetch_k, lambda_mult, filter, **kwargs
        )

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async form of :meth:`max_marginal_relevance_search`."""
        _check_k(k)
        _check_k(fetch_k, "fetch_k")
        embedding = await self._embeddings.aembed_query(query)
        return await self.amax_marginal_relevance_search_by_vector(
            embedding, k, fetch_k, lambda_mult, filter, **kwargs
        )

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Maximal marginal relevance for an embedding."""
        ef_search = _search_kwargs(kwargs)
        _check_mmr(k, fetch_k, lambda_mult)
        hits = self._search_hits(
            embedding, max(fetch_k, k), filter, with_embeddings=True, ef_search=ef_search
        )
        return _mmr(embedding, hits, k, lambda_mult)

    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async form of :meth:`max_marginal_relevance_search_by_vector`."""
        ef_search = _search_kwargs(kwargs)
        _check_mmr(k, fetch_k, lambda_mult)
        hits = await self._asearch_hits(
            embedding, max(fetch_k, k), filter, with_embeddings=True, ef_search=ef_search
        )
        return _mmr(embedding, hits, k, lambda_mult)

    # -- hybrid -----------------------------------------------------------------------------
    def hybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        *,
        filter: dict[str, Any] | None = None,
        fetch_k: int = 20,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
    ) -> list[tuple[Document, float]]:
        """Dense and full-text search fused by reciprocal rank: each of the two result
        lists (``fetch_k`` long) adds ``weight / (rrf_k + rank)`` to a document's score.
        Full text is Postgres ``tsvector`` (``simple`` configuration) or SQLite FTS5;
        query words are OR-ed.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_agentmem import connect
            >>> engine = connect("sqlite://"); _ = engine.migrate()
            >>> store = MemoryVectorStore(engine, DeterministicFakeEmbedding(size=8))
            >>> _ = store.add_texts(["the invoice number is 4711", "lunch at noon"], ids=["i", "l"])
            >>> [d.id for d, _ in store.hybrid_search_with_score("invoice 4711", k=1)]
            ['i']
        """
        _check_hybrid(k, fetch_k, rrf_k, weights)
        compile_filter(filter, self._ops.json)
        embedding = self._embeddings.embed_query(query)
        dense = self._search_hits(embedding, fetch_k, filter)
        coll = self._coll
        tokens = _fts_tokens(query)
        text: list[_Hit] = []
        if coll is not None and tokens and fetch_k:
            with self.engine.transaction(self._uid, readonly=True) as tx:
                rows = _run(tx, self._ops.text_search(coll, self._uid, tokens, fetch_k, filter))
            text = [_Hit(r[0], r[1], r[2], r[3], float(r[4])) for r in rows]
        return [(h.document(), s) for h, s in _rrf([dense, text], k, rrf_k, weights)]

    async def ahybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        *,
        filter: dict[str, Any] | None = None,
        fetch_k: int = 20,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
    ) -> list[tuple[Document, float]]:
        """Async form of :meth:`hybrid_search_with_score`."""
        _check_hybrid(k, fetch_k, rrf_k, weights)
        compile_filter(filter, self._ops.json)
        embedding = await self._embeddings.aembed_query(query)
        dense = await self._asearch_hits(embedding, fetch_k, filter)
        coll = self._coll
        tokens = _fts_tokens(query)
        text: list[_Hit] = []
        if coll is not None and tokens and fetch_k:
            async with self.engine.atransaction(self._uid, readonly=True) as tx:
                rows = await _arun(
                    tx, self._ops.text_search(coll, self._uid, tokens, fetch_k, filter)
                )
            text = [_Hit(r[0], r[1], r[2], r[3], float(r[4])) for r in rows]
        return [(h.document(), s) for h, s in _rrf([dense, text], k, rrf_k, weights)]

    def hybrid_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """Documents of :meth:`hybrid_search_with_score`."""
        return [d for d, _ in self.hybrid_search_with_score(query, k, **kwargs)]

    async def ahybrid_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """Async form of :meth:`hybrid_search`."""
        return [d for d, _ in await self.ahybrid_search_with_score(query, k, **kwargs)]

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        engine: Engine | None = None,
        **kwargs: Any,
    ) -> MemoryVectorStore:
        """A store (``engine=`` and the constructor's keywords) holding ``texts``.

        Example:
            >>> from langchain_core.embeddings import DeterministicFakeEmbedding
            >>> from langchain_agentmem import connect
            >>> engine = connect("sqlite://"); _ = engine.migrate()
            >>> store = MemoryVectorStore.from_texts(["hi"], DeterministicFakeEmbedding(size=4), engine=engine)
            >>> store.similarity_search("hi", k=1)[0].page_content
            'hi'
        """
        if engine is None:
            raise TypeError(
                "from_texts() needs engine=: an Engine from langchain_agentmem.connect()"
            )
        store = cls(engine, embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        engine: Engine | None = None,
        **kwargs: Any,
    ) -> MemoryVectorStore:
        """Async form of :meth:`from_texts`."""
        if engine is None:
            raise TypeError(
                "afrom_texts() needs engine=: an Engine from langchain_agentmem.connect()"
            )
        store = cls(engine, embedding, **kwargs)
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store


def _no_kwargs(kwargs: Mapping[str, Any], where: str) -> None:
    if kwargs:
        raise TypeError(
            f"{where}() got unexpected keyword argument(s): {', '.join(sorted(kwargs))}"
        )


def _search_kwargs(kwargs: dict[str, Any]) -> int | None:
    ef_search = kwargs.pop("ef_search", None)
    kwargs.pop("score_threshold", None)  # applied by LangChain's relevance-score wrapper
    if kwargs:
        raise TypeError(f"unexpected search keyword argument(s): {', '.join(sorted(kwargs))}")
    if ef_search is not None and (not isinstance(ef_search, int) or not 1 <= ef_search <= 1000):
        raise ValueError(f"ef_search must be an int from 1 to 1000, got {ef_search!r}")
    return ef_search


def _delete_args(
    ids: Sequence[str] | None, kwargs: dict[str, Any]
) -> tuple[list[str] | None, Mapping[str, Any] | None]:
    filter = kwargs.pop("filter", None)
    _no_kwargs(kwargs, "delete")
    if ids is None and filter is None:
        raise ValueError("delete() needs ids, filter=, or both (filter={} deletes the whole scope)")
    return (_keys(ids) if ids is not None else None), filter


def _keys(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str):
        raise TypeError("ids must be a list of strings, got a single str")
    return [encode_key(i) for i in ids]


def _in_order(hits: list[_Hit], keys: list[str]) -> list[Document]:
    by_id = {h.id: h for h in hits}
    seen: set[str] = set()
    out = []
    for key in keys:
        if key in by_id and key not in seen:
            seen.add(key)
            out.append(by_id[key].document())
    return out


def _check_mmr(k: int, fetch_k: int, lambda_mult: float) -> None:
    _check_k(k)
    _check_k(fetch_k, "fetch_k")
    if not isinstance(lambda_mult, (int, float)) or not 0.0 <= lambda_mult <= 1.0:
        raise ValueError(f"lambda_mult must be a number from 0 to 1, got {lambda_mult!r}")


def _mmr(
    embedding: Sequence[float], hits: list[_Hit], k: int, lambda_mult: float
) -> list[Document]:
    if not hits or k == 0:
        return []
    chosen = maximal_marginal_relevance(
        np.asarray(embedding, dtype=np.float32),
        [h.embedding for h in hits],
        lambda_mult=lambda_mult,
        k=k,
    )
    return [hits[i].document() for i in chosen]


def _check_hybrid(k: int, fetch_k: int, rrf_k: int, weights: Sequence[float]) -> None:
    _check_k(k)
    _check_k(fetch_k, "fetch_k")
    if not isinstance(rrf_k, int) or rrf_k < 1:
        raise ValueError(f"rrf_k must be a positive int, got {rrf_k!r}")
    if len(weights) != 2 or not all(isinstance(w, (int, float)) and w >= 0 for w in weights):
        raise ValueError(f"weights must be two non-negative numbers (dense, text), got {weights!r}")
