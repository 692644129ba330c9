-- The knowledge base and the operation metrics (SQLite form of
-- sql/postgres/0011_knowledge.sql). Timestamps are ISO-8601 UTC text, JSON is text,
-- booleans are 0/1, embeddings are little-endian float32 blobs.

CREATE TABLE knowledge_facts (
    user_id         TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    predicate       TEXT    NOT NULL,
    object          TEXT    NOT NULL,
    confidence      REAL    NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    source          TEXT,
    times_asserted  INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    contradicted_at TEXT,
    PRIMARY KEY (user_id, subject, predicate, object)
) WITHOUT ROWID;
CREATE INDEX knowledge_facts_predicate_idx ON knowledge_facts (user_id, predicate, object);

CREATE TABLE knowledge_rules (
    user_id     TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    condition   TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    priority    INTEGER NOT NULL DEFAULT 0,
    is_active   INTEGER NOT NULL DEFAULT 1,
    description TEXT,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
CREATE INDEX knowledge_rules_active_idx ON knowledge_rules (user_id, priority DESC) WHERE is_active;

-- A rowid table (the vector search reads rows by rowid).
CREATE TABLE knowledge (
    user_id                TEXT    NOT NULL,
    id                     TEXT    NOT NULL,
    kind                   TEXT    NOT NULL CHECK (kind IN ('strategy', 'pattern', 'constraint', 'heuristic')),
    description            TEXT    NOT NULL,
    description_exact      TEXT,
    content                TEXT    NOT NULL DEFAULT 'null',
    confidence             REAL    NOT NULL DEFAULT 0.5 CHECK (confidence >= 0 AND confidence <= 1),
    supporting_episodes    TEXT    NOT NULL DEFAULT '[]',
    contradicting_episodes TEXT    NOT NULL DEFAULT '[]',
    times_applied          INTEGER NOT NULL DEFAULT 0 CHECK (times_applied >= 0),
    success_count          INTEGER NOT NULL DEFAULT 0 CHECK (success_count >= 0),
    failure_count          INTEGER NOT NULL DEFAULT 0 CHECK (failure_count >= 0),
    success_rate           REAL GENERATED ALWAYS AS (
        CASE WHEN success_count + failure_count = 0 THEN NULL
             ELSE CAST(success_count AS REAL) / (success_count + failure_count) END
    ) STORED,
    last_applied           TEXT,
    last_validated         TEXT,
    is_active              INTEGER NOT NULL DEFAULT 1,
    embedding              BLOB,
    created_at             TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at             TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, id),
    CONSTRAINT knowledge_strategy_support CHECK (
        kind <> 'strategy' OR json_array_length(supporting_episodes) >= 3
    )
);
CREATE INDEX knowledge_kind_idx ON knowledge (user_id, kind) WHERE is_active;

CREATE VIEW v_strategy_effectiveness AS
SELECT user_id, id, description, confidence, times_applied, success_count, failure_count,
       success_rate,
       json_array_length(supporting_episodes) AS supporting_count,
       json_array_length(contradicting_episodes) AS contradicting_count,
       last_applied, last_validated, is_active
FROM knowledge
WHERE kind = 'strategy';

CREATE TABLE agent_memory_metrics (
    user_id       TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    operation     TEXT    NOT NULL,
    memory_type   TEXT    NOT NULL,
    latency_ms    REAL    NOT NULL CHECK (latency_ms >= 0),
    results_count INTEGER,
    error         TEXT,
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
CREATE INDEX agent_memory_metrics_time_idx ON agent_memory_metrics (user_id, created_at);

CREATE VIEW v_memory_system_health AS
SELECT memory_table, user_id, count(*) AS row_count, max(t) AS last_write_at,
       sum(t > strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-1 day')) AS writes_last_day
FROM (
    SELECT 'sessions' AS memory_table, user_id, last_activity_at AS t FROM sessions
    UNION ALL SELECT 'events', user_id, created_at FROM events
    UNION ALL SELECT 'documents', user_id, updated_at FROM documents
    UNION ALL SELECT 'vectors', user_id, updated_at FROM vectors
    UNION ALL SELECT 'checkpoints', user_id, created_at FROM checkpoints
    UNION ALL SELECT 'store_items', user_id, updated_at FROM store_items
    UNION ALL SELECT 'conversation_summaries', user_id, updated_at FROM conversation_summaries
    UNION ALL SELECT 'entities', user_id, updated_at FROM entities
    UNION ALL SELECT 'graph_nodes', user_id, created_at FROM graph_nodes
    UNION ALL SELECT 'graph_edges', user_id, created_at FROM graph_edges
    UNION ALL SELECT 'working_memory', user_id, last_updated FROM working_memory
    UNION ALL SELECT 'kv', user_id, updated_at FROM kv
    UNION ALL SELECT 'knowledge_facts', user_id, updated_at FROM knowledge_facts
    UNION ALL SELECT 'knowledge_rules', user_id, updated_at FROM knowledge_rules
    UNION ALL SELECT 'knowledge', user_id, updated_at FROM knowledge
    UNION ALL SELECT 'agent_memory_metrics', user_id, created_at FROM agent_memory_metrics
)
GROUP BY memory_table, user_id;
