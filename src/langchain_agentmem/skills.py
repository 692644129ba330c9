"""A registry of skills (tools with an MCP tool definition), bound to agents, turned into
LangChain tools.

A *skill* is a named, versioned tool: a description, a category, the names of skills it
depends on, and its ``spec``, an `MCP tool definition
<https://modelcontextprotocol.io/specification/2025-06-18/server/tools>`_: ``name``,
``description`` and ``inputSchema`` (a JSON Schema of ``"type": "object"``, checked against
its metaschema with the ``jsonschema`` package). A version is immutable once registered:
registering it again with the same content does nothing, with other content raises; a new
version is a new row, and :meth:`SkillRegistry.get` returns the latest (the last
registered). A *binding* lets one agent use one skill (unique per agent and skill), with
a priority (higher first), an enabled flag and a JSON config.

:meth:`SkillRegistry.tools_for` builds ``StructuredTool`` objects from an agent's bound,
active skills in priority order, for ``create_agent(model, tools=...)``; each needs an
implementation (a function, or a coroutine function, taking the spec's arguments). A
bound skill with no implementation raises :class:`MissingImplementationError` naming it
(``missing="warn"``: a warning names it and the other tools are returned): never dropped
silently.

Tables ``skills`` and ``agent_skill_bindings`` (``sql/*/0012_skills_events.sql``); names,
versions, categories and agent names are plain text (no NUL, no lone surrogate: a clear
error), specs and configs are exact JSON.

Example:
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> reg = SkillRegistry(engine, user_id="acme")
    >>> spec = {"name": "add", "description": "Add two numbers.", "inputSchema": {
    ...     "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    ...     "required": ["a", "b"]}}
    >>> reg.register("add", description="Adds numbers", category="math", version="1.0", spec=spec).version
    '1.0'
    >>> reg.bind("calculator", "add", priority=5)
    >>> [b.skill_name for b in reg.skills_for("calculator")]
    ['add']
    >>> [tool] = reg.tools_for("calculator", {"add": lambda a, b: a + b})
    >>> tool.name, tool.invoke({"a": 2, "b": 3})
    ('add', 5)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.tools import StructuredTool

from ._core.plain import plain, plain_list
from ._core.plan import Atomic, Embed, Plan, dual
from ._encoding.json import dumps_exact, loads
from ._encoding.keys import encode_key
from ._search.vector_index import (
    SearchQuery,
    create_sized,
    describe,
    search_settings,
    sized_index,
    sized_index_name,
)
from .dialects import SQL, Body, Composed, Dialect, Ident, One, Stmt, Template
from .engine import EngineLike, as_engine

__all__ = [
    "Binding",
    "MissingImplementationError",
    "Skill",
    "SkillRegistry",
    "UnknownSkillError",
    "read_skills_file",
    "validate_spec",
]


class UnknownSkillError(LookupError):
    """A skill name that is not registered (for this tenant)."""


class MissingImplementationError(LookupError):
    """Bound skills that :meth:`SkillRegistry.tools_for` has no implementation for;
    ``missing`` names them in priority order."""

    def __init__(self, agent_name: str, missing: Sequence[str]) -> None:
        self.agent_name = agent_name
        self.missing = list(missing)
        super().__init__(
            f"no implementation for the skills {self.missing} bound to agent {agent_name!r}: "
            "pass them in `implementations` (skill name -> function), unbind them, or use "
            "missing='warn'"
        )


@dataclass(frozen=True)
class Skill:
    """One registered version of a skill."""

    name: str
    version: str
    description: str
    category: str | None
    spec: dict[str, Any]
    """The MCP tool definition (``name``, ``description``, ``inputSchema``, ...)."""
    dependencies: list[str]
    is_active: bool
    revision: int
    """Registration order among the versions of the name (the latest is the highest)."""
    created_at: datetime | None = None


@dataclass(frozen=True)
class Binding:
    """One agent's use of one skill (the skill's latest active version, ``None`` when it
    has none)."""

    agent_name: str
    skill_name: str
    enabled: bool
    priority: int
    config: dict[str, Any] = field(default_factory=dict)
    skill: Skill | None = None


# -- the spec --------------------------------------------------------------------------


def validate_spec(spec: Any) -> dict[str, Any]:
    """``spec`` if it is an MCP tool definition, else ``ValueError`` / ``TypeError`` saying
    what is wrong: a JSON object with a non-empty string ``name``, a string
    ``description`` and an ``inputSchema`` that is a valid JSON Schema (checked against its
    metaschema, draft 2020-12 unless ``$schema`` names another) of ``"type": "object"``.
    Needs the ``jsonschema`` package (extra ``skills``).

    Example:
        >>> validate_spec({"name": "x", "description": "", "inputSchema": {"type": "object"}})["name"]
        'x'
        >>> validate_spec({"name": "x", "description": "", "inputSchema": {"type": 5}})
        Traceback (most recent call last):
        ...
        ValueError: spec['inputSchema'] is not a valid JSON Schema: 5 is not valid under any of the given schemas (at type)
    """
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"spec must be an MCP tool definition (a dict with name, description, inputSchema), "
            f"got {type(spec).__name__}: {spec!r:.80}"
        )
    spec = dict(spec)
    dumps_exact(spec, "spec")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"spec['name'] must be a non-empty str, got {name!r:.80}")
    if not isinstance(spec.get("description", ""), str):
        raise ValueError(f"spec['description'] must be a str, got {spec['description']!r:.80}")
    if "inputSchema" not in spec:
        raise ValueError(
            "spec has no 'inputSchema': expected a JSON Schema of the tool's arguments"
        )
    schema = spec["inputSchema"]
    if not isinstance(schema, dict):
        raise ValueError(
            f"spec['inputSchema'] must be a JSON Schema object, got {type(schema).__name__}: {schema!r:.80}"
        )
    try:
        from jsonschema import exceptions, validators
    except ImportError as exc:  # pragma: no cover (a dependency of the extra)
        raise ImportError(
            "validating a skill spec needs the jsonschema package: "
            "pip install 'langchain-agentmem[skills]'"
        ) from exc
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top level"
        raise ValueError(
            f"spec['inputSchema'] is not a valid JSON Schema: {exc.message} (at {where})"
        ) from None
    if schema.get("type") != "object":
        raise ValueError(
            f'spec[\'inputSchema\'] must have "type": "object" (MCP tool arguments are an '
            f"object), got type {schema.get('type')!r}"
        )
    return spec


def read_skills_file(path: str | Path) -> dict[str, Any]:
    """The document of a skills file (``.json``: JSON, anything else: YAML): a mapping
    with ``skills`` (a list of :meth:`SkillRegistry.register` arguments, ``name`` among
    them) and ``bindings`` (a list of ``{agent, skill, priority, enabled, config}``)."""
    text = Path(path).read_text("utf-8")
    if str(path).endswith(".json"):
        import json

        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: expected a mapping with 'skills' and 'bindings', got {type(data).__name__}"
        )
    return data


# -- query builders (pure) ---------------------------------------------------------------

_SKILL_NAMES = (
    "name",
    "version",
    "description",
    "category",
    "spec",
    "dependencies",
    "is_active",
    "revision",
    "created_at",
)
_SKILL_COLUMNS = SQL(
    "name, version, description, category, spec, dependencies, is_active, revision, created_at"
)


def _skill_cols(alias: str) -> Composed:
    return SQL(", ").join(Ident(alias, c) for c in _SKILL_NAMES)


def _latest(alias: str, active_only: bool) -> Composed:
    """The condition: row ``alias`` is the latest (active) version of its name."""
    return SQL(
        "{a}.revision = (SELECT max(x.revision) FROM {skills} x WHERE "
        "x.user_id = {a}.user_id AND x.name = {a}.name{active})"
    ).format(a=Ident(alias), active=SQL(" AND x.is_active = ?" if active_only else ""))


def _skill(dialect: Dialect, row: Sequence[Any]) -> Skill:
    return Skill(
        name=row[0],
        version=row[1],
        description=row[2],
        category=row[3],
        spec=loads(row[4]),
        dependencies=loads(row[5]),
        is_active=bool(row[6]),
        revision=int(row[7]),
        created_at=dialect.to_datetime(row[8]),
    )


def _register(
    dialect: Dialect,
    uid: str,
    values: dict[str, Any],
    vector: Any,
) -> Body[tuple[Any, ...]]:
    lock = dialect.lock_keys([("skills", uid, values["name"])])
    if lock is not None:
        yield lock
    row = yield One(
        SQL("SELECT {cols} FROM {skills} WHERE user_id = ? AND name = ? AND version = ?").format(
            cols=_SKILL_COLUMNS
        ),
        [uid, values["name"], values["version"]],
    )
    if row is not None:
        same = (
            row[2] == values["description"]
            and row[3] == values["category"]
            and loads(row[4]) == loads(values["spec"])
            and loads(row[5]) == loads(values["dependencies"])
        )
        if not same:
            raise ValueError(
                f"skill {values['name']!r} version {values['version']!r} is registered already "
                "with other content: versions are immutable, register a new version"
            )
        return tuple(row)
    found = yield One(
        "SELECT coalesce(max(revision), 0) FROM {skills} WHERE user_id = ? AND name = ?",
        [uid, values["name"]],
    )
    revision = int(found[0]) + 1
    inserted = yield One(
        SQL(
            "INSERT INTO {skills} (user_id, name, version, revision, description, category, spec, "
            "dependencies, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {cols}"
        ).format(cols=_SKILL_COLUMNS),
        [
            uid,
            values["name"],
            values["version"],
            revision,
            values["description"],
            values["category"],
            values["spec"],
            values["dependencies"],
            None if vector is None else dialect.vector_param(vector),
        ],
    )
    return tuple(inserted)


def _bind(dialect: Dialect, uid: str, agent: str, skill: str, row: list[Any]) -> Body[None]:
    found = yield One("SELECT 1 FROM {skills} WHERE user_id = ? AND name = ? LIMIT 1", [uid, skill])
    if found is None:
        raise UnknownSkillError(
            f"cannot bind agent {agent!r} to {skill!r}: no skill of that name is registered "
            "(register it first)"
        )
    yield Stmt(
        "INSERT INTO {agent_skill_bindings} (user_id, agent_name, skill_name, enabled, priority, "
        "config) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, agent_name, skill_name) DO UPDATE "
        "SET enabled = excluded.enabled, priority = excluded.priority, config = excluded.config, "
        "updated_at = {now}",
        [uid, agent, skill, *row],
    )


def _bindings_query(uid: str, agent: str | None, only_usable: bool) -> tuple[Composed, list[Any]]:
    """Bindings with the latest active version of their skill (``NULL`` columns when it
    has none); with ``only_usable``, enabled bindings of active skills only."""
    query = SQL(
        "SELECT b.agent_name, b.skill_name, b.enabled, b.priority, b.config, {cols} "
        "FROM {agent_skill_bindings} b {join} {skills} k ON k.user_id = b.user_id "
        "AND k.name = b.skill_name AND k.is_active = ? AND {latest} WHERE b.user_id = ?"
    ).format(
        cols=_skill_cols("k"),
        join=SQL("JOIN" if only_usable else "LEFT JOIN"),
        latest=_latest("k", True),
    )
    params: list[Any] = [True, True, uid]
    if agent is not None:
        query += SQL(" AND b.agent_name = ?")
        params.append(agent)
    if only_usable:
        query += SQL(" AND b.enabled = ?")
        params.append(True)
    return query + SQL(" ORDER BY b.agent_name, b.priority DESC, b.skill_name"), params


def _fetch(query: Template, params: Sequence[Any]) -> Body[list[Any]]:
    return list((yield Stmt(query, params, fetch=True)))


def _one(stmt: Stmt) -> Body[Any]:
    return (yield stmt)


def _priority(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"priority must be an int, got {type(value).__name__}: {value!r:.80}")
    if not -(2**31) <= value < 2**31:
        raise ValueError(f"priority must fit in 32 bits, got {value}")
    return value


# -- the registry ------------------------------------------------------------------------


class SkillRegistry:
    """Skills and agent bindings of one tenant.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        user_id: the tenant; another tenant sees none of these skills or bindings.
        embeddings: embeds each new version's description, for :meth:`search`.

    Every method has an ``a``-prefixed async form. See the module docstring.
    """

    def __init__(
        self, engine: EngineLike, *, user_id: str = "default", embeddings: Embeddings | None = None
    ) -> None:
        self.engine = as_engine(engine)
        self.user_id = user_id
        self._uid = encode_key(user_id)
        self._embeddings = embeddings
        self._ann: dict[int, tuple[tuple[int, ...], bool]] = {}

    def __repr__(self) -> str:
        return f"SkillRegistry(user_id={self.user_id!r})"

    # -- skills ----------------------------------------------------------------------------
    @dual
    def register(
        self,
        name: str,
        *,
        description: str,
        spec: Mapping[str, Any],
        category: str | None = None,
        version: str = "1.0.0",
        dependencies: Sequence[str] = (),
    ) -> Plan[Skill]:
        """Register a version of a skill; the stored :class:`Skill`.

        The same version again with the same content returns it unchanged; with other
        content raises ``ValueError`` (versions are immutable). ``spec`` must be an MCP
        tool definition (see :func:`validate_spec`)."""
        return (yield from self._register(name, description, spec, category, version, dependencies))

    aregister = register.async_

    def _register(
        self,
        name: str,
        description: str,
        spec: Mapping[str, Any],
        category: str | None = None,
        version: str = "1.0.0",
        dependencies: Sequence[str] = (),
    ) -> Plan[Skill]:
        values = {
            "name": plain(name, "skill name"),
            "version": plain(version, "version"),
            "description": plain(description, "description", max_bytes=100_000)
            if description
            else "",
            "category": plain(category, "category", optional=True),
            "spec": dumps_exact(validate_spec(spec), "spec"),
            "dependencies": dumps_exact(plain_list(dependencies, "dependencies")),
        }
        vector = None
        if self._embeddings is not None and values["description"]:
            vectors = yield Embed(self._embeddings, [values["description"]])
            vector = np.asarray(vectors[0], dtype=np.float32)
        row = yield Atomic(_register(self.engine.dialect, self._uid, values, vector))
        return _skill(self.engine.dialect, row)

    @dual
    def get(self, name: str, *, version: str | None = None) -> Plan[Skill | None]:
        """The latest version of skill ``name`` (active or not), or the given ``version``;
        ``None`` when not registered."""
        params: list[Any] = [self._uid, plain(name, "skill name")]
        query = SQL("SELECT {cols} FROM {skills} k WHERE k.user_id = ? AND k.name = ?").format(
            cols=_skill_cols("k")
        )
        if version is None:
            query += SQL(" ORDER BY k.revision DESC LIMIT 1")
        else:
            query += SQL(" AND k.version = ?")
            params.append(plain(version, "version"))
        rows = yield Atomic(_fetch(query, params), readonly=True)
        return _skill(self.engine.dialect, rows[0]) if rows else None

    aget = get.async_

    @dual
    def versions(self, name: str) -> Plan[list[Skill]]:
        """Every version of skill ``name``, oldest first."""
        query = SQL(
            "SELECT {cols} FROM {skills} k WHERE k.user_id = ? AND k.name = ? ORDER BY k.revision"
        ).format(cols=_skill_cols("k"))
        rows = yield Atomic(_fetch(query, [self._uid, plain(name, "skill name")]), readonly=True)
        return [_skill(self.engine.dialect, r) for r in rows]

    aversions = versions.async_

    @dual
    def list_skills(
        self, *, category: str | None = None, active_only: bool = False
    ) -> Plan[list[Skill]]:
        """The latest version of every skill (of ``category``), by name; with
        ``active_only``, the latest active version of skills that have one."""
        # The subquery's parameter comes first in the text.
        query = SQL("SELECT {cols} FROM {skills} k WHERE {latest} AND k.user_id = ?").format(
            cols=_skill_cols("k"), latest=_latest("k", active_only)
        )
        params: list[Any] = ([True] if active_only else []) + [self._uid]
        if active_only:
            query += SQL(" AND k.is_active = ?")
            params.append(True)
        if category is not None:
            query += SQL(" AND k.category = ?")
            params.append(plain(category, "category"))
        rows = yield Atomic(_fetch(query + SQL(" ORDER BY k.name"), params), readonly=True)
        return [_skill(self.engine.dialect, r) for r in rows]

    alist_skills = list_skills.async_

    @dual
    def deactivate(self, name: str, *, version: str | None = None) -> Plan[int]:
        """Deactivate every version of skill ``name`` (or one ``version``): agents no
        longer get it (an older active version still applies when only the latest is
        deactivated). Returns how many versions changed."""
        return (yield from self._set_active(name, version, False))

    adeactivate = deactivate.async_

    @dual
    def activate(self, name: str, *, version: str | None = None) -> Plan[int]:
        """Undo :meth:`deactivate`; how many versions changed."""
        return (yield from self._set_active(name, version, True))

    aactivate = activate.async_

    def _set_active(self, name: str, version: str | None, active: bool) -> Plan[int]:
        query = "UPDATE {skills} SET is_active = ?, updated_at = {now} WHERE user_id = ? AND name = ? AND is_active <> ?"
        params: list[Any] = [active, self._uid, plain(name, "skill name"), active]
        if version is not None:
            query += " AND version = ?"
            params.append(plain(version, "version"))
        n = yield Atomic(_one(Stmt(query, params)), single=True)
        return int(n)

    @dual
    def search(self, query: str, k: int = 4) -> Plan[list[tuple[Skill, float]]]:
        """The ``k`` active skills (latest active version) whose descriptions are nearest
        to ``query``, with their cosine similarity, best first. Needs ``embeddings``;
        versions registered without them are not searched."""
        if self._embeddings is None:
            raise ValueError("search needs embeddings: SkillRegistry(engine, embeddings=...)")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        vector = yield Embed(
            self._embeddings, [plain(query, "query", max_bytes=100_000)], query=True
        )
        q = np.asarray(vector, dtype=np.float32)
        dialect = self.engine.dialect
        dims = len(q)
        if dims not in self._ann:
            found = yield Atomic(describe(dialect, sized_index_name("skills", dims)), readonly=True)
            self._ann[dims] = found
        index = sized_index(dialect, "skills", dims, self._ann[dims])
        search = SearchQuery(
            q,
            k,
            select=[Ident("v", c) for c in _SKILL_NAMES],
            where=(
                SQL(
                    "v.user_id = ? AND v.is_active = ? AND v.embedding IS NOT NULL AND {dims} AND {latest}"
                ).format(
                    dims=SQL(dialect.vector_dims_is("embedding", len(q))), latest=_latest("v", True)
                ),
                [self._uid, True, True],
            ),
            order="v.name",
            settings=search_settings(),
        )
        rows = yield Atomic(index.search_small(search), readonly=True)
        if rows is None:
            rows = yield Atomic(index.search_large(search), pipeline=True)
        return [(_skill(dialect, r[:-1]), 1.0 - float(r[-1])) for r in rows]

    asearch = search.async_

    @dual
    def create_index(self, dims: int, *, m: int = 16, ef_construction: int = 64) -> Plan[bool]:
        """Build the HNSW index over skill descriptions embedded with ``dims`` dimensions
        (every user's: ``skills_d<dims>_hnsw``) if it does not exist; whether one exists
        afterwards (Postgres with pgvector; ``False`` on SQLite, whose search is exact).
        Registries of up to a few thousand skills are searched exactly either way."""
        found = yield Atomic(
            create_sized(self.engine.dialect, "skills", dims, m=m, ef_construction=ef_construction)
        )
        self._ann[int(dims)] = found
        return found[1]

    acreate_index = create_index.async_

    # -- bindings --------------------------------------------------------------------------
    @dual
    def bind(
        self,
        agent_name: str,
        skill: str | Skill,
        *,
        enabled: bool = True,
        priority: int = 0,
        config: Mapping[str, Any] | None = None,
    ) -> Plan[None]:
        """Let ``agent_name`` use ``skill`` (a name or a :class:`Skill`); binding it again
        replaces the binding. ``UnknownSkillError`` when the skill is not registered."""
        yield from self._bind(agent_name, skill, enabled, priority, config)

    abind = bind.async_

    def _bind(
        self,
        agent_name: str,
        skill: str | Skill,
        enabled: bool = True,
        priority: int = 0,
        config: Mapping[str, Any] | None = None,
    ) -> Plan[None]:
        name = skill.name if isinstance(skill, Skill) else skill
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}: {enabled!r}")
        if config is not None and not isinstance(config, Mapping):
            raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
        row = [enabled, _priority(priority), dumps_exact(dict(config or {}), "config")]
        agent = plain(agent_name, "agent name")
        yield Atomic(_bind(self.engine.dialect, self._uid, agent, plain(name, "skill name"), row))

    @dual
    def unbind(self, agent_name: str, skill: str | Skill) -> Plan[bool]:
        """Remove the binding; whether there was one."""
        name = skill.name if isinstance(skill, Skill) else skill
        n = yield Atomic(
            _one(
                Stmt(
                    "DELETE FROM {agent_skill_bindings} WHERE user_id = ? AND agent_name = ? AND skill_name = ?",
                    [self._uid, plain(agent_name, "agent name"), plain(name, "skill name")],
                )
            ),
            single=True,
        )
        return bool(n)

    aunbind = unbind.async_

    @dual
    def bindings(self, agent_name: str | None = None) -> Plan[list[Binding]]:
        """Every binding (of ``agent_name``), enabled or not, by agent then priority."""
        agent = plain(agent_name, "agent name", optional=True)
        rows = yield Atomic(_fetch(*_bindings_query(self._uid, agent, False)), readonly=True)
        return [self._binding(r) for r in rows]

    abindings = bindings.async_

    @dual
    def skills_for(self, agent_name: str) -> Plan[list[Binding]]:
        """The enabled bindings of ``agent_name`` to active skills, highest priority
        first (ties by skill name), each with the skill's latest active version."""
        return (yield from self._skills_for(agent_name))

    askills_for = skills_for.async_

    def _skills_for(self, agent_name: str) -> Plan[list[Binding]]:
        agent = plain(agent_name, "agent name")
        rows = yield Atomic(_fetch(*_bindings_query(self._uid, agent, True)), readonly=True)
        return [self._binding(r) for r in rows]

    def _binding(self, row: Sequence[Any]) -> Binding:
        return Binding(
            agent_name=row[0],
            skill_name=row[1],
            enabled=bool(row[2]),
            priority=int(row[3]),
            config=loads(row[4]),
            skill=None if row[5] is None else _skill(self.engine.dialect, row[5:]),
        )

    @dual
    def tools_for(
        self,
        agent_name: str,
        implementations: Mapping[str, Callable[..., Any]],
        *,
        missing: Literal["raise", "warn"] = "raise",
    ) -> Plan[list[StructuredTool]]:
        """LangChain tools of the skills :meth:`skills_for` gives ``agent_name``, in that
        order, for ``create_agent(model, tools=...)``.

        Each tool has the spec's name, description and ``inputSchema`` (as its JSON Schema
        ``args_schema``) and runs ``implementations[skill name]`` (a coroutine function
        runs on ``ainvoke``); its ``metadata`` holds the skill, version, priority and the
        binding's config. A bound skill without an implementation raises
        :class:`MissingImplementationError` (``missing="warn"``: a ``UserWarning`` names
        it and the other tools are returned)."""
        if missing not in ("raise", "warn"):
            raise ValueError(f"missing must be 'raise' or 'warn', got {missing!r}")
        if not isinstance(implementations, Mapping):
            raise TypeError(
                f"implementations must map skill names to functions, got {type(implementations).__name__}"
            )
        bound = yield from self._skills_for(agent_name)
        tools: list[StructuredTool] = []
        absent: list[str] = []
        for binding in bound:
            fn = implementations.get(binding.skill_name)
            if fn is None:
                absent.append(binding.skill_name)
                continue
            if not callable(fn):
                raise TypeError(
                    f"implementation of {binding.skill_name!r} is not callable: {fn!r:.80}"
                )
            tools.append(_tool(binding, fn))
        if absent:
            error = MissingImplementationError(agent_name, absent)
            if missing == "raise":
                raise error
            warnings.warn(str(error), UserWarning, stacklevel=3)
        return tools

    atools_for = tools_for.async_

    # -- files -----------------------------------------------------------------------------
    @dual
    def load(self, document: Mapping[str, Any]) -> Plan[tuple[int, int]]:
        """Register the ``skills`` and make the ``bindings`` of a document (see
        :func:`read_skills_file`); ``(skills, bindings)`` counts. Each skill and binding
        is its own transaction, skills first; an invalid entry raises naming it."""
        if not isinstance(document, Mapping):
            raise TypeError(
                f"expected a mapping with 'skills' and 'bindings', got {type(document).__name__}"
            )
        unknown = set(document) - {"skills", "bindings"}
        if unknown:
            raise ValueError(
                f"unknown top-level keys {sorted(unknown)}: expected 'skills' and 'bindings'"
            )
        skills = list(document.get("skills") or ())
        bindings = list(document.get("bindings") or ())
        for i, entry in enumerate(skills):
            if not isinstance(entry, Mapping) or "name" not in entry:
                raise ValueError(f"skills[{i}] must be a mapping with a name, got {entry!r:.80}")
            args = dict(entry)
            name = args.pop("name")
            try:
                yield from self._register(name, **args)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"skills[{i}] ({name!r}): {exc}") from exc
        for i, entry in enumerate(bindings):
            if not isinstance(entry, Mapping) or not {"agent", "skill"} <= set(entry):
                raise ValueError(
                    f"bindings[{i}] must be a mapping with agent and skill, got {entry!r:.80}"
                )
            args = dict(entry)
            agent, skill = args.pop("agent"), args.pop("skill")
            try:
                yield from self._bind(agent, skill, **args)
            except (TypeError, ValueError, LookupError) as exc:
                raise type(exc)(f"bindings[{i}] ({agent!r} -> {skill!r}): {exc}") from exc
        return len(skills), len(bindings)

    aload = load.async_


def _tool(binding: Binding, fn: Callable[..., Any]) -> StructuredTool:
    import inspect

    assert binding.skill is not None
    spec = binding.skill.spec
    is_async = inspect.iscoroutinefunction(fn)
    return StructuredTool.from_function(
        func=None if is_async else fn,
        coroutine=fn if is_async else None,
        name=spec["name"],
        description=spec.get("description") or binding.skill.description,
        args_schema=spec["inputSchema"],
        infer_schema=False,
        metadata={
            "skill": binding.skill_name,
            "version": binding.skill.version,
            "priority": binding.priority,
            "config": binding.config,
        },
    )
