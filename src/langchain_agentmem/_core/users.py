"""Who the user is, one rule for every piece: the middleware, the memory tools and (with
``user_key``) the checkpointer.

The user is named ``user_id`` (or another key the piece is given as ``user_key``, such as
LangMem's ``langgraph_user_id``), looked up in this order: the run's context
(``context={"user_id": ...}`` or an object with that attribute), then the run's
``configurable``, then the piece's own ``user_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULT_USER_KEY", "check_user_key", "user_from"]

DEFAULT_USER_KEY = "user_id"


def check_user_key(user_key: Any, *, optional: bool = False) -> None:
    if user_key is None and optional:
        return
    if not isinstance(user_key, str) or not user_key:
        allowed = "a non-empty str or None" if optional else "a non-empty str"
        raise TypeError(f"user_key must be {allowed}, got {user_key!r}")


def _named(source: Any, key: str) -> str | None:
    value = source.get(key) if isinstance(source, Mapping) else getattr(source, key, None)
    return value if isinstance(value, str) else None


def user_from(
    *,
    context: Any = None,
    config: Mapping[str, Any] | None = None,
    key: str = DEFAULT_USER_KEY,
    default: str,
) -> str:
    """The user a run names: ``context[key]`` (or ``context.key``; the current run's
    context when ``context`` is None and one is running), else
    ``config["configurable"][key]`` (the current run's config when ``config`` is None
    and one is running), else ``default``.

    Example:
        >>> user_from(context={"user_id": "ann"}, default="default")
        'ann'
        >>> user_from(config={"configurable": {"langgraph_user_id": "bo"}},
        ...           key="langgraph_user_id", default="default")
        'bo'
        >>> user_from(default="default")
        'default'
    """
    if context is None:
        try:
            from langgraph.runtime import get_runtime

            context = getattr(get_runtime(), "context", None)
        except (RuntimeError, ImportError):  # not inside a run
            context = None
    if context is not None and (found := _named(context, key)) is not None:
        return found
    if config is None:
        try:
            from langgraph.config import get_config

            config = get_config()
        except RuntimeError:  # not inside a run
            config = None
    configurable = (config or {}).get("configurable") or {}
    found = _named(configurable, key)
    return default if found is None else found
