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
    ...     query = SearchQuery(np.array([1.0, 0.0]), 3, select=[Ident("v", "id")],
    ...                         where=(SQL("v.user_id = ?"), ["u"]), order=Ident("v", "id"))
    ...     return (yield Atomic(index.search_small(query), readonly=True))
    >>> run(engine, "u", plan())
    []
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import numpy as np

from ..dialects.base import Dialect
from ..dialects.compose import SQL, Composable, Ident, Table, Template, Unnest
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


_COMMA = SQL(", ")
_ROW_IDS = [("h", "bigint")]
_HANDLES = Unnest(_ROW_IDS)


def _sql(part: Template) -> Composable:
    """``part`` as a composition (template text written in the code becomes :class:`SQL`)."""
    return part if isinstance(part, Composable) else _text(part)


@functools.lru_cache(maxsize=1024)
def _text(text: str) -> SQL:
    return SQL(text)


@functools.lru_cache(maxsize=256)
def _alias(*names: str) -> Ident:
    return Ident(*names)


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
    ``settings``: see :class:`SearchSettings`. Expressions, ``where``'s condition and
    ``joins`` are compositions (:mod:`~langchain_agentmem.dialects.compose`) or template
    text written in the code.
    """

    q: np.ndarray
    k: int
    select: Sequence[Template]
    where: tuple[Template, list[Any]]
    order: Template | Sequence[Template]
    joins: Template = ""
    group: Sequence[int] | None = None
    fanout: int = 1
    settings: SearchSettings = field(default_factory=lambda: search_settings())

    @property
    def orders(self) -> list[Composable]:
        if isinstance(self.order, (str, Composable)):
            return [_sql(self.order)]
        return [_sql(o) for o in self.order]

    @property
    def selected(self) -> list[Composable]:
        return [_sql(e) for e in self.select]


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
    @functools.cached_property
    def _dist(self) -> Composable | None:
        dist = self.dialect.vector_distance(self._column_text, self.distance)
        return None if dist is None else SQL(dist)

    @functools.cached_property
    def _table(self) -> Table:
        return Table(self.table)

    @functools.cached_property
    def _column(self) -> Ident:
        return Ident("v", self.column)

    @functools.cached_property
    def _column_text(self) -> str:
        return self._column.template(self.dialect)

    @functools.cached_property
    def _handle(self) -> SQL:
        return SQL(self.dialect.row_handle("v"))

    def search_small(self, query: SearchQuery) -> Body[list[tuple[Any, ...]] | None]:
        """The exact answer when the scope (with its filter) is small, else ``None`` (then
        run :meth:`search_large`, in a transaction of its own). One statement where the
        backend has an ANN index: the bounded count and the exact search together; on a
        backend without one, always the exact answer.

        Rows are tuples of the ``select`` expressions and the distance, nearest first.
        """
        dist = self._dist
        if dist is None:
            return (yield from self._python_exact(query))
        if self.cast is None:
            rows = yield Stmt(*self._exact(dist, query), fetch=True)
            return [tuple(r[: -len(query.orders)]) for r in rows]
        cfg = query.settings
        # The scope's rows are read once: their handles (up to the bound) are counted,
        # and when few enough, the exact search reads just those rows again by handle.
        handle = self._handle
        sql, params = self._exact(
            dist,
            query,
            gate=SQL("c.small"),
            where=(_IN_SCOPE.format(handle), []),
        )
        wsql, wparams = query.where
        counted = yield Stmt(
            _COUNTED.format(
                rows=SQL(self.dialect.relation_rows()),
                handle=handle,
                table=self._table,
                joins=_sql(query.joins),
                where=_sql(wsql),
                exact=sql,
                orders=_COMMA.join(_alias("e", f"o{i}") for i in range(len(query.orders))),
            ),
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
        dist = self._dist
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
        dist: Composable,
        query: SearchQuery,
        gate: Composable | None = None,
        where: tuple[Template, list[Any]] | None = None,
    ) -> tuple[Composable, list[Any]]:
        wsql, wparams = query.where if where is None else where
        cond = _sql(wsql) if gate is None else _AND.format(gate, _sql(wsql))
        sql = _exact_sql(
            dist,
            self._table,
            tuple(query.selected),
            tuple(query.orders),
            cond,
            _sql(query.joins),
            None if query.group is None else tuple(query.group),
        )
        vector = self.dialect.vector_param(query.q)
        if query.group is None:
            return sql, [vector, *wparams, query.k]
        return sql, [vector, vector, *wparams, query.k]

    def indexed(self, query: SearchQuery, k: int) -> tuple[Composable, list[Any]]:
        """The statement of the indexed search for the ``k`` nearest (an HNSW index scan
        when the planner takes it)."""
        dist = self._dist
        cast = self.cast
        assert dist is not None and cast is not None, "no HNSW index"
        wsql, wparams = query.where
        vector = self.dialect.vector_param(query.q)
        sql = _indexed_sql(
            tuple(query.selected),
            dist,
            self._table,
            _sql(query.joins),
            _text(self.where),
            _sql(wsql),
            _text(self.dialect.ann_order(self._column_text, cast, self.distance)),
        )
        return sql, [vector, *wparams, vector, k]

    def _python_exact(self, query: SearchQuery) -> Body[list[tuple[Any, ...]]]:
        """Exact search with distances computed here: the scope's vectors (and group
        keys), then the chosen rows' columns by row handle."""
        q, k, where, joins, group = query.q, query.k, query.where, query.joins, query.group
        handle = self._handle
        wsql, wparams = where
        select_c = query.selected
        table, joins_c = self._table, _sql(joins)
        cand = yield Stmt(
            _CANDIDATES.format(
                handle=handle,
                column=self._column,
                keys=SQL("").join(_COMMA + select_c[i] for i in group or ()),
                table=table,
                joins=joins_c,
                where=_sql(wsql),
            ),
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
        rows = yield Stmt(
            _CHOSEN.format(
                handle=handle, cols=_COMMA.join(select_c), table=table, joins=joins_c, ids=_HANDLES
            ),
            self.dialect.unnest_params(_ROW_IDS, [(cand[i][0],) for i in chosen]),
            fetch=True,
        )
        by_handle = {r[0]: r[1:] for r in rows}
        return [(*by_handle[cand[i][0]], float(dist[i])) for i in chosen if cand[i][0] in by_handle]


@functools.lru_cache(maxsize=512)
def _exact_sql(
    dist: Composable,
    table: Table,
    select: tuple[Composable, ...],
    orders: tuple[Composable, ...],
    cond: Composable,
    joins: Composable,
    group: tuple[int, ...] | None,
) -> Composable:
    # Memoized on the query's shape (a search composes the same query on every call).
    # Ordering by the plain column (not the indexed cast expression) cannot use the
    # HNSW index: this plan is exact. Columns are named c0.., d (distance), o (order).
    parts = {
        "cols": _COMMA.join(_AS.format(e, _alias(f"c{i}")) for i, e in enumerate(select)),
        "dist": dist,
        "named": _COMMA.join(_AS.format(o, _alias(f"o{i}")) for i, o in enumerate(orders)),
        "table": table,
        "joins": joins,
        "cond": cond,
    }
    if group is None:
        return _EXACT.format(by=_COMMA.join(_alias(f"o{i}") for i in range(len(orders))), **parts)
    return _EXACT_GROUPED.format(
        part=_COMMA.join(select[i] for i in group),
        orders=_COMMA.join(orders),
        outer_cols=_COMMA.join(_alias("g", f"c{i}") for i in range(len(select))),
        outer_by=_COMMA.join(_alias("g", f"o{i}") for i in range(len(orders))),
        **parts,
    )


@functools.lru_cache(maxsize=512)
def _indexed_sql(
    select: tuple[Composable, ...],
    dist: Composable,
    table: Table,
    joins: Composable,
    index_where: Composable,
    where: Composable,
    order: Composable,
) -> Composable:
    return _INDEXED.format(
        cols=_COMMA.join(select),
        dist=dist,
        table=table,
        joins=joins,
        index_where=index_where,
        where=where,
        order=order,
    )


_AS = SQL("{} AS {}")
_AND = SQL("{} AND {}")
#: The exact search's rows by handle: a TID scan. Under a tenant policy the planner may
#: instead scan the tenant's rows by the policy's index with this as a filter (linear in
#: the handles, per row) when the tenant looks small, as before a table's first ANALYZE;
#: with statistics it keeps the TID scan. A join with ``s`` (one TID lookup a row) took
#: 2.5x as long, with the policy or without.
_IN_SCOPE = SQL("{} = ANY(ARRAY(SELECT h FROM s))")
_COUNTED = SQL(
    "WITH l AS (SELECT CAST(greatest(?, ceil({rows} * ?)) AS bigint) AS n), "
    "s AS MATERIALIZED (SELECT {handle} AS h FROM {table} v{joins} WHERE {where} "
    "LIMIT (SELECT n FROM l) + 1), "
    "c AS MATERIALIZED (SELECT (SELECT count(*) FROM s) <= (SELECT n FROM l) AS small) "
    "SELECT c.small, e.* FROM c LEFT JOIN LATERAL ({exact}) e ON TRUE ORDER BY e.d, {orders}"
)
_EXACT = SQL(
    "SELECT {cols}, {dist} AS d, {named} FROM {table} v{joins} WHERE {cond} "
    "ORDER BY d, {by} LIMIT ?"
)
_EXACT_GROUPED = SQL(
    "SELECT {outer_cols}, g.d, {outer_by} FROM ("
    "SELECT {cols}, {dist} AS d, {named}, "
    "row_number() OVER (PARTITION BY {part} ORDER BY {dist}, {orders}) AS rn "
    "FROM {table} v{joins} WHERE {cond}"
    ") g WHERE g.rn = 1 ORDER BY g.d, {outer_by} LIMIT ?"
)
_INDEXED = SQL(
    "SELECT {cols}, {dist} AS d FROM {table} v{joins} WHERE {index_where} AND {where} "
    "ORDER BY {order} LIMIT ?"
)
_CANDIDATES = SQL("SELECT {handle}, {column}{keys} FROM {table} v{joins} WHERE {where}")
_CHOSEN = SQL(
    "SELECT {handle}, {cols} FROM {table} v{joins} WHERE {handle} IN (SELECT m.h FROM {ids})"
)


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
    keys = _COMMA.join(Ident(k) for k in key)
    updates = _COMMA.join(_EXCLUDED.format(Ident(n), Ident(n)) for n in names if n not in key)
    if touch is not None:
        updates += _TOUCH.format(Ident(touch))
    conflict = _CONFLICT.format(keys, updates)
    target = _TARGET.format(Table(table), _COMMA.join(Ident(n) for n in [*fixed_names, *names]))
    if dialect.supports_copy:
        stage = Ident(f"agentmem_{table}_stage")
        defs = _COMMA.join(Ident(n) + _STAGE_TYPES.get(t, _TEXT) for n, t in columns)
        yield Stmt("SET LOCAL client_min_messages = warning")
        yield Stmt(_CREATE_STAGE.format(stage, defs))
        casts = _COMMA.join(Ident("s", n) + _CASTS.get(t, _NO_CAST) for n, t in columns)
        order = _COMMA.join(Ident("s", k) for k in key if k in names)
        merge = (
            target
            + _FROM_STAGE.format(
                marks=_COMMA.join(_MARK for _ in fixed), casts=casts, stage=stage, order=order
            )
            + conflict
        )
        types = [_COPY_TYPES.get(t, "text") for _, t in columns]
        copy = _COPY.format(stage, _COMMA.join(Ident(n) for n in names))
        for start in range(0, len(ordered), batch_size):
            batch = ordered[start : start + batch_size]
            yield Copy(copy, types, batch)
            yield Stmt(merge, [v for _, v in fixed])
            yield Stmt(_TRUNCATE.format(stage))
        return len(ordered)
    values = _COMMA.join(_MARK for _ in [*fixed, *columns])
    fixed_values = [v for _, v in fixed]
    times = [i for i, (_, t) in enumerate(columns[:-1]) if t == "timestamptz"]

    def param_row(r: Sequence[Any]) -> list[Any]:
        out = [*fixed_values, *r[:-1], dialect.vector_param(r[-1])]
        for i in times:
            if r[i] is not None:
                out[len(fixed_values) + i] = dialect.from_datetime(r[i])
        return out

    yield Many(target + _VALUES.format(values) + conflict, [param_row(r) for r in ordered])
    return len(ordered)


_MARK = SQL("?")
_EXCLUDED = SQL("{} = excluded.{}")
_TOUCH = SQL(", {} = {now}")
_CONFLICT = SQL(" ON CONFLICT ({}) DO UPDATE SET {}")
_TARGET = SQL("INSERT INTO {} AS t ({}) ")
_CREATE_STAGE = SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS")
_FROM_STAGE = SQL("SELECT {marks}, {casts} FROM {stage} s ORDER BY {order}")
_COPY = SQL("COPY {} ({}) FROM STDIN WITH (FORMAT BINARY)")
_TRUNCATE = SQL("TRUNCATE {}")
_VALUES = SQL("VALUES ({})")
#: Staging column types (COPY) of the column types :func:`ingest` takes, text otherwise
#: (Postgres type names from this fixed mapping only).
_STAGE_TYPES = {
    "vector": SQL(" public.vector"),
    "double": SQL(" double precision"),
    "timestamptz": SQL(" timestamptz"),
}
_TEXT = SQL(" text")
_CASTS = {"json": SQL("::json"), "jsonb": SQL("::jsonb")}
_NO_CAST = SQL("")
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
