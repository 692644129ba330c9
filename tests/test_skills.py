"""SkillRegistry on both backends, sync and async: MCP specs validated, immutable versions,
bindings in priority order, tools for create_agent, semantic search, the example file and
the CLI; bad input gets a clear error and another tenant sees nothing."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from test_store import HashedEmbeddings

from langchain_agentmem import Engine, SkillRegistry
from langchain_agentmem.cli import main
from langchain_agentmem.skills import (
    MissingImplementationError,
    UnknownSkillError,
    read_skills_file,
    validate_spec,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "skills.yaml"


def spec(name: str, description: str = "does a thing", **props: Any) -> dict[str, Any]:
    properties = props or {"x": {"type": "integer"}}
    return {
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": properties, "required": list(properties)},
    }


def register(reg: SkillRegistry, name: str, version: str = "1.0", **kw: Any) -> Any:
    kw.setdefault("description", f"{name} skill")
    kw.setdefault("spec", spec(name))
    return reg.register(name, version=version, **kw)


# -- the seed's file ---------------------------------------------------------------------


def test_example_file_gives_the_seeds_counts_and_order(engine: Engine) -> None:
    reg = SkillRegistry(engine, user_id="acme")
    assert reg.load(read_skills_file(EXAMPLE)) == (8, 13)
    skills = reg.list_skills()
    assert len(skills) == 8
    assert len({s.category for s in skills}) == 4
    counts = {
        a: len(reg.skills_for(a))
        for a in ("devops_engineer", "finance_ssc_expert", "odoo_developer")
    }
    assert counts == {"devops_engineer": 4, "finance_ssc_expert": 3, "odoo_developer": 6}
    devops = reg.skills_for("devops_engineer")
    assert [b.skill_name for b in devops] == [
        "kubernetes_deploy",
        "log_analysis",
        "code_review",
        "documentation_search",
    ]
    assert [b.priority for b in devops] == sorted((b.priority for b in devops), reverse=True)
    assert reg.skills_for("finance_ssc_expert")[1].config == {"auto_post": False}
    # Loading again changes nothing (same versions, same content).
    assert reg.load(read_skills_file(EXAMPLE)) == (8, 13)
    assert len(reg.bindings()) == 13 and len(reg.versions("code_review")) == 1


# -- specs and versions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not a dict", "MCP tool definition"),
        ({"description": "d", "inputSchema": {"type": "object"}}, "spec['name']"),
        ({"name": "x", "description": "d"}, "no 'inputSchema'"),
        (
            {"name": "x", "description": "d", "inputSchema": {"type": "nonsense"}},
            "not a valid JSON Schema",
        ),
        (
            {"name": "x", "description": "d", "inputSchema": {"properties": 3}},
            "not a valid JSON Schema",
        ),
        ({"name": "x", "description": "d", "inputSchema": {"type": "string"}}, '"type": "object"'),
        ({"name": "x", "description": 5, "inputSchema": {"type": "object"}}, "description"),
    ],
)
def test_a_spec_that_is_not_an_mcp_tool_is_refused(bad: Any, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        validate_spec(bad)


def test_versions_are_immutable_and_the_latest_wins(engine: Engine) -> None:
    reg = SkillRegistry(engine, user_id="u")
    first = register(reg, "deploy", "1.0")
    assert register(reg, "deploy", "1.0") == first  # the same content: nothing changes
    with pytest.raises(ValueError, match="immutable"):
        register(reg, "deploy", "1.0", description="something else")
    register(reg, "deploy", "2.0", spec=spec("deploy", y={"type": "string"}))
    latest = reg.get("deploy")
    assert latest is not None and latest.version == "2.0" and latest.revision == 2
    old = reg.get("deploy", version="1.0")
    assert old is not None and old.spec == spec("deploy")
    assert reg.get("nope") is None and reg.get("deploy", version="9") is None
    assert [s.version for s in reg.versions("deploy")] == ["1.0", "2.0"]
    # Bound agents get the latest active version; deactivating it falls back to the older.
    reg.bind("ops", "deploy")
    assert reg.skills_for("ops")[0].skill.version == "2.0"  # type: ignore[union-attr]
    assert reg.deactivate("deploy", version="2.0") == 1
    assert reg.skills_for("ops")[0].skill.version == "1.0"  # type: ignore[union-attr]
    assert reg.deactivate("deploy") == 1
    assert reg.skills_for("ops") == []
    assert [b.skill for b in reg.bindings("ops")] == [None]
    assert reg.activate("deploy") == 2 and len(reg.skills_for("ops")) == 1


def test_specs_and_configs_round_trip_exactly(engine: Engine) -> None:
    reg = SkillRegistry(engine, user_id="u")
    odd = spec(
        "echo", description="nul \x00 and \ud800 lone", text={"type": "string", "default": "\x00"}
    )
    register(reg, "echo", spec=odd)
    got = reg.get("echo")
    assert got is not None and got.spec == odd
    reg.bind("a", "echo", config={"k": "v\x00", "n": [1, 2.5, None]})
    assert reg.bindings("a")[0].config == {"k": "v\x00", "n": [1, 2.5, None]}


# -- bindings ----------------------------------------------------------------------------


def test_bindings_are_unique_ordered_and_filtered(engine: Engine) -> None:
    reg = SkillRegistry(engine, user_id="u")
    for name in ("a", "b", "c", "d"):
        register(reg, name)
    reg.bind("agent", "a", priority=1)
    reg.bind("agent", "b", priority=10)
    reg.bind("agent", "c", priority=5, enabled=False)
    reg.bind("agent", "d", priority=5)
    reg.bind("agent", "a", priority=20)  # re-binding replaces
    assert [(b.skill_name, b.priority) for b in reg.skills_for("agent")] == [
        ("a", 20),
        ("b", 10),
        ("d", 5),
    ]
    assert len(reg.bindings("agent")) == 4
    assert reg.unbind("agent", "a") is True and reg.unbind("agent", "a") is False
    assert [b.skill_name for b in reg.skills_for("agent")] == ["b", "d"]


def test_bad_binding_input_is_refused_and_changes_nothing(engine: Engine) -> None:
    reg = SkillRegistry(engine, user_id="u")
    register(reg, "a")
    with pytest.raises(UnknownSkillError, match="no skill of that name"):
        reg.bind("agent", "missing")
    with pytest.raises(TypeError, match="priority must be an int"):
        reg.bind("agent", "a", priority="high")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="priority must be an int"):
        reg.bind("agent", "a", priority=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NUL"):
        reg.bind("agent\x00", "a")
    with pytest.raises(ValueError, match="NUL"):
        register(reg, "b", category="cat\x00")
    with pytest.raises(ValueError, match="lone surrogate"):
        register(reg, "b\ud800")
    with pytest.raises(ValueError, match="nan"):
        reg.bind("agent", "a", config={"x": float("nan")})
    assert reg.bindings() == [] and [s.name for s in reg.list_skills()] == ["a"]


def test_another_tenant_sees_none_of_it(engine: Engine) -> None:
    mine = SkillRegistry(engine, user_id="alice", embeddings=HashedEmbeddings(16))
    theirs = SkillRegistry(engine, user_id="bob", embeddings=HashedEmbeddings(16))
    register(mine, "secret", description="deploy the secret service")
    mine.bind("agent", "secret")
    assert theirs.get("secret") is None and theirs.list_skills() == []
    assert theirs.skills_for("agent") == [] and theirs.bindings() == []
    assert theirs.search("deploy the secret service") == []
    with pytest.raises(UnknownSkillError):
        theirs.bind("agent", "secret")
    assert theirs.unbind("agent", "secret") is False and theirs.deactivate("secret") == 0
    assert mine.skills_for("agent")[0].skill_name == "secret"


# -- tools -------------------------------------------------------------------------------


BOUND: list[list[str]] = []


class ToolModel(FakeMessagesListChatModel):
    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolModel:  # type: ignore[override]
        BOUND.append([t.name for t in tools])
        return self


def test_tools_for_builds_structured_tools_that_create_agent_runs(engine: Engine) -> None:
    reg = SkillRegistry(engine, user_id="u")
    register(reg, "add", spec=spec("add", a={"type": "integer"}, b={"type": "integer"}))
    register(reg, "shout", spec=spec("shout", text={"type": "string"}))
    reg.bind("helper", "add", priority=1, config={"precision": 2})
    reg.bind("helper", "shout", priority=9)
    tools = reg.tools_for("helper", {"add": lambda a, b: a + b, "shout": lambda text: text.upper()})
    assert [t.name for t in tools] == ["shout", "add"]
    assert tools[1].metadata == {
        "skill": "add",
        "version": "1.0",
        "priority": 1,
        "config": {"precision": 2},
    }
    assert (
        tools[1].args_schema
        == spec("add", a={"type": "integer"}, b={"type": "integer"})["inputSchema"]
    )
    call = AIMessage(
        "",
        tool_calls=[
            {
                "name": "add",
                "args": {"a": 2, "b": 40},
                "id": uuid.uuid4().hex[:8],
                "type": "tool_call",
            }
        ],
    )
    script: list[BaseMessage] = [call, AIMessage("42")]
    BOUND.clear()
    agent = create_agent(ToolModel(responses=script), tools=tools)
    out = agent.invoke({"messages": [("user", "add 2 and 40")]})
    assert BOUND and BOUND[0] == ["shout", "add"]
    assert [m.content for m in out["messages"] if isinstance(m, ToolMessage)] == ["42"]


def test_a_skill_without_implementation_is_reported(engine: Engine) -> None:
    reg = SkillRegistry(engine, user_id="u")
    register(reg, "a")
    register(reg, "b")
    reg.bind("agent", "a", priority=2)
    reg.bind("agent", "b", priority=1)
    with pytest.raises(MissingImplementationError, match=r"\['b'\]") as info:
        reg.tools_for("agent", {"a": lambda x: x})
    assert info.value.missing == ["b"]
    with pytest.warns(UserWarning, match="'b'"):
        tools = reg.tools_for("agent", {"a": lambda x: x}, missing="warn")
    assert [t.name for t in tools] == ["a"]


async def test_async_forms(aengine: Engine) -> None:
    reg = SkillRegistry(aengine, user_id="u", embeddings=HashedEmbeddings(32))
    await reg.aregister(
        "k8s", description="deploy containers to kubernetes", spec=spec("k8s"), category="devops"
    )
    await reg.aregister(
        "ledger", description="reconcile the bank ledger", spec=spec("ledger"), category="finance"
    )
    await reg.abind("ops", "k8s", priority=3)

    async def run(x: int) -> int:
        return x * 2

    [tool] = await reg.atools_for("ops", {"k8s": run})
    assert await tool.ainvoke({"x": 21}) == 42
    assert [b.skill_name for b in await reg.askills_for("ops")] == ["k8s"]
    hits = await reg.asearch("kubernetes deploy", k=1)
    assert [s.name for s, _ in hits] == ["k8s"] and hits[0][1] > 0.5
    assert [s.name for s in await reg.alist_skills(category="finance")] == ["ledger"]
    assert await reg.aunbind("ops", "k8s") is True
    assert (await reg.aget("k8s")).description == "deploy containers to kubernetes"  # type: ignore[union-attr]


def test_search_ranks_descriptions(engine: Engine) -> None:
    reg = SkillRegistry(engine, user_id="u", embeddings=HashedEmbeddings(64))
    reg.load(read_skills_file(EXAMPLE))
    hits = reg.search("reconcile bank statement lines with the ledger", k=3)
    assert hits[0][0].name == "ledger_reconciliation"
    assert len(hits) == 3 and hits[0][1] >= hits[1][1] >= hits[2][1]
    reg.deactivate("ledger_reconciliation")
    assert "ledger_reconciliation" not in [
        s.name for s, _ in reg.search("reconcile bank statement", k=8)
    ]
    with pytest.raises(ValueError, match="needs embeddings"):
        SkillRegistry(engine, user_id="u").search("x")


# -- the CLI -----------------------------------------------------------------------------


def test_cli_load_list_bind_unbind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'memory.sqlite3'}"
    runner = CliRunner()
    assert runner.invoke(main, ["migrate", "--url", url]).exit_code == 0
    out = runner.invoke(main, ["skills", "load", str(EXAMPLE), "--url", url, "--user", "acme"])
    assert out.exit_code == 0, out.output
    assert "loaded 8 skills and 13 bindings" in out.output
    out = runner.invoke(
        main,
        ["skills", "list", "--url", url, "--user", "acme", "--agent", "odoo_developer", "--json"],
    )
    assert [r["skill"] for r in json.loads(out.output)][:2] == [
        "odoo_module_scaffold",
        "odoo_orm_query",
    ]
    out = runner.invoke(
        main,
        [
            "skills",
            "bind",
            "new_agent",
            "code_review",
            "--priority",
            "7",
            "--url",
            url,
            "--user",
            "acme",
        ],
    )
    assert out.exit_code == 0, out.output
    out = runner.invoke(
        main, ["skills", "list", "--url", url, "--user", "acme", "--agent", "new_agent"]
    )
    assert "code_review" in out.output and "7" in out.output
    out = runner.invoke(
        main, ["skills", "bind", "new_agent", "nope", "--url", url, "--user", "acme"]
    )
    assert out.exit_code == 1 and "no skill of that name" in out.output
    out = runner.invoke(
        main, ["skills", "unbind", "new_agent", "code_review", "--url", url, "--user", "acme"]
    )
    assert out.exit_code == 0 and "unbound" in out.output
    out = runner.invoke(main, ["skills", "list", "--url", url, "--user", "other"])
    assert "(no rows)" in out.output
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"skills": [{"name": "x", "description": "d", "spec": {"name": "x"}}]})
    )
    out = runner.invoke(main, ["skills", "load", str(bad), "--url", url])
    assert out.exit_code == 1 and "skills[0] ('x')" in out.output and "inputSchema" in out.output
