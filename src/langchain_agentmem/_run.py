"""Multi-step memory operations written once, run sync or async.

A *plan* is a generator that yields steps and receives their results:

* :class:`Sql`: statements run in one tenant transaction; the plan receives one result
  per statement (the rows for ``fetch=True`` statements, else the row count).
* :class:`Model`: one call of a LangChain runnable (a chat model, possibly with
  structured output); the plan receives its output.

:func:`run` drives a plan with ``engine.transaction`` and ``invoke``;
:func:`arun` with ``engine.atransaction`` and ``ainvoke``. The logic (what to read, when
to call the model, what to write) lives only in the plan, so the two variants cannot drift.

Example:
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> def plan():
    ...     (rows,) = yield Sql([Stmt("SELECT count(*) FROM {events} WHERE user_id = ?", ["u"], fetch=True)], readonly=True)
    ...     return rows[0][0]
    >>> run(engine, "u", plan())
    0
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from langchain_core.runnables import Runnable, RunnableConfig

from .engine import Engine

__all__ = ["Model", "Plan", "Sql", "Stmt", "arun", "run"]

T = TypeVar("T")


class Stmt(NamedTuple):
    """One statement template (see :mod:`~.dialects`) and its parameters."""

    sql: str
    params: Sequence[Any]
    fetch: bool = False


@dataclass(frozen=True)
class Sql:
    """Statements run in one transaction of the plan's tenant."""

    statements: list[Stmt]
    readonly: bool = False


@dataclass(frozen=True)
class Model:
    """One model call: ``runnable.invoke(input)`` (or ``ainvoke``)."""

    runnable: Runnable[Any, Any]
    input: Any
    config: RunnableConfig = field(default_factory=RunnableConfig)


Step = Sql | Model
Plan = Generator[Step, Any, T]


def run(engine: Engine, user_id: str, plan: Plan[T]) -> T:
    """Drive ``plan`` synchronously; return its value."""
    result: Any = None
    while True:
        try:
            step = plan.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if isinstance(step, Model):
            result = step.runnable.invoke(step.input, step.config or None)
            continue
        out: list[Any] = []
        with engine.transaction(user_id, readonly=step.readonly) as tx:
            for stmt in step.statements:
                out.append(
                    tx.fetchall(stmt.sql, stmt.params)
                    if stmt.fetch
                    else tx.execute(stmt.sql, stmt.params)
                )
        result = out


async def arun(engine: Engine, user_id: str, plan: Plan[T]) -> T:
    """Drive ``plan`` asynchronously; return its value."""
    result: Any = None
    while True:
        try:
            step = plan.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if isinstance(step, Model):
            result = await step.runnable.ainvoke(step.input, step.config or None)
            continue
        out: list[Any] = []
        async with engine.atransaction(user_id, readonly=step.readonly) as tx:
            for stmt in step.statements:
                out.append(
                    await tx.fetchall(stmt.sql, stmt.params)
                    if stmt.fetch
                    else await tx.execute(stmt.sql, stmt.params)
                )
        result = out
