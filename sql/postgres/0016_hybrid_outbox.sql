-- Hybrid mode: 0016 rebuilds the SQLite cache's outbox (see sql/sqlite/0016_hybrid_outbox.sql).
-- Nothing changes on Postgres: sync_sources.last_batch now also names a batch's first outbox
-- row by seq and version (a JSON field; records written before are read as they were).
SELECT 1;
