"""The plan driver: a multi-step operation written once, run sync or async.

A *plan* is a generator that yields steps and receives their results. Steps are:

* :class:`Atomic`: a *body*, a generator of statements (:class:`Stmt`, :class:`One`,
  :class:`Many`, :class:`Copy`, :class:`Raw`) run in **one** tenant transaction; the body receives each
  statement's result as it goes (so it can decide the next statement from the rows of the
  last), and the plan receives what the body returns.
* :class:`Sql`: shorthand for an atomic body of a fixed list of statements; the plan
  receives one result per statement.
* :class:`Model`: one call of a LangChain runnable (a chat model, possibly with
  structured output); the plan receives its output.
* :class:`Embed`: one call of a LangChain ``Embeddings`` (documents or one query).

:func:`run` drives a plan with ``engine.transaction``, ``invoke`` and ``embed_*``;
:func:`arun` with ``engine.atransaction``, ``ainvoke`` and ``aembed_*``. A step that fails
is thrown into the plan (which may catch it, e.g. to retry); a cancelled coroutine ends
its transaction with a rollback. :func:`execute` / :func:`aexecute` drive a body inside a
transaction the caller already holds. :class:`dual` turns one plan method into both the
sync method and its ``a``-prefixed async form, so the two cannot drift.

A *paged read* (an iterator read a page at a time, as it is consumed) is a plan whose
value is ``(items, next page's plan or None)``: :func:`pages` drains it into a sync
iterator, :func:`apages` into an async one, and :class:`paged` is :class:`dual` for such
methods. The consumer's pace decides when the next page is read; a consumer that stops
early reads no further page.

Example:
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> def count(user_id):
    ...     row = yield One("SELECT count(*) FROM {events} WHERE user_id = ?", [user_id])
    ...     return row[0]
    >>> def plan():
    ...     n = yield Atomic(count("u"), readonly=True)
    ...     return n + 1
    >>> run(engine, "u", plan())
    1
    >>> class Counter:
    ...     def __init__(self, engine):
    ...         self.engine, self._uid = engine, "u"
    ...     @dual
    ...     def count(self):
    ...         "Events of the user."
    ...         return (yield Atomic(count(self._uid), readonly=True))
    ...     acount = count.async_
    >>> Counter(engine).count()
    0
    >>> import asyncio; asyncio.run(Counter(engine).acount())
    0
    >>> def numbers(start, stop):
    ...     yield Atomic(count("u"), readonly=True)
    ...     chunk = list(range(start, min(start + 2, stop)))
    ...     return chunk, (numbers(start + 2, stop) if start + 2 < stop else None)
    >>> list(pages(engine, "u", numbers(0, 5)))
    [0, 1, 2, 3, 4]
"""

from __future__ import annotations

import functools
import inspect
import time
import types
import typing
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from langchain_core.embeddings import Embeddings
from langchain_core.runnables import Runnable, RunnableConfig

from ..dialects.statements import Batch, Body, Copy, Many, One, Op, Raw, Stmt
from . import metrics

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager, AbstractContextManager

    from .._backends.base import AsyncTransaction, Transaction


class Engine(Protocol):
    """What the driver needs of :class:`~langchain_agentmem.Engine`: its transactions."""

    def transaction(
        self,
        user_id: str | None = ...,
        *,
        readonly: bool = ...,
        pipeline: bool = ...,
        single: bool = ...,
        durable: bool = ...,
        every_tenant: bool = ...,
    ) -> AbstractContextManager[Transaction]: ...

    def atransaction(
        self,
        user_id: str | None = ...,
        *,
        readonly: bool = ...,
        pipeline: bool = ...,
        single: bool = ...,
        durable: bool = ...,
        every_tenant: bool = ...,
    ) -> AbstractAsyncContextManager[AsyncTransaction]: ...


__all__ = [
    "Atomic",
    "Body",
    "Copy",
    "Embed",
    "Many",
    "Model",
    "One",
    "Page",
    "Plan",
    "Sql",
    "Stmt",
    "aexecute",
    "apages",
    "arun",
    "dual",
    "execute",
    "paged",
    "pages",
    "run",
    "statements",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
P = ParamSpec("P")


# -- steps of a plan -----------------------------------------------------------------

_DEFAULT: Any = object()


@dataclass(frozen=True)
class Atomic(Generic[T]):
    """Run ``body`` in one transaction of the plan's tenant (or of ``user_id``).

    ``readonly``: the body only reads; ``pipeline``: Postgres sends its statements in
    pipeline mode; ``single``: the body is one statement, atomic by itself (no
    BEGIN/COMMIT round trips on Postgres); ``durable=False``: the commit does not wait
    for the server's disk (for writes that a crash may lose, like a task's pending
    writes that LangGraph can compute again); ``every_tenant``: the body reads the rows of
    every tenant (maintenance such as listing the tenants to prune), which an engine with
    ``row_level_security`` refuses. See :meth:`~langchain_agentmem.Engine.transaction`.
    ``engine``: run it on this engine instead of the plan's (a plan moving rows between
    two databases, as hybrid mode's sync does).
    """

    body: Body[T]
    readonly: bool = False
    pipeline: bool = False
    single: bool = False
    durable: bool = True
    user_id: Any = _DEFAULT
    engine: Any = None
    every_tenant: bool = False


@dataclass(frozen=True)
class Sql:
    """Statements run in one transaction of the plan's tenant; one result each."""

    statements: list[Stmt]
    readonly: bool = False


@dataclass(frozen=True)
class Model:
    """One model call: ``runnable.invoke(input)`` (or ``ainvoke``)."""

    runnable: Runnable[Any, Any]
    input: Any
    config: RunnableConfig = field(default_factory=RunnableConfig)


@dataclass(frozen=True)
class Embed:
    """One embedding call: ``embed_documents(texts)``, or ``embed_query(texts[0])`` when
    ``query`` (async: ``aembed_*``)."""

    embeddings: Embeddings
    texts: Sequence[str]
    query: bool = False


Step = Atomic[Any] | Sql | Model | Embed
Plan = Generator[Step, Any, T]
#: What a page of a paged read returns: its items, and the plan of the next page (``None``
#: after the last).
Page = tuple[Sequence[T], "Plan[Page[T]] | None"]


def statements(ops: Iterable[Op]) -> Body[list[Any]]:
    """A body running ``ops`` in order; it returns one result per statement.

    Example:
        >>> body = statements([Stmt("SELECT 1", (), True)])
        >>> next(body)
        Stmt(sql='SELECT 1', params=(), fetch=True)
    """
    out = []
    for op in ops:
        out.append((yield op))
    return out


def _atomic(step: Atomic[Any] | Sql, user_id: str | None) -> tuple[Atomic[Any], str | None]:
    if isinstance(step, Sql):
        step = Atomic(statements(step.statements), readonly=step.readonly)
    return step, user_id if step.user_id is _DEFAULT else step.user_id


# -- drivers -------------------------------------------------------------------------


# The transactions' methods are annotated ``str``; they hand the SQL to
# ``Dialect.render``, which takes template text and compositions alike (``Template``).


def _op(tx: Transaction, op: Op) -> Any:
    if isinstance(op, Batch):
        return tx.batch([(s.sql, s.params, s.fetch) for s in op.statements])  # type: ignore[misc]
    sql: str = op.sql  # type: ignore[assignment]
    if isinstance(op, Stmt):
        return tx.fetchall(sql, op.params) if op.fetch else tx.execute(sql, op.params)
    if isinstance(op, One):
        return tx.fetchone(sql, op.params)
    if isinstance(op, Many):
        return tx.executemany(sql, op.rows)
    if isinstance(op, Copy):
        return tx.copy_rows(sql, op.types, op.rows)
    if isinstance(op, Raw):
        return tx.execute_raw(sql)
    raise TypeError(f"a transaction body yields Stmt, One, Many, Copy, Raw or Batch, not {op!r}")


async def _aop(tx: AsyncTransaction, op: Op) -> Any:
    if isinstance(op, Batch):
        return await tx.batch([(s.sql, s.params, s.fetch) for s in op.statements])  # type: ignore[misc]
    sql: str = op.sql  # type: ignore[assignment]
    if isinstance(op, Stmt):
        if op.fetch:
            return await tx.fetchall(sql, op.params)
        return await tx.execute(sql, op.params)
    if isinstance(op, One):
        return await tx.fetchone(sql, op.params)
    if isinstance(op, Many):
        return await tx.executemany(sql, op.rows)
    if isinstance(op, Copy):
        return await tx.copy_rows(sql, op.types, op.rows)
    if isinstance(op, Raw):
        return await tx.execute_raw(sql)
    raise TypeError(f"a transaction body yields Stmt, One, Many, Copy, Raw or Batch, not {op!r}")


def execute(tx: Transaction, body: Body[T]) -> T:
    """Drive ``body`` in the transaction ``tx``; return what it returns."""
    result: Any = None
    while True:
        try:
            op = body.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result = _op(tx, op)


async def aexecute(tx: AsyncTransaction, body: Body[T]) -> T:
    """Async form of :func:`execute`."""
    result: Any = None
    while True:
        try:
            op = body.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result = await _aop(tx, op)


def _next(plan: Plan[T], result: Any, error: BaseException | None) -> Step:
    return plan.throw(error) if error is not None else plan.send(result)


def _measured(engine: Engine, user_id: str | None) -> bool:
    return user_id is not None and bool(getattr(engine, "metrics", False))


def run(engine: Engine, user_id: str | None, plan: Plan[T]) -> T:
    """Drive ``plan`` synchronously; return its value. With the engine's ``metrics`` on,
    a plan of a tenant is recorded (see :mod:`~langchain_agentmem._core.metrics`)."""
    if not _measured(engine, user_id):
        return _run(engine, user_id, plan)
    assert user_id is not None
    names, start = metrics.operation_of(plan), time.perf_counter()
    try:
        value = _run(engine, user_id, plan)
    except Exception as exc:
        _record(engine, user_id, names, start, None, exc)
        raise
    _record(engine, user_id, names, start, value, None)
    return value


def _record(
    engine: Engine,
    user_id: str,
    names: tuple[str, str],
    start: float,
    value: Any,
    error: Exception | None,
) -> None:
    stmt = metrics.record(user_id, names, (time.perf_counter() - start) * 1000, value, error)
    try:
        with engine.transaction(user_id, single=True) as tx:
            tx.execute(stmt.sql, stmt.params)  # type: ignore[arg-type]
    except Exception as exc:
        _metric_failed(names, exc, error)


def _metric_failed(names: tuple[str, str], exc: Exception, error: Exception | None) -> None:
    if error is not None:  # the operation's own error is what the caller sees
        add_note = getattr(error, "add_note", None)  # Python 3.11+
        if add_note is not None:
            add_note(f"(recording its metric failed too: {metrics.error_text(exc)})")
        return
    raise metrics.MetricsError(
        f"{names[1]}.{names[0]} completed, but recording its metric in agent_memory_metrics "
        f"failed: {metrics.error_text(exc)}"
    ) from exc


def _run(engine: Engine, user_id: str | None, plan: Plan[T]) -> T:
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            step = _next(plan, result, error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result, error = None, None
        try:
            if isinstance(step, Model):
                result = step.runnable.invoke(step.input, step.config or None)
            elif isinstance(step, Embed):
                emb = step.embeddings
                result = (
                    emb.embed_query(step.texts[0])
                    if step.query
                    else emb.embed_documents(list(step.texts))
                )
            else:
                atomic, uid = _atomic(step, user_id)
                with (atomic.engine or engine).transaction(
                    uid,
                    readonly=atomic.readonly,
                    pipeline=atomic.pipeline,
                    single=atomic.single,
                    durable=atomic.durable,
                    every_tenant=atomic.every_tenant,
                ) as tx:
                    result = execute(tx, atomic.body)
        except Exception as exc:  # thrown into the plan, which may handle it
            error = exc


async def arun(engine: Engine, user_id: str | None, plan: Plan[T]) -> T:
    """Drive ``plan`` asynchronously; return its value (recorded like :func:`run`)."""
    if not _measured(engine, user_id):
        return await _arun(engine, user_id, plan)
    assert user_id is not None
    names, start = metrics.operation_of(plan), time.perf_counter()
    try:
        value = await _arun(engine, user_id, plan)
    except Exception as exc:
        await _arecord(engine, user_id, names, start, None, exc)
        raise
    await _arecord(engine, user_id, names, start, value, None)
    return value


async def _arecord(
    engine: Engine,
    user_id: str,
    names: tuple[str, str],
    start: float,
    value: Any,
    error: Exception | None,
) -> None:
    stmt = metrics.record(user_id, names, (time.perf_counter() - start) * 1000, value, error)
    try:
        async with engine.atransaction(user_id, single=True) as tx:
            await tx.execute(stmt.sql, stmt.params)  # type: ignore[arg-type]
    except Exception as exc:
        _metric_failed(names, exc, error)


async def _arun(engine: Engine, user_id: str | None, plan: Plan[T]) -> T:
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            step = _next(plan, result, error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result, error = None, None
        try:
            if isinstance(step, Model):
                result = await step.runnable.ainvoke(step.input, step.config or None)
            elif isinstance(step, Embed):
                emb = step.embeddings
                result = (
                    await emb.aembed_query(step.texts[0])
                    if step.query
                    else await emb.aembed_documents(list(step.texts))
                )
            else:
                atomic, uid = _atomic(step, user_id)
                async with (atomic.engine or engine).atransaction(
                    uid,
                    readonly=atomic.readonly,
                    pipeline=atomic.pipeline,
                    single=atomic.single,
                    durable=atomic.durable,
                    every_tenant=atomic.every_tenant,
                ) as tx:
                    result = await aexecute(tx, atomic.body)
        except Exception as exc:
            error = exc


# -- one definition, two methods -----------------------------------------------------


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    """The signature a plan method shows: returning what the plan returns (``Plan[X]``
    shows as ``X``); bound, ``types.MethodType`` drops ``self``."""
    sig = inspect.signature(fn)
    ret = sig.return_annotation
    if isinstance(ret, str) and ret.startswith("Plan[") and ret.endswith("]"):
        ret = ret[len("Plan[") : -1]
    elif typing.get_origin(ret) is Generator:
        ret = typing.get_args(ret)[2]
    return sig.replace(return_annotation=ret)


class dual(Generic[P, T]):  # noqa: N801 (used as a decorator)
    """Make a plan method the sync method of its name; ``.async_`` is its async form.

    The decorated method returns a :data:`Plan`; the object it is bound to has ``engine``
    and ``_uid`` (the tenant). Signature and docstring are the plan method's (the
    signature returning what the plan returns). Bound, either form is a plain bound
    method (``types.MethodType``): nothing is built per attribute access.
    """

    def __init__(self, fn: Callable[Concatenate[Any, P], Plan[T]]) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        self.__signature__ = _signature(fn)
        # An attribute, not a property: mypy applies the descriptor protocol to what a
        # property returns, which bound ``aX = X.async_`` twice (``self`` taken for the
        # first parameter).
        self.async_: _AsyncDual[P, T] = _AsyncDual(fn)

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> dual[P, T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> Callable[P, T]: ...
    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return types.MethodType(self, obj)

    def __call__(self, obj: Any, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run the plan for ``obj`` (also called on the class: ``Class.method(obj, ...)``)."""
        return run(obj.engine, getattr(obj, "_uid", None), self.fn(obj, *args, **kwargs))


class AsyncMethod(Protocol[P, T_co]):
    """The async form of a :class:`dual` method, as bound to its object. (A protocol, not
    a ``Callable``: type checkers then treat ``aX = X.async_`` as the method it is.)"""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, T_co]: ...


class AsyncPagedMethod(Protocol[P, T_co]):
    """The async form of a :class:`paged` method, as bound to its object."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T_co]: ...


class _AsyncDual(Generic[P, T]):
    def __init__(self, fn: Callable[Concatenate[Any, P], Plan[T]]) -> None:
        self.fn = fn

        @functools.wraps(fn)
        async def function(obj: Any, *args: P.args, **kwargs: P.kwargs) -> T:
            return await arun(obj.engine, getattr(obj, "_uid", None), fn(obj, *args, **kwargs))

        function.__doc__ = f"Async form of :meth:`{fn.__name__}`."
        function.__signature__ = _signature(fn)  # type: ignore[attr-defined]
        # What the class shows: a coroutine function taking ``self`` first, so that
        # ``inspect.iscoroutinefunction(Class.amethod)`` holds as for a hand-written one.
        self.function = function
        functools.update_wrapper(self, function)  # type: ignore[arg-type]

    def __set_name__(self, owner: type, name: str) -> None:
        self.__name__ = self.function.__name__ = name
        self.__qualname__ = self.function.__qualname__ = f"{owner.__qualname__}.{name}"

    def __get__(self, obj: Any, objtype: type | None = None) -> AsyncMethod[P, T]:
        if obj is None:
            return self.function  # type: ignore[return-value]
        return types.MethodType(self.function, obj)


# -- paged reads -----------------------------------------------------------------------


def pages(engine: Engine, user_id: str | None, plan: Plan[Page[T]] | None) -> Iterator[T]:
    """Drive a paged read synchronously: run each page's plan when the consumer reaches
    it, and yield its items."""
    while plan is not None:
        items, plan = run(engine, user_id, plan)
        yield from items


async def apages(
    engine: Engine, user_id: str | None, plan: Plan[Page[T]] | None
) -> AsyncIterator[T]:
    """Async form of :func:`pages`."""
    while plan is not None:
        items, plan = await arun(engine, user_id, plan)
        for item in items:
            yield item


class paged(Generic[P, T]):  # noqa: N801 (used as a decorator)
    """:class:`dual` for paged reads: the decorated method returns the first page's plan
    (see :data:`Page`); the sync method is an iterator over every item, ``.async_`` an
    async iterator."""

    def __init__(self, fn: Callable[Concatenate[Any, P], Plan[Page[T]]]) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __get__(self, obj: Any, objtype: type | None = None) -> Callable[P, Iterator[T]]:
        if obj is None:
            return self  # type: ignore[return-value]
        fn = self.fn

        @functools.wraps(fn)
        def method(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
            return pages(obj.engine, getattr(obj, "_uid", None), fn(obj, *args, **kwargs))

        return method

    @property
    def async_(self) -> _AsyncPaged[P, T]:
        return _AsyncPaged(self.fn)


class _AsyncPaged(Generic[P, T]):
    def __init__(self, fn: Callable[Concatenate[Any, P], Plan[Page[T]]]) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        self.__doc__ = f"Async form of :meth:`{fn.__name__}`."

    def __set_name__(self, owner: type, name: str) -> None:
        self.__name__ = name

    def __get__(self, obj: Any, objtype: type | None = None) -> AsyncPagedMethod[P, T]:
        if obj is None:
            return self  # type: ignore[return-value]
        fn = self.fn

        @functools.wraps(fn)
        def method(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
            return apages(obj.engine, getattr(obj, "_uid", None), fn(obj, *args, **kwargs))

        method.__name__ = self.__name__
        method.__doc__ = self.__doc__
        return method
