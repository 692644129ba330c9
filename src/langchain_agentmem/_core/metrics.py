"""Operation metrics: what the plan driver records when the engine has ``metrics`` on.

With ``connect(url, metrics=True)`` every plan the driver runs for a tenant (every public
method of every memory class: they are all plans, see :mod:`~langchain_agentmem._core.plan`)
adds one row to ``agent_memory_metrics``: the operation (the method's name), the memory
type (its class), the latency in milliseconds, how many results it returned and, when it
failed, the error's type and message. The row is written after the operation, in a
transaction of its own (a failed operation's row too). Plans without a tenant (migrations,
maintenance across tenants) are not recorded. Off by default.

The one hook point is :func:`~langchain_agentmem._core.plan.run` /
:func:`~langchain_agentmem._core.plan.arun`; no memory class knows about metrics.

Example:
    >>> def plan():
    ...     yield from ()
    ...     return [1, 2]
    >>> operation_of(plan())
    ('plan', 'metrics')
    >>> results_count([1, 2]), results_count(None), results_count(True), results_count("ab")
    (2, 0, 1, 1)
"""

from __future__ import annotations

import uuid
from collections.abc import Sized
from typing import Any

from .._encoding.json import clean_text
from ..dialects.statements import Stmt

__all__ = ["MetricsError", "error_text", "operation_of", "record", "results_count"]

#: At most this many characters of an error message are kept.
MAX_ERROR = 500

_INSERT = (
    "INSERT INTO {agent_memory_metrics} (user_id, id, operation, memory_type, latency_ms, "
    "results_count, error) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class MetricsError(RuntimeError):
    """Recording an operation's metric failed after the operation itself completed (its
    writes are committed; do not retry it for this error)."""


def operation_of(plan: Any) -> tuple[str, str]:
    """``(operation, memory type)`` of a plan: its generator function's name and class
    (``KnowledgeBase.best_strategies`` -> ``("best_strategies", "KnowledgeBase")``), or the
    last part of its module's name for a plan function outside a class."""
    qualname = str(getattr(plan, "__qualname__", type(plan).__name__))
    parts = qualname.split(".")
    if len(parts) > 1 and "<locals>" not in parts[:2]:
        return parts[-1], parts[0]
    frame = getattr(plan, "gi_frame", None)
    module = frame.f_globals.get("__name__", "") if frame is not None else ""
    return parts[-1], str(module).rpartition(".")[2] or "unknown"


def results_count(value: Any) -> int:
    """How many results an operation returned: the length of a list, tuple, set or dict
    (a paged read's page: its items), 0 for ``None``, else 1."""
    if value is None:
        return 0
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (list, tuple)):
        return len(value[0])  # a page: (items, next page's plan)
    if isinstance(value, Sized) and not isinstance(value, (str, bytes, bytearray)):
        return len(value)
    return 1


def error_text(exc: BaseException) -> str:
    """``Type: message``, cut to :data:`MAX_ERROR` characters, storable as text."""
    return clean_text(f"{type(exc).__name__}: {exc}"[:MAX_ERROR])


def record(
    user_id: str,
    names: tuple[str, str],
    latency_ms: float,
    value: Any,
    error: BaseException | None,
) -> Stmt:
    """The statement that records one operation."""
    operation, memory_type = names
    return Stmt(
        _INSERT,
        [
            user_id,
            uuid.uuid4().hex,
            operation,
            memory_type,
            max(0.0, float(latency_ms)),
            None if error is not None else results_count(value),
            error_text(error) if error is not None else None,
        ],
    )
