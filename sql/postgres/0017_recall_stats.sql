-- Recall (issue 17): what a search reads of the turns it ranks (length, speaker, time), and
-- the tenant's BM25 statistics, from an index alone. The rows of recall_events hold the
-- embeddings (a kilobyte or more each); without this index every candidate turn is a heap
-- visit, and counting one tenant's turns can scan the turns of every tenant.
CREATE INDEX recall_events_meta_idx ON recall_events (user_id, session_id, seq)
    INCLUDE (length, speaker, created_at);
