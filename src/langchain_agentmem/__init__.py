"""Every kind of agent memory for LangChain and LangGraph, on one shared Postgres schema
(psycopg 3, pgvector) with the same API on SQLite.

Example:
    >>> from langchain_agentmem import ChatMessageHistory, connect
    >>> engine = connect("sqlite://")
    >>> _ = engine.migrate()
    >>> ChatMessageHistory(engine, "s1").messages
    []
"""

from typing import TYPE_CHECKING

from .analytics import Analytics
from .chat_history import ChatMessageHistory, SessionInfo
from .checkpoint import CheckpointSaver
from .docstore import ByteStore, DocumentStore
from .embeddings import LocalEmbeddings
from .engine import Engine, PoolConfig, connect
from .entities import Entity, EntityMemory, EntityStore
from .episodes import Episode, EpisodeRetriever, EpisodicMemory, Ranking, RecalledEpisode
from .events import AgentSession, Event, EventLog, SessionLog
from .graph import Edge, GraphMemory, KnowledgeTriple, Node, Subgraph
from .hybrid import HybridEngine, SyncReport, connect_hybrid
from .importers import Importer, ImportReport, MissingSourceError
from .knowledge import (
    Distilled,
    Fact,
    Knowledge,
    KnowledgeBase,
    Rule,
    ScoredKnowledge,
    StrategyWeights,
    knowledge_tools,
)
from .kv import KeyValueStore
from .monitoring import MemoryCollector, Monitor
from .recall import MemoryRetriever, RecallSettings
from .retention import Retention, RetentionPolicy
from .skills import Binding, Skill, SkillRegistry
from .store import LangGraphStore
from .summary import SessionSummary, SummaryMemory
from .tenancy import TenantRequiredError, agrant_app_role, citus_ddl, grant_app_role
from .tools import create_manage_memory_tool, create_search_memory_tool, memory_tools
from .vectorstore import MemoryVectorStore
from .working_memory import Thought, WorkingMemory, WorkingState

if TYPE_CHECKING:  # imported lazily at run time (it needs the ``agents`` extra)
    from .middleware import MemoryMiddleware

__all__ = [
    "AgentSession",
    "Analytics",
    "Binding",
    "ByteStore",
    "ChatMessageHistory",
    "CheckpointSaver",
    "Distilled",
    "DocumentStore",
    "Edge",
    "Engine",
    "Entity",
    "EntityMemory",
    "EntityStore",
    "Episode",
    "EpisodeRetriever",
    "EpisodicMemory",
    "Event",
    "EventLog",
    "Fact",
    "GraphMemory",
    "HybridEngine",
    "ImportReport",
    "Importer",
    "KeyValueStore",
    "Knowledge",
    "KnowledgeBase",
    "KnowledgeTriple",
    "LangGraphStore",
    "LocalEmbeddings",
    "MemoryCollector",
    "MemoryMiddleware",
    "MemoryRetriever",
    "MemoryVectorStore",
    "MissingSourceError",
    "Monitor",
    "Node",
    "PoolConfig",
    "Ranking",
    "RecallSettings",
    "RecalledEpisode",
    "Retention",
    "RetentionPolicy",
    "Rule",
    "ScoredKnowledge",
    "SessionInfo",
    "SessionLog",
    "SessionSummary",
    "Skill",
    "SkillRegistry",
    "StrategyWeights",
    "Subgraph",
    "SummaryMemory",
    "SyncReport",
    "TenantRequiredError",
    "Thought",
    "WorkingMemory",
    "WorkingState",
    "agrant_app_role",
    "citus_ddl",
    "connect",
    "connect_hybrid",
    "create_manage_memory_tool",
    "create_search_memory_tool",
    "grant_app_role",
    "knowledge_tools",
    "memory_tools",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # MemoryMiddleware needs the ``langchain`` package (extra ``agents``): import it lazily
    # so that ``import langchain_agentmem`` works without it.
    if name == "MemoryMiddleware":
        from .middleware import MemoryMiddleware

        return MemoryMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
