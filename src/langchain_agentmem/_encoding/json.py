"""JSON that round-trips any Python string exactly.

Postgres ``text`` and ``jsonb`` reject the NUL character and UTF-8 cannot carry a lone
surrogate, yet both are valid in a Python ``str``. :func:`dumps` writes JSON that holds
either as a ``\\u`` escape, so the stored text has neither; :func:`loads` restores them.

Example:
    >>> s = dumps({"text": "a\\x00b\\ud800"})
    >>> "\\x00" in s
    False
    >>> loads(s) == {"text": "a\\x00b\\ud800"}
    True
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["check_exact", "clean_text", "dumps", "dumps_exact", "loads"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_ascii_encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Serialize ``value`` to compact JSON text that any database text column accepts.
    Values JSON cannot represent raise ``TypeError`` (nothing is silently converted)."""
    text = _encoder.encode(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escape everything outside ASCII
        text = _ascii_encoder.encode(value)
    return text


def loads(value: Any) -> Any:
    """Parse JSON text; values a driver already parsed (Postgres ``json``) pass through."""
    if isinstance(value, (str, bytes, bytearray)):
        return json.loads(value)
    return value


def clean_text(value: str) -> str:
    """A copy of ``value`` that a Postgres ``text`` column accepts, for derived columns
    (search text) only: NUL becomes U+FFFD and lone surrogates become U+FFFD. The exact
    value is always kept elsewhere, in JSON written by :func:`dumps`."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = _SURROGATE.sub("\ufffd", value)
    return value


def check_exact(value: Any, what: str = "value") -> None:
    """Raise unless ``value`` reads back from JSON equal and of the same types: ``None``,
    ``bool``, ``int``, finite ``float``, ``str``, ``list`` and ``dict`` with ``str`` keys,
    nested. ``TypeError`` for other types (a tuple would read back as a list, an ``int``
    key as a ``str``), ``ValueError`` for NaN, infinities and a value that contains
    itself. ``what`` names the value in the message."""
    _check(value, what, set())


def _check(item: Any, path: str, parents: set[int]) -> None:
    if item is None or isinstance(item, (bool, int, str)):
        return
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError(f"{path} is {item!r}: JSON has no NaN or infinity")
        return
    if not isinstance(item, (list, dict)):
        hint = " (use a list)" if isinstance(item, tuple) else ""
        raise TypeError(
            f"{path} is a {type(item).__name__}{hint}: expected JSON (None, bool, int, "
            "float, str, list, or dict with str keys)"
        )
    if id(item) in parents:
        raise ValueError(f"{path} contains itself: JSON cannot hold a cycle")
    parents.add(id(item))
    if isinstance(item, list):
        for i, v in enumerate(item):
            _check(v, f"{path}[{i}]", parents)
    else:
        for k, v in item.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"{path} has the key {k!r} of type {type(k).__name__}: "
                    "JSON object keys are strings"
                )
            _check(v, f"{path}[{k!r}]", parents)
    parents.discard(id(item))


def dumps_exact(value: Any, what: str = "value") -> str:
    """:func:`dumps` of a value that :func:`check_exact` accepts (else its error)."""
    check_exact(value, what)
    return dumps(value)
