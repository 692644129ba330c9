-- Hybrid mode (SQLite side: the local cache). See langchain_agentmem/hybrid.py.
-- The outbox is filled by triggers the package generates from the table catalog for every
-- table whose sync policy is `up` (engine.migrate() of a hybrid engine installs them), so a
-- write and its outbox row share one local transaction. `seq` is AUTOINCREMENT: never
-- reused, so it is the per-source high-water mark Postgres records.

CREATE TABLE sync_outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name TEXT    NOT NULL,
    op         TEXT    NOT NULL CHECK (op IN ('i', 'u', 'd')),
    user_id    TEXT    NOT NULL,
    session_id TEXT,
    pk         TEXT    NOT NULL,  -- the row's primary key, a JSON array
    version    INTEGER NOT NULL,  -- hybrid logical clock (microseconds), never goes back
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
);

-- muted: 1 inside the cache's own writes of pulled rows (the triggers then write nothing);
-- clock: the last version handed out; source: this cache's id in Postgres.
CREATE TABLE sync_state (
    key   TEXT PRIMARY KEY,
    value
) WITHOUT ROWID;
INSERT INTO sync_state (key, value) VALUES ('muted', 0), ('clock', 0), ('source', lower(hex(randomblob(16))));

-- Per user: the Postgres snapshot horizon of the last pull (incremental refreshes start there).
CREATE TABLE sync_pulls (
    user_id   TEXT NOT NULL,
    xmin      TEXT NOT NULL,
    pulled_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (user_id)
) WITHOUT ROWID;

-- Per user, sequence table and parent key (a JSON array): the highest canonical seq pulled.
CREATE TABLE sync_cursors (
    user_id    TEXT    NOT NULL,
    table_name TEXT    NOT NULL,
    parent     TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (user_id, table_name, parent)
) WITHOUT ROWID;

-- Every sync run, written here first (Postgres may be down) and copied to Postgres's
-- memory_sync_log when it is reachable (uploaded = 1 then).
CREATE TABLE memory_sync_log (
    source        TEXT    NOT NULL,
    run_id        INTEGER NOT NULL,
    session_id    TEXT,
    started_at    TEXT    NOT NULL,
    ended_at      TEXT,
    events_synced INTEGER NOT NULL DEFAULT 0,
    rows_synced   INTEGER NOT NULL DEFAULT 0,
    status        TEXT    NOT NULL,
    error         TEXT,
    uploaded      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, run_id)
) WITHOUT ROWID;
