-- Memories written by a language model: running conversation summaries, entities (with
-- aliases) and a time-aware knowledge graph. Applied with search_path = <schema>, public.
-- Every table starts its primary key with user_id (the tenant). Keys are stored through
-- langchain_agentmem._keys.encode_key; model-written text that must round-trip exactly is
-- JSON text written by langchain_agentmem._json.dumps.

CREATE TABLE conversation_summaries (
    user_id       text        NOT NULL,
    session_id    text        NOT NULL,
    summary       json        NOT NULL,          -- a JSON string
    message_count bigint      NOT NULL DEFAULT 0, -- messages folded into the summary
    last_seq      bigint      NOT NULL DEFAULT 0, -- events.seq of the last summarized message
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, session_id)
);
CREATE INDEX conversation_summaries_user_updated_idx ON conversation_summaries (user_id, updated_at DESC);

CREATE TABLE entities (
    user_id       text COLLATE "C" NOT NULL,
    entity_system text COLLATE "C" NOT NULL,
    key           text COLLATE "C" NOT NULL,      -- normalized name (casefolded, spaces collapsed)
    name          json        NOT NULL,          -- display name, a JSON string
    type          text,
    summary       json        NOT NULL,          -- a JSON string
    aliases       json        NOT NULL DEFAULT '[]',
    metadata      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, entity_system, key)
);

-- Names that resolve to an entity (kind 'entity', space = entity_system) or to a graph
-- node (kind 'node', space = graph): every normalized name and alias, one row each.
CREATE TABLE entity_aliases (
    user_id    text COLLATE "C" NOT NULL,
    kind       text COLLATE "C" NOT NULL CHECK (kind IN ('entity', 'node')),
    space      text COLLATE "C" NOT NULL,
    alias      text COLLATE "C" NOT NULL,        -- normalized alias
    key        text COLLATE "C" NOT NULL,        -- the entity / node key it resolves to
    PRIMARY KEY (user_id, kind, space, alias)
);
CREATE INDEX entity_aliases_key_idx ON entity_aliases (user_id, kind, space, key);

CREATE TABLE graph_nodes (
    user_id    text COLLATE "C" NOT NULL,
    graph      text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,        -- normalized name
    name       json        NOT NULL,             -- display name, a JSON string
    type       text,
    properties json        NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, graph, key)
);

CREATE TABLE graph_edges (
    user_id        text COLLATE "C" NOT NULL,
    graph          text COLLATE "C" NOT NULL,
    id             text COLLATE "C" NOT NULL,
    source         text COLLATE "C" NOT NULL,    -- graph_nodes.key
    relation       text COLLATE "C" NOT NULL,    -- normalized: lower case, words joined by _
    target         text COLLATE "C" NOT NULL,    -- graph_nodes.key
    weight         double precision NOT NULL DEFAULT 1.0,
    properties     json        NOT NULL DEFAULT '{}',
    valid_from     timestamptz NOT NULL,
    valid_to       timestamptz,                  -- NULL: still true
    source_session text,                         -- the event the fact came from
    source_seq     bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, graph, id)
);
CREATE INDEX graph_edges_source_idx ON graph_edges (user_id, graph, source, relation);
CREATE INDEX graph_edges_target_idx ON graph_edges (user_id, graph, target);
