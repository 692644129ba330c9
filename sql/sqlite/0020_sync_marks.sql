-- Hybrid mode, cheaper appends: per session, the mark, the highest seq whose events are
-- queued in the outbox or delivered. An append above its session's mark queues no outbox
-- row (the insert trigger only looks the mark up); every write transaction of the sync
-- first turns the events above the marks into outbox rows and raises the marks (see
-- langchain_agentmem/hybrid.py). The first migrate() of a hybrid engine that installs the
-- triggers reading it sets every session's mark to its last seq, once.

CREATE TABLE sync_marks (
    user_id    TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (user_id, session_id)
) WITHOUT ROWID;
