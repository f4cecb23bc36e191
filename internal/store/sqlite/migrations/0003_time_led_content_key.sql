-- The unique key that makes re-sends no-ops leads with time: (namespace, ts,
-- content_hash). content_hash covers the time and the id, so it decides
-- exactly what the (namespace, id_hash, content_hash) key of 0002 decided;
-- but a key that starts with a random hash puts nearly every insert on a
-- page of its own, which each commit writes to the WAL whole, while events
-- arrive roughly in time order, so this key's inserts append at the right
-- edge of each namespace's range. Finding an id's events (the reuse probe,
-- the README's query) keeps an index of its own, half the width of 0002's.
DROP INDEX events_namespace_id;
CREATE UNIQUE INDEX events_content_key ON events (namespace, ts, content_hash);
CREATE INDEX events_namespace_id ON events (namespace, id_hash);
