-- Vector memory (SQLite form of sql/postgres/0002_vectors.sql).
-- Embeddings are little-endian float32 BLOBs; search is exact (the package computes the
-- distances over the rows of one scope). Full-text search uses an FTS5 table kept in step
-- with `vectors` by triggers.

CREATE TABLE vector_collections (
    collection_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    dims            INTEGER NOT NULL CHECK (dims > 0 AND dims <= 16000),
    distance        TEXT    NOT NULL CHECK (distance IN ('cosine', 'l2', 'inner_product')),
    model           TEXT,
    m               INTEGER NOT NULL DEFAULT 16,
    ef_construction INTEGER NOT NULL DEFAULT 64,
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
);

CREATE TABLE vectors (
    user_id       TEXT    NOT NULL,
    collection_id INTEGER NOT NULL REFERENCES vector_collections (collection_id) ON DELETE CASCADE,
    id            TEXT    NOT NULL,
    content       TEXT    NOT NULL DEFAULT '',
    metadata      TEXT    NOT NULL DEFAULT '{}',
    exact         TEXT,
    embedding     BLOB    NOT NULL,
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    UNIQUE (user_id, collection_id, id)
);

CREATE VIRTUAL TABLE vectors_fts USING fts5 (content, content='vectors', content_rowid='rowid');

CREATE TRIGGER vectors_fts_ai AFTER INSERT ON vectors BEGIN
    INSERT INTO vectors_fts (rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER vectors_fts_ad AFTER DELETE ON vectors BEGIN
    INSERT INTO vectors_fts (vectors_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
END;
CREATE TRIGGER vectors_fts_au AFTER UPDATE OF content ON vectors BEGIN
    INSERT INTO vectors_fts (vectors_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
    INSERT INTO vectors_fts (rowid, content) VALUES (new.rowid, new.content);
END;
