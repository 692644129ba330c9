-- Hybrid mode's per-row kv versions live in the SQLite cache only (sql/sqlite/0021): on
-- Postgres this version changes nothing, so that both backends keep one version number.
SELECT 1;
