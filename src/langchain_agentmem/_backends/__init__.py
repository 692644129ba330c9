"""I/O: transactions on connections, psycopg pools and sqlite3 connections. With
:mod:`~langchain_agentmem.dialects`, the only place that knows Postgres from SQLite."""
