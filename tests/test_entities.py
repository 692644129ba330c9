"""EntityMemory and EntityStore on both backends, sync and async."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from _fakes import ScriptedChatModel
from _threads import run_threads
from langchain_core.messages import AIMessage, HumanMessage

from langchain_agentmem import ChatMessageHistory, Engine, Entity, EntityMemory, EntityStore

from cassettes import openai_cassette


def answer(*entities: tuple[str, str | None, list[str], str]) -> str:
    return json.dumps(
        {
            "entities": [
                {"name": n, "type": t, "aliases": a, "summary": s} for n, t, a, s in entities
            ]
        }
    )


def test_one_model_call_per_turn_whatever_the_number_of_entities(engine: Engine) -> None:
    llm = ScriptedChatModel(
        responses=[
            answer(
                ("Bob", "person", ["Bobby"], "Alice's brother, lives in Lyon."),
                ("Lyon", "place", [], "City where Bob lives."),
                ("Acme", "organization", ["ACME Corp"], "Bob's employer."),
            )
        ]
    )
    memory = EntityMemory(engine, llm, user_id="alice")
    written = memory.update(
        [
            HumanMessage("My brother Bobby lives in Lyon and works at ACME Corp."),
            AIMessage("Noted!"),
        ]
    )
    assert len(llm.calls) == 1
    assert sorted(e.name for e in written) == ["Acme", "Bob", "Lyon"]
    assert "Bobby lives in Lyon" in llm.prompt()
    assert {e.key for e in memory.list_entities()} == {"bob", "lyon", "acme"}


def test_names_case_and_aliases_land_on_one_row(engine: Engine) -> None:
    llm = ScriptedChatModel(
        responses=[
            answer(("Bob", "person", ["Bobby"], "Alice's brother.")),
            answer(("bobby", None, [], "Alice's brother. Plays chess.")),
            answer(("BOB", "person", ["Robert"], "Alice's brother. Plays chess. Born 1990.")),
        ]
    )
    memory = EntityMemory(engine, llm, user_id="alice")
    memory.update("My brother Bob, Bobby for friends.")
    memory.update("Bobby plays chess.")
    # The known summary of the entity the turn mentions goes into the one call.
    assert "Alice's brother." in llm.prompt() and "Bob (person; also: Bobby)" in llm.prompt()
    memory.update("bob was born in 1990, his real name is Robert")
    rows = memory.list_entities()
    assert len(rows) == 1
    bob = rows[0]
    assert (bob.name, bob.key, bob.type) == ("Bob", "bob", "person")
    assert bob.summary == "Alice's brother. Plays chess. Born 1990."
    assert bob.aliases == ["Bobby", "Robert"]
    for name in ["Bob", "bob", " BOB ", "Bobby", "robert"]:
        got = memory.get(name)
        assert got is not None and got.key == "bob", name


def test_relevant_finds_mentioned_entities_without_a_model(engine: Engine) -> None:
    memory = EntityMemory(engine, ScriptedChatModel(), user_id="alice")
    memory.set("Bob Smith", "Alice's brother.", type="person", aliases=["Bobby"])
    memory.set("Paris", "Where Alice lives.", type="place")
    memory.set("Rome", "Alice's favourite city.")
    assert [e.name for e in memory.relevant("What did Bobby say?")] == ["Bob Smith"]
    assert {e.name for e in memory.relevant("bob smith's plans in PARIS")} == {"Bob Smith", "Paris"}
    assert memory.relevant("nothing known here") == []
    assert len(memory.relevant("Paris Rome Bobby", limit=2)) == 2


def test_set_get_delete_clear_and_isolation(engine: Engine) -> None:
    alice = EntityMemory(engine, user_id="alice")
    bob = EntityMemory(engine, user_id="bob")
    other_system = EntityMemory(engine, user_id="alice", entity_system="work")
    alice.set("Paris", "Alice lives here.")
    bob.set("Paris", "Bob visited once.")
    other_system.set("Paris", "Office location.")
    assert alice.get("paris").summary == "Alice lives here."  # type: ignore[union-attr]
    assert bob.get("paris").summary == "Bob visited once."  # type: ignore[union-attr]
    assert other_system.get("Paris").summary == "Office location."  # type: ignore[union-attr]
    assert alice.delete("PARIS") is True
    assert alice.delete("Paris") is False
    assert alice.get("Paris") is None and bob.get("Paris") is not None
    bob.set("Rome", "x", aliases=["Roma"])
    bob.clear()
    assert bob.list_entities() == [] and bob.get("Roma") is None
    assert other_system.list_entities()[0].summary == "Office location."


def test_exact_text_and_bad_input(engine: Engine) -> None:
    memory = EntityMemory(engine, user_id="u\x00")
    odd = 'nul\x00, surrogate \ud800, quote "'
    memory.set("Zoë \ud800", odd, aliases=["z\x00"])
    got = memory.get("ZOË \ud800")
    assert (
        got is not None
        and got.summary == odd
        and got.name == "Zoë \ud800"
        and got.aliases == ["z\x00"]
    )
    with pytest.raises(ValueError, match="non-empty name"):
        memory.set("  ", "x")
    with pytest.raises(TypeError, match="summary"):
        memory.set("x", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="aliases"):
        memory.set("x", "y", aliases="Bobby")
    with pytest.raises(ValueError, match="needs an llm"):
        memory.update("Bob")
    with pytest.raises(TypeError, match="turn"):
        EntityMemory(engine, ScriptedChatModel()).update(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        memory.relevant("x", limit=-1)
    bad = EntityMemory(engine, ScriptedChatModel(responses=["I found Bob."]))
    with pytest.raises(ValueError, match="JSON"):
        bad.update("Bob")
    assert bad.list_entities() == []


def test_entity_store_interface(engine: Engine) -> None:
    store = EntityStore(engine, user_id="alice")
    assert store.get("Bob") is None and store.get("Bob", "?") == "?" and not store.exists("Bob")
    store.set("Bob", "Alice's brother.")
    assert store.get("bob") == "Alice's brother." and store.exists(" BOB ")
    store.set("Bob", "Alice's brother, a chess player.")
    assert store.get("Bob") == "Alice's brother, a chess player."
    store.delete("bob")
    assert not store.exists("Bob")
    store.delete("never there")
    store.set("Carol", "x")
    store.set("Carol", None)
    assert not store.exists("Carol")
    store.set("Dan", "y")
    store.clear()
    assert not store.exists("Dan")
    # Shares rows with EntityMemory.
    EntityMemory(engine, user_id="alice").set("Eve", "Alice's colleague.", aliases=["Evie"])
    assert store.get("evie") == "Alice's colleague."


@pytest.mark.filterwarnings("ignore::langchain_core._api.deprecation.LangChainDeprecationWarning")
def test_drops_into_legacy_conversation_entity_memory(engine: Engine) -> None:
    from langchain_classic.memory import ConversationEntityMemory

    llm = ScriptedChatModel(responses=["Bob", "Bob is Alice's brother who lives in Lyon."])
    store = EntityStore(engine, user_id="alice")
    legacy = ConversationEntityMemory(
        llm=llm,
        entity_store=store,
        chat_memory=ChatMessageHistory(engine, "legacy", user_id="alice"),
    )
    legacy.load_memory_variables({"input": "My brother Bob lives in Lyon."})
    legacy.save_context({"input": "My brother Bob lives in Lyon."}, {"output": "Got it."})
    assert store.get("bob") == "Bob is Alice's brother who lives in Lyon."
    # A new process (new objects on the same database) sees it.
    llm2 = ScriptedChatModel(responses=["Bob"])
    again = ConversationEntityMemory(llm=llm2, entity_store=EntityStore(engine, user_id="alice"))
    loaded = again.load_memory_variables({"input": "Where does Bob live?"})
    assert loaded["entities"] == {"Bob": "Bob is Alice's brother who lives in Lyon."}
    # And EntityMemory reads the same row.
    assert EntityMemory(engine, user_id="alice").get("Bob").summary.endswith("Lyon.")  # type: ignore[union-attr]


async def test_async_forms(aengine: Engine) -> None:
    llm = ScriptedChatModel(
        responses=[
            answer(
                ("Bob", "person", ["Bobby"], "Alice's brother."), ("Lyon", "place", [], "A city.")
            )
        ]
    )
    memory = EntityMemory(aengine, llm, user_id="alice")
    written = await memory.aupdate("Bobby lives in Lyon")
    assert len(written) == 2 and len(llm.calls) == 1
    assert [e.name for e in await memory.arelevant("news from bobby?")] == ["Bob"]
    await memory.aset("Bobby", "Alice's brother, chess player.")
    assert (await memory.aget("bob")).summary == "Alice's brother, chess player."  # type: ignore[union-attr]
    assert len(await memory.alist_entities()) == 2
    assert await memory.adelete("Lyon") is True
    store = EntityStore(aengine, user_id="alice")
    assert await store.aget("BOB") == "Alice's brother, chess player."
    assert await store.aexists("bobby")
    await store.aset("Zed", "z")
    await store.adelete("Zed")
    assert not await store.aexists("Zed")
    await store.aset("Bob", None)
    assert not await store.aexists("Bob")
    await store.aset("Y", "y")
    await store.aclear()
    await memory.aclear()
    assert await memory.alist_entities() == []


def entity_responder(request: dict[str, Any]) -> dict[str, Any]:
    assert request["response_format"]["type"] == "json_schema"
    prompt = request["messages"][-1]["content"]
    if "Bobby" in prompt:
        return {
            "content": answer(
                ("Bob", "person", ["Bobby"], "Alice's brother; lives in Lyon; plays chess.")
            )
        }
    return {
        "content": answer(
            ("Bob", "person", [], "Alice's brother; lives in Lyon."),
            ("Lyon", "place", [], "City in France where Bob lives."),
        )
    }


def test_entities_through_openai_cassette(engine: Engine) -> None:
    from langchain_openai import ChatOpenAI

    with openai_cassette("entity_memory", entity_responder) as kw:
        memory = EntityMemory(
            engine, ChatOpenAI(model="gpt-4o-mini", temperature=0, **kw), user_id="alice"
        )
        memory.update([HumanMessage("My brother Bob lives in Lyon."), AIMessage("Lyon is lovely!")])
        memory.update([HumanMessage("Bobby started playing chess."), AIMessage("Great hobby.")])
    assert {e.key for e in memory.list_entities()} == {"bob", "lyon"}
    assert memory.get("bobby").summary == "Alice's brother; lives in Lyon; plays chess."  # type: ignore[union-attr]


# -- concurrent writers ---------------------------------------------------------------


def bob_update(i: int) -> str:
    """Writer ``i`` names Bob by one of two spellings and adds its own alias."""
    name, aliases = ("Bob", ["Bobby", f"B{i}"]) if i % 2 else ("Bobby", [f"B{i}"])
    return answer((name, "person", aliases, f"Bob, as writer {i} knows him."))


def check_one_bob(entities: list[Entity], found: list[Entity | None], writers: int) -> None:
    assert len(entities) == 1, [(e.key, e.aliases) for e in entities]
    (bob,) = entities
    # Every alias any writer wrote is on the row and resolves to it.
    assert {f"B{i}" for i in range(writers)} <= set(bob.aliases)
    assert all(e is not None and e.key == bob.key for e in found)


def test_concurrent_updates_of_one_entity_keep_one_row_and_every_alias(engine: Engine) -> None:
    writers = 8
    for trial in range(2):
        system = f"trial{trial}"

        def work(i: int, system: str = system) -> None:
            llm = ScriptedChatModel(responses=[bob_update(i)])
            EntityMemory(engine, llm, entity_system=system).update(f"news about Bob from {i}")

        run_threads(writers, work)
        memory = EntityMemory(engine, entity_system=system)
        names = ["Bob", "Bobby", *(f"B{i}" for i in range(writers))]
        check_one_bob(memory.list_entities(), [memory.get(n) for n in names], writers)


async def test_concurrent_async_updates_of_one_entity_keep_one_row_and_every_alias(
    aengine: Engine,
) -> None:
    writers = 8
    for trial in range(2):
        system = f"trial{trial}"
        await asyncio.gather(
            *(
                EntityMemory(
                    aengine, ScriptedChatModel(responses=[bob_update(i)]), entity_system=system
                ).aupdate(f"news about Bob from {i}")
                for i in range(writers)
            )
        )
        memory = EntityMemory(aengine, entity_system=system)
        names = ["Bob", "Bobby", *(f"B{i}" for i in range(writers))]
        check_one_bob(await memory.alist_entities(), [await memory.aget(n) for n in names], writers)


def test_concurrent_store_sets_of_one_entity_keep_one_row(engine: Engine) -> None:
    # EntityStore.set and EntityMemory.set on one entity at once: one row, its aliases kept.
    EntityMemory(engine).set("Carol", "Known.", aliases=["Caro"])
    writers = 8

    def work(i: int) -> None:
        if i % 2:
            EntityStore(engine).set("caro", f"Summary {i}.")
        else:
            EntityMemory(engine).set("Carol", f"Summary {i}.", aliases=[f"C{i}"])

    run_threads(writers, work)
    (carol,) = EntityMemory(engine).list_entities()
    assert set(carol.aliases) == {"Caro", *(f"C{i}" for i in range(0, writers, 2))}
