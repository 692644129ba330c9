"""The README's Python examples run, in order, as written; its commands are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")


def test_readme_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
    assert blocks, "the README has no python examples"
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    engine = namespace.get("engine")
    if engine is not None:
        engine.close()  # type: ignore[attr-defined]


def test_readme_starts_with_the_two_setup_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.DOTALL)
    assert first_block is not None and README.index("```bash") < README.index("## ")
    lines = [ln for ln in first_block.group(1).splitlines() if ln.strip()]
    assert len(lines) == 2
    assert "examples/quickstart.py" in lines[0]
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert lines[1] in ci, ".ci/run must run the README's test command"


def test_readme_cli_commands_exist() -> None:
    from langchain_agentmem.cli import main

    used = set(re.findall(r"^agentmem ([\w-]+)", README, re.MULTILINE))
    assert used and used <= set(main.commands)
