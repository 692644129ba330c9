-- Recall (SQLite form of sql/postgres/0017_recall_stats.sql): the length, speaker and time
-- of the turns a search ranks, and the tenant's BM25 statistics, read from a covering index
-- instead of the rows (which hold the embeddings).
CREATE INDEX recall_events_meta_idx ON recall_events (user_id, session_id, seq, length, speaker, created_at);
