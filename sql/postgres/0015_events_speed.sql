-- The agent log at size (issue 14, speed): indexes shaped like the reads, and two views
-- rewritten to read less. Results are identical to 0012's definitions (tests compare them).
-- Applied with search_path = <schema>, public.

-- Filtered reads (EventLog.events: type, tags, minimum importance, newest first): the
-- index gives the read's full order (created_at, session_id, seq), so LIMIT stops early,
-- and holds importance as a key column, so `importance >= ?` is checked in the index
-- before any row is fetched. They replace 0012's (user_id, kind, created_at) and
-- (user_id, created_at), which they cover. With one tenant's filter they also serve the
-- dashboards' windows (index-only for the hourly and the distribution views).
CREATE INDEX events_kind_read_idx ON events (user_id, kind, created_at DESC, session_id DESC, seq DESC, importance);
CREATE INDEX events_read_idx ON events (user_id, created_at DESC, session_id DESC, seq DESC, importance);
DROP INDEX IF EXISTS events_kind_time_idx;
DROP INDEX IF EXISTS events_time_idx;

-- The dashboards' windows over every tenant: an index-only scan of the last hours or days
-- (the hourly and the distribution views read nothing else from events).
CREATE INDEX events_window_idx ON events (created_at) INCLUDE (user_id, session_id, importance);
DROP INDEX IF EXISTS events_recent_idx;

-- Important events newest first, in the view's order (a LIMIT reads that many).
CREATE INDEX events_important_order_idx ON events (created_at DESC, user_id, session_id, seq) WHERE importance >= 0.8;
DROP INDEX IF EXISTS events_important_idx;

-- Events per hour per agent: count per (agent, hour, session) first, then per (agent,
-- hour): both hash aggregates (0012's count(DISTINCT session_id) sorted every event of
-- the window). A session has one agent, so the sessions of an (agent, hour) are its groups.
CREATE OR REPLACE VIEW agent_activity_hourly WITH (security_invoker = true) AS
SELECT h.user_id,
       h.agent_name,
       h.hour,
       sum(h.events)::bigint AS events,
       count(*)              AS sessions
FROM (SELECT e.user_id, s.agent_name, date_trunc('hour', e.created_at) AS hour, e.session_id,
             count(*) AS events
      FROM events e
      JOIN sessions s ON s.user_id = e.user_id AND s.session_id = e.session_id
      WHERE e.created_at >= now() - interval '24 hours'
      GROUP BY e.user_id, s.agent_name, date_trunc('hour', e.created_at), e.session_id) h
GROUP BY h.user_id, h.agent_name, h.hour;

-- Importance in tenths without a numeric per row. 0012 buckets floor(importance::numeric
-- * 10), and real -> numeric keeps 6 significant digits, so an importance reaches tenth j
-- from j/10 - 5e-7 on (j/10 - 5e-8 for 0.1, the decade below); every real in [0, 1] is
-- compared with those bounds exactly (a real widens to double precision without loss, and
-- no bound is a binary fraction). Values outside [0, 1] (rows older than 0012's check)
-- take 0012's expression.
CREATE OR REPLACE VIEW importance_distribution WITH (security_invoker = true) AS
SELECT d.user_id,
       (d.tenths / 10)::double precision AS bucket,
       count(*)                          AS events
FROM (SELECT e.user_id,
             CASE WHEN e.importance >= 0.9999995::double precision THEN 10::numeric
                  WHEN e.importance >= 0.8999995::double precision THEN 9::numeric
                  WHEN e.importance >= 0.7999995::double precision THEN 8::numeric
                  WHEN e.importance >= 0.6999995::double precision THEN 7::numeric
                  WHEN e.importance >= 0.5999995::double precision THEN 6::numeric
                  WHEN e.importance >= 0.4999995::double precision THEN 5::numeric
                  WHEN e.importance >= 0.3999995::double precision THEN 4::numeric
                  WHEN e.importance >= 0.2999995::double precision THEN 3::numeric
                  WHEN e.importance >= 0.1999995::double precision THEN 2::numeric
                  WHEN e.importance >= 0.09999995::double precision THEN 1::numeric
                  WHEN e.importance >= 0::double precision THEN 0::numeric
                  ELSE least(floor(e.importance::numeric * 10), 10)
             END AS tenths
      FROM events e
      WHERE e.importance IS NOT NULL AND e.created_at >= now() - interval '7 days') d
GROUP BY d.user_id, d.tenths;
