"""langchain-postgres's names on this package's classes, so that its documented snippets
run with only the import line changed.

* :class:`PGEngine` (``PGEngine.from_connection_string(url=...)``,
  ``init_vectorstore_table``, ``init_chat_history_table`` and their ``a``-forms) is an
  :class:`~langchain_agentmem.Engine`.
* :class:`PGVectorStore` (``create_sync`` / ``await create``) and the legacy
  :class:`PGVector` are :class:`~langchain_agentmem.MemoryVectorStore`: a "table" or a
  "collection" is a collection of the shared ``vectors`` table.
* :class:`PostgresChatMessageHistory` (``(table_name, session_id, sync_connection=...)``,
  ``create_tables``) is a :class:`~langchain_agentmem.ChatMessageHistory`.

What differs, said once: tables are not created per name (every collection and history
lives in the shared schema, created by :meth:`Engine.migrate`, which the ``init_*`` and
``create_tables`` calls run); ``PostgresChatMessageHistory``'s ``table_name`` is checked
and otherwise not used (a session id names one history across the tables you had);
column layout options (``content_column``, ``metadata_columns``, ...) are accepted and
ignored: metadata is one JSON value here, filtered by key (``{"genre": "x"}``) as there.
A connection you pass is not used itself: the engine connects to the same database with
its own pool (one engine per connection object; yours is never closed by this module).

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> engine = PGEngine.from_connection_string(url="sqlite://")
    >>> engine.init_vectorstore_table(table_name="docs", vector_size=8)
    >>> store = PGVectorStore.create_sync(
    ...     engine=engine, table_name="docs", embedding_service=DeterministicFakeEmbedding(size=8))
    >>> _ = store.add_texts(["Apples and oranges"])
    >>> store.similarity_search("fruit", k=1)[0].page_content
    'Apples and oranges'
"""

from __future__ import annotations

import re
import weakref
from typing import Any

from langchain_core.embeddings import Embeddings

from ._entry import EngineCall
from .chat_history import ChatMessageHistory
from .engine import Engine, EngineLike, PoolConfig, as_engine, conn_string_url
from .vectorstore import DistanceStrategy, MemoryVectorStore

__all__ = ["PGEngine", "PGVector", "PGVectorStore", "PostgresChatMessageHistory"]

#: langchain-postgres's distance names (enum names and values of both its APIs) -> ours.
_DISTANCES: dict[str, DistanceStrategy] = {
    "cosine": "cosine",
    "cosine_distance": "cosine",
    "l2": "l2",
    "euclidean": "l2",
    "inner": "inner_product",
    "inner_product": "inner_product",
    "max_inner_product": "inner_product",
}


def _distance(strategy: Any) -> DistanceStrategy:
    """Ours for one of langchain-postgres's ``DistanceStrategy`` members (or its name).

    Example:
        >>> _distance("euclidean"), _distance("COSINE_DISTANCE")
        ('l2', 'cosine')
    """
    for text in (getattr(strategy, "value", None), getattr(strategy, "name", None), strategy):
        if isinstance(text, str) and text.lower() in _DISTANCES:
            return _DISTANCES[text.lower()]
    raise ValueError(
        f"unknown distance_strategy {strategy!r}: expected cosine, euclidean (l2) or inner product"
    )


def _vectorstore_table_args(
    table_name: str, vector_size: int, *, overwrite_existing: bool = False, **_: Any
) -> None:
    if not isinstance(table_name, str) or not table_name:
        raise ValueError(f"table_name must be a non-empty str, got {table_name!r}")
    if not isinstance(vector_size, int) or isinstance(vector_size, bool) or vector_size < 1:
        raise ValueError(f"vector_size must be a positive int, got {vector_size!r}")
    if overwrite_existing:
        raise ValueError(
            "overwrite_existing=True is not supported: delete the collection's rows with "
            "store.delete(filter={})"
        )


def _chat_table_args(table_name: str, **_: Any) -> None:
    _check_table(table_name)


class PGEngine(Engine):
    """langchain-postgres's ``PGEngine``: an :class:`~langchain_agentmem.Engine`.

    ``PGEngine.from_connection_string(url="postgresql+psycopg://...")`` (any URL
    :func:`~langchain_agentmem.connect` takes, a file path or ``":memory:"``).
    """

    @classmethod
    def from_connection_string(
        cls, url: str, *, schema: str = "agent_mem", **config: Any
    ) -> PGEngine:
        """An engine for ``url`` (``schema`` and :class:`PoolConfig` keywords as
        :func:`~langchain_agentmem.connect` takes them); nothing is opened yet."""
        unknown = set(config) - set(PoolConfig.__annotations__)
        if unknown:
            raise TypeError(
                f"unknown from_connection_string() option(s): {', '.join(sorted(unknown))} "
                f"(expected {', '.join(PoolConfig.__annotations__)})"
            )
        return cls(conn_string_url(str(url)), schema=schema, config=PoolConfig(**config))  # type: ignore[typeddict-item]

    init_vectorstore_table = EngineCall(
        "migrate",
        "Migrate (the ``vectors`` table holds every collection; a collection's vector size "
        "is fixed by its first write). Layout options are accepted and ignored.",
        check=_vectorstore_table_args,
        of=lambda engine: engine,
    )
    ainit_vectorstore_table = init_vectorstore_table.async_
    init_chat_history_table = EngineCall(
        "migrate",
        "Migrate (the ``events`` table holds every chat history).",
        check=_chat_table_args,
        of=lambda engine: engine,
    )
    ainit_chat_history_table = init_chat_history_table.async_


def _check_search_defaults(k: int, fetch_k: int, lambda_mult: float) -> None:
    if (k, fetch_k, lambda_mult) != (4, 20, 0.5):
        raise ValueError(
            "k, fetch_k and lambda_mult are per search here: pass them to similarity_search / "
            f"max_marginal_relevance_search, got k={k}, fetch_k={fetch_k}, lambda_mult={lambda_mult}"
        )


class PGVectorStore(MemoryVectorStore):
    """langchain-postgres's ``PGVectorStore``: a :class:`MemoryVectorStore` whose
    collection is the ``table_name``. Build it with :meth:`create_sync` or
    ``await PGVectorStore.create(...)``."""

    @classmethod
    def create_sync(
        cls,
        engine: EngineLike,
        embedding_service: Embeddings,
        table_name: str,
        *,
        distance_strategy: Any = "cosine",
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        user_id: str = "default",
        **_: Any,
    ) -> PGVectorStore:
        """The store over collection ``table_name`` (layout options are ignored)."""
        _check_search_defaults(k, fetch_k, lambda_mult)
        return cls(
            engine,
            embedding_service,
            collection=table_name,
            user_id=user_id,
            distance=_distance(distance_strategy),
        )

    @classmethod
    async def create(
        cls,
        engine: EngineLike,
        embedding_service: Embeddings,
        table_name: str,
        **kwargs: Any,
    ) -> PGVectorStore:
        """The same as :meth:`create_sync` (nothing is read or written until used)."""
        return cls.create_sync(engine, embedding_service, table_name, **kwargs)


class PGVector(MemoryVectorStore):
    """langchain-postgres's legacy ``PGVector(embeddings=, collection_name=, connection=)``.

    As there, the constructor sets the database up (it migrates: idempotent, one query
    when up to date); ``pre_delete_collection`` deletes the collection's rows; ids may be
    ints (stored as their text).
    ``connection`` is a URL (``postgresql+psycopg://...``), an engine, or a psycopg
    connection or pool.
    """

    def __init__(
        self,
        embeddings: Embeddings,
        *,
        connection: EngineLike,
        collection_name: str = "langchain",
        distance_strategy: Any = "cosine",
        pre_delete_collection: bool = False,
        use_jsonb: bool = True,
        user_id: str = "default",
        **_: Any,
    ) -> None:
        if not use_jsonb:
            raise ValueError("use_jsonb=False is not supported: metadata is always JSON here")
        super().__init__(
            as_engine(connection),
            embeddings,
            collection=collection_name,
            user_id=user_id,
            distance=_distance(distance_strategy),
        )
        self.engine.migrate()
        if pre_delete_collection:
            self.delete(filter={})

    def _prepare(self, texts: Any, metadatas: Any, ids: Any) -> Any:
        # PGVector's documented examples pass int ids; its id column stores them as text.
        if ids is not None:
            ids = [None if i is None else str(i) for i in ids]
        return super()._prepare(texts, metadatas, ids)


#: One engine per connection object passed to PostgresChatMessageHistory (dropped with it).
_ENGINES: weakref.WeakKeyDictionary[Any, Engine] = weakref.WeakKeyDictionary()
_TABLE_NAME = re.compile(r"^\w+$")


def _engine_for(connection: Any) -> Engine:
    if isinstance(connection, (Engine, str)):
        return as_engine(connection)
    try:
        engine = _ENGINES.get(connection)
    except TypeError:  # not weakly referenceable (sqlite3): an engine each, cheap there
        return as_engine(connection)
    if engine is None:
        engine = _ENGINES[connection] = as_engine(connection)
    return engine


def _check_table(table_name: str) -> None:
    if not isinstance(table_name, str) or not _TABLE_NAME.match(table_name):
        raise ValueError(f"table_name must be letters, digits and underscores, got {table_name!r}")


class PostgresChatMessageHistory(ChatMessageHistory):
    """langchain-postgres's ``PostgresChatMessageHistory(table_name, session_id,
    sync_connection=... | async_connection=...)``: a :class:`ChatMessageHistory` of the
    session ``session_id`` (``table_name`` is checked, not used)."""

    def __init__(
        self,
        table_name: str,
        session_id: str,
        /,
        *,
        sync_connection: Any = None,
        async_connection: Any = None,
        user_id: str = "default",
    ) -> None:
        _check_table(table_name)
        connection = sync_connection if sync_connection is not None else async_connection
        if connection is None:
            raise ValueError("expected sync_connection= or async_connection=, got neither")
        super().__init__(_engine_for(connection), str(session_id), user_id=user_id)
        self.table_name = table_name

    @staticmethod
    def create_tables(connection: Any, table_name: str, /) -> None:
        """Migrate the database ``connection`` is connected to (idempotent)."""
        _check_table(table_name)
        _engine_for(connection).migrate()

    @staticmethod
    async def acreate_tables(connection: Any, table_name: str, /) -> None:
        """Async form of :meth:`create_tables`."""
        _check_table(table_name)
        await _engine_for(connection).amigrate()
