-- Working memory (one short-lived context per agent session) and the key-value store.
-- Keys (user_id, session_id, namespace, key) are stored through langchain_agentmem/_encoding/keys.py;
-- goals, contexts, thoughts and values are exact JSON text written by
-- langchain_agentmem/_encoding/json.py, in text columns (castable to json; not jsonb, which
-- rejects \u0000; not json, which psycopg would parse on every read).

-- One row per session. A row whose expires_at has passed, or that is not is_active, is
-- never read as active; the next write starts a fresh context in it.
CREATE TABLE working_memory (
    user_id          text COLLATE "C" NOT NULL,
    session_id       text COLLATE "C" NOT NULL,
    current_goal     text,                                 -- a JSON string, or NULL
    context          text        NOT NULL DEFAULT '{}',    -- a JSON object
    related_episodes text        NOT NULL DEFAULT '[]',    -- a JSON array of episode ids
    thought_count    bigint      NOT NULL DEFAULT 0,       -- seq of the last thought
    is_active        boolean     NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),   -- start of the current context
    last_updated     timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (user_id, session_id)
);
CREATE INDEX working_memory_expires_idx ON working_memory (user_id, expires_at);

-- The append-only thought history of a session's current context.
CREATE TABLE working_memory_thoughts (
    user_id    text COLLATE "C" NOT NULL,
    session_id text COLLATE "C" NOT NULL,
    seq        bigint      NOT NULL,
    thought    text        NOT NULL,                       -- a JSON string
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, session_id, seq),
    FOREIGN KEY (user_id, session_id) REFERENCES working_memory (user_id, session_id) ON DELETE CASCADE
);

-- Key-value store: JSON values per (user, namespace, key), an optional expiry per key.
CREATE TABLE kv (
    user_id    text COLLATE "C" NOT NULL,
    namespace  text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    value      text        NOT NULL,                       -- exact JSON text
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    PRIMARY KEY (user_id, namespace, key)
);
CREATE INDEX kv_expires_idx ON kv (user_id, expires_at) WHERE expires_at IS NOT NULL;
