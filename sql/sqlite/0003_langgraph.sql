-- LangGraph persistence (SQLite form of sql/postgres/0003_langgraph.sql).
-- Timestamps are ISO-8601 UTC text, JSON is text, vectors are float32 BLOBs.

CREATE TABLE checkpoints (
    user_id              TEXT NOT NULL,
    thread_id            TEXT NOT NULL,
    checkpoint_ns        TEXT NOT NULL DEFAULT '',
    checkpoint_id        TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    run_id               TEXT,
    checkpoint           TEXT NOT NULL,
    metadata             TEXT NOT NULL DEFAULT '{}',
    metadata_exact       TEXT,
    created_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, thread_id, checkpoint_ns, checkpoint_id)
);
CREATE INDEX checkpoints_run_idx ON checkpoints (user_id, run_id) WHERE run_id IS NOT NULL;

CREATE TABLE checkpoint_blobs (
    user_id       TEXT NOT NULL,
    thread_id     TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    channel       TEXT NOT NULL,
    version       TEXT NOT NULL,
    type          TEXT NOT NULL,
    blob          BLOB,
    PRIMARY KEY (user_id, thread_id, checkpoint_ns, channel, version)
);

CREATE TABLE checkpoint_writes (
    user_id       TEXT    NOT NULL,
    thread_id     TEXT    NOT NULL,
    checkpoint_ns TEXT    NOT NULL DEFAULT '',
    checkpoint_id TEXT    NOT NULL,
    task_id       TEXT    NOT NULL,
    idx           INTEGER NOT NULL,
    channel       TEXT    NOT NULL,
    type          TEXT,
    blob          BLOB    NOT NULL,
    task_path     TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);

CREATE TABLE store_items (
    user_id     TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    expires_at  TEXT,
    ttl_minutes REAL,
    PRIMARY KEY (user_id, namespace, key)
);
CREATE INDEX store_items_updated_idx ON store_items (user_id, updated_at DESC);
CREATE INDEX store_items_expires_idx ON store_items (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE store_vectors (
    user_id   TEXT NOT NULL,
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    field     TEXT NOT NULL,
    embedding BLOB NOT NULL,
    PRIMARY KEY (user_id, namespace, key, field),
    FOREIGN KEY (user_id, namespace, key) REFERENCES store_items (user_id, namespace, key) ON DELETE CASCADE
);
