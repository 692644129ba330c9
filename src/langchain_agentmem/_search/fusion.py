"""Rank fusion: several signals' scores over the same items, combined into one ranking.

Pure functions over ``{item: score}`` maps (no I/O), used by the recall pipeline
(:mod:`langchain_agentmem.recall`):

* :func:`normalized`: a signal's scores mapped to [0, 1] (min-max over its candidates,
  so a weight means the same whatever the signal's scale);
* :func:`combine`: the weighted sum of normalized signals (convex combination, CombSUM)
  or reciprocal rank fusion (:func:`rrf`, scale free);
* :func:`spread`: structure: an item gains a share of the scores of its neighbours (the
  turns before and after a hit in a conversation);
* :func:`group_boost`: an item gains a share of its group's best scores (the session);
* :func:`boost`: items of a set (e.g. spoken by a person the query names) gain a bonus.

Example:
    >>> dense = {"a": 0.9, "b": 0.5, "c": 0.1}
    >>> lexical = {"b": 7.0, "c": 1.0}
    >>> fused = combine([(normalized(dense), 1.0), (normalized(lexical), 1.0)])
    >>> sorted(fused, key=fused.get, reverse=True)
    ['b', 'a', 'c']
    >>> ranked = rrf([(["a", "b", "c"], 1.0), (["b", "c"], 1.0)])
    >>> max(ranked, key=ranked.get)
    'b'
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Container, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

__all__ = ["boost", "combine", "group_boost", "normalized", "ranked", "rrf", "spread"]

K = TypeVar("K", bound=Hashable)


def normalized(scores: Mapping[K, float]) -> dict[K, float]:
    """``scores`` mapped to [0, 1]: the best 1, the worst candidate 0 (all 1 when equal)."""
    if not scores:
        return {}
    hi, lo = max(scores.values()), min(scores.values())
    if hi - lo <= 1e-12:
        return dict.fromkeys(scores, 1.0)
    return {k: (v - lo) / (hi - lo) for k, v in scores.items()}


def combine(signals: Iterable[tuple[Mapping[K, float], float]]) -> dict[K, float]:
    """The weighted sum of ``signals`` (``(scores, weight)``); an item a signal lacks
    scores 0 in it."""
    out: dict[K, float] = defaultdict(float)
    for scores, weight in signals:
        if weight:
            for k, v in scores.items():
                out[k] += weight * v
    return dict(out)


def rrf(rankings: Iterable[tuple[Sequence[K], float]], k: int = 60) -> dict[K, float]:
    """Reciprocal rank fusion: ``sum(weight / (k + rank))`` over the rankings (best first,
    rank from 1) that hold the item."""
    out: dict[K, float] = defaultdict(float)
    for items, weight in rankings:
        for rank, item in enumerate(items, start=1):
            out[item] += weight / (k + rank)
    return dict(out)


def ranked(scores: Mapping[K, float], limit: int | None = None) -> list[K]:
    """Items best first (ties: by the item), the first ``limit`` only when given."""
    order: Callable[[K], Any] = lambda item: (-scores[item], item)  # noqa: E731
    if limit is not None and limit < len(scores):
        return heapq.nsmallest(limit, scores, key=order)
    return sorted(scores, key=order)


def spread(
    scores: Mapping[K, float],
    neighbours: Callable[[K], Iterable[K]],
    weight: float,
    exists: Container[K] | None = None,
) -> dict[K, float]:
    """Each item gains ``weight`` times the scores of its neighbours; a neighbour that was
    no candidate joins (when ``exists`` holds it, or always when ``exists`` is None)."""
    if not weight:
        return dict(scores)
    out = dict(scores)
    for item, score in scores.items():
        for other in neighbours(item):
            if other in scores or exists is None or other in exists:
                out[other] = out.get(other, 0.0) + weight * score
    return out


def group_boost(
    scores: Mapping[K, float], group: Callable[[K], Hashable], weight: float, top: int = 3
) -> dict[K, float]:
    """Each item gains ``weight`` times the mean of its group's ``top`` best scores (a
    session that holds several hits lifts all of its turns)."""
    if not weight:
        return dict(scores)
    groups = {item: group(item) for item in scores}
    members: dict[Hashable, list[float]] = defaultdict(list)
    for item, score in scores.items():
        members[groups[item]].append(score)
    means = {g: sum(sorted(v, reverse=True)[:top]) / top for g, v in members.items()}
    return {item: score + weight * means[groups[item]] for item, score in scores.items()}


def boost(scores: Mapping[K, float], chosen: Container[K], weight: float) -> dict[K, float]:
    """Items in ``chosen`` gain ``weight``."""
    if not weight:
        return dict(scores)
    return {k: v + (weight if k in chosen else 0.0) for k, v in scores.items()}
