"""Key-value stores of LangChain: documents and bytes, in the shared ``documents`` table.

``DocumentStore`` is a ``BaseStore[str, Document]`` (the docstore of a
``ParentDocumentRetriever``, a ``MultiVectorRetriever``...), ``ByteStore`` a
``BaseStore[str, bytes]`` (a ``CacheBackedEmbeddings`` cache...). Both are scoped to a user
and a namespace; keys are any strings, and ``yield_keys(prefix=...)`` matches the prefix
literally (``%``, ``_`` and ``\\`` are ordinary characters).

Example:
    >>> from langchain_core.documents import Document
    >>> from langchain_agentmem import connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> docs = DocumentStore(engine, "parents", user_id="alice")
    >>> docs.mset([("a/1", Document("first")), ("b/1", Document("second"))])
    >>> [d.page_content if d else None for d in docs.mget(["a/1", "zzz"])]
    ['first', None]
    >>> list(docs.yield_keys(prefix="a/"))
    ['a/1']
    >>> raw = ByteStore(engine, "cache")
    >>> raw.mset([("k", b"\\x00\\x01")]); raw.mget(["k"])
    [b'\\x00\\x01']
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Generic, TypeVar

from langchain_core.documents import Document
from langchain_core.stores import BaseStore

from ._encoding.json import dumps, loads
from ._encoding.keys import decode_key, encode_key
from .dialects import Dialect
from .engine import Engine

__all__ = ["ByteStore", "DocumentStore"]

V = TypeVar("V")
Query = tuple[str, list[Any]]

_KEYS = [("key", "text")]


# -- query builders (pure) ------------------------------------------------------------


def get_query(
    dialect: Dialect, user_id: str, namespace: str, kind: str, keys: Sequence[str]
) -> Query:
    return (
        "SELECT d.key, d.value, d.document FROM {documents} d WHERE d.user_id = ? AND d.namespace = ? "  # noqa: S608 (dialect fragment)
        "AND d.kind = ? AND d.key IN (SELECT m.key FROM " + dialect.unnest(_KEYS) + ")",
        [user_id, namespace, kind, *dialect.unnest_params(_KEYS, [(k,) for k in keys])],
    )


def set_query() -> str:
    return (
        "INSERT INTO {documents} (user_id, namespace, key, kind, value, document) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (user_id, namespace, key) DO UPDATE SET kind = excluded.kind, value = excluded.value, "
        "document = excluded.document, updated_at = {now}"
    )


def delete_query(dialect: Dialect, user_id: str, namespace: str, keys: Sequence[str]) -> Query:
    return (
        "DELETE FROM {documents} WHERE user_id = ? AND namespace = ? "  # noqa: S608 (dialect fragment)
        "AND key IN (SELECT m.key FROM " + dialect.unnest(_KEYS) + ")",
        [user_id, namespace, *dialect.unnest_params(_KEYS, [(k,) for k in keys])],
    )


def keys_query(
    dialect: Dialect, user_id: str, namespace: str, kind: str, prefix: str | None
) -> Query:
    query = "SELECT key FROM {documents} WHERE user_id = ? AND namespace = ? AND kind = ?"
    params: list[Any] = [user_id, namespace, kind]
    if prefix:
        query += " AND " + dialect.starts_with("key")
        params += dialect.starts_with_params(encode_key(prefix))
    return query + " ORDER BY key", params


# -- the stores -----------------------------------------------------------------------


class _KeyValueStore(BaseStore[str, V], Generic[V]):
    """Shared logic; subclasses say how a value is stored (``kind``, ``value``, ``document``)."""

    kind: str = ""

    def __init__(
        self, engine: Engine, namespace: str = "default", *, user_id: str = "default"
    ) -> None:
        self.engine = engine
        self.namespace = namespace
        self.user_id = user_id
        self._ns = encode_key(namespace)
        self._uid = encode_key(user_id)

    def _encode(self, value: V) -> tuple[bytes | None, str | None]:
        raise NotImplementedError

    def _decode(self, value: Any, document: Any) -> V:
        raise NotImplementedError

    def _set_rows(self, pairs: Sequence[tuple[str, V]]) -> list[tuple[Any, ...]]:
        rows = []
        for key, value in pairs:
            raw, doc = self._encode(value)
            rows.append((self._uid, self._ns, encode_key(key), self.kind, raw, doc))
        return rows

    def _ordered(self, keys: Sequence[str], rows: list[tuple[Any, ...]]) -> list[V | None]:
        found = {decode_key(r[0]): self._decode(r[1], r[2]) for r in rows}
        return [found.get(k) for k in keys]

    # -- sync ----------------------------------------------------------------------------
    def mget(self, keys: Sequence[str]) -> list[V | None]:
        """Values of ``keys`` in order; ``None`` for keys not set."""
        keys = list(keys)
        if not keys:
            return []
        query, params = get_query(
            self.engine.dialect, self._uid, self._ns, self.kind, [encode_key(k) for k in keys]
        )
        with self.engine.transaction(self._uid, readonly=True) as tx:
            rows = tx.fetchall(query, params)
        return self._ordered(keys, rows)

    def mset(self, key_value_pairs: Sequence[tuple[str, V]]) -> None:
        """Set values, atomically; a later pair wins over an earlier one with the same key."""
        rows = self._set_rows(list(key_value_pairs))
        if not rows:
            return
        with self.engine.transaction(self._uid) as tx:
            tx.executemany(set_query(), rows)

    def mdelete(self, keys: Sequence[str]) -> None:
        """Delete ``keys``; missing keys are ignored."""
        keys = [encode_key(k) for k in keys]
        if not keys:
            return
        query, params = delete_query(self.engine.dialect, self._uid, self._ns, keys)
        with self.engine.transaction(self._uid) as tx:
            tx.execute(query, params)

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        """Keys in order, those starting with ``prefix`` (literally) when given."""
        query, params = keys_query(self.engine.dialect, self._uid, self._ns, self.kind, prefix)
        with self.engine.transaction(self._uid, readonly=True) as tx:
            for row in tx.iterate(query, params):
                yield decode_key(row[0])

    # -- async ---------------------------------------------------------------------------
    async def amget(self, keys: Sequence[str]) -> list[V | None]:
        """Async form of :meth:`mget`."""
        keys = list(keys)
        if not keys:
            return []
        query, params = get_query(
            self.engine.dialect, self._uid, self._ns, self.kind, [encode_key(k) for k in keys]
        )
        async with self.engine.atransaction(self._uid, readonly=True) as tx:
            rows = await tx.fetchall(query, params)
        return self._ordered(keys, rows)

    async def amset(self, key_value_pairs: Sequence[tuple[str, V]]) -> None:
        """Async form of :meth:`mset`."""
        rows = self._set_rows(list(key_value_pairs))
        if not rows:
            return
        async with self.engine.atransaction(self._uid) as tx:
            await tx.executemany(set_query(), rows)

    async def amdelete(self, keys: Sequence[str]) -> None:
        """Async form of :meth:`mdelete`."""
        keys = [encode_key(k) for k in keys]
        if not keys:
            return
        query, params = delete_query(self.engine.dialect, self._uid, self._ns, keys)
        async with self.engine.atransaction(self._uid) as tx:
            await tx.execute(query, params)

    async def ayield_keys(self, *, prefix: str | None = None) -> AsyncIterator[str]:
        """Async form of :meth:`yield_keys`."""
        query, params = keys_query(self.engine.dialect, self._uid, self._ns, self.kind, prefix)
        async with self.engine.atransaction(self._uid, readonly=True) as tx:
            async for row in tx.iterate(query, params):
                yield decode_key(row[0])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(namespace={self.namespace!r}, user_id={self.user_id!r})"


class DocumentStore(_KeyValueStore[Document]):
    """A ``BaseStore[str, Document]`` of one user and namespace.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        namespace: separates stores of one user (e.g. one per retriever).
        user_id: the tenant.
    """

    kind = "document"

    def _encode(self, value: Document) -> tuple[bytes | None, str | None]:
        if not isinstance(value, Document):
            raise TypeError(f"DocumentStore values must be Documents, got {type(value).__name__}")
        payload: dict[str, Any] = {"page_content": value.page_content, "metadata": value.metadata}
        if value.id is not None:
            payload["id"] = value.id
        return None, dumps(payload)

    def _decode(self, value: Any, document: Any) -> Document:
        data = loads(document)
        return Document(
            page_content=data["page_content"], metadata=data["metadata"], id=data.get("id")
        )


class ByteStore(_KeyValueStore[bytes]):
    """A ``BaseStore[str, bytes]`` of one user and namespace (LangChain's ``ByteStore``)."""

    kind = "bytes"

    def _encode(self, value: bytes) -> tuple[bytes | None, str | None]:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"ByteStore values must be bytes, got {type(value).__name__}")
        return bytes(value), None

    def _decode(self, value: Any, document: Any) -> bytes:
        return bytes(value)
