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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from ._core.plan import Atomic, Body, Embed, One, Plan, Stmt, dual, run
from ._encoding.json import clean_text, dumps, loads
from ._encoding.keys import decode_key, encode_key
from ._search.filters import Fragment, compile_filter
from ._search.vector_index import (
    SearchQuery,
    SearchSettings,
    VectorIndex,
    describe,
    distances,
    ingest,
    search_settings,
)
from .dialects import SQL, Dialect, Unnest
from .engine import EngineLike, as_engine

__all__ = ["MemoryVectorStore", "DistanceStrategy"]

DistanceStrategy = Literal["cosine", "l2", "inner_product"]
_DISTANCES = ("cosine", "l2", "inner_product")
_COPY_BATCH = 5000
_ID_COLS = [("id", "text")]
_IDS = Unnest(_ID_COLS)


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


def _jsonb_changes(value: Any) -> bool:
    """Whether Postgres ``jsonb`` would give back a number of another type or sign:
    ``-0.0`` becomes ``0.0``, and a float written with an exponent (``1e+20``) comes back
    as an integer (``jsonb`` keeps a number's decimal digits, not its form)."""
    if isinstance(value, float):
        return "e" in repr(value) or (value == 0.0 and math.copysign(1.0, value) < 0)
    if isinstance(value, Mapping):
        return any(_jsonb_changes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_jsonb_changes(v) for v in value)
    return False


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
    if content != text or clean_meta != metadata or _jsonb_changes(metadata):
        # The search columns differ from the document: keep it exactly, too.
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
# Statement bodies (pure): each runs in one transaction through the core driver.
# ---------------------------------------------------------------------------------

_SELECT = ["v.id", "v.content", "v.metadata", "v.exact"]
_INGEST_COLUMNS = [
    ("id", "text"),
    ("content", "text"),
    ("metadata", "jsonb"),
    ("exact", "json"),
    ("embedding", "vector"),
]


def _lookup_body(dialect: Dialect, name: str, version_known: bool) -> Body[tuple[Any, Any]]:
    version: tuple[int, ...] | None = None
    if not version_known:
        version, _ = yield from describe(dialect, None)
    row = yield One(
        "SELECT collection_id, dims, distance FROM {vector_collections} WHERE name = ?", [name]
    )
    coll = None if row is None else _Collection(int(row[0]), name, int(row[1]), str(row[2]))
    return coll, version


def _hits(rows: Sequence[Sequence[Any]], with_embeddings: bool) -> list[_Hit]:
    hits = []
    for r in rows:
        emb = r[4] if with_embeddings else None
        if isinstance(emb, (bytes, bytearray, memoryview)):
            emb = np.frombuffer(bytes(emb), dtype="<f4")
        elif emb is not None and not isinstance(emb, np.ndarray):
            emb = np.asarray(emb.to_numpy() if hasattr(emb, "to_numpy") else emb, dtype=np.float32)
        hits.append(_Hit(r[0], r[1], r[2], r[3], float(r[-1]), emb))
    # Postgres' indexed plan orders by the indexed (possibly half-precision) expression;
    # report in the order of the exact distances returned.
    hits.sort(key=lambda h: math.inf if math.isnan(h.distance) else h.distance)
    return hits


#: Distances as pgvector defines them (numpy); the name the tests import.
_distances = distances


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
        engine: EngineLike,
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
        engine = as_engine(engine)
        if distance not in _DISTANCES:
            raise ValueError(
                f"unknown distance {distance!r}: expected one of {', '.join(_DISTANCES)}"
            )
        if not isinstance(collection, str) or not collection:
            raise ValueError(f"collection must be a non-empty str, got {collection!r}")
        if "\x00" in collection or clean_text(collection) != collection:
            raise ValueError(
                f"collection names cannot contain NUL or lone surrogates, got {collection!r} "
                "(any other string works)"
            )
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
        if not isinstance(hnsw_min_share, (int, float)) or not 0.0 <= hnsw_min_share <= 1.0:
            raise ValueError(f"hnsw_min_share must be a number from 0 to 1, got {hnsw_min_share!r}")
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
        self.hnsw_min_share = float(hnsw_min_share)
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

    def _settings(self, ef_search: int | None) -> SearchSettings:
        return search_settings(
            exact_search_threshold=self.exact_search_threshold,
            hnsw_min_share=self.hnsw_min_share,
            iterative_scan=self.iterative_scan,
            max_scan_tuples=self.max_scan_tuples,
            legacy_ef_search=self.legacy_ef_search,
            ef_search=ef_search or self.ef_search,
        )

    def _iterative_mode(self) -> str | None:
        """The iterative scan mode searches use (``None``: the path of pgvector < 0.8)."""
        return self._index(self._coll)._iterative(self._settings(None)) if self._coll else None

    def _index(self, coll: _Collection) -> VectorIndex:
        return VectorIndex(
            self.engine.dialect,
            "vectors",
            dims=coll.dims,
            distance=coll.distance,
            index=f"vectors_c{int(coll.collection_id)}_hnsw",
            where=f"collection_id = {int(coll.collection_id)}",
            version=self._server_version or (0, 0, 0),
        )

    def _filter(self, filter: Mapping[str, Any] | None) -> Fragment:
        """The filter compiled once for the call (malformed filters fail even on empty
        stores)."""
        return compile_filter(filter, self.engine.dialect.json_sql("v.metadata"))

    # -- collection -----------------------------------------------------------------------
    def _check_collection(self, coll: _Collection | None) -> _Collection | None:
        if coll is not None and coll.distance != self.distance:
            raise ValueError(
                f"collection {self.collection!r} uses distance {coll.distance!r}, not {self.distance!r}: "
                "open it with the same distance"
            )
        self._coll = coll
        return coll

    def _create_body(self, dims: int) -> Body[_Collection | None]:
        dialect = self.engine.dialect
        lock = dialect.lock_keys([("vector_collections", self.collection)])
        if lock is not None:
            yield lock
        yield Stmt(
            "INSERT INTO {vector_collections} (name, dims, distance, model, m, ef_construction) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            [self.collection, dims, self.distance, self.model, self.m, self.ef_construction],
        )
        coll, _ = yield from _lookup_body(dialect, self.collection, True)
        if coll is not None and not self.defer_index:
            yield from self._create_index_body(coll, None)
        return coll

    def _create_index_body(self, coll: _Collection, maintenance_work_mem: str | None) -> Body[bool]:
        index = self._index(coll)
        if index.cast is None:
            return False  # SQLite, or too large for HNSW: exact search only
        row = yield One(
            "SELECT m, ef_construction FROM {vector_collections} WHERE collection_id = ?",
            [coll.collection_id],
        )
        assert row is not None
        return (yield from index.create(int(row[0]), int(row[1]), maintenance_work_mem))

    def _collection_plan(self, dims: int | None) -> Plan[_Collection | None]:
        """The collection, registered with ``dims`` when it does not exist yet."""
        if self._coll is not None:
            return self._coll
        coll, version = yield Atomic(
            _lookup_body(self.engine.dialect, self.collection, self._server_version is not None),
            readonly=True,
        )
        if version is not None:
            self._server_version = version
        if coll is None and dims is not None:
            coll = yield Atomic(self._create_body(dims))
        return self._check_collection(coll)

    def _collection(self, dims: int | None) -> _Collection | None:
        return run(self.engine, self._uid, self._collection_plan(dims))

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

    def _add_plan(
        self, rows: list[tuple[Any, ...]], vectors: Sequence[Sequence[float]], out_ids: list[str]
    ) -> Plan[list[str]]:
        coll = self._coll
        matrix = _as_matrix(vectors, coll.dims if coll else None, "text")
        coll = yield from self._collection_plan(matrix.shape[1])
        assert coll is not None
        matrix = _as_matrix(matrix, coll.dims, "text")
        rows, matrix = self._dedupe(rows, matrix)
        yield Atomic(
            ingest(
                self.engine.dialect,
                "vectors",
                fixed=[("user_id", self._uid), ("collection_id", coll.collection_id)],
                columns=_INGEST_COLUMNS,
                key=("user_id", "collection_id", "id"),
                rows=[(*r, matrix[n]) for n, r in enumerate(rows)],
                batch_size=self.batch_size,
            )
        )
        return out_ids

    @dual
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Plan[list[str]]:
        """Embed ``texts`` and store them (replacing rows with the same ids), atomically.

        Args:
            texts: the texts.
            metadatas: one JSON-serializable dict per text.
            ids: one id per text (any string); new UUIDs when omitted.
            batch_size: at most this many texts per embedding request (what
                ``add_documents`` and LangChain's indexing API ``index()`` pass); the
                texts are still stored in one transaction. Default: one request.

        Returns:
            The ids, in order.

        Raises:
            ValueError: an embedding's size differs from the collection's (the message
                names both sizes), or the counts of texts, metadatas and ids differ.
        """
        batch_size = kwargs.pop("batch_size", None)
        _no_kwargs(kwargs, "add_texts")
        if batch_size is not None and (
            not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        texts, rows, out_ids = self._prepare(texts, metadatas, ids)
        if not rows:
            return []
        step = batch_size or len(texts)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), step):
            vectors += yield Embed(self._embeddings, texts[start : start + step])
        return (yield from self._add_plan(rows, vectors, out_ids))

    aadd_texts = add_texts.async_  # type: ignore[assignment]

    @dual
    def add_embeddings(
        self,
        texts: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        metadatas: Sequence[Mapping[str, Any]] | None = None,
        *,
        ids: Sequence[str] | None = None,
    ) -> Plan[list[str]]:
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
        return (yield from self._add_plan(rows, embeddings, out_ids))

    aadd_embeddings = add_embeddings.async_

    def _delete_body(
        self, coll: _Collection, ids: list[str] | None, fsql: str, fparams: list[Any]
    ) -> Body[int]:
        dialect = self.engine.dialect
        where = SQL("v.user_id = ? AND v.collection_id = ? AND ") + SQL(fsql)
        params: list[Any] = [self._uid, coll.collection_id, *fparams]
        cols = _ID_COLS
        by_ids = SQL(" AND v.id IN (SELECT m.id FROM {ids})").format(ids=_IDS)
        if ids is None:
            return (yield Stmt(SQL("DELETE FROM {vectors} AS v WHERE ") + where, params))
        ordered = sorted(set(ids))
        lock = dialect.lock_in_order("id")
        if lock is not None:
            # Lock the rows in id order first (as the scoped writer does), then delete
            # exactly those: concurrent deletes of overlapping ids cannot deadlock.
            rows = yield Stmt(
                SQL("SELECT v.id FROM {vectors} v WHERE {where}{by_ids} {lock}").format(
                    where=where, by_ids=by_ids, lock=SQL(lock)
                ),
                [*params, *dialect.unnest_params(cols, [(i,) for i in ordered])],
                fetch=True,
            )
            ordered = [row[0] for row in rows]
            if not ordered:
                return 0
        return (
            yield Stmt(
                SQL("DELETE FROM {vectors} AS v WHERE {where}{by_ids}").format(
                    where=where, by_ids=by_ids
                ),
                [*params, *dialect.unnest_params(cols, [(i,) for i in ordered])],
            )
        )

    @dual
    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> Plan[bool | None]:
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
        fsql, fparams = self._filter(filter)
        coll = yield from self._collection_plan(None)
        if coll is None:
            return True
        yield Atomic(self._delete_body(coll, ids_, fsql, fparams), single=ids_ is None)
        return True

    adelete = delete.async_  # type: ignore[assignment]

    def _get_body(self, coll: _Collection, ids: list[str]) -> Body[list[_Hit]]:
        dialect = self.engine.dialect
        rows = yield Stmt(
            SQL(
                "SELECT v.id, v.content, v.metadata, v.exact FROM {vectors} v WHERE v.user_id = ? AND "
                "v.collection_id = ? AND v.id IN (SELECT m.id FROM {ids})"
            ).format(ids=_IDS),
            [self._uid, coll.collection_id, *dialect.unnest_params(_ID_COLS, [(i,) for i in ids])],
            fetch=True,
        )
        return [_Hit(r[0], r[1], r[2], r[3], 0.0) for r in rows]

    @dual
    def get_by_ids(self, ids: Sequence[str], /) -> Plan[list[Document]]:
        """The documents with these ids (missing ids are skipped), in the order asked."""
        keys = _keys(ids)
        coll = yield from self._collection_plan(None)
        if coll is None or not keys:
            return []
        hits = yield Atomic(self._get_body(coll, keys), readonly=True)
        return _in_order(hits, keys)

    aget_by_ids = get_by_ids.async_  # type: ignore[assignment]

    @dual
    def create_index(self, *, maintenance_work_mem: str | None = "512MB") -> Plan[bool]:
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
        coll = yield from self._collection_plan(None)
        if coll is None:
            return False
        return bool((yield Atomic(self._create_index_body(coll, maintenance_work_mem))))

    acreate_index = create_index.async_

    # -- search -----------------------------------------------------------------------------
    def _search_plan(
        self,
        embedding: Sequence[float],
        k: int,
        where: Fragment,
        *,
        with_embeddings: bool = False,
        ef_search: int | None = None,
        filtered: bool = True,
    ) -> Plan[list[_Hit]]:
        coll = yield from self._collection_plan(None)
        if coll is None:
            _as_matrix([embedding], None, "query")
            return []
        q = _as_matrix([embedding], coll.dims, "query")[0]
        if k == 0:
            return []
        index = self._index(coll)
        fsql, fparams = where
        query = SearchQuery(
            q,
            k,
            select=[*_SELECT, *(["v.embedding"] if with_embeddings else [])],
            where=(
                "v.user_id = ? AND v.collection_id = ? AND " + fsql,
                [self._uid, coll.collection_id, *fparams],
            ),
            order="v.id",
            settings=self._settings(ef_search),
        )
        rows = None
        if not (self._large_scope and not filtered):
            rows = yield Atomic(index.search_small(query), readonly=True)
        if rows is None:
            # A scope seen large stays large (scopes rarely shrink, and if this one did,
            # the indexed path still answers in full: exact fallback).
            self._large_scope = self._large_scope or not filtered
            rows = yield Atomic(index.search_large(query), pipeline=True)
        return _hits(rows, with_embeddings)

    def _query_plan(
        self, query: str, k: int, filter: Mapping[str, Any] | None, kwargs: dict[str, Any]
    ) -> Plan[list[_Hit]]:
        ef_search = _search_kwargs(kwargs)
        _check_k(k)
        where = self._filter(filter)
        embedding = yield Embed(self._embeddings, [query], query=True)
        return (
            yield from self._search_plan(
                embedding, k, where, ef_search=ef_search, filtered=filter is not None
            )
        )

    def _vector_plan(
        self,
        embedding: Sequence[float],
        k: int,
        filter: Mapping[str, Any] | None,
        kwargs: dict[str, Any],
        with_embeddings: bool = False,
    ) -> Plan[list[_Hit]]:
        ef_search = _search_kwargs(kwargs)
        _check_k(k)
        where = self._filter(filter)
        return (
            yield from self._search_plan(
                embedding,
                k,
                where,
                with_embeddings=with_embeddings,
                ef_search=ef_search,
                filtered=filter is not None,
            )
        )

    @dual
    def similarity_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> Plan[list[Document]]:
        """The ``k`` documents closest to ``query`` in this user's collection that pass
        ``filter`` (see :mod:`langchain_agentmem._search.filters` for the operators)."""
        hits = yield from self._query_plan(query, k, filter, kwargs)
        return [h.document() for h in hits]

    asimilarity_search = similarity_search.async_  # type: ignore[assignment]

    @dual
    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> Plan[list[tuple[Document, float]]]:
        """Like :meth:`similarity_search`, with each document's distance (lower is closer)."""
        hits = yield from self._query_plan(query, k, filter, kwargs)
        return [(h.document(), h.distance) for h in hits]

    asimilarity_search_with_score = similarity_search_with_score.async_  # type: ignore[assignment]

    @dual
    def similarity_search_with_score_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Plan[list[tuple[Document, float]]]:
        """Like :meth:`similarity_search_with_score`, for an embedding."""
        hits = yield from self._vector_plan(embedding, k, filter, kwargs)
        return [(h.document(), h.distance) for h in hits]

    asimilarity_search_with_score_by_vector = similarity_search_with_score_by_vector.async_

    @dual
    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Plan[list[Document]]:
        """The ``k`` documents closest to ``embedding``."""
        hits = yield from self._vector_plan(embedding, k, filter, kwargs)
        return [h.document() for h in hits]

    asimilarity_search_by_vector = similarity_search_by_vector.async_  # type: ignore[assignment]

    @dual
    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Plan[list[Document]]:
        """``k`` documents relevant to ``query`` yet diverse, picked from the ``fetch_k``
        closest (maximal marginal relevance)."""
        _check_k(k)
        _check_k(fetch_k, "fetch_k")
        embedding = yield Embed(self._embeddings, [query], query=True)
        return (yield from self._mmr_plan(embedding, k, fetch_k, lambda_mult, filter, kwargs))

    amax_marginal_relevance_search = max_marginal_relevance_search.async_  # type: ignore[assignment]

    def _mmr_plan(
        self,
        embedding: Sequence[float],
        k: int,
        fetch_k: int,
        lambda_mult: float,
        filter: Mapping[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> Plan[list[Document]]:
        _check_mmr(k, fetch_k, lambda_mult)
        hits = yield from self._vector_plan(
            embedding, max(fetch_k, k), filter, kwargs, with_embeddings=True
        )
        return _mmr(embedding, hits, k, lambda_mult)

    @dual
    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Plan[list[Document]]:
        """Maximal marginal relevance for an embedding."""
        return (yield from self._mmr_plan(embedding, k, fetch_k, lambda_mult, filter, kwargs))

    amax_marginal_relevance_search_by_vector = max_marginal_relevance_search_by_vector.async_  # type: ignore[assignment]

    # -- hybrid -----------------------------------------------------------------------------
    def _text_body(
        self, coll: _Collection, tokens: list[str], k: int, where: Fragment
    ) -> Body[list[_Hit]]:
        joins, jparams, cond, cparams, rank, desc = self.engine.dialect.text_search(tokens)
        fsql, fparams = where
        rows = yield Stmt(
            SQL(
                "SELECT v.id, v.content, v.metadata, v.exact, {rank} AS r FROM {vectors} v{joins} "
                "WHERE {cond} AND v.user_id = ? AND v.collection_id = ? AND {where} "
                "ORDER BY r{desc}, v.id LIMIT ?"
            ).format(
                rank=SQL(rank),
                joins=SQL(joins),
                cond=SQL(cond),
                where=SQL(fsql),
                desc=SQL(" DESC" if desc else ""),
            ),
            [*jparams, *cparams, self._uid, coll.collection_id, *fparams, k],
            fetch=True,
        )
        return [_Hit(r[0], r[1], r[2], r[3], float(r[4])) for r in rows]

    @dual
    def hybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        *,
        filter: dict[str, Any] | None = None,
        fetch_k: int = 20,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
    ) -> Plan[list[tuple[Document, float]]]:
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
        return (yield from self._hybrid_plan(query, k, filter, fetch_k, rrf_k, weights))

    ahybrid_search_with_score = hybrid_search_with_score.async_

    def _hybrid_plan(
        self,
        query: str,
        k: int = 4,
        filter: dict[str, Any] | None = None,
        fetch_k: int = 20,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
    ) -> Plan[list[tuple[Document, float]]]:
        _check_hybrid(k, fetch_k, rrf_k, weights)
        where = self._filter(filter)
        embedding = yield Embed(self._embeddings, [query], query=True)
        dense = yield from self._search_plan(embedding, fetch_k, where, filtered=filter is not None)
        coll = self._coll
        tokens = _fts_tokens(query)
        text: list[_Hit] = []
        if coll is not None and tokens and fetch_k:
            text = yield Atomic(self._text_body(coll, tokens, fetch_k, where), readonly=True)
        return [(h.document(), s) for h, s in _rrf([dense, text], k, rrf_k, weights)]

    @dual
    def hybrid_search(self, query: str, k: int = 4, **kwargs: Any) -> Plan[list[Document]]:
        """Documents of :meth:`hybrid_search_with_score`."""
        unknown = set(kwargs) - {"filter", "fetch_k", "rrf_k", "weights"}
        if unknown:
            raise TypeError(
                f"hybrid_search() got unexpected keyword argument(s): {', '.join(sorted(unknown))}"
            )
        pairs = yield from self._hybrid_plan(query, k, **kwargs)
        return [d for d, _ in pairs]

    ahybrid_search = hybrid_search.async_

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        engine: EngineLike | None = None,
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
        engine: EngineLike | None = None,
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
