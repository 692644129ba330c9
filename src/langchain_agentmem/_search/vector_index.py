"""The one vector index: how every memory with embeddings searches and loads them.

A :class:`VectorIndex` describes one vector column searched by one path: its table (alias
``v``), size, distance, and the partial HNSW index that covers it (Postgres with
pgvector; ``None`` when there is none). It builds pure statement bodies
(:mod:`langchain_agentmem._core.plan`) that the caller runs in one transaction, sync or
async:

* :meth:`VectorIndex.search_small` / :meth:`~VectorIndex.search_large` choose the plan **by cost**. On a backend with an ANN index
  it counts the rows of the scope and filter, up to a threshold (the larger of
  ``exact_search_threshold`` and ``hnsw_min_share`` of the indexed rows), in the same
  statement that, when the count stays under it, answers exactly (a plan that cannot use
  the HNSW index: a selective metadata filter is answered from the filter's index). A
  larger scope goes through the HNSW index with pgvector's iterative scans (0.8+); on
  older pgvector (or ``iterative_scan="off"``) with a wide ``ef_search``, and when the
  index left fewer than ``k`` rows, exactly. Either way the answer is never short. On a
  backend without ANN (SQLite) the search is exact: the scope's vectors are read and
  scored with numpy.
* :func:`ingest` loads rows by binary ``COPY`` into a staging table and one upsert per
  batch where ``dialect.supports_copy``, else by one upsert per row; rows are written in
  key order (:func:`~langchain_agentmem.dialects.statements.in_key_order`), so concurrent
  loads of the same keys cannot deadlock.
* :meth:`VectorIndex.create` builds the HNSW index (``CREATE INDEX IF NOT EXISTS``).
* :func:`sized_index` / :func:`create_sized`: the index of a column that holds vectors of
  any size (events, skills): one partial HNSW index per size, ``<table>_d<dims>_hnsw``,
  over ``(embedding::vector(dims)) WHERE vector_dims(embedding) = dims``.

Example:
    >>> import numpy as np
    >>> from langchain_agentmem import connect
    >>> from langchain_agentmem._core.plan import Atomic, run
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> index = VectorIndex(engine.dialect, "vectors", dims=2, distance="cosine")
    >>> def plan():
    ...     query = SearchQuery(np.array([1.0, 0.0]), 3, select=["v.id"],
    ...                         where=("v.user_id = ?", ["u"]), order="v.id")
    ...     return (yield Atomic(index.search_small(query), readonly=True))
    >>> run(engine, "u", plan())
    []
"""

# Queries are composed of constants, dialect fragments and code-only names (tables,
# columns); every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import numpy as np

from ..dialects.base import Dialect, Fragment
from ..dialects.statements import Body, Copy, Many, One, Stmt, in_key_order

__all__ = [
    "DEFAULT_EF_SEARCH",
    "HNSWSettings",
    "SearchQuery",
    "SearchSettings",
    "VectorIndex",
    "ann_version",
    "describe",
    "create_sized",
    "distances",
    "ingest",
    "search_settings",
    "sized_index",
    "sized_index_name",
]

#: hnsw.ef_search when none is given: pgvector's default of 40 misses about 1% of the true
#: top 10 on clustered 384-dim data; 80 keeps recall@10 above 0.99.
DEFAULT_EF_SEARCH = 80

Distance = Literal["cosine", "l2", "inner_product"]


class HNSWSettings(TypedDict, total=False):
    """Settings of an HNSW index (Postgres, pgvector)."""

    m: int
    """Neighbours per node of the graph (default 16): more gives better recall and a
    larger index that is slower to build."""
    ef_construction: int
    """Candidates kept while building (default 64): more gives a better graph and a
    slower build."""
    ef_search: int
    """Candidates kept per search (``hnsw.ef_search``, default 80, at least ``k``): more
    gives better recall and slower searches."""


class SearchSettings(TypedDict, total=False):
    """How a search chooses between exact scan and the HNSW index (Postgres)."""

    exact_search_threshold: int
    """A scope (with its filter) of at most this many rows is searched exactly
    (default 1,000)."""
    hnsw_min_share: float
    """A scope (with its filter) holding less than this share of the index's rows is
    searched exactly too (default 0.1): a graph searched under a very selective filter
    misses true neighbours, iterative scans or not."""
    iterative_scan: Literal["auto", "strict_order", "relaxed_order", "off"]
    """pgvector 0.8+ iterative index scans: ``auto`` uses ``strict_order``; ``off`` takes
    the path of older pgvector (a wide ``ef_search``, then exact search when short)."""
    max_scan_tuples: int
    """``hnsw.max_scan_tuples`` of iterative scans (default 50,000)."""
    legacy_ef_search: int
    """``ef_search`` without iterative scans (default 200)."""
    ef_search: int
    """``hnsw.ef_search`` (default :data:`DEFAULT_EF_SEARCH`, at least ``k``)."""


_DEFAULTS: SearchSettings = {
    "exact_search_threshold": 1000,
    "hnsw_min_share": 0.1,
    "iterative_scan": "auto",
    "max_scan_tuples": 50_000,
    "legacy_ef_search": 200,
    "ef_search": DEFAULT_EF_SEARCH,
}


def search_settings(settings: SearchSettings | None = None, **overrides: Any) -> SearchSettings:
    """``settings`` with the defaults filled in and ``overrides`` that are not ``None``.

    Example:
        >>> search_settings(ef_search=None)["ef_search"]
        80
    """
    out: SearchSettings = {**_DEFAULTS, **(settings or {})}
    out.update({k: v for k, v in overrides.items() if v is not None})  # type: ignore[typeddict-item]
    return out


def ann_version(text: Any) -> tuple[int, ...]:
    """pgvector's version text as a tuple; ``(0, 0, 0)`` when absent."""
    if text is None:
        return (0, 0, 0)
    return tuple(int(x) for x in re.findall(r"\d+", str(text))[:3])


def distances(matrix: np.ndarray, q: np.ndarray, distance: str) -> np.ndarray:
    """The distances of ``matrix``'s rows to ``q`` (pgvector's definitions)."""
    m = matrix.astype(np.float64)
    qv = q.astype(np.float64)
    if distance == "l2":
        return np.asarray(np.sqrt(((m - qv) ** 2).sum(axis=1)))
    dots = m @ qv
    if distance == "inner_product":
        return np.asarray(-dots)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(1.0 - dots / (np.linalg.norm(m, axis=1) * np.linalg.norm(qv)))


def _order(dist: np.ndarray) -> list[int]:
    key = np.where(np.isnan(dist), np.inf, dist)
    return [int(i) for i in np.lexsort((np.arange(len(dist)), key))]


@dataclass(frozen=True)
class SearchQuery:
    """One nearest-neighbour query: the ``k`` rows nearest to ``q`` among the table's
    rows (alias ``v``, joined with ``joins``) that satisfy ``where``.

    ``select``: the expressions each result row holds (then the distance); ``order``: the
    tie-breaker (one expression or several); ``group``: positions in ``select`` naming an item that may have several
    vectors (each item then appears once, at its nearest vector); ``fanout``: how many
    vectors an item usually has (the indexed path reads ``k * fanout`` candidates);
    ``settings``: see :class:`SearchSettings`.
    """

    q: np.ndarray
    k: int
    select: Sequence[str]
    where: Fragment
    order: str | Sequence[str]
    joins: str = ""
    group: Sequence[int] | None = None
    fanout: int = 1
    settings: SearchSettings = field(default_factory=lambda: search_settings())

    @property
    def orders(self) -> list[str]:
        return [self.order] if isinstance(self.order, str) else list(self.order)


@dataclass(frozen=True)
class VectorIndex:
    """One vector column (table ``table``, alias ``v``, column ``column``) of vectors of
    ``dims`` dimensions compared by ``distance``.

    ``index``: the name of the partial HNSW index whose predicate is ``where`` (code over
    the table's columns, unqualified, literals only: the same text serves the DDL and
    every query, so the planner can prove the index applies); ``None``: no index.
    ``version``: pgvector's (see :func:`ann_version`).
    """

    dialect: Dialect
    table: str
    dims: int
    distance: str
    index: str | None = None
    where: str = "1 = 1"
    version: tuple[int, ...] = (0, 0, 0)
    column: str = "embedding"

    @property
    def cast(self) -> str | None:
        """The type the HNSW index is built over, ``None`` when there can be none."""
        if self.index is None or not self.dialect.supports_ann:
            return None
        return self.dialect.ann_cast(self.dims, self.version)

    # -- the HNSW index ---------------------------------------------------------------
    def create(
        self, m: int, ef_construction: int, maintenance_work_mem: str | None = None
    ) -> Body[bool]:
        """Build the HNSW index if it does not exist; whether one exists afterwards."""
        cast = self.cast
        if cast is None or self.index is None:
            return False
        if maintenance_work_mem is not None:
            yield Stmt("SELECT set_config('maintenance_work_mem', ?, true)", [maintenance_work_mem])
        yield Stmt(
            self.dialect.ann_index_ddl(
                self.index,
                self.table,
                self.column,
                cast,
                self.distance,
                m,
                ef_construction,
                self.where,
            )
        )
        return True

    # -- search -----------------------------------------------------------------------
    def search_small(self, query: SearchQuery) -> Body[list[tuple[Any, ...]] | None]:
        """The exact answer when the scope (with its filter) is small, else ``None`` (then
        run :meth:`search_large`, in a transaction of its own). One statement where the
        backend has an ANN index: the bounded count and the exact search together; on a
        backend without one, always the exact answer.

        Rows are tuples of the ``select`` expressions and the distance, nearest first.
        """
        dist = self.dialect.vector_distance(f"v.{self.column}", self.distance)
        if dist is None:
            return (yield from self._python_exact(query))
        if self.cast is None:
            rows = yield Stmt(*self._exact(dist, query), fetch=True)
            return [tuple(r[: -len(query.orders)]) for r in rows]
        cfg = query.settings
        # The scope's rows are read once: their handles (up to the bound) are counted,
        # and when few enough, the exact search reads just those rows again by handle.
        handle = self.dialect.row_handle("v")
        sql, params = self._exact(
            dist, query, gate="c.small", where=(f"{handle} = ANY(ARRAY(SELECT h FROM s))", [])
        )
        wsql, wparams = query.where
        counted = yield Stmt(
            "WITH l AS (SELECT CAST(greatest(?, ceil("
            + self.dialect.relation_rows()
            + " * ?)) AS bigint) AS n), s AS MATERIALIZED (SELECT "
            + handle
            + " AS h FROM {"
            + self.table
            + "} v"
            + query.joins
            + " WHERE "
            + wsql
            + " LIMIT (SELECT n FROM l) + 1), "
            "c AS MATERIALIZED (SELECT (SELECT count(*) FROM s) <= (SELECT n FROM l) AS small) "
            "SELECT c.small, e.* FROM c LEFT JOIN LATERAL ("
            + sql
            + ") e ON TRUE ORDER BY e.d, "
            + ", ".join(f"e.o{i}" for i in range(len(query.orders))),
            [
                int(cfg["exact_search_threshold"]),
                self.dialect.qualified(self.index or self.table),
                float(cfg["hnsw_min_share"]),
                *wparams,
                *params,
            ],
            fetch=True,
        )
        if not counted or not counted[0][0]:
            return None
        n = len(query.select)
        return [tuple(r[1 : n + 2]) for r in counted if r[n + 1] is not None]

    def search_large(self, query: SearchQuery) -> Body[list[tuple[Any, ...]]]:
        """Search through the HNSW index (iterative scans on pgvector 0.8+, else a wide
        ``ef_search``), exactly when the index leaves fewer than ``k`` rows. Needs a
        transaction (the index's settings last until its end)."""
        dist = self.dialect.vector_distance(f"v.{self.column}", self.distance)
        cast = self.cast
        if dist is None or cast is None:
            rows = yield from self.search_small(query)
            return rows or []
        cfg = query.settings
        k = query.k
        ef = max(int(cfg["ef_search"]), k)
        iterative = self._iterative(cfg)
        if iterative is None:
            ef = max(ef, int(cfg["legacy_ef_search"]))
        for sql, params in self.dialect.ann_settings(ef, iterative, int(cfg["max_scan_tuples"])):
            yield Stmt(sql, params)
        fetch = k if query.group is None else k * max(1, query.fanout)
        rows = [tuple(r) for r in (yield Stmt(*self.indexed(query, fetch), fetch=True))]
        if query.group is not None:
            rows = _first_per_group(rows, query.group)[:k]
        if len(rows) < k:
            # The scope (or the filter) kept fewer than k of the candidates the index
            # handed out: answer exactly instead of short.
            exact = yield Stmt(*self._exact(dist, query), fetch=True)
            rows = [tuple(r[: -len(query.orders)]) for r in exact]
        return rows

    def _iterative(self, cfg: SearchSettings) -> str | None:
        mode = cfg["iterative_scan"]
        if mode == "off" or self.version < (0, 8, 0):
            return None  # iterative index scans came with pgvector 0.8
        return "strict_order" if mode == "auto" else mode

    def _exact(
        self,
        dist: str,
        query: SearchQuery,
        gate: str | None = None,
        where: Fragment | None = None,
    ) -> tuple[str, list[Any]]:
        q, k, select, joins = query.q, query.k, query.select, query.joins
        where = query.where if where is None else where
        group = query.group
        # Ordering by the plain column (not the indexed cast expression) cannot use the
        # HNSW index: this plan is exact. Columns are named c0.., d (distance), o (order).
        cols = ", ".join(f"{expr} AS c{i}" for i, expr in enumerate(select))
        wsql, wparams = where
        cond = (gate + " AND " if gate else "") + wsql
        vector = self.dialect.vector_param(q)
        orders = query.orders
        named = ", ".join(f"{o} AS o{i}" for i, o in enumerate(orders))
        by = ", ".join(f"o{i}" for i in range(len(orders)))
        base = f"SELECT {cols}, {dist} AS d, {named}"
        if group is None:
            sql = (
                base
                + " FROM {"
                + self.table
                + "} v"
                + joins
                + " WHERE "
                + cond
                + f" ORDER BY d, {by} LIMIT ?"
            )
            return sql, [vector, *wparams, k]
        part = ", ".join(select[i] for i in group)
        inner = (
            base
            + f", row_number() OVER (PARTITION BY {part} ORDER BY {dist}, {', '.join(orders)}) AS rn"
            " FROM {" + self.table + "} v" + joins + " WHERE " + cond
        )
        outer_cols = ", ".join(f"g.c{i}" for i in range(len(select)))
        outer_by = ", ".join(f"g.o{i}" for i in range(len(orders)))
        sql = (
            f"SELECT {outer_cols}, g.d, {outer_by} FROM ({inner}) g WHERE g.rn = 1 "
            f"ORDER BY g.d, {outer_by} LIMIT ?"
        )
        return sql, [vector, vector, *wparams, k]

    def indexed(self, query: SearchQuery, k: int) -> tuple[str, list[Any]]:
        """The statement of the indexed search for the ``k`` nearest (an HNSW index scan
        when the planner takes it)."""
        dist = self.dialect.vector_distance(f"v.{self.column}", self.distance)
        cast = self.cast
        assert dist is not None and cast is not None, "no HNSW index"
        q, select, where, joins = query.q, query.select, query.where, query.joins
        cols = ", ".join(select)
        wsql, wparams = where
        vector = self.dialect.vector_param(q)
        order = self.dialect.ann_order(f"v.{self.column}", cast, self.distance)
        sql = (
            f"SELECT {cols}, {dist} AS d FROM {{{self.table}}} v{joins} WHERE {self.where} AND {wsql}"
            f" ORDER BY {order} LIMIT ?"
        )
        return sql, [vector, *wparams, vector, k]

    def _python_exact(self, query: SearchQuery) -> Body[list[tuple[Any, ...]]]:
        """Exact search with distances computed here: the scope's vectors (and group
        keys), then the chosen rows' columns by row handle."""
        q, k, select, where, joins, group = (
            query.q,
            query.k,
            query.select,
            query.where,
            query.joins,
            query.group,
        )
        handle = self.dialect.row_handle("v")
        wsql, wparams = where
        keys = "".join(f", {select[i]}" for i in group or ())
        cand = yield Stmt(
            f"SELECT {handle}, v.{self.column}{keys} FROM {{{self.table}}} v{joins} WHERE {wsql}",
            wparams,
            fetch=True,
        )
        if not cand:
            return []
        matrix = np.frombuffer(b"".join(bytes(r[1]) for r in cand), dtype="<f4").reshape(
            len(cand), -1
        )
        dist = distances(matrix, np.asarray(q), self.distance)
        chosen: list[int] = []
        seen: set[tuple[Any, ...]] = set()
        if group is None and k < len(cand):
            top = np.argpartition(np.where(np.isnan(dist), np.inf, dist), k - 1)[:k]
            idx = sorted(
                top.tolist(), key=lambda i: (math.inf if math.isnan(dist[i]) else dist[i], i)
            )
            chosen = idx
        else:
            for i in _order(dist):
                if group is not None:
                    g = tuple(cand[i][2:])
                    if g in seen:
                        continue
                    seen.add(g)
                chosen.append(i)
                if len(chosen) >= k:
                    break
        cols = [("h", "bigint")]
        rows = yield Stmt(
            f"SELECT {handle}, {', '.join(select)} FROM {{{self.table}}} v{joins} "
            f"WHERE {handle} IN (SELECT m.h FROM {self.dialect.unnest(cols)})",
            self.dialect.unnest_params(cols, [(cand[i][0],) for i in chosen]),
            fetch=True,
        )
        by_handle = {r[0]: r[1:] for r in rows}
        return [(*by_handle[cand[i][0]], float(dist[i])) for i in chosen if cand[i][0] in by_handle]


def _first_per_group(rows: list[tuple[Any, ...]], group: Sequence[int]) -> list[tuple[Any, ...]]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for row in rows:
        key = tuple(row[i] for i in group)
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


# -- ingest ------------------------------------------------------------------------------


def ingest(
    dialect: Dialect,
    table: str,
    *,
    fixed: Sequence[tuple[str, Any]],
    columns: Sequence[tuple[str, str]],
    key: Sequence[str],
    rows: Sequence[Sequence[Any]],
    batch_size: int = 5000,
    touch: str | None = "updated_at",
) -> Body[int]:
    """Upsert ``rows`` (values of ``columns``, the vector last, as a numpy array) into
    ``table``, each with the ``fixed`` column values; a row whose ``key`` (the fixed
    columns' names and some of ``columns``) exists replaces it. ``columns`` are
    ``(name, type)`` with type ``text``, ``jsonb``, ``json``, ``double``, ``timestamptz``
    (an aware ``datetime``) or ``vector``. Rows go in key order; returns how many.

    With ``dialect.supports_copy`` the rows travel by binary ``COPY`` into a temporary
    staging table, ``batch_size`` at a time, each batch upserted by one statement.
    """
    names = [n for n, _ in columns]
    fixed_names = [n for n, _ in fixed]
    positions = [names.index(k) for k in key if k in names]
    ordered = in_key_order(rows, key=lambda r: tuple(r[i] for i in positions))
    keys = ", ".join(key)
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n not in key)
    if touch is not None:
        updates += f", {touch} = {{now}}"
    conflict = f" ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    target = f"INSERT INTO {{{table}}} AS t ({', '.join([*fixed_names, *names])}) "
    if dialect.supports_copy:
        stage = f"agentmem_{table}_stage"
        defs = ", ".join(f"{n} {_STAGE_TYPES.get(t, 'text')}" for n, t in columns)
        yield Stmt("SET LOCAL client_min_messages = warning")
        yield Stmt(f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({defs}) ON COMMIT DELETE ROWS")
        casts = ", ".join(f"s.{n}::{t}" if t in ("json", "jsonb") else f"s.{n}" for n, t in columns)
        order = ", ".join(f"s.{k}" for k in key if k in names)
        merge = (
            target
            + "SELECT "
            + ", ".join("?" for _ in fixed)
            + f", {casts} FROM {stage} s ORDER BY {order}"
            + conflict
        )
        types = [_COPY_TYPES.get(t, "text") for _, t in columns]
        for start in range(0, len(ordered), batch_size):
            batch = ordered[start : start + batch_size]
            yield Copy(
                f"COPY {stage} ({', '.join(names)}) FROM STDIN WITH (FORMAT BINARY)", types, batch
            )
            yield Stmt(merge, [v for _, v in fixed])
            yield Stmt(f"TRUNCATE {stage}")
        return len(ordered)
    values = ", ".join("?" for _ in [*fixed, *columns])
    fixed_values = [v for _, v in fixed]
    times = [i for i, (_, t) in enumerate(columns[:-1]) if t == "timestamptz"]

    def param_row(r: Sequence[Any]) -> list[Any]:
        out = [*fixed_values, *r[:-1], dialect.vector_param(r[-1])]
        for i in times:
            if r[i] is not None:
                out[len(fixed_values) + i] = dialect.from_datetime(r[i])
        return out

    yield Many(target + f"VALUES ({values})" + conflict, [param_row(r) for r in ordered])
    return len(ordered)


#: Staging column types (COPY) of the column types :func:`ingest` takes, text otherwise.
_STAGE_TYPES = {
    "vector": "public.vector",
    "double": "double precision",
    "timestamptz": "timestamptz",
}
_COPY_TYPES = {"vector": "vector", "double": "float8", "timestamptz": "timestamptz"}


def describe(dialect: Dialect, index: str | None) -> Body[tuple[tuple[int, ...], bool]]:
    """pgvector's version and whether the index named ``index`` exists."""
    query = dialect.ann_version_query()
    if query is None:
        return (0, 0, 0), False
    row = yield One(query)
    exists = False
    if index is not None:
        found = yield One("SELECT to_regclass(?) IS NOT NULL", [dialect.qualified(index)])
        exists = bool(found and found[0])
    return ann_version(row[0] if row else None), exists


# -- one partial index per size ------------------------------------------------------------


def sized_index_name(table: str, dims: int) -> str:
    """The name of the partial HNSW index over ``table``'s vectors of ``dims`` dimensions.

    Example:
        >>> sized_index_name("events", 384)
        'events_d384_hnsw'
    """
    return f"{table}_d{int(dims)}_hnsw"


def sized_index(
    dialect: Dialect,
    table: str,
    dims: int,
    described: tuple[tuple[int, ...], bool] | None = None,
    *,
    distance: str = "cosine",
) -> VectorIndex:
    """The :class:`VectorIndex` of ``table``'s vectors of ``dims`` dimensions; with its
    HNSW index when ``described`` (from :func:`describe`) says the index exists."""
    version, exists = described or ((0, 0, 0), False)
    return VectorIndex(
        dialect,
        table,
        dims=dims,
        distance=distance,
        index=sized_index_name(table, dims) if exists else None,
        where=dialect.vector_dims_is("embedding", dims),
        version=version,
    )


def create_sized(
    dialect: Dialect,
    table: str,
    dims: int,
    *,
    m: int = 16,
    ef_construction: int = 64,
    maintenance_work_mem: str | None = None,
    distance: str = "cosine",
) -> Body[tuple[tuple[int, ...], bool]]:
    """Build the partial HNSW index over ``table``'s vectors of ``dims`` dimensions if it
    does not exist (under a lock: two builders wait for each other); what
    :func:`describe` says afterwards (no index where the backend has no ANN, or the size
    is too large for one)."""
    for name, value in (("dims", dims), ("m", m), ("ef_construction", ef_construction)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    name = sized_index_name(table, dims)
    lock = dialect.lock_keys([(table, name)])
    if lock is not None:
        yield lock
    version, exists = yield from describe(dialect, name)
    if not exists:
        index = VectorIndex(
            dialect,
            table,
            dims=dims,
            distance=distance,
            index=name,
            where=dialect.vector_dims_is("embedding", dims),
            version=version,
        )
        exists = yield from index.create(m, ef_construction, maintenance_work_mem)
    return version, exists
