-- LangGraph persistence: the checkpointer (checkpoints, checkpoint_blobs, checkpoint_writes)
-- and the long-term store (store_items, store_vectors). Every key starts with user_id.
-- Keys (user_id, thread_id, checkpoint_ns, namespace, key) are stored through
-- langchain_agentmem/_keys.py; payloads are exact JSON text or serializer bytes.

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

-- One row per checkpoint, without its channel values: those live in checkpoint_blobs,
-- once per (channel, version). `checkpoint` holds v, id, ts, channel_versions,
-- versions_seen, updated_channels. `metadata` is searchable jsonb (NUL and lone
-- surrogates replaced); `metadata_exact` keeps the exact JSON only when that differs.
CREATE TABLE checkpoints (
    user_id              text COLLATE "C" NOT NULL,
    thread_id            text COLLATE "C" NOT NULL,
    checkpoint_ns        text COLLATE "C" NOT NULL DEFAULT '',
    checkpoint_id        text COLLATE "C" NOT NULL,
    parent_checkpoint_id text COLLATE "C",
    run_id               text COLLATE "C",
    checkpoint           json        NOT NULL,
    metadata             jsonb       NOT NULL DEFAULT '{}'::jsonb,
    metadata_exact       json,
    created_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, thread_id, checkpoint_ns, checkpoint_id)
);
CREATE INDEX checkpoints_run_idx ON checkpoints (user_id, run_id) WHERE run_id IS NOT NULL;

CREATE TABLE checkpoint_blobs (
    user_id       text COLLATE "C" NOT NULL,
    thread_id     text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL DEFAULT '',
    channel       text COLLATE "C" NOT NULL,
    version       text COLLATE "C" NOT NULL,
    type          text  NOT NULL,
    blob          bytea,
    PRIMARY KEY (user_id, thread_id, checkpoint_ns, channel, version)
);

CREATE TABLE checkpoint_writes (
    user_id       text COLLATE "C" NOT NULL,
    thread_id     text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL DEFAULT '',
    checkpoint_id text COLLATE "C" NOT NULL,
    task_id       text COLLATE "C" NOT NULL,
    idx           integer NOT NULL,
    channel       text    NOT NULL,
    type          text,
    blob          bytea   NOT NULL,
    task_path     text    NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);

-- Long-term store. `namespace` is the labels (each through _keys.encode_key) joined by
-- '.', which no label contains; prefixes match on whole labels with range conditions.
CREATE TABLE store_items (
    user_id     text COLLATE "C" NOT NULL,
    namespace   text COLLATE "C" NOT NULL,
    key         text COLLATE "C" NOT NULL,
    value       json        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    ttl_minutes double precision,
    PRIMARY KEY (user_id, namespace, key)
);
CREATE INDEX store_items_updated_idx ON store_items (user_id, updated_at DESC);
CREATE INDEX store_items_expires_idx ON store_items (expires_at) WHERE expires_at IS NOT NULL;

-- One vector per indexed field of an item (any dimension: searched exactly within a
-- namespace prefix, so no ANN index is needed for scoped recall).
CREATE TABLE store_vectors (
    user_id   text COLLATE "C" NOT NULL,
    namespace text COLLATE "C" NOT NULL,
    key       text COLLATE "C" NOT NULL,
    field     text NOT NULL,
    embedding vector    NOT NULL,
    PRIMARY KEY (user_id, namespace, key, field),
    FOREIGN KEY (user_id, namespace, key) REFERENCES store_items (user_id, namespace, key) ON DELETE CASCADE
);
