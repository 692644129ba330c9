"""A knowledge base: facts, rules, and strategies learned from the agent's own episodes.

:class:`KnowledgeBase` keeps three kinds of knowledge per user:

* **Facts** (``knowledge_facts``): ``subject / predicate / object`` with a confidence and
  a source. Asserting a fact again raises its confidence instead of adding a row
  (noisy-OR: ``c = 1 - (1 - c_old) * (1 - c_new)``) and counts the assertion. On a
  *single-valued* predicate (``lives_in``, ``status``, ...) a fact with another object
  contradicts the ones held: their confidence is multiplied by ``1 - c_new`` and
  ``contradicted_at`` is stamped; every fact is kept with its timestamps, none is
  silently overwritten.
* **Rules** (``knowledge_rules``): a condition pattern, an action (any JSON), a priority
  and ``is_active``. :meth:`KnowledgeBase.matching_rules` returns the active rules whose
  condition matches a context, highest priority first. See :func:`matches` for the
  pattern language (a JSON subset match with a few comparison operators; nothing in it
  is evaluated as code).
* **Knowledge** (``knowledge``): strategies, patterns, constraints and heuristics with a
  description, content (any JSON), confidence, the episodes that support and contradict
  it, and how often applying it worked. A strategy needs at least
  :data:`MIN_STRATEGY_EPISODES` (3) distinct supporting episodes (a ``ValueError`` here,
  and a CHECK in the table). ``success_rate`` is a generated column the database keeps:
  ``success_count / (success_count + failure_count)``, NULL before any outcome.
  :meth:`KnowledgeBase.record_application` is one ``UPDATE ... SET x = x + 1``: concurrent
  callers never lose a count. :meth:`KnowledgeBase.best_strategies` ranks by similarity
  to a situation, confidence and success rate (see :class:`StrategyWeights`), and
  :meth:`KnowledgeBase.distill` proposes or updates knowledge from episodes with ONE model
  call per batch.

Episodes are plain mappings or objects with ``id``, ``perception``, ``action``, ``outcome``
and ``quality`` (0..1), and optionally ``reasoning``: an episode memory's rows work as they
are. Text round-trips exactly (NUL and lone surrogates included); bad input raises a
``TypeError`` / ``ValueError`` saying what was expected, before anything is written.

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> kb = KnowledgeBase(engine, DeterministicFakeEmbedding(size=16), user_id="alice",
    ...                    single_valued=["lives_in"])
    >>> kb.assert_fact("Bob", "lives_in", "Lyon", confidence=0.6).confidence
    0.6
    >>> round(kb.assert_fact("Bob", "lives_in", "Lyon", confidence=0.5).confidence, 2)
    0.8
    >>> _ = kb.assert_fact("Bob", "lives_in", "Paris", confidence=0.9)
    >>> [(f.object, round(f.confidence, 2)) for f in kb.facts("Bob", "lives_in")]
    [('Paris', 0.9), ('Lyon', 0.08)]
    >>> _ = kb.add_rule({"task": "deploy", "env": {"$in": ["prod", "staging"]}},
    ...                 {"require": "approval"}, priority=10)
    >>> [r.action for r in kb.matching_rules({"task": "deploy", "env": "prod", "user": "x"})]
    [{'require': 'approval'}]
    >>> s = kb.add_strategy("retry flaky network calls with backoff",
    ...                     supporting_episodes=["e1", "e2", "e3"])
    >>> kb.record_application(s.id, success=True).success_rate
    1.0
    >>> [x.knowledge.description for x in kb.best_strategies("a network call failed", k=1)]
    ['retry flaky network calls with backoff']
"""

from __future__ import annotations

import builtins
import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypedDict

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from ._core.llm import structured
from ._core.plan import Atomic, Embed, Model, Plan, dual
from ._core.plan_tool import plan_tool
from ._encoding.json import check_exact, clean_text, dumps, dumps_exact, loads
from ._encoding.keys import decode_key, encode_key
from ._search.vector_index import SearchQuery, VectorIndex
from .dialects import SQL, Body, Composable, Composed, Dialect, Ident, One, Stmt
from .engine import EngineLike, as_engine

__all__ = [
    "DEFAULT_WEIGHTS",
    "KINDS",
    "MIN_STRATEGY_EPISODES",
    "Distilled",
    "Fact",
    "Knowledge",
    "KnowledgeBase",
    "Rule",
    "ScoredKnowledge",
    "StrategyWeights",
    "check_pattern",
    "knowledge_tools",
    "matches",
]

#: The kinds of knowledge the ``knowledge`` table holds.
KINDS = ("strategy", "pattern", "constraint", "heuristic")
#: Distinct supporting episodes a strategy needs.
MIN_STRATEGY_EPISODES = 3


# -- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """One row of ``knowledge_facts``."""

    subject: str
    predicate: str
    object: str
    confidence: float
    source: str | None
    times_asserted: int
    created_at: datetime | None
    updated_at: datetime | None
    """When it was last asserted."""
    contradicted_at: datetime | None
    """When a contradicting fact last lowered its confidence (``None``: never)."""


@dataclass(frozen=True)
class Rule:
    """One row of ``knowledge_rules``."""

    id: str
    condition: dict[str, Any]
    action: Any
    priority: int
    is_active: bool
    description: str | None
    created_at: datetime | None


@dataclass(frozen=True)
class Knowledge:
    """One row of ``knowledge``: a strategy, pattern, constraint or heuristic."""

    id: str
    kind: str
    description: str
    content: Any
    confidence: float
    supporting_episodes: list[str]
    contradicting_episodes: list[str]
    times_applied: int
    success_count: int
    failure_count: int
    success_rate: float | None
    """``success_count / (success_count + failure_count)`` (kept by the database);
    ``None`` before any outcome."""
    last_applied: datetime | None
    last_validated: datetime | None
    is_active: bool
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class ScoredKnowledge:
    """A :meth:`KnowledgeBase.best_strategies` result: the knowledge, its combined score
    and its cosine similarity to the situation."""

    knowledge: Knowledge
    score: float
    similarity: float


@dataclass(frozen=True)
class Distilled:
    """What one :meth:`KnowledgeBase.distill` call wrote, and what it refused."""

    created: list[Knowledge] = field(default_factory=list)
    updated: list[Knowledge] = field(default_factory=list)
    rejected: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    """Proposals of the model that were not written, each with the reason."""
    model_calls: int = 0


class StrategyWeights(TypedDict, total=False):
    """Weights of :meth:`KnowledgeBase.best_strategies`'s score::

        score = similarity * cos_sim + confidence * confidence
                + success_rate * (success_count + 1) / (success_count + failure_count + 2)

    ``cos_sim`` is the cosine similarity of the situation and the description (-1..1); the
    success term is the success rate smoothed towards 0.5 (Laplace), so a strategy applied
    once is not ranked as certain. Weights are finite and non-negative, not all zero.
    """

    similarity: float
    """Default 0.6."""
    confidence: float
    """Default 0.2."""
    success_rate: float
    """Default 0.2."""


DEFAULT_WEIGHTS: StrategyWeights = {"similarity": 0.6, "confidence": 0.2, "success_rate": 0.2}


# -- validation ----------------------------------------------------------------------------


def _text(value: Any, what: str, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}: {value!r:.80}")
    if not empty and not value.strip():
        raise ValueError(f"{what} must not be empty or blank, got {value!r}")
    return value


def _confidence(value: Any, what: str = "confidence") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{what} must be a number from 0 to 1, got {type(value).__name__}: {value!r}"
        )
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"{what} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _int(value: Any, what: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}: {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value}")
    return value


def _limit(limit: Any) -> int | None:
    return None if limit is None else _int(limit, "limit", minimum=0)


def _kind(kind: Any) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    return str(kind)


def _episode_ids(ids: Any, what: str) -> list[str]:
    if isinstance(ids, str) or not isinstance(ids, Iterable):
        raise TypeError(f"{what} must be a list of episode ids (str), got {ids!r:.80}")
    out: list[str] = []
    for i in ids:
        _text(i, f"an episode id in {what}")
        if i not in out:
            out.append(i)
    return out


def _check_support(kind: str, supporting: Sequence[str]) -> None:
    if kind == "strategy" and len(supporting) < MIN_STRATEGY_EPISODES:
        raise ValueError(
            f"a strategy needs at least {MIN_STRATEGY_EPISODES} distinct supporting episodes, "
            f"got {len(supporting)}: {list(supporting)!r:.120} (record more episodes, or add "
            "it as a 'pattern' or 'heuristic' until it has them)"
        )


def _weights(weights: Mapping[str, Any] | None) -> tuple[float, float, float]:
    w: dict[str, Any] = {**DEFAULT_WEIGHTS, **(weights or {})}
    unknown = set(w) - set(DEFAULT_WEIGHTS)
    if unknown:
        raise ValueError(
            f"unknown weight(s) {sorted(unknown)}: expected similarity, confidence, success_rate"
        )
    values = []
    for name in ("similarity", "confidence", "success_rate"):
        v = w[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"weight {name} must be a finite number >= 0, got {v!r}")
        values.append(float(v))
    if not any(values):
        raise ValueError("at least one weight must be above 0, got all 0")
    return values[0], values[1], values[2]


# -- the rule pattern language ----------------------------------------------------------

_COMPARE = {"$gt", "$gte", "$lt", "$lte"}
_OPERATORS = {"$eq", "$ne", "$in", "$nin", "$exists", *_COMPARE}
MAX_PATTERN_DEPTH = 16


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON values: ``1 == 1.0``, but ``True`` is not ``1``; lists in order."""
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b) and not (isinstance(a, str) and isinstance(b, str)):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _is_operator(pattern: Any) -> bool:
    return isinstance(pattern, dict) and bool(pattern) and all(k.startswith("$") for k in pattern)


def check_pattern(pattern: Any, what: str = "condition", depth: int = 0) -> None:
    """Raise ``ValueError`` / ``TypeError`` unless ``pattern`` is a valid condition (see
    :func:`matches`).

    Example:
        >>> check_pattern({"n": {"$gt": 3}})
        >>> check_pattern({"n": {"$regex": "x"}})
        Traceback (most recent call last):
        ...
        ValueError: condition['n']: unknown operator '$regex'; expected one of $eq, $exists, $gt, $gte, $in, $lt, $lte, $ne, $nin
    """
    if depth > MAX_PATTERN_DEPTH:
        raise ValueError(f"{what} nests deeper than {MAX_PATTERN_DEPTH} levels")
    check_exact(pattern, what)
    if isinstance(pattern, dict):
        dollar = [k for k in pattern if k.startswith("$")]
        if dollar and len(dollar) != len(pattern):
            raise ValueError(
                f"{what} mixes operators ({', '.join(dollar)}) and fields in one object: "
                "put the operators in the field's value, e.g. {'n': {'$gt': 1}}"
            )
        if dollar:
            for op, arg in pattern.items():
                _check_operator(op, arg, f"{what}")
            return
        for key, sub in pattern.items():
            check_pattern(sub, f"{what}[{key!r}]", depth + 1)
    elif isinstance(pattern, list):
        for i, sub in enumerate(pattern):
            check_pattern(sub, f"{what}[{i}]", depth + 1)


def _check_operator(op: str, arg: Any, what: str) -> None:
    if op not in _OPERATORS:
        raise ValueError(
            f"{what}: unknown operator {op!r}; expected one of {', '.join(sorted(_OPERATORS))}"
        )
    if op in ("$in", "$nin") and not isinstance(arg, list):
        raise ValueError(f"{what}: {op} takes a list of values, got {arg!r:.80}")
    if op in _COMPARE and not (_is_number(arg) or isinstance(arg, str)):
        raise ValueError(f"{what}: {op} takes a number or a string, got {arg!r:.80}")
    if op == "$exists" and not isinstance(arg, bool):
        raise ValueError(f"{what}: $exists takes true or false, got {arg!r:.80}")


def _compare(op: str, value: Any, arg: Any) -> bool:
    if _is_number(arg):
        if not _is_number(value):
            return False
    elif not isinstance(value, str):
        return False
    if op == "$gt":
        return bool(value > arg)
    if op == "$gte":
        return bool(value >= arg)
    if op == "$lt":
        return bool(value < arg)
    return bool(value <= arg)


_ABSENT: Any = object()


def _match_operators(ops: dict[str, Any], value: Any) -> bool:
    for op, arg in ops.items():
        if op == "$exists":
            if (value is not _ABSENT) != arg:
                return False
            continue
        if value is _ABSENT:
            if op in ("$ne", "$nin"):
                continue
            return False
        if op == "$eq":
            ok = _json_equal(value, arg)
        elif op == "$ne":
            ok = not _json_equal(value, arg)
        elif op == "$in":
            ok = any(_json_equal(value, a) for a in arg)
        elif op == "$nin":
            ok = not any(_json_equal(value, a) for a in arg)
        else:
            ok = _compare(op, value, arg)
        if not ok:
            return False
    return True


def matches(pattern: Any, value: Any) -> bool:
    """Whether the JSON ``value`` (a rule's context) matches ``pattern`` (its condition).

    The pattern language is a JSON subset match, like Postgres' ``jsonb @>``, plus a few
    operators; it is data, never evaluated as code:

    * an object matches an object that has each of its fields with a matching value
      (other fields of the value are ignored);
    * a list matches a list that holds, for each of its elements, a matching element (in
      any order);
    * any other value matches an equal JSON value (``1`` equals ``1.0``; ``true`` is not
      ``1``; strings compare exactly);
    * an object whose keys all start with ``$`` is an operator object: ``$eq``, ``$ne``,
      ``$in`` / ``$nin`` (a list of values), ``$gt`` ``$gte`` ``$lt`` ``$lte`` (a number or
      a string, compared with values of the same type) and ``$exists`` (true / false, for
      a field). ``$ne`` and ``$nin`` also hold when the field is missing. All of an
      object's operators must hold.

    Example:
        >>> matches({"env": "prod", "errors": {"$gte": 3}}, {"env": "prod", "errors": 5, "x": 1})
        True
        >>> matches({"tags": ["urgent"]}, {"tags": ["a", "urgent"]})
        True
        >>> matches({"retry": {"$exists": False}}, {"retry": None})
        False
        >>> matches({"n": 1}, {"n": True})
        False
    """
    if _is_operator(pattern):
        return _match_operators(pattern, value)
    if value is _ABSENT:
        return False
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, sub in pattern.items():
            got = value.get(key, _ABSENT)
            if _is_operator(sub):
                if not _match_operators(sub, got):
                    return False
            elif got is _ABSENT or not matches(sub, got):
                return False
        return True
    if isinstance(pattern, list):
        if not isinstance(value, list):
            return False
        return all(any(matches(p, v) for v in value) for p in pattern)
    return _json_equal(pattern, value)


# -- rows --------------------------------------------------------------------------------

_FACT_COLS = SQL(
    "subject, predicate, object, confidence, source, times_asserted, created_at, updated_at, "
    "contradicted_at"
)
_RULE_COLS = SQL("id, condition, action, priority, is_active, description, created_at")
_KNOWLEDGE = (
    "id",
    "kind",
    "description",
    "description_exact",
    "content",
    "confidence",
    "supporting_episodes",
    "contradicting_episodes",
    "times_applied",
    "success_count",
    "failure_count",
    "success_rate",
    "last_applied",
    "last_validated",
    "is_active",
    "created_at",
    "updated_at",
)
_K_COLS = SQL(", ").join(Ident(c) for c in _KNOWLEDGE)


def _fact(d: Dialect, r: Sequence[Any]) -> Fact:
    return Fact(
        subject=decode_key(r[0]),
        predicate=decode_key(r[1]),
        object=decode_key(r[2]),
        confidence=float(r[3]),
        source=loads(r[4]) if r[4] is not None else None,
        times_asserted=int(r[5]),
        created_at=d.to_datetime(r[6]),
        updated_at=d.to_datetime(r[7]),
        contradicted_at=d.to_datetime(r[8]),
    )


def _rule(d: Dialect, r: Sequence[Any]) -> Rule:
    return Rule(
        id=decode_key(r[0]),
        condition=loads(r[1]),
        action=loads(r[2]),
        priority=int(r[3]),
        is_active=bool(r[4]),
        description=loads(r[5]) if r[5] is not None else None,
        created_at=d.to_datetime(r[6]),
    )


def _knowledge(d: Dialect, r: Sequence[Any]) -> Knowledge:
    return Knowledge(
        id=decode_key(r[0]),
        kind=r[1],
        description=loads(r[3]) if r[3] is not None else r[2],
        content=loads(r[4]),
        confidence=float(r[5]),
        supporting_episodes=list(loads(r[6])),
        contradicting_episodes=list(loads(r[7])),
        times_applied=int(r[8]),
        success_count=int(r[9]),
        failure_count=int(r[10]),
        success_rate=None if r[11] is None else float(r[11]),
        last_applied=d.to_datetime(r[12]),
        last_validated=d.to_datetime(r[13]),
        is_active=bool(r[14]),
        created_at=d.to_datetime(r[15]),
        updated_at=d.to_datetime(r[16]),
    )


def _description(text: str) -> tuple[str, str | None]:
    """The search copy of a description and, when it differs, the exact text as JSON."""
    clean = clean_text(text)
    return clean, (dumps(text) if clean != text else None)


# -- bodies (one transaction each) -------------------------------------------------------


def _assert_body(
    d: Dialect,
    uid: str,
    spo: tuple[str, str, str],
    confidence: float,
    source: str | None,
    single: bool,
) -> Body[Fact]:
    s, p, o = spo
    lock = d.lock_keys([("knowledge_facts", uid, s, p)])
    if lock is not None:
        yield lock  # writers of one (subject, predicate) run one after the other
    if single:
        yield Stmt(
            "UPDATE {knowledge_facts} SET confidence = confidence * (1 - ?), "
            "contradicted_at = {now} WHERE user_id = ? AND subject = ? AND predicate = ? "
            "AND object <> ?",
            [confidence, uid, s, p, o],
        )
    row = yield One(
        SQL(
            "INSERT INTO {knowledge_facts} AS f (user_id, subject, predicate, object, confidence, "
            "source) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, subject, predicate, object) "
            "DO UPDATE SET confidence = 1 - (1 - f.confidence) * (1 - excluded.confidence), "
            "times_asserted = f.times_asserted + 1, source = coalesce(excluded.source, f.source), "
            "updated_at = {now} RETURNING {cols}"
        ).format(cols=_FACT_COLS),
        [uid, s, p, o, confidence, source],
    )
    assert row is not None
    return _fact(d, row)


def _where(uid: str, conds: Sequence[tuple[str, Any]]) -> tuple[Composed, list[Any]]:
    parts: list[Composable] = [SQL("user_id = ?")]
    params: list[Any] = [uid]
    for col, value in conds:
        if value is not None:
            parts.append(SQL(" AND {} = ?").format(Ident(col)))
            params.append(value)
    return Composed(parts), params


def _facts_body(
    d: Dialect,
    uid: str,
    conds: Sequence[tuple[str, Any]],
    min_conf: float | None,
    limit: int | None,
) -> Body[list[Fact]]:
    where, params = _where(uid, conds)
    if min_conf is not None:
        where += SQL(" AND confidence >= ?")
        params.append(min_conf)
    sql = SQL(
        "SELECT {cols} FROM {knowledge_facts} WHERE {where} "
        "ORDER BY confidence DESC, updated_at DESC, subject, predicate, object"
    ).format(cols=_FACT_COLS, where=where)
    if limit is not None:
        sql += SQL(" LIMIT ?")
        params.append(limit)
    rows = yield Stmt(sql, params, fetch=True)
    return [_fact(d, r) for r in rows]


def _known_body(d: Dialect, uid: str, limit: int) -> Body[list[Knowledge]]:
    rows = yield Stmt(
        SQL(
            "SELECT {cols} FROM {knowledge} WHERE user_id = ? AND is_active "
            "ORDER BY confidence DESC, updated_at DESC, id LIMIT ?"
        ).format(cols=_K_COLS),
        [uid, limit],
        fetch=True,
    )
    return [_knowledge(d, r) for r in rows]


_INSERT_KNOWLEDGE = SQL(
    "INSERT INTO {knowledge} (user_id, id, kind, description, description_exact, content, "
    "confidence, supporting_episodes, contradicting_episodes, embedding) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {cols}"
).format(cols=_K_COLS)


@dataclass(frozen=True)
class _New:
    id: str
    kind: str
    description: str
    content: str
    confidence: float
    supporting: list[str]
    contradicting: list[str]


def _insert_body(
    d: Dialect, uid: str, items: Sequence[_New], vectors: Sequence[Any]
) -> Body[list[Knowledge]]:
    out = []
    for item, vec in zip(items, vectors, strict=True):
        clean, exact = _description(item.description)
        row = yield One(
            _INSERT_KNOWLEDGE,
            [
                uid,
                encode_key(item.id),
                item.kind,
                clean,
                exact,
                item.content,
                item.confidence,
                dumps(item.supporting),
                dumps(item.contradicting),
                None if vec is None else d.vector_param(vec),
            ],
        )
        assert row is not None
        out.append(_knowledge(d, row))
    return out


def _union(a: Sequence[str], b: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*a, *b]))


@dataclass(frozen=True)
class _Update:
    id: str
    description: str
    content: str
    confidence: float
    supporting: list[str]
    contradicting: list[str]


def _update_body(
    d: Dialect, uid: str, items: Sequence[_Update], vectors: Sequence[Any]
) -> Body[list[Knowledge]]:
    """Merge each update into its row (locked first, rows in key order): episodes are
    united, description, content and confidence replaced, ``last_validated`` stamped."""
    out = []
    pairs = sorted(zip(items, vectors, strict=True), key=lambda p: encode_key(p[0].id))
    for item, vec in pairs:
        key = encode_key(item.id)
        row = yield One(
            "SELECT supporting_episodes, contradicting_episodes FROM {knowledge} "
            "WHERE user_id = ? AND id = ? {for_update}",
            [uid, key],
        )
        if row is None:
            continue  # deleted meanwhile
        clean, exact = _description(item.description)
        supporting = _union(loads(row[0]), item.supporting)
        contradicting = _union(loads(row[1]), item.contradicting)
        emb = SQL("" if vec is None else ", embedding = ?")
        params: list[Any] = [clean, exact, item.content, item.confidence, dumps(supporting)]
        params += [dumps(contradicting), *([] if vec is None else [d.vector_param(vec)]), uid, key]
        updated = yield One(
            SQL(
                "UPDATE {knowledge} SET description = ?, description_exact = ?, content = ?, "
                "confidence = ?, supporting_episodes = ?, contradicting_episodes = ?{emb}, "
                "last_validated = {now}, updated_at = {now} WHERE user_id = ? AND id = ? "
                "RETURNING {cols}"
            ).format(emb=emb, cols=_K_COLS),
            params,
        )
        if updated is not None:
            out.append(_knowledge(d, updated))
    return out


def _one(stmt: Stmt | One) -> Body[Any]:
    return (yield stmt)


# -- distillation -------------------------------------------------------------------------

DISTILL_SYSTEM_PROMPT = (
    "You distil reusable knowledge from an AI agent's past episodes (what it perceived, "
    "how it reasoned, what it did, the outcome, and the outcome's quality from 0 to 1). "
    "Propose knowledge items of these kinds: strategy (an approach that worked; it needs "
    f"at least {MIN_STRATEGY_EPISODES} supporting episodes), pattern (a recurring "
    "situation), constraint (something that must or must not be done), heuristic (a rule "
    "of thumb). For each item give: kind, description (one sentence, reusable, no episode "
    "specifics), content (steps or details as a string), confidence (0 to 1), "
    "supporting_episodes and contradicting_episodes (ids of the episodes given), and "
    "updates: the id of a known item this one refines (then it is updated), or null for a "
    "new item. Prefer updating a known item over proposing a near duplicate. "
    'Answer with JSON only: {"items": [{"kind": "...", "description": "...", '
    '"content": "...", "confidence": 0.0, "supporting_episodes": ["..."], '
    '"contradicting_episodes": ["..."], "updates": null}]}, or {"items": []}.'
)


class ProposedKnowledge(BaseModel):
    """One item of the model's answer to :meth:`KnowledgeBase.distill`."""

    kind: str = Field(description="strategy, pattern, constraint or heuristic")
    description: str = Field(description="one reusable sentence")
    content: str = Field(description="steps or details")
    confidence: float = Field(description="0 to 1")
    supporting_episodes: list[str] = Field(description="ids of supporting episodes")
    contradicting_episodes: list[str] = Field(description="ids of contradicting episodes")
    updates: str | None = Field(description="id of the known item this refines, or null")


class DistillAnswer(BaseModel):
    """The model's answer for one batch of episodes."""

    items: list[ProposedKnowledge]


_EPISODE_FIELDS = ("perception", "reasoning", "action", "outcome", "quality")


def _episode(ep: Any) -> dict[str, Any]:
    """An episode (a mapping or an object) as the dict the prompt shows."""

    def get(name: str) -> Any:
        if isinstance(ep, Mapping):
            return ep.get(name)
        return getattr(ep, name, None)

    ep_id = get("id")
    if not isinstance(ep_id, str) or not ep_id:
        raise TypeError(
            f"an episode needs an id (a non-empty str), got {ep_id!r:.80} in {ep!r:.120}"
        )
    quality = get("quality")
    if quality is not None:
        _confidence(quality, f"quality of episode {ep_id!r}")
    out: dict[str, Any] = {"id": ep_id}
    for name in _EPISODE_FIELDS:
        value = get(name)
        if value is not None:
            check_exact(value, f"{name} of episode {ep_id!r}")
            out[name] = value
    return out


def _distill_prompt(
    known: Sequence[Knowledge], episodes: Sequence[dict[str, Any]]
) -> list[BaseMessage]:
    lines = [
        f"- id={k.id!r} kind={k.kind} confidence={k.confidence:.2f} "
        f"supporting={len(k.supporting_episodes)}: {k.description}"
        for k in known
    ]
    eps = [json.dumps(e, ensure_ascii=False, sort_keys=True) for e in episodes]
    return [
        SystemMessage(DISTILL_SYSTEM_PROMPT),
        HumanMessage(
            "Known knowledge items:\n"
            + ("\n".join(lines) or "(none)")
            + "\n\nEpisodes (JSON, one a line):\n"
            + "\n".join(eps)
        ),
    ]


def _review(
    answer: DistillAnswer, batch_ids: set[str], known: dict[str, Knowledge]
) -> tuple[list[_New], list[_Update], list[tuple[dict[str, Any], str]]]:
    """Check the model's proposals: valid kinds and confidences, episode ids of the batch
    (others are dropped), strategies with enough support; the rest is rejected."""
    new: list[_New] = []
    updates: list[_Update] = []
    rejected: list[tuple[dict[str, Any], str]] = []
    for item in answer.items:
        raw = item.model_dump()
        try:
            supporting = [e for e in dict.fromkeys(item.supporting_episodes) if e in batch_ids]
            contradicting = [
                e for e in dict.fromkeys(item.contradicting_episodes) if e in batch_ids
            ]
            confidence = _confidence(item.confidence)
            _text(item.description, "description")
            content = dumps(item.content)
            if item.updates is not None:
                target = known.get(item.updates)
                if target is None:
                    raise ValueError(f"updates {item.updates!r}, which is not a known item")
                _check_support(target.kind, _union(target.supporting_episodes, supporting))
                updates.append(
                    _Update(
                        item.updates,
                        item.description,
                        content,
                        confidence,
                        supporting,
                        contradicting,
                    )
                )
                continue
            kind = _kind(item.kind)
            _check_support(kind, supporting)
            new.append(
                _New(
                    uuid.uuid4().hex,
                    kind,
                    item.description,
                    content,
                    confidence,
                    supporting,
                    contradicting,
                )
            )
        except (TypeError, ValueError) as exc:
            rejected.append((raw, str(exc)))
    return new, updates, rejected


# -- the knowledge base -------------------------------------------------------------------


class KnowledgeBase:
    """Facts, rules and learned knowledge of one user.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        embeddings: embeds knowledge descriptions and situations (for
            :meth:`best_strategies`); ``None``: facts and rules only, knowledge without
            vectors.
        user_id: the tenant.
        single_valued: predicates a subject has one value of at a time (compared
            exactly, as stored); a new object on one contradicts the others.
        weights: default :class:`StrategyWeights` of :meth:`best_strategies`.

    Every method has an ``a``-prefixed async form. See the module docstring for an
    example.
    """

    def __init__(
        self,
        engine: EngineLike,
        embeddings: Embeddings | None = None,
        *,
        user_id: str,
        single_valued: Iterable[str] = (),
        weights: StrategyWeights | None = None,
    ) -> None:
        if embeddings is not None and not isinstance(embeddings, Embeddings):
            raise TypeError(
                f"embeddings must be a LangChain Embeddings, got {type(embeddings).__name__}"
            )
        if isinstance(single_valued, str):
            raise TypeError(
                f"single_valued must be a list of predicates, got the str {single_valued!r}"
            )
        self.engine = as_engine(engine)
        self.embeddings = embeddings
        self.user_id = _text(user_id, "user_id", empty=True)
        self.single_valued = frozenset(_text(p, "a single-valued predicate") for p in single_valued)
        self.weights = _weights(weights)
        self._uid = encode_key(user_id)

    def __repr__(self) -> str:
        return f"KnowledgeBase(user_id={self.user_id!r})"

    def _for_user(self, user_id: str) -> KnowledgeBase:
        """The same knowledge base for another user (the middleware's per-run user)."""
        if user_id == self.user_id:
            return self
        return KnowledgeBase(
            self.engine,
            self.embeddings,
            user_id=user_id,
            single_valued=self.single_valued,
            weights=dict(
                zip(("similarity", "confidence", "success_rate"), self.weights, strict=True)
            ),  # type: ignore[arg-type]
        )

    @property
    def _d(self) -> Dialect:
        return self.engine.dialect

    # -- facts -------------------------------------------------------------------------
    @dual
    def assert_fact(
        self,
        subject: str,
        predicate: str,
        object: str,  # noqa: A002
        *,
        confidence: float = 0.7,
        source: str | None = None,
    ) -> Plan[Fact]:
        """Assert ``subject predicate object`` with ``confidence`` (0..1); the fact as
        stored. A fact already held gets ``1 - (1 - old) * (1 - confidence)`` and one
        more ``times_asserted``; on a single-valued predicate every other object of the
        subject is multiplied by ``1 - confidence`` and stamped ``contradicted_at``.
        Concurrent writers of one subject and predicate run one after the other."""
        spo = (
            encode_key(_text(subject, "subject")),
            encode_key(_text(predicate, "predicate")),
            encode_key(_text(object, "object")),
        )
        conf = _confidence(confidence)
        src = None if source is None else dumps(_text(source, "source", empty=True))
        single = predicate in self.single_valued
        return (yield Atomic(_assert_body(self._d, self._uid, spo, conf, src, single)))

    aassert_fact = assert_fact.async_

    @dual
    def facts(
        self,
        subject: str | None = None,
        predicate: str | None = None,
        object: str | None = None,  # noqa: A002
        *,
        min_confidence: float | None = None,
        limit: int | None = None,
    ) -> Plan[list[Fact]]:
        """The facts matching the given parts (all facts when none is given), most
        confident first (then most recently asserted)."""
        conds = [
            (
                "subject",
                None if subject is None else encode_key(_text(subject, "subject", empty=True)),
            ),
            (
                "predicate",
                None
                if predicate is None
                else encode_key(_text(predicate, "predicate", empty=True)),
            ),
            ("object", None if object is None else encode_key(_text(object, "object", empty=True))),
        ]
        floor = None if min_confidence is None else _confidence(min_confidence, "min_confidence")
        body = _facts_body(self._d, self._uid, conds, floor, _limit(limit))
        return (yield Atomic(body, readonly=True))

    afacts = facts.async_

    @dual
    def retract(
        self,
        subject: str,
        predicate: str,
        object: str | None = None,  # noqa: A002
    ) -> Plan[int]:
        """Delete the fact ``subject predicate object`` (every object of the predicate
        when ``object`` is ``None``); how many were deleted."""
        conds = [
            ("subject", encode_key(_text(subject, "subject", empty=True))),
            ("predicate", encode_key(_text(predicate, "predicate", empty=True))),
            ("object", None if object is None else encode_key(_text(object, "object", empty=True))),
        ]
        where, params = _where(self._uid, conds)
        stmt = Stmt(SQL("DELETE FROM {knowledge_facts} WHERE {where}").format(where=where), params)
        return int((yield Atomic(_one(stmt), single=True)))

    aretract = retract.async_

    # -- rules -------------------------------------------------------------------------
    @dual
    def add_rule(
        self,
        condition: dict[str, Any],
        action: Any,
        *,
        priority: int = 0,
        description: str | None = None,
        rule_id: str | None = None,
        is_active: bool = True,
    ) -> Plan[Rule]:
        """Add a rule (or replace the rule ``rule_id``): when a context matches
        ``condition`` (see :func:`matches`), ``action`` (any JSON) applies; higher
        ``priority`` first."""
        if not isinstance(condition, dict):
            raise TypeError(
                f"condition must be a dict (a JSON object pattern), got {condition!r:.80}"
            )
        check_pattern(condition)
        act = dumps_exact(action, "action")
        _int(priority, "priority")
        if not -(2**31) <= priority < 2**31:
            raise ValueError(f"priority must fit in 32 bits, got {priority}")
        if not isinstance(is_active, bool):
            raise TypeError(f"is_active must be True or False, got {is_active!r}")
        desc = None if description is None else dumps(_text(description, "description", empty=True))
        rid = encode_key(_text(rule_id, "rule_id") if rule_id is not None else uuid.uuid4().hex)
        row = yield Atomic(
            _one(
                One(
                    SQL(
                        "INSERT INTO {knowledge_rules} (user_id, id, condition, action, priority, "
                        "is_active, description) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, id) "
                        "DO UPDATE SET condition = excluded.condition, action = excluded.action, "
                        "priority = excluded.priority, is_active = excluded.is_active, "
                        "description = excluded.description, updated_at = {now} RETURNING {cols}"
                    ).format(cols=_RULE_COLS),
                    [self._uid, rid, dumps(condition), act, priority, is_active, desc],
                )
            ),
            single=True,
        )
        return _rule(self._d, row)

    aadd_rule = add_rule.async_

    def _rules(self, active_only: bool) -> Body[builtins.list[Rule]]:
        rows = yield Stmt(
            SQL(
                "SELECT {cols} FROM {knowledge_rules} WHERE user_id = ?{active} "
                "ORDER BY priority DESC, created_at, id"
            ).format(cols=_RULE_COLS, active=SQL(" AND is_active" if active_only else "")),
            [self._uid],
            fetch=True,
        )
        return [_rule(self._d, r) for r in rows]

    @dual
    def matching_rules(self, context: Any, *, limit: int | None = None) -> Plan[list[Rule]]:
        """The active rules whose condition matches ``context`` (any JSON, usually an
        object), highest priority first (then oldest first). Conditions are matched here,
        after one read of the user's active rules."""
        check_exact(context, "context")
        n = _limit(limit)
        rules = yield Atomic(self._rules(True), readonly=True)
        found = [r for r in rules if matches(r.condition, context)]
        return found if n is None else found[:n]

    amatching_rules = matching_rules.async_

    @dual
    def rules(self, *, active_only: bool = False) -> Plan[list[Rule]]:
        """Every rule of the user (only the active ones when ``active_only``), highest
        priority first."""
        return (yield Atomic(self._rules(active_only), readonly=True))

    arules = rules.async_

    @dual
    def set_rule_active(self, rule_id: str, active: bool) -> Plan[bool]:
        """Turn a rule on or off; whether it exists."""
        return (yield from self._set_active("knowledge_rules", rule_id, "rule_id", active))

    aset_rule_active = set_rule_active.async_

    @dual
    def delete_rule(self, rule_id: str) -> Plan[bool]:
        """Delete a rule; whether it existed."""
        return (yield from self._delete("knowledge_rules", rule_id, "rule_id"))

    adelete_rule = delete_rule.async_

    # The two tables of items that can be switched off or deleted by id; the statements are
    # fixed texts, the table chosen from them (never a name from the caller).
    _SET_ACTIVE: Final = {
        "knowledge_rules": "UPDATE {knowledge_rules} SET is_active = ?, updated_at = {now} "
        "WHERE user_id = ? AND id = ?",
        "knowledge": "UPDATE {knowledge} SET is_active = ?, updated_at = {now} "
        "WHERE user_id = ? AND id = ?",
    }
    _DELETE: Final = {
        "knowledge_rules": "DELETE FROM {knowledge_rules} WHERE user_id = ? AND id = ?",
        "knowledge": "DELETE FROM {knowledge} WHERE user_id = ? AND id = ?",
    }

    def _set_active(self, table: str, item_id: str, name: str, active: bool) -> Plan[bool]:
        if not isinstance(active, bool):
            raise TypeError(f"active must be True or False, got {active!r}")
        stmt = Stmt(self._SET_ACTIVE[table], [active, self._uid, encode_key(_text(item_id, name))])
        return bool((yield Atomic(_one(stmt), single=True)))

    def _delete(self, table: str, item_id: str, name: str) -> Plan[bool]:
        stmt = Stmt(self._DELETE[table], [self._uid, encode_key(_text(item_id, name))])
        return bool((yield Atomic(_one(stmt), single=True)))

    # -- knowledge ---------------------------------------------------------------------
    def _vectors(self, texts: Sequence[str]) -> Plan[builtins.list[Any]]:
        if self.embeddings is None or not texts:
            return [None] * len(texts)
        vectors = yield Embed(self.embeddings, list(texts))
        if len(vectors) != len(texts):
            raise ValueError(
                f"the embeddings returned {len(vectors)} vectors for {len(texts)} texts"
            )
        return [np.asarray(v, dtype=np.float32) for v in vectors]

    def _add_plan(
        self,
        kind: str,
        description: str,
        content: Any,
        confidence: float,
        supporting_episodes: Sequence[str],
        contradicting_episodes: Sequence[str],
        knowledge_id: str | None,
    ) -> Plan[Knowledge]:
        kid = uuid.uuid4().hex if knowledge_id is None else _text(knowledge_id, "knowledge_id")
        encode_key(kid)
        item = _New(
            kid,
            _kind(kind),
            _text(description, "description"),
            dumps_exact(content, "content"),
            _confidence(confidence),
            _episode_ids(supporting_episodes, "supporting_episodes"),
            _episode_ids(contradicting_episodes, "contradicting_episodes"),
        )
        _check_support(item.kind, item.supporting)
        vectors = yield from self._vectors([item.description])
        (written,) = yield Atomic(_insert_body(self._d, self._uid, [item], vectors))
        return written  # type: ignore[no-any-return]

    @dual
    def add_knowledge(
        self,
        kind: str,
        description: str,
        content: Any = None,
        *,
        confidence: float = 0.5,
        supporting_episodes: Sequence[str] = (),
        contradicting_episodes: Sequence[str] = (),
        knowledge_id: str | None = None,
    ) -> Plan[Knowledge]:
        """Add a strategy, pattern, constraint or heuristic (``kind``); ``content`` is any
        JSON. A strategy needs at least :data:`MIN_STRATEGY_EPISODES` distinct supporting
        episodes (``ValueError`` otherwise). The description is embedded (one call)."""
        return (
            yield from self._add_plan(
                kind,
                description,
                content,
                confidence,
                supporting_episodes,
                contradicting_episodes,
                knowledge_id,
            )
        )

    aadd_knowledge = add_knowledge.async_

    @dual
    def add_strategy(
        self,
        description: str,
        content: Any = None,
        *,
        supporting_episodes: Sequence[str],
        confidence: float = 0.5,
        contradicting_episodes: Sequence[str] = (),
        knowledge_id: str | None = None,
    ) -> Plan[Knowledge]:
        """:meth:`add_knowledge` of a ``strategy`` (at least 3 supporting episodes)."""
        return (
            yield from self._add_plan(
                "strategy",
                description,
                content,
                confidence,
                supporting_episodes,
                contradicting_episodes,
                knowledge_id,
            )
        )

    aadd_strategy = add_strategy.async_

    @dual
    def get_knowledge(self, knowledge_id: str) -> Plan[Knowledge | None]:
        """One knowledge item by id (``None`` when the user has none of that id)."""
        row = yield Atomic(
            _one(
                One(
                    SQL("SELECT {cols} FROM {knowledge} WHERE user_id = ? AND id = ?").format(
                        cols=_K_COLS
                    ),
                    [self._uid, encode_key(_text(knowledge_id, "knowledge_id"))],
                )
            ),
            readonly=True,
        )
        return None if row is None else _knowledge(self._d, row)

    aget_knowledge = get_knowledge.async_

    @dual
    def list_knowledge(
        self, kind: str | None = None, *, active_only: bool = True, limit: int | None = None
    ) -> Plan[list[Knowledge]]:
        """Knowledge items (of one ``kind``), most confident first."""
        sql = SQL("SELECT {cols} FROM {knowledge} WHERE user_id = ?").format(cols=_K_COLS)
        params: list[Any] = [self._uid]
        if kind is not None:
            sql += SQL(" AND kind = ?")
            params.append(_kind(kind))
        if active_only:
            sql += SQL(" AND is_active")
        sql += SQL(" ORDER BY confidence DESC, updated_at DESC, id")
        n = _limit(limit)
        if n is not None:
            sql += SQL(" LIMIT ?")
            params.append(n)
        rows = yield Atomic(_one(Stmt(sql, params, fetch=True)), readonly=True)
        return [_knowledge(self._d, r) for r in rows]

    alist_knowledge = list_knowledge.async_

    @dual
    def set_active(self, knowledge_id: str, active: bool) -> Plan[bool]:
        """Retire (``False``) or restore a knowledge item; whether it exists. Inactive
        items are not ranked by :meth:`best_strategies`."""
        return (yield from self._set_active("knowledge", knowledge_id, "knowledge_id", active))

    aset_active = set_active.async_

    @dual
    def delete_knowledge(self, knowledge_id: str) -> Plan[bool]:
        """Delete a knowledge item; whether it existed."""
        return (yield from self._delete("knowledge", knowledge_id, "knowledge_id"))

    adelete_knowledge = delete_knowledge.async_

    @dual
    def record_application(self, knowledge_id: str, success: bool | None) -> Plan[Knowledge]:
        """Count one application of a knowledge item: ``success`` ``True`` / ``False`` (or
        ``None``: applied, outcome unknown). One ``UPDATE ... SET n = n + 1`` statement,
        so concurrent callers never lose a count. Returns the item as updated;
        ``KeyError`` when the user has no item of that id."""
        if success is not None and not isinstance(success, bool):
            raise TypeError(f"success must be True, False or None, got {success!r}")
        key = encode_key(_text(knowledge_id, "knowledge_id"))
        s, f = (1 if success else 0), (1 if success is False else 0)
        row = yield Atomic(
            _one(
                One(
                    SQL(
                        "UPDATE {knowledge} SET times_applied = times_applied + 1, "
                        "success_count = success_count + ?, failure_count = failure_count + ?, "
                        "last_applied = {now}, updated_at = {now} WHERE user_id = ? AND id = ? "
                        "RETURNING {cols}"
                    ).format(cols=_K_COLS),
                    [s, f, self._uid, key],
                )
            ),
            single=True,
        )
        if row is None:
            raise KeyError(f"no knowledge item {knowledge_id!r} for user {self.user_id!r}")
        return _knowledge(self._d, row)

    arecord_application = record_application.async_

    # -- ranking -----------------------------------------------------------------------
    def _best_plan(
        self,
        situation: str,
        k: int,
        kinds: Sequence[str],
        min_confidence: float | None,
        candidates: int | None,
        weights: StrategyWeights | None,
    ) -> Plan[builtins.list[ScoredKnowledge]]:
        _text(situation, "situation", empty=True)
        _int(k, "k", minimum=1)
        if isinstance(kinds, str):
            kinds = [kinds]
        kind_list = sorted({_kind(x) for x in kinds})
        if not kind_list:
            raise ValueError("kinds must name at least one kind")
        floor = None if min_confidence is None else _confidence(min_confidence, "min_confidence")
        n = max(4 * k, 20) if candidates is None else _int(candidates, "candidates", minimum=k)
        w_sim, w_conf, w_rate = _weights(weights) if weights is not None else self.weights
        if self.embeddings is None:
            raise ValueError(
                "best_strategies needs embeddings: KnowledgeBase(engine, embeddings, user_id=...)"
            )
        q = np.asarray((yield Embed(self.embeddings, [situation], query=True)), dtype=np.float32)
        d = self._d
        index = VectorIndex(d, "knowledge", dims=len(q), distance="cosine")
        where = (
            "v.user_id = ? AND v.is_active AND v.embedding IS NOT NULL AND "
            + d.vector_dims_is("embedding", len(q))
            + " AND v.kind IN ("
            + ", ".join("?" for _ in kind_list)
            + ")"
            + (" AND v.confidence >= ?" if floor is not None else ""),
            [self._uid, *kind_list, *([floor] if floor is not None else [])],
        )
        query = SearchQuery(q, n, select=[f"v.{c}" for c in _KNOWLEDGE], where=where, order="v.id")
        rows = yield Atomic(index.search_small(query), readonly=True)
        if rows is None:  # only with an HNSW index, which this table has none of
            rows = yield Atomic(index.search_large(query))
        scored = []
        for r in rows:
            item = _knowledge(d, r[:-1])
            sim = 1.0 - float(r[-1]) if r[-1] is not None and math.isfinite(r[-1]) else 0.0
            rate = (item.success_count + 1) / (item.success_count + item.failure_count + 2)
            score = w_sim * sim + w_conf * item.confidence + w_rate * rate
            scored.append(ScoredKnowledge(item, score, sim))
        scored.sort(key=lambda x: (-x.score, x.knowledge.id))
        return scored[:k]

    @dual
    def best_strategies(
        self,
        situation: str,
        k: int = 3,
        *,
        kinds: Sequence[str] = ("strategy",),
        min_confidence: float | None = None,
        candidates: int | None = None,
        weights: StrategyWeights | None = None,
    ) -> Plan[list[ScoredKnowledge]]:
        """The ``k`` best active items of ``kinds`` for ``situation``, best first.

        The ``candidates`` nearest by embedding (default ``max(4 k, 20)``; the exact top,
        found through the vector index) are ranked by the score of
        :class:`StrategyWeights` (``weights``, default the knowledge base's). One
        embedding call and one read."""
        return (
            yield from self._best_plan(situation, k, kinds, min_confidence, candidates, weights)
        )

    abest_strategies = best_strategies.async_

    # -- distillation ------------------------------------------------------------------
    @dual
    def distill(
        self,
        episodes: Iterable[Any],
        model: BaseLanguageModel[Any] | Runnable[Any, Any],
        *,
        batch_size: int = 20,
        max_known: int = 20,
    ) -> Plan[Distilled]:
        """Propose or update knowledge from ``episodes`` (mappings or objects with ``id``,
        ``perception``, ``action``, ``outcome``, ``quality``; those without an outcome are
        left out) with ``model``: ONE model call per batch of ``batch_size`` episodes.

        Each call sees the batch and the user's ``max_known`` most confident active items;
        it returns new items and updates of known ones (their episodes are united, the
        rest replaced, ``last_validated`` stamped). Proposals are checked before anything
        is written: episode ids not in the batch are dropped, and an item of an unknown
        kind, a confidence outside 0..1, or a strategy short of supporting episodes is
        rejected (listed in :attr:`Distilled.rejected`). Each batch is written in one
        transaction, with one embedding call."""
        _int(batch_size, "batch_size", minimum=1)
        _int(max_known, "max_known", minimum=0)
        if isinstance(episodes, (str, Mapping)):
            raise TypeError(f"episodes must be a list of episodes, got {type(episodes).__name__}")
        eps = [_episode(e) for e in episodes]
        eps = [e for e in eps if e.get("outcome") is not None]
        extract = structured(model, DistillAnswer)
        created: list[Knowledge] = []
        updated: list[Knowledge] = []
        rejected: list[tuple[dict[str, Any], str]] = []
        calls = 0
        for start in range(0, len(eps), batch_size):
            batch = eps[start : start + batch_size]
            known: builtins.list[Knowledge] = []
            if max_known:
                known = yield Atomic(_known_body(self._d, self._uid, max_known), readonly=True)
            answer: DistillAnswer = yield Model(extract, _distill_prompt(known, batch))
            calls += 1
            new, changes, refused = _review(
                answer, {e["id"] for e in batch}, {k.id: k for k in known}
            )
            rejected += refused
            vectors = yield from self._vectors(
                [x.description for x in new] + [x.description for x in changes]
            )

            def write(
                new: list[_New] = new,
                changes: list[_Update] = changes,
                vectors: list[Any] = vectors,
            ) -> Body[tuple[builtins.list[Knowledge], builtins.list[Knowledge]]]:
                made = yield from _insert_body(self._d, self._uid, new, vectors[: len(new)])
                changed = yield from _update_body(self._d, self._uid, changes, vectors[len(new) :])
                return made, changed

            if new or changes:
                made, changed = yield Atomic(write())
                created += made
                updated += changed
        return Distilled(created, updated, rejected, calls)

    adistill = distill.async_


# -- tools ----------------------------------------------------------------------------------


def format_strategies(found: Sequence[ScoredKnowledge]) -> str:
    """Ranked knowledge as prompt text, one line each.

    Example:
        >>> format_strategies([])
        'No matching strategies are known yet.'
    """
    if not found:
        return "No matching strategies are known yet."
    lines = []
    for s in found:
        k = s.knowledge
        tally = f"{k.success_count}/{k.success_count + k.failure_count} successes"
        lines.append(
            f"- [{k.kind} {k.id}] {k.description} (confidence {k.confidence:.2f}, {tally})"
        )
    return "\n".join(lines)


def knowledge_tools(kb: KnowledgeBase, *, k: int = 3) -> list[BaseTool]:
    """LangChain tools over ``kb`` for an agent: ``best_strategies(situation)`` returns the
    ``k`` best strategies for a situation as text (sync and async).

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from langchain_agentmem import connect
        >>> engine = connect("sqlite://"); _ = engine.migrate()
        >>> kb = KnowledgeBase(engine, DeterministicFakeEmbedding(size=8), user_id="u")
        >>> (tool,) = knowledge_tools(kb)
        >>> tool.name, tool.invoke({"situation": "the build failed"})
        ('best_strategies', 'No matching strategies are known yet.')
    """
    _int(k, "k", minimum=1)

    def best_strategies(situation: str) -> Plan[str]:
        return format_strategies((yield from KnowledgeBase.best_strategies.fn(kb, situation, k)))

    return [
        plan_tool(
            kb,
            best_strategies,
            name="best_strategies",
            description=(
                "Strategies that worked before in situations like the given one, best first "
                "(with confidence and success counts). Input: a short description of the "
                "current situation."
            ),
            errors=(),
        )
    ]
