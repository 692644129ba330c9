-- The agent log at size (SQLite form of sql/postgres/0015_events_speed.sql): the same
-- indexes, with the covered columns as trailing key columns (SQLite has no INCLUDE).

-- Filtered reads: the read's full order, importance checked in the index.
CREATE INDEX events_kind_read_idx ON events (user_id, kind, created_at DESC, session_id DESC, seq DESC, importance);
CREATE INDEX events_read_idx ON events (user_id, created_at DESC, session_id DESC, seq DESC, importance);
DROP INDEX IF EXISTS events_kind_time_idx;
DROP INDEX IF EXISTS events_time_idx;

-- The dashboards' windows over every tenant, covering what the hourly and the
-- distribution views read.
CREATE INDEX events_window_idx ON events (created_at, user_id, session_id, importance);
DROP INDEX IF EXISTS events_recent_idx;

-- Important events newest first, in the view's order.
CREATE INDEX events_important_order_idx ON events (created_at DESC, user_id, session_id, seq) WHERE importance >= 0.8;
DROP INDEX IF EXISTS events_important_idx;
