-- The important-events view at size (issue 14): one index only it reads, and no numeric
-- per row. Results are identical to 0012's definition (tests compare them).
-- Applied with search_path = <schema>, public.

-- The view's rows by one partial index. Its predicate is written `(importance >= 0.8) IS
-- TRUE` (the same rows as `importance >= 0.8`) so that only the view's condition matches
-- it, and no other index can take the view's importance test as an index condition: the
-- planner then reads this index (a bitmap scan, the heap in page order, when the week's
-- rows are scattered over the table; in time order when they sit together) instead of
-- walking 0015's events_read_idx through every event of the week and fetching each
-- important one in time order. In the view's order, so a LIMIT reads that many.
CREATE INDEX events_important_recent_idx ON events (created_at DESC, user_id, session_id, seq)
    WHERE (importance >= 0.8) IS TRUE;
DROP INDEX IF EXISTS events_important_order_idx;

-- 0012 shows importance as importance::numeric::double precision: the real printed with 6
-- significant digits (%.6g, rounding the exact binary value half to even) and read back.
-- For a real in [0.1, 1) that is rounding to 6 decimals, which double precision does
-- exactly: the real times 1e6 is exact (24 + 14 bits), round() is rint (half to even, as
-- printf), and dividing the integer by 1e6 gives the double nearest the decimal, as
-- reading "0.dddddd" does. The view keeps importance >= 0.8, so every row but 1.0 and
-- values outside [0, 1] (rows older than 0012's check; NaN) takes the double form; those
-- take 0012's expression.
CREATE OR REPLACE VIEW important_events_recent WITH (security_invoker = true) AS
SELECT e.user_id,
       e.session_id,
       e.seq,
       s.agent_name,
       e.kind                           AS event_type,
       e.role,
       e.content,
       CASE WHEN e.importance >= 0.1::real AND e.importance < 1::real
            THEN round(e.importance::double precision * 1000000::double precision)
                 / 1000000::double precision
            ELSE e.importance::numeric::double precision
       END                              AS importance,
       array_to_string(e.tags, ', ')    AS tags,
       e.created_at
FROM events e
JOIN sessions s ON s.user_id = e.user_id AND s.session_id = e.session_id
WHERE (e.importance >= 0.8) IS TRUE AND e.created_at >= now() - interval '7 days';
