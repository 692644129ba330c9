"""Episodic memory: what an agent saw, how it reasoned, what it did and how that turned out.

An :class:`EpisodicMemory` keeps one row per episode in the ``episodes`` table: the
perception (the situation), the reasoning, the action and, when it is known, the outcome
with its quality (a number from 0 to 1) and when it arrived. An outcome often arrives
later, from another process: :meth:`EpisodicMemory.record_outcome` adds it to the episode
by id, and :meth:`EpisodicMemory.pending_outcomes` lists the episodes still waiting.

Before it decides, the agent recalls similar past situations:
:meth:`EpisodicMemory.recall_similar` returns the ``k`` episodes whose perception is
nearest to the new situation (cosine similarity of their embeddings) within one project
of the user, searched through the package's one vector index
(:mod:`langchain_agentmem._search.vector_index`): exact while the scope (with its filters)
is small, so the answer is the true top ``k``. An optional :class:`Ranking` re-orders an
exact candidate pool by outcome quality and recency as well (see there for the formula).

Perception, reasoning, action, outcome, tags and metadata are any JSON and round-trip
exactly (NUL characters and lone surrogates included); ids, projects and other short
texts are any strings. ``control_mode`` is one of :data:`CONTROL_MODES`. ``metadata``
holds free references (``{"sprint_id": "S-12"}``) that ``filter=`` matches with the
vector store's filter language (``{"sprint_id": {"$in": ["S-12", "S-13"]}}``).

The view ``v_episode_quality_by_project`` (both backends) sums episodes up per user and
project for dashboards: counts, pending outcomes, average, lowest and highest quality.

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> memory = EpisodicMemory(engine, DeterministicFakeEmbedding(size=8), user_id="alice",
    ...                         project="billing")
    >>> ep = memory.record("invoice 42 failed to send", "the mail server timed out",
    ...                    "retry in 5 minutes", control_mode="rule_based_only")
    >>> [e.id for e in memory.pending_outcomes()] == [ep.id]
    True
    >>> memory.record_outcome(ep.id, "sent on retry", 0.9).outcome_quality
    0.9
    >>> [(r.episode.action, round(r.similarity, 3))
    ...  for r in memory.recall_similar("invoice 42 failed to send", k=1)]
    [('retry in 5 minutes', 1.0)]
    >>> import asyncio; asyncio.run(memory.aget(ep.id)).outcome
    'sent on retry'
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import numpy as np
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import StructuredTool
from pydantic import ConfigDict

from ._core.plan import Atomic, Embed, Plan, dual
from ._core.plan_tool import plan_tool
from ._core.scoped import Scope, delete_in_key_order
from ._encoding.json import check_exact, clean_text, dumps, dumps_exact, loads
from ._encoding.keys import decode_key, encode_key
from ._search.filters import compile_filter
from ._search.vector_index import (
    HNSWSettings,
    SearchQuery,
    SearchSettings,
    VectorIndex,
    describe,
    ingest,
    search_settings,
)
from .dialects import SQL, Body, Dialect, Ident, One, Stmt
from .engine import EngineLike, as_engine

__all__ = [
    "CONTROL_MODES",
    "Episode",
    "EpisodeNotFoundError",
    "EpisodeRetriever",
    "EpisodicMemory",
    "OutcomeExistsError",
    "Ranking",
    "RecalledEpisode",
    "episode_tools",
]

#: The control modes an episode may name (the table's CHECK).
CONTROL_MODES: Final = ("rule_based_only", "intelligence_enhanced", "memory_augmented")


class EpisodeNotFoundError(LookupError):
    """The user has no episode with that id (episodes of other users are never seen)."""


class OutcomeExistsError(ValueError):
    """``record_outcome(..., replace=False)`` on an episode that has its outcome already."""


@dataclass(frozen=True)
class Episode:
    """One episode, as stored."""

    id: str
    project: str
    perception: Any
    reasoning: Any
    action: Any
    outcome: Any
    """``None`` while the outcome is pending."""
    outcome_quality: float | None
    """From 0 (bad) to 1 (good); ``None`` while pending (or recorded without one)."""
    outcome_at: datetime | None
    """When the outcome was recorded."""
    control_mode: str
    decision_source: str | None
    agent_version: str | None
    tags: list[str]
    metadata: dict[str, Any]
    created_at: datetime

    @property
    def timestamp(self) -> datetime:
        """When the episode was recorded (``created_at``)."""
        return self.created_at

    @property
    def has_outcome(self) -> bool:
        return self.outcome is not None

    def as_text(self) -> str:
        """The episode in a few lines, for a prompt.

        Example:
            >>> from datetime import datetime, timezone
            >>> now = datetime(2025, 1, 1, tzinfo=timezone.utc)
            >>> print(Episode("e1", "p", "disk full", "logs grew", "rotate logs", "freed 40 GB",
            ...               0.8, now, "memory_augmented", None, None, [], {}, now).as_text())
            Situation: disk full
            Reasoning: logs grew
            Action: rotate logs
            Outcome: freed 40 GB (quality 0.80)
        """
        lines = [
            f"Situation: {_text(self.perception)}",
            f"Reasoning: {_text(self.reasoning)}",
            f"Action: {_text(self.action)}",
        ]
        if self.outcome is None:
            lines.append("Outcome: pending")
        else:
            quality = (
                f" (quality {self.outcome_quality:.2f})" if self.outcome_quality is not None else ""
            )
            lines.append(f"Outcome: {_text(self.outcome)}{quality}")
        return "\n".join(lines)


@dataclass(frozen=True)
class RecalledEpisode:
    """An episode :meth:`EpisodicMemory.recall_similar` found."""

    episode: Episode
    similarity: float
    """Cosine similarity of its perception to the situation (1 is identical)."""
    score: float
    """What the results are ordered by: ``similarity`` without a :class:`Ranking`."""


@dataclass(frozen=True)
class Ranking:
    """How :meth:`EpisodicMemory.recall_similar` weighs outcome quality and recency.

    The search first takes the exact ``pool`` episodes most similar to the situation (at
    least ``k``; within the scope and filters), then orders them by::

        score = similarity * s + quality' * q + 0.5 ** (age / half_life) * r

    where ``s``, ``q`` and ``r`` are the weights :attr:`similarity`, :attr:`quality` and
    :attr:`recency`; ``quality'`` is the episode's outcome quality, or
    :attr:`missing_quality` while it has none; ``age`` is the time since it was recorded.
    The ``k`` best scores are returned (ties by similarity, then id). With the default
    weights (1, 0, 0) the order is the similarity order.

    Example:
        >>> Ranking(quality=0.5, recency=0.2).score(0.9, 1.0, timedelta(days=30))
        1.5
    """

    similarity: float = 1.0
    quality: float = 0.0
    recency: float = 0.0
    half_life: timedelta = timedelta(days=30)
    missing_quality: float = 0.5
    pool: int = 50

    def __post_init__(self) -> None:
        for name in ("similarity", "quality", "recency", "missing_quality"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value):
                raise ValueError(f"Ranking.{name} must be a finite number, got {value!r}")
        if not isinstance(self.half_life, timedelta) or self.half_life <= timedelta(0):
            raise ValueError(
                f"Ranking.half_life must be a positive timedelta, got {self.half_life!r}"
            )
        if isinstance(self.pool, bool) or not isinstance(self.pool, int) or self.pool < 1:
            raise ValueError(f"Ranking.pool must be a positive int, got {self.pool!r}")

    def score(self, similarity: float, quality: float | None, age: timedelta) -> float:
        """The score of one candidate (see the class docstring)."""
        q = self.missing_quality if quality is None else quality
        recency = 0.5 ** (max(age, timedelta(0)) / self.half_life)
        return similarity * self.similarity + q * self.quality + recency * self.recency


# -- checks ------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _quality(value: Any, what: str = "quality") -> float:
    if not _is_number(value) or not (math.isfinite(value) and 0 <= value <= 1):
        raise ValueError(f"{what} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _control_mode(value: Any) -> str:
    if value not in CONTROL_MODES:
        raise ValueError(
            f"control_mode must be one of {', '.join(map(repr, CONTROL_MODES))}, got {value!r}"
        )
    return str(value)


def _json(value: Any, what: str) -> str:
    if value is None:
        raise ValueError(f"{what} is required (any JSON value but None), got None")
    return dumps_exact(value, what)


def _opt_key(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str or None, got {type(value).__name__}: {value!r}")
    return encode_key(value)


def _key(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}: {value!r}")
    return encode_key(value)


def _tags(value: Any) -> str:
    if value is None:
        return "[]"
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"tags must be a list of str, got {type(value).__name__}: {value!r}")
    for tag in value:
        if not isinstance(tag, str):
            raise TypeError(f"each tag must be a str, got {type(tag).__name__}: {tag!r}")
    return dumps(list(value))


def _metadata(value: Any) -> str:
    if value is None:
        return "{}"
    if not isinstance(value, Mapping):
        raise TypeError(f"metadata must be a dict, got {type(value).__name__}: {value!r}")
    value = dict(value)
    check_exact(value, "metadata")
    return dumps(value)


def _when(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"{what} must be an aware datetime (with a tzinfo), got {value!r}")
    return value


def _k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be a non-negative int, got {k!r}")
    return k


def _limit(value: Any, what: str = "limit") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative int, got {value!r}")
    return value


def _text(value: Any) -> str:
    """The text of a JSON value: a string as itself, anything else as JSON."""
    return value if isinstance(value, str) else dumps(value)


def _embed_text(value: Any) -> str:
    """What is embedded for a JSON value: its text with NUL and lone surrogates replaced
    (an embedding model takes UTF-8; the exact value is stored as it is)."""
    return clean_text(_text(value))


# -- rows ----------------------------------------------------------------------------------

_COLUMNS = (
    "id",
    "project",
    "perception",
    "reasoning",
    "action",
    "outcome",
    "outcome_quality",
    "outcome_at",
    "control_mode",
    "decision_source",
    "agent_version",
    "tags",
    "metadata",
    "created_at",
)
# The metadata as its stored text (a driver's JSON parser would not keep it exact).
_AS_TEXT = SQL("CAST({} AS TEXT)")
_COMMA = SQL(", ")
#: Joins conditions the code wrote (and the filter compiler's, also code).
_AND = SQL(" AND ")
_SELECTED = [_AS_TEXT.format(Ident("v", c)) if c == "metadata" else Ident("v", c) for c in _COLUMNS]
_SELECT_SQL = _COMMA.join(_SELECTED)
# RETURNING names the table's columns unqualified (SQLite knows no alias there).
_RETURNING = _COMMA.join(
    _AS_TEXT.format(Ident(c)) if c == "metadata" else Ident(c) for c in _COLUMNS
)
_INGEST_COLUMNS = [
    ("id", "text"),
    ("project", "text"),
    ("perception", "text"),
    ("reasoning", "text"),
    ("action", "text"),
    ("outcome", "text"),
    ("outcome_quality", "double"),
    ("outcome_at", "timestamptz"),
    ("control_mode", "text"),
    ("decision_source", "text"),
    ("agent_version", "text"),
    ("tags", "text"),
    ("metadata", "json"),
    ("created_at", "timestamptz"),
    ("embedding", "vector"),
]


def _episode(dialect: Dialect, row: Sequence[Any]) -> Episode:
    created = dialect.to_datetime(row[13])
    assert created is not None  # NOT NULL
    return Episode(
        id=decode_key(row[0]),
        project=decode_key(row[1]),
        perception=loads(row[2]),
        reasoning=loads(row[3]),
        action=loads(row[4]),
        outcome=loads(row[5]) if row[5] is not None else None,
        outcome_quality=float(row[6]) if row[6] is not None else None,
        outcome_at=dialect.to_datetime(row[7]),
        control_mode=str(row[8]),
        decision_source=decode_key(row[9]) if row[9] is not None else None,
        agent_version=decode_key(row[10]) if row[10] is not None else None,
        tags=loads(row[11]),
        metadata=loads(row[12]),
        created_at=created,
    )


def _fetch(stmt: Stmt) -> Body[list[Any]]:
    rows: list[Any] = yield stmt
    return rows


def _one(stmt: One) -> Body[Any]:
    return (yield stmt)


def _outcome_body(
    uid: str, key: str, outcome: str, quality: float | None, replace: bool, episode_id: str
) -> Body[tuple[Any, ...]]:
    row = yield One(
        SQL(
            "UPDATE {episodes} AS v SET outcome = ?, outcome_quality = ?, outcome_at = {now} "
            "WHERE v.user_id = ? AND v.id = ? AND (v.outcome IS NULL OR ?) RETURNING {returning}"
        ).format(returning=_RETURNING),
        [outcome, quality, uid, key, replace],
    )
    if row is not None:
        return tuple(row)
    found = yield One(
        "SELECT outcome IS NOT NULL FROM {episodes} WHERE user_id = ? AND id = ?", [uid, key]
    )
    if found is None:
        raise EpisodeNotFoundError(
            f"user {decode_key(uid)!r} has no episode {episode_id!r} (an episode of another "
            "user cannot be read or changed)"
        )
    raise OutcomeExistsError(
        f"episode {episode_id!r} has its outcome already: pass replace=True to overwrite it"
    )


def _create_index(
    dialect: Dialect, index: VectorIndex, name: str, hnsw: HNSWSettings
) -> Body[bool]:
    lock = dialect.lock_keys([("episodes", name)])
    if lock is not None:
        yield lock
    return (yield from index.create(int(hnsw.get("m", 16)), int(hnsw.get("ef_construction", 64))))


EpisodeList = list[Episode]
RecallList = list[RecalledEpisode]


# -- the memory --------------------------------------------------------------------------


class EpisodicMemory:
    """The episodes of one user, recorded and recalled by similarity.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        embeddings: LangChain ``Embeddings``; an episode's perception is embedded (its
            text: a string as itself, other JSON as JSON text; NUL and lone surrogates
            replaced by U+FFFD for the model only), and so is a situation to recall.
        user_id: the tenant.
        project: the project episodes are recorded in and recalled from by default (any
            string; methods take ``project=`` or ``all_projects=True``).
        dims: the embedding size; learned from the first embedding when ``None``. An
            embedding of another size raises ``ValueError`` before anything is written.
        ranking: the default :class:`Ranking` of :meth:`recall_similar` (``None``: by
            similarity alone).
        hnsw: settings of an HNSW index over episodes of this size (Postgres): given
            (``{}`` for the defaults), the first write builds it; without it only
            :meth:`create_index` does. Scoped recall does not need it (small scopes are
            searched exactly); it serves large scopes (``all_projects`` over many rows).
        search: how a search chooses between an exact scan and the HNSW index (see
            :class:`~langchain_agentmem._search.vector_index.SearchSettings`).

    Every I/O method has an ``a``-prefixed async form. See the module docstring for an
    example.
    """

    def __init__(
        self,
        engine: EngineLike,
        embeddings: Embeddings,
        *,
        user_id: str,
        project: str = "default",
        dims: int | None = None,
        ranking: Ranking | None = None,
        hnsw: HNSWSettings | None = None,
        search: SearchSettings | None = None,
    ) -> None:
        engine = as_engine(engine)  # an Engine, a URL, or a connection (clear error otherwise)
        if not isinstance(embeddings, Embeddings):
            raise TypeError(
                f"embeddings must be LangChain Embeddings, got {type(embeddings).__name__}"
            )
        if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
            raise ValueError(f"dims must be a positive int or None, got {dims!r}")
        if ranking is not None and not isinstance(ranking, Ranking):
            raise TypeError(f"ranking must be a Ranking or None, got {type(ranking).__name__}")
        self.engine = as_engine(engine)
        self.embeddings = embeddings
        self.user_id = user_id
        self.project = project
        self.ranking = ranking
        self._uid = _key(user_id, "user_id")
        self._project = _key(project, "project")
        self._dims = dims
        self._hnsw: HNSWSettings = dict(hnsw or {})  # type: ignore[assignment]
        self._auto_index = hnsw is not None
        self._search = search_settings(search, ef_search=self._hnsw.get("ef_search"))
        self._ann: dict[int, tuple[tuple[int, ...], bool]] = {}

    def __repr__(self) -> str:
        return f"EpisodicMemory(user_id={self.user_id!r}, project={self.project!r})"

    @property
    def dims(self) -> int | None:
        """The embedding size (``None`` until the first embedding when not given)."""
        return self._dims

    def _for_user(self, user_id: str) -> EpisodicMemory:
        """The same memory for another user (the middleware's per-run user)."""
        if user_id == self.user_id:
            return self
        other = EpisodicMemory(
            self.engine,
            self.embeddings,
            user_id=user_id,
            project=self.project,
            dims=self._dims,
            ranking=self.ranking,
            search=self._search,
        )
        other._hnsw, other._auto_index, other._ann = self._hnsw, self._auto_index, self._ann
        return other

    # -- embeddings and the vector index ----------------------------------------------------
    def _matrix(self, vectors: Sequence[Any], what: str) -> np.ndarray:
        arrays = [np.asarray(v, dtype=np.float32) for v in vectors]
        for i, a in enumerate(arrays):
            if a.ndim != 1 or a.shape[0] == 0:
                raise ValueError(f"{what} {i}: expected a flat list of floats, got shape {a.shape}")
            if self._dims is not None and a.shape[0] != self._dims:
                raise ValueError(
                    f"wrong embedding size for {what} {i}: expected {self._dims} dimensions, "
                    f"got {a.shape[0]}"
                )
            if not np.isfinite(a).all():
                raise ValueError(f"{what} {i}: embeddings must be finite (no NaN or infinity)")
        if not arrays:
            return np.zeros((0, self._dims or 0), dtype=np.float32)
        sizes = {a.shape[0] for a in arrays}
        if len(sizes) > 1:
            raise ValueError(f"{what}s of different sizes: {sorted(sizes)}")
        matrix = np.vstack(arrays)
        if self._dims is None:
            self._dims = int(matrix.shape[1])
        return matrix

    def _index_name(self, dims: int) -> str:
        return f"episodes_d{int(dims)}_hnsw"

    def _vector_index(self, dims: int, exists: bool) -> VectorIndex:
        dialect = self.engine.dialect
        ann = self._ann.get(dims)
        return VectorIndex(
            dialect,
            "episodes",
            dims=dims,
            distance="cosine",
            index=self._index_name(dims) if exists else None,
            where=dialect.vector_dims_is("embedding", dims),
            version=ann[0] if ann else (0, 0, 0),
        )

    def _index_plan(self, dims: int, *, create: bool = False) -> Plan[VectorIndex]:
        name = self._index_name(dims)
        if dims not in self._ann:
            self._ann[dims] = yield Atomic(describe(self.engine.dialect, name), readonly=True)
        version, exists = self._ann[dims]
        if create and not exists:
            index = self._vector_index(dims, True)
            if index.cast is not None:
                yield Atomic(_create_index(self.engine.dialect, index, name, self._hnsw))
                exists = True
            self._ann[dims] = (version, exists)
        return self._vector_index(dims, exists)

    @dual
    def create_index(self) -> Plan[bool]:
        """Build the HNSW index over episodes of this memory's size (Postgres) if it does
        not exist; whether one exists afterwards (never on SQLite, whose search is exact).
        Needs the size: ``dims=`` or an earlier embedding."""
        if self._dims is None:
            raise ValueError("the embedding size is not known yet: pass dims= or record first")
        index = yield from self._index_plan(self._dims, create=True)
        return index.index is not None and index.cast is not None

    acreate_index = create_index.async_

    # -- writes ------------------------------------------------------------------------------
    def _row(self, item: Mapping[str, Any], what: str) -> tuple[list[Any], str]:
        """The ingest row of one episode (the vector left out) and the text to embed."""
        known = {
            "id",
            "project",
            "perception",
            "reasoning",
            "action",
            "outcome",
            "outcome_quality",
            "control_mode",
            "decision_source",
            "agent_version",
            "tags",
            "metadata",
            "created_at",
            "embedding",
        }
        unknown = set(item) - known
        if unknown:
            raise ValueError(f"{what}: unknown fields {sorted(unknown)}; expected {sorted(known)}")
        outcome = item.get("outcome")
        quality = item.get("outcome_quality")
        if quality is not None:
            quality = _quality(quality, f"{what}: outcome_quality")
            if outcome is None:
                raise ValueError(f"{what}: an outcome_quality needs an outcome")
        created = item.get("created_at")
        if created is not None:
            created = _when(created, f"{what}: created_at")
        ep_id = item.get("id")
        row = [
            _key(ep_id, f"{what}: id") if ep_id is not None else str(uuid.uuid4()),
            _key(item.get("project", self.project), f"{what}: project"),
            _json(item.get("perception"), f"{what}: perception"),
            _json(item.get("reasoning"), f"{what}: reasoning"),
            _json(item.get("action"), f"{what}: action"),
            dumps_exact(outcome, f"{what}: outcome") if outcome is not None else None,
            quality,
            None,  # outcome_at, below
            _control_mode(item.get("control_mode", "memory_augmented")),
            _opt_key(item.get("decision_source"), f"{what}: decision_source"),
            _opt_key(item.get("agent_version"), f"{what}: agent_version"),
            _tags(item.get("tags")),
            _metadata(item.get("metadata")),
            created,
        ]
        return row, _embed_text(item.get("perception"))

    @dual
    def record(
        self,
        perception: Any,
        reasoning: Any,
        action: Any,
        *,
        outcome: Any = None,
        outcome_quality: float | None = None,
        project: str | None = None,
        control_mode: str = "memory_augmented",
        decision_source: str | None = None,
        agent_version: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Plan[Episode]:
        """Record one episode; the episode as stored (a new ``id``, its ``timestamp``).

        Args:
            perception: what the agent saw (any JSON; its text is embedded).
            reasoning: how it reasoned (any JSON).
            action: what it did (any JSON).
            outcome: how it turned out, when already known (else see
                :meth:`record_outcome`).
            outcome_quality: from 0 to 1, with ``outcome`` only.
            project: the project (default: the memory's).
            control_mode: one of :data:`CONTROL_MODES`.
            decision_source: what decided (e.g. ``"llm"``, ``"rule:R12"``).
            agent_version: the agent's version.
            tags: strings.
            metadata: free references (a JSON object), matched by ``filter=``.

        Raises:
            ValueError: a quality outside 0..1 (or NaN), an unknown control mode, an
                embedding of the wrong size; nothing is written.
        """
        item: dict[str, Any] = {
            "perception": perception,
            "reasoning": reasoning,
            "action": action,
            "outcome": outcome,
            "outcome_quality": outcome_quality,
            "project": self.project if project is None else project,
            "control_mode": control_mode,
            "decision_source": decision_source,
            "agent_version": agent_version,
            "tags": tags,
            "metadata": metadata,
        }
        row, text = self._row(item, "episode")
        vector = yield Embed(self.embeddings, [text])
        matrix = self._matrix(vector, "embedding")
        dims = int(matrix.shape[1])
        if self._auto_index:
            yield from self._index_plan(dims, create=True)
        cols = [c for c in _COLUMNS if c not in ("outcome_at", "created_at")]
        values = [v for c, v in zip(_COLUMNS, row, strict=True) if c in cols]
        found = yield Atomic(
            _one(
                One(
                    SQL(
                        "INSERT INTO {episodes} AS v (user_id, {cols}, outcome_at, embedding) "
                        "VALUES (?, {values}, {outcome_at}, ?) RETURNING {returning}"
                    ).format(
                        cols=_COMMA.join(Ident(c) for c in cols),
                        values=_COMMA.join(SQL("?") for _ in cols),
                        outcome_at=SQL("{now}" if outcome is not None else "NULL"),
                        returning=_RETURNING,
                    ),
                    [self._uid, *values, self.engine.dialect.vector_param(matrix[0])],
                )
            ),
            single=True,
        )
        return _episode(self.engine.dialect, found)

    arecord = record.async_

    @dual
    def record_many(
        self, episodes: Sequence[Mapping[str, Any]], *, batch_size: int = 5000
    ) -> Plan[list[str]]:
        """Record many episodes in one transaction (batch ingest); their ids, in order.

        Each episode is a dict with the fields of :meth:`record` (``perception``,
        ``reasoning``, ``action`` required), and optionally ``id`` (an episode with an
        existing id is replaced), ``created_at`` (an aware ``datetime``; default: now, by
        this process's clock) and ``embedding`` (precomputed; else the perception is
        embedded, one call for all). On Postgres the rows travel by binary ``COPY``,
        ``batch_size`` at a time. Any bad episode raises before anything is written.
        """
        if isinstance(episodes, Mapping) or not isinstance(episodes, Sequence):
            raise TypeError(
                f"episodes must be a list of dicts, got {type(episodes).__name__}: {episodes!r:.80}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        now = datetime.now(timezone.utc)
        rows: list[list[Any]] = []
        texts: list[tuple[int, str]] = []
        given: dict[int, Any] = {}
        for n, item in enumerate(episodes):
            if not isinstance(item, Mapping):
                raise TypeError(f"episodes[{n}] must be a dict, got {type(item).__name__}")
            row, text = self._row(item, f"episodes[{n}]")
            if row[13] is None:
                row[13] = now
            if row[5] is not None:
                row[7] = row[13]  # outcome_at: recorded with the episode
            rows.append(row)
            if item.get("embedding") is not None:
                given[n] = item["embedding"]
            else:
                texts.append((n, text))
        if not rows:
            return []
        vectors: list[Any] = [None] * len(rows)
        for n, v in given.items():
            vectors[n] = v
        if texts:
            embedded = yield Embed(self.embeddings, [t for _, t in texts])
            if len(embedded) != len(texts):
                raise ValueError(
                    f"the embeddings returned {len(embedded)} vectors for {len(texts)} texts"
                )
            for (n, _), v in zip(texts, embedded, strict=True):
                vectors[n] = v
        matrix = self._matrix(vectors, "embedding")
        ids = [decode_key(r[0]) for r in rows]
        last = {r[0]: n for n, r in enumerate(rows)}  # one row per id: the last wins
        keep = sorted(last.values())
        if self._auto_index:
            yield from self._index_plan(int(matrix.shape[1]), create=True)
        yield Atomic(
            ingest(
                self.engine.dialect,
                "episodes",
                fixed=[("user_id", self._uid)],
                columns=_INGEST_COLUMNS,
                key=("user_id", "id"),
                rows=[(*rows[n], matrix[n]) for n in keep],
                batch_size=batch_size,
                touch=None,
            )
        )
        return ids

    arecord_many = record_many.async_

    @dual
    def record_outcome(
        self, episode_id: str, outcome: Any, quality: float, *, replace: bool = True
    ) -> Plan[Episode]:
        """Record how episode ``episode_id`` turned out, timestamped now (``outcome_at``);
        the episode after the change. Any process may call it, any time later.

        Args:
            episode_id: the episode's id.
            outcome: how it turned out (any JSON but ``None``).
            quality: from 0 (bad) to 1 (good).
            replace: overwrite an outcome recorded before (default); ``False``: raise
                :class:`OutcomeExistsError` instead (exactly one of many concurrent
                callers then succeeds).

        Raises:
            EpisodeNotFoundError: this user has no such episode (another user's episode
                is neither read nor changed).
            ValueError: a quality outside 0..1 or NaN (nothing is written).
        """
        q = _quality(quality)
        text = _json(outcome, "outcome")
        key = _key(episode_id, "episode_id")
        if not isinstance(replace, bool):
            raise TypeError(f"replace must be a bool, got {type(replace).__name__}")
        row = yield Atomic(_outcome_body(self._uid, key, text, q, replace, episode_id))
        return _episode(self.engine.dialect, row)

    arecord_outcome = record_outcome.async_

    @dual
    def delete(self, episode_ids: str | Sequence[str]) -> Plan[int]:
        """Delete episodes of this user by id (one id or a list); how many were deleted."""
        ids = [episode_ids] if isinstance(episode_ids, str) else list(episode_ids)
        keys = [_key(i, "episode_id") for i in ids]
        scope = Scope("episodes", ("user_id",), "id")
        return (yield Atomic(delete_in_key_order(self.engine.dialect, scope, [self._uid], keys)))

    adelete = delete.async_

    # -- reads -------------------------------------------------------------------------------
    @dual
    def get(self, episode_id: str) -> Plan[Episode | None]:
        """The episode, or ``None`` when this user has none with that id."""
        key = _key(episode_id, "episode_id")
        row = yield Atomic(
            _one(
                One(
                    SQL("SELECT {cols} FROM {episodes} v WHERE v.user_id = ? AND v.id = ?").format(
                        cols=_SELECT_SQL
                    ),
                    [self._uid, key],
                )
            ),
            readonly=True,
        )
        return _episode(self.engine.dialect, row) if row is not None else None

    aget = get.async_

    def _scope(self, project: str | None, all_projects: bool) -> tuple[list[str], list[Any]]:
        if not isinstance(all_projects, bool):
            raise TypeError(f"all_projects must be a bool, got {type(all_projects).__name__}")
        conds, params = ["v.user_id = ?"], [self._uid]
        if not all_projects:
            conds.append("v.project = ?")
            params.append(self._project if project is None else _key(project, "project"))
        elif project is not None:
            raise ValueError("give project= or all_projects=True, not both")
        return conds, params

    @dual
    def list(
        self,
        project: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        all_projects: bool = False,
        control_mode: str | None = None,
        with_outcome: bool | None = None,
        filter: Mapping[str, Any] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Plan[EpisodeList]:
        """Episodes of a project (default: the memory's; ``all_projects=True``: every
        project), newest first.

        Args:
            project: the project.
            since: recorded at or after (an aware ``datetime``).
            until: recorded before.
            all_projects: every project of the user.
            control_mode: only episodes of this mode.
            with_outcome: ``True``: only episodes with an outcome; ``False``: only pending.
            filter: a metadata filter (the vector store's filter language).
            limit, offset: the page.
        """
        dialect = self.engine.dialect
        conds, params = self._scope(project, all_projects)
        if since is not None:
            conds.append("v.created_at >= ?")
            params.append(dialect.from_datetime(_when(since, "since")))
        if until is not None:
            conds.append("v.created_at < ?")
            params.append(dialect.from_datetime(_when(until, "until")))
        if control_mode is not None:
            conds.append("v.control_mode = ?")
            params.append(_control_mode(control_mode))
        if with_outcome is not None:
            conds.append("v.outcome IS NOT NULL" if with_outcome else "v.outcome IS NULL")
        fsql, fparams = compile_filter(filter, dialect.json_sql("v.metadata", exact=True))
        rows = yield Atomic(
            _fetch(
                Stmt(
                    SQL(
                        "SELECT {cols} FROM {episodes} v WHERE {where} "
                        "ORDER BY v.created_at DESC, v.id LIMIT ? OFFSET ?"
                    ).format(cols=_SELECT_SQL, where=_AND.join(SQL(c) for c in [*conds, fsql])),
                    [*params, *fparams, _limit(limit), _limit(offset, "offset")],
                    fetch=True,
                )
            ),
            readonly=True,
        )
        return [_episode(dialect, r) for r in rows]

    alist = list.async_

    @dual
    def pending_outcomes(
        self,
        project: str | None = None,
        *,
        all_projects: bool = False,
        older_than: timedelta | None = None,
        limit: int = 100,
    ) -> Plan[EpisodeList]:
        """Episodes still waiting for their outcome, oldest first; with ``older_than``,
        only those recorded at least that long ago."""
        dialect = self.engine.dialect
        conds, params = self._scope(project, all_projects)
        conds.append("v.outcome IS NULL")
        if older_than is not None:
            if not isinstance(older_than, timedelta) or older_than < timedelta(0):
                raise ValueError(f"older_than must be a timedelta >= 0, got {older_than!r}")
            conds.append("v.created_at <= ?")
            params.append(dialect.from_datetime(datetime.now(timezone.utc) - older_than))
        rows = yield Atomic(
            _fetch(
                Stmt(
                    SQL(
                        "SELECT {cols} FROM {episodes} v WHERE {where} "
                        "ORDER BY v.created_at, v.id LIMIT ?"
                    ).format(cols=_SELECT_SQL, where=_AND.join(SQL(c) for c in conds)),
                    [*params, _limit(limit)],
                    fetch=True,
                )
            ),
            readonly=True,
        )
        return [_episode(dialect, r) for r in rows]

    apending_outcomes = pending_outcomes.async_

    # -- recall ------------------------------------------------------------------------------
    def _recall_plan(
        self,
        situation: Any,
        k: int,
        min_quality: float | None,
        only_with_outcome: bool,
        filter: Mapping[str, Any] | None,
        project: str | None,
        all_projects: bool,
        ranking: Ranking | None,
    ) -> Plan[RecallList]:
        k = _k(k)
        if ranking is not None and not isinstance(ranking, Ranking):
            raise TypeError(f"ranking must be a Ranking or None, got {type(ranking).__name__}")
        ranking = ranking if ranking is not None else self.ranking
        dialect = self.engine.dialect
        conds, params = self._scope(project, all_projects)
        if min_quality is not None:
            conds.append("v.outcome_quality >= ?")
            params.append(_quality(min_quality, "min_quality"))
        if not isinstance(only_with_outcome, bool):
            raise TypeError(
                f"only_with_outcome must be a bool, got {type(only_with_outcome).__name__}"
            )
        if only_with_outcome:
            conds.append("v.outcome IS NOT NULL")
        fsql, fparams = compile_filter(filter, dialect.json_sql("v.metadata", exact=True))
        if situation is None:
            raise ValueError("situation is required (any JSON value but None), got None")
        check_exact(situation, "situation")
        vector = yield Embed(self.embeddings, [_embed_text(situation)], query=True)
        q = self._matrix([vector], "query embedding")[0]
        if k == 0:
            return []
        dims = int(q.shape[0])
        index = yield from self._index_plan(dims)
        pool = k if ranking is None else max(k, ranking.pool)
        query = SearchQuery(
            q,
            pool,
            select=_SELECTED,
            where=(
                " AND ".join([*conds, dialect.vector_dims_is("embedding", dims), fsql]),
                [*params, *fparams],
            ),
            order="v.id",
            settings=self._search,
        )
        rows = yield Atomic(index.search_small(query), readonly=True)
        if rows is None:
            rows = yield Atomic(index.search_large(query), pipeline=True)
        found = [(_episode(dialect, r), 1.0 - float(r[-1])) for r in rows]
        if ranking is None:
            return [RecalledEpisode(e, s, s) for e, s in found[:k]]
        now = datetime.now(timezone.utc)
        scored = [
            RecalledEpisode(e, s, ranking.score(s, e.outcome_quality, now - e.created_at))
            for e, s in found
        ]
        scored.sort(key=lambda r: (-r.score, -r.similarity, r.episode.id))
        return scored[:k]

    @dual
    def recall_similar(
        self,
        situation: Any,
        k: int = 5,
        *,
        min_quality: float | None = None,
        only_with_outcome: bool = False,
        filter: Mapping[str, Any] | None = None,
        project: str | None = None,
        all_projects: bool = False,
        ranking: Ranking | None = None,
    ) -> Plan[RecallList]:
        """The ``k`` episodes most similar to ``situation``, most similar first.

        The search is the true top ``k`` within the scope (the project, or every project
        with ``all_projects``) and the filters: exact while they hold few rows (up to
        ``exact_search_threshold``, default 1,000, or a tenth of the rows of the HNSW
        index when one exists); a larger scope is searched through the HNSW index with
        iterative scans (recall about 0.99), and exactly where there is no index.

        Args:
            situation: the new situation (a string, or JSON like a perception).
            k: how many.
            min_quality: only episodes whose outcome quality is at least this.
            only_with_outcome: only episodes with an outcome.
            filter: a metadata filter (the vector store's language: ``{"sprint_id":
                "S-12"}``, ``$in``, ``$gte``, ``$and``, ...).
            project: the project (default: the memory's).
            all_projects: every project of the user.
            ranking: re-order an exact candidate pool by quality and recency too (see
                :class:`Ranking`); default: the memory's ``ranking``.
        """
        return (
            yield from self._recall_plan(
                situation, k, min_quality, only_with_outcome, filter, project, all_projects, ranking
            )
        )

    arecall_similar = recall_similar.async_

    # -- LangChain ---------------------------------------------------------------------------
    def as_retriever(self, **kwargs: Any) -> EpisodeRetriever:
        """A LangChain retriever over :meth:`recall_similar` (keyword arguments: ``k``,
        ``min_quality``, ``only_with_outcome``, ``filter``, ``ranking``, ``project``)."""
        return EpisodeRetriever(memory=self, **kwargs)


def _document(found: RecalledEpisode) -> Document:
    e = found.episode
    return Document(
        page_content=e.as_text(),
        id=e.id,
        metadata={
            "id": e.id,
            "project": e.project,
            "outcome_quality": e.outcome_quality,
            "control_mode": e.control_mode,
            "created_at": e.created_at.isoformat(),
            "similarity": found.similarity,
            "score": found.score,
            **({"metadata": e.metadata} if e.metadata else {}),
        },
    )


class EpisodeRetriever(BaseRetriever):
    """Similar past episodes as LangChain documents (``page_content``: the episode's
    :meth:`~Episode.as_text`; ``metadata``: id, project, quality, similarity, score).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_agentmem import connect
        >>> engine = connect("sqlite://"); _ = engine.migrate()
        >>> memory = EpisodicMemory(engine, DeterministicFakeEmbedding(size=8), user_id="u")
        >>> _ = memory.record("disk full", "logs grew", "rotate logs")
        >>> print(memory.as_retriever(k=1).invoke("disk full")[0].page_content)
        Situation: disk full
        Reasoning: logs grew
        Action: rotate logs
        Outcome: pending
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: EpisodicMemory
    k: int = 4
    min_quality: float | None = None
    only_with_outcome: bool = False
    filter: dict[str, Any] | None = None
    project: str | None = None
    ranking: Ranking | None = None

    def _plan(self, query: str) -> Plan[list[Document]]:
        found = yield from self.memory._recall_plan(
            query,
            self.k,
            self.min_quality,
            self.only_with_outcome,
            self.filter,
            self.project,
            False,
            self.ranking,
        )
        return [_document(f) for f in found]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        from ._core.plan import run

        return run(self.memory.engine, self.memory._uid, self._plan(query))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        from ._core.plan import arun

        return await arun(self.memory.engine, self.memory._uid, self._plan(query))


# -- tools for agents -----------------------------------------------------------------------


def episode_tools(memory: EpisodicMemory, *, k: int = 3) -> list[StructuredTool]:
    """LangChain tools an agent calls to learn from its outcomes: ``record_episode``,
    ``recall_similar_episodes`` (``k`` by default) and ``record_outcome``; each works sync
    and async. Bad input (a quality of 1.5, an unknown episode id) comes back to the model
    as the error's message.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_agentmem import connect
        >>> engine = connect("sqlite://"); _ = engine.migrate()
        >>> memory = EpisodicMemory(engine, DeterministicFakeEmbedding(size=8), user_id="u")
        >>> record, recall, outcome = episode_tools(memory)
        >>> ep_id = record.invoke({"perception": "disk full", "reasoning": "logs grew",
        ...                        "action": "rotate logs"}).split()[-1]
        >>> outcome.invoke({"episode_id": ep_id, "outcome": "freed 40 GB", "quality": 1.5})
        'Error: quality must be a number from 0 to 1, got 1.5'
        >>> outcome.invoke({"episode_id": ep_id, "outcome": "freed 40 GB", "quality": 0.8}) == (
        ...     "Outcome recorded for episode " + ep_id)
        True
        >>> print(recall.invoke({"situation": "disk full"}))
        Episode ...:
        Situation: disk full
        Reasoning: logs grew
        Action: rotate logs
        Outcome: freed 40 GB (quality 0.80)
    """

    def record_episode(
        perception: str,
        reasoning: str,
        action: str,
        outcome: str | None = None,
        outcome_quality: float | None = None,
        tags: list[str] | None = None,
    ) -> Plan[str]:
        ep = yield from EpisodicMemory.record.fn(
            memory,
            perception,
            reasoning,
            action,
            outcome=outcome,
            outcome_quality=outcome_quality,
            tags=tags,
        )
        return f"Recorded episode {ep.id}"

    def recall_similar_episodes(
        situation: str,
        k: int = k,
        min_quality: float | None = None,
        only_with_outcome: bool = False,
    ) -> Plan[str]:
        found = yield from EpisodicMemory.recall_similar.fn(
            memory, situation, k, min_quality=min_quality, only_with_outcome=only_with_outcome
        )
        if not found:
            return "No similar episodes."
        return "\n\n".join(f"Episode {f.episode.id}:\n{f.episode.as_text()}" for f in found)

    def record_outcome(episode_id: str, outcome: str, quality: float) -> Plan[str]:
        yield from EpisodicMemory.record_outcome.fn(memory, episode_id, outcome, quality)
        return f"Outcome recorded for episode {episode_id}"

    return [
        plan_tool(
            memory,
            record_episode,
            name="record_episode",
            description=(
                "Record what you saw (perception), how you reasoned and what you did (action), "
                "and the outcome with its quality (0 to 1) if already known. Returns the "
                "episode id; record the outcome later with record_outcome."
            ),
        ),
        plan_tool(
            memory,
            recall_similar_episodes,
            name="recall_similar_episodes",
            description=(
                "Recall past episodes whose situation is most similar to the given one, with "
                "what was done and how it turned out. Use before deciding."
            ),
        ),
        plan_tool(
            memory,
            record_outcome,
            name="record_outcome",
            description=(
                "Record how an earlier episode turned out: the outcome and its quality, a "
                "number from 0 (bad) to 1 (good)."
            ),
        ),
    ]
