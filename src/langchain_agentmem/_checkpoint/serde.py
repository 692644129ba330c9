"""Faster writing and reading of checkpoints that share values.

The channel values of consecutive checkpoints mostly repeat: a message list grows by a
message or two per step, yet each version is the whole list again, so a saver that
serializes every message at every step and rebuilds every message (a pydantic model) at
every read spends most of a graph's time there (LangGraph's own savers do). A
:class:`ValueMemo` per saver remembers each message's encoding by the object (checked
against a copy of its fields, so an edit in place is never lost) and builds each distinct
encoded message once, handing out independent copies; :class:`MemoLoader` reads values
through it.
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import ormsgpack
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel

try:  # DeltaChannel (LangGraph beta): a snapshot wraps the channel's whole value
    from langgraph.checkpoint.serde.jsonplus import EXT_DELTA_SNAPSHOT
    from langgraph.checkpoint.serde.types import _DeltaSnapshot
except ImportError:  # pragma: no cover - LangGraph before DeltaChannel
    EXT_DELTA_SNAPSHOT, _DeltaSnapshot = None, None  # type: ignore[misc,assignment]

__all__ = ["MemoLoader", "ValueMemo", "ext_bytes", "paused_gc", "plain_copy"]

_gc_lock = threading.Lock()
_gc_users = 0
_gc_was_enabled = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a page of checkpoints is built.

    Loading a thread's history allocates many objects that all survive (its messages),
    which makes the collector run over and over, with nothing to free: about 60% of the
    time of a listing. Nested and concurrent uses share one pause; the collector is
    enabled again only if it was enabled before the first one.
    """
    global _gc_users, _gc_was_enabled
    with _gc_lock:
        if _gc_users == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_was_enabled:
                gc.enable()


_set = object.__setattr__

#: Immutable leaf types of a "plain" value tree (see :func:`plain_copy`).
_ATOMS = frozenset({str, int, float, bool, type(None), bytes})
#: Returned by :func:`plain_copy` for a tree holding anything else.
NOT_PLAIN: Any = object()


def plain_copy(value: Any) -> Any:
    """A copy of a tree of dicts, lists and tuples over immutable leaves (str, numbers,
    bool, None, bytes) that shares no container with ``value``; :data:`NOT_PLAIN` when
    the tree holds anything else (whose in-place changes a copy could not isolate).

    Example:
        >>> tree = {"a": [1, {"b": "c"}], "d": (None,)}
        >>> copy_ = plain_copy(tree)
        >>> copy_ == tree, copy_["a"] is tree["a"], copy_["a"][1] is tree["a"][1]
        (True, False, False)
        >>> plain_copy({"when": object()}) is NOT_PLAIN
        True
    """
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) not in _ATOMS:
                return NOT_PLAIN
            item = item if type(item) in _ATOMS else plain_copy(item)
            if item is NOT_PLAIN:
                return NOT_PLAIN
            out[key] = item
        return out
    if kind is list or kind is tuple:
        items = []
        for item in value:
            item = item if type(item) in _ATOMS else plain_copy(item)
            if item is NOT_PLAIN:
                return NOT_PLAIN
            items.append(item)
        return items if kind is list else tuple(items)
    return NOT_PLAIN


_model_types: dict[type, bool] = {}


def _is_model(cls: type) -> bool:
    """``issubclass(cls, BaseModel)``, remembered (pydantic's ``isinstance`` check runs
    Python code on every call)."""
    try:
        return _model_types[cls]
    except KeyError:
        result = _model_types[cls] = issubclass(cls, BaseModel)
        return result


def _model_state(obj: BaseModel) -> tuple[Any, Any] | None:
    """Plain copies of what a model's serialization depends on (its fields and extras),
    or ``None`` when they are not plain."""
    fields = plain_copy(obj.__dict__)
    extra = obj.__pydantic_extra__
    extra = None if extra is None else plain_copy(extra)
    if fields is NOT_PLAIN or extra is NOT_PLAIN:
        return None
    return fields, extra


def _copier(value: Any) -> Any:
    """A function returning a new plain copy of the (plain) container ``value``."""
    if not value:
        return type(value) if type(value) is not tuple else tuple
    frozen = marshal.dumps(value)  # marshal rebuilds plain trees in C
    return lambda: marshal.loads(frozen)


class _Proto:
    """A model built from stored bytes, never handed out, and how to copy it fast."""

    __slots__ = ("cls", "ext", "extra", "fields", "fields_set", "private", "state")

    def __init__(self, obj: BaseModel, state: tuple[Any, Any], ext: bytes) -> None:
        self.cls, self.state, self.ext = obj.__class__, state, ext
        self.fields = [(k, _copier(v)) for k, v in state[0].items() if type(v) not in _ATOMS]
        self.extra = None if state[1] is None else _copier(state[1])
        self.fields_set = frozenset(obj.__pydantic_fields_set__)
        self.private = obj.__pydantic_private__

    def copy(self) -> BaseModel:
        """A new model equal to the prototype that shares no mutable container with it."""
        new = self.cls.__new__(self.cls)
        fields = self.state[0].copy()
        for key, copier in self.fields:
            fields[key] = copier()
        _set(new, "__dict__", fields)
        _set(new, "__pydantic_fields_set__", set(self.fields_set))
        _set(new, "__pydantic_extra__", None if self.extra is None else self.extra())
        _set(new, "__pydantic_private__", None if self.private is None else dict(self.private))
        return new


def ext_bytes(code: int, data: bytes) -> bytes:
    """The msgpack encoding of an extension value (what ``ormsgpack.Ext(code, data)``
    packs to).

    Example:
        >>> all(ext_bytes(5, b"x" * n) == ormsgpack.packb(ormsgpack.Ext(5, b"x" * n))
        ...     for n in (1, 2, 3, 4, 8, 16, 17, 255, 256, 65535, 65536))
        True
    """
    n = len(data)
    fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}.get(n)
    if fixed is not None:
        head = bytes([fixed, code])
    elif n < 1 << 8:
        head = bytes([0xC7, n, code])
    elif n < 1 << 16:
        head = b"\xc8" + n.to_bytes(2, "big") + bytes([code])
    else:
        head = b"\xc9" + n.to_bytes(4, "big") + bytes([code])
    return head + data


#: ValueMemo drops the entries of dead messages once it holds at least this many.
_SWEEP_MIN = 4096
#: Lists (thread channels) whose last encoding ValueMemo.encode_list keeps.
_LAST_LISTS = 256


class ValueMemo:
    """What one saver remembers of the values it wrote and read, so that a growing
    message list is not serialized and rebuilt whole at every step.

    * ``encode``: the msgpack encoding of a pydantic model (a message) by the object's
      identity, reused only while the object's fields still equal a plain copy taken when
      it was encoded: an edit in place (``msg.content = ...``,
      ``msg.additional_kwargs["k"] = v``) is seen and encodes again. Not seen: a value
      replaced by an equal one of another type (``1`` by ``1.0`` or ``True``).
    * decoding: each extension object (a message) is built once from its bytes; every
      reader gets its own copy that shares no container with the cached one, so changing
      a value read never changes what the next read returns. A copy handed out is
      remembered with its bytes, so writing it back unchanged encodes nothing.

    Only models whose fields are plain trees (dicts, lists, str, numbers, None) take
    part; anything else is encoded and built every time. Both caches hold at most
    ``max_bytes`` of encodings each, oldest dropped first.

    Example:
        >>> from langchain_core.messages import AIMessage
        >>> serde = JsonPlusSerializer()
        >>> memo = ValueMemo(1 << 20)
        >>> msg = AIMessage("hi")
        >>> memo.encode(serde, msg) == serde.dumps_typed(msg)
        True
        >>> msg.content = "edited"
        >>> memo.encode(serde, msg) == serde.dumps_typed(msg)
        True
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        # id(obj) -> (weak reference to obj, its plain state when encoded, encoding). An
        # entry never keeps a message alive; entries of dead messages (whose ids a new
        # object may take: the reference tells) are dropped whenever the entries have
        # doubled since the last time, and oldest first with the others.
        self._encoded: dict[int, tuple[weakref.ref[Any], tuple[Any, Any], bytes]] = {}
        self._encoded_bytes = 0
        self._sweep_at = _SWEEP_MIN  # entries counted when dead ones are next dropped
        # key -> the last list encode_list encoded under it (see there)
        self._last: dict[Any, tuple[list[Any], ...]] = {}
        # (ext code, ext data) -> how to copy the object it builds
        self._built: dict[tuple[int, bytes], _Proto] = {}
        self._built_bytes = 0

    def encode(self, serde: SerializerProtocol, value: Any) -> tuple[str, bytes]:
        """``serde.dumps_typed(value)``, from memory when ``value`` is a model this memo
        encoded (or handed out) and has not changed since."""
        if self.max_bytes <= 0 or not _is_model(type(value)):
            return serde.dumps_typed(value)
        type_, data, _ = self._encode_model(serde, value)
        return type_, data

    def _encode_model(
        self, serde: SerializerProtocol, value: Any
    ) -> tuple[str, bytes, tuple[Any, Any] | None]:
        entry = self._encoded.get(id(value))
        if entry is not None:
            alive, state = entry[0](), entry[1]
            if (
                alive is not None
                and alive is value
                and alive.__dict__ == state[0]
                and alive.__pydantic_extra__ == state[1]
            ):
                return "msgpack", entry[2], state
        type_, data = serde.dumps_typed(value)
        state_now = _model_state(value) if type_ == "msgpack" else None
        if state_now is not None:
            self._remember([(value, state_now, data)])
        return type_, data, state_now

    def encode_list(
        self, serde: SerializerProtocol, values: list[Any], key: Any = None
    ) -> list[bytes] | None:
        """The msgpack encoding of each element of ``values`` (as :meth:`encode`), or
        ``None`` when one of them does not encode as msgpack.

        With ``key`` (a thread's channel), the list last encoded under that key is kept
        (ids, types and field copies of its models): a new version that starts with the
        same, unchanged objects, which is how LangGraph's message lists grow, checks them
        with a few list comparisons in C instead of one by one.
        """
        if self.max_bytes <= 0:
            key = None
        last = self._last.get(key) if key is not None else None
        n = 0
        if last is not None:
            ids, types, fields, extras, encodings = last
            n = min(len(ids), len(values))
            head = values[:n]
            if not (
                [id(v) for v in head] == ids[:n]
                and [type(v) for v in head] == types[:n]
                and [v.__dict__ for v in head] == fields[:n]
                and [v.__pydantic_extra__ for v in head] == extras[:n]
            ):
                n = 0
        out: list[bytes] = []
        states: list[tuple[Any, Any]] | None = [] if key is not None else None
        memo = self.max_bytes > 0
        for value in values[n:] if n else values:
            if memo and _is_model(type(value)):
                type_, data, state = self._encode_model(serde, value)
            else:
                type_, data = serde.dumps_typed(value)
                state = None
            if type_ != "msgpack":
                return None
            out.append(data)
            if states is not None:
                if state is None:
                    states = None
                else:
                    states.append(state)
        if key is not None:
            self._keep_last(key, values, n, last, out, states)
        return out if not n else [*last[4][:n], *out]  # type: ignore[index]

    def _keep_last(
        self,
        key: Any,
        values: list[Any],
        n: int,
        last: tuple[list[Any], ...] | None,
        out: list[bytes],
        states: list[tuple[Any, Any]] | None,
    ) -> None:
        if states is None:  # not all plain models: nothing to compare next time
            self._last.pop(key, None)
            return
        tail = values[n:]
        entry = (
            [id(v) for v in tail],
            [type(v) for v in tail],
            [s[0] for s in states],
            [s[1] for s in states],
            out,
        )
        if n and last is not None:
            entry = tuple(old[:n] + new for old, new in zip(last, entry, strict=True))  # type: ignore[assignment,operator]
        with self._lock:
            self._last.pop(key, None)
            self._last[key] = entry
            while len(self._last) > _LAST_LISTS:
                del self._last[next(iter(self._last))]

    def _remember(self, items: list[tuple[Any, tuple[Any, Any], bytes]]) -> None:
        """Remember ``(object, state, encoding)`` items, oldest entries dropped first."""
        try:
            entries = [(id(obj), (weakref.ref(obj), state, data)) for obj, state, data in items]
        except TypeError:  # a model without weak references: not remembered
            return
        with self._lock:
            encoded = self._encoded
            size = self._encoded_bytes
            for key, entry in entries:
                old = encoded.pop(key, None)
                if old is not None:
                    size -= len(old[2])
                encoded[key] = entry
                size += len(entry[2])
            if len(encoded) >= self._sweep_at:  # drop the entries of dead messages
                live = {key: entry for key, entry in encoded.items() if entry[0]() is not None}
                self._encoded = encoded = live
                size = sum(len(entry[2]) for entry in live.values())
                self._sweep_at = max(_SWEEP_MIN, 2 * len(live))
            while size > self.max_bytes and encoded:
                size -= len(encoded.pop(next(iter(encoded)))[2])
            self._encoded_bytes = size

    def build(self, hook: Any, code: int, data: bytes, handed: list[Any] | None = None) -> Any:
        """The object of one msgpack extension, built by ``hook`` once and copied after;
        a copy is added to ``handed`` with its state and encoding, for
        :meth:`_remember`."""
        if self.max_bytes <= 0:
            return hook(code, data)
        key = (code, data)
        proto = self._built.get(key)
        if proto is None:
            obj = hook(code, data)
            state = _model_state(obj) if _is_model(type(obj)) else None
            if state is None:
                return obj
            proto = _Proto(obj, state, ext_bytes(code, data))
            with self._lock:
                if key not in self._built:
                    self._built[key] = proto
                    self._built_bytes += len(data)
                    while self._built_bytes > self.max_bytes and self._built:
                        oldest = next(iter(self._built))
                        del self._built[oldest]
                        self._built_bytes -= len(oldest[1])
        new = proto.copy()
        if handed is not None:
            handed.append((new, proto.state, proto.ext))
        return new


class MemoLoader:
    """``loads_typed`` that builds each extension object (a message) through a
    :class:`ValueMemo`: once per distinct encoding, then as independent copies.

    Only LangGraph's ``JsonPlusSerializer`` (and subclasses that keep its ``loads_typed``)
    is sped up this way, through its own extension hook (so its allow-list applies
    unchanged); any other serializer, including ``EncryptedSerializer``, loads as usual.

    Example:
        >>> from langchain_core.messages import AIMessage
        >>> serde = JsonPlusSerializer()
        >>> loader = MemoLoader(serde, ValueMemo(1 << 20))
        >>> one = loader.loads(*serde.dumps_typed([AIMessage("hi")]))
        >>> two = loader.loads(*serde.dumps_typed([AIMessage("hi"), AIMessage("yo")]))
        >>> one[0] == two[0] and one[0] is not two[0]
        True
    """

    def __init__(
        self, serde: SerializerProtocol, memo: ValueMemo, *, remember: bool = False
    ) -> None:
        self.serde = serde
        self.memo = memo
        self.remember = remember
        self._hook: Any = None
        if (
            isinstance(serde, JsonPlusSerializer)
            and type(serde).loads_typed is JsonPlusSerializer.loads_typed
        ):
            self._hook = serde._unpack_ext_hook

    def loads(self, type_: str, data: bytes | None) -> Any:
        if self._hook is None or type_ != "msgpack" or data is None:
            return self.serde.loads_typed((type_, data if data is not None else b""))
        build, hook = self.memo.build, self._hook
        handed: list[Any] | None = [] if self.remember else None

        def ext(code: int, ext_data: bytes) -> Any:
            if code == EXT_DELTA_SNAPSHOT:
                # LangGraph's hook would build the messages inside with its own hook.
                return _DeltaSnapshot(
                    ormsgpack.unpackb(ext_data, ext_hook=ext, option=ormsgpack.OPT_NON_STR_KEYS)
                )  # type: ignore[misc]
            return build(hook, code, ext_data, handed)

        value = ormsgpack.unpackb(data, ext_hook=ext, option=ormsgpack.OPT_NON_STR_KEYS)
        if handed:
            self.memo._remember(handed)
        return value
