-- Episodic memory (SQLite form of sql/postgres/0010_episodes.sql).
-- Timestamps are ISO-8601 UTC text, JSON is text, embeddings are little-endian float32
-- BLOBs searched exactly (a rowid table: the search reads candidates by rowid).

CREATE TABLE episodes (
    user_id         TEXT NOT NULL,
    id              TEXT NOT NULL,
    project         TEXT NOT NULL DEFAULT '',
    perception      TEXT NOT NULL,
    reasoning       TEXT NOT NULL,
    action          TEXT NOT NULL,
    outcome         TEXT,
    outcome_quality REAL
        CHECK (outcome_quality >= 0 AND outcome_quality <= 1),
    outcome_at      TEXT,
    control_mode    TEXT NOT NULL DEFAULT 'memory_augmented'
        CHECK (control_mode IN ('rule_based_only', 'intelligence_enhanced', 'memory_augmented')),
    decision_source TEXT,
    agent_version   TEXT,
    tags            TEXT NOT NULL DEFAULT '[]',
    metadata        TEXT NOT NULL DEFAULT '{}',
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    embedding       BLOB NOT NULL,
    PRIMARY KEY (user_id, id),
    CHECK (outcome_quality IS NULL OR outcome IS NOT NULL)
);
CREATE INDEX episodes_project_idx ON episodes (user_id, project, created_at DESC);
CREATE INDEX episodes_pending_idx ON episodes (user_id, created_at) WHERE outcome IS NULL;

CREATE VIEW v_episode_quality_by_project AS
SELECT
    user_id,
    project,
    count(*)                                            AS episodes,
    count(outcome)                                      AS with_outcome,
    count(*) - count(outcome)                           AS pending,
    avg(outcome_quality)                                AS avg_quality,
    min(outcome_quality)                                AS min_quality,
    max(outcome_quality)                                AS max_quality,
    min(created_at)                                     AS first_episode_at,
    max(created_at)                                     AS last_episode_at,
    max(outcome_at)                                     AS last_outcome_at
FROM episodes
GROUP BY user_id, project;
