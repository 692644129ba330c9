"""Composing SQL from pieces without f-strings, modelled on :mod:`psycopg.sql`.

A query whose shape is chosen by code (a column list, a table from the catalog, a
dialect's fragment) is composed from :class:`SQL` (template text written in the code),
:class:`Ident` (a checked identifier, quoted by the dialect), :class:`Table` (a table of
the shared schema) and the deferred dialect fragments :class:`Unnest` and
:class:`RowLock`. ``SQL(...).format(...)``, ``SQL(...).join(...)`` and ``+`` build a
:class:`Composed`; statements (:class:`~.statements.Stmt`, ``One``, ``Many``, ``Copy``)
take it wherever they take template text, and :meth:`Dialect.render
<langchain_agentmem.dialects.Dialect.render>` turns it into the backend's SQL, cached on
the composition's structure (two equal compositions share one cache entry).

Template text keeps the neutral syntax of :mod:`langchain_agentmem.dialects` (``?``,
``{table}``, ``{now}``). In :meth:`SQL.format` a field that is given an argument is
replaced by it; a named field that is not given one stays a table or fragment reference.
Arguments must be composables: a plain string is refused, so a value can never become SQL
text by mistake (values are parameters).

Example:
    >>> from langchain_agentmem.dialects import PostgresDialect, SQLiteDialect
    >>> q = SQL("SELECT {cols} FROM {kv} WHERE user_id = ?").format(
    ...     cols=SQL(", ").join([Ident("key"), Ident("value")])
    ... )
    >>> PostgresDialect().render(q)
    'SELECT "key", "value" FROM "agent_mem"."kv" WHERE user_id = %s'
    >>> SQLiteDialect().render(q)
    'SELECT "key", "value" FROM "kv" WHERE user_id = ?'
    >>> SQL("SELECT {} FROM t").format("key; drop table t")
    Traceback (most recent call last):
    ...
    TypeError: SQL.format expects composables (SQL, Ident, Table, Unnest, RowLock, Composed), got str: 'key; drop table t'
"""

from __future__ import annotations

import functools
import string
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .base import check_identifier

if TYPE_CHECKING:
    from .base import Dialect

__all__ = [
    "SQL",
    "Composable",
    "Composed",
    "Ident",
    "RowLock",
    "Table",
    "Template",
    "Unnest",
    "idents",
    "marks",
]

_FORMATTER = string.Formatter()

# A composition is a flat tuple of parts, each a tuple of plain values (so that equality
# and hashing run in C): ("s", text), ("i", names), ("t", table), ("u", columns),
# ("l", strength). Texts are not merged on the hot path (``+``, ``join``, ``Composed``):
# a tuple of the code's own strings hashes and compares fast; ``format`` (memoized) merges.
_Part = tuple[Any, ...]


class Composable:
    """A piece of SQL: immutable, hashable, compared by structure."""

    __slots__ = ("_hash", "_parts")

    _parts: tuple[_Part, ...]
    _hash: int

    def _set(self, parts: tuple[_Part, ...]) -> None:
        self._parts = parts
        self._hash = hash(parts)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Composable):
            return self._hash == other._hash and self._parts == other._parts
        return NotImplemented

    def __add__(self, other: Composable) -> Composed:
        if not isinstance(other, Composable):
            return NotImplemented
        return _composed(self._parts + other._parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._parts!r})"

    def template(self, dialect: Dialect | None = None) -> str:
        """The neutral template text (``?``, ``{table}``) of this composition, with its
        identifiers quoted and its fragments supplied by ``dialect`` (without one,
        identifiers are quoted ``"name"``, as both backends do, and a dialect fragment
        (:class:`Unnest`, :class:`RowLock`) is refused). Use it where an API still takes
        template text (e.g. the vector index's ``select`` and ``where``).

        Example:
            >>> (SQL("SELECT ") + Ident("w", "goal") + SQL(" FROM ") + Table("kv")).template()
            'SELECT "w"."goal" FROM {kv}'
        """
        out: list[str] = []
        for part in self._parts:
            kind = part[0]
            if kind == "s":
                out.append(part[1])
            elif kind == "i":
                quote = _quote if dialect is None else dialect.quote
                out.append(".".join(quote(n) for n in part[1]))
            elif kind == "t":
                out.append("{" + part[1] + "}")
            elif dialect is None:
                raise ValueError(f"{part!r} is a dialect fragment: template() needs the dialect")
            elif kind == "u":
                out.append(dialect.unnest(part[1]))
            else:
                out.append(dialect.row_lock(part[1]))
        return "".join(out)


def _quote(name: str) -> str:
    return '"' + name + '"'


def _merge(parts: Iterable[_Part]) -> tuple[_Part, ...]:
    out: list[_Part] = []
    for part in parts:
        if part[0] == "s":
            if not part[1]:
                continue
            if out and out[-1][0] == "s":
                out[-1] = ("s", out[-1][1] + part[1])
                continue
        out.append(part)
    return tuple(out)


def _composable(value: Any, what: str) -> Composable:
    if not isinstance(value, Composable):
        raise TypeError(
            f"{what} expects composables (SQL, Ident, Table, Unnest, RowLock, Composed), "
            f"got {type(value).__name__}: {value!r}"
        )
    return value


class Composed(Composable):
    """A sequence of composables, one after the other.

    Example:
        >>> Composed([SQL("SELECT 1"), SQL(" FROM "), Table("events")]).template()
        'SELECT 1 FROM {events}'
    """

    __slots__ = ()

    def __init__(self, parts: Iterable[Composable]) -> None:
        out: list[_Part] = []
        for c in parts:
            out.extend(_composable(c, "Composed")._parts)
        self._set(tuple(out))


def _composed(parts: tuple[_Part, ...]) -> Composed:
    out = object.__new__(Composed)
    out._set(parts)
    return out


class SQL(Composable):
    """Template text written in the code (never user input): passed on as it is. Also
    wraps the template text a dialect method returns (``dialect.now_plus_minutes(...)``)
    and conditions the filter compiler built.

    Example:
        >>> SQL("SELECT count(*) FROM {events} WHERE user_id = ?").template()
        'SELECT count(*) FROM {events} WHERE user_id = ?'
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"SQL expects template text as str, got {type(text).__name__}")
        self.text = text
        self._set((("s", text),) if text else ())

    def format(self, *args: Composable, **kwargs: Composable) -> Composed:
        """Replace the fields ``{}``, ``{0}`` and ``{name}`` given as arguments by them.

        A named field without an argument stays as it is: a table (``{kv}``) or fragment
        (``{now}``) reference. Every argument must be used. ``{{`` and ``}}`` are literal
        braces (so ``{{now}}`` is the text ``{now}``, not the fragment).

        Example:
            >>> SQL("DELETE FROM {kv} WHERE {} = ?").format(Ident("key")).template()
            'DELETE FROM {kv} WHERE "key" = ?'
        """
        try:
            return _format(self.text, args, tuple(kwargs.items()))
        except TypeError:  # an argument that is not hashable, hence not a composable
            for value in [*args, *kwargs.values()]:
                _composable(value, "SQL.format")
            raise

    def join(self, items: Iterable[Composable]) -> Composed:
        """The ``items`` with this text between each two.

        Example:
            >>> SQL(", ").join(Ident(c) for c in ["a", "b"]).template()
            '"a", "b"'
        """
        parts: list[_Part] = []
        for i, item in enumerate(items):
            if i:
                parts.extend(self._parts)
            parts.extend(_composable(item, "SQL.join")._parts)
        return _composed(tuple(parts))


@functools.lru_cache(maxsize=1024)
def _format(
    text: str, args: tuple[Composable, ...], kwargs: tuple[tuple[str, Composable], ...]
) -> Composed:
    # Memoized (a pure function of code-owned text and composables): a query composed on
    # every call costs one lookup, not a parse.
    named = dict(kwargs)
    parts: list[_Part] = []
    used: set[int | str] = set()
    auto = 0
    for literal, field, spec, conv in _FORMATTER.parse(text):
        if literal:
            parts.append(("s", literal.replace("{", "{{").replace("}", "}}")))
        if field is None:
            continue
        if spec or conv:
            raise ValueError(f"unsupported field {{{field}}} in SQL.format template")
        value: Any
        key: int | str
        if field == "":
            if auto >= len(args):
                raise IndexError(f"SQL.format needs argument {auto}, got {len(args)}")
            value, key = args[auto], auto
            auto += 1
        elif field.isdigit():
            if int(field) >= len(args):
                raise IndexError(f"SQL.format needs argument {field}, got {len(args)}")
            value, key = args[int(field)], int(field)
        elif field in named:
            value, key = named[field], field
        else:
            parts.append(("s", "{" + field + "}"))
            continue
        used.add(key)
        parts.extend(_composable(value, "SQL.format")._parts)
    unused = [k for k in [*range(len(args)), *named] if k not in used]
    if unused:
        raise ValueError(f"SQL.format arguments not used by the template: {unused}")
    return _composed(_merge(parts))


class Ident(Composable):
    """An identifier (a column, an alias; several names are joined by ``.``), each name
    checked by :func:`~langchain_agentmem.dialects.check_identifier` and quoted by the
    dialect.

    Example:
        >>> Ident("t", "user_id").template()
        '"t"."user_id"'
        >>> Ident("User")
        Traceback (most recent call last):
        ...
        ValueError: invalid identifier name 'User': expected lower-case letters, digits and underscores, starting with a letter or underscore, at most 63 characters
    """

    __slots__ = ("names",)

    def __init__(self, *names: str) -> None:
        if not names:
            raise ValueError("Ident expects at least one name")
        self.names = tuple(check_identifier(n) for n in names)
        self._set((("i", self.names),))


class Table(Composable):
    """A table of the shared schema, quoted and qualified by the dialect: the same as
    ``{name}`` in template text, for a name the code chooses (e.g. from the catalog).

    Example:
        >>> Table("events").template()
        '{events}'
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = check_identifier(name, "table")
        self._set((("t", self.name),))


class Unnest(Composable):
    """The dialect's relation ``m(ord, <columns>)`` over the parameters of
    :meth:`Dialect.unnest_params <langchain_agentmem.dialects.Dialect.unnest_params>`
    (see :meth:`Dialect.unnest <langchain_agentmem.dialects.Dialect.unnest>`).

    Example:
        >>> from langchain_agentmem.dialects import SQLiteDialect
        >>> print(SQLiteDialect().render(SQL("SELECT m.k FROM ") + Unnest([("k", "text")])))
        SELECT m.k FROM (SELECT key + 1 AS ord, json_extract(value, '$[0]') AS "k" FROM json_each(?)) AS m
    """

    __slots__ = ("columns",)

    def __init__(self, columns: Sequence[tuple[str, str]]) -> None:
        self.columns = tuple((check_identifier(n, "column"), t) for n, t in columns)
        self._set((("u", self.columns),))


class RowLock(Composable):
    """The dialect's clause locking the rows a SELECT returns (see :meth:`Dialect.row_lock
    <langchain_agentmem.dialects.Dialect.row_lock>`): ``"key share"`` or ``"update"``.

    Example:
        >>> from langchain_agentmem.dialects import PostgresDialect
        >>> PostgresDialect().render(SQL("SELECT 1 FROM {kv}") + RowLock("update"))
        'SELECT 1 FROM "agent_mem"."kv" FOR UPDATE'
    """

    __slots__ = ("strength",)

    def __init__(self, strength: str) -> None:
        if strength not in ("key share", "update"):
            raise ValueError(f"row lock strength must be 'key share' or 'update', got {strength!r}")
        self.strength = strength
        self._set((("l", strength),))


#: What a statement takes as its SQL: template text or a composition.
Template = str | Composable


_COMMA = SQL(", ")
_MARK = SQL("?")


def marks(n: int) -> Composed:
    """``n`` parameter marks, comma separated.

    Example:
        >>> marks(3).template()
        '?, ?, ?'
    """
    return _COMMA.join(_MARK for _ in range(n))


def idents(names: Iterable[str]) -> Composed:
    """Checked, quoted column names, comma separated.

    Example:
        >>> idents(["user_id", "key"]).template()
        '"user_id", "key"'
    """
    return _COMMA.join(Ident(n) for n in names)
