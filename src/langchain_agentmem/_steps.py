"""Multi-statement operations written once, run by a sync and an async driver.

An operation is a generator that yields ``(query, params, fetch)`` and receives the rows
of each statement (an empty list when ``fetch`` is false); it returns its result with
``return``. :func:`run` drives it inside a sync transaction, :func:`arun` inside an async
one, so the logic of prune, copy and delete lives in one place.

Example:
    >>> def count_then_double(user_id):
    ...     rows = yield ("SELECT count(*) FROM {events} WHERE user_id = ?", [user_id], True)
    ...     return rows[0][0] * 2
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> with engine.transaction("u", readonly=True) as tx:
    ...     run(tx, count_then_double("u"))
    0
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from .engine import AsyncTransaction, Transaction

__all__ = ["Steps", "run", "arun"]

Steps = Generator[tuple[str, list[Any], bool], list[tuple[Any, ...]], Any]


def run(tx: Transaction, steps: Steps) -> Any:
    """Execute every statement of ``steps`` in ``tx``; return what the generator returns."""
    try:
        query, params, fetch = next(steps)
        while True:
            if fetch:
                rows = tx.fetchall(query, params)
            else:
                tx.execute(query, params)
                rows = []
            query, params, fetch = steps.send(rows)
    except StopIteration as stop:
        return stop.value


async def arun(tx: AsyncTransaction, steps: Steps) -> Any:
    """Async form of :func:`run`."""
    try:
        query, params, fetch = next(steps)
        while True:
            if fetch:
                rows = await tx.fetchall(query, params)
            else:
                await tx.execute(query, params)
                rows = []
            query, params, fetch = steps.send(rows)
    except StopIteration as stop:
        return stop.value
