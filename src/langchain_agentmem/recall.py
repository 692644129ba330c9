"""Recall: find the past turns of a user's conversations that a question needs.

:class:`MemoryRetriever` searches the chat history (the ``events`` that
:class:`~langchain_agentmem.ChatMessageHistory` writes) of ONE tenant, with no model call
at query time (one embedding of the query). It is a LangChain ``BaseRetriever``
(``invoke`` / ``ainvoke``), and :class:`~langchain_agentmem.MemoryMiddleware` uses it.

Signals (each switchable and weighted through :class:`RecallSettings`):

* ``dense``: cosine similarity of the query's embedding to each turn's, through the one
  vector index (:mod:`~langchain_agentmem._search.vector_index`);
* ``lexical``: BM25 over the tenant's own inverted index (exact per-tenant statistics,
  the same score on Postgres and SQLite; :mod:`~langchain_agentmem._search.lexical`),
  each turn widened by the words of the turn before it (``context``);
* ``neighbours``: a turn gains a share of the scores of the turns around it;
* ``session``: a turn gains a share of its session's best scores;
* ``names``: turns spoken by a person the query names (the message's ``name``, or a
  known entity of :class:`~langchain_agentmem.EntityMemory` and its aliases) are lifted;
  the names and aliases of the entities the query mentions join the lexical query
  (``entities``);
* ``time``: turns written in a period the query names ("in May 2023", "in 2022").

Dense and lexical scores are min-max normalized over their candidates and summed with
their weights (``fusion="score"``), or fused by reciprocal rank (``fusion="rrf"``), in
:mod:`~langchain_agentmem._search.fusion`. The default weights were chosen on the LoCoMo
development split (``benchmarks/locomo.py``, results in ``benchmarks/RESULTS.md``).

The index (tables ``recall_events`` and ``recall_terms``) is filled by :meth:`index`,
which embeds the turns not indexed yet; a search indexes new turns first
(``auto_index``). A turn's embedded text is ``"<name>: <content>"`` when its message has
a ``name`` (the speaker); its terms are those of the content.

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> from langchain_core.messages import AIMessage, HumanMessage
    >>> from langchain_agentmem import ChatMessageHistory, connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> ChatMessageHistory(engine, "s1", user_id="ann").add_messages([
    ...     HumanMessage("My sister Jo adopted a grey cat."), AIMessage("Lovely!"),
    ...     HumanMessage("I start the pottery course on Monday."), AIMessage("Enjoy it.")])
    >>> recall = MemoryRetriever(engine, DeterministicFakeEmbedding(size=8), user_id="ann", k=1)
    >>> [d.page_content for d in recall.invoke("who adopted a cat?")]
    ['My sister Jo adopted a grey cat.']
    >>> recall.invoke("pottery")[0].metadata["seq"]
    3
"""

from __future__ import annotations

import calendar
import heapq
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal, TypedDict

import numpy as np
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr

from ._core.names import candidate_names, normalize
from ._core.plan import Atomic, Embed, Plan, _AsyncDual, dual
from ._encoding.json import clean_text, loads
from ._encoding.keys import decode_key, encode_key
from ._search import fusion
from ._search.lexical import Key, bm25, term_counts, terms
from ._search.vector_index import SearchQuery, VectorIndex
from .dialects import SQL, Dialect, Ident, Unnest
from .dialects.statements import Batch, Body, Many, Stmt
from .engine import EngineLike, as_engine
from .entities import _entity, mentioned_query

__all__ = ["DEFAULT_SETTINGS", "MemoryRetriever", "RecallSettings"]


class RecallSettings(TypedDict, total=False):
    """How :class:`MemoryRetriever` ranks turns. A weight of 0 switches its signal off."""

    dense: float
    """Weight of the embedding similarity (default 0: off; with a static embedder such as
    :class:`~langchain_agentmem.LocalEmbeddings` it adds no recall on LoCoMo and costs the
    query's embedding and a scan of the tenant's vectors; with a contextual embedder try
    0.2 to 0.5)."""
    lexical: float
    """Weight of BM25 (default 1.0)."""
    fusion: Literal["score", "rrf"]
    """``score``: weighted sum of min-max normalized scores (default); ``rrf``: weighted
    reciprocal rank fusion."""
    rrf_k: int
    """RRF's constant (default 60)."""
    fetch_k: int
    """Candidates taken from each of the dense and the lexical search (default 50)."""
    k1: float
    """BM25 term-frequency saturation (default 0.9)."""
    b: float
    """BM25 length normalization (default 0.4)."""
    context: float
    """BM25 reads each turn with the words of the turn before it at this weight (default
    0.3; 0: off)."""
    neighbours: float
    """A turn gains this share of the scores of the turns before and after it (default
    0.1)."""
    session: float
    """A turn gains this share of the mean of its session's 3 best scores (default 0.5)."""
    names: float
    """Bonus of the turns spoken by a person the query names (default 0.5)."""
    entities: float
    """Weight, in the lexical query, of the names and aliases of the known entities the
    query mentions (default 0.5)."""
    time: float
    """Bonus of the turns written in a period the query names (default 0.3)."""


DEFAULT_SETTINGS: RecallSettings = {
    "dense": 0.0,
    "lexical": 1.0,
    "fusion": "score",
    "rrf_k": 60,
    "fetch_k": 50,
    "k1": 0.9,
    "b": 0.4,
    "context": 0.3,
    "neighbours": 0.1,
    "session": 0.5,
    "names": 0.5,
    "entities": 0.5,
    "time": 0.3,
}

_INDEXED_ROLES = ("human", "ai", "chat", "generic")


def _settings(base: RecallSettings, overrides: RecallSettings | None) -> RecallSettings:
    out: RecallSettings = {**DEFAULT_SETTINGS, **base, **(overrides or {})}
    unknown = set(out) - set(DEFAULT_SETTINGS)
    if unknown:
        raise ValueError(
            f"unknown recall setting(s) {sorted(unknown)}; expected some of {sorted(DEFAULT_SETTINGS)}"
        )
    if out["fusion"] not in ("score", "rrf"):
        raise ValueError(f"fusion must be 'score' or 'rrf', got {out['fusion']!r}")
    if not isinstance(out["fetch_k"], int) or out["fetch_k"] < 1:
        raise ValueError(f"fetch_k must be a positive int, got {out['fetch_k']!r}")
    return out


# -- the period a query names --------------------------------------------------------------

_MONTHS = {m.casefold(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.casefold(): i for i, m in enumerate(calendar.month_abbr) if m})
_DATE = re.compile(
    r"\b(?:(\d{1,2})\s+)?(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
    r"(?:\s+(\d{1,2})(?:st|nd|rd|th)?)?,?(?:\s+((?:19|20)\d\d))?\b|\b((?:19|20)\d\d)\b",
    re.IGNORECASE,
)


def period(query: str) -> tuple[datetime, datetime] | None:
    """The period (start, end; UTC) of the first date the query names: a year, a month
    with a year, a day with a month and a year; ``None`` when it names none.

    Example:
        >>> period("What did we do in May 2023?")[0].isoformat()
        '2023-05-01T00:00:00+00:00'
        >>> period("anything from 2021")[1].year
        2022
        >>> period("may I ask?") is None
        True
    """
    for m in _DATE.finditer(query):
        if m.group(5):
            year = int(m.group(5))
            return datetime(year, 1, 1, tzinfo=timezone.utc), datetime(
                year + 1, 1, 1, tzinfo=timezone.utc
            )
        if not m.group(4):
            continue  # a month without a year ("may", "march") is no period
        year, month = int(m.group(4)), _MONTHS[m.group(2).casefold()]
        day = m.group(1) or m.group(3)
        if day and 1 <= int(day) <= calendar.monthrange(year, month)[1]:
            start = datetime(year, month, int(day), tzinfo=timezone.utc)
            return start, datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=timezone.utc)
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
        return datetime(year, month, 1, tzinfo=timezone.utc), end
    return None


# -- the index ------------------------------------------------------------------------------


def _speaker(payload: str) -> str | None:
    try:
        data = loads(payload).get("data", {})
    except (ValueError, AttributeError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    if isinstance(name, str) and name.strip():
        return name
    return None


def _missing_body(uid: str, limit: int) -> Body[list[tuple[Any, ...]]]:
    rows = yield Stmt(
        "SELECT e.session_id, e.seq, e.role, e.kind, e.content, e.payload, e.created_at "
        "FROM {events} e WHERE e.user_id = ? AND NOT EXISTS (SELECT 1 FROM {recall_events} r "
        "WHERE r.user_id = e.user_id AND r.session_id = e.session_id AND r.seq = e.seq) "
        "ORDER BY e.session_id, e.seq LIMIT ?",
        [uid, limit],
        fetch=True,
    )
    return [tuple(r) for r in rows]


def _write_body(
    dialect: Dialect,
    uid: str,
    rows: Sequence[tuple[str, int, str | None, float, Any, Any]],
    postings: Sequence[tuple[str, str, int, float]],
) -> Body[int]:
    """Insert index rows (session, seq, speaker, length, embedding or None, created_at)
    and their postings (term, session, seq, tf), in key order; rows another indexer wrote
    first are kept."""
    yield Many(
        "INSERT INTO {recall_events} (user_id, session_id, seq, speaker, length, embedding, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, session_id, seq) DO NOTHING",
        [
            [uid, s, q, spk, n, None if e is None else dialect.vector_param(e), at]
            for s, q, spk, n, e, at in sorted(rows, key=lambda r: (r[0], r[1]))
        ],
    )
    ordered = sorted(postings)
    for start in range(0, len(ordered), 5000):
        batch = ordered[start : start + 5000]
        yield Stmt(_INSERT_POSTINGS, [uid, *dialect.unnest_params(_POSTING_COLS, batch)])
    return len(rows)


_POSTING_COLS = [("term", "text"), ("session_id", "text"), ("seq", "bigint"), ("tf", "double")]
_INSERT_POSTINGS = SQL(
    "INSERT INTO {recall_terms} (user_id, term, session_id, seq, tf) "
    "SELECT ?, m.term, m.session_id, m.seq, m.tf FROM {postings} "
    "WHERE true ON CONFLICT (user_id, term, session_id, seq) DO NOTHING"
).format(postings=Unnest(_POSTING_COLS))

# -- the search -----------------------------------------------------------------------------

# The tenant's statistics for BM25 (turns with text, their total length); the checked form
# also says whether a session holds events past its last indexed one (one probe of the
# index's primary key per session), when the index must first catch up.
_STATS = "SELECT NULL, count(*), sum(length) FROM {recall_events} WHERE user_id = ? AND length > 0"
_STATS_CHECKED = (
    "SELECT (SELECT 1 FROM {sessions} s WHERE s.user_id = ? AND s.last_seq > coalesce((SELECT "
    "max(r.seq) FROM {recall_events} r WHERE r.user_id = s.user_id AND r.session_id = "
    "s.session_id), 0) LIMIT 1), count(*), sum(length) FROM {recall_events} "
    "WHERE user_id = ? AND length > 0"
)
# The postings of the query's terms ({terms}: a relation of one column, term), then (term
# NULL) the turns around each posted one, from the turn before it to the second after it:
# their lengths (BM25 and its widening), speakers and times ({at}: created_at, or NULL when
# the query names no period). A lexical candidate is a posted turn or the turn after one,
# so these rows are every turn the candidates and their neighbours need, read in one
# statement (Postgres: 52 buffers where the three joins per posting of _POSTINGS_LENGTHS
# read 1,192): one probe of the covering index (0017) per distinct turn.
_POSTINGS = SQL(
    "WITH p AS (SELECT t.term, t.session_id, t.seq, t.tf FROM {recall_terms} t "
    "WHERE t.user_id = ? AND t.term IN (SELECT m.term FROM {terms})) "
    "SELECT p.term, p.session_id, p.seq, p.tf, NULL, NULL FROM p UNION ALL "
    "SELECT NULL, r.session_id, r.seq, r.length, r.speaker, {at} FROM (SELECT DISTINCT "
    "p.session_id, p.seq + d.column1 AS seq FROM p CROSS JOIN (VALUES (-1), (0), (1), (2)) d) k "
    "CROSS JOIN {recall_events} r WHERE r.user_id = ? AND r.session_id = k.session_id "
    "AND r.seq = k.seq"
)
# Without round trips (SQLite) reading less in two statements is faster: the postings with
# the lengths of the posted turn and of the turns before and after it (NULL: no such
# turn), then (_AROUND) the speakers and times of the fused candidates.
_POSTINGS_LENGTHS = SQL(
    "SELECT t.term, t.session_id, t.seq, t.tf, p.length, r.length, n.length "
    "FROM {recall_terms} t JOIN {recall_events} r ON r.user_id = t.user_id "
    "AND r.session_id = t.session_id AND r.seq = t.seq "
    "LEFT JOIN {recall_events} p ON p.user_id = t.user_id AND p.session_id = t.session_id "
    "AND p.seq = t.seq - 1 "
    "LEFT JOIN {recall_events} n ON n.user_id = t.user_id AND n.session_id = t.session_id "
    "AND n.seq = t.seq + 1 "
    "WHERE t.user_id = ? AND t.term IN (SELECT m.term FROM {terms})"
)
# The speakers and times of the turns around the given keys (candidates that the postings
# did not bring: dense ones, or all when the lexical signal is off).
_AROUND = SQL(
    # The keys drive the join (CROSS JOIN keeps that order on SQLite): one primary-key
    # range read per key.
    "SELECT DISTINCT r.session_id, r.seq, r.speaker, r.created_at FROM {keys} "
    "CROSS JOIN {recall_events} r WHERE r.user_id = ? AND r.session_id = m.session_id "
    "AND r.seq BETWEEN m.seq - 1 AND m.seq + 1"
)
_TERM_COLS = [("term", "text")]
_TERMS = Unnest(_TERM_COLS)
_KEY_COLS = [("session_id", "text"), ("seq", "bigint")]
_KEYS = Unnest(_KEY_COLS)
_POSTINGS_LENGTHS_OF_TERMS = _POSTINGS_LENGTHS.format(terms=_TERMS)
_POSTINGS_AT = {
    True: _POSTINGS.format(terms=_TERMS, at=Ident("r", "created_at")),
    False: _POSTINGS.format(terms=_TERMS, at=SQL("NULL")),
}
_AROUND_KEYS = _AROUND.format(keys=_KEYS)
_DENSE_KEY = [Ident("v", "session_id"), Ident("v", "seq")]
_DENSE_SCOPE = SQL("v.user_id = ? AND v.embedding IS NOT NULL")
_DOCUMENTS = SQL(
    "SELECT e.session_id, e.seq, e.role, e.content, e.created_at, e.payload FROM {keys} "
    "CROSS JOIN {events} e WHERE e.user_id = ? AND e.session_id = m.session_id "
    "AND e.seq = m.seq"
).format(keys=_KEYS)


def _told(posted: set[Key], key: Key) -> bool:
    """Whether the rows read around the ``posted`` turns (each from seq - 1 to seq + 2)
    tell ``key`` and the turns before and after it (their rows, or that they do not
    exist): each of those turns lies within 2 before to 1 after a posted turn."""
    session, seq = key
    if key in posted or (session, seq - 1) in posted:
        return True  # a lexical candidate: a posted turn or the turn after one
    return all(
        any((session, seq + near - d) in posted for d in (-1, 0, 1, 2)) for near in (-1, 0, 1)
    )


def _keys_param(dialect: Dialect, keys: Sequence[Key]) -> list[Any]:
    """The parameters of :data:`_KEYS` (the relation ``m(ord, session_id, seq)``)."""
    return dialect.unnest_params(_KEY_COLS, [list(k) for k in keys])


class MemoryRetriever(BaseRetriever):
    """Finds the past turns of one user's conversations that a query needs.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        embeddings: any LangChain ``Embeddings`` (e.g.
            :class:`~langchain_agentmem.LocalEmbeddings`); the same one for indexing and
            searching (a tenant's index holds one embedding size).
        user_id: the tenant whose chat history is searched.
        k: turns returned (default 10).
        settings: :class:`RecallSettings` over :data:`DEFAULT_SETTINGS`.
        auto_index: a search first indexes the turns written since the last one (default
            True; False: call :meth:`index` yourself).
        entity_system: the :class:`~langchain_agentmem.EntityMemory` namespace whose
            entities the ``names`` and ``entities`` signals read.
        batch_size: turns embedded per call while indexing.

    Each returned ``Document`` is one turn: ``page_content`` its text, ``id``
    ``"<session_id>:<seq>"``, ``metadata`` its ``session_id``, ``seq``, ``role``,
    ``speaker``, ``created_at`` (ISO 8601) and ``score``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, ignored_types=(dual, _AsyncDual))

    engine: Any
    embeddings: Embeddings
    user_id: str = "default"
    k: int = 10
    settings: dict[str, Any] = {}
    auto_index: bool = True
    entity_system: str = "default"
    batch_size: int = 512
    _uid: str = PrivateAttr()

    def __init__(
        self,
        engine: EngineLike,
        embeddings: Embeddings,
        *,
        user_id: str = "default",
        k: int = 10,
        settings: RecallSettings | None = None,
        auto_index: bool = True,
        entity_system: str = "default",
        batch_size: int = 512,
        **kwargs: Any,
    ) -> None:
        if not isinstance(embeddings, Embeddings):
            raise TypeError(
                f"embeddings must be a LangChain Embeddings, got {type(embeddings).__name__}"
            )
        if not isinstance(user_id, str):
            raise TypeError(f"user_id must be a str, got {type(user_id).__name__}")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        _settings({}, settings)  # fails early on a bad setting
        fields: dict[str, Any] = {
            "engine": as_engine(engine),
            "embeddings": embeddings,
            "user_id": user_id,
            "k": k,
            "settings": dict(settings or {}),
            "auto_index": auto_index,
            "entity_system": entity_system,
            "batch_size": batch_size,
        }
        super().__init__(**fields, **kwargs)
        self._uid = encode_key(user_id)

    def __repr__(self) -> str:
        return f"MemoryRetriever(user_id={self.user_id!r}, k={self.k})"

    def for_user(self, user_id: str) -> MemoryRetriever:
        """The same retriever over another tenant's history."""
        if user_id == self.user_id:
            return self
        return MemoryRetriever(
            self.engine,
            self.embeddings,
            user_id=user_id,
            k=self.k,
            settings=RecallSettings(**self.settings),  # type: ignore[typeddict-item]
            auto_index=self.auto_index,
            entity_system=self.entity_system,
            batch_size=self.batch_size,
        )

    # -- indexing ---------------------------------------------------------------------------
    def _index_plan(self) -> Plan[int]:
        dialect: Dialect = self.engine.dialect
        total = 0
        while True:
            rows = yield Atomic(_missing_body(self._uid, self.batch_size), readonly=True)
            if not rows:
                return total
            texts: list[str] = []
            prepared = []
            for session, seq, role, kind, content, payload, at in rows:
                speaker = _speaker(payload)
                body = content if isinstance(content, str) else ""
                use = kind == "message" and role in _INDEXED_ROLES and bool(body.strip())
                if use:
                    texts.append(f"{speaker}: {body}" if speaker else body)
                prepared.append((session, int(seq), speaker, body if use else None, at))
            vectors = (yield Embed(self.embeddings, texts)) if texts else []
            it = iter(vectors)
            index_rows: list[tuple[str, int, str | None, float, Any, Any]] = []
            postings: list[tuple[str, str, int, float]] = []
            for session, seq, speaker, text, at in prepared:
                if text is None:
                    index_rows.append((session, seq, None, 0.0, None, at))
                    continue
                # The speaker's name is no term (it would post half the tenant's turns
                # under it): the names signal matches speakers.
                counts = term_counts(text)
                spk = clean_text(normalize(speaker)) if speaker else None
                vector = np.asarray(next(it), dtype=np.float32)
                index_rows.append((session, seq, spk, float(sum(counts.values())), vector, at))
                postings.extend((clean_text(t), session, seq, float(n)) for t, n in counts.items())
            yield Atomic(_write_body(dialect, self._uid, index_rows, postings))
            total += sum(1 for r in index_rows if r[4] is not None)

    @dual
    def index(self) -> Plan[int]:
        """Index the tenant's turns not indexed yet (embedding them, ``batch_size`` per
        call); returns how many turns were embedded."""
        return (yield from self._index_plan())

    aindex = index.async_

    # -- search -------------------------------------------------------------------------------
    def _search_plan(
        self, query: str, k: int | None, settings: RecallSettings | None
    ) -> Plan[list[Document]]:
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        k = self.k if k is None else k
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        cfg = _settings(self.settings, settings)  # type: ignore[arg-type]
        vector = None
        if cfg["dense"] and query.strip():
            vector = np.asarray((yield Embed(self.embeddings, [query], query=True)), np.float32)
        # The search's transaction first checks that the index is up to date (one probe);
        # when it is not, the new turns are indexed and the search runs again.
        found = yield Atomic(
            self._search_body(query, vector, k, cfg, self.auto_index), readonly=True
        )
        if found is None:
            yield from self._index_plan()
            found = yield Atomic(self._search_body(query, vector, k, cfg, False), readonly=True)
        return found or []

    def _search_body(
        self, query: str, vector: np.ndarray | None, k: int, cfg: RecallSettings, check: bool
    ) -> Body[list[Document] | None]:
        """The search; ``None`` when ``check`` and the index is behind the history.

        Statements: one batch (one round trip on Postgres) of the tenant's statistics
        (with the up-to-date probe), the entities the query names (when it names any) and
        the postings of the query's terms with the turns around the posted ones (lengths,
        speakers, times); the postings of the terms the entities add (when they add any);
        the dense candidates (when ``dense`` is on) and the speakers and times of those
        the postings did not bring; the documents. Where a statement costs no round trip
        (``dialect.round_trips`` false: SQLite) the postings bring only lengths, which is
        faster there, and the speakers and times of every candidate are read after the
        fusion. Every statement reads one tenant's rows only.
        """
        dialect: Dialect = self.engine.dialect
        uid = self._uid
        fetch_k = max(cfg["fetch_k"], k)
        window = period(query) if cfg["time"] else None
        # Names the query mentions: a turn whose speaker is one of them is lifted (the
        # speakers are stored normalized, as candidate names are), and so are the names
        # and aliases of the known entities it mentions.
        mentioned = candidate_names(query)
        names = [clean_text(n) for n in mentioned]
        named: set[str] = set(names) if cfg["names"] else set()
        lexical_query: dict[str, float] = dict.fromkeys(terms(query), 1.0)
        batch = [Stmt(_STATS_CHECKED if check else _STATS, [uid, uid] if check else [uid], True)]
        read_entities = bool(names) and bool(cfg["names"] or cfg["entities"])
        if read_entities:
            keys = [encode_key(n) for n in mentioned]
            batch.append(Stmt(*mentioned_query(dialect, uid, self.entity_system, keys, None), True))
        if cfg["lexical"] and lexical_query:
            batch.append(self._postings(list(lexical_query), window))
        results = yield Batch(batch)
        stats = results[0]
        if check and stats[0][0] is not None:
            return None
        n_docs, total = int(stats[0][1]), float(stats[0][2] or 0.0)
        rows = results[-1] if cfg["lexical"] and lexical_query else []
        if read_entities:
            added = []
            for ent in (_entity(dialect, r) for r in results[1]):
                aliases = [ent.name, *ent.aliases]
                named.update(clean_text(normalize(a)) for a in aliases if a.strip())
                if cfg["entities"]:
                    for alias in aliases:
                        for t in terms(alias):
                            if t not in lexical_query:
                                lexical_query[t] = float(cfg["entities"])
                                added.append(t)
            if added and cfg["lexical"]:
                rows = [*rows, *(yield self._postings(added, window))]
        # Dense candidates.
        dense: dict[Key, float] = {}
        if vector is not None:
            index = VectorIndex(dialect, "recall_events", dims=len(vector), distance="cosine")
            search = SearchQuery(
                vector,
                fetch_k,
                select=_DENSE_KEY,
                where=(_DENSE_SCOPE, [uid]),
                order=_DENSE_KEY,
            )
            found = yield from index.search_small(search)
            dense = {(r[0], int(r[1])): 1.0 - float(r[2]) for r in found or []}
        # Lexical candidates: BM25 over the postings; the turns around the posted ones
        # give the lengths (BM25 and its widening) and the speakers and times.
        lexical: dict[Key, float] = {}
        meta: dict[Key, tuple[Any, Any]] = {}
        posted: set[Key] = set()  # the meta rows tell the turns from seq - 1 to seq + 2
        if rows and n_docs:
            postings = []
            lengths: dict[Key, float] = {}
            if dialect.round_trips:
                for term, session, seq, num, speaker, at in rows:
                    key = (session, int(seq))
                    if term is None:
                        lengths[key] = float(num)
                        meta[key] = (speaker, at)
                    else:
                        postings.append((term, key, float(num)))
                        posted.add(key)
            else:
                for term, session, seq, tf, before, own, after in rows:
                    seq = int(seq)
                    postings.append((term, (session, seq), float(tf)))
                    lengths[(session, seq)] = float(own)
                    if before is not None:
                        lengths[(session, seq - 1)] = float(before)
                    if after is not None:
                        lengths[(session, seq + 1)] = float(after)
            lexical = bm25(
                lexical_query,
                postings,
                lengths,
                n_docs=n_docs,
                avg_length=total / n_docs,
                k1=float(cfg["k1"]),
                b=float(cfg["b"]),
                context=float(cfg["context"]),
            )
            lexical = dict(
                heapq.nsmallest(fetch_k, lexical.items(), key=lambda kv: (-kv[1], kv[0]))
            )
        scores = _fuse(dense, lexical, cfg)
        if not scores:
            return []
        # The speakers and times of the candidates (and of the turns around them) that
        # the postings did not bring (all of them on SQLite, where _POSTINGS_LENGTHS
        # brings lengths only; only dense candidates elsewhere).
        around = [key for key in scores if not _told(posted, key)]
        if around:
            params = _keys_param(dialect, around)
            rows = yield Stmt(_AROUND_KEYS, [*params, uid], fetch=True)
            meta.update(((r[0], int(r[1])), (r[2], r[3])) for r in rows)
        scores = fusion.spread(
            scores,
            lambda key: ((key[0], key[1] - 1), (key[0], key[1] + 1)),
            float(cfg["neighbours"]),
            meta,
        )
        scores = fusion.group_boost(scores, lambda key: key[0], float(cfg["session"]))
        if named and cfg["names"]:
            speakers = {key for key in scores if key in meta and meta[key][0] in named}
            scores = fusion.boost(scores, speakers, float(cfg["names"]))
        if window is not None:
            start, end = window
            inside = set()
            for key in scores:
                at = dialect.to_datetime(meta[key][1]) if key in meta else None
                if at is not None and start <= at.astimezone(timezone.utc) < end:
                    inside.add(key)
            scores = fusion.boost(scores, inside, float(cfg["time"]))
        top = fusion.ranked(scores, limit=k)
        return (yield from self._documents_body(top, scores))

    def _postings(self, query_terms: Sequence[str], window: Any) -> Stmt:
        """The statement reading the postings of ``query_terms`` and the turns around the
        posted ones (their times only when the query names a period: ``window``)."""
        dialect: Dialect = self.engine.dialect
        params = dialect.unnest_params(_TERM_COLS, [[t] for t in query_terms])
        if not dialect.round_trips:
            return Stmt(_POSTINGS_LENGTHS_OF_TERMS, [self._uid, *params], True)
        return Stmt(
            _POSTINGS_AT[window is not None],
            [self._uid, *params, self._uid],
            fetch=True,
        )

    def _documents_body(
        self, top: Sequence[Key], scores: Mapping[Key, float]
    ) -> Body[list[Document]]:
        if not top:
            return []
        dialect: Dialect = self.engine.dialect
        params = _keys_param(dialect, top)
        rows = yield Stmt(
            _DOCUMENTS,
            [*params, self._uid],
            fetch=True,
        )
        by_key = {(r[0], int(r[1])): r for r in rows}
        docs = []
        for key in top:
            row = by_key.get(key)
            if row is None:
                continue  # deleted since the candidates were read
            session = decode_key(key[0])
            at = dialect.to_datetime(row[4])
            speaker = _speaker(row[5])
            docs.append(
                Document(
                    page_content=row[3],
                    id=f"{session}:{key[1]}",
                    metadata={
                        "session_id": session,
                        "seq": key[1],
                        "role": row[2],
                        "speaker": speaker,
                        "created_at": at.isoformat() if at is not None else None,
                        "score": scores[key],
                    },
                )
            )
        return docs

    @dual
    def search(
        self, query: str, k: int | None = None, *, settings: RecallSettings | None = None
    ) -> Plan[list[Document]]:
        """The ``k`` turns (default the retriever's ``k``) that best match ``query``, best
        first; ``settings`` override the retriever's for this search."""
        return (yield from self._search_plan(query, k, settings))

    asearch = search.async_

    # -- BaseRetriever ----------------------------------------------------------------------
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return self.search(query)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        return await self.asearch(query)


def _fuse(
    dense: Mapping[Key, float], lexical: Mapping[Key, float], cfg: RecallSettings
) -> dict[Key, float]:
    if cfg["fusion"] == "rrf":
        return fusion.rrf(
            [
                (fusion.ranked(dense), float(cfg["dense"])),
                (fusion.ranked(lexical), float(cfg["lexical"])),
            ],
            k=int(cfg["rrf_k"]),
        )
    return fusion.combine(
        [
            (fusion.normalized(dense), float(cfg["dense"])),
            (fusion.normalized(lexical), float(cfg["lexical"])),
        ]
    )
