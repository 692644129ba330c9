"""The CLI as a new user meets it: ``-h``, ``--json`` on every command (no password, no
repr), prune counted, confirmed and dry-run, a one-line "run `agentmem migrate`" on an
unmigrated database, and no database file created by a read command. Both backends."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
import pytest
from click.testing import CliRunner
from test_checkpoint import cfg, chat_graph

from langchain_agentmem import CheckpointSaver, Engine
from langchain_agentmem import cli as cli_module
from langchain_agentmem.cli import main

from conftest import fresh_schema


def agentmem(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=input)


def db(engine: Engine) -> list[str]:
    return ["--url", engine.url, "--schema", engine.schema]


def all_commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += all_commands(command, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


def test_h_and_json_on_every_command() -> None:
    assert agentmem("-h").exit_code == 0
    for path in all_commands():
        result = agentmem(*path, "-h")
        assert result.exit_code == 0, path
        assert "--json" in result.output, f"`agentmem {' '.join(path)}` has no --json"


def test_status_json_has_the_url_without_password(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    user = parts.username or "postgres"
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    # The embedded server trusts local connections: the password is sent and ignored.
    url = urlunsplit((parts.scheme, f"{user}:s3cr3t-pw@{host}{port}", parts.path, parts.query, ""))
    schema = fresh_schema()
    migrated = agentmem("migrate", "--url", url, "--schema", schema, "--json")
    assert migrated.exit_code == 0, migrated.output
    assert json.loads(migrated.output)["schema_version"] > 0
    out = agentmem("status", "--url", url, "--schema", schema, "--json")
    assert out.exit_code == 0, out.output
    status = json.loads(out.output)
    assert "s3cr3t-pw" not in out.output and "Engine(" not in status["url"]
    assert status["url"].startswith("postgresql://") and "***" in status["url"]
    assert status["schema"] == schema and status["tables"]["checkpoints"] == 0
    text = agentmem("status", "--url", url, "--schema", schema).output
    assert "s3cr3t-pw" not in text and "***" in text


def test_read_commands_never_create_a_database(tmp_path: Path) -> None:
    path = tmp_path / "mistyped.db"
    url = f"sqlite:///{path}"
    status = agentmem("status", "--url", url)
    assert status.exit_code == 0 and "not created" in status.output
    assert json.loads(agentmem("status", "--url", url, "--json").output)["exists"] is False
    for args in (["recall", "alice"], ["prune"], ["prune", "--kv"]):
        result = agentmem(*args, "--url", url)
        assert result.exit_code == 1 and f"no database at {path}" in result.output, args
    assert not path.exists()
    assert agentmem("migrate", "--url", url).exit_code == 0  # migrate creates it
    assert path.exists()


@pytest.mark.parametrize("command", [["recall", "alice"], ["prune"], ["prune", "--kv"]])
def test_unmigrated_database_says_run_migrate(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()  # an existing file with no tables
    result = agentmem(*command, "--url", f"sqlite:///{path}")
    assert result.exit_code == 1, result.output
    assert "run `agentmem migrate`" in result.output and "Traceback" not in result.output


def test_unmigrated_postgres_schema_says_run_migrate(postgres_url: str) -> None:
    result = agentmem("recall", "alice", "--url", postgres_url, "--schema", fresh_schema())
    assert result.exit_code == 1 and "run `agentmem migrate`" in result.output


def _threads(engine: Engine) -> CheckpointSaver:
    saver = CheckpointSaver(engine)
    graph = chat_graph(saver)
    for thread in ("t1", "t2"):
        graph.invoke({"messages": ["x"], "note": ""}, cfg(thread))
    return saver


def _count(saver: CheckpointSaver) -> int:
    return len(list(saver.list(None)))


def test_prune_dry_run_confirmation_and_json(engine: Engine) -> None:
    saver = _threads(engine)
    before = _count(saver)
    dry = agentmem("prune", *db(engine), "--dry-run")
    assert dry.exit_code == 0 and dry.output.strip() == "would delete 6 checkpoints of 1 tenant"
    assert json.loads(agentmem("prune", *db(engine), "--dry-run", "--json").output) == {
        "would_delete": 6,
        "tenants": 1,
        "dry_run": True,
    }
    refused = agentmem("prune", *db(engine), input="n\n")
    assert refused.exit_code == 1 and "nothing was deleted" in refused.output
    no_answer = agentmem("prune", *db(engine))  # no terminal, no --yes: nothing deleted
    assert no_answer.exit_code == 1 and "not confirmed" in no_answer.output
    assert _count(saver) == before
    agreed = agentmem("prune", *db(engine), input="y\n")
    assert agreed.exit_code == 0, agreed.output
    assert "Delete 6 checkpoints of 1 tenant?" in agreed.output
    assert agreed.output.strip().endswith("deleted 6 checkpoints of 1 tenant")
    assert _count(saver) == before - 6
    again = agentmem("prune", *db(engine), "--json")  # nothing to delete: nothing asked
    assert json.loads(again.output) == {"deleted": 0, "tenants": 1, "dry_run": False}


def test_prune_by_age_dry_run_counts_what_it_would_delete(engine: Engine) -> None:
    saver = _threads(engine)
    result = agentmem("prune", *db(engine), "--older-than", "0s", "--no-keep-latest", "--dry-run")
    assert result.output.strip() == f"would delete {_count(saver)} checkpoints of 1 tenant"
    assert (
        agentmem("prune", *db(engine), "--older-than", "0s", "--no-keep-latest", "-y").exit_code
        == 0
    )
    assert _count(saver) == 0


def test_prune_expired_json_and_dry_run(engine: Engine) -> None:
    out = agentmem("prune", *db(engine), "--kv", "--working-memory", "--dry-run", "--json")
    assert json.loads(out.output) == {
        "dry_run": True,
        "working_memory_tenants": [],
        "kv_tenants": [],
    }
    done = agentmem("prune", *db(engine), "--kv", "--json")
    assert json.loads(done.output) == {"dry_run": False, "kv": {"deleted": 0, "tenants": 0}}


def test_progress_bar_on_a_terminal(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    _threads(engine)
    monkeypatch.setattr(cli_module, "interactive", lambda: True)
    result = CliRunner().invoke(main, ["prune", *db(engine), "--yes", "--json"])
    assert result.exit_code == 0, result.output
    assert "pruning checkpoints" in result.stderr
    assert json.loads(result.stdout)["deleted"] == 6  # stdout stays one JSON object
