"""The SQL composition API (dialects/compose.py): safe identifiers, rendering identical
to the template text it replaces, caching on structure, and statements that run."""

from __future__ import annotations

from typing import Any

import pytest

from langchain_agentmem import Engine
from langchain_agentmem._core.plan import Atomic, Plan, arun, run
from langchain_agentmem.dialects import (
    SQL,
    Composed,
    Ident,
    Many,
    One,
    PostgresDialect,
    RowLock,
    SQLiteDialect,
    Stmt,
    Table,
    Unnest,
)
from langchain_agentmem.dialects.statements import Body

DIALECTS = [PostgresDialect("agent_mem"), SQLiteDialect()]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_renders_like_the_template_it_replaces(dialect: Any) -> None:
    cols = [("k", "text"), ("v", "json")]
    old = (
        "SELECT k.key FROM {kv} k WHERE k.user_id = ? AND k.key IN (SELECT m.k FROM "  # noqa: S608 (the old form, compared)
        + dialect.unnest(cols)
        + ") AND k.expires_at > {now} ORDER BY k.key"
        + dialect.row_lock("update")
        + " LIMIT 10 -- 100%"
    )
    new = SQL(
        "SELECT k.key FROM {kv} k WHERE k.user_id = ? AND k.key IN (SELECT m.k FROM {u}) "
        "AND k.expires_at > {now} ORDER BY k.key{lock} LIMIT 10 -- 100%"
    ).format(u=Unnest(cols), lock=RowLock("update"))
    assert dialect.render(new) == dialect.render(old)
    table = Table("kv") + SQL(" AS ") + Ident("k")
    assert dialect.render(table) == dialect.render('{kv} AS "k"')


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_identifiers_are_quoted_by_the_dialect(dialect: Any) -> None:
    q = SQL("SELECT {} FROM {t} WHERE {}.{} = ?").format(
        SQL(", ").join([Ident("w", "goal"), Ident("key")]),
        Ident("w"),
        Ident("user_id"),
        t=Table("working_memory"),
    )
    table = dialect.table("working_memory")
    ph = "%s" if dialect.name == "postgres" else "?"
    expected = f'SELECT "w"."goal", "key" FROM {table} WHERE "w"."user_id" = {ph}'  # noqa: S608 (expected text)
    assert dialect.render(q) == expected


def test_refuses_what_is_not_a_composable() -> None:
    with pytest.raises(TypeError, match="got str: 'x = 1 OR true'"):
        SQL("SELECT * FROM {kv} WHERE {}").format("x = 1 OR true")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got int: 3"):
        SQL(", ").join([Ident("a"), 3])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        SQL("SELECT ") + "1"  # type: ignore[operator]
    with pytest.raises(TypeError, match="got bytes"):
        SQL(b"SELECT 1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        lambda: Ident('a"; drop table kv; --'),
        lambda: Ident("A"),
        lambda: Ident("a", "b\n"),
        lambda: Table("kv x"),
        lambda: Unnest([("k) AS m; --", "text")]),
        lambda: RowLock("share; drop"),
        lambda: Ident(),
    ],
)
def test_bad_identifiers_are_refused(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


def test_format_fields() -> None:
    with pytest.raises(ValueError, match=r"not used by the template: \['cols'\]"):
        SQL("SELECT 1").format(cols=Ident("a"))
    with pytest.raises(IndexError):
        SQL("SELECT {}, {}").format(Ident("a"))
    with pytest.raises(ValueError, match="unsupported field"):
        SQL("SELECT {x!r}").format(x=Ident("a"))
    # Numbered fields, a field used twice, a table reference left as it is.
    q = SQL("SELECT {0}, {0} FROM {kv} WHERE {1} = ?").format(Ident("a"), Ident("b"))
    assert q.template() == 'SELECT "a", "a" FROM {kv} WHERE "b" = ?'
    # Escaped braces stay literal braces through format and render.
    assert (
        SQLiteDialect().render(SQL("SELECT '{{}}', {}").format(Ident("a"))) == "SELECT '{}', \"a\""
    )


def test_cached_on_structure() -> None:
    dialect = SQLiteDialect()
    a = SQL("SELECT {} FROM {kv}").format(Ident("key"))
    b = SQL("SELECT ") + Ident("key") + SQL(" FROM {kv}")
    c = SQL("SELECT {} FROM {kv}").format(Ident("value"))
    assert a == b and hash(a) == hash(b) and a != c
    assert a != 'SELECT "key" FROM {kv}'
    first = dialect.render(a)
    assert dialect.render(b) is first  # one cache entry for equal structures
    assert dialect.render(c) != first
    assert Composed([a]) == a and SQL("") + a == a


def _write_and_read(dialect: Any, values: list[tuple[str, str]]) -> Body[list[Any]]:
    cols = [("k", "text")]
    yield Many(
        SQL("INSERT INTO {kv} ({}) VALUES (?, ?, ?, ?)").format(
            SQL(", ").join(Ident(c) for c in ["user_id", "namespace", "key", "value"])
        ),
        [["u", "ns", k, f'"{v}"'] for k, v in values],
    )
    one = yield One(SQL("SELECT count(*) FROM {} WHERE user_id = ?").format(Table("kv")), ["u"])
    rows = yield Stmt(
        SQL(
            "SELECT t.{key} FROM {kv} t WHERE t.user_id = ? AND t.{key} IN "
            "(SELECT m.k FROM {u}) ORDER BY t.{key}"
        ).format(key=Ident("key"), u=Unnest(cols)),
        ["u", *dialect.unnest_params(cols, [(k,) for k, _ in values[:2]])],
        fetch=True,
    )
    return [one[0], [r[0] for r in rows]]


def _plan(dialect: Any, values: list[tuple[str, str]]) -> Plan[list[Any]]:
    result = yield Atomic(_write_and_read(dialect, values))
    return result  # type: ignore[no-any-return]


def test_statements_run(engine: Engine) -> None:
    values = [("b", "x"), ("a é", "y"), ("c", "z")]
    assert run(engine, "u", _plan(engine.dialect, values)) == [3, ["a é", "b"]]


async def test_statements_run_async(aengine: Engine) -> None:
    values = [("q", "x"), ("p", "y")]
    assert await arun(aengine, "u", _plan(aengine.dialect, values)) == [2, ["p", "q"]]


def test_template_needs_the_dialect_for_its_fragments() -> None:
    with pytest.raises(ValueError, match="needs the dialect"):
        (SQL("SELECT m.k FROM ") + Unnest([("k", "text")])).template()
    # Doubled braces are literal text, a bare {name} stays a fragment reference.
    assert SQLiteDialect().render(SQL("SELECT '{{now}}', {now}").format()) == (
        "SELECT '{now}', strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')"
    )
    assert "Ident" in repr(Ident("a")) and "'a'" in repr(Ident("a"))
