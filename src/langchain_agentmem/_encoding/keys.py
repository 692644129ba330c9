r"""Keys (user ids, session ids, namespaces, document keys) that hold any string.

Postgres ``text`` rejects NUL and UTF-8 cannot carry a lone surrogate. :func:`encode_key`
maps every string to one that both backends store, leaving ordinary strings unchanged:
``\`` becomes ``\\``, NUL becomes ``\0``, a lone surrogate becomes ``\uXXXX``. The mapping is
injective and keeps prefixes (each escape is a prefix-free code), so prefix queries on
encoded keys match exactly the keys with that prefix.

Example:
    >>> encode_key("plain id")
    'plain id'
    >>> encode_key("a\\b\x00c")
    'a\\\\b\\0c'
    >>> decode_key(encode_key("a\\b\x00c\ud800")) == "a\\b\x00c\ud800"
    True
"""

from __future__ import annotations

import re

__all__ = ["encode_key", "decode_key"]

_NEEDS = re.compile("[\\\\\x00\ud800-\udfff]")
_ESCAPED = re.compile(r"\\(\\|0|u[0-9a-f]{4})")


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    if ch == "\\":
        return "\\\\"
    if ch == "\x00":
        return "\\0"
    return f"\\u{ord(ch):04x}"


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code == "\\":
        return "\\"
    if code == "0":
        return "\x00"
    return chr(int(code[1:], 16))


def encode_key(value: str) -> str:
    """The stored form of a key; ``TypeError`` unless ``value`` is a ``str``."""
    if not isinstance(value, str):
        raise TypeError(f"expected a str key, got {type(value).__name__}: {value!r}")
    return _NEEDS.sub(_escape, value) if _NEEDS.search(value) else value


def decode_key(value: str) -> str:
    """Inverse of :func:`encode_key`."""
    return _ESCAPED.sub(_unescape, value) if "\\" in value else value
