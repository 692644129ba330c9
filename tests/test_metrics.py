"""Operation metrics: connect(..., metrics=True) records every operation of every memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from langchain_agentmem import Engine, KeyValueStore, KnowledgeBase, connect

from conftest import make_engine


def metric_rows(engine: Engine, user: str) -> list[tuple[Any, ...]]:
    with engine.transaction(user, readonly=True) as tx:
        return tx.fetchall(
            "SELECT memory_type, operation, results_count, error, latency_ms, created_at "
            "FROM {agent_memory_metrics} WHERE user_id = ? ORDER BY created_at, id",
            (user,),
        )


@pytest.fixture
def measured(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    eng = make_engine(backend, url, tmp_path)
    eng.metrics = True
    eng.migrate()  # migrations have no tenant: not recorded
    yield eng
    eng.close()


def test_every_operation_is_recorded_with_its_latency_results_and_error(measured: Engine) -> None:
    kb = KnowledgeBase(measured, user_id="alice")
    kb.assert_fact("Bob", "likes", "chess")
    kb.assert_fact("Bob", "likes", "tea")
    assert len(kb.facts("Bob")) == 2
    kv = KeyValueStore(measured, "settings", user_id="alice")
    kv.set("theme", "dark")
    assert kv.get("missing") is None
    with pytest.raises(KeyError, match="no knowledge item"):
        kb.record_application("nope", True)
    rows = metric_rows(measured, "alice")
    # (Rows written within one millisecond have no order on SQLite: compare as a set.)
    assert sorted((r[0], r[1], r[2] if r[2] is not None else -1) for r in rows) == [
        ("KeyValueStore", "get", 0),
        ("KeyValueStore", "set", 0),
        ("KnowledgeBase", "assert_fact", 1),
        ("KnowledgeBase", "assert_fact", 1),
        ("KnowledgeBase", "facts", 2),
        ("KnowledgeBase", "record_application", -1),
    ]
    errors = [r[3] for r in rows if r[3] is not None]
    assert len(errors) == 1 and errors[0].startswith("KeyError: \"no knowledge item 'nope'")
    assert all(r[4] >= 0 for r in rows) and all(r[5] is not None for r in rows)
    # Only the tenant's own rows, and readable through the health view.
    assert metric_rows(measured, "bob") == []
    with measured.transaction("alice", readonly=True) as tx:
        health = dict(
            tx.fetchall(
                "SELECT memory_table, row_count FROM {v_memory_system_health} WHERE user_id = ?",
                ("alice",),
            )
        )
    assert health["knowledge_facts"] == 2 and health["kv"] == 1
    assert health["agent_memory_metrics"] == 6


async def test_async_operations_are_recorded(measured: Engine) -> None:
    kb = KnowledgeBase(measured, user_id="carol")
    await kb.aadd_rule({"a": 1}, "b")
    assert len(await kb.amatching_rules({"a": 1})) == 1
    with pytest.raises(ValueError, match="unknown operator"):
        await kb.aadd_rule({"a": {"$x": 1}}, "b")  # refused before any transaction: recorded too
    rows = metric_rows(measured, "carol")
    assert sorted((r[1], r[2] or 0, r[3] is None) for r in rows) == [
        ("add_rule", 0, False),
        ("add_rule", 1, True),
        ("matching_rules", 1, True),
    ]
    (error,) = [r[3] for r in rows if r[3] is not None]
    assert error.startswith("ValueError: condition['a']: unknown operator")
    await measured.aclose()


def test_metrics_are_off_by_default(engine: Engine) -> None:
    assert engine.metrics is False
    KnowledgeBase(engine, user_id="alice").assert_fact("Bob", "likes", "chess")
    assert metric_rows(engine, "alice") == []


def test_a_metric_that_cannot_be_written_is_an_error_naming_the_finished_operation(
    tmp_path: Path,
) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'm.db'}", metrics=True)
    engine.migrate()
    with engine.transaction() as tx:
        tx.execute("DROP TABLE {agent_memory_metrics}")
    kv = KeyValueStore(engine, "n", user_id="alice")
    with pytest.raises(Exception, match="KeyValueStore.set completed, but recording its metric"):
        kv.set("k", 1)
    assert (
        KeyValueStore(connect(f"sqlite:///{tmp_path / 'm.db'}"), "n", user_id="alice").get("k") == 1
    )
    with pytest.raises(TypeError, match="metrics must be True or False"):
        connect("sqlite://", metrics="yes")  # type: ignore[arg-type]
    engine.close()
