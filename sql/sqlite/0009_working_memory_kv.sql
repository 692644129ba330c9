-- Working memory and the key-value store (SQLite form of sql/postgres/0009_working_memory_kv.sql).
-- Timestamps are ISO-8601 UTC text, JSON is text, booleans are 0/1.

CREATE TABLE working_memory (
    user_id          TEXT    NOT NULL,
    session_id       TEXT    NOT NULL,
    current_goal     TEXT,
    context          TEXT    NOT NULL DEFAULT '{}',
    related_episodes TEXT    NOT NULL DEFAULT '[]',
    thought_count    INTEGER NOT NULL DEFAULT 0,
    is_active        INTEGER NOT NULL DEFAULT 1,
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    last_updated     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    expires_at       TEXT    NOT NULL,
    PRIMARY KEY (user_id, session_id)
) WITHOUT ROWID;
CREATE INDEX working_memory_expires_idx ON working_memory (user_id, expires_at);

CREATE TABLE working_memory_thoughts (
    user_id    TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    thought    TEXT    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, session_id, seq),
    FOREIGN KEY (user_id, session_id) REFERENCES working_memory (user_id, session_id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE kv (
    user_id    TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    expires_at TEXT,
    PRIMARY KEY (user_id, namespace, key)
) WITHOUT ROWID;
CREATE INDEX kv_expires_idx ON kv (user_id, expires_at) WHERE expires_at IS NOT NULL;
