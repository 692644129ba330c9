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
from .engine import Engine, PoolConfig, connect
from .store import LangGraphStore

__all__ = [
    "ChatMessageHistory",
    "CheckpointSaver",
    "Engine",
    "LangGraphStore",
    "PoolConfig",
    "SessionInfo",
    "connect",
]

__version__ = "0.1.0"
