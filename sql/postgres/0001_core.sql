-- Core of the shared schema: conversations (sessions + the append-only event log) and
-- documents. Applied with search_path set to the target schema, then public.
-- Every table starts its primary key with user_id (the tenant).
-- Keys (user_id, session_id, namespace, key) hold any string: the package escapes NUL and
-- lone surrogates in them (see langchain_agentmem/_keys.py); payloads are exact JSON text
-- (text, not json/jsonb: no NUL problem, no re-validation on every insert; cast to json to query).

CREATE TABLE sessions (
    user_id          text        NOT NULL,
    session_id       text        NOT NULL,
    agent_name       text,
    metadata         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    last_seq         bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, session_id)
);
CREATE INDEX sessions_user_activity_idx ON sessions (user_id, last_activity_at DESC);

CREATE TABLE events (
    user_id    text        NOT NULL,
    session_id text        NOT NULL,
    seq        bigint      NOT NULL,
    role       text        NOT NULL,
    kind       text        NOT NULL DEFAULT 'message',
    content    text        NOT NULL DEFAULT '',
    payload    text        NOT NULL, -- exact JSON of the message (json-castable)
    importance real,
    tags       text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, session_id, seq)
);

CREATE TABLE documents (
    user_id    text COLLATE "C" NOT NULL,
    namespace  text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    kind       text        NOT NULL,
    value      bytea,
    document   json,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, namespace, key),
    CHECK (kind IN ('bytes', 'document'))
);
