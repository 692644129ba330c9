"""Lexical search: the tokenizer of the recall index and a BM25 score over its postings.

The recall index (``recall_terms``, migration 0013) is an inverted index per tenant: one
row per (term, event) with the term's frequency in the event. Scoring happens here, over
the postings of the query's terms, so the statistics are exactly the tenant's (document
count, document frequency, average length: no other tenant's rows weigh in) and the score
is the same on Postgres and SQLite.

:func:`bm25` also widens each event by the terms of the turn before it (weight
``context``): a reply ("yes, last Tuesday") is found by the words of the question it
answers.

Example:
    >>> terms("Caroline's painting classes started!")
    ['caroline', 'paint', 'class', 'start']
    >>> postings = [("paint", ("s", 1), 1.0), ("paint", ("s", 3), 2.0)]
    >>> lengths = {("s", 1): 3.0, ("s", 2): 4.0, ("s", 3): 2.0}
    >>> scores = bm25({"paint": 1.0}, postings, lengths, n_docs=10, avg_length=3.0)
    >>> sorted(scores, key=scores.get, reverse=True)
    [('s', 3), ('s', 1)]
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping

__all__ = ["MAX_TERM", "STOPWORDS", "Key", "bm25", "stem", "term_counts", "terms"]

#: An event of the index: (session_id, seq).
Key = tuple[str, int]

#: Longest term kept (longer words are cut to it).
MAX_TERM = 48

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

#: Words too common to tell events apart (English function words and chat fillers).
STOPWORDS = frozenset(
    """a about after again against all also am an and any are as at be because been before
    being between both but by can could did do does doing done down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is
    it its itself just let lets me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours
    yourself yourselves im ive id ill youre youve youll hes shes its were weve theyre theyve
    dont doesnt didnt isnt arent wasnt werent havent hasnt hadnt wont wouldnt cant couldnt
    shouldnt thats whats theres heres lets oh hey hi hello yeah yes wow ok okay really thanks
    thank sure well like get got gonna also much many""".split()
)

_SUFFIXES = (
    ("ational", "ate"),
    ("iveness", "ive"),
    ("fulness", "ful"),
    ("ousness", "ous"),
    ("ization", "ize"),
    ("ingly", ""),
    ("edly", ""),
    ("ments", "ment"),
    ("ings", ""),
    ("ing", ""),
    ("ies", "y"),
    ("ied", "y"),
    ("sses", "ss"),
    ("es", "e"),
    ("ed", ""),
    ("ly", ""),
    ("s", ""),
)


def stem(word: str) -> str:
    """A light English stemmer: strips one common suffix from words long enough to keep a
    stem of three letters (``painting`` and ``painted`` give ``paint``).

    Example:
        >>> [stem(w) for w in ["painting", "painted", "paints", "classes", "stories", "is"]]
        ['paint', 'paint', 'paint', 'class', 'story', 'is']
    """
    if not word.isalpha() or len(word) < 4:
        return word
    for suffix, repl in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)] + repl
            if not repl and len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]  # "running" -> "run", "stopped" -> "stop"
            return base
    return word


def terms(text: str) -> list[str]:
    """The terms of ``text``, in order: words (any script) casefolded, apostrophes
    dropped, stopwords removed, stemmed, at most :data:`MAX_TERM` characters."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("'", "").replace("\u2019", "")
    out = []
    for word in _WORD.findall(folded):
        if word in STOPWORDS:
            continue
        out.append(stem(word)[:MAX_TERM])
    return out


def term_counts(text: str) -> Counter[str]:
    """How often each term occurs in ``text``."""
    return Counter(terms(text))


def bm25(
    query: Mapping[str, float],
    postings: Iterable[tuple[str, Key, float]],
    lengths: Mapping[Key, float],
    *,
    n_docs: int,
    avg_length: float,
    k1: float = 0.9,
    b: float = 0.4,
    context: float = 0.0,
) -> dict[Key, float]:
    """BM25 scores of the events that hold a query term.

    Args:
        query: term -> weight (1.0 for the query's own words).
        postings: (term, event, frequency) for every event of the tenant holding a query
            term.
        lengths: the events' lengths (terms counted); those of the neighbours of the
            posted events too, when ``context`` > 0.
        n_docs: events of the tenant; ``avg_length``: their average length.
        k1, b: BM25's term-frequency saturation and length normalization.
        context: an event also holds the terms of the event before it in its session
            (``seq - 1``) at this weight (0: off).
    """
    # (The loops below are the search's hottest Python: plain dict operations, each
    # term's sum in the same order as the postings'.)
    tf: dict[str, dict[Key, float]] = {}
    for term, key, freq in postings:
        if term in query:
            own = tf.get(term)
            if own is None:
                own = tf[term] = {}
            own[key] = own.get(key, 0.0) + float(freq)
    avg = max(avg_length * (1.0 + context), 1e-9)
    # BM25's length normalization of each event, computed once (not once per term).
    norms: dict[Key, float] = {}
    scale = k1 * b / avg
    base = k1 * (1.0 - b)
    scores: dict[Key, float] = {}
    get_length = lengths.get
    for term, own in tf.items():
        widened: dict[Key, float] = own
        if context > 0:
            widened = dict(own)
            for (session, seq), freq in own.items():
                after = (session, seq + 1)
                if after in lengths:
                    widened[after] = widened.get(after, 0.0) + context * freq
        df = len(widened)
        idf = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
        weight = idf * query[term] * (k1 + 1.0)
        for key, freq in widened.items():
            norm = norms.get(key)
            if norm is None:
                length = get_length(key, avg_length)
                if context > 0:
                    length += context * get_length((key[0], key[1] - 1), 0.0)
                norm = norms[key] = base + scale * length
            scores[key] = scores.get(key, 0.0) + weight * freq / (freq + norm)
    return scores
