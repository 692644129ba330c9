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

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from langchain_core.documents import Document
from langchain_core.stores import BaseStore

from ._core.plan import Atomic, Page, Plan, Sql, Stmt, dual, paged
from ._core.scoped import Scope, delete_in_key_order, upsert_in_key_order
from ._encoding.json import dumps, loads
from ._encoding.keys import decode_key, encode_key
from .dialects import SQL, Composed, Dialect, Template, Unnest
from .engine import EngineLike, as_engine

__all__ = ["ByteStore", "DocumentStore"]

V = TypeVar("V")
Query = tuple[Template, list[Any]]

_KEYS = [("key", "text")]
#: The rows of one store: a user's namespace of one kind (documents or bytes).
SCOPE = Scope("documents", ("user_id", "namespace", "kind"), "key")
#: Keys read per statement by ``yield_keys``.
KEYS_PAGE = 1000


# -- query builders (pure) ------------------------------------------------------------

_GET = SQL(
    "SELECT d.key, d.value, d.document FROM {documents} d WHERE d.user_id = ? AND d.namespace = ? "
    "AND d.kind = ? AND d.key IN (SELECT m.key FROM {keys})"
).format(keys=Unnest(_KEYS))


def get_query(
    dialect: Dialect, user_id: str, namespace: str, kind: str, keys: Sequence[str]
) -> Query:
    return (
        _GET,
        [user_id, namespace, kind, *dialect.unnest_params(_KEYS, [(k,) for k in keys])],
    )


def keys_query(
    dialect: Dialect,
    user_id: str,
    namespace: str,
    kind: str,
    prefix: str | None,
    after: str | None = None,
    limit: int = KEYS_PAGE,
) -> Query:
    """Stored keys in order, those starting with ``prefix``, after ``after``, ``limit`` of them."""
    parts = [SQL("SELECT key FROM {documents} WHERE user_id = ? AND namespace = ? AND kind = ?")]
    params: list[Any] = [user_id, namespace, kind]
    if prefix:
        parts += [SQL(" AND "), SQL(dialect.starts_with("key"))]
        params += dialect.starts_with_params(encode_key(prefix))
    if after is not None:
        parts.append(SQL(" AND key > ?"))
        params.append(after)
    parts.append(SQL(" ORDER BY key LIMIT ?"))
    return Composed(parts), [*params, limit]


# -- the stores -----------------------------------------------------------------------


class _KeyValueStore(BaseStore[str, V], Generic[V]):
    """Shared logic; subclasses say how a value is stored (``kind``, ``value``, ``document``).
    Writes lock rows in key order (see :mod:`~langchain_agentmem._core.scoped`), so
    concurrent ``mset`` / ``mdelete`` calls on the same keys never deadlock."""

    kind: str = ""

    def __init__(
        self, engine: EngineLike, namespace: str = "default", *, user_id: str = "default"
    ) -> None:
        engine = as_engine(engine)
        self.engine = engine
        self.namespace = namespace
        self.user_id = user_id
        self._ns = encode_key(namespace)
        self._uid = encode_key(user_id)

    def _encode(self, value: V) -> tuple[bytes | None, str | None]:
        raise NotImplementedError

    def _decode(self, value: Any, document: Any) -> V:
        raise NotImplementedError

    def _ordered(self, keys: Sequence[str], rows: list[tuple[Any, ...]]) -> list[V | None]:
        found = {decode_key(r[0]): self._decode(r[1], r[2]) for r in rows}
        return [found.get(k) for k in keys]

    @dual
    def mget(self, keys: Sequence[str]) -> Plan[list[V | None]]:
        """Values of ``keys`` in order; ``None`` for keys not set."""
        keys = list(keys)
        if not keys:
            return []
        query, params = get_query(
            self.engine.dialect, self._uid, self._ns, self.kind, [encode_key(k) for k in keys]
        )
        (rows,) = yield Sql([Stmt(query, params, fetch=True)], readonly=True)
        return self._ordered(keys, rows)

    amget = mget.async_

    @dual
    def mset(self, key_value_pairs: Sequence[tuple[str, V]]) -> Plan[None]:
        """Set values, atomically; a later pair wins over an earlier one with the same key."""
        rows = [(encode_key(k), *self._encode(v)) for k, v in key_value_pairs]
        if rows:
            yield Atomic(
                upsert_in_key_order(
                    SCOPE,
                    (self._uid, self._ns, self.kind),
                    ("value", "document"),
                    rows,
                    touch="updated_at",
                )
            )

    amset = mset.async_

    @dual
    def mdelete(self, keys: Sequence[str]) -> Plan[None]:
        """Delete ``keys``; missing keys are ignored."""
        stored = [encode_key(k) for k in keys]
        if stored:
            yield Atomic(
                delete_in_key_order(
                    self.engine.dialect, SCOPE, (self._uid, self._ns, self.kind), stored
                )
            )

    amdelete = mdelete.async_

    @paged
    def yield_keys(self, *, prefix: str | None = None) -> Plan[Page[str]]:
        """Keys in order, those starting with ``prefix`` (literally) when given. Read
        :data:`KEYS_PAGE` at a time, each page in a statement of its own."""
        return self._keys_page(prefix, None)

    ayield_keys = yield_keys.async_

    def _keys_page(self, prefix: str | None, after: str | None) -> Plan[Page[str]]:
        query, params = keys_query(
            self.engine.dialect, self._uid, self._ns, self.kind, prefix, after
        )
        (rows,) = yield Sql([Stmt(query, params, fetch=True)], readonly=True)
        keys = [r[0] for r in rows]
        following = self._keys_page(prefix, keys[-1]) if len(keys) == KEYS_PAGE else None
        return [decode_key(k) for k in keys], following

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
