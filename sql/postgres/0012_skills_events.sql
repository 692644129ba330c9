-- Skills registry, agent bindings, sessions and events as an agent log, and the analytics
-- views dashboards read (issue 14). Applied with search_path = <schema>, public.
-- Names (skill, version, category, agent, tag, source) are plain text: the package refuses
-- NUL and lone surrogates in them, so views show them as they are. Specs, configs and
-- event payloads are exact JSON text written by langchain_agentmem/_encoding/json.py.

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

-- One row per registered version of a skill; a version is immutable once written.
-- revision counts the versions of a name in registration order (the latest is the highest).
CREATE TABLE skills (
    user_id      text COLLATE "C" NOT NULL,
    name         text COLLATE "C" NOT NULL,
    version      text COLLATE "C" NOT NULL,
    revision     bigint      NOT NULL,
    description  text        NOT NULL,
    category     text,
    spec         text        NOT NULL,                  -- exact JSON: the MCP tool definition
    dependencies text        NOT NULL DEFAULT '[]',     -- exact JSON: names of other skills
    is_active    boolean     NOT NULL DEFAULT true,
    embedding    public.vector,                         -- of the description, when embedded
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, name, version),
    UNIQUE (user_id, name, revision)
);
CREATE INDEX skills_category_idx ON skills (user_id, category);

-- Which agent may use which skill: one row per (agent, skill name), the latest active
-- version of the skill applies.
CREATE TABLE agent_skill_bindings (
    user_id    text COLLATE "C" NOT NULL,
    agent_name text COLLATE "C" NOT NULL,
    skill_name text COLLATE "C" NOT NULL,
    enabled    boolean     NOT NULL DEFAULT true,
    priority   integer     NOT NULL DEFAULT 0,          -- higher first
    config     text        NOT NULL DEFAULT '{}',       -- exact JSON object
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, agent_name, skill_name)
);
CREATE INDEX agent_skill_bindings_skill_idx ON agent_skill_bindings (user_id, skill_name);

-- Sessions as an agent's run: where it came from, how it ended, and running sums of the
-- importance of its scored events (so per-agent summaries read sessions, not every event).
ALTER TABLE sessions ADD COLUMN source text;
ALTER TABLE sessions ADD COLUMN status text NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'completed', 'failed', 'abandoned'));
ALTER TABLE sessions ADD COLUMN ended_at timestamptz;
ALTER TABLE sessions ADD COLUMN importance_sum double precision NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN importance_count bigint NOT NULL DEFAULT 0;
CREATE INDEX sessions_agent_status_idx ON sessions (user_id, agent_name, status);
CREATE INDEX sessions_source_idx ON sessions (user_id, source);
CREATE INDEX sessions_started_idx ON sessions (user_id, created_at);

-- Events beyond chat messages (kind: tool_call, tool_result, observation, decision, ...),
-- with an optional embedding of their content. Chat history reads kind = 'message' only.
ALTER TABLE events ADD COLUMN embedding public.vector;
ALTER TABLE events ADD CONSTRAINT events_importance_range CHECK (importance BETWEEN 0 AND 1) NOT VALID;
CREATE INDEX events_kind_time_idx ON events (user_id, kind, created_at DESC);
CREATE INDEX events_time_idx ON events (user_id, created_at DESC);
CREATE INDEX events_tags_idx ON events USING gin (tags);
CREATE INDEX events_importance_idx ON events (user_id, importance DESC) WHERE importance IS NOT NULL;
-- The dashboards' windows over every tenant: recent events, and the important ones.
CREATE INDEX events_recent_idx ON events (created_at);
CREATE INDEX events_important_idx ON events (created_at) WHERE importance >= 0.8;

-- Views (security_invoker: a reader sees through them only the rows it may read).

-- Per agent: sessions, how they ended, and the average importance of scored events.
CREATE VIEW agent_performance_summary WITH (security_invoker = true) AS
SELECT s.user_id,
       s.agent_name,
       count(*)                                             AS sessions,
       count(*) FILTER (WHERE s.status = 'active')          AS active,
       count(*) FILTER (WHERE s.status = 'completed')       AS completed,
       count(*) FILTER (WHERE s.status = 'failed')          AS failed,
       count(*) FILTER (WHERE s.status = 'abandoned')       AS abandoned,
       round(count(*) FILTER (WHERE s.status = 'completed')::numeric / count(*), 4)::double precision
                                                            AS completion_rate,
       sum(s.last_seq)                                      AS events,
       (sum(s.importance_sum) / nullif(sum(s.importance_count), 0))::double precision
                                                            AS avg_importance,
       max(s.last_activity_at)                              AS last_activity_at
FROM sessions s
GROUP BY s.user_id, s.agent_name;

-- Per skill (its latest version): agents bound to it and bindings enabled.
CREATE VIEW skill_usage_summary WITH (security_invoker = true) AS
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

-- Events of importance at least 0.8 of the last 7 days, newest first.
CREATE VIEW important_events_recent WITH (security_invoker = true) AS
SELECT e.user_id,
       e.session_id,
       e.seq,
       s.agent_name,
       e.kind                           AS event_type,
       e.role,
       e.content,
       e.importance::numeric::double precision AS importance, -- real: 0.95, not 0.949999988
       array_to_string(e.tags, ', ')    AS tags,
       e.created_at
FROM events e
JOIN sessions s ON s.user_id = e.user_id AND s.session_id = e.session_id
WHERE e.importance >= 0.8 AND e.created_at >= now() - interval '7 days';

-- Events per hour per agent over the last 24 hours.
CREATE VIEW agent_activity_hourly WITH (security_invoker = true) AS
SELECT e.user_id,
       s.agent_name,
       date_trunc('hour', e.created_at) AS hour,
       count(*)                         AS events,
       count(DISTINCT e.session_id)     AS sessions
FROM events e
JOIN sessions s ON s.user_id = e.user_id AND s.session_id = e.session_id
WHERE e.created_at >= now() - interval '24 hours'
GROUP BY e.user_id, s.agent_name, date_trunc('hour', e.created_at);

-- Scored events of the last 7 days in tenths of importance (bucket 0.0 to 1.0).
CREATE VIEW importance_distribution WITH (security_invoker = true) AS
SELECT e.user_id,
       (least(floor(e.importance::numeric * 10), 10) / 10)::double precision AS bucket,
       count(*)                                                    AS events
FROM events e
WHERE e.importance IS NOT NULL AND e.created_at >= now() - interval '7 days'
GROUP BY e.user_id, least(floor(e.importance::numeric * 10), 10);
