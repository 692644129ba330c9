"""One user's data, whole: export to a portable archive, import it anywhere, forget it.

Every plan here reads the table catalog (:mod:`._core.catalog`) for *which* tables hold a
user's rows (the tenant tables, parents before children, derived tables left out) and the
database itself for their columns (``information_schema`` / ``PRAGMA`` through the
dialect), so a table or column added by a later migration is exported, imported and
forgotten without a change here.

**The archive** is a zip file:

* ``manifest.json``: the format, the schema version of the database it came from, the
  user, and per table its columns (name and portable kind) and row count;
* ``tables/<table>.jsonl``: one JSON array a row, values in the manifest's column order;
* ``reference/<table>.jsonl``: the shared catalogue rows (e.g. ``vector_collections``) that
  the user's rows point to; an import finds them by their natural key (``natural_key`` in the
  catalog) or creates them, and rewrites the pointers.

Values are exact: text (NUL and lone surrogates included) through the package's JSON codec,
JSON columns as their JSON text, timestamps as ISO 8601 in UTC, bytes as base64, vectors as
lists of floats (float32 values print exactly). Reads are paged by primary key, so an export
holds one page in memory; an import reads the archive line by line and inserts in batches,
all in one transaction (it lands whole or not at all).

Example:
    >>> import tempfile, os
    >>> from langchain_agentmem import ChatMessageHistory, connect
    >>> src, dst = connect("sqlite://"), connect("sqlite://")
    >>> _ = src.migrate(); _ = dst.migrate()
    >>> ChatMessageHistory(src, "s1", user_id="ann").add_user_message("hi\\x00there")
    >>> path = os.path.join(tempfile.mkdtemp(), "ann.zip")
    >>> src.export_user("ann", path)["events"]
    1
    >>> dst.import_user(path)["events"]
    1
    >>> ChatMessageHistory(dst, "s1", user_id="ann").messages[0].content
    'hi\\x00there'
    >>> src.forget_user("ann")["sessions"]
    1
"""

from __future__ import annotations

import base64
import io
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from .._encoding.json import dumps, loads
from ..dialects import SQL, Body, Composed, Copy, Dialect, Ident, Many, One, Stmt
from ..dialects import Table as Relation
from ..dialects.base import ImportStage
from ..dialects.compose import idents, marks
from .catalog import CACHE_COLUMNS, TABLES, Table, derived_tables, tenant_tables
from .migrations import version_plan
from .plan import Atomic, Plan

__all__ = [
    "ARCHIVE_FORMAT",
    "Progress",
    "count_plan",
    "export_plan",
    "forget_plan",
    "import_plan",
    "ordered_tables",
]

#: What ``manifest.json`` says it is (``format``), and the layout version (``format_version``).
ARCHIVE_FORMAT = "langchain-agentmem/user-archive"
FORMAT_VERSION = 1

#: Called as ``progress(table, rows)`` after each page or batch (``rows``: how many more).
Progress = Callable[[str, int], None] | None

Column = tuple[str, str, str]
"""(name, portable kind, SQL type), see :meth:`~langchain_agentmem.dialects.Dialect.column_kinds`."""


def ordered_tables(
    dialect: str, present: set[str] | None = None, *, bookkeeping: bool = False
) -> list[Table]:
    """The tenant tables of ``dialect`` that hold a user's own rows, parents before
    children (catalog order otherwise); derived tables left out, and with ``present`` the
    tables the database lacks.

    Example:
        >>> names = [t.name for t in ordered_tables("sqlite")]
        >>> names.index("sessions") < names.index("events")
        True
        >>> "vectors_fts" in names
        False
    """
    tables = [
        t
        for t in tenant_tables(dialect)
        if t.derived_from is None
        and (present is None or t.name in present)
        and (bookkeeping or not t.bookkeeping)
    ]
    names = {t.name for t in tables}
    out: list[Table] = []
    placed: set[str] = set()
    while len(out) < len(tables):
        for t in tables:
            if t.name not in placed and (
                t.parent is None or t.parent not in names or t.parent in placed
            ):
                out.append(t)
                placed.add(t.name)
                break
        else:  # pragma: no cover (the catalog test keeps parents acyclic)
            raise ValueError("the catalog's parent links form a cycle")
    return out


# -- what the database holds -------------------------------------------------------------


class _Schema:
    """The tenant tables present, their columns, and their pointers to reference rows."""

    def __init__(self) -> None:
        self.tables: list[Table] = []
        self.columns: dict[str, list[Column]] = {}
        #: table -> [(column, reference table, referenced column)]
        self.refs: dict[str, list[tuple[str, str, str]]] = {}


def _describe(dialect: Dialect) -> Body[_Schema]:
    schema = _Schema()
    present = {row[0] for row in (yield dialect.tables())}
    schema.tables = ordered_tables(dialect.name, present)
    wanted = list(schema.tables)
    for ref in TABLES.values():
        if ref.reference and (ref.natural_key or ()) and ref.name in present:
            wanted.append(ref)
    for table in wanted:
        rows = yield dialect.columns(table.name)
        own = CACHE_COLUMNS.get(table.name, ())
        schema.columns[table.name] = [
            c for c in dialect.column_kinds(rows, table.vector_column) if c[0] not in own
        ]
    for table in schema.tables:
        fks = yield dialect.foreign_keys(table.name)
        schema.refs[table.name] = [
            (str(col), str(rt), str(rc))
            for col, rt, rc in fks
            if rt in TABLES and TABLES[rt].reference and TABLES[rt].natural_key
        ]
    return schema


_COMMA = SQL(", ")
_AND = SQL(" AND ")


def _exports(dialect: Dialect, columns: Sequence[tuple[str, str]]) -> Composed:
    """The select list reading ``(name, kind)`` columns in their archive form (the
    dialect's expressions over checked names)."""
    return _COMMA.join(SQL(dialect.export_expr(name, kind)) for name, kind in columns)


def _placeholders(dialect: Dialect, columns: Sequence[Column]) -> Composed:
    """The ``VALUES`` placeholders of ``columns`` (with the dialect's casts)."""
    return _COMMA.join(SQL(dialect.import_placeholder(c[1], c[2])) for c in columns)


def _tenant_is(table: Table) -> Composed:
    """``FROM <table> WHERE <tenant column> = ?``."""
    return SQL("FROM {t} WHERE {tenant} = ?").format(
        t=Relation(table.name), tenant=Ident(str(table.tenant_column))
    )


def _encode(kind: str, value: Any) -> Any:
    """A value as the archive holds it (see the module docstring)."""
    if value is None:
        return None
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "bool":
        return bool(value)
    if kind == "real":
        return float(value)
    return value


def _decode(kind: str, value: Any) -> Any:
    """An archive value in its Python form: ``bytes``, ``datetime``, lists, scalars."""
    if value is None:
        return None
    if kind == "bytes":
        return base64.b64decode(value)
    if kind == "timestamp":
        return datetime.fromisoformat(value)
    return value


def _adapt(dialect: Dialect, value: Any, src: str, dst: str, where: str) -> Any:
    """A decoded value of kind ``src`` as a parameter of a column of kind ``dst``."""
    if value is None or src == dst:
        return dialect.import_value(dst, value)
    if dst == "text":
        if src == "timestamp":  # Postgres archive into SQLite: stored as the dialect writes it
            return dialect.from_datetime(value)
        if src == "text[]":
            return dumps(list(value))
        if src == "json":
            return value
    elif dst == "timestamp" and src == "text":
        return datetime.fromisoformat(value)
    elif dst == "json" and src == "text":
        return value
    elif dst == "text[]" and src == "text":
        return loads(value)
    elif dst == "bool" and src == "integer":
        return bool(value)
    elif dst == "integer" and src == "bool":
        return int(value)
    elif dst == "real" and src == "integer":
        return float(value)
    raise ValueError(f"{where}: the archive holds a {src} value, the database expects {dst}")


# -- counts -----------------------------------------------------------------------------------


def _count_body(dialect: Dialect, uid: str) -> Body[dict[str, int]]:
    present = {row[0] for row in (yield dialect.tables())}
    counts: dict[str, int] = {}
    for table in ordered_tables(dialect.name, present):
        row = yield One(SQL("SELECT count(*) ") + _tenant_is(table), [uid])
        counts[table.name] = int(row[0]) if row else 0
    return counts


def count_plan(dialect: Dialect, uid: str) -> Plan[dict[str, int]]:
    """Rows of the user (stored id ``uid``) per tenant table."""
    return (yield Atomic(_count_body(dialect, uid), readonly=True, user_id=uid))


# -- export -------------------------------------------------------------------------------------


def _page_body(
    dialect: Dialect,
    table: Table,
    columns: list[Column],
    uid: str,
    after: Sequence[Any] | None,
    size: int,
) -> Body[list[tuple[Any, ...]]]:
    tenant = str(table.tenant_column)
    keys = [k for k in table.primary_key if k != tenant]
    select = _exports(dialect, [(name, kind) for name, kind, _ in columns])
    sql = SQL("SELECT {select} ").format(select=select) + _tenant_is(table)
    params: list[Any] = [uid]
    if keys:
        if after is not None:
            sql += SQL(" AND ({keys}) > ({marks})").format(
                keys=idents(keys), marks=marks(len(keys))
            )
            params.extend(after)
        sql += SQL(" ORDER BY {keys} LIMIT ?").format(keys=idents(keys))
        params.append(size)
    rows = yield Stmt(sql, params, fetch=True)
    return [tuple(r) for r in rows]


def _reference_body(
    dialect: Dialect, schema: _Schema, ref: Table, uid: str
) -> Body[list[tuple[Any, ...]]]:
    columns = schema.columns[ref.name]
    select = _exports(dialect, [(name, kind) for name, kind, _ in columns])
    out: dict[Any, tuple[Any, ...]] = {}
    names = [c[0] for c in columns]
    for table in schema.tables:
        for col, rt, rc in schema.refs[table.name]:
            if rt != ref.name:
                continue
            rows = yield Stmt(
                SQL("SELECT {select} FROM {ref} WHERE {rc} IN (SELECT {col} ").format(
                    select=select, ref=Relation(ref.name), rc=Ident(rc), col=Ident(col)
                )
                + _tenant_is(table)
                + SQL(") ORDER BY {rc}").format(rc=Ident(rc)),
                [uid],
                fetch=True,
            )
            for row in rows:
                out[row[names.index(rc)]] = tuple(row)
    return [out[k] for k in sorted(out)]


def _line(dialect: Dialect, columns: list[Column], row: Sequence[Any]) -> bytes:
    values = [
        _encode(kind, dialect.export_value(kind, value))
        for (_, kind, _), value in zip(columns, row, strict=True)
    ]
    return (dumps(values, name="row") + "\n").encode("utf-8")


def export_plan(
    dialect: Dialect,
    uid: str,
    path: str | os.PathLike[str],
    *,
    page_size: int = 1000,
    progress: Progress = None,
) -> Plan[dict[str, int]]:
    """Write every row of the user (stored id ``uid``) to the archive at ``path``; the
    rows written per table."""
    page_size = _check_size(page_size, "page_size")
    version = yield from version_plan(dialect)
    if not version:
        raise ValueError("the database has no memory tables yet: run migrate() first")
    schema = yield Atomic(_describe(dialect), readonly=True, user_id=uid)
    counts: dict[str, int] = {}
    references: dict[str, int] = {}
    # Level 1: deflate's default level spent half the export's time for a few % of size.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for ref in TABLES.values():
            if ref.name not in schema.columns or not any(
                rt == ref.name for refs in schema.refs.values() for _, rt, _ in refs
            ):
                continue
            rows = yield Atomic(
                _reference_body(dialect, schema, ref, uid), readonly=True, user_id=uid
            )
            with zf.open(f"reference/{ref.name}.jsonl", "w", force_zip64=True) as out:
                for row in rows:
                    out.write(_line(dialect, schema.columns[ref.name], row))
            references[ref.name] = len(rows)
        for table in schema.tables:
            columns = schema.columns[table.name]
            names = [c[0] for c in columns]
            key_index = [names.index(k) for k in table.primary_key if k != table.tenant_column]
            written = 0
            after: tuple[Any, ...] | None = None
            with zf.open(f"tables/{table.name}.jsonl", "w", force_zip64=True) as out:
                while True:
                    rows = yield Atomic(
                        _page_body(dialect, table, columns, uid, after, page_size),
                        readonly=True,
                        user_id=uid,
                    )
                    for row in rows:
                        out.write(_line(dialect, columns, row))
                    written += len(rows)
                    if progress is not None and rows:
                        progress(table.name, len(rows))
                    if not key_index or len(rows) < page_size:
                        break
                    after = tuple(rows[-1][i] for i in key_index)
            counts[table.name] = written
        manifest = {
            "format": ARCHIVE_FORMAT,
            "format_version": FORMAT_VERSION,
            "schema_version": version,
            "source_dialect": dialect.name,
            "user_id": uid,
            "exported_at": datetime.now().astimezone().isoformat(),
            "tables": [
                {"name": t.name, "columns": [[n, k] for n, k, _ in schema.columns[t.name]], "rows": counts[t.name]}
                for t in schema.tables
            ],
            "reference": [
                {"name": name, "columns": [[n, k] for n, k, _ in schema.columns[name]], "rows": n_rows}
                for name, n_rows in references.items()
            ],
        }  # fmt: skip
        zf.writestr("manifest.json", dumps(manifest, name="manifest"))
    return counts


# -- import ---------------------------------------------------------------------------------------


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of the archive at ``path`` (``ValueError`` when it is not one)."""
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = loads(zf.read("manifest.json").decode("utf-8"))
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(
            f"{os.fspath(path)!r} is not a user archive (expected a zip file with a "
            f"manifest.json written by export_user): {exc}"
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise ValueError(
            f"{os.fspath(path)!r} is not a user archive: expected format {ARCHIVE_FORMAT!r}, "
            f"got {manifest.get('format') if isinstance(manifest, dict) else manifest!r}"
        )
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"archive layout version {manifest.get('format_version')!r} is not supported: "
            f"expected {FORMAT_VERSION} (upgrade langchain-agentmem)"
        )
    return manifest


def _lines(zf: zipfile.ZipFile, name: str) -> Iterator[list[Any]]:
    with zf.open(name) as raw:
        for line in io.TextIOWrapper(raw, encoding="utf-8", newline="\n"):
            if line.strip():
                yield loads(line)


def _target_columns(
    schema: _Schema, name: str, archive_columns: list[list[str]]
) -> list[tuple[int, Column]]:
    """(archive position, target column) of each archive column."""
    target = {c[0]: c for c in schema.columns[name]}
    out = []
    for i, (col, _) in enumerate(archive_columns):
        if col not in target:
            raise ValueError(
                f"the archive's {name}.{col} has no column in this database: import into a "
                "database of the same or a newer schema version"
            )
        out.append((i, target[col]))
    return out


def _reference_import(
    dialect: Dialect, schema: _Schema, zf: zipfile.ZipFile, entry: dict[str, Any]
) -> Body[dict[Any, Any]]:
    """Match or create the reference rows of ``entry``; old key -> new key."""
    ref = TABLES.get(entry["name"])
    if ref is None or not ref.reference or ref.name not in schema.columns:
        raise ValueError(f"the archive's reference table {entry['name']!r} is not in this database")
    archive_cols = entry["columns"]
    names = [c[0] for c in archive_cols]
    (key,) = ref.primary_key
    mapping: dict[Any, Any] = {}
    cols = _target_columns(schema, ref.name, archive_cols)
    compare = [(i, c) for i, c in cols if c[0] not in ref.primary_key and c[0] != ref.time_column]
    insert = [(i, c) for i, c in cols if c[0] not in ref.primary_key]
    match = _AND.join(SQL("{} = ?").format(Ident(m)) for m in (ref.natural_key or ()))
    select = _exports(dialect, [(c[0], c[1]) for _, c in compare])
    for values in _lines(zf, f"reference/{ref.name}.jsonl"):
        natural = [values[names.index(m)] for m in (ref.natural_key or ())]
        lock = dialect.lock_keys([(ref.name, *map(str, natural))])
        if lock is not None:
            yield lock
        find = SQL("SELECT {key}, {select} FROM {ref} WHERE {match}").format(
            key=Ident(key), select=select, ref=Relation(ref.name), match=match
        )
        row = yield One(find, natural)
        if row is None:
            params = [
                _adapt(
                    dialect,
                    _decode(archive_cols[i][1], values[i]),
                    archive_cols[i][1],
                    c[1],
                    f"{ref.name}.{c[0]}",
                )
                for i, c in insert
            ]
            row = yield One(
                SQL("INSERT INTO {ref} ({cols}) VALUES ({marks}) RETURNING {key}").format(
                    ref=Relation(ref.name),
                    cols=idents([c[0] for _, c in insert]),
                    marks=_placeholders(dialect, [c for _, c in insert]),
                    key=Ident(key),
                ),
                params,
            )
            assert row is not None
        else:
            for (i, c), have in zip(compare, row[1:], strict=True):
                mine = _encode(c[1], dialect.export_value(c[1], have))
                if archive_cols[i][1] == c[1] and mine != values[i]:
                    raise ValueError(
                        f"{ref.name} {dict(zip((ref.natural_key or ()), natural, strict=True))} exists in "
                        f"this database with {c[0]}={mine!r}, the archive has {values[i]!r}"
                    )
        mapping[values[names.index(key)]] = row[0]
    return mapping


def _import_body(
    dialect: Dialect,
    schema: _Schema,
    zf: zipfile.ZipFile,
    manifest: dict[str, Any],
    uid: str,
    batch_size: int,
    progress: Progress,
) -> Body[dict[str, int]]:
    by_name = {t.name: t for t in schema.tables}
    copying = dialect.supports_copy
    for entry in manifest["tables"]:
        if entry["name"] not in by_name:
            raise ValueError(
                f"the archive's table {entry['name']!r} is not in this database: import into a "
                "database of the same or a newer schema version (run migrate())"
            )
    for table in schema.tables:
        row = yield One(SQL("SELECT count(*) ") + _tenant_is(table), [uid])
        if row and row[0]:
            raise ValueError(
                f"user {uid!r} already has {row[0]} row(s) in {table.name}: import into a user "
                "with no data (forget_user first, or import under another user_id)"
            )
    mappings: dict[str, dict[Any, Any]] = {}
    for entry in manifest.get("reference", []):
        mappings[entry["name"]] = yield from _reference_import(dialect, schema, zf, entry)
    counts: dict[str, int] = {}
    for entry in manifest["tables"]:
        table = by_name[entry["name"]]
        archive_cols = entry["columns"]
        cols = _target_columns(schema, table.name, archive_cols)
        remap = {col: mappings.get(rt, {}) for col, rt, _ in schema.refs[table.name]}
        sql = SQL("INSERT INTO {t} ({cols}) VALUES ({marks})").format(
            t=Relation(table.name),
            cols=idents([c[0] for _, c in cols]),
            marks=_placeholders(dialect, [c for _, c in cols]),
        )
        # Postgres: each batch by COPY into a temporary table, then one INSERT ... SELECT
        # (a statement a batch instead of one a row); elsewhere one executemany a batch.
        stage = dialect.import_stage(table.name, [c for _, c in cols]) if copying else None
        if stage is not None:
            yield stage.create
        batch: list[list[Any]] = []
        done = 0
        for values in _lines(zf, f"tables/{table.name}.jsonl"):
            params = []
            for i, (name, kind, _) in cols:
                src = archive_cols[i][1]
                if name == table.tenant_column:
                    params.append(uid)
                elif name in remap:
                    if values[i] not in remap[name]:
                        raise ValueError(
                            f"{table.name}.{name}={values[i]!r} points at no row of the archive's reference rows"
                        )
                    params.append(remap[name][values[i]])
                elif stage is not None and kind in stage.text_kinds and src == kind:
                    params.append(stage.param(kind, _decode(src, values[i])))
                else:
                    where = f"{table.name}.{name}"
                    params.append(_adapt(dialect, _decode(src, values[i]), src, kind, where))
            batch.append(params)
            if len(batch) >= batch_size:
                yield from _insert_batch(sql, stage, batch)
                done += len(batch)
                if progress is not None:
                    progress(table.name, len(batch))
                batch = []
        if batch:
            yield from _insert_batch(sql, stage, batch)
            done += len(batch)
            if progress is not None:
                progress(table.name, len(batch))
        counts[table.name] = done
    return counts


#: Fewer rows of a table than this go in by executemany even where COPY is supported.
COPY_MIN_ROWS = 32


def _insert_batch(sql: Composed, stage: ImportStage | None, batch: list[list[Any]]) -> Body[None]:
    if stage is None or len(batch) < COPY_MIN_ROWS:
        yield Many(sql, batch)
        return
    yield Copy(stage.copy, stage.types, batch)
    yield stage.move
    yield stage.empty


def import_plan(
    dialect: Dialect,
    path: str | os.PathLike[str],
    uid: str | None = None,
    *,
    batch_size: int = 1000,
    progress: Progress = None,
) -> Plan[dict[str, int]]:
    """Load the archive at ``path`` in one transaction, as the user it was exported from
    or (stored id) ``uid``; the rows inserted per table."""
    batch_size = _check_size(batch_size, "batch_size")
    manifest = read_manifest(path)
    version = yield from version_plan(dialect)
    if int(manifest["schema_version"]) > version:
        raise ValueError(
            f"the archive has schema version {manifest['schema_version']}, this database "
            f"{version}: run migrate() on it first (an import needs the same or a newer schema)"
        )
    target = uid if uid is not None else str(manifest["user_id"])
    schema = yield Atomic(_describe(dialect), readonly=True, user_id=target)
    with zipfile.ZipFile(path) as zf:
        body = _import_body(dialect, schema, zf, manifest, target, batch_size, progress)
        counts = yield Atomic(body, user_id=target)
    return counts  # type: ignore[no-any-return]


# -- forget ---------------------------------------------------------------------------------------


def _forget_body(dialect: Dialect, uid: str) -> Body[dict[str, int]]:
    present = {row[0] for row in (yield dialect.tables())}
    counts: dict[str, int] = {}
    # Children first; the package's bookkeeping about the user goes too, uncounted, and
    # last: a hybrid cache's outbox triggers read it (sync_marks) while the rows go.
    tables = reversed(ordered_tables(dialect.name, present, bookkeeping=True))
    for table in sorted(tables, key=lambda t: t.bookkeeping):
        n = yield Stmt(SQL("DELETE ") + _tenant_is(table), [uid])
        counts[table.name] = int(n)
    for derived in derived_tables(dialect.name):
        if derived.name in present and counts.get(str(derived.derived_from)):
            yield from dialect.purge_derived(derived.name)
    return {t.name: counts[t.name] for t in ordered_tables(dialect.name, present)}


def forget_plan(dialect: Dialect, uid: str) -> Plan[dict[str, int]]:
    """Delete every row of the user (stored id ``uid``) in one transaction; the rows
    deleted per table."""
    return (yield Atomic(_forget_body(dialect, uid), user_id=uid))


def _check_size(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return value
