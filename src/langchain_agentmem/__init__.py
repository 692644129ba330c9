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
from .engine import Engine, PoolConfig, connect
from .entities import Entity, EntityMemory, EntityStore
from .store import LangGraphStore
from .summary import SessionSummary, SummaryMemory
from .vectorstore import MemoryVectorStore

__all__ = [
    "ByteStore",
    "ChatMessageHistory",
    "CheckpointSaver",
    "DocumentStore",
    "Engine",
    "Entity",
    "EntityMemory",
    "EntityStore",
    "LangGraphStore",
    "MemoryVectorStore",
    "PoolConfig",
    "SessionInfo",
    "SessionSummary",
    "SummaryMemory",
    "connect",
]

__version__ = "0.1.0"
