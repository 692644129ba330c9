-- Hybrid mode's per-session marks live in the SQLite cache only (sql/sqlite/0020): on
-- Postgres this version changes nothing, so that both backends keep one version number.
SELECT 1;
