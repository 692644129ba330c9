"""``agentmem prune`` on both backends (click's CliRunner, a real database)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from test_checkpoint import cfg, chat_graph, put_chain

from langchain_agentmem import CheckpointSaver, Engine
from langchain_agentmem.cli import main


def cli_args(engine: Engine) -> list[str]:
    url = engine.url
    return ["--url", url, "--schema", engine.schema]


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    return result


def test_prune_keeps_latest_of_every_thread_of_every_tenant(engine: Engine) -> None:
    saver = CheckpointSaver(engine, user_key="user_id")
    graph = chat_graph(saver)
    for user in ("alice", "bob"):
        for thread in ("t1", "t2"):
            graph.invoke({"messages": ["x"], "note": ""}, cfg(thread, user_id=user))
    result = invoke("prune", *cli_args(engine), "--yes")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "deleted 12 checkpoints of 2 tenants"
    for user in ("alice", "bob"):
        for thread in ("t1", "t2"):
            assert len(list(saver.list(cfg(thread, user_id=user)))) == 1
            assert graph.get_state(cfg(thread, user_id=user)).values["messages"] == [
                "x",
                "a1",
                "b2",
            ]


def test_prune_by_age_and_selected_threads(engine: Engine) -> None:
    saver = CheckpointSaver(engine)
    put_chain(saver, "a", 3)
    put_chain(saver, "b", 3)
    assert (
        invoke("prune", *cli_args(engine), "--older-than", "1d").output.strip()
        == "deleted 0 checkpoints of 1 tenant"
    )
    result = invoke("prune", *cli_args(engine), "--thread", "a", "--user", "default", "--yes")
    assert result.output.strip() == "deleted 2 checkpoints of 1 tenant"
    assert len(list(saver.list(cfg("b")))) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "soon"], "expected a number and a unit"),
        (["--older-than", "1d", "--thread", "a"], "does not combine"),
        (["--no-keep-latest"], "needs --older-than"),
    ],
)
def test_prune_refuses_bad_options(engine: Engine, args: list[str], message: str) -> None:
    result = invoke("prune", *cli_args(engine), *args)
    assert result.exit_code != 0 and message in result.output


def test_prune_help_has_an_example() -> None:
    result = invoke("prune", "--help")
    assert (
        result.exit_code == 0
        and "Example:" in result.output
        and "agentmem prune --older-than 30d" in result.output
    )
