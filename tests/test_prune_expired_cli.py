"""``agentmem prune --working-memory`` and ``--kv`` on both backends (CliRunner, a real
database)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from langchain_agentmem import Engine, KeyValueStore, WorkingMemory
from langchain_agentmem._encoding.keys import encode_key
from langchain_agentmem.cli import main

PAST = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _prune(engine: Engine, *args: str) -> str:
    result = CliRunner().invoke(
        main, ["prune", "--url", engine.url, "--schema", engine.schema, "--yes", *args]
    )
    assert result.exit_code == 0, result.output
    return result.output.strip()


def _expire(engine: Engine, table: str, user_id: str) -> None:
    with engine.transaction(user_id) as tx:
        tx.execute(
            "UPDATE {" + table + "} SET expires_at = ? "  # noqa: S608 (test)
            "WHERE user_id = ? AND expires_at IS NOT NULL",
            [engine.dialect.from_datetime(PAST), encode_key(user_id)],
        )


def _count(engine: Engine, table: str) -> int:
    with engine.transaction(readonly=True) as tx:
        row = tx.fetchone("SELECT count(*) FROM {" + table + "}")  # noqa: S608 (test)
    assert row is not None
    return int(row[0])


def test_prune_working_memory_of_every_tenant(engine: Engine) -> None:
    for user in ("alice", "bob\x00"):
        for session in ("s1", "s2"):
            WorkingMemory(engine, user_id=user, session_id=session).add_thought("t")
        _expire(engine, "working_memory", user)
    live = WorkingMemory(engine, user_id="carol", session_id="s")
    live.add_thought("keep")
    assert (
        _prune(engine, "--working-memory", "--batch-size", "1")
        == "deactivated 4 expired working-memory sessions of 2 tenants"
    )
    assert _prune(engine, "--working-memory") == (
        "deactivated 0 expired working-memory sessions of 0 tenants"
    )
    assert _count(engine, "working_memory") == 5 and live.is_active()
    assert _prune(engine, "--working-memory", "--delete", "--user", "alice") == (
        "deleted 2 expired or ended working-memory sessions of 1 tenant"
    )
    assert _prune(engine, "--working-memory", "--delete") == (
        "deleted 2 expired or ended working-memory sessions of 1 tenant"
    )
    assert _count(engine, "working_memory") == 1
    assert _count(engine, "working_memory_thoughts") == 1 and live.is_active()


def test_prune_expired_keys(engine: Engine) -> None:
    for user in ("alice", "bob"):
        kv = KeyValueStore(engine, "ns", user_id=user, ttl=timedelta(hours=1))
        kv.mset({"a": 1, "b": 2})
        KeyValueStore(engine, "other", user_id=user).set("forever", 1)
        _expire(engine, "kv", user)
    assert _prune(engine, "--kv", "--batch-size", "1") == "deleted 4 expired keys of 2 tenants"
    assert _count(engine, "kv") == 2
    assert _prune(engine, "--kv", "--working-memory") == (
        "deactivated 0 expired working-memory sessions of 0 tenants\n"
        "deleted 0 expired keys of 0 tenants"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--working-memory", "--older-than", "1d"], "do not combine with --older-than"),
        (["--kv", "--thread", "t"], "do not combine with --older-than, --thread"),
        (["--delete"], "--delete needs --working-memory"),
        (["--working-memory", "--batch-size", "0"], "0 is not in the range x>=1"),
    ],
)
def test_prune_expired_usage_errors(engine: Engine, args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        main, ["prune", "--url", engine.url, "--schema", engine.schema, *args]
    )
    assert result.exit_code == 2 and message in result.output, result.output


def test_prune_help_has_an_example_for_expired_rows() -> None:
    result = CliRunner().invoke(main, ["prune", "--help"])
    assert "agentmem prune --working-memory --delete --kv" in result.output
