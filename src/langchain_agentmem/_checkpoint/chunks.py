"""Growing lists stored as chunks: each version of a message list stores only what it adds.

A LangGraph message list grows by a message or two per step, and every version of the
channel is the whole list again: stored as one blob per version, a thread of n steps
holds O(n^2) bytes and every step writes the whole list. Here a list value whose elements
all serialize to msgpack is stored as a chain of chunks, each the concatenated msgpack
encodings of some elements (a msgpack array is its header followed by its elements'
encodings, so the chunks of a version, joined under one header, are exactly the bytes the
serializer would have written for the list).

The saver remembers, per thread namespace and channel, the chunks of the last version it
wrote and their element encodings. A new version reuses the longest run of whole chunks
whose elements are byte-for-byte the new list's first elements (compared as bytes, so a
message edited in place is never mistaken for the old one) and writes one chunk with the
rest; every ``MAX_CHUNKS`` chunks, or when nothing can be reused (a new process, a fork
that rewrote the list), it writes the whole list as one chunk again. A chunk's blob row has
``type`` ``chunk:[index, count, [earlier chunk versions]]``, the last chunk's version being
the channel's version. A checkpoint also lists the earlier chunks it knows of under
``agentmem_chunks`` (version -> channel) so that one query fetches them; chunks it does not
list are fetched by a second query.

Example:
    >>> from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
    >>> serde = JsonPlusSerializer()
    >>> value = [1, "two", [3], {"four": 4.0}]
    >>> parts = element_bytes(serde, value)
    >>> array_header(4) + b"".join(parts) == serde.dumps_typed(value)[1]
    True
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

__all__ = [
    "Chunk",
    "ChunkCache",
    "array_header",
    "chunk_type",
    "chunkable",
    "element_bytes",
    "is_chunk",
    "parse_chunk_type",
    "plan_chunks",
]

#: Lists shorter than this are stored whole.
MIN_ELEMENTS = 4
#: A version made of this many chunks is written whole instead.
MAX_CHUNKS = 16
PREFIX = "chunk:"


@dataclass(frozen=True)
class Chunk:
    version: str
    index: int
    elements: tuple[bytes, ...]


def array_header(n: int) -> bytes:
    """The msgpack header of an array of ``n`` elements."""
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def chunkable(serde: SerializerProtocol) -> bool:
    """Whether values of ``serde`` are plain msgpack (LangGraph's JsonPlusSerializer)."""
    return (
        isinstance(serde, JsonPlusSerializer)
        and type(serde).dumps_typed is JsonPlusSerializer.dumps_typed
    )


def element_bytes(
    serde: SerializerProtocol,
    value: Any,
    encode_list: Callable[[SerializerProtocol, list[Any]], list[bytes] | None] | None = None,
) -> list[bytes] | None:
    """The msgpack encoding of each element of a list value, or ``None`` when the value
    is not a list of at least ``MIN_ELEMENTS`` elements that all encode as msgpack.
    ``encode_list(serde, value)`` does the encoding when given (a memo)."""
    if type(value) is not list or len(value) < MIN_ELEMENTS:
        return None
    if encode_list is not None:
        return encode_list(serde, value)
    out = []
    for element in value:
        type_, data = serde.dumps_typed(element)
        if type_ != "msgpack":
            return None
        out.append(data)
    return out


def chunk_type(chunk: Chunk, chain: list[Chunk]) -> str:
    """The ``type`` of a chunk's blob row: its index, element count and the versions of
    the chunks before it (so that reading and clean-up need nothing else)."""
    return PREFIX + json.dumps(
        [chunk.index, len(chunk.elements), [c.version for c in chain[: chunk.index]]],
        separators=(",", ":"),
    )


def parse_chunk_type(type_: str) -> tuple[int, int, list[str]]:
    """``(index, count, earlier chunk versions)`` of a chunk blob's ``type``."""
    index, count, earlier = json.loads(type_[len(PREFIX) :])
    return int(index), int(count), [str(v) for v in earlier]


def is_chunk(type_: str | None) -> bool:
    return type_ is not None and type_.startswith(PREFIX)


def plan_chunks(
    previous: list[Chunk] | None, version: str, elements: list[bytes]
) -> tuple[list[Chunk], Chunk | None]:
    """The chunks of a new version of a list, and the one chunk to write (``None`` when
    the previous chunks already hold exactly this version)."""
    reused: list[Chunk] = []
    pos = 0
    if previous:
        for chunk in previous:
            n = len(chunk.elements)
            if pos + n <= len(elements) and tuple(elements[pos : pos + n]) == chunk.elements:
                reused.append(chunk)
                pos += n
            else:
                break
        if reused and reused[-1].version == version:
            if pos == len(elements) and len(reused) == len(previous):
                return reused, None
            reused, pos = [], 0  # the version exists with other content: write it whole
    rest = len(elements) - pos
    if not reused or len(reused) + 1 > MAX_CHUNKS or rest > pos:
        whole = Chunk(version, 0, tuple(elements))
        return [whole], whole
    new = Chunk(version, len(reused), tuple(elements[pos:]))
    return [*reused, new], new


class ChunkCache:
    """The chunks last written per (tenant, thread, namespace, channel), least recently
    used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, str, str, str], list[Chunk]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str, str]) -> list[Chunk] | None:
        with self._lock:
            chunks = self._data.get(key)
            if chunks is not None:
                self._data.move_to_end(key)
            return chunks

    def put(self, key: tuple[str, str, str, str], chunks: list[Chunk]) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = chunks
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def forget(self, uid: str, tid: str | None = None) -> None:
        """Drop what is cached for a thread (or every thread) of a tenant."""
        with self._lock:
            for key in [k for k in self._data if k[0] == uid and (tid is None or k[1] == tid)]:
                del self._data[key]
