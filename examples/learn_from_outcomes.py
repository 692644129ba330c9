"""An operations agent that learns from the outcomes of what it did, across restarts.

Each run of this script is one shift: incidents arrive, the agent recalls similar past
episodes (``EpisodicMemory.recall_similar``), picks the action that turned out best in
them (or one it has not tried yet), records the episode, and later the outcome. At the end
of a shift it distils strategies from the episodes with outcomes
(``KnowledgeBase.distill``) and the next shift consults them first
(``best_strategies``). Everything is stored in one database, so the next run (a new
process) starts with what the last one learned.

Runs on SQLite with no API key. THE MODEL HERE IS A FAKE, said plainly: the distiller
given to ``distill`` is ``FakeDistiller`` below, a plain function that groups the good
outcomes by action and answers in the JSON a chat model would; the decision rule is a
plain function too. Swap the distiller for a real chat model (``ChatOpenAI(...)``) and the
same call runs for real. The embeddings are ``LocalEmbeddings`` when the ``[local]`` extra
is installed (a static embedder shipped in the wordllama wheel), else LangChain's
deterministic fake (identical situations match; similar ones do not).

Usage:
    python examples/learn_from_outcomes.py [path/to/memory.sqlite3]   # run it 3 times
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableLambda

from langchain_agentmem import EpisodicMemory, KnowledgeBase, connect

ACTIONS = ["restart_service", "clear_disk", "scale_out", "rollback_release"]
#: The world the agent does not know: which action fixes which incident.
RIGHT_FIX = {
    "disk almost full on the database host": "clear_disk",
    "error rate up right after a deploy": "rollback_release",
    "request latency high under peak traffic": "scale_out",
}


def embeddings() -> Embeddings:
    try:
        from langchain_agentmem import LocalEmbeddings  # type: ignore[attr-defined]

        return LocalEmbeddings()  # type: ignore[no-any-return]
    except ImportError:
        return DeterministicFakeEmbedding(size=64)


def fake_distiller(messages: list[BaseMessage]) -> AIMessage:
    """Stands in for a chat model: the good outcomes, grouped by incident and action."""
    text = str(messages[-1].content)
    episodes = [
        json.loads(line) for line in text.split("Episodes (JSON, one a line):\n")[1].splitlines()
    ]
    good: dict[tuple[str, str], list[str]] = defaultdict(list)
    for ep in episodes:
        if (ep.get("quality") or 0) >= 0.8:
            good[(ep["perception"]["incident"], ep["action"]["do"])].append(ep["id"])
    items = [
        {
            "kind": "strategy",
            "description": incident,  # what the situation looks like
            "content": action,
            "confidence": min(1.0, 0.5 + 0.1 * len(ids)),
            "supporting_episodes": ids,
            "contradicting_episodes": [],
            "updates": None,
        }
        for (incident, action), ids in good.items()
        if len(ids) >= 3  # a strategy needs 3 supporting episodes
    ]
    return AIMessage(json.dumps({"items": items}))


FakeDistiller = RunnableLambda(fake_distiller)


def decide(incident: str, episodes: EpisodicMemory, kb: KnowledgeBase) -> tuple[str, str]:
    """The action for ``incident`` and why: a known strategy first, then the best past
    outcome among similar episodes, then an action not tried yet."""
    for found in kb.best_strategies(incident, k=1):
        if found.similarity >= 0.9 and found.knowledge.content in ACTIONS:
            return found.knowledge.content, "a strategy learned before"
    seen: dict[str, list[float]] = defaultdict(list)
    for hit in episodes.recall_similar({"incident": incident}, k=10, only_with_outcome=True):
        if hit.similarity >= 0.9:
            seen[hit.episode.action["do"]].append(hit.episode.outcome_quality or 0.0)
    best = max(seen.items(), key=lambda kv: sum(kv[1]) / len(kv[1]), default=None)
    if best is not None and sum(best[1]) / len(best[1]) >= 0.8:
        return best[0], f"{len(best[1])} similar episode(s) went well with it"
    untried = [a for a in ACTIONS if a not in seen]
    return (untried or ACTIONS)[0], "not tried yet" if untried else "nothing better known"


def shift(url: str) -> None:
    engine = connect(url)
    engine.migrate()
    emb = embeddings()
    episodes = EpisodicMemory(engine, emb, user_id="ops-agent", project="infra")
    kb = KnowledgeBase(engine, emb, user_id="ops-agent")
    number = len(episodes.list(limit=1000)) // 6 + 1
    print(f"-- shift {number}: {len(kb.list_knowledge('strategy'))} strategies known")
    fixed = 0
    for incident in list(RIGHT_FIX) * 2:
        action, why = decide(incident, episodes, kb)
        ep = episodes.record(
            {"incident": incident}, why, {"do": action}, control_mode="memory_augmented"
        )
        quality = 1.0 if RIGHT_FIX[incident] == action else 0.1  # the world answers
        episodes.record_outcome(ep.id, {"resolved": quality == 1.0}, quality)
        fixed += quality == 1.0
        print(f"   {incident:<42} -> {action:<17} ({why})")
        for strategy in kb.best_strategies(incident, k=1):
            if strategy.knowledge.content == action and why.startswith("strategy"):
                kb.record_application(strategy.knowledge.id, quality == 1.0)
    print(f"   resolved {fixed} of 6")
    done = [e for e in episodes.list(limit=1000) if e.outcome is not None]
    known = {k.description for k in kb.list_knowledge("strategy")}
    result = kb.distill(
        [
            {"id": e.id, "perception": e.perception, "action": e.action, "outcome": e.outcome,
             "quality": e.outcome_quality}
            for e in done
        ],
        FakeDistiller,
    )  # fmt: skip
    learned = [k for k in result.created if k.description not in known]
    for k in learned:
        print(f"   learned: when {k.description}, {k.content}")
    engine.close()


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.gettempdir()) / "ops.db"
    shift(f"sqlite:///{path}")
