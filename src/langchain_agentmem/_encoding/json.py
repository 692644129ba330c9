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
import re
from typing import Any

__all__ = ["dumps", "loads", "clean_text"]

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
