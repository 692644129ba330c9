"""The one filter compiler: filters over any JSON column, compiled to SQL for both backends.

Two filter languages share it, each compiled **once per call** to one SQL boolean and its
parameters, over a column described by the dialect
(:meth:`~langchain_agentmem.dialects.Dialect.json_sql`):

* :func:`compile_filter`, the vector store's metadata filters: a small MongoDB-like
  language. Keys that do not start with ``$`` name metadata fields (dotted keys reach into
  nested objects: ``"author.name"``); their value is either a plain value (equality) or a
  dict of operators. ``$and`` / ``$or`` take a list of filters, ``$not`` one filter.
  Operators: ``$eq $ne $lt $lte $gt $gte $in $nin $between $exists $like $ilike``.
* :func:`compile_store_filter`, LangGraph's store filters: each key names a top-level field
  literally; a value is equality (objects and lists compared as JSON), a dict of operators
  (``$eq $ne $gt $gte $lt $lte``), or a dict of fields matched inside a nested object.

Semantics are the same on Postgres and SQLite:

* a number matches only a JSON number, compared as a number and exactly (``1`` equals
  ``1.0``; an integer beyond 64 bits is compared exactly too), a string only a JSON string
  (compared by code point), ``True``/``False`` only a JSON boolean, ``None`` only a JSON
  ``null``;
* ``$lt $lte $gt $gte $between`` take numbers or strings;
* ``$ne`` and ``$nin`` also match rows where the field is missing;
* ``$like`` is case-sensitive with ``%`` and ``_`` wildcards (``\\`` escapes); ``$ilike``
  ignores case (on SQLite only for ASCII letters).

Limits (each a ``ValueError`` naming it, on both backends): integers in a filter lie in
[-2**63, 2**63 - 1] and floats are finite; field names hold no NUL, lone surrogate, ``"``
or ``\\``; filters nest at most :data:`MAX_DEPTH` levels (``$and``, ``$or``, ``$not``,
nested objects). Anything else malformed (an unknown operator, a list where a value
belongs, an empty ``$and``) raises ``ValueError`` too.

Example:
    >>> from langchain_agentmem.dialects import SQLiteDialect
    >>> js = SQLiteDialect().json_sql("v.metadata")
    >>> sql, params = compile_filter({"tag": "x", "$not": {"kind": {"$in": ["a", "b"]}}}, js)
    >>> sql
    "((json_type(v.metadata, ?) = 'text' AND json_extract(v.metadata, ?) = ?) AND (NOT coalesce(((json_type(v.metadata, ?) = 'text' AND json_extract(v.metadata, ?) = ?) OR (json_type(v.metadata, ?) = 'text' AND json_extract(v.metadata, ?) = ?)), FALSE)))"
    >>> params[:3]
    ['$."tag"', '$."tag"', 'x']
    >>> compile_store_filter({"age": {"$gte": 10}}, js)[1][-1]
    10
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._encoding.json import clean_text
from ..dialects.base import Fragment, JsonSQL
from ..dialects.postgres import PostgresJson
from ..dialects.sqlite import SQLiteJson

__all__ = [
    "MAX_DEPTH",
    "Fragment",
    "JsonSQL",
    "PostgresJson",
    "SQLiteJson",
    "compile_filter",
    "compile_store_filter",
]

#: How deep filters may nest: levels of ``$and``, ``$or``, ``$not`` and nested objects.
#: (SQLite's parser overflows at about 50 levels of parentheses.)
MAX_DEPTH = 16
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
TRUE: Fragment = ("1 = 1", [])
FALSE: Fragment = ("1 = 0", [])

_COMPARE = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
_FIELD_OPS = {"$eq", "$ne", "$in", "$nin", "$between", "$exists", "$like", "$ilike", *_COMPARE}
_STORE_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


# -- shared pieces ---------------------------------------------------------------------


def _join(op: str, parts: list[Fragment]) -> Fragment:
    if len(parts) == 1:
        return parts[0]
    sql = "(" + f" {op} ".join(p[0] for p in parts) + ")"
    params = [x for p in parts for x in p[1]]
    return sql, params


def _not(frag: Fragment) -> Fragment:
    return f"(NOT coalesce({frag[0]}, FALSE))", frag[1]


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(
            f"filter nests more than {MAX_DEPTH} levels deep ($and, $or, $not, nested "
            f"objects): at most {MAX_DEPTH} are supported"
        )


def _check_name(name: Any, key: Any) -> str:
    if not isinstance(name, str):
        raise ValueError(f"filter keys must be strings, got {name!r}")
    if not name or '"' in name or "\\" in name or "\x00" in name or clean_text(name) != name:
        raise ValueError(
            f"invalid filter field {key!r}: expected non-empty names without NUL, lone "
            'surrogates, " or \\'
        )
    return name


def _number(key: str, op: str, value: int | float) -> int | float:
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueError(
                f"field {key!r}: {op} takes integers from -2**63 to 2**63-1 (compared exactly "
                f"on both backends), got {value!r}"
            )
    elif not math.isfinite(value):
        raise ValueError(f"field {key!r}: {op} needs a finite number, got {value!r}")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- the vector store's metadata filters ---------------------------------------------------


def compile_filter(filter: Mapping[str, Any] | None, js: JsonSQL) -> Fragment:
    """Compile a metadata ``filter`` to a SQL boolean over ``js.column``; ``("1 = 1", [])``
    for ``None`` or ``{}``. Raises ``ValueError`` for a malformed filter."""
    if filter is None:
        return TRUE
    if not isinstance(filter, Mapping):
        raise ValueError(f"a filter must be a dict, got {type(filter).__name__}: {filter!r:.80}")
    if not filter:
        return TRUE
    return _doc(filter, js, 1)


def _doc(filter: Any, js: JsonSQL, depth: int) -> Fragment:
    _check_depth(depth)
    if not isinstance(filter, Mapping) or not filter:
        raise ValueError(f"expected a non-empty filter dict, got {filter!r:.80}")
    return _join("AND", [_clause(key, value, js, depth) for key, value in filter.items()])


def _clause(key: Any, value: Any, js: JsonSQL, depth: int) -> Fragment:
    if not isinstance(key, str):
        raise ValueError(f"filter keys must be strings, got {key!r}")
    if key in ("$and", "$or"):
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"{key} expects a non-empty list of filters, got {value!r:.80}")
        return _join(key[1:].upper(), [_doc(f, js, depth + 1) for f in value])
    if key == "$not":
        return _not(_doc(value, js, depth + 1))
    if key.startswith("$"):
        raise ValueError(
            f"unknown filter operator {key!r}: expected a field name, $and, $or or $not"
        )
    parts = [_check_name(part, key) for part in key.split(".")]
    if isinstance(value, Mapping):
        if not value:
            raise ValueError(f"field {key!r}: expected a value or operators, got an empty dict")
        conds = []
        for op, arg in value.items():
            if not isinstance(op, str) or op not in _FIELD_OPS:
                raise ValueError(
                    f"field {key!r}: unknown filter operator {op!r}: expected one of "
                    + ", ".join(sorted(_FIELD_OPS))
                )
            conds.append(_operator(key, op, arg, parts, js))
        return _join("AND", conds)
    return _operator(key, "$eq", value, parts, js)


def _scalar_kind(key: str, op: str, value: Any, allowed: tuple[str, ...]) -> str:
    if isinstance(value, bool):
        kind = "bool"
    elif value is None:
        kind = "null"
    elif isinstance(value, (int, float)):
        _number(key, op, value)
        kind = "number"
    elif isinstance(value, str):
        kind = "string"
    else:
        kind = type(value).__name__
    if kind not in allowed:
        raise ValueError(
            f"field {key!r}: {op} expects {' or '.join(allowed)}, got {type(value).__name__}: {value!r:.80}"
        )
    return kind


def _compare(kind: str, op: str, value: Any, p: Any, js: JsonSQL) -> Fragment:
    if kind == "number":
        return js.compare_number(p, op, value)
    return js.compare_string(p, op, clean_text(value))  # strings as stored


def _eq(
    key: str, op: str, value: Any, parts: list[str], js: JsonSQL, hint: bool = True
) -> Fragment:
    kind = _scalar_kind(key, op, value, ("number", "string", "bool", "null"))
    p = js.path(parts)
    if kind == "bool":
        frag = js.is_bool(p, value)
    elif kind == "null":
        frag = js.is_null(p)
    else:
        frag = _compare(kind, "=", value, p, js)
    extra = js.eq_hint(parts, clean_text(value) if kind == "string" else value) if hint else None
    if extra is None:
        return frag
    return f"({extra[0]} AND {frag[0]})", [*extra[1], *frag[1]]


def _operator(key: str, op: str, arg: Any, parts: list[str], js: JsonSQL) -> Fragment:
    if op == "$eq":
        return _eq(key, op, arg, parts, js)
    if op == "$ne":
        return _not(_eq(key, op, arg, parts, js, hint=False))
    p = js.path(parts)
    if op in _COMPARE:
        kind = _scalar_kind(key, op, arg, ("number", "string"))
        return _compare(kind, _COMPARE[op], arg, p, js)
    if op == "$between":
        if not isinstance(arg, (list, tuple)) or len(arg) != 2:
            raise ValueError(f"field {key!r}: $between expects [low, high], got {arg!r:.80}")
        lo = _scalar_kind(key, op, arg[0], ("number", "string"))
        hi = _scalar_kind(key, op, arg[1], ("number", "string"))
        if lo != hi:
            raise ValueError(
                f"field {key!r}: $between bounds must both be numbers or both strings, got {arg!r:.80}"
            )
        return _join("AND", [_compare(lo, ">=", arg[0], p, js), _compare(lo, "<=", arg[1], p, js)])
    if op in ("$in", "$nin"):
        if not isinstance(arg, (list, tuple, set, frozenset)):
            raise ValueError(
                f"field {key!r}: {op} expects a list of values, got {type(arg).__name__}: {arg!r:.80}"
            )
        frag = (
            _join("OR", [_eq(key, op, v, parts, js, hint=op == "$in") for v in arg])
            if arg
            else FALSE
        )
        return _not(frag) if op == "$nin" else frag
    if op == "$exists":
        if not isinstance(arg, bool):
            raise ValueError(f"field {key!r}: $exists expects True or False, got {arg!r:.80}")
        sql, params = js.exists(p)
        return (sql, params) if arg else (f"(NOT {sql})", params)
    if op in ("$like", "$ilike"):
        if not isinstance(arg, str):
            raise ValueError(
                f"field {key!r}: {op} expects a string pattern, got {type(arg).__name__}: {arg!r:.80}"
            )
        return js.like(p, arg, op == "$ilike")
    raise ValueError(f"field {key!r}: unknown filter operator {op!r}")  # pragma: no cover


# -- LangGraph store filters ---------------------------------------------------------------


def compile_store_filter(filter: Mapping[str, Any] | None, js: JsonSQL) -> Fragment:
    """Compile a LangGraph store ``filter`` (over an item's value, ``js.column``) to a SQL
    boolean with LangGraph's semantics: ``$ne`` matches a missing field, the other
    operators need it; ``$gt``-like operators order numbers with numbers and strings with
    strings (any other pair does not match); equality compares JSON values (numbers by
    value, objects regardless of key order). Raises ``TypeError`` when ``filter`` is not a
    dict, ``ValueError`` for an unsupported operator or a limit (see the module)."""
    if filter is None:
        return TRUE
    if not isinstance(filter, dict):
        raise TypeError(f"filter must be a dict, got {type(filter).__name__}: {filter!r}")
    if not filter:
        return TRUE
    return _store_fields(filter, [], js, 1)


def _store_fields(
    filter: Mapping[Any, Any], path: list[str | int], js: JsonSQL, depth: int
) -> Fragment:
    _check_depth(depth)
    parts = []
    for key, expected in filter.items():
        name = _check_name(key, key)
        parts.append(_store_value(name, [*path, name], expected, js, depth))
    return _join("AND", parts)


def _store_value(
    key: str, path: list[str | int], expected: Any, js: JsonSQL, depth: int
) -> Fragment:
    if isinstance(expected, dict):
        ops = [k for k in expected if isinstance(k, str) and k.startswith("$")]
        for op in ops:
            if op not in _STORE_OPS:
                raise ValueError(
                    f"unsupported filter operator {op!r} for {key!r}: expected one of {', '.join(_STORE_OPS)}"
                )
        if expected and len(ops) == len(expected):
            return _join(
                "AND", [_store_op(key, path, op, arg, js, depth) for op, arg in expected.items()]
            )
        obj = js.is_object(js.path(path))
        if not expected:
            return obj
        return _join("AND", [obj, _store_fields(expected, path, js, depth + 1)])
    return _json_equal(key, path, expected, js, depth)


def _store_op(
    key: str, path: list[str | int], op: str, arg: Any, js: JsonSQL, depth: int
) -> Fragment:
    if op == "$eq":
        return _json_equal(key, path, arg, js, depth)
    if op == "$ne":
        return _not(_json_equal(key, path, arg, js, depth))
    sql_op = _COMPARE[op]
    if _is_number(arg):
        return js.compare_number(js.path(path), sql_op, _number(key, op, arg))
    if isinstance(arg, str):
        return js.compare_string(js.path(path), sql_op, clean_text(arg))
    return FALSE  # only numbers with numbers and strings with strings are ordered


def _json_equal(key: str, path: list[str | int], value: Any, js: JsonSQL, depth: int) -> Fragment:
    p = js.path(path)
    if isinstance(value, bool):
        return js.is_bool(p, value)
    if value is None:
        return js.is_null(p)
    if _is_number(value):
        return js.compare_number(p, "=", _number(key, "$eq", value))
    if isinstance(value, str):
        return js.compare_string(p, "=", clean_text(value))
    if isinstance(value, (Mapping, list, tuple)):
        _check_depth(depth + 1)
        is_map = isinstance(value, Mapping)
        kind = js.is_object(p) if is_map else js.is_array(p)
        length_sql, length_params = js.length(p)
        members: Sequence[tuple[str | int, Any]] = (
            [(_check_name(k, key), v) for k, v in value.items()]  # type: ignore[union-attr]
            if is_map
            else list(enumerate(value))
        )
        parts = [kind, (f"{length_sql} = ?", [*length_params, len(members)])]
        parts += [_json_equal(key, [*path, k], v, js, depth + 1) for k, v in members]
        return _join("AND", parts)
    return FALSE  # nothing read from JSON equals another type
