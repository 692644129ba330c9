-- Skills registry, agent bindings, sessions and events as an agent log, and the analytics
-- views (SQLite form of sql/postgres/0012_skills_events.sql). Timestamps are ISO-8601 UTC
-- text, JSON is text, booleans are 0/1, embeddings are blobs of little-endian float32.

CREATE TABLE skills (
    user_id      TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    revision     INTEGER NOT NULL,
    description  TEXT    NOT NULL,
    category     TEXT,
    spec         TEXT    NOT NULL,
    dependencies TEXT    NOT NULL DEFAULT '[]',
    is_active    INTEGER NOT NULL DEFAULT 1,
    embedding    BLOB,
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, name, version),
    UNIQUE (user_id, name, revision)
);
CREATE INDEX skills_category_idx ON skills (user_id, category);

CREATE TABLE agent_skill_bindings (
    user_id    TEXT    NOT NULL,
    agent_name TEXT    NOT NULL,
    skill_name TEXT    NOT NULL,
    enabled    INTEGER NOT NULL DEFAULT 1,
    priority   INTEGER NOT NULL DEFAULT 0,
    config     TEXT    NOT NULL DEFAULT '{}',
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id, agent_name, skill_name)
) WITHOUT ROWID;
CREATE INDEX agent_skill_bindings_skill_idx ON agent_skill_bindings (user_id, skill_name);

ALTER TABLE sessions ADD COLUMN source TEXT;
ALTER TABLE sessions ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'completed', 'failed', 'abandoned'));
ALTER TABLE sessions ADD COLUMN ended_at TEXT;
ALTER TABLE sessions ADD COLUMN importance_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN importance_count INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sessions_agent_status_idx ON sessions (user_id, agent_name, status);
CREATE INDEX sessions_source_idx ON sessions (user_id, source);
CREATE INDEX sessions_started_idx ON sessions (user_id, created_at);

ALTER TABLE events ADD COLUMN embedding BLOB;
CREATE INDEX events_kind_time_idx ON events (user_id, kind, created_at DESC);
CREATE INDEX events_time_idx ON events (user_id, created_at DESC);
CREATE INDEX events_importance_idx ON events (user_id, importance DESC) WHERE importance IS NOT NULL;
CREATE INDEX events_recent_idx ON events (created_at);
CREATE INDEX events_important_idx ON events (created_at) WHERE importance >= 0.8;

CREATE VIEW agent_performance_summary AS
SELECT s.user_id,
       s.agent_name,
       count(*)                                       AS sessions,
       count(*) FILTER (WHERE s.status = 'active')    AS active,
       count(*) FILTER (WHERE s.status = 'completed') AS completed,
       count(*) FILTER (WHERE s.status = 'failed')    AS failed,
       count(*) FILTER (WHERE s.status = 'abandoned') AS abandoned,
       round(CAST(count(*) FILTER (WHERE s.status = 'completed') AS REAL) / count(*), 4)
                                                      AS completion_rate,
       sum(s.last_seq)                                AS events,
       sum(s.importance_sum) / nullif(sum(s.importance_count), 0) AS avg_importance,
       max(s.last_activity_at)                        AS last_activity_at
FROM sessions s
GROUP BY s.user_id, s.agent_name;

CREATE VIEW skill_usage_summary AS
SELECT k.user_id,
       k.name                                         AS skill_name,
       k.version,
       k.category,
       k.is_active,
       count(b.agent_name)                            AS bound_agents,
       count(b.agent_name) FILTER (WHERE b.enabled AND k.is_active) AS active_bindings
FROM skills k
LEFT JOIN agent_skill_bindings b ON b.user_id = k.user_id AND b.skill_name = k.name
WHERE k.revision = (SELECT max(x.revision) FROM skills x WHERE x.user_id = k.user_id AND x.name = k.name)
GROUP BY k.user_id, k.name, k.version, k.category, k.is_active;

CREATE VIEW important_events_recent AS
SELECT e.user_id,
       e.session_id,
       e.seq,
       s.agent_name,
       e.kind                                               AS event_type,
       e.role,
       e.content,
       round(e.importance, 6)                               AS importance, -- float32: 0.95, not 0.949999988
       (SELECT group_concat(t.value, ', ') FROM json_each(e.tags) t) AS tags,
       e.created_at
FROM events e
JOIN sessions s ON s.user_id = e.user_id AND s.session_id = e.session_id
WHERE e.importance >= 0.8
  AND e.created_at >= strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-7 days');

CREATE VIEW agent_activity_hourly AS
SELECT e.user_id,
       s.agent_name,
       strftime('%Y-%m-%dT%H:00:00+00:00', e.created_at) AS hour,
       count(*)                                           AS events,
       count(DISTINCT e.session_id)                       AS sessions
FROM events e
JOIN sessions s ON s.user_id = e.user_id AND s.session_id = e.session_id
WHERE e.created_at >= strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-24 hours')
GROUP BY e.user_id, s.agent_name, strftime('%Y-%m-%dT%H:00:00+00:00', e.created_at);

CREATE VIEW importance_distribution AS
SELECT e.user_id,
       min(CAST(round(e.importance, 6) * 10 AS INTEGER), 10) / 10.0 AS bucket,
       count(*)                                            AS events
FROM events e
WHERE e.importance IS NOT NULL
  AND e.created_at >= strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-7 days')
GROUP BY e.user_id, min(CAST(round(e.importance, 6) * 10 AS INTEGER), 10);
