"""Memory for LangChain 1.x agents: ``create_agent(..., middleware=[MemoryMiddleware(...)])``.

Before each model call, :class:`MemoryMiddleware` adds what is known about the user to the
model request's system message (not to the agent state): the entities and graph facts
the latest user message mentions (found by name and alias, no model call), the summaries
of the user's earlier sessions, optionally what a vector store recalls and the best
strategies of the user's :class:`~.knowledge.KnowledgeBase` (``knowledge=``). After the
agent finishes a turn, it writes the turn to the memories it is configured with: entity
summaries and graph facts (ONE model call for both), and the session's running summary (a
model call only when the session outgrows its token budget).

The user comes from the run's context (``context={"user_id": ...}`` or an object with a
``user_id`` attribute), else the run's ``configurable["user_id"]``, else the middleware's
``user_id`` (``user_key=`` names another key; the same rule as the memory tools'); the
session is the run's ``thread_id``, else ``session_id``.

Example:
    >>> from langchain.agents import create_agent
    >>> from langchain_core.language_models.fake_chat_models import FakeListChatModel
    >>> from langchain_agentmem import EntityMemory, connect
    >>> engine = connect("sqlite://"); _ = engine.migrate()
    >>> _ = EntityMemory(engine, user_id="alice").set("Bob", "Alice's brother, lives in Lyon.")
    >>> agent = create_agent(FakeListChatModel(responses=["He lives in Lyon."]),
    ...                      middleware=[MemoryMiddleware(engine, user_id="alice")])
    >>> agent.invoke({"messages": [("user", "Where does Bob live?")]})["messages"][-1].content
    'He lives in Lyon.'
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.documents import Document
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable
from langchain_core.vectorstores import VectorStore
from pydantic import BaseModel

from ._core.background import BackgroundRunner
from ._core.llm import structured
from ._core.plan import Atomic, Body, Model, Plan, arun, run
from ._core.users import DEFAULT_USER_KEY, check_user_key, user_from
from .engine import EngineLike, as_engine
from .entities import (
    Entity,
    EntityMemory,
    ExtractedEntity,
    _items,
    _text_of_turn,
    _turn_prompt,
    format_entities,
)
from .episodes import EpisodicMemory
from .graph import Edge, ExtractedTriple, GraphMemory
from .knowledge import KnowledgeBase, ScoredKnowledge, format_strategies
from .recall import MemoryRetriever
from .summary import SessionSummary, SummaryMemory, summaries_body

__all__ = ["MemoryMiddleware", "format_memory"]


TURN_SYSTEM_PROMPT = (
    "You keep the long-term memory of an AI assistant about its user, from a conversation "
    "between a human (the user) and the AI. From the conversation turn, return two lists.\n"
    "entities: every entity the turn mentions (people, places, organizations, products, pets, "
    "events, ...; not the user or the AI themselves) with name (canonical), type (or null), "
    "aliases (other names used for it; may be empty) and summary: the UPDATED summary of what "
    "is known about it, i.e. its known summary (if any) plus the new facts of this turn.\n"
    "triples: every fact stated, as subject, relation, object; canonical names; refer to the "
    'human as "User"; relations are short snake_case verb phrases (lives_in, works_at, likes).\n'
    'Answer with JSON only: {"entities": [{"name": "...", "type": "...", "aliases": ["..."], '
    '"summary": "..."}], "triples": [{"subject": "...", "relation": "...", "object": "..."}]}.'
)


class TurnExtraction(BaseModel):
    """Entities and facts of one turn, from one model call."""

    entities: list[ExtractedEntity]
    triples: list[ExtractedTriple]


def _write_plan(
    extract: Runnable[Any, TurnExtraction],
    ents: EntityMemory,
    kg: GraphMemory,
    turn: Sequence[BaseMessage],
    session: str,
) -> Plan[None]:
    """One model call for both memories: known entities are read first (no model call),
    then the answer is written to the entity and the graph tables in ONE transaction."""
    text = _text_of_turn(turn)
    known = yield Atomic(ents._relevant(text, ents.max_known), readonly=True)
    answer: TurnExtraction = yield Model(extract, _turn_prompt(TURN_SYSTEM_PROMPT, known, text))
    items = _items(answer.entities)
    triples = [
        (t.subject, t.relation, t.object)
        for t in answer.triples
        if t.subject.strip() and t.relation.strip() and t.object.strip()
    ]
    graph_body = kg._add(triples, 1.0, None, None, session, None)

    def body() -> Body[None]:
        if items:
            yield from ents._set(items)
        yield from graph_body

    if items or triples:
        yield Atomic(body(), pipeline=True)


def format_memory(
    entities: Sequence[Entity],
    facts: Sequence[Edge],
    summaries: Sequence[SessionSummary],
    recalled: Sequence[str] = (),
    episodes: Sequence[str] = (),
    strategies: Sequence[ScoredKnowledge] = (),
) -> str:
    """The memory block added to the system message ("" when nothing is known).

    Example:
        >>> print(format_memory([Entity("Bob", "bob", None, "Alice's brother.")], [], []))
        What you remember about this user (from earlier conversations):
        Entities:
        - Bob: Alice's brother.
    """
    parts = []
    if entities:
        parts.append("Entities:\n" + format_entities(entities))
    if facts:
        parts.append("Facts:\n" + "\n".join(f"- {e.as_text()}" for e in facts))
    if summaries:
        parts.append("Earlier sessions:\n" + "\n".join(f"- {s.summary}" for s in summaries))
    if recalled:
        parts.append("Related memories:\n" + "\n".join(f"- {r}" for r in recalled))
    if episodes:
        parts.append(
            "Similar past episodes (what was done and how it turned out):\n"
            + "\n".join("- " + e.replace("\n", "\n  ") for e in episodes)
        )
    if strategies:
        parts.append("Strategies that worked before:\n" + format_strategies(strategies))
    if not parts:
        return ""
    return "What you remember about this user (from earlier conversations):\n" + "\n".join(parts)


def _turn_text(doc: Document) -> str:
    """A recalled turn as a line: its speaker and date when known, then its text."""
    speaker = doc.metadata.get("speaker") or doc.metadata.get("role")
    at = doc.metadata.get("created_at")
    head = ", ".join(str(x) for x in (speaker, at[:10] if isinstance(at, str) else None) if x)
    return f"[{head}] {doc.page_content}" if head else doc.page_content


def _last_human(messages: Sequence[BaseMessage]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return i
    return None


def _graph_query(text: str, entities: Sequence[Entity]) -> str:
    """The text to find graph nodes by: the message plus the canonical names of the
    entities it mentions (so an entity alias such as "Bobby" also finds Bob's facts)."""
    return "\n".join([text, *(e.name for e in entities)])


def _with_memory(system: SystemMessage | None, block: str) -> SystemMessage:
    if system is None:
        return SystemMessage(block)
    if isinstance(system.content, str):
        return SystemMessage(system.content + "\n\n" + block if system.content else block)
    return SystemMessage([*system.content, {"type": "text", "text": block}])


class MemoryMiddleware(AgentMiddleware):  # type: ignore[type-arg]
    """Reads memories into the model request and writes each finished turn back.

    Args:
        engine: from :func:`langchain_agentmem.connect`, migrated.
        llm: the chat model that writes memories (entity summaries, graph facts, session
            summaries); without it the middleware only reads.
        user_id: the user when the run does not name one.
        user_key: the key the run names the user by, in its context or its
            ``configurable`` (default ``"user_id"``; LangMem's is ``"langgraph_user_id"``).
        session_id: the session when the run has no ``thread_id``.
        entities: read and write :class:`~.entities.EntityMemory`.
        graph: read and write :class:`~.graph.GraphMemory`.
        session_summaries: read the summaries of the user's earlier sessions (at most
            ``max_summaries``) and keep this session's summary with
            :class:`~.summary.SummaryMemory` (budget ``summary_token_limit``).
        vectorstore: optional LangChain vector store; its ``k`` best matches for the user's
            message are added ("vector recall"). It is used as given (scope it per user).
        retriever: optional :class:`~.recall.MemoryRetriever`; the ``k`` past turns of the
            run's user (the retriever's settings, the run's tenant) that best match the
            user's message are added ("recall"), with no model call.
        entity_system, graph_name: namespaces of the entity and graph memories.
        combined_extraction: with both entities and graph on, extract both from a turn
            in ONE model call (default True); False: one call each.
        episodes: optional :class:`~.episodes.EpisodicMemory`; the ``max_episodes``
            past episodes most similar to the user's message (its ``recall_similar``,
            for the run's user) are added with their outcomes.
        knowledge: optional :class:`~.knowledge.KnowledgeBase` (with embeddings); the
            run's user's ``max_strategies`` best strategies for the latest user message
            (its ``best_strategies``) are added too ("Strategies that worked before").
        background: write each finished turn from a queue drained by a worker thread, so
            that the agent's answer does not wait for the memory writes (default False:
            inline). Writes run in order; :meth:`flush` waits for them and raises
            :class:`~._core.background.BackgroundWriteError` for any that failed; at
            interpreter exit the queue is drained (nothing lost).

    Example:
        >>> from langchain_agentmem import connect
        >>> mw = MemoryMiddleware(connect("sqlite://"), user_id="alice", graph=False)
        >>> mw.name
        'MemoryMiddleware'
    """

    def __init__(
        self,
        engine: EngineLike,
        *,
        llm: BaseLanguageModel[Any] | Runnable[Any, Any] | None = None,
        user_id: str = "default",
        user_key: str = DEFAULT_USER_KEY,
        session_id: str = "default",
        entities: bool = True,
        graph: bool = True,
        session_summaries: bool = True,
        vectorstore: VectorStore | None = None,
        retriever: MemoryRetriever | None = None,
        k: int = 4,
        max_entities: int = 10,
        max_facts: int = 20,
        max_summaries: int = 3,
        summary_token_limit: int = 2000,
        entity_system: str = "default",
        graph_name: str = "default",
        combined_extraction: bool = True,
        episodes: EpisodicMemory | None = None,
        max_episodes: int = 3,
        knowledge: KnowledgeBase | None = None,
        max_strategies: int = 3,
        background: bool = False,
    ) -> None:
        super().__init__()
        if knowledge is not None and not isinstance(knowledge, KnowledgeBase):
            raise TypeError(f"knowledge must be a KnowledgeBase, got {type(knowledge).__name__}")
        if vectorstore is not None and not isinstance(vectorstore, VectorStore):
            raise TypeError(
                f"vectorstore must be a LangChain VectorStore, got {type(vectorstore).__name__}"
            )
        if episodes is not None and not isinstance(episodes, EpisodicMemory):
            raise TypeError(f"episodes must be an EpisodicMemory, got {type(episodes).__name__}")
        if retriever is not None and not isinstance(retriever, MemoryRetriever):
            raise TypeError(f"retriever must be a MemoryRetriever, got {type(retriever).__name__}")
        if llm is not None and not isinstance(llm, (BaseLanguageModel, Runnable)):
            raise TypeError(f"llm must be a LangChain chat model, got {type(llm).__name__}")
        check_user_key(user_key)
        self.engine = as_engine(engine)
        self.llm = llm
        self.user_id = user_id
        self.user_key = user_key
        self.session_id = session_id
        self.use_entities = entities
        self.use_graph = graph
        self.use_summaries = session_summaries
        self.vectorstore = vectorstore
        self.retriever = retriever
        self.k = k
        self.max_entities = max_entities
        self.max_facts = max_facts
        self.max_summaries = max_summaries
        self.summary_token_limit = summary_token_limit
        self.entity_system = entity_system
        self.graph_name = graph_name
        self.combined_extraction = combined_extraction
        self.episodes = episodes
        self.max_episodes = max_episodes
        self.knowledge = knowledge
        self.max_strategies = max_strategies
        self._extract: Runnable[Any, TurnExtraction] | None = (
            structured(llm, TurnExtraction) if llm is not None else None
        )
        self.background = background
        self._runner = BackgroundRunner(self.engine) if background else None

    # -- who and where ------------------------------------------------------------------
    def _user(self, runtime: Any) -> str:
        return user_from(
            context=getattr(runtime, "context", None), key=self.user_key, default=self.user_id
        )

    def _session(self, runtime: Any) -> str:
        info = getattr(runtime, "execution_info", None)
        thread = getattr(info, "thread_id", None)
        if isinstance(thread, str) and thread:
            return thread
        try:
            from langgraph.config import get_config

            thread = get_config().get("configurable", {}).get("thread_id")
        except RuntimeError:
            thread = None
        return str(thread) if thread else self.session_id

    def _memories(self, runtime: Any) -> tuple[EntityMemory, GraphMemory, SummaryMemory | None]:
        user = self._user(runtime)
        summary = None
        if self.use_summaries and self.llm is not None:
            summary = SummaryMemory(
                self.engine,
                self.llm,
                self._session(runtime),
                user_id=user,
                max_token_limit=self.summary_token_limit,
            )
        return (
            EntityMemory(self.engine, self.llm, user_id=user, entity_system=self.entity_system),
            GraphMemory(self.engine, self.llm, user_id=user, graph=self.graph_name),
            summary,
        )

    # -- before the model ---------------------------------------------------------------
    def _query(self, request: ModelRequest) -> str | None:
        i = _last_human(request.messages)
        return request.messages[i].text if i is not None else None

    def _recall(self, request: ModelRequest) -> tuple[str, Plan[ModelRequest]]:
        """The tenant, and the plan that returns ``request`` with what is remembered about
        the user added to its system message: one read transaction for the entities, the
        graph facts and the earlier sessions' summaries, then the vector store's recall."""
        ents, kg, _ = self._memories(request.runtime)
        return ents._uid, self._recall_plan(request, ents, kg)

    def _recall_plan(
        self, request: ModelRequest, ents: EntityMemory, kg: GraphMemory
    ) -> Plan[ModelRequest]:
        text = self._query(request)
        if text is None:
            return request
        user, session = self._user(request.runtime), self._session(request.runtime)

        def read() -> Body[tuple[list[Entity], list[Edge], list[SessionSummary]]]:
            entities = (
                (yield from ents._relevant(text, self.max_entities)) if self.use_entities else []
            )
            facts = (
                (yield from kg._relevant(_graph_query(text, entities), None, self.max_facts))
                if self.use_graph
                else []
            )
            summaries = (
                (yield from summaries_body(self.engine.dialect, user, self.max_summaries, session))
                if self.use_summaries
                else []
            )
            return entities, facts, summaries

        entities, facts, summaries = (
            (yield Atomic(read(), readonly=True))
            if self.use_entities or self.use_graph or self.use_summaries
            else ([], [], [])
        )
        recalled: list[str] = []
        if self.vectorstore is not None:
            retriever = self.vectorstore.as_retriever(search_kwargs={"k": self.k})
            recalled = [d.page_content for d in (yield Model(retriever, text))]
        similar: list[str] = []
        if self.episodes is not None:
            mem = self.episodes._for_user(user)
            found = yield from mem._recall_plan(
                text, self.max_episodes, None, False, None, None, False, None
            )
            similar = [f.episode.as_text() for f in found]
        strategies: list[ScoredKnowledge] = []
        if self.knowledge is not None:
            kb = self.knowledge._for_user(user)
            strategies = yield from kb._best_plan(
                text, self.max_strategies, ("strategy",), None, None, None
            )
        if self.retriever is not None:
            turns = yield from self.retriever.for_user(user)._search_plan(text, self.k, None)
            recalled += [_turn_text(d) for d in turns]
        block = format_memory(entities, facts, summaries, recalled, similar, strategies)
        if not block:
            return request
        return request.override(system_message=_with_memory(request.system_message, block))

    # The hooks keep AgentMiddleware's docstrings; each pair drives one plan.
    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        return handler(run(self.engine, *self._recall(request)))

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        return await handler(await arun(self.engine, *self._recall(request)))

    # -- after the agent ----------------------------------------------------------------
    def _turn(self, state: AgentState) -> list[BaseMessage]:
        messages: list[BaseMessage] = list(state.get("messages", []))
        i = _last_human(messages)
        if i is None or not any(isinstance(m, AIMessage) for m in messages[i:]):
            return []
        return messages[i:]

    def _remember(self, state: AgentState, runtime: Any) -> tuple[str, Plan[None]]:
        """The tenant, and the plan that writes the finished turn to the memories (who and
        where are read now, so that the plan can run later in another thread)."""
        ents, kg, summary = self._memories(runtime)
        plan = self._remember_plan(self._turn(state), self._session(runtime), ents, kg, summary)
        return ents._uid, plan

    def _remember_plan(
        self,
        turn: list[BaseMessage],
        session: str,
        ents: EntityMemory,
        kg: GraphMemory,
        summary: SummaryMemory | None,
    ) -> Plan[None]:
        if not turn or self.llm is None:
            return
        if self._combined():
            assert self._extract is not None
            yield from _write_plan(self._extract, ents, kg, turn, session)
        else:
            if self.use_entities:
                yield from ents._update(turn)
            if self.use_graph:
                yield from kg._add_text(turn, session, None, None)
        if summary is not None:
            yield from summary._add_plan(turn)

    def after_agent(self, state: AgentState, runtime: Any) -> dict[str, Any] | None:
        if self._runner is not None:
            self._runner.submit(*self._remember(state, runtime))
        else:
            run(self.engine, *self._remember(state, runtime))
        return None

    async def aafter_agent(self, state: AgentState, runtime: Any) -> dict[str, Any] | None:
        if self._runner is not None:
            self._runner.submit(*self._remember(state, runtime))
        else:
            await arun(self.engine, *self._remember(state, runtime))
        return None

    def flush(self, timeout: float | None = None) -> None:
        """Wait for the background writes (``background=True``) submitted so far; raise
        :class:`~._core.background.BackgroundWriteError` for those that failed since the
        last flush, ``TimeoutError`` when ``timeout`` seconds were not enough. Inline
        writes have nothing to wait for."""
        if self._runner is not None:
            self._runner.flush(timeout)

    async def aflush(self, timeout: float | None = None) -> None:
        """Async form of :meth:`flush` (waits in a worker thread)."""
        await asyncio.to_thread(self.flush, timeout)

    def _combined(self) -> bool:
        return (
            self.combined_extraction
            and self.use_entities
            and self.use_graph
            and self._extract is not None
        )
