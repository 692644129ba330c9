-- Recall index over the chat history (SQLite form of sql/postgres/0013_recall.sql).
-- Embeddings are little-endian float32 BLOBs (searched exactly by the package).

CREATE TABLE recall_events (
    user_id    TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    speaker    TEXT,
    length     REAL    NOT NULL DEFAULT 0,
    embedding  BLOB,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, session_id, seq),
    FOREIGN KEY (user_id, session_id, seq) REFERENCES events (user_id, session_id, seq) ON DELETE CASCADE
);
CREATE INDEX recall_events_speaker_idx ON recall_events (user_id, speaker) WHERE speaker IS NOT NULL;

CREATE TABLE recall_terms (
    user_id    TEXT    NOT NULL,
    term       TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    tf         REAL    NOT NULL,
    PRIMARY KEY (user_id, term, session_id, seq),
    FOREIGN KEY (user_id, session_id, seq) REFERENCES recall_events (user_id, session_id, seq) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX recall_terms_event_idx ON recall_terms (user_id, session_id, seq);
