-- Core of the shared schema (SQLite form of sql/postgres/0001_core.sql).
-- Timestamps are ISO-8601 UTC text, JSON is text, arrays are JSON arrays.

CREATE TABLE sessions (
    user_id          TEXT    NOT NULL,
    session_id       TEXT    NOT NULL,
    agent_name       TEXT,
    metadata         TEXT    NOT NULL DEFAULT '{}',
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    last_activity_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    last_seq         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, session_id)
) WITHOUT ROWID;
CREATE INDEX sessions_user_activity_idx ON sessions (user_id, last_activity_at DESC);

CREATE TABLE events (
    user_id    TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    role       TEXT    NOT NULL,
    kind       TEXT    NOT NULL DEFAULT 'message',
    content    TEXT    NOT NULL DEFAULT '',
    payload    TEXT    NOT NULL,
    importance REAL,
    tags       TEXT    NOT NULL DEFAULT '[]',
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, session_id, seq)
);

CREATE TABLE documents (
    user_id    TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('bytes', 'document')),
    value      BLOB,
    document   TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, namespace, key)
) WITHOUT ROWID;
