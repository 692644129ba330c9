"""LangGraph's entry points on this package's classes: ``from_conn_string`` (an object on
its own engine, entered with ``with`` or ``async with``) and ``setup`` / ``asetup``.

:class:`ConnStringEntry` gives them to a class whose constructor takes the engine first
(``CheckpointSaver``, ``LangGraphStore``).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from typing_extensions import Self

from .engine import Engine, conn_string_url, connect

__all__ = ["ConnStringEntry", "EngineCall", "Opening", "from_conn_string"]

T = TypeVar("T")


class Opening(Generic[T]):
    """What ``from_conn_string`` returns: opens an engine for ``conn_string`` and builds
    the object on it when entered (``with`` or ``async with``), and closes the engine
    (``close`` / ``aclose``) when the block exits."""

    def __init__(self, build: Callable[[Engine], T], conn_string: str) -> None:
        self._build = build
        self._url = conn_string_url(conn_string)
        self._engine: Engine | None = None

    def _open(self) -> T:
        if self._engine is not None:
            raise RuntimeError("from_conn_string(...) is entered once; call it again")
        self._engine = connect(self._url)
        try:
            return self._build(self._engine)
        except BaseException:
            self._engine.close()
            raise

    def __enter__(self) -> T:
        return self._open()

    def __exit__(self, *exc: object) -> None:
        assert self._engine is not None
        self._engine.close()

    async def __aenter__(self) -> T:
        return self._open()

    async def __aexit__(self, *exc: object) -> None:
        assert self._engine is not None
        await self._engine.aclose()


def from_conn_string(cls: type[T], conn_string: str, **kwargs: Any) -> Opening[T]:
    """An object of ``cls`` on its own engine, closed when the block exits; enter it
    with ``with`` or ``async with`` (LangGraph's ``from_conn_string`` on its sync and
    async savers and stores). The classes' ``from_conn_string`` and ``afrom_conn_string``.

    Args:
        conn_string: a database URL (``postgresql://``, ``postgresql+psycopg://``,
            ``sqlite:///file.db``), a bare file path (SQLite) or ``":memory:"``.
        **kwargs: the constructor's (``user_id``, ``serde``, ``index``, ...).

    Example:
        >>> from langchain_agentmem import CheckpointSaver
        >>> with CheckpointSaver.from_conn_string(":memory:") as saver:
        ...     saver.setup()
        ...     saver.get_tuple({"configurable": {"thread_id": "t"}}) is None
        True
    """
    return Opening(lambda engine: cls(engine, **kwargs), conn_string)  # type: ignore[call-arg]


class EngineCall:
    """A method that calls one of the engine's sync/async pairs (``X`` / ``aX``), for
    both its forms from one definition: ``setup = EngineCall("migrate", doc)`` and
    ``asetup = setup.async_``. ``check`` (called with the method's arguments) validates
    arguments the call takes for compatibility; ``of`` finds the engine (default
    ``obj.engine``)."""

    def __init__(
        self,
        name: str,
        doc: str,
        *,
        check: Callable[..., None] | None = None,
        of: Callable[[Any], Any] = lambda obj: obj.engine,
    ) -> None:
        def call(obj: Any, *args: Any, **kwargs: Any) -> None:
            if check is not None:
                check(*args, **kwargs)
            getattr(of(obj), name)()

        async def acall(obj: Any, *args: Any, **kwargs: Any) -> None:
            if check is not None:
                check(*args, **kwargs)
            await getattr(of(obj), "a" + name)()

        call.__doc__, acall.__doc__ = doc, f"Async form of :meth:`{name}`."
        self.fn = call
        functools.update_wrapper(self, call)  # as dual: both forms wrap the one definition
        acall.__wrapped__ = call  # type: ignore[attr-defined]
        self.async_: Callable[..., Coroutine[Any, Any, None]] = acall

    def __get__(self, obj: Any, objtype: type | None = None) -> Callable[..., None]:
        if obj is None:
            return self.fn  # type: ignore[return-value]
        return types.MethodType(self, obj)

    def __call__(self, obj: Any, *args: Any, **kwargs: Any) -> None:
        self.fn(obj, *args, **kwargs)


class ConnStringEntry:
    """Mixin: ``from_conn_string`` / ``afrom_conn_string`` and ``setup`` / ``asetup``."""

    @classmethod
    @functools.wraps(from_conn_string)
    def from_conn_string(cls, conn_string: str, **kwargs: Any) -> Opening[Self]:
        return from_conn_string(cls, conn_string, **kwargs)

    @classmethod
    def afrom_conn_string(cls, conn_string: str, **kwargs: Any) -> Opening[Self]:
        """The same as :meth:`from_conn_string`, named for ``async with`` (either form
        works with either)."""
        return from_conn_string(cls, conn_string, **kwargs)

    setup = EngineCall(
        "migrate", "Create or upgrade the schema (:meth:`Engine.migrate`); idempotent."
    )
    asetup = setup.async_
