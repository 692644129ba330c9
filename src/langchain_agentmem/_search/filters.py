"""Metadata filters: a small MongoDB-like language compiled to SQL for both backends.

A filter is a dict. Keys that do not start with ``$`` name metadata fields (dotted keys
reach into nested objects: ``"author.name"``); their value is either a plain value
(equality) or a dict of operators. ``$and`` / ``$or`` take a list of filters, ``$not`` one
filter.

Operators: ``$eq $ne $lt $lte $gt $gte $in $nin $between $exists $like $ilike``.
Semantics are the same on Postgres and SQLite:

* a number matches only a JSON number, compared as a number (``1`` equals ``1.0``), a
  string only a JSON string (compared by code point), ``True``/``False`` only a JSON
  boolean, ``None`` only a JSON ``null``;
* ``$lt $lte $gt $gte $between`` take numbers or strings;
* ``$ne`` and ``$nin`` also match rows where the field is missing;
* ``$like`` is case-sensitive with ``%`` and ``_`` wildcards (``\\`` escapes); ``$ilike``
  ignores case (on SQLite only for ASCII letters).

Anything else (an unknown operator, a list where a value belongs, an empty ``$and``)
raises ``ValueError``.

Example:
    >>> sql, params = compile_filter({"year": {"$gte": 2020}, "tag": "x"}, SQLiteJson())
    >>> sql
    "((json_type(v.metadata, ?) IN ('integer', 'real') AND json_extract(v.metadata, ?) >= ?) AND (json_type(v.metadata, ?) = 'text' AND json_extract(v.metadata, ?) = ?))"
    >>> params
    ['$."year"', '$."year"', 2020, '$."tag"', '$."tag"', 'x']
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .._encoding.json import clean_text

__all__ = ["JsonSQL", "PostgresJson", "SQLiteJson", "compile_filter"]

Fragment = tuple[str, list[Any]]

_COMPARE = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
_FIELD_OPS = {"$eq", "$ne", "$in", "$nin", "$between", "$exists", "$like", "$ilike", *_COMPARE}


class JsonSQL:
    """How one backend reads a value at a path of the ``v.metadata`` column. Every method
    returns a SQL fragment (with ``?`` placeholders) and its parameters."""

    def path(self, parts: list[str]) -> Any:
        raise NotImplementedError

    def is_number(self, p: Any) -> Fragment:
        raise NotImplementedError

    def is_string(self, p: Any) -> Fragment:
        raise NotImplementedError

    def is_bool(self, p: Any, value: bool) -> Fragment:
        raise NotImplementedError

    def is_null(self, p: Any) -> Fragment:
        raise NotImplementedError

    def exists(self, p: Any) -> Fragment:
        raise NotImplementedError

    def number(self, p: Any) -> Fragment:
        """The value as a number (only meaningful where :meth:`is_number` holds)."""
        raise NotImplementedError

    def number_param(self, value: float | int) -> str:
        return "?"

    def eq_hint(self, p: Any, value: Any) -> Fragment | None:
        """An extra condition equivalent to equality with a scalar that an index can
        serve, or None."""
        return None

    def string(self, p: Any) -> Fragment:
        """The value as text compared by code point (where :meth:`is_string` holds)."""
        raise NotImplementedError

    def like(self, expr: str, pattern: str, ignore_case: bool) -> Fragment:
        raise NotImplementedError


class PostgresJson(JsonSQL):
    """``v.metadata`` is ``jsonb``; paths are ``text[]`` parameters."""

    def path(self, parts: list[str]) -> Any:
        return parts

    def is_number(self, p: Any) -> Fragment:
        return "jsonb_typeof(v.metadata #> ?::text[]) = 'number'", [p]

    def is_string(self, p: Any) -> Fragment:
        return "jsonb_typeof(v.metadata #> ?::text[]) = 'string'", [p]

    def is_bool(self, p: Any, value: bool) -> Fragment:
        return "(v.metadata #> ?::text[]) = ?::jsonb", [p, "true" if value else "false"]

    def is_null(self, p: Any) -> Fragment:
        return "jsonb_typeof(v.metadata #> ?::text[]) = 'null'", [p]

    def exists(self, p: Any) -> Fragment:
        return "(v.metadata #> ?::text[]) IS NOT NULL", [p]

    def number(self, p: Any) -> Fragment:
        # jsonb numbers compare numerically with each other; no cast can fail.
        return "(v.metadata #> ?::text[])", [p]

    def number_param(self, value: float | int) -> str:
        return "to_jsonb(?::numeric)"

    def eq_hint(self, p: Any, value: Any) -> Fragment | None:
        # Containment of a scalar at a path is equality (numbers by value); the GIN
        # (jsonb_path_ops) index on metadata serves it.
        doc: Any = value
        for part in reversed(p):
            doc = {part: doc}
        return "v.metadata @> ?::jsonb", [json.dumps(doc, ensure_ascii=False)]

    def string(self, p: Any) -> Fragment:
        return '((v.metadata #>> ?::text[]) COLLATE "C")', [p]

    def like(self, expr: str, pattern: str, ignore_case: bool) -> Fragment:
        return f"{expr} {'ILIKE' if ignore_case else 'LIKE'} ?", [pattern]


class SQLiteJson(JsonSQL):
    """``v.metadata`` is JSON text; paths are ``$."a"."b"`` parameters."""

    def path(self, parts: list[str]) -> Any:
        return "$" + "".join(f'."{p}"' for p in parts)

    def is_number(self, p: Any) -> Fragment:
        return "json_type(v.metadata, ?) IN ('integer', 'real')", [p]

    def is_string(self, p: Any) -> Fragment:
        return "json_type(v.metadata, ?) = 'text'", [p]

    def is_bool(self, p: Any, value: bool) -> Fragment:
        return "json_type(v.metadata, ?) = ?", [p, "true" if value else "false"]

    def is_null(self, p: Any) -> Fragment:
        return "json_type(v.metadata, ?) = 'null'", [p]

    def exists(self, p: Any) -> Fragment:
        return "json_type(v.metadata, ?) IS NOT NULL", [p]

    def number(self, p: Any) -> Fragment:
        return "json_extract(v.metadata, ?)", [p]

    def string(self, p: Any) -> Fragment:
        return "json_extract(v.metadata, ?)", [p]

    def like(self, expr: str, pattern: str, ignore_case: bool) -> Fragment:
        if ignore_case:  # SQLite's LIKE folds ASCII case; it has no other wildcards
            return f"{expr} LIKE ? ESCAPE '\\'", [pattern]
        return f"{expr} GLOB ?", [_like_to_glob(pattern)]


def _like_to_glob(pattern: str) -> str:
    out: list[str] = []
    it = iter(pattern)
    for ch in it:
        if ch == "\\":
            nxt = next(it, "\\")
            out.append(_glob_literal(nxt))
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        else:
            out.append(_glob_literal(ch))
    return "".join(out)


def _glob_literal(ch: str) -> str:
    return f"[{ch}]" if ch in "*?[" else ch


def compile_filter(filter: Mapping[str, Any] | None, js: JsonSQL) -> Fragment:
    """Compile ``filter`` to a SQL boolean over ``v.metadata``; ``("TRUE", [])`` for
    ``None`` or ``{}``. Raises ``ValueError`` for a malformed filter."""
    if filter is None:
        return "1 = 1", []
    if not isinstance(filter, Mapping):
        raise ValueError(f"a filter must be a dict, got {type(filter).__name__}: {filter!r:.80}")
    if not filter:
        return "1 = 1", []
    return _doc(filter, js)


def _doc(filter: Any, js: JsonSQL) -> Fragment:
    if not isinstance(filter, Mapping) or not filter:
        raise ValueError(f"expected a non-empty filter dict, got {filter!r:.80}")
    parts = [_clause(key, value, js) for key, value in filter.items()]
    return _join("AND", parts)


def _join(op: str, parts: list[Fragment]) -> Fragment:
    if len(parts) == 1:
        return parts[0]
    sql = "(" + f" {op} ".join(p[0] for p in parts) + ")"
    params = [x for p in parts for x in p[1]]
    return sql, params


def _clause(key: Any, value: Any, js: JsonSQL) -> Fragment:
    if not isinstance(key, str):
        raise ValueError(f"filter keys must be strings, got {key!r}")
    if key in ("$and", "$or"):
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"{key} expects a non-empty list of filters, got {value!r:.80}")
        sql, params = _join(key[1:].upper(), [_doc(f, js) for f in value])
        return f"({sql})", params
    if key == "$not":
        sql, params = _doc(value, js)
        return f"(NOT coalesce({sql}, FALSE))", params
    if key.startswith("$"):
        raise ValueError(
            f"unknown filter operator {key!r}: expected a field name, $and, $or or $not"
        )
    parts = _field_path(key)
    p = js.path(parts)
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
            conds.append(_operator(key, op, arg, p, js))
        return _join("AND", conds)
    return _operator(key, "$eq", value, p, js)


def _field_path(key: str) -> list[str]:
    parts = key.split(".")
    for part in parts:
        if not part or '"' in part or "\\" in part:
            raise ValueError(
                f"invalid filter field {key!r}: expected dot-separated names, each non-empty "
                'and without " or \\'
            )
    return parts


def _scalar_kind(key: str, op: str, value: Any, allowed: tuple[str, ...]) -> str:
    if isinstance(value, bool):
        kind = "bool"
    elif value is None:
        kind = "null"
    elif isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"field {key!r}: {op} needs a finite number, got {value!r}")
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


def _eq(key: str, op: str, value: Any, p: Any, js: JsonSQL, hint: bool = True) -> Fragment:
    kind = _scalar_kind(key, op, value, ("number", "string", "bool", "null"))
    if kind == "string":
        value = clean_text(value)  # as stored
    if kind == "bool":
        frag = js.is_bool(p, value)
    elif kind == "null":
        frag = js.is_null(p)
    else:
        frag = _compare(kind, "=", value, p, js)
    extra = js.eq_hint(p, value) if hint else None
    if extra is None:
        return frag
    return f"({extra[0]} AND {frag[0]})", [*extra[1], *frag[1]]


def _compare(kind: str, sql_op: str, value: Any, p: Any, js: JsonSQL) -> Fragment:
    if kind == "string":
        value = clean_text(value)
    if kind == "number":
        t_sql, t_params = js.is_number(p)
        v_sql, v_params = js.number(p)
        return f"({t_sql} AND {v_sql} {sql_op} {js.number_param(value)})", [
            *t_params,
            *v_params,
            value,
        ]
    t_sql, t_params = js.is_string(p)
    v_sql, v_params = js.string(p)
    return f"({t_sql} AND {v_sql} {sql_op} ?)", [*t_params, *v_params, value]


def _operator(key: str, op: str, arg: Any, p: Any, js: JsonSQL) -> Fragment:
    if op == "$eq":
        return _eq(key, op, arg, p, js)
    if op == "$ne":
        sql, params = _eq(key, op, arg, p, js, hint=False)
        return f"(NOT coalesce({sql}, FALSE))", params
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
        if not arg:
            sql, params = "1 = 0", []
        else:
            sql, params = _join("OR", [_eq(key, op, v, p, js, hint=op == "$in") for v in arg])
            sql = f"({sql})" if len(arg) > 1 else sql
        if op == "$nin":
            return f"(NOT coalesce({sql}, FALSE))", params
        return sql, params
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
        t_sql, t_params = js.is_string(p)
        v_sql, v_params = js.string(p)
        l_sql, l_params = js.like(v_sql, arg, op == "$ilike")
        return f"({t_sql} AND {l_sql})", [*t_params, *v_params, *l_params]
    raise ValueError(f"field {key!r}: unknown filter operator {op!r}")  # pragma: no cover
