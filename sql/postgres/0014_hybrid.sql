-- Hybrid mode (Postgres side: the canonical store). See langchain_agentmem/hybrid.py.

-- Every sync run of every cache (source), copied from the cache's own log.
CREATE TABLE memory_sync_log (
    source        text        NOT NULL,
    run_id        bigint      NOT NULL,
    session_id    text,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    events_synced bigint      NOT NULL DEFAULT 0,
    rows_synced   bigint      NOT NULL DEFAULT 0,
    status        text        NOT NULL,
    error         text,
    PRIMARY KEY (source, run_id)
);
CREATE INDEX memory_sync_log_started_idx ON memory_sync_log (started_at DESC);

-- Per cache: the last outbox seq delivered, written in the transaction of each batch, with
-- the seqs Postgres assigned in that batch (so a cache that crashed between this commit and
-- its own can finish the batch without delivering it twice).
CREATE TABLE sync_sources (
    source     text        NOT NULL,
    delivered  bigint      NOT NULL DEFAULT 0,
    last_batch text        NOT NULL DEFAULT '[]',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source)
);

-- Last writer wins: per row of a synced table, the version (a hybrid logical clock) and
-- source of the write that holds it (deleted: a tombstone). xid orders changes by commit
-- for incremental pulls.
CREATE TABLE sync_versions (
    user_id    text COLLATE "C" NOT NULL,
    table_name text COLLATE "C" NOT NULL,
    pk         text COLLATE "C" NOT NULL,  -- the primary key, a JSON array
    version    bigint      NOT NULL,
    source     text        NOT NULL,
    deleted    boolean     NOT NULL DEFAULT false,
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (user_id, table_name, pk)
);
CREATE INDEX sync_versions_xid_idx ON sync_versions (user_id, xid);
