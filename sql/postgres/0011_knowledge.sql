-- The knowledge base (facts, rules, distilled knowledge) and the operation metrics.
-- Keys (user_id, subject, predicate, object, ids) are stored through
-- langchain_agentmem/_encoding/keys.py; JSON values are exact JSON text written by
-- langchain_agentmem/_encoding/json.py, in text columns (castable to json).

-- Facts: subject / predicate / object, one row per distinct fact. Asserting a fact again
-- raises its confidence (noisy-OR) and counts it; a contradicting fact on a single-valued
-- predicate lowers the old one's confidence and stamps contradicted_at (both are kept).
CREATE TABLE knowledge_facts (
    user_id         text COLLATE "C" NOT NULL,
    subject         text COLLATE "C" NOT NULL,
    predicate       text COLLATE "C" NOT NULL,
    object          text COLLATE "C" NOT NULL,
    confidence      double precision NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    source          text,                                -- a JSON string, or NULL
    times_asserted  bigint      NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),  -- last assertion
    contradicted_at timestamptz,                         -- last contradiction, or NULL
    PRIMARY KEY (user_id, subject, predicate, object)
);
CREATE INDEX knowledge_facts_predicate_idx ON knowledge_facts (user_id, predicate, object);

-- Rules: when a context matches the condition pattern, the action pattern applies.
CREATE TABLE knowledge_rules (
    user_id     text COLLATE "C" NOT NULL,
    id          text COLLATE "C" NOT NULL,
    condition   text        NOT NULL,                    -- a JSON pattern
    action      text        NOT NULL,                    -- any JSON
    priority    integer     NOT NULL DEFAULT 0,
    is_active   boolean     NOT NULL DEFAULT true,
    description text,                                    -- a JSON string, or NULL
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id)
);
CREATE INDEX knowledge_rules_active_idx ON knowledge_rules (user_id, priority DESC) WHERE is_active;

-- Strategies, patterns, constraints and heuristics, learned from episodes.
-- description is a search copy (NUL and lone surrogates replaced); when that changed
-- anything the exact text is kept as a JSON string in description_exact.
CREATE TABLE knowledge (
    user_id                text COLLATE "C" NOT NULL,
    id                     text COLLATE "C" NOT NULL,
    kind                   text        NOT NULL CHECK (kind IN ('strategy', 'pattern', 'constraint', 'heuristic')),
    description            text        NOT NULL,
    description_exact      text,
    content                text        NOT NULL DEFAULT 'null',  -- any JSON
    confidence             double precision NOT NULL DEFAULT 0.5 CHECK (confidence >= 0 AND confidence <= 1),
    supporting_episodes    text        NOT NULL DEFAULT '[]',    -- a JSON array of episode ids
    contradicting_episodes text        NOT NULL DEFAULT '[]',
    times_applied          bigint      NOT NULL DEFAULT 0 CHECK (times_applied >= 0),
    success_count          bigint      NOT NULL DEFAULT 0 CHECK (success_count >= 0),
    failure_count          bigint      NOT NULL DEFAULT 0 CHECK (failure_count >= 0),
    success_rate           double precision GENERATED ALWAYS AS (
        CASE WHEN success_count + failure_count = 0 THEN NULL
             ELSE CAST(success_count AS double precision) / (success_count + failure_count) END
    ) STORED,
    last_applied           timestamptz,
    last_validated         timestamptz,
    is_active              boolean     NOT NULL DEFAULT true,
    embedding              public.vector,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id),
    CONSTRAINT knowledge_strategy_support CHECK (
        kind <> 'strategy' OR json_array_length(CAST(supporting_episodes AS json)) >= 3
    )
);
CREATE INDEX knowledge_kind_idx ON knowledge (user_id, kind) WHERE is_active;

CREATE VIEW v_strategy_effectiveness AS
SELECT user_id, id, description, confidence, times_applied, success_count, failure_count,
       success_rate,
       json_array_length(CAST(supporting_episodes AS json)) AS supporting_count,
       json_array_length(CAST(contradicting_episodes AS json)) AS contradicting_count,
       last_applied, last_validated, is_active
FROM knowledge
WHERE kind = 'strategy';

-- Operation metrics, written by the engine when connect(..., metrics=True).
CREATE TABLE agent_memory_metrics (
    user_id       text COLLATE "C" NOT NULL,
    id            text COLLATE "C" NOT NULL,
    operation     text        NOT NULL,                  -- e.g. best_strategies
    memory_type   text        NOT NULL,                  -- e.g. KnowledgeBase
    latency_ms    double precision NOT NULL CHECK (latency_ms >= 0),
    results_count bigint,
    error         text,                                  -- the error's type and message
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id)
);
CREATE INDEX agent_memory_metrics_time_idx ON agent_memory_metrics (user_id, created_at);

-- Rows and recent writes per memory table and user (the tables that exist at this
-- migration; a later one replaces the view when it adds memory tables).
CREATE VIEW v_memory_system_health AS
SELECT memory_table, user_id, count(*) AS row_count, max(t) AS last_write_at,
       count(*) FILTER (WHERE t > now() - interval '1 day') AS writes_last_day
FROM (
    SELECT 'sessions' AS memory_table, user_id COLLATE "C", last_activity_at AS t FROM sessions
    UNION ALL SELECT 'events', user_id COLLATE "C", created_at FROM events
    UNION ALL SELECT 'documents', user_id COLLATE "C", updated_at FROM documents
    UNION ALL SELECT 'vectors', user_id COLLATE "C", updated_at FROM vectors
    UNION ALL SELECT 'checkpoints', user_id COLLATE "C", created_at FROM checkpoints
    UNION ALL SELECT 'store_items', user_id COLLATE "C", updated_at FROM store_items
    UNION ALL SELECT 'conversation_summaries', user_id COLLATE "C", updated_at FROM conversation_summaries
    UNION ALL SELECT 'entities', user_id COLLATE "C", updated_at FROM entities
    UNION ALL SELECT 'graph_nodes', user_id COLLATE "C", created_at FROM graph_nodes
    UNION ALL SELECT 'graph_edges', user_id COLLATE "C", created_at FROM graph_edges
    UNION ALL SELECT 'working_memory', user_id COLLATE "C", last_updated FROM working_memory
    UNION ALL SELECT 'kv', user_id COLLATE "C", updated_at FROM kv
    UNION ALL SELECT 'knowledge_facts', user_id COLLATE "C", updated_at FROM knowledge_facts
    UNION ALL SELECT 'knowledge_rules', user_id COLLATE "C", updated_at FROM knowledge_rules
    UNION ALL SELECT 'knowledge', user_id COLLATE "C", updated_at FROM knowledge
    UNION ALL SELECT 'agent_memory_metrics', user_id COLLATE "C", created_at FROM agent_memory_metrics
) AS t(memory_table, user_id, t)
GROUP BY memory_table, user_id;
