"""The table catalog names every table the migrations create, with its real primary key."""

from __future__ import annotations

from langchain_agentmem import Engine
from langchain_agentmem._core.catalog import TABLES, VIEWS, tenant_tables


def _tables(engine: Engine) -> set[str]:
    stmt = engine.dialect.tables()
    with engine.transaction(readonly=True) as tx:
        return {row[0] for row in tx.fetchall(stmt.sql, stmt.params)}


def _keys(engine: Engine, table: str) -> list[tuple[str, ...]]:
    """The primary key, then (SQLite rowid tables) the unique keys."""
    with engine.transaction(readonly=True) as tx:
        if engine.dialect.name == "postgres":
            rows = tx.fetchall(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = CAST(? AS regclass) AND i.indisprimary "
                "ORDER BY array_position(i.indkey, a.attnum)",
                [engine.dialect.table(table)],
            )
            return [tuple(r[0] for r in rows)]
        rows = tx.fetchall(
            "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", [table]
        )
        keys = [tuple(r[0] for r in rows)] if rows else []
        for (index,) in tx.fetchall(
            'SELECT name FROM pragma_index_list(?) WHERE "unique"', [table]
        ):
            cols = tx.fetchall("SELECT name FROM pragma_index_info(?) ORDER BY seqno", [index])
            keys.append(tuple(c[0] for c in cols))
        return keys


def test_every_migrated_table_is_in_the_catalog(engine: Engine) -> None:
    present = _tables(engine)
    known = {t.name for t in TABLES.values() if engine.dialect.name in t.dialects}
    assert present - known == set(), "tables the catalog does not know"
    assert known - present == set(), "catalog tables no migration creates"


def test_catalog_primary_keys_and_tenant_columns_match_the_schema(engine: Engine) -> None:
    for table in TABLES.values():
        if engine.dialect.name not in table.dialects or table.derived_from is not None:
            continue
        assert table.primary_key == _keys(engine, table.name)[0], table.name
    for table in tenant_tables(engine.dialect.name):
        if table.derived_from is None:
            assert table.primary_key[0] == table.tenant_column == "user_id", table.name


def test_every_migrated_view_is_in_the_catalog(engine: Engine) -> None:
    stmt = engine.dialect.views()
    with engine.transaction(readonly=True) as tx:
        present = {row[0] for row in tx.fetchall(stmt.sql, stmt.params)}
    known = {v.name for v in VIEWS.values() if engine.dialect.name in v.dialects}
    assert present == known
    for view in VIEWS.values():
        assert set(view.reads) <= set(TABLES), view.name
