"""Faster loading of many checkpoints that share values.

The channel values of consecutive checkpoints mostly repeat: a message list grows by a
message or two per step, yet each version is a whole serialized list, and rebuilding every
message (a pydantic model) dominates reading a thread's history. :class:`MemoLoader`
loads values with the saver's own serializer, but builds each distinct serialized object
(a msgpack extension: a message, a document, a date...) once per listing and hands out
shallow copies afterwards, so every checkpoint still gets its own objects at the top level.

Only LangGraph's ``JsonPlusSerializer`` (and subclasses that keep its ``loads_typed``) is
sped up this way, through its own extension hook (so its allow-list applies unchanged);
any other serializer, including ``EncryptedSerializer``, loads as usual.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import threading
from collections.abc import Iterator
from typing import Any

import ormsgpack
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel

__all__ = ["MemoLoader", "paused_gc"]

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


def _copy_model(obj: BaseModel) -> BaseModel:
    """What ``obj.model_copy()`` does (a shallow copy), without its Python overhead."""
    new = obj.__class__.__new__(obj.__class__)
    _set(new, "__dict__", obj.__dict__.copy())
    _set(new, "__pydantic_fields_set__", set(obj.__pydantic_fields_set__))
    extra = obj.__pydantic_extra__
    _set(new, "__pydantic_extra__", None if extra is None else dict(extra))
    private = obj.__pydantic_private__
    _set(new, "__pydantic_private__", None if private is None else dict(private))
    return new


class MemoLoader:
    """``loads_typed`` for one listing, remembering extension objects by their bytes.

    Example:
        >>> from langchain_core.messages import AIMessage
        >>> serde = JsonPlusSerializer()
        >>> loader = MemoLoader(serde)
        >>> one = loader.loads(*serde.dumps_typed([AIMessage("hi")]))
        >>> two = loader.loads(*serde.dumps_typed([AIMessage("hi"), AIMessage("yo")]))
        >>> one[0] == two[0] and one[0] is not two[0]
        True
    """

    def __init__(self, serde: SerializerProtocol, *, memo: bool = True) -> None:
        self.serde = serde
        self._hook: Any = None
        # One checkpoint (get_tuple) shares nothing with itself: load it plainly.
        if memo and isinstance(serde, JsonPlusSerializer) and type(serde).loads_typed is JsonPlusSerializer.loads_typed:
            self._hook = serde._unpack_ext_hook
        self._cache: dict[tuple[int, bytes], Any] = {}

    def _ext(self, code: int, data: bytes) -> Any:
        key = (code, data)
        try:
            obj = self._cache[key]
        except KeyError:
            obj = self._cache[key] = self._hook(code, data)
        # Always a copy: the cached object itself is never handed out, so a caller that
        # reassigns a field of one checkpoint's value cannot change another's.
        if isinstance(obj, BaseModel):
            return _copy_model(obj)
        try:
            return copy.copy(obj)
        except Exception:  # an object that cannot be copied: build it again
            return self._hook(code, data)

    def loads(self, type_: str, data: bytes | None) -> Any:
        if self._hook is not None and type_ == "msgpack" and data is not None:
            return ormsgpack.unpackb(data, ext_hook=self._ext, option=ormsgpack.OPT_NON_STR_KEYS)
        return self.serde.loads_typed((type_, data if data is not None else b""))
