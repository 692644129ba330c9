r"""Keys (user ids, session ids, namespaces, document keys) that hold any string.

Postgres ``text`` rejects NUL and UTF-8 cannot carry a lone surrogate. :func:`encode_key`
maps every string to one that both backends store, leaving ordinary strings unchanged:
``\`` becomes ``\\``, NUL becomes ``\0``, a lone surrogate becomes ``\uXXXX``. The mapping is
injective and keeps prefixes (each escape is a prefix-free code), so prefix queries on
encoded keys match exactly the keys with that prefix.

A stored key is at most :data:`MAX_KEY_BYTES` (512) bytes of UTF-8, on both backends: a
Postgres index entry holds at most 2,704 bytes, and a primary key holds up to four keys
(tenant, thread, checkpoint namespace, ...). A longer key raises ``ValueError`` here, the
one place every key passes through, before anything is written. Escapes count as stored:
NUL and ``\`` two bytes each, a lone surrogate six.

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

__all__ = ["MAX_KEY_BYTES", "check_key_size", "decode_key", "encode_key"]

#: The longest stored key, in bytes of UTF-8 (see the module docstring).
MAX_KEY_BYTES = 512

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
    stored = _NEEDS.sub(_escape, value) if _NEEDS.search(value) else value
    if len(stored) > MAX_KEY_BYTES // 4:  # below that, even 4-byte characters fit
        check_key_size(stored)
    return stored


def check_key_size(stored: str) -> str:
    """Return ``stored`` (an encoded key, or several joined into one column) if it fits in
    :data:`MAX_KEY_BYTES`, else raise ``ValueError``.

    Example:
        >>> check_key_size("x" * 600)
        Traceback (most recent call last):
        ...
        ValueError: key too long: 600 bytes in UTF-8 (starting 'xxxxxxxxxxxxxxxxxxxx'), at most 512 bytes: ids, keys, namespaces, session and thread ids and user ids are limited to 512 bytes on every backend
    """
    size = len(stored.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise ValueError(
            f"key too long: {size} bytes in UTF-8 (starting {stored[:20]!r}), at most "
            f"{MAX_KEY_BYTES} bytes: ids, keys, namespaces, session and thread ids and user "
            f"ids are limited to {MAX_KEY_BYTES} bytes on every backend"
        )
    return stored


def decode_key(value: str) -> str:
    """Inverse of :func:`encode_key`."""
    return _ESCAPED.sub(_unescape, value) if "\\" in value else value
