-- The important-events view at size (SQLite form of sql/postgres/0019_important_events.sql):
-- nothing to change. SQLite reads the view through 0015's partial index
-- events_important_order_idx (WHERE importance >= 0.8, the view's own condition: no other
-- index competes for it), and its importance is round(importance, 6), not a numeric
-- conversion. The file keeps the two backends' migration numbers in step.
SELECT 1;
