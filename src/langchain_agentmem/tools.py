"""Memory tools for agents: save, update, delete and search memories from a tool call,
scoped to the user (LangMem's ``create_manage_memory_tool`` / ``create_search_memory_tool``
are the model).

A *kind* is one memory the tools reach: ``"vector"`` (:class:`MemoryVectorStore`, free
text found by meaning), ``"entities"`` (:class:`EntityMemory`, a summary per person,
place, thing) and ``"graph"`` (:class:`GraphMemory`, facts as subject, relation, object).
Other memories add theirs with :func:`register_memory_kind` (a :class:`MemoryKind`).

The user is the run's (``context={"user_id": ...}``, else ``configurable["user_id"]``,
else the tool's ``user_id``; ``user_key=`` names another key): one agent serves many users
and a tool call never reaches another user's memories.

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> manage, search = memory_tools(engine, kinds=["vector"],
    ...                               embeddings=DeterministicFakeEmbedding(size=8))
    >>> saved = manage.invoke({"action": "create", "content": "likes green tea"})
    >>> search.invoke({"query": "tea"})[0]["content"]
    'likes green tea'
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from langchain_core.embeddings import Embeddings
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from ._core.users import DEFAULT_USER_KEY, check_user_key, user_from
from .engine import EngineLike, as_engine

__all__ = [
    "MEMORY_KINDS",
    "Call",
    "MemoryKind",
    "create_manage_memory_tool",
    "create_search_memory_tool",
    "memory_tools",
    "register_memory_kind",
]

Action = Literal["create", "update", "delete"]


@dataclass
class Call:
    """One call of a memory method: ``method`` (its async form is ``"a" + method``) with
    ``args`` / ``kwargs``, and how its result is shown to the model."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    show: Callable[[Any], Any] = lambda result: result


@dataclass
class MemoryKind:
    """What the tools need of one memory: how to build it for a user and what a manage or
    a search call does. Each callable returns a :class:`Call`, so that the tool's sync and
    async forms come from one definition (the memory's ``X`` / ``aX`` pair)."""

    name: str
    description: str
    manage_schema: type[BaseModel]
    search_schema: type[BaseModel]
    build: Callable[[Any, str, dict[str, Any]], Any]
    manage: Callable[[Any, BaseModel], Call]
    search: Callable[[Any, BaseModel, int], Call]


# -- vector ---------------------------------------------------------------------------------
class VectorManage(BaseModel):
    action: Action = Field(description="create a memory, update one by id, or delete one by id")
    content: Optional[str] = Field(None, description="the memory (create, update)")  # noqa: UP045
    id: Optional[str] = Field(None, description="the memory's id (update, delete)")  # noqa: UP045


class TextSearch(BaseModel):
    query: str = Field(description="what to look for")


def _vector_build(engine: Any, user: str, options: dict[str, Any]) -> Any:
    from .vectorstore import MemoryVectorStore

    embeddings = options.get("embeddings")
    if not isinstance(embeddings, Embeddings):
        raise TypeError(
            f"the vector memory tools need embeddings= (LangChain Embeddings), got {type(embeddings).__name__}"
        )
    return MemoryVectorStore(
        engine, embeddings, collection=options.get("collection", "memories"), user_id=user
    )


def _need(value: Any, what: str, action: str) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{action} needs {what}")
    return value


def _vector_manage(store: Any, a: BaseModel) -> Call:
    args: VectorManage = a  # type: ignore[assignment]
    if args.action == "delete":
        mid = _need(args.id, "the id of the memory", "delete")
        return Call("delete", ([mid],), show=lambda _: {"deleted": mid})
    content = _need(args.content, "content", args.action)
    ids = [_need(args.id, "the id of the memory", "update")] if args.action == "update" else None
    return Call("add_texts", ([content],), {"ids": ids}, lambda out: {args.action + "d": out[0]})


def _vector_search(store: Any, a: BaseModel, limit: int) -> Call:
    args: TextSearch = a  # type: ignore[assignment]
    return Call(
        "similarity_search",
        (args.query,),
        {"k": limit},
        lambda docs: [{"id": d.id, "content": d.page_content} for d in docs],
    )


# -- entities -------------------------------------------------------------------------------
class EntityManage(BaseModel):
    action: Action = Field(description="create or update an entity's summary, or delete it")
    name: str = Field(description="the entity (person, place, organization, thing)")
    summary: Optional[str] = Field(None, description="everything known about it (create, update)")  # noqa: UP045
    type: Optional[str] = Field(None, description="person, place, ... (optional)")  # noqa: UP045


def _entity_build(engine: Any, user: str, options: dict[str, Any]) -> Any:
    from .entities import EntityMemory

    return EntityMemory(engine, user_id=user, entity_system=options.get("entity_system", "default"))


def _entity_manage(memory: Any, a: BaseModel) -> Call:
    args: EntityManage = a  # type: ignore[assignment]
    if args.action == "delete":
        return Call(
            "delete", (args.name,), show=lambda found: {"deleted": args.name, "found": found}
        )
    summary = _need(args.summary, "a summary", args.action)
    return Call(
        "set",
        (args.name, summary),
        {"type": args.type},
        lambda e: {args.action + "d": e.name, "summary": e.summary},
    )


def _entity_search(memory: Any, a: BaseModel, limit: int) -> Call:
    args: TextSearch = a  # type: ignore[assignment]
    return Call(
        "relevant",
        (args.query,),
        {"limit": limit},
        lambda found: [{"name": e.name, "type": e.type, "summary": e.summary} for e in found],
    )


# -- graph ----------------------------------------------------------------------------------
class GraphManage(BaseModel):
    action: Action = Field(
        description="create or update a fact (subject, relation, object; a new fact on a "
        "single-valued relation replaces the old one), or delete a node with its facts"
    )
    subject: str = Field(description="the subject, or the node to delete")
    relation: Optional[str] = Field(None, description="snake_case verb phrase: lives_in, likes")  # noqa: UP045
    object: Optional[str] = Field(None, description="the object")  # noqa: UP045


def _graph_build(engine: Any, user: str, options: dict[str, Any]) -> Any:
    from .graph import GraphMemory

    return GraphMemory(engine, user_id=user, graph=options.get("graph", "default"))


def _graph_manage(memory: Any, a: BaseModel) -> Call:
    args: GraphManage = a  # type: ignore[assignment]
    if args.action == "delete":
        return Call("delete_node", (args.subject,), show=lambda _: {"deleted": args.subject})
    relation = _need(args.relation, "a relation", args.action)
    obj = _need(args.object, "an object", args.action)
    return Call(
        "add_triple",
        (args.subject, relation, obj),
        show=lambda edges: {"saved": f"{args.subject} {relation} {obj}", "new": bool(edges)},
    )


def _graph_search(memory: Any, a: BaseModel, limit: int) -> Call:
    args: TextSearch = a  # type: ignore[assignment]
    return Call(
        "relevant_facts",
        (args.query,),
        {"limit": limit},
        lambda edges: [e.as_text() for e in edges],
    )


#: The kinds the tools know, by name; :func:`register_memory_kind` adds one (episodes,
#: knowledge, ...).
MEMORY_KINDS: dict[str, MemoryKind] = {
    "vector": MemoryKind(
        "vector",
        "free-text memories about the user, found by meaning",
        VectorManage,
        TextSearch,
        _vector_build,
        _vector_manage,
        _vector_search,
    ),
    "entities": MemoryKind(
        "entities",
        "a summary of each person, place or thing the user talks about",
        EntityManage,
        TextSearch,
        _entity_build,
        _entity_manage,
        _entity_search,
    ),
    "graph": MemoryKind(
        "graph",
        "facts about the user's world as subject, relation, object",
        GraphManage,
        TextSearch,
        _graph_build,
        _graph_manage,
        _graph_search,
    ),
}


def register_memory_kind(kind: MemoryKind) -> None:
    """Make ``kind`` reachable by name from the tool factories."""
    if not isinstance(kind, MemoryKind):
        raise TypeError(f"expected a MemoryKind, got {type(kind).__name__}")
    MEMORY_KINDS[kind.name] = kind


def _kind(name: str) -> MemoryKind:
    if name not in MEMORY_KINDS:
        raise ValueError(f"unknown memory kind {name!r}: expected one of {', '.join(MEMORY_KINDS)}")
    return MEMORY_KINDS[name]


def _tool(
    name: str,
    description: str,
    schema: type[BaseModel],
    prepare: Callable[[RunnableConfig, BaseModel], tuple[Any, Call]],
) -> BaseTool:
    """A tool whose sync and async forms run the same :class:`Call` (``X`` / ``aX``)."""

    def func(config: RunnableConfig, **kwargs: Any) -> Any:
        memory, call = prepare(config, schema(**kwargs))
        return call.show(getattr(memory, call.method)(*call.args, **call.kwargs))

    async def coroutine(config: RunnableConfig, **kwargs: Any) -> Any:
        memory, call = prepare(config, schema(**kwargs))
        return call.show(await getattr(memory, "a" + call.method)(*call.args, **call.kwargs))

    return StructuredTool.from_function(
        func=func, coroutine=coroutine, name=name, description=description, args_schema=schema
    )


def _user_of(config: RunnableConfig, key: str, default: str) -> str:
    return user_from(config=config, key=key, default=default)


def create_manage_memory_tool(
    engine: EngineLike,
    kind: str = "vector",
    *,
    user_id: str = "default",
    user_key: str = DEFAULT_USER_KEY,
    actions_permitted: Sequence[Action] = ("create", "update", "delete"),
    name: Optional[str] = None,  # noqa: UP045
    instructions: str = "",
    **options: Any,
) -> BaseTool:
    """A tool that creates, updates and deletes the user's memories of one ``kind``.

    Args:
        engine: an engine (or a URL, a psycopg connection or pool).
        kind: ``"vector"`` (needs ``embeddings=``; ``collection=``), ``"entities"``
            (``entity_system=``), ``"graph"`` (``graph=``), or a registered kind.
        user_id: the user when the run names none; ``user_key`` the key it names it by.
        actions_permitted: the actions the model may take (others are refused).
        name: the tool's name (default ``manage_<kind>_memory``).
        instructions: appended to the tool's description (when to save what).
        **options: for the memory (``embeddings``, ``collection``, ...).
    """
    memory_kind, eng = _kind(kind), as_engine(engine)
    check_user_key(user_key)
    allowed = tuple(actions_permitted)
    if not allowed or not set(allowed) <= {"create", "update", "delete"}:
        raise ValueError(
            f"actions_permitted must be some of create, update, delete, got {allowed!r}"
        )

    def prepare(config: RunnableConfig, args: BaseModel) -> tuple[Any, Call]:
        action = getattr(args, "action", None)
        if action not in allowed:
            raise ValueError(
                f"action {action!r} is not permitted: expected one of {', '.join(allowed)}"
            )
        memory = memory_kind.build(eng, _user_of(config, user_key, user_id), options)
        return memory, memory_kind.manage(memory, args)

    description = (
        f"Save, update or delete the user's memories: {memory_kind.description}. "
        f"Actions: {', '.join(allowed)}. {instructions}"
    ).strip()
    return _tool(name or f"manage_{kind}_memory", description, memory_kind.manage_schema, prepare)


def create_search_memory_tool(
    engine: EngineLike,
    kind: str = "vector",
    *,
    user_id: str = "default",
    user_key: str = DEFAULT_USER_KEY,
    limit: int = 5,
    name: Optional[str] = None,  # noqa: UP045
    instructions: str = "",
    **options: Any,
) -> BaseTool:
    """A tool that searches the user's memories of one ``kind`` (at most ``limit``
    results); arguments as :func:`create_manage_memory_tool`'s."""
    memory_kind, eng = _kind(kind), as_engine(engine)
    check_user_key(user_key)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive int, got {limit!r}")

    def prepare(config: RunnableConfig, args: BaseModel) -> tuple[Any, Call]:
        memory = memory_kind.build(eng, _user_of(config, user_key, user_id), options)
        return memory, memory_kind.search(memory, args, limit)

    description = f"Search the user's memories: {memory_kind.description}. {instructions}".strip()
    return _tool(name or f"search_{kind}_memory", description, memory_kind.search_schema, prepare)


def memory_tools(
    engine: EngineLike,
    *,
    kinds: Sequence[str] = ("vector", "entities", "graph"),
    user_id: str = "default",
    user_key: str = DEFAULT_USER_KEY,
    **options: Any,
) -> list[BaseTool]:
    """A manage and a search tool for each of ``kinds`` (on one engine), in that order."""
    eng = as_engine(engine)
    out: list[BaseTool] = []
    for kind in kinds:
        common = {"user_id": user_id, "user_key": user_key, **options}
        out.append(create_manage_memory_tool(eng, kind, **common))
        out.append(create_search_memory_tool(eng, kind, **common))
    return out
