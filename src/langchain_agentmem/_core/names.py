"""Normalized names: how "Bob", " bob " and "BOB" become one entity or graph node key."""

from __future__ import annotations

import re

__all__ = ["normalize", "normalize_relation", "candidate_names"]

_WORD = re.compile(r"[\w'’-]+", re.UNICODE)
_POSSESSIVE = re.compile(r"['’]s$")


def normalize(name: str) -> str:
    """The key of a name: case-folded, whitespace collapsed.

    Example:
        >>> normalize("  Bob   SMITH ")
        'bob smith'
    """
    if not isinstance(name, str):
        raise TypeError(f"expected a name as str, got {type(name).__name__}: {name!r}")
    key = " ".join(name.casefold().split())
    if not key:
        raise ValueError(f"expected a non-empty name, got {name!r}")
    return key


def normalize_relation(relation: str) -> str:
    """A relation label: lower case, words joined by ``_``.

    Example:
        >>> normalize_relation("Lives In")
        'lives_in'
    """
    if not isinstance(relation, str):
        raise TypeError(f"expected a relation as str, got {type(relation).__name__}: {relation!r}")
    key = "_".join(relation.casefold().replace("-", " ").replace("_", " ").split())
    if not key:
        raise ValueError(f"expected a non-empty relation, got {relation!r}")
    return key


def candidate_names(text: str, max_words: int = 4) -> list[str]:
    """Every run of 1..``max_words`` consecutive words of ``text``, normalized: the names
    a known entity could be mentioned by. Used to find known entities without a model.

    Example:
        >>> candidate_names("Bob Smith met Ann", 2)
        ['bob', 'bob smith', 'smith', 'smith met', 'met', 'met ann', 'ann']
    """
    words = [_POSSESSIVE.sub("", w.casefold()).strip("'’-") for w in _WORD.findall(text)]
    words = [w for w in words if w]
    out: list[str] = []
    seen: set[str] = set()
    for i in range(len(words)):
        for n in range(1, max_words + 1):
            if i + n > len(words):
                break
            name = " ".join(words[i : i + n])
            if name not in seen:
                seen.add(name)
                out.append(name)
    return out
