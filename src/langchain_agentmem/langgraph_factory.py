"""Factories for LangGraph's deployment config (``langgraph.json``): async context managers
that yield a migrated :class:`~langchain_agentmem.CheckpointSaver` or
:class:`~langchain_agentmem.LangGraphStore` and close its engine when the server stops.

``langgraph.json``::

    {
      "graphs": {"agent": "./agent.py:graph"},
      "checkpointer": {"path": "langchain_agentmem.langgraph_factory:checkpointer"},
      "store": {"path": "langchain_agentmem.langgraph_factory:store"}
    }

(if your server resolves only file paths, a file ``memory.py`` holding
``from langchain_agentmem.langgraph_factory import checkpointer, store`` and the paths
``./memory.py:checkpointer`` / ``./memory.py:store`` do the same.)

The database is ``AGENTMEM_URL`` (else the local SQLite file), the schema
``AGENTMEM_SCHEMA`` (default ``agent_mem``). For other options (the store's ``index``, the
saver's ``user_key``, a serializer) make your own factory in one line:
``store = store_factory(index={"dims": 1536, "embed": "openai:text-embedding-3-small"})``.

Example:
    >>> import asyncio
    >>> async def main():
    ...     async with checkpointer_factory(url="sqlite://")() as saver:
    ...         return await saver.aget_tuple({"configurable": {"thread_id": "t"}})
    >>> asyncio.run(main()) is None
    True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from .checkpoint import CheckpointSaver
from .engine import connect
from .store import LangGraphStore

__all__ = ["checkpointer", "checkpointer_factory", "store", "store_factory"]

T = TypeVar("T")


def _factory(
    cls: Callable[..., T], url: str | None, schema: str | None, kwargs: dict[str, Any]
) -> Callable[[], contextlib.AbstractAsyncContextManager[T]]:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[T]:
        engine = connect(url, schema=schema or os.environ.get("AGENTMEM_SCHEMA") or "agent_mem")
        try:
            await engine.amigrate()
            yield cls(engine, **kwargs)
        finally:
            await engine.aclose()

    return factory


def checkpointer_factory(
    *, url: str | None = None, schema: str | None = None, **kwargs: Any
) -> Callable[[], contextlib.AbstractAsyncContextManager[CheckpointSaver]]:
    """An async context manager factory yielding a migrated saver on ``url`` (default
    ``AGENTMEM_URL``); ``kwargs`` go to :class:`CheckpointSaver` (``user_id``,
    ``user_key``, ``serde``, ...)."""
    return _factory(CheckpointSaver, url, schema, kwargs)


def store_factory(
    *, url: str | None = None, schema: str | None = None, **kwargs: Any
) -> Callable[[], contextlib.AbstractAsyncContextManager[LangGraphStore]]:
    """An async context manager factory yielding a migrated store on ``url`` (default
    ``AGENTMEM_URL``); ``kwargs`` go to :class:`LangGraphStore` (``index``, ``ttl``, ...)."""
    return _factory(LangGraphStore, url, schema, kwargs)


#: ``langgraph.json`` ``"checkpointer": {"path": "langchain_agentmem.langgraph_factory:checkpointer"}``.
checkpointer = checkpointer_factory()
#: ``langgraph.json`` ``"store": {"path": "langchain_agentmem.langgraph_factory:store"}``.
store = store_factory()
