"""Every public method that does I/O has a sync and an async form with the same parameters."""

from __future__ import annotations

import inspect

import pytest

import langchain_agentmem
from langchain_agentmem import Engine, MemoryMiddleware
from langchain_agentmem._core.plan import _AsyncDual, _AsyncPaged, dual, paged

#: One definition made into a sync method and its async form (descriptors, not functions).
SYNC_DESCRIPTORS = (dual, paged)
ASYNC_DESCRIPTORS = (_AsyncDual, _AsyncPaged)

CLASSES = [
    getattr(langchain_agentmem, name)
    for name in langchain_agentmem.__all__
    if isinstance(getattr(langchain_agentmem, name), type)
] + [MemoryMiddleware]

#: Public methods that do no I/O (pure helpers), so an async form would add nothing.
PURE = {
    "as_text",
    "as_triple",
    "get_next_version",
    "with_allowlist",
    "stop_ttl_sweeper",
    "as_retriever",
    "score",
    "close",
    "transaction",
    "raw_backend",
    "for_user",
    "describe",
}

#: LangChain's own pairs whose sync form is a property.
LANGCHAIN_PAIRS = {"aget_messages": "messages"}

#: Pairs whose ``a``-prefixed name would be a Python keyword (``async``).
KEYWORD_PAIRS = {"async_sync": "sync"}


def _own_methods(cls: type) -> dict[str, object]:
    out = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        value = getattr(cls, name)
        module = getattr(value, "__module__", "") or ""
        # A dual plan method (and its async form) is a descriptor, not a function.
        is_dual = isinstance(value, SYNC_DESCRIPTORS + ASYNC_DESCRIPTORS)
        if (callable(value) or is_dual) and module.startswith("langchain_agentmem"):
            out[name] = value
    return out


def _params(fn: object) -> list[tuple[str, object, object]]:
    fn = getattr(fn, "fn", fn)  # a dual's plan method (self first, as a method's)
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_async_forms_match_sync_forms(cls: type) -> None:
    methods = _own_methods(cls)
    for name, fn in methods.items():
        is_async_dual = isinstance(fn, ASYNC_DESCRIPTORS)
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn) or is_async_dual:
            sync = KEYWORD_PAIRS.get(name, name[1:])
            if sync not in dir(cls) and name in LANGCHAIN_PAIRS:
                assert isinstance(inspect.getattr_static(cls, LANGCHAIN_PAIRS[name]), property)
                continue
            assert hasattr(cls, sync), f"{cls.__name__}.{name} has no sync form {sync}"
            assert _params(fn) == _params(getattr(cls, sync)), f"{cls.__name__}.{name}"
        elif (
            name not in PURE
            and not name.startswith("a")
            and name not in KEYWORD_PAIRS.values()
            and not isinstance(
                inspect.getattr_static(cls, name), (staticmethod, classmethod, property)
            )
        ):
            assert "a" + name in dir(cls), f"{cls.__name__}.{name} has no async form a{name}"


def test_engine_has_async_forms() -> None:
    for name in ("migrate", "schema_version", "close"):
        assert inspect.iscoroutinefunction(getattr(Engine, "a" + name))
        assert _params(getattr(Engine, "a" + name)) == _params(getattr(Engine, name))
