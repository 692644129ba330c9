-- Episodic memory (issue 13): what an agent saw, how it reasoned, what it did and how that
-- turned out, one row per episode.
--
-- Keys (user_id, id, project) and the short text columns are stored through
-- langchain_agentmem/_encoding/keys.py. perception, reasoning, action, outcome and tags are
-- exact JSON text written by langchain_agentmem/_encoding/json.py (text columns, castable to
-- json; not jsonb, which rejects \u0000). metadata (free references such as sprint_id) is
-- exact JSON in a json column, which the filter compiler reads.
--
-- The embedding column has no fixed size: the package creates one partial HNSW index per
-- size when asked (EpisodicMemory(hnsw=...) or create_index()), as the LangGraph store does:
--   CREATE INDEX episodes_d<dims>_hnsw ON episodes USING hnsw ((embedding::vector(<dims>))
--   vector_cosine_ops) WITH (m = .., ef_construction = ..) WHERE vector_dims(embedding) = <dims>
-- Searches scoped to one project read the rows of that project by (user_id, project) and
-- are exact while the scope is small.

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

CREATE TABLE episodes (
    user_id         text COLLATE "C" NOT NULL,
    id              text COLLATE "C" NOT NULL,
    project         text COLLATE "C" NOT NULL DEFAULT '',
    perception      text        NOT NULL,                  -- JSON
    reasoning       text        NOT NULL,                  -- JSON
    action          text        NOT NULL,                  -- JSON
    outcome         text,                                  -- JSON, NULL while pending
    outcome_quality double precision
        CHECK (outcome_quality >= 0 AND outcome_quality <= 1),
    outcome_at      timestamptz,
    control_mode    text        NOT NULL DEFAULT 'memory_augmented'
        CHECK (control_mode IN ('rule_based_only', 'intelligence_enhanced', 'memory_augmented')),
    decision_source text,
    agent_version   text,
    tags            text        NOT NULL DEFAULT '[]',     -- JSON array of strings
    metadata        json        NOT NULL DEFAULT '{}',     -- JSON object
    created_at      timestamptz NOT NULL DEFAULT now(),
    embedding       public.vector NOT NULL,
    PRIMARY KEY (user_id, id),
    CHECK (outcome_quality IS NULL OR outcome IS NOT NULL)
);
-- list(project, since): newest first within a project; recall scoped to a project.
CREATE INDEX episodes_project_idx ON episodes (user_id, project, created_at DESC);
-- pending_outcomes(): the episodes still waiting for their outcome, oldest first.
CREATE INDEX episodes_pending_idx ON episodes (user_id, created_at) WHERE outcome IS NULL;

-- Outcome quality per project, for dashboards (plain SQL, the same columns on SQLite).
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
