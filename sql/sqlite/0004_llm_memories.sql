-- Memories written by a language model (SQLite form of sql/postgres/0004_llm_memories.sql).
-- Timestamps are ISO-8601 UTC text with milliseconds, JSON is text.

CREATE TABLE conversation_summaries (
    user_id       TEXT    NOT NULL,
    session_id    TEXT    NOT NULL,
    summary       TEXT    NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0,
    last_seq      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, session_id)
) WITHOUT ROWID;
CREATE INDEX conversation_summaries_user_updated_idx ON conversation_summaries (user_id, updated_at DESC);

CREATE TABLE entities (
    user_id       TEXT NOT NULL,
    entity_system TEXT NOT NULL,
    key           TEXT NOT NULL,
    name          TEXT NOT NULL,
    type          TEXT,
    summary       TEXT NOT NULL,
    aliases       TEXT NOT NULL DEFAULT '[]',
    metadata      TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, entity_system, key)
) WITHOUT ROWID;

CREATE TABLE entity_aliases (
    user_id TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('entity', 'node')),
    space   TEXT NOT NULL,
    alias   TEXT NOT NULL,
    key     TEXT NOT NULL,
    PRIMARY KEY (user_id, kind, space, alias)
) WITHOUT ROWID;
CREATE INDEX entity_aliases_key_idx ON entity_aliases (user_id, kind, space, key);

CREATE TABLE graph_nodes (
    user_id    TEXT NOT NULL,
    graph      TEXT NOT NULL,
    key        TEXT NOT NULL,
    name       TEXT NOT NULL,
    type       TEXT,
    properties TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, graph, key)
) WITHOUT ROWID;

CREATE TABLE graph_edges (
    user_id        TEXT NOT NULL,
    graph          TEXT NOT NULL,
    id             TEXT NOT NULL,
    source         TEXT NOT NULL,
    relation       TEXT NOT NULL,
    target         TEXT NOT NULL,
    weight         REAL NOT NULL DEFAULT 1.0,
    properties     TEXT NOT NULL DEFAULT '{}',
    valid_from     TEXT NOT NULL,
    valid_to       TEXT,
    source_session TEXT,
    source_seq     INTEGER,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, graph, id)
) WITHOUT ROWID;
CREATE INDEX graph_edges_source_idx ON graph_edges (user_id, graph, source, relation);
CREATE INDEX graph_edges_target_idx ON graph_edges (user_id, graph, target);
