-- Recall index over the chat history (issue 17): what langchain_agentmem/recall.py searches.
-- Derived from `events` by MemoryRetriever.index() (which embeds the events' text), deleted
-- with them. Keys (user_id, session_id) are the events' own (encoded by _encoding/keys.py).

-- One row per indexed event: its speaker (normalized name), its length in terms (BM25) and
-- its embedding (NULL: an event with no text to embed). created_at is the event's.
CREATE TABLE recall_events (
    user_id    text        NOT NULL,
    session_id text        NOT NULL,
    seq        bigint      NOT NULL,
    speaker    text,
    length     real        NOT NULL DEFAULT 0,
    embedding  public.vector,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, session_id, seq),
    FOREIGN KEY (user_id, session_id, seq) REFERENCES events (user_id, session_id, seq) ON DELETE CASCADE
);
CREATE INDEX recall_events_speaker_idx ON recall_events (user_id, speaker) WHERE speaker IS NOT NULL;

-- The inverted index: one row per (term, event), the term's frequency in the event. BM25 is
-- scored by the package over the postings of the query's terms, with the tenant's own
-- statistics (langchain_agentmem/_search/lexical.py).
CREATE TABLE recall_terms (
    user_id    text             NOT NULL,
    term       text COLLATE "C" NOT NULL,
    session_id text             NOT NULL,
    seq        bigint           NOT NULL,
    tf         real             NOT NULL,
    PRIMARY KEY (user_id, term, session_id, seq),
    FOREIGN KEY (user_id, session_id, seq) REFERENCES recall_events (user_id, session_id, seq) ON DELETE CASCADE
);
CREATE INDEX recall_terms_event_idx ON recall_terms (user_id, session_id, seq);
