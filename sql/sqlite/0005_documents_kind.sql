-- SQLite form of sql/postgres/0005_documents_kind.sql: the kind joins the primary key of
-- `documents` (a WITHOUT ROWID table: rebuilt, rows copied as they are).
CREATE TABLE documents_0005 (
    user_id    TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('bytes', 'document')),
    value      BLOB,
    document   TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, namespace, kind, key)
) WITHOUT ROWID;
INSERT INTO documents_0005 (user_id, namespace, key, kind, value, document, created_at, updated_at)
    SELECT user_id, namespace, key, kind, value, document, created_at, updated_at FROM documents;
DROP TABLE documents;
ALTER TABLE documents_0005 RENAME TO documents;
