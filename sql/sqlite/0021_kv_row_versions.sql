-- Hybrid mode, cheaper key-value writes: a kv row carries its own local version (the
-- cache's hybrid clock, microseconds), set by the outbox trigger of a hybrid cache instead
-- of an outbox row per write (NULL elsewhere, and for rows a pull wrote). Every write
-- transaction of the sync first turns the rows whose version is above the table's mark
-- (sync_state 'rows:kv') into outbox rows and raises the mark (see
-- langchain_agentmem/hybrid.py). Deletes still queue their outbox row (the tombstone).
-- Postgres has no such column: sync moves only the columns both databases have.

ALTER TABLE kv ADD COLUMN sync_version INTEGER;
INSERT INTO sync_state (key, value) VALUES ('rows:kv', 0);
