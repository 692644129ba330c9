"""Every kind of agent memory for LangChain and LangGraph, on one shared Postgres schema
(psycopg 3, pgvector) with the same API on SQLite.

Example:
    >>> from langchain_agentmem import ChatMessageHistory, connect
    >>> engine = connect("sqlite://")
    >>> _ = engine.migrate()
    >>> ChatMessageHistory(engine, "s1").messages
    []
"""

from .chat_history import ChatMessageHistory, SessionInfo
from .checkpoint import CheckpointSaver
from .docstore import ByteStore, DocumentStore
from .embeddings import LocalEmbeddings
from .engine import Engine, PoolConfig, connect
from .entities import Entity, EntityMemory, EntityStore
from .graph import Edge, GraphMemory, KnowledgeTriple, Node, Subgraph
from .kv import KeyValueStore
from .recall import MemoryRetriever, RecallSettings
from .store import LangGraphStore
from .summary import SessionSummary, SummaryMemory
from .vectorstore import MemoryVectorStore
from .working_memory import Thought, WorkingMemory, WorkingState

__all__ = [
    "ByteStore",
    "ChatMessageHistory",
    "CheckpointSaver",
    "DocumentStore",
    "Edge",
    "Engine",
    "Entity",
    "EntityMemory",
    "EntityStore",
    "GraphMemory",
    "KeyValueStore",
    "KnowledgeTriple",
    "LangGraphStore",
    "LocalEmbeddings",
    "MemoryMiddleware",
    "MemoryRetriever",
    "MemoryVectorStore",
    "Node",
    "PoolConfig",
    "RecallSettings",
    "SessionInfo",
    "SessionSummary",
    "Subgraph",
    "SummaryMemory",
    "Thought",
    "WorkingMemory",
    "WorkingState",
    "connect",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # MemoryMiddleware needs the ``langchain`` package (extra ``agents``): import it lazily
    # so that ``import langchain_agentmem`` works without it.
    if name == "MemoryMiddleware":
        from .middleware import MemoryMiddleware

        return MemoryMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
