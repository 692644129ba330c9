-- DocumentStore and ByteStore share `documents`, and both default to namespace 'default':
-- the kind joins the primary key, so one namespace and key hold a document and bytes apart
-- instead of the one overwriting the other. Keys are stored as before; existing rows keep
-- their place (a key had one kind before, so no two rows collide).
-- `document` becomes text holding exact JSON (as `events.payload` does): the json type
-- rejects the escape of a lone surrogate, which a Python string may hold.
ALTER TABLE documents DROP CONSTRAINT documents_pkey;
ALTER TABLE documents ADD PRIMARY KEY (user_id, namespace, kind, key);
ALTER TABLE documents ALTER COLUMN document TYPE text;
