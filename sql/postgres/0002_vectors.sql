-- Vector memory (issue 3): collections and their vectors.
--
-- vector_collections is the catalogue every tenant shares: a collection fixes the embedding
-- size and the distance, and owns one HNSW index over its rows of `vectors`, a partial
-- expression index created by the package when the collection is registered:
--   CREATE INDEX vectors_c<id>_hnsw ON vectors USING hnsw ((embedding::vector(<dims>)) <ops>)
--   WITH (m = .., ef_construction = ..) WHERE collection_id = <id>
-- (halfvec(<dims>) above 2,000 dimensions). Collections of different sizes therefore live
-- side by side in one `vectors` table whose embedding column has no fixed size.
--
-- vectors rows belong to one tenant (user_id first in the key). `content` and `metadata`
-- are search columns (NUL and lone surrogates replaced); when that changed anything the
-- exact document is kept as JSON text in `exact`.

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

CREATE TABLE vector_collections (
    collection_id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text        NOT NULL UNIQUE,
    dims            integer     NOT NULL CHECK (dims > 0 AND dims <= 16000),
    distance        text        NOT NULL CHECK (distance IN ('cosine', 'l2', 'inner_product')),
    model           text,
    m               integer     NOT NULL DEFAULT 16,
    ef_construction integer     NOT NULL DEFAULT 64,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vectors (
    user_id       text        NOT NULL,
    collection_id integer     NOT NULL REFERENCES vector_collections (collection_id) ON DELETE CASCADE,
    id            text        NOT NULL,
    content       text        NOT NULL DEFAULT '',
    metadata      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    exact         json,
    embedding     public.vector NOT NULL,
    tsv           tsvector    GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, content)) STORED,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, collection_id, id)
);
CREATE INDEX vectors_tsv_idx ON vectors USING gin (tsv);
-- Equality filters ({"field": value}) also compile to metadata @> '{"field": value}', which
-- this index serves, so a selective filter is answered from few rows.
CREATE INDEX vectors_metadata_idx ON vectors USING gin (metadata jsonb_path_ops);
