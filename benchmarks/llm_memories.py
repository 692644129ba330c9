"""Model calls per turn: langchain-agentmem's LLM-written memories beside the legacy
LangChain classes, side by side in one process on the same SQLite database.

A counting fake chat model stands in for the LLM (no key, no network): what is measured is
how many calls each memory makes and how much text it sends, not answer quality.

* summary: ``SummaryMemory`` vs langchain-classic ``ConversationSummaryBufferMemory`` with
  the same persistent chat history (our ``ChatMessageHistory``), same token budget.
* entities: ``EntityMemory`` vs ``ConversationEntityMemory`` (its store: our ``EntityStore``),
  turns that mention ``--entities`` entities each.

    python benchmarks/llm_memories.py            # --turns 20 --entities 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_agentmem import ChatMessageHistory, EntityMemory, EntityStore, SummaryMemory, connect

NAMES = ["Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory"]


class CountingModel(BaseChatModel):
    """Answers every prompt plausibly and counts calls and prompt characters."""

    calls: int = 0
    prompt_chars: int = 0
    entities_per_turn: int = 3

    @property
    def _llm_type(self) -> str:
        return "counting-fake"

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Any = None) -> int:
        return count_tokens_approximately(messages)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.calls += 1
        prompt = "\n".join(m.text for m in messages)
        self.prompt_chars += len(prompt)
        # The part of the prompt entities are extracted from: ours sends the turn after
        # "Conversation turn:", the legacy prompt the input after "Last line of conversation".
        focus = prompt.rsplit("Conversation turn:", 1)[-1].rsplit("Last line of conversation", 1)[
            -1
        ]
        names = [n for n in NAMES if n in focus]
        if "keep notes about the entities" in prompt:
            text = json.dumps(
                {
                    "entities": [
                        {
                            "name": n,
                            "type": "person",
                            "aliases": [],
                            "summary": f"{n} was mentioned.",
                        }
                        for n in names
                    ]
                }
            )
        elif (
            "Extract all of the proper nouns" in prompt
            or "extract" in prompt.lower()
            and "entities" in prompt.lower()
        ):
            text = ", ".join(names)
        else:
            text = "A running summary of the conversation so far."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


def turn(i: int, k: int) -> tuple[str, str]:
    who = [NAMES[(i + j) % len(NAMES)] for j in range(k)]
    return (
        f"Turn {i}: news about {', '.join(who)} and what they did this week at work and at home.",
        f"Thanks for the news about {who[0]}.",
    )


def summary_bench(db: str, turns: int) -> None:
    budget = 120
    with connect(f"sqlite:///{db}") as engine:
        engine.migrate()
        from langchain_classic.memory import ConversationSummaryBufferMemory

        legacy_llm, ours_llm = CountingModel(), CountingModel()
        legacy = ConversationSummaryBufferMemory(
            llm=legacy_llm,
            chat_memory=ChatMessageHistory(engine, "legacy", user_id="bench"),
            max_token_limit=budget,
            return_messages=True,
        )
        ours = SummaryMemory(engine, ours_llm, "ours", user_id="bench", max_token_limit=budget)
        half_llm = CountingModel()
        half = SummaryMemory(
            engine, half_llm, "half", user_id="bench", max_token_limit=budget, prune_to=budget // 2
        )
        for i in range(turns):
            human, ai = turn(i, 3)
            legacy.save_context({"input": human}, {"output": ai})
            ours.add_messages([HumanMessage(human), AIMessage(ai)])
            half.add_messages([HumanMessage(human), AIMessage(ai)])
        # A restart: new objects on the same database.
        legacy_llm2, ours_llm2 = CountingModel(), CountingModel()
        legacy2 = ConversationSummaryBufferMemory(
            llm=legacy_llm2,
            chat_memory=ChatMessageHistory(engine, "legacy", user_id="bench"),
            max_token_limit=budget,
            return_messages=True,
        )
        ours2 = SummaryMemory(engine, ours_llm2, "ours", user_id="bench", max_token_limit=budget)
        legacy_kept = bool(legacy2.moving_summary_buffer)
        ours_kept = bool(ours2.moving_summary_buffer)
        legacy_msgs = len(legacy2.load_memory_variables({})["history"])
        ours_msgs = len(ours2.messages)
    print(f"\n## summary ({turns} turns, max_token_limit={budget})")
    print(f"{'':38}{'agentmem':>12}{'legacy':>12}{'ratio':>8}")
    row("model calls", ours_llm.calls, legacy_llm.calls)
    row("model calls per turn", ours_llm.calls / turns, legacy_llm.calls / turns)
    row("prompt characters sent", ours_llm.prompt_chars, legacy_llm.prompt_chars)
    row(f"  with prune_to={budget // 2}: model calls", half_llm.calls, legacy_llm.calls)
    row(
        f"  with prune_to={budget // 2}: prompt characters",
        half_llm.prompt_chars,
        legacy_llm.prompt_chars,
    )
    row("model calls on restart (read)", ours_llm2.calls, legacy_llm2.calls)
    print(f"{'summary kept after restart':38}{str(ours_kept):>12}{str(legacy_kept):>12}")
    row("messages returned after restart", ours_msgs, legacy_msgs)


def entity_bench(db: str, turns: int, k: int) -> None:
    with connect(f"sqlite:///{db}") as engine:
        engine.migrate()
        from langchain_classic.memory import ConversationEntityMemory

        legacy_llm, ours_llm = (
            CountingModel(entities_per_turn=k),
            CountingModel(entities_per_turn=k),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            legacy = ConversationEntityMemory(
                llm=legacy_llm,
                entity_store=EntityStore(engine, user_id="bench", entity_system="legacy"),
            )
        ours = EntityMemory(engine, ours_llm, user_id="bench", entity_system="ours")
        for i in range(turns):
            human, ai = turn(i, k)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                legacy.load_memory_variables({"input": human})
                legacy.save_context({"input": human}, {"output": ai})
            ours.update([HumanMessage(human), AIMessage(ai)])
            ours.relevant(human)  # what the next turn reads: no model call
        stored = len(ours.list_entities())
    print(
        f"\n## entities ({turns} turns, {k} entities mentioned per turn; {stored} entities stored)"
    )
    print(f"{'':38}{'agentmem':>12}{'legacy':>12}{'ratio':>8}")
    row("model calls", ours_llm.calls, legacy_llm.calls)
    row("model calls per turn", ours_llm.calls / turns, legacy_llm.calls / turns)
    row("prompt characters sent", ours_llm.prompt_chars, legacy_llm.prompt_chars)


def row(label: str, ours: float, legacy: float) -> None:
    ratio = f"{ours / legacy:.2f}" if legacy else "-"
    fmt = (lambda v: f"{v:.2f}") if isinstance(ours, float) or isinstance(legacy, float) else str
    print(f"{label:38}{fmt(ours):>12}{fmt(legacy):>12}{ratio:>8}")


def main(argv: Sequence[str] | None = None) -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the legacy classes
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--entities", type=int, default=3)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="agentmem-llm-bench-"))
    summary_bench(str(folder / "summary.sqlite3"), args.turns)
    entity_bench(str(folder / "entities.sqlite3"), args.turns, args.entities)
    print(
        "\n## knowledge graph (from the source, not measured: langchain-community is not installed)\n"
        "ConversationKGMemory: 2 model calls per turn (entities in load_memory_variables, triples in save_context).\n"
        "GraphMemory: 1 call per turn (add_text); reading facts for the next turn (relevant_facts) makes none.\n"
        "MemoryMiddleware: 1 call per turn for entities + graph facts together (combined_extraction), plus\n"
        "the session summary's call when the session outgrows its budget; reading memories makes none."
    )


if __name__ == "__main__":
    main()
