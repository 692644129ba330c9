"""LangChain tools from plans: a tool's body written once, as a plan, runs sync and async.

A tool over a memory usually calls one :class:`~._core.plan.dual` method and formats what
it returns. Written as a plan (``yield from Class.method.fn(memory, ...)``), the same body
is the tool's ``func`` (driven by :func:`~._core.plan.run`) and its ``coroutine``
(:func:`~._core.plan.arun`), so no tool has a hand-copied async twin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.tools import StructuredTool, ToolException
from langchain_core.tools.base import create_schema_from_function

from .plan import Plan, arun, run

__all__ = ["plan_tool"]

#: What a tool reports to the model as ``Error: ...`` instead of raising: bad input.
INPUT_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError, LookupError)


def plan_tool(
    memory: Any,
    body: Callable[..., Plan[str]],
    *,
    name: str,
    description: str,
    errors: tuple[type[Exception], ...] = INPUT_ERRORS,
) -> StructuredTool:
    """A ``StructuredTool`` named ``name`` that runs ``body(**arguments)`` on
    ``memory.engine`` for ``memory._uid``, sync or async. The arguments and their schema
    are ``body``'s parameters; an exception of ``errors`` comes back to the model as
    ``"Error: <message>"`` (the tool does not raise).

    Example:
        >>> from langchain_agentmem import connect, KeyValueStore
        >>> kv = KeyValueStore(connect("sqlite://"), "notes", user_id="u")
        >>> _ = kv.engine.migrate()
        >>> def remember(key: str, value: str) -> Plan[str]:
        ...     yield from KeyValueStore.set.fn(kv, key, value)
        ...     return f"saved {key}"
        >>> tool = plan_tool(kv, remember, name="remember", description="Save a note.")
        >>> tool.invoke({"key": "k", "value": "v"}), kv.get("k")
        ('saved k', 'v')
    """

    def func(**arguments: Any) -> str:
        try:
            return run(memory.engine, memory._uid, body(**arguments))
        except errors as exc:
            raise ToolException(f"Error: {exc}") from exc

    async def coroutine(**arguments: Any) -> str:
        try:
            return await arun(memory.engine, memory._uid, body(**arguments))
        except errors as exc:
            raise ToolException(f"Error: {exc}") from exc

    return StructuredTool.from_function(
        func=func,
        coroutine=coroutine,
        name=name,
        description=description,
        args_schema=create_schema_from_function(name, body),
        handle_tool_error=True,
    )
