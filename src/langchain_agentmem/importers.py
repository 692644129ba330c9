"""Bring data over from langchain-postgres and LangGraph's Postgres savers.

:class:`Importer` reads a source Postgres database and writes this package's memory
classes on a target engine (Postgres or SQLite), for one tenant (``user_id``):

* :meth:`Importer.vectorstore`: a langchain-postgres v2 ``PGVectorStore`` table (made by
  ``PGEngine.init_vectorstore_table``: id, content, embedding, ``langchain_metadata``
  and custom metadata columns) into a :class:`~langchain_agentmem.MemoryVectorStore`
  collection. Embeddings are copied, never recomputed.
* :meth:`Importer.pgvector`: the legacy ``PGVector`` tables (``langchain_pg_collection``
  / ``langchain_pg_embedding``), one collection each.
* :meth:`Importer.chat_history`: a ``PostgresChatMessageHistory`` table, one
  :class:`~langchain_agentmem.ChatMessageHistory` session per ``session_id``.
* :meth:`Importer.checkpoints`: the threads of a LangGraph ``PostgresSaver`` (every
  checkpoint namespace, the pending writes with their task paths), read through
  ``PostgresSaver.list`` and written through :class:`~langchain_agentmem.CheckpointSaver`
  ``put`` / ``put_writes`` oldest first, so parent links and stored formats are this
  package's own.
* :meth:`Importer.store_items`: the items of a LangGraph ``PostgresStore``
  (namespaces, keys, values, TTLs) into :class:`~langchain_agentmem.LangGraphStore`.
  Its embeddings are not copied: with ``index=`` they are recomputed by the target
  store, else items are stored without vectors.

Every import is idempotent: what the target already holds, identical, is left alone
(counted as ``unchanged``), so a second run writes nothing, and a run after the source
grew writes only what is new. ``dry_run=True`` counts without writing. Each method is
one plan, run sync or async (``aX``). Source tables are read a page at a time.

Example:
    >>> from langchain_agentmem.importers import ImportReport
    >>> ImportReport("chat_history", "message_store", found=3, written=3).as_dict()["written"]
    3
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.base import WRITES_IDX_MAP
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.store.base import GetOp, IndexConfig, PutOp

from ._backends.base import redact
from ._core.plan import Atomic, Body, Model, One, Plan, Stmt, dual
from ._encoding.keys import decode_key, encode_key
from .chat_history import ChatMessageHistory
from .checkpoint import CheckpointSaver
from .dialects import SQL, Ident, Table, Template, Unnest, check_identifier
from .engine import Engine, EngineLike, as_engine, connect
from .store import LangGraphStore
from .vectorstore import DistanceStrategy, MemoryVectorStore, _hits

__all__ = ["ImportReport", "Importer", "MissingSourceError"]

#: Progress callback: ``(done, total)`` after each page.
Progress = Callable[[int, int], None]


class MissingSourceError(LookupError):
    """The source database has no such table (or collection)."""


@dataclass(frozen=True)
class ImportReport:
    """What one import found and did.

    Attributes:
        kind: ``vectorstore``, ``pgvector``, ``chat_history``, ``checkpoints`` or ``store``.
        source: the source table (or collections).
        found: rows in the source: documents, messages, checkpoints or items.
        written: of those, written now (with ``dry_run``: would be written).
        unchanged: already in the target, identical: left alone.
        groups: collections, sessions, threads or namespaces seen.
        writes: checkpoints only: pending writes written (would be, with ``dry_run``).
        dry_run: nothing was written.
    """

    kind: str
    source: str
    found: int = 0
    written: int = 0
    unchanged: int = 0
    groups: int = 0
    writes: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)


class _NoEmbeddings(Embeddings):
    """Imported vectors come with their embeddings: nothing is embedded."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise RuntimeError("an imported collection copies embeddings; it embeds nothing")

    def embed_query(self, text: str) -> list[float]:
        raise RuntimeError("an imported collection copies embeddings; it embeds nothing")


def _plan(method: Any) -> Callable[..., Plan[Any]]:
    """The plan of a memory class's :class:`~langchain_agentmem._core.plan.dual` method,
    to run inside this plan (one driver, sync or async)."""
    return method.fn  # type: ignore[no-any-return]


def _vector(value: Any) -> np.ndarray:
    """A pgvector value as float32 (numpy from pgvector < 0.4, ``Vector`` from 0.4+)."""
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    elif isinstance(value, str):
        value = [float(x) for x in value.strip("[]").split(",") if x]
    return np.asarray(value, dtype=np.float32)


def _table(name: str, what: str) -> str:
    try:
        return check_identifier(name, "table")
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def _check_page(page_size: int) -> int:
    if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
        raise ValueError(f"page_size must be a positive int, got {page_size!r}")
    return page_size


# -- source bodies (run on the source engine, read only) -------------------------------


def _exists(engine: Engine, table: str) -> Body[bool]:
    row = yield engine.dialect.table_exists(table)
    return bool(row and row[0])


def _source_columns(engine: Engine, table: str) -> Body[list[tuple[str, str]]]:
    rows = yield engine.dialect.columns(table)
    return [(str(r[0]), str(r[2])) for r in rows]


def _count(sql: Template, params: Sequence[Any] = ()) -> Body[int]:
    row = yield One(sql, list(params))
    return int(row[0]) if row else 0


def _fetch(sql: Template, params: Sequence[Any]) -> Body[list[tuple[Any, ...]]]:
    return builtins.list((yield Stmt(sql, list(params), True)))


# -- target bodies ---------------------------------------------------------------------


def _target_vectors(engine: Engine, uid: str, coll_id: int, ids: list[str]) -> Body[Any]:
    dialect = engine.dialect
    cols = [("id", "text")]
    rows = yield Stmt(
        SQL(
            "SELECT v.id, v.content, v.metadata, v.exact, v.embedding, 0.0 FROM {vectors} v "
            "WHERE v.user_id = ? AND v.collection_id = ? AND v.id IN (SELECT m.id FROM {ids})"
        ).format(ids=Unnest(cols)),
        [uid, coll_id, *dialect.unnest_params(cols, [(i,) for i in ids])],
        fetch=True,
    )
    return _hits(rows, True)


def _target_checkpoints(uid: str, tid: str) -> Body[tuple[set[Any], set[Any]]]:
    rows = yield Stmt(
        "SELECT checkpoint_ns, checkpoint_id FROM {checkpoints} WHERE user_id = ? AND thread_id = ?",
        [uid, tid],
        True,
    )
    writes = yield Stmt(
        "SELECT checkpoint_ns, checkpoint_id, task_id, idx FROM {checkpoint_writes} "
        "WHERE user_id = ? AND thread_id = ?",
        [uid, tid],
        True,
    )
    return (
        {(decode_key(r[0]), r[1]) for r in rows},
        {(decode_key(r[0]), r[1], r[2], int(r[3])) for r in writes},
    )


# -- the LangGraph saver, read through its own API -------------------------------------


class _SaverReader:
    """Reads a ``PostgresSaver``'s database through ``PostgresSaver`` itself (one sync
    connection, opened on first use). Called as a runnable, so the plan driver runs it
    in a worker thread for async imports."""

    def __init__(self, url: str, serde: SerializerProtocol | None) -> None:
        self.url, self.serde = url, serde
        self._saver: Any = None

    def saver(self) -> Any:
        if self._saver is None:
            from langgraph.checkpoint.postgres import PostgresSaver
            from psycopg import Connection
            from psycopg.rows import dict_row

            conn = Connection.connect(
                self.url, autocommit=True, prepare_threshold=0, row_factory=dict_row
            )
            self._saver = PostgresSaver(conn, serde=self.serde)  # type: ignore[arg-type]
        return self._saver

    def close(self) -> None:
        if self._saver is not None:
            self._saver.conn.close()
            self._saver = None

    def __call__(self, request: tuple[str, Any]) -> Any:
        from psycopg import errors

        kind, arg = request
        saver = self.saver()
        try:
            if kind == "threads":
                with saver.conn.cursor() as cur:
                    cur.execute(
                        "SELECT thread_id, count(*) AS n FROM checkpoints GROUP BY thread_id "
                        "ORDER BY thread_id"
                    )
                    return [(r["thread_id"], int(r["n"])) for r in cur.fetchall()]
            tuples = builtins.list(saver.list({"configurable": {"thread_id": arg}}))
            tuples.reverse()  # oldest first: every parent before its children
            with saver.conn.cursor() as cur:
                cur.execute(
                    "SELECT checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, "
                    "type, blob FROM checkpoint_writes WHERE thread_id = %s "
                    "ORDER BY checkpoint_ns, checkpoint_id, task_id, idx",
                    [arg],
                )
                writes = [
                    (
                        r["checkpoint_ns"],
                        r["checkpoint_id"],
                        r["task_id"],
                        r["task_path"],
                        int(r["idx"]),
                        r["channel"],
                        saver.serde.loads_typed((r["type"], bytes(r["blob"]))),
                    )
                    for r in cur.fetchall()
                ]
            return tuples, writes
        except errors.UndefinedTable as exc:
            raise MissingSourceError(
                f"no PostgresSaver tables in the source database ({str(exc).splitlines()[0]}): "
                "expected checkpoints, checkpoint_blobs and checkpoint_writes made by "
                "PostgresSaver.setup() (a schema other than the first of the search_path "
                "goes in the URL: ?options=-csearch_path%3Dmyschema)"
            ) from None


class Importer:
    """Imports langchain-postgres and LangGraph ``PostgresSaver`` / ``PostgresStore`` data.

    Args:
        source: the source database URL (``postgresql://...``; the SQLAlchemy spelling
            ``postgresql+psycopg://`` that langchain-postgres uses works too).
        to: the target engine or URL (default: :func:`~langchain_agentmem.connect`'s
            default, ``AGENTMEM_URL`` or the local SQLite file), migrated.
        user_id: the tenant everything is imported for.
        source_schema: the source schema of langchain-postgres and ``PostgresStore``
            tables (default ``public``). ``PostgresSaver`` tables are read where the
            source URL's search path finds them, as ``PostgresSaver`` does.
        serde: the target saver's serializer (default LangGraph's); ``source_serde``
            the source saver's (default LangGraph's).
        page_size: source rows read (and written) per transaction.

    Example:
        Not run here (it needs a source Postgres)::

            with Importer("postgresql://localhost/app", to=engine, user_id="alice") as imp:
                imp.vectorstore("my_docs")            # PGVectorStore table
                imp.pgvector()                        # every legacy PGVector collection
                imp.chat_history("message_store")     # PostgresChatMessageHistory
                imp.checkpoints()                     # PostgresSaver threads
    """

    def __init__(
        self,
        source: str,
        *,
        to: EngineLike | None = None,
        user_id: str = "default",
        source_schema: str = "public",
        serde: SerializerProtocol | None = None,
        source_serde: SerializerProtocol | None = None,
        page_size: int = 500,
    ) -> None:
        source = source_url(source)
        if not source.startswith(("postgres://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError(
                f"expected the source as a postgresql:// URL, got {redact(source)!r:.80}"
            )
        if not isinstance(user_id, str):
            raise TypeError(f"user_id must be a str, got {type(user_id).__name__}")
        self._owns = to is None or not isinstance(to, Engine)
        self.engine = connect() if to is None else as_engine(to)
        self.source = connect(source, schema=source_schema)
        self.user_id = user_id
        self._uid = encode_key(user_id)
        self.page_size = _check_page(page_size)
        self.serde = serde
        scheme = source.split("://", 1)[0]
        libpq = "postgresql" + source[len(scheme) :] if "+" in scheme else source
        self._reader = _SaverReader(libpq, source_serde)

    def __repr__(self) -> str:
        return f"Importer({self.source!r} -> {self.engine!r}, user_id={self.user_id!r})"

    def close(self) -> None:
        """Close the source connections (and the target engine if this importer opened it)."""
        self._reader.close()
        self.source.close()
        if self._owns:
            self.engine.close()

    def __enter__(self) -> Importer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Importer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._reader.close()
        await self.source.aclose()
        if self._owns:
            await self.engine.aclose()

    def _read(self, body: Body[Any]) -> Atomic[Any]:
        return Atomic(body, readonly=True, engine=self.source, user_id=None)

    def _require(self, table: str, expected: str) -> Plan[None]:
        if not (yield self._read(_exists(self.source, table))):
            raise MissingSourceError(
                f"no table {self.source.schema}.{table} in the source database: expected {expected} "
                "(another schema: source_schema= / --source-schema)"
            )

    # -- vectors ---------------------------------------------------------------------------
    def _vector_rows_plan(
        self,
        store: MemoryVectorStore,
        rows: list[tuple[str, str, dict[str, Any], np.ndarray]],
        dry_run: bool,
    ) -> Plan[int]:
        """Write the rows the target lacks or holds otherwise; return how many."""
        coll = yield from store._collection_plan(None)
        changed = rows
        if coll is not None:
            ids = [encode_key(r[0]) for r in rows]
            hits = yield Atomic(
                _target_vectors(self.engine, self._uid, coll.collection_id, ids), readonly=True
            )
            have = {decode_key(h.id): h for h in hits}
            changed = []
            for r in rows:
                hit = have.get(r[0])
                if hit is not None:
                    doc = hit.document()
                    if (
                        doc.page_content == r[1]
                        and doc.metadata == r[2]
                        and np.array_equal(hit.embedding, r[3])
                    ):
                        continue
                changed.append(r)
        if changed and not dry_run:
            yield from _plan(MemoryVectorStore.add_embeddings)(
                store,
                [r[1] for r in changed],
                [r[3] for r in changed],
                [r[2] for r in changed],
                ids=[r[0] for r in changed],
            )
        return len(changed)

    def _store(self, collection: str, distance: DistanceStrategy) -> MemoryVectorStore:
        return MemoryVectorStore(
            self.engine,
            _NoEmbeddings(),
            collection=collection,
            user_id=self.user_id,
            distance=distance,
        )

    @dual
    def vectorstore(
        self,
        table: str,
        *,
        collection: str | None = None,
        id_column: str = "langchain_id",
        content_column: str = "content",
        embedding_column: str = "embedding",
        metadata_json_column: str | None = "langchain_metadata",
        metadata_columns: Sequence[str] | None = None,
        distance: DistanceStrategy = "cosine",
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> Plan[ImportReport]:
        """Import a langchain-postgres v2 ``PGVectorStore`` table into a collection.

        Args:
            table: the table (``PGEngine.init_vectorstore_table``'s ``table_name``).
            collection: the target collection (default: the table's name).
            id_column, content_column, embedding_column, metadata_json_column: the
                column names given to ``init_vectorstore_table`` (its defaults here).
            metadata_columns: the custom metadata columns; default every other column
                (a ``tsvector`` hybrid-search column excepted). A document's metadata is
                what ``PGVectorStore`` returns: the JSON column's object, then each
                metadata column (values JSON cannot hold, such as times, as text).
            distance: the target collection's distance (the store's
                ``distance_strategy``; langchain-postgres' default is cosine).
            dry_run: count only.
            progress: called with ``(done, total)`` rows after each page.
        """
        src = self.source
        table = _table(table, "table")
        yield from self._require(
            table, "a PGVectorStore table made by PGEngine.init_vectorstore_table"
        )
        columns = yield self._read(_source_columns(src, table))
        names = {c for c, _ in columns}
        fixed = [id_column, content_column, embedding_column]
        if metadata_json_column is not None and metadata_json_column in names:
            fixed.append(metadata_json_column)
        else:
            metadata_json_column = None
        missing = [c for c in fixed if c not in names]
        if missing:
            raise MissingSourceError(
                f"table {src.schema}.{table} has no column {missing[0]!r}: expected a "
                f"PGVectorStore table with columns {', '.join(fixed)} (it has {', '.join(sorted(names))})"
            )
        if metadata_columns is None:
            extra = [c for c, udt in columns if c not in fixed and udt != "tsvector"]
        else:
            extra = builtins.list(metadata_columns)
            unknown = [c for c in extra if c not in names]
            if unknown:
                raise MissingSourceError(
                    f"table {src.schema}.{table} has no metadata column {unknown[0]!r}"
                )
        select = SQL(", ").join(Ident(c) for c in fixed + extra)
        key = Ident(id_column)
        total = yield self._read(_count(SQL("SELECT count(*) FROM {}").format(Table(table))))
        store = self._store(collection or table, distance)
        report = {"found": 0, "written": 0}
        last: Any = None
        while True:
            where, params = (
                (SQL(""), []) if last is None else (SQL(" WHERE {} > ?").format(key), [last])
            )
            rows = yield self._read(
                _fetch(
                    SQL("SELECT {select} FROM {table}{where} ORDER BY {key} LIMIT ?").format(
                        select=select, table=Table(table), where=where, key=key
                    ),
                    [*params, self.page_size],
                )
            )
            if not rows:
                break
            last = rows[-1][0]
            batch = []
            for r in rows:
                meta: dict[str, Any] = {}
                n = 3
                if metadata_json_column is not None:
                    meta = dict(r[3] or {})
                    n = 4
                for c, v in zip(extra, r[n:], strict=True):
                    meta[c] = v
                batch.append((str(r[0]), r[1], _json_metadata(meta), _vector(r[2])))
            report["found"] += len(batch)
            report["written"] += yield from self._vector_rows_plan(store, batch, dry_run)
            if progress is not None:
                progress(report["found"], total)
            if len(rows) < self.page_size:
                break
        return ImportReport(
            "vectorstore",
            f"{src.schema}.{table}",
            found=report["found"],
            written=report["written"],
            unchanged=report["found"] - report["written"],
            groups=1,
            dry_run=dry_run,
        )

    avectorstore = vectorstore.async_

    @dual
    def pgvector(
        self,
        collections: Sequence[str] | None = None,
        *,
        distance: DistanceStrategy = "cosine",
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> Plan[ImportReport]:
        """Import legacy ``PGVector`` collections (``langchain_pg_collection`` /
        ``langchain_pg_embedding``), each into the collection of the same name.

        Args:
            collections: the collection names (default: every collection).
            distance: the target collections' distance (the ``distance_strategy`` the
                PGVector store used; its default is cosine).
            dry_run: count only.
            progress: called with ``(done, total)`` rows after each page.

        A document without text (``document`` NULL) is imported with ``""``.
        """
        expected = "the legacy PGVector tables (langchain_pg_collection, langchain_pg_embedding)"
        yield from self._require("langchain_pg_collection", expected)
        yield from self._require("langchain_pg_embedding", expected)
        found = yield self._read(
            _fetch(
                "SELECT c.uuid, c.name, count(e.id) FROM {langchain_pg_collection} c "
                "LEFT JOIN {langchain_pg_embedding} e ON e.collection_id = c.uuid "
                "GROUP BY c.uuid, c.name ORDER BY c.name",
                [],
            )
        )
        if collections is not None:
            if isinstance(collections, str):
                raise TypeError(f"collections must be a list of names, got the str {collections!r}")
            known = {r[1] for r in found}
            unknown = [c for c in collections if c not in known]
            if unknown:
                raise MissingSourceError(
                    f"no PGVector collection {unknown[0]!r} in the source database: it has "
                    + (", ".join(repr(k) for k in sorted(known)) or "none")
                )
            found = [r for r in found if r[1] in set(collections)]
        total = sum(int(r[2]) for r in found)
        done = written = 0
        for coll_uuid, name, _n in found:
            store = self._store(name, distance)
            last: str | None = None
            while True:
                where, params = (SQL(""), []) if last is None else (SQL(" AND id > ?"), [last])
                rows = yield self._read(
                    _fetch(
                        SQL(
                            "SELECT id, document, cmetadata, embedding FROM {langchain_pg_embedding} "
                            "WHERE collection_id = ?{where} ORDER BY id LIMIT ?"
                        ).format(where=where),
                        [coll_uuid, *params, self.page_size],
                    )
                )
                if not rows:
                    break
                last = rows[-1][0]
                batch = [
                    (str(r[0]), r[1] or "", _json_metadata(dict(r[2] or {})), _vector(r[3]))
                    for r in rows
                ]
                done += len(batch)
                written += yield from self._vector_rows_plan(store, batch, dry_run)
                if progress is not None:
                    progress(done, total)
                if len(rows) < self.page_size:
                    break
        return ImportReport(
            "pgvector",
            ", ".join(r[1] for r in found),
            found=done,
            written=written,
            unchanged=done - written,
            groups=len(found),
            dry_run=dry_run,
        )

    apgvector = pgvector.async_

    # -- chat history ----------------------------------------------------------------------
    @dual
    def chat_history(
        self,
        table: str = "message_store",
        session_ids: Sequence[str] | None = None,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> Plan[ImportReport]:
        """Import a ``PostgresChatMessageHistory`` table: each ``session_id`` becomes the
        session of that id (its UUID as text), messages in their order.

        A session the target already holds continues where it stops: when its messages
        are the first ones of the source's, only the rest is appended; when they are
        not, :class:`ValueError` names the session and nothing is written to it (the
        sessions before it are imported).

        Args:
            table: the table given to ``PostgresChatMessageHistory.create_tables``.
            session_ids: only these sessions (default: every session of the table).
            dry_run: count only.
            progress: called with ``(done, total)`` messages after each session.
        """
        table = _table(table, "table")
        yield from self._require(table, "a PostgresChatMessageHistory table made by create_tables")
        sessions = yield self._read(
            _fetch(
                SQL(
                    "SELECT session_id, count(*) FROM {} GROUP BY session_id ORDER BY session_id"
                ).format(Table(table)),
                [],
            )
        )
        if session_ids is not None:
            if isinstance(session_ids, str):
                raise TypeError(f"session_ids must be a list, got the str {session_ids!r}")
            wanted = {_session_uuid(s) for s in session_ids}
            sessions = [r for r in sessions if str(r[0]) in wanted]
        total = sum(int(r[1]) for r in sessions)
        done = written = 0
        for sid, _n in sessions:
            rows = yield self._read(
                _fetch(
                    SQL("SELECT message FROM {} WHERE session_id = ? ORDER BY id").format(
                        Table(table)
                    ),
                    [sid],
                )
            )
            source = messages_from_dict([r[0] for r in rows])
            history = ChatMessageHistory(self.engine, str(sid), user_id=self.user_id)
            have: list[BaseMessage] = yield from _plan(ChatMessageHistory.get_messages)(history)
            if [message_to_dict(m) for m in have] != [
                message_to_dict(m) for m in source[: len(have)]
            ]:
                raise ValueError(
                    f"session {str(sid)!r} of user {self.user_id!r} already holds {len(have)} "
                    f"messages that are not the first of the source's {len(source)}: nothing "
                    "was written to it (clear it, or import for another user)"
                )
            new = source[len(have) :]
            if new and not dry_run:
                yield from _plan(ChatMessageHistory.add_messages)(history, new)
            done += len(source)
            written += len(new)
            if progress is not None:
                progress(done, total)
        return ImportReport(
            "chat_history",
            f"{self.source.schema}.{table}",
            found=done,
            written=written,
            unchanged=done - written,
            groups=len(sessions),
            dry_run=dry_run,
        )

    achat_history = chat_history.async_

    # -- LangGraph -------------------------------------------------------------------------
    def _saver_call(self, kind: str, arg: Any = None) -> Model:
        return Model(RunnableLambda(self._reader, name="PostgresSaver"), (kind, arg))

    @dual
    def checkpoints(
        self,
        thread_ids: Sequence[str] | None = None,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> Plan[ImportReport]:
        """Import the threads of a LangGraph ``PostgresSaver``: every checkpoint of every
        namespace, oldest first, and every pending write (with its task path). A
        checkpoint (or write) the target already holds is left alone.

        Args:
            thread_ids: only these threads (default: every thread).
            dry_run: count only.
            progress: called with ``(done, total)`` checkpoints after each thread.
        """
        threads = yield self._saver_call("threads")
        if thread_ids is not None:
            if isinstance(thread_ids, str):
                raise TypeError(f"thread_ids must be a list, got the str {thread_ids!r}")
            wanted = {str(t) for t in thread_ids}
            threads = [t for t in threads if t[0] in wanted]
        saver = CheckpointSaver(self.engine, user_id=self.user_id, serde=self.serde)
        total = sum(n for _, n in threads)
        done = written = writes_done = 0
        for tid, _n in threads:
            tuples, writes = yield self._saver_call("thread", tid)
            have, have_writes = yield Atomic(
                _target_checkpoints(self._uid, encode_key(tid)), readonly=True
            )
            versions: dict[tuple[str, str], Any] = {}
            by_checkpoint: dict[tuple[str, str], list[Any]] = {}
            for w in writes:
                by_checkpoint.setdefault((w[0], w[1]), []).append(w)
            for tup in tuples:
                conf = tup.config["configurable"]
                ns, cid = conf.get("checkpoint_ns", ""), conf["checkpoint_id"]
                parent = (tup.parent_config or {}).get("configurable", {}).get("checkpoint_id")
                current = tup.checkpoint["channel_versions"]
                if (ns, cid) not in have:
                    before = versions.get((ns, parent)) if parent else None
                    new_versions = {
                        c: v for c, v in current.items() if before is None or before.get(c) != v
                    }
                    target: dict[str, Any] = {"thread_id": tid, "checkpoint_ns": ns}
                    if parent:
                        target["checkpoint_id"] = parent
                    if not dry_run:
                        yield from _plan(CheckpointSaver.put)(
                            saver,
                            {"configurable": target},
                            tup.checkpoint,
                            tup.metadata,
                            new_versions,
                        )
                    written += 1
                versions[(ns, cid)] = current
                writes_done += yield from self._writes_plan(
                    saver, tid, ns, cid, by_checkpoint.get((ns, cid), []), have_writes, dry_run
                )
            done += len(tuples)
            if progress is not None:
                progress(done, total)
        return ImportReport(
            "checkpoints",
            "PostgresSaver",
            found=done,
            written=written,
            unchanged=done - written,
            groups=len(threads),
            writes=writes_done,
            dry_run=dry_run,
        )

    acheckpoints = checkpoints.async_

    def _writes_plan(
        self,
        saver: CheckpointSaver,
        tid: str,
        ns: str,
        cid: str,
        writes: list[Any],
        have: set[Any],
        dry_run: bool,
    ) -> Plan[int]:
        """Put one checkpoint's missing writes, a task at a time: its regular writes in
        one call (their index is their position), its special ones (errors, interrupts)
        in another (their index is fixed)."""
        by_task: dict[tuple[str, str, bool], list[Any]] = {}
        for w in writes:
            by_task.setdefault((w[2], w[3], w[4] < 0), []).append(w)
        count = 0
        config = {"configurable": {"thread_id": tid, "checkpoint_ns": ns, "checkpoint_id": cid}}
        for (task_id, task_path, special), group in by_task.items():
            missing = [w for w in group if (ns, cid, task_id, w[4]) not in have]
            if not missing:
                continue
            if not special and [w[4] for w in group] != builtins.list(range(len(group))):
                raise ValueError(
                    f"thread {tid!r} checkpoint {cid}: task {task_id}'s writes have indexes "
                    f"{[w[4] for w in group]}, expected 0..{len(group) - 1}"
                )
            if special and any(WRITES_IDX_MAP.get(w[5]) != w[4] for w in group):
                raise ValueError(
                    f"thread {tid!r} checkpoint {cid}: task {task_id} has a write on an "
                    "unknown special channel"
                )
            if not dry_run:
                yield from _plan(CheckpointSaver.put_writes)(
                    saver, config, [(w[5], w[6]) for w in group], task_id, task_path
                )
            count += len(missing)
        return count

    @dual
    def store_items(
        self,
        *,
        table: str = "store",
        index: IndexConfig | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> Plan[ImportReport]:
        """Import the items of a LangGraph ``PostgresStore`` (its ``store`` table).

        Namespaces, keys and values are copied. The source's embeddings are not:
        with ``index`` (the target :class:`~langchain_agentmem.LangGraphStore`'s index
        config) the target embeds the items again; without it they are stored without
        vectors. An item with a TTL gets its ``ttl_minutes`` again, counted from the
        import; an expired item is skipped. An item the target holds with the same
        value is left alone.

        Args:
            table: the store table (``PostgresStore`` names it ``store``).
            index: embed the imported items with this index config.
            dry_run: count only.
            progress: called with ``(done, total)`` items after each page.
        """
        table = _table(table, "table")
        yield from self._require(table, "a PostgresStore table made by PostgresStore.setup()")
        store = LangGraphStore(self.engine, user_id=self.user_id, index=index)
        total = yield self._read(_count(SQL("SELECT count(*) FROM {}").format(Table(table))))
        now = datetime.now(timezone.utc)
        done = written = skipped = 0
        namespaces: set[str] = set()
        last: tuple[str, str] | None = None
        while True:
            where, params = (
                (SQL(""), []) if last is None else (SQL(" WHERE (prefix, key) > (?, ?)"), last)
            )
            rows = yield self._read(
                _fetch(
                    SQL(
                        "SELECT prefix, key, value, expires_at, ttl_minutes FROM {table}{where} "
                        "ORDER BY prefix, key LIMIT ?"
                    ).format(table=Table(table), where=where),
                    [*params, self.page_size],
                )
            )
            if not rows:
                break
            last = (rows[-1][0], rows[-1][1])
            live = [r for r in rows if r[3] is None or r[3] > now]
            skipped += len(rows) - len(live)
            namespaces.update(r[0] for r in live)
            current = yield from _plan(LangGraphStore.batch)(
                store,
                [GetOp(tuple(r[0].split(".")), r[1], refresh_ttl=False) for r in live],
            )
            puts = [
                PutOp(
                    tuple(r[0].split(".")),
                    r[1],
                    r[2],
                    index=None if index is not None else False,
                    ttl=float(r[4]) if r[4] is not None else None,
                )
                for r, item in zip(live, current, strict=True)
                if item is None or item.value != r[2]
            ]
            if puts and not dry_run:
                yield from _plan(LangGraphStore.batch)(store, puts)
            done += len(live)
            written += len(puts)
            if progress is not None:
                progress(done + skipped, total)
            if len(rows) < self.page_size:
                break
        return ImportReport(
            "store",
            f"{self.source.schema}.{table}",
            found=done,
            written=written,
            unchanged=done - written,
            groups=len(namespaces),
            dry_run=dry_run,
        )

    astore_items = store_items.async_


def _json_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata as stored: values JSON cannot hold (times, UUIDs, decimals) as text."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        out[str(k)] = _json_value(v)
    return out


def _json_value(v: Any) -> Any:
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, Mapping):
        return _json_metadata(v)
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, datetime):
        return v.isoformat()
    return str(v)


def _session_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(
            f"expected a session id as a UUID (PostgresChatMessageHistory's), got {value!r}"
        ) from None


def source_url(source: str) -> str:
    """A source given as a URL, or as a libpq ``key=value`` string, as a URL.

    Example:
        >>> source_url("host=db dbname=app user=me")
        'postgresql://?dbname=app&host=db&user=me'
        >>> source_url("postgresql+psycopg://me@db/app")
        'postgresql+psycopg://me@db/app'
    """
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"expected a postgresql:// URL or a libpq DSN, got {source!r}")
    if "://" in source:
        return source
    from urllib.parse import urlencode

    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(source)
    except Exception as exc:
        raise ValueError(
            f"expected a postgresql:// URL or a libpq DSN (host=... dbname=...): {exc}"
        ) from None
    return "postgresql://?" + urlencode(sorted((k, str(v)) for k, v in params.items()))
