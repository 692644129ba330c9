r"""JSON that round-trips any Python string exactly, and refuses what JSON cannot hold.

Postgres ``text`` and ``jsonb`` reject the NUL character and UTF-8 cannot carry a lone
surrogate, yet both are valid in a Python ``str``. :func:`dumps` writes JSON that holds
either as a ``\u`` escape, so the stored text has neither; :func:`loads` restores them.

The rules every memory class inherits (both backends alike):

* **Exact round trip**: ``loads(dumps(v)) == v`` for every string, key and number JSON
  can hold, including NUL, lone surrogates, and two surrogate code points written one
  after the other (``"\ud83d\ude00"`` stays two characters; ``"😀"`` stays one).
  Tuples come back as lists (JSON has only arrays).
* **NaN and infinity are refused** at write time with a ``ValueError`` naming where the
  value sits (JSON has no such numbers; Postgres rejects them, and a value that only one
  backend accepts is not a value that round-trips). Store them as strings or ``None``.

How surrogates are written: in text that needs escapes, every surrogate code point is a
``\uDXXX`` escape with upper-case hex digits, and every other character is written as
itself. An upper-case surrogate escape is one code point; lower-case escapes (which this
module wrote before, and which any other JSON writer may write) follow JSON's rule, a
high and a low surrogate escape in a row being one character.

Example:
    >>> s = dumps({"text": "a\x00b\ud800"})
    >>> "\x00" in s
    False
    >>> loads(s) == {"text": "a\x00b\ud800"}
    True
    >>> len(loads(dumps("\ud83d\ude00")))
    2
    >>> dumps({"score": float("nan")})
    Traceback (most recent call last):
    ...
    ValueError: value['score'] is nan: JSON has no NaN or infinity (store it as a string or None)
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["check_exact", "check_finite", "clean_text", "dumps", "dumps_exact", "loads"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
# An upper-case high surrogate escape directly followed by a low surrogate escape, after an
# odd number of backslashes: the one spelling that json.loads would wrongly join.
_SPLIT_PAIR = re.compile(r"(?<!\\)(?:\\\\)*\\uD[89AB][0-9A-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_UPPER_SURROGATE = re.compile(r"(?<!\\)((?:\\\\)*)\\u(D[89A-F][0-9A-F]{2})")


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04X}"


def dumps(value: Any, *, name: str = "value") -> str:
    """Serialize ``value`` to compact JSON text that any database text column accepts.

    Values JSON cannot represent raise (nothing is silently converted): ``TypeError`` for
    objects JSON has no form for, ``ValueError`` for NaN and infinity, naming the path
    from ``name`` (e.g. ``metadata['score']``)."""
    try:
        text = _encoder.encode(value)
    except ValueError:
        check_finite(value, name)
        raise
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (in a string or a key): escape it
        text = _SURROGATE.sub(_escape_surrogate, text)
    return text


def check_finite(value: Any, name: str = "value") -> None:
    """Raise ``ValueError`` naming the first NaN or infinity inside ``value`` (dicts, lists
    and tuples are searched; the path starts with ``name``).

    Example:
        >>> check_finite({"a": [1.0, float("-inf")]}, "metadata")
        Traceback (most recent call last):
        ...
        ValueError: metadata['a'][1] is -inf: JSON has no NaN or infinity (store it as a string or None)
    """
    stack: list[tuple[Any, str]] = [(value, name)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(_non_finite(path, item))
        elif isinstance(item, dict):
            stack.extend((v, f"{path}[{k!r}]") for k, v in reversed(list(item.items())))
        elif isinstance(item, (list, tuple)):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(item))))


def _non_finite(path: str, item: float) -> str:
    return f"{path} is {item!r}: JSON has no NaN or infinity (store it as a string or None)"


_decode = json.JSONDecoder().decode


def loads(value: Any) -> Any:
    """Parse JSON text; values a driver already parsed (Postgres ``json``) pass through."""
    if type(value) is not str:
        if not isinstance(value, (str, bytes, bytearray)):
            return value
        value = value.decode("utf-8") if not isinstance(value, str) else value
    first = value.find("\\")  # a one-character search is the fast one
    if first >= 0 and value.find("\\uD", first) >= 0 and _SPLIT_PAIR.search(value, first):
        return _loads_split_pairs(value)
    return _decode(value)


def _loads_split_pairs(text: str) -> Any:
    """Parse text holding upper-case surrogate escapes that json.loads would join: each
    becomes a marker (a character absent from the value, followed by the hex digits),
    then the markers are replaced in every string and key."""
    plain = json.loads(text)
    present: set[str] = set()
    _strings(plain, present)
    marker = next(chr(c) for c in range(0xF0000, 0x10FFFE) if all(chr(c) not in s for s in present))
    escaped = json.dumps(marker, ensure_ascii=False)[1:-1]  # the character itself
    marked = json.loads(_UPPER_SURROGATE.sub(lambda m: m.group(1) + escaped + m.group(2), text))
    pattern = re.compile(re.escape(marker) + "(D[89A-F][0-9A-F]{2})")
    return _restore(marked, lambda s: pattern.sub(lambda m: chr(int(m.group(1), 16)), s))


def _strings(value: Any, out: set[str]) -> None:
    if isinstance(value, str):
        out.add(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            out.add(k)
            _strings(v, out)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out)


def _restore(value: Any, fix: Any) -> Any:
    if isinstance(value, str):
        return fix(value)
    if isinstance(value, dict):
        return {fix(k): _restore(v, fix) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, fix) for v in value]
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
            raise ValueError(_non_finite(path, item))
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
