"""Checks of the plain-text names the agent log and the skills registry store as they are
(skill names, versions, categories, agent names, tags, sources): dashboards read them in
views, so they hold no NUL and no lone surrogate, which a Postgres ``text`` column cannot
take and JSON-escaped text would show quoted.

Example:
    >>> plain("deploy", "skill name")
    'deploy'
    >>> plain("a\\x00b", "tag")
    Traceback (most recent call last):
    ...
    ValueError: tag 'a\\x00b' holds a NUL character: expected plain text (no NUL, no lone surrogate)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["importance", "plain", "plain_list"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_BYTES = 512


def plain(value: Any, what: str, *, optional: bool = False, max_bytes: int = _MAX_BYTES) -> Any:
    """``value`` if it is a non-empty ``str`` of plain text of at most ``max_bytes`` bytes
    of UTF-8 (``None`` too when ``optional``); else ``TypeError`` / ``ValueError``
    saying what was expected."""
    if type(value) is str and 0 < len(value) <= max_bytes // 4 and value.isprintable():
        return value  # the common case: no NUL, no surrogate (neither is printable), short
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}: {value!r:.80}")
    if not value:
        raise ValueError(f"{what} must not be empty")
    if "\x00" in value:
        raise ValueError(
            f"{what} {value!r:.80} holds a NUL character: expected plain text (no NUL, no lone surrogate)"
        )
    if _SURROGATE.search(value):
        raise ValueError(
            f"{what} {value!r:.80} holds a lone surrogate: expected plain text (no NUL, no lone surrogate)"
        )
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise ValueError(f"{what} is {size} bytes in UTF-8, at most {max_bytes}: {value[:20]!r}...")
    return value


def plain_list(values: Any, what: str) -> list[str]:
    """``values`` (any iterable of strings but a ``str``) as a list of :func:`plain`
    strings, duplicates dropped, order kept."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(
            f"{what} must be a list of str, got {type(values).__name__}: {values!r:.80}"
        )
    out: list[str] = []
    for v in values:
        v = plain(v, what[:-1] if what.endswith("s") else what)
        if v not in out:
            out.append(v)
    return out


def importance(value: Any) -> float | None:
    """An importance: ``None`` or a number from 0 to 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"importance must be a number from 0 to 1 or None, got {type(value).__name__}: {value!r}"
        )
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"importance must be from 0 to 1, got {value!r}")
    return float(value)
