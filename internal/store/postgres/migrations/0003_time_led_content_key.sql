-- The unique key that makes re-sends no-ops leads with time: (namespace, ts,
-- content_hash). content_hash covers the time and the id, so it decides
-- exactly what the (namespace, id_hash, content_hash) key of 0002 decided;
-- but events arrive roughly in time order, so this key's inserts land on
-- the right edge of each namespace's range instead of a random leaf page.
-- Finding an id's events (the reuse probe, the README's query) keeps an
-- index of its own, without the 32-byte content hash.
ALTER TABLE events
    DROP CONSTRAINT events_namespace_id,
    ADD CONSTRAINT events_content_key UNIQUE (namespace, ts, content_hash);
CREATE INDEX events_namespace_id ON events (namespace, id_hash);
