"""The model-written memories have one definition per operation: every public ``aX`` is
the async form of ``X`` with the same parameters, a coroutine function when bound, and
both forms keep the signature and docstring of the plan they run."""

from __future__ import annotations

import inspect

import pytest

from langchain_agentmem import EntityMemory, EntityStore, GraphMemory, SummaryMemory, connect
from langchain_agentmem._core.plan import dual
from langchain_agentmem.middleware import MemoryMiddleware

#: Pairs written as ``run(...)`` / ``arun(...)`` of one shared plan.
DRIVERS = {
    ("SummaryMemory", "list_summaries"),
    ("MemoryMiddleware", "wrap_model_call"),
    ("MemoryMiddleware", "after_agent"),
    # Waits for the background writer's queue (a thread, not a plan).
    ("MemoryMiddleware", "flush"),
}

CLASSES = [GraphMemory, EntityMemory, EntityStore, SummaryMemory, MemoryMiddleware]


def instance(cls: type) -> object:
    engine = connect("sqlite://")
    if cls is SummaryMemory:
        from _fakes import ScriptedChatModel

        return SummaryMemory(engine, ScriptedChatModel(), "s")
    return cls(engine)


def shape(sig: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def pairs(cls: type) -> list[tuple[str, str]]:
    own = {n for c in cls.__mro__ if c.__module__.startswith("langchain_agentmem") for n in vars(c)}
    return [
        (name[1:], name)
        for name in sorted(own)
        if name.startswith("a") and not name.startswith("_") and name[1:] in own
    ]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_async_method_has_a_sync_twin_with_the_same_parameters(cls: type) -> None:
    obj = instance(cls)
    found = pairs(cls)
    assert found, cls
    for sync_name, async_name in found:
        sync, asyn = getattr(obj, sync_name), getattr(obj, async_name)
        if isinstance(inspect.getattr_static(cls, sync_name), property):
            continue  # ``messages`` / ``aget_messages`` are not such a pair
        assert inspect.iscoroutinefunction(asyn), async_name
        assert not inspect.iscoroutinefunction(sync), sync_name
        ps, pa = inspect.signature(sync), inspect.signature(asyn)
        assert shape(ps) == shape(pa), async_name
        if (cls.__name__, sync_name) not in DRIVERS:  # a hook's handler differs in type
            assert ps == pa, async_name
        assert "Plan[" not in str(ps.return_annotation), sync_name
        assert inspect.getdoc(sync) and inspect.getdoc(asyn), sync_name
        # One definition: both are the same plan (dual), or thin drivers of one plan
        # where a decorator cannot be used (static methods, LangChain's hooks).
        x, ax = inspect.getattr_static(cls, sync_name), inspect.getattr_static(cls, async_name)
        if (cls.__name__, sync_name) in DRIVERS:
            assert not isinstance(x, dual)
        else:
            assert isinstance(x, dual) and ax.fn is x.fn, async_name


def test_dual_methods_look_like_methods() -> None:
    kg = GraphMemory(connect("sqlite://"))
    sig = inspect.signature(GraphMemory.add_triple)
    assert list(sig.parameters)[:4] == ["self", "subject", "relation", "object"]
    assert str(sig.return_annotation) == "list[Edge]"
    assert list(inspect.signature(kg.add_triple).parameters)[0] == "subject"
    assert kg.aadd_triple.__name__ == "aadd_triple"
    assert kg.aadd_triple.__doc__ == "Async form of :meth:`add_triple`."
    assert GraphMemory.add_triple.__doc__ == kg.add_triple.__doc__
    kg.engine.migrate()
    assert GraphMemory.add_triple(kg, "a", "r", "b")[0].target == "b"  # called on the class
