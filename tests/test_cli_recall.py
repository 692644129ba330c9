"""``agentmem recall``: what is remembered about a user, from the command line."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from _fakes import ScriptedChatModel
from click.testing import CliRunner
from langchain_core.messages import AIMessage, HumanMessage

from langchain_agentmem import EntityMemory, GraphMemory, SummaryMemory, connect
from langchain_agentmem.cli import main


def test_recall_shows_summaries_entities_and_facts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    with connect(url) as engine:
        engine.migrate()
        SummaryMemory(
            engine,
            ScriptedChatModel(responses=["Talked about Bob."]),
            "monday",
            user_id="alice",
            max_token_limit=0,
        ).add_messages([HumanMessage("Bob?"), AIMessage("Bob.")])
        EntityMemory(engine, user_id="alice").set("Bob", "Alice's brother.", aliases=["Bobby"])
        kg = GraphMemory(engine, user_id="alice")
        kg.add_triple("Bob", "lives_in", "Lyon", at=datetime(2024, 1, 1, tzinfo=timezone.utc))
        kg.add_triple("Bob", "lives_in", "Berlin", at=datetime(2025, 1, 1, tzinfo=timezone.utc))
        assert [e.as_text() for e in kg.edges()] == ["Bob lives in Berlin"]
    runner = CliRunner()
    out = runner.invoke(main, ["recall", "alice", "--url", url])
    assert out.exit_code == 0, out.output
    assert "[monday] Talked about Bob." in out.output
    assert "Bob: Alice's brother." in out.output and "Bob lives in Berlin" in out.output
    past = runner.invoke(
        main,
        [
            "recall",
            "alice",
            "bobby",
            "--url",
            url,
            "--as-of",
            "2024-06-01T00:00:00+00:00",
            "--json",
        ],
    )
    assert past.exit_code == 0, past.output
    data = json.loads(past.output)
    assert data["entities"][0]["aliases"] == ["Bobby"]
    assert data["facts"] == [{"subject": "Bob", "relation": "lives_in", "object": "Lyon"}]
    other = runner.invoke(main, ["recall", "carol", "--url", url])
    assert "entities: 0" in other.output and "facts: 0" in other.output
    bad = runner.invoke(main, ["recall", "alice", "--url", url, "--as-of", "2024-06-01"])
    assert bad.exit_code != 0 and "zone" in bad.output
