"""Entity memory: what the conversation says about people, places and things.

* :class:`EntityMemory` extracts the entities of a conversation turn and updates their
  summaries in ONE model call per turn, however many entities the turn mentions (the
  legacy ``ConversationEntityMemory`` makes one call to find them, then one per entity).
  The known entities the turn mentions are found first without a model (by name and
  alias), and their summaries go into that one call.
* An entity is stored once per ``(user_id, entity_system, key)`` where ``key`` is the
  normalized name (case-folded, spaces collapsed); every name and alias is recorded in
  ``entity_aliases``, so "Bob", "bob" and a known alias ("Bobby") land on one row.
* :meth:`EntityMemory.relevant` returns the known entities a text mentions (no model call).
* :class:`EntityStore` implements langchain-classic's ``BaseEntityStore`` (``get``,
  ``set``, ``delete``, ``exists``, ``clear``) on the same tables, so it drops into
  ``ConversationEntityMemory(entity_store=...)``.

Example:
    >>> from langchain_core.language_models.fake_chat_models import FakeListChatModel
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> llm = FakeListChatModel(responses=['{"entities": [{"name": "Bob", "type": "person", '
    ...     '"aliases": ["Bobby"], "summary": "Bob is Alice\\'s brother; he lives in Lyon."}]}'])
    >>> memory = EntityMemory(engine, llm, user_id="alice")
    >>> [e.name for e in memory.update("My brother Bob (we call him Bobby) lives in Lyon.")]
    ['Bob']
    >>> [e.summary for e in memory.relevant("what does bobby do?")]
    ["Bob is Alice's brother; he lives in Lyon."]
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, get_buffer_string
from langchain_core.runnables import Runnable
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ._core.llm import structured
from ._core.names import candidate_names, normalize
from ._core.plan import Atomic, Body, Model, Plan, Sql, Stmt, _AsyncDual, dual
from ._encoding.json import dumps, loads
from ._encoding.keys import decode_key, encode_key
from .dialects import SQL, Dialect, Template, Unnest
from .engine import EngineLike, as_engine

try:  # langchain-classic is optional: EntityStore subclasses its BaseEntityStore when present.
    from langchain_classic.memory.entity import BaseEntityStore as _EntityStoreBase
except ImportError:  # pragma: no cover - exercised only without langchain-classic
    _EntityStoreBase = BaseModel  # type: ignore[assignment,misc]

__all__ = ["Entity", "EntityMemory", "EntityStore", "format_entities"]

Query = tuple[Template, list[Any]]

ENTITY_SYSTEM_PROMPT = (
    "You keep notes about the entities (people, places, organizations, products, pets, "
    "events, ...) that come up in a conversation between a human (the user) and an AI. "
    "For every entity the conversation turn mentions, return: name (its canonical name), "
    "type (person, place, organization, ... or null), aliases (other names used for it: "
    "nicknames, short forms; may be empty), and summary: the UPDATED summary of what is "
    "known about it, i.e. its known summary (if any) plus the new facts of this turn, in a "
    "few sentences. Do not list the user or the AI themselves. "
    'Answer with JSON only: {"entities": [{"name": "...", "type": "...", "aliases": ["..."], '
    '"summary": "..."}]}, or {"entities": []} when the turn mentions none.'
)


class ExtractedEntity(BaseModel):
    """One entity as the model returns it."""

    name: str = Field(description="canonical name of the entity")
    type: str | None = Field(description="person, place, organization, ... or null")
    aliases: list[str] = Field(description="other names used for the entity")
    summary: str = Field(description="updated summary: what is known plus what this turn adds")


class EntityExtraction(BaseModel):
    """The model's answer for one turn."""

    entities: list[ExtractedEntity]


@dataclass(frozen=True)
class Entity:
    """One row of ``entities``."""

    name: str
    key: str
    """The normalized name the row is stored under."""
    type: str | None
    summary: str
    aliases: list[str] = field(default_factory=list)
    updated_at: datetime | None = None


def format_entities(entities: Iterable[Entity]) -> str:
    """Entities as prompt text, one line each.

    Example:
        >>> format_entities([Entity("Bob", "bob", "person", "Lives in Lyon.", ["Bobby"])])
        '- Bob (person; also: Bobby): Lives in Lyon.'
    """
    lines = []
    for e in entities:
        tags = [e.type] if e.type else []
        if e.aliases:
            tags.append("also: " + ", ".join(e.aliases))
        head = f"{e.name} ({'; '.join(tags)})" if tags else e.name
        lines.append(f"- {head}: {e.summary}")
    return "\n".join(lines)


# -- query builders (pure) ------------------------------------------------------------
# Templates are literals composed with dialects.compose; values always go as parameters.

_SELECT = SQL(
    "SELECT e.key, CAST(e.name AS text), e.type, CAST(e.summary AS text), CAST(e.aliases AS text), e.updated_at "
    "FROM {entities} e "
)
_UNNEST_ALIAS = Unnest([("alias", "text")])
_UNNEST_KEY = Unnest([("key", "text")])


def resolve_query(
    dialect: Dialect, user_id: str, space: str, names: Sequence[str], kind: str = "entity"
) -> Query:
    """``(alias, key)`` for each of ``names`` (normalized, encoded) that is known."""
    return (
        SQL(
            "SELECT alias, key FROM {entity_aliases} WHERE user_id = ? AND kind = ? AND space = ? "
            "AND alias IN (SELECT m.alias FROM {names})"
        ).format(names=_UNNEST_ALIAS),
        [
            user_id,
            kind,
            space,
            *dialect.unnest_params(_UNNEST_ALIAS.columns, [(n,) for n in names]),
        ],
    )


def get_query(dialect: Dialect, user_id: str, system: str, keys: Sequence[str]) -> Query:
    return (
        SQL(
            "{select}WHERE e.user_id = ? AND e.entity_system = ? AND e.key IN (SELECT m.key FROM {keys})"
        ).format(select=_SELECT, keys=_UNNEST_KEY),
        [user_id, system, *dialect.unnest_params(_UNNEST_KEY.columns, [(k,) for k in keys])],
    )


def mentioned_query(
    dialect: Dialect, user_id: str, system: str, names: Sequence[str], limit: int | None
) -> Query:
    """Entities any of whose names or aliases is in ``names``, most recently updated first."""
    query = SQL(
        "{select}WHERE e.user_id = ? AND e.entity_system = ? AND e.key IN (SELECT a.key FROM {entity_aliases} a "
        "WHERE a.user_id = ? AND a.kind = 'entity' AND a.space = ? AND a.alias IN (SELECT m.alias FROM "
        "{names})) ORDER BY e.updated_at DESC, e.key{limit}"
    ).format(select=_SELECT, names=_UNNEST_ALIAS, limit=SQL("" if limit is None else " LIMIT ?"))
    params: list[Any] = [user_id, system, user_id, system]
    params += dialect.unnest_params(_UNNEST_ALIAS.columns, [(n,) for n in names])
    if limit is not None:
        params.append(limit)
    return query, params


def list_query(user_id: str, system: str, limit: int | None) -> Query:
    query = SQL(
        "{select}WHERE e.user_id = ? AND e.entity_system = ? ORDER BY e.updated_at DESC, e.key"
    ).format(select=_SELECT)
    if limit is None:
        return query, [user_id, system]
    return query + SQL(" LIMIT ?"), [user_id, system, limit]


_ENTITY_COLS = [
    ("key", "text"),
    ("name", "json"),
    ("type", "text"),
    ("summary", "json"),
    ("aliases", "json"),
]
_ALIAS_COLS = [("alias", "text"), ("key", "text")]
_UPSERT = SQL(
    "INSERT INTO {entities} AS t (user_id, entity_system, key, name, type, summary, aliases) "
    "SELECT ?, ?, m.key, m.name, m.type, m.summary, m.aliases FROM {rows} "
    "WHERE true ON CONFLICT (user_id, entity_system, key) DO UPDATE SET type = coalesce(excluded.type, t.type), "
    "summary = excluded.summary, aliases = excluded.aliases, updated_at = {now}"
).format(rows=Unnest(_ENTITY_COLS))
_ALIASES = SQL(
    "INSERT INTO {entity_aliases} (user_id, kind, space, alias, key) SELECT ?, ?, ?, m.alias, m.key FROM "
    "{rows} WHERE true ON CONFLICT (user_id, kind, space, alias) DO NOTHING"
).format(rows=Unnest(_ALIAS_COLS))


def upsert_statements(
    dialect: Dialect, user_id: str, system: str, entities: Sequence[Entity], kind: str = "entity"
) -> list[Stmt]:
    """Insert or update ``entities`` (one statement) and record their names and aliases
    (one statement; an alias already taken by another entity keeps its entity). Rows go
    in key order, so concurrent writers lock them in one order.
    ``WHERE true``: SQLite needs it to parse ``INSERT ... SELECT ... ON CONFLICT``."""
    rows = sorted(
        (encode_key(e.key), dumps(e.name), e.type, dumps(e.summary), dumps(e.aliases))
        for e in entities
    )
    alias_rows = sorted(
        (encode_key(alias), encode_key(e.key))
        for e in entities
        for alias in {e.key, *(normalize(a) for a in [e.name, *e.aliases])}
    )
    return [
        Stmt(_UPSERT, [user_id, system, *dialect.unnest_params(_ENTITY_COLS, rows)]),
        Stmt(_ALIASES, [user_id, kind, system, *dialect.unnest_params(_ALIAS_COLS, alias_rows)]),
    ]


def delete_statements(user_id: str, system: str, key: str | None) -> list[Stmt]:
    """Delete one entity (``key``) or all of the entity system (``key=None``)."""
    if key is None:
        return [
            Stmt(
                "DELETE FROM {entity_aliases} WHERE user_id = ? AND kind = 'entity' AND space = ?",
                [user_id, system],
            ),
            Stmt(
                "DELETE FROM {entities} WHERE user_id = ? AND entity_system = ?", [user_id, system]
            ),
        ]
    return [
        Stmt(
            "DELETE FROM {entity_aliases} WHERE user_id = ? AND kind = 'entity' AND space = ? AND key = ?",
            [user_id, system, key],
        ),
        Stmt(
            "DELETE FROM {entities} WHERE user_id = ? AND entity_system = ? AND key = ?",
            [user_id, system, key],
        ),
    ]


def _entity(dialect: Dialect, row: tuple[Any, ...]) -> Entity:
    return Entity(
        key=decode_key(row[0]),
        name=loads(row[1]),
        type=row[2],
        summary=loads(row[3]),
        aliases=list(loads(row[4])),
        updated_at=dialect.to_datetime(row[5]),
    )


# -- bodies shared by the memory, the store and the agent middleware ----------------------
# A body is the statements of ONE transaction (see ``_core.plan``).


def _resolve_body(
    dialect: Dialect, uid: str, system: str, names: Sequence[str]
) -> Body[dict[str, str]]:
    """Normalized name -> key of the entity it names, for the known ones."""
    keys = sorted({normalize(n) for n in names})
    if not keys:
        return {}
    rows = yield Stmt(
        *resolve_query(dialect, uid, system, [encode_key(k) for k in keys]), fetch=True
    )
    return {decode_key(a): decode_key(k) for a, k in rows}


def named_query(user_id: str, system: str, alias: str) -> Query:
    """The entity a normalized name or alias refers to: one indexed join."""
    return _NAMED, [user_id, system, alias, user_id, system]


_NAMED = SQL(
    "{select}JOIN {entity_aliases} a ON a.user_id = e.user_id AND a.kind = 'entity' "
    "AND a.space = e.entity_system AND a.key = e.key "
    "WHERE a.user_id = ? AND a.space = ? AND a.alias = ? AND e.user_id = ? AND e.entity_system = ?"
).format(select=_SELECT)


def _get_body(dialect: Dialect, uid: str, system: str, name: str) -> Body[Entity | None]:
    query, params = named_query(uid, system, encode_key(normalize(name)))
    rows = yield Stmt(query, params, fetch=True)
    return _entity(dialect, rows[0]) if rows else None


def _merge(
    existing: Entity | None,
    key: str,
    name: str,
    type_: str | None,
    summary: str,
    aliases: Iterable[str],
) -> Entity:
    names = [] if existing is None else list(existing.aliases)
    display = existing.name if existing is not None else name
    seen = {normalize(display), *(normalize(a) for a in names)}
    for alias in [name, *aliases]:
        if alias and alias.strip() and normalize(alias) not in seen:
            seen.add(normalize(alias))
            names.append(alias.strip())
    return Entity(
        name=display,
        key=key,
        type=type_ or (existing.type if existing else None),
        summary=summary,
        aliases=names,
    )


Item = tuple[str, str | None, str, Sequence[str]]


def _set_body(dialect: Dialect, uid: str, system: str, items: Sequence[Item]) -> Body[list[Entity]]:
    """Upsert ``(name, type, summary, aliases)`` items, resolving names and aliases to
    known entities first; items naming one entity are merged. One transaction.

    Concurrent writers (:meth:`~langchain_agentmem.Dialect.lock_keys`; SQLite has one
    writer at a time and needs no lock): first every name and alias of the items is
    locked, so two writers that share a name run one after the other and the second
    resolves it to the entity the first wrote (one row, not two); then every entity key
    the items resolve to, so two writers of one entity under different names merge
    their aliases instead of overwriting each other's. Each set of locks is taken in one
    fixed order, names before keys, so writers never deadlock.
    """
    all_names = [n for name, _, _, aliases in items for n in [name, *aliases] if n and n.strip()]
    names_lock = dialect.lock_keys(
        [("entity name", uid, system, encode_key(normalize(n))) for n in all_names]
    )
    if names_lock is not None:
        yield names_lock
    resolved = yield from _resolve_body(dialect, uid, system, all_names)
    keys: list[str] = []
    for name, _, _, aliases in items:
        found = next(
            (
                resolved[normalize(n)]
                for n in [name, *aliases]
                if n and n.strip() and normalize(n) in resolved
            ),
            None,
        )
        keys.append(found or normalize(name))
    if not keys:
        return []
    keys_lock = dialect.lock_keys([("entity", uid, system, encode_key(k)) for k in keys])
    if keys_lock is not None:
        yield keys_lock
    rows = yield Stmt(
        *get_query(dialect, uid, system, [encode_key(k) for k in set(keys)]), fetch=True
    )
    existing = {e.key: e for e in (_entity(dialect, r) for r in rows)}
    merged: dict[str, Entity] = {}
    for key, (name, type_, summary, aliases) in zip(keys, items, strict=True):
        merged[key] = _merge(
            merged.get(key) or existing.get(key), key, name.strip(), type_, summary, aliases
        )
    for stmt in upsert_statements(dialect, uid, system, list(merged.values())):  # noqa: UP028
        yield stmt
    return list(merged.values())


def _relevant_body(
    dialect: Dialect, uid: str, system: str, text: str, limit: int | None
) -> Body[list[Entity]]:
    """The known entities ``text`` mentions by name or alias (no model call)."""
    if not isinstance(text, str):
        raise TypeError(f"expected text as str, got {type(text).__name__}")
    _check_limit(limit)
    names = candidate_names(text)
    if not names:
        return []
    query, params = mentioned_query(dialect, uid, system, [encode_key(n) for n in names], limit)
    rows = yield Stmt(query, params, fetch=True)
    return [_entity(dialect, r) for r in rows]


def _delete_body(dialect: Dialect, uid: str, system: str, name: str) -> Body[bool]:
    resolved = yield from _resolve_body(dialect, uid, system, [name])
    key = resolved.get(normalize(name))
    if key is None:
        return False
    results = []
    for stmt in delete_statements(uid, system, encode_key(key)):
        results.append((yield stmt))
    return bool(results[1])


def _text_of_turn(turn: str | Sequence[BaseMessage]) -> str:
    if isinstance(turn, str):
        return turn
    if isinstance(turn, Sequence) and all(isinstance(m, BaseMessage) for m in turn):
        return get_buffer_string([m for m in turn if isinstance(m, BaseMessage)])
    raise TypeError(
        f"expected a turn as str or a list of messages, got {type(turn).__name__}: {turn!r:.80}"
    )


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")


def _turn_prompt(system_prompt: str, known: Sequence[Entity], text: str) -> list[BaseMessage]:
    """The one model call of a turn: the instructions, the known entities the turn
    mentions, the turn."""
    return [
        SystemMessage(system_prompt),
        HumanMessage(
            "Known entities mentioned in this turn:\n"
            + (format_entities(known) or "(none)")
            + "\n\nConversation turn:\n"
            + text
        ),
    ]


def _items(entities: Iterable[ExtractedEntity]) -> list[Item]:
    return [(e.name, e.type, e.summary.strip(), e.aliases) for e in entities if e.name.strip()]


# -- EntityMemory -----------------------------------------------------------------------


class EntityMemory:
    """Entities of a user's conversations, their summaries updated by a model.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        llm: any LangChain chat model; models with ``with_structured_output`` answer in
            JSON schema mode, others are parsed from their JSON text.
        user_id: the tenant.
        entity_system: a namespace of entities (e.g. one per agent or application).
        max_known: how many known entities (mentioned in the turn) go into the prompt.

    Each method has an ``a``-prefixed async form. Writes resolve, read and write one
    entity in one transaction, safe with concurrent writers (see :meth:`set`).

    Example:
        >>> from langchain_core.language_models.fake_chat_models import FakeListChatModel
        >>> from langchain_agentmem import connect
        >>> engine = connect("sqlite://"); _ = engine.migrate()
        >>> memory = EntityMemory(engine, FakeListChatModel(responses=['{"entities": []}']))
        >>> memory.set("Paris", "Capital of France.", type="place")
        Entity(name='Paris', key='paris', type='place', summary='Capital of France.', aliases=[], updated_at=None)
        >>> memory.get("PARIS").summary
        'Capital of France.'
    """

    def __init__(
        self,
        engine: EngineLike,
        llm: BaseLanguageModel[Any] | Runnable[Any, Any] | None = None,
        *,
        user_id: str = "default",
        entity_system: str = "default",
        max_known: int = 20,
    ) -> None:
        engine = as_engine(engine)
        self.engine = engine
        self.llm = llm
        self.user_id = user_id
        self.entity_system = entity_system
        self.max_known = max_known
        self._uid = encode_key(user_id)
        self._system = encode_key(entity_system)
        self._extract: Runnable[Any, EntityExtraction] | None = (
            structured(llm, EntityExtraction) if llm is not None else None
        )

    @property
    def _dialect(self) -> Dialect:
        return self.engine.dialect

    # -- bodies (also used by EntityStore and the agent middleware) ----------------------
    def _relevant(self, text: str, limit: int | None) -> Body[builtins.list[Entity]]:
        return _relevant_body(self._dialect, self._uid, self._system, text, limit)

    def _get(self, name: str) -> Body[Entity | None]:
        return _get_body(self._dialect, self._uid, self._system, name)

    def _set(self, items: Sequence[Item]) -> Body[builtins.list[Entity]]:
        return _set_body(self._dialect, self._uid, self._system, items)

    def _delete(self, name: str) -> Body[bool]:
        return _delete_body(self._dialect, self._uid, self._system, name)

    # -- public API -----------------------------------------------------------------------
    @dual
    def update(self, turn: str | Sequence[BaseMessage]) -> Plan[list[Entity]]:
        """Extract the entities of one conversation turn (text, or its messages) and update
        their summaries: one model call. Returns the entities written."""
        return (yield from self._update(turn))

    aupdate = update.async_

    def _update(self, turn: str | Sequence[BaseMessage]) -> Plan[builtins.list[Entity]]:
        if self._extract is None:
            raise ValueError("EntityMemory.update needs an llm: EntityMemory(engine, llm, ...)")
        text = _text_of_turn(turn)
        known = yield Atomic(self._relevant(text, self.max_known), readonly=True)
        answer: EntityExtraction = yield Model(
            self._extract, _turn_prompt(ENTITY_SYSTEM_PROMPT, known, text)
        )
        items = _items(answer.entities)
        if not items:
            return []
        return (yield Atomic(self._set(items), pipeline=True))

    @dual
    def relevant(self, text: str, *, limit: int | None = 10) -> Plan[list[Entity]]:
        """Known entities that ``text`` mentions by name or alias (no model call), most
        recently updated first."""
        return (yield Atomic(self._relevant(text, limit), readonly=True))

    arelevant = relevant.async_

    @dual
    def get(self, name: str) -> Plan[Entity | None]:
        """The entity ``name`` (or an alias of it) refers to."""
        return (yield Atomic(self._get(name), readonly=True))

    aget = get.async_

    @dual
    def set(
        self, name: str, summary: str, *, type: str | None = None, aliases: Sequence[str] = ()
    ) -> Plan[Entity]:  # noqa: A002
        """Write an entity's summary by hand (merging with the entity a name or alias
        already refers to).

        Concurrent writes of one entity (this, :meth:`update`, :class:`EntityStore`) run
        one after the other: the entity stays one row and keeps every alias any of them
        wrote."""
        if not isinstance(summary, str):
            raise TypeError(f"expected summary as str, got {type_name(summary)}")
        if isinstance(aliases, str) or not all(isinstance(a, str) for a in aliases):
            raise TypeError(f"expected aliases as a list of str, got {aliases!r:.80}")
        normalize(name)
        (entity,) = yield Atomic(self._set([(name, type, summary, list(aliases))]), pipeline=True)
        return entity  # type: ignore[no-any-return]

    aset = set.async_

    @dual
    def list_entities(self, *, limit: int | None = None) -> Plan[builtins.list[Entity]]:
        """All entities of this user and entity system, most recently updated first."""
        _check_limit(limit)
        (rows,) = yield Sql(
            [Stmt(*list_query(self._uid, self._system, limit), fetch=True)], readonly=True
        )
        return [_entity(self._dialect, r) for r in rows]

    alist_entities = list_entities.async_

    @dual
    def delete(self, name: str) -> Plan[bool]:
        """Delete the entity ``name`` refers to (and its aliases); False if unknown."""
        return (yield Atomic(self._delete(name)))

    adelete = delete.async_

    @dual
    def clear(self) -> Plan[None]:
        """Delete every entity of this user and entity system."""
        yield Sql(delete_statements(self._uid, self._system, None))

    aclear = clear.async_

    def __repr__(self) -> str:
        return f"EntityMemory(user_id={self.user_id!r}, entity_system={self.entity_system!r})"


def type_name(value: Any) -> str:
    return f"{type(value).__name__}: {value!r:.80}"


# -- EntityStore --------------------------------------------------------------------------


class EntityStore(_EntityStoreBase):  # type: ignore[misc,valid-type]
    """langchain-classic's ``BaseEntityStore`` on the ``entities`` table: entity name ->
    summary. Names resolve like :class:`EntityMemory` (case, spacing, aliases), so the
    legacy ``ConversationEntityMemory`` and :class:`EntityMemory` share entities.

    ``set(key, None)`` or ``set(key, "")`` deletes the entity (as the Redis store does).

    Example:
        >>> from langchain_agentmem import connect
        >>> engine = connect("sqlite://"); _ = engine.migrate()
        >>> store = EntityStore(engine, user_id="alice")
        >>> store.set("Bob", "Alice's brother.")
        >>> store.get("bob"), store.exists("BOB"), store.get("Carol", "unknown")
        ("Alice's brother.", True, 'unknown')
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, ignored_types=(dual, _AsyncDual))

    engine: Any
    user_id: str = "default"
    entity_system: str = "default"
    _memory: EntityMemory = PrivateAttr()
    _uid: str = PrivateAttr()

    def __init__(
        self,
        engine: EngineLike,
        *,
        user_id: str = "default",
        entity_system: str = "default",
        **kwargs: Any,
    ) -> None:
        engine = as_engine(engine)
        super().__init__(engine=engine, user_id=user_id, entity_system=entity_system, **kwargs)  # type: ignore[call-arg]
        self._memory = EntityMemory(engine, None, user_id=user_id, entity_system=entity_system)
        self._uid = self._memory._uid

    @dual
    def get(self, key: str, default: str | None = None) -> Plan[str | None]:
        """The summary of entity ``key``, else ``default``."""
        entity = yield Atomic(self._memory._get(key), readonly=True)
        return entity.summary if entity is not None else default

    aget = get.async_

    @dual
    def set(self, key: str, value: str | None) -> Plan[None]:
        """Store ``value`` as the summary of entity ``key`` (None or "" deletes it)."""
        if not value:
            yield Atomic(self._memory._delete(key))
        else:
            if not isinstance(value, str):
                raise TypeError(f"expected summary as str, got {type_name(value)}")
            normalize(key)
            yield Atomic(self._memory._set([(key, None, value, [])]), pipeline=True)

    aset = set.async_

    @dual
    def delete(self, key: str) -> Plan[None]:
        """Delete entity ``key`` (nothing happens if it is unknown)."""
        yield Atomic(self._memory._delete(key))

    adelete = delete.async_

    @dual
    def exists(self, key: str) -> Plan[bool]:
        """Whether entity ``key`` (or an alias of it) is stored."""
        return (yield Atomic(self._memory._get(key), readonly=True)) is not None

    aexists = exists.async_

    @dual
    def clear(self) -> Plan[None]:
        """Delete every entity of this user and entity system."""
        yield Sql(delete_statements(self._memory._uid, self._memory._system, None))

    aclear = clear.async_
