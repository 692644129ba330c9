"""The README's main job, the quickstart, the notebook and the CLI, run as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner
from nbclient import NotebookClient

from langchain_agentmem import connect
from langchain_agentmem.cli import main

from conftest import fresh_schema

ROOT = Path(__file__).resolve().parents[1]


def run_quickstart(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def quickstart_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AGENTMEM_URL"}
    env["AGENTMEM_HOME"] = str(tmp_path / "home")
    return env


def test_quickstart_remembers_across_restarts(quickstart_env: dict[str, str]) -> None:
    first = run_quickstart(quickstart_env)
    second = run_quickstart(quickstart_env)
    assert "First run: nothing remembered yet." in first
    assert "Welcome back: this is run 2." in second
    assert "Remember that run 1 happened" in second
    assert "The session now holds 4 messages; notes: run/0001, run/0002" in second


def test_quickstart_on_postgres(postgres_url: str, quickstart_env: dict[str, str]) -> None:
    env = {**quickstart_env, "AGENTMEM_URL": postgres_url}
    with connect(postgres_url) as engine:  # the quickstart uses the default schema
        engine.migrate()
        with engine.transaction() as tx:
            tx.execute("DELETE FROM {events} WHERE user_id = 'alice' AND session_id = 'quickstart'")
            tx.execute(
                "DELETE FROM {sessions} WHERE user_id = 'alice' AND session_id = 'quickstart'"
            )
            tx.execute("DELETE FROM {documents} WHERE user_id = 'alice' AND namespace = 'notes'")
    run_quickstart(env)
    assert "Welcome back: this is run 2." in run_quickstart(env)


def test_notebook_explores_the_quickstart_database(
    quickstart_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_quickstart(quickstart_env)
    run_quickstart(quickstart_env)
    monkeypatch.setenv("AGENTMEM_HOME", quickstart_env["AGENTMEM_HOME"])
    monkeypatch.delenv("AGENTMEM_URL", raising=False)
    notebook = nbformat.read(ROOT / "notebooks" / "01_explore.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    text = "\n".join(
        out.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert re.search(r"alice\s+quickstart\s+agent=quickstart\s+events=4", text)
    assert "human: Remember that run 2 happened" in text
    assert re.search(r"events\s+4\n", text)


def test_cli_migrate_and_status(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    result = runner.invoke(main, ["status", "--url", url])
    assert result.exit_code == 0 and "no tables yet" in result.output
    result = runner.invoke(main, ["migrate", "--url", url])
    assert result.exit_code == 0 and result.output.startswith("applied 1")
    assert "up to date" in runner.invoke(main, ["migrate"], env={"AGENTMEM_URL": url}).output
    result = runner.invoke(main, ["status", "--json"], env={"AGENTMEM_URL": url})
    assert result.exit_code == 0 and '"events": 0' in result.output


def test_cli_on_postgres_with_another_schema(postgres_url: str) -> None:
    schema = fresh_schema()
    runner = CliRunner()
    assert (
        runner.invoke(main, ["migrate", "--url", postgres_url, "--schema", schema]).exit_code == 0
    )
    result = runner.invoke(main, ["status", "--url", postgres_url, "--schema", schema])
    assert result.exit_code == 0
    assert re.search(r"sessions\s+0", result.output)


def test_cli_errors_are_helpful() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["status", "--url", "mysql://x/y"])
    assert result.exit_code == 2 and "unsupported database URL" in result.output
    result = runner.invoke(main, ["migrate", "--url", "postgresql://nobody@127.0.0.1:1/none"])
    assert result.exit_code == 1 and "cannot connect to Postgres" in result.output
    assert "Traceback" not in result.output


def test_every_cli_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    for name, command in main.commands.items():
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Example:" in result.output, f"`agentmem {name} --help` shows no example"
        assert (command.help or "").strip(), name


def test_the_ops_agent_learns_from_its_outcomes_across_restarts(tmp_path: Path) -> None:
    def shift() -> str:
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "learn_from_outcomes.py"), str(tmp_path / "ops.db")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    first, second, third = shift(), shift(), shift()
    assert "resolved 1 of 6" in first and "learned" not in first
    assert "learned: when disk almost full on the database host, clear_disk" in second
    assert "-- shift 3: 1 strategies known" in third and "resolved 6 of 6" in third
    assert "(a strategy learned before)" in third


def run_committed_notebook(name: str) -> tuple[list[Any], str]:
    """Execute ``notebooks/<name>`` from scratch (in its folder, as Jupyter runs it) after
    checking it is committed with its figures; its outputs and their plain text."""
    notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    # Committed with its outputs (so that it reads on GitHub) ...
    assert any(
        o.get("data", {}).get("image/png") for c in notebook.cells for o in c.get("outputs", [])
    )
    for cell in notebook.cells:
        cell["outputs"] = []
    # ... and it runs again from scratch here.
    NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    ).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    return outputs, text


def test_the_memory_notebook_draws_the_graph_timeline_neighbours_and_history() -> None:
    outputs, text = run_committed_notebook("02_memories.ipynb")
    figures = [o for o in outputs if o.get("data", {}).get("image/png")]
    assert len(figures) == 4  # graph, timeline, neighbours, checkpoint history
    assert re.search(r"Alice lives in Lyon\s+2019-03-01.*2022-09-01", text)  # closed, kept
    assert "Caro" in text and "cosine distance" in text
    assert re.search(r"\n0\s+13\s+loop", text)  # the newest checkpoint first


def test_the_agents_notebook_draws_activity_skills_importance_and_a_timeline() -> None:
    outputs, text = run_committed_notebook("02_agents.ipynb")
    figures = [o for o in outputs if o.get("data", {}).get("image/png")]
    assert len(figures) == 4  # sessions per hour, agents x skills, importance, timeline
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert "8 skills, 13 bindings" in text
    assert "calls outside a binding: 0" in text  # agents call only their bound skills
    assert "590 scored events, 25 of importance >= 0.8" in text
    assert re.search(r"decision\s+60\n", text)  # one decision per session
