-- The namespace-users summary reads the events table itself, clustered by
-- (namespace, ts, seq), instead of a covering index of its own: that index
-- held (namespace, ts, user_name, api, status, seq) again for every event,
-- ~88 of a store's ~880 bytes an event, and was one more B-tree every
-- insert wrote. Measured (bench/README.md): the store 10% smaller, ingest
-- faster, the summary report ~15% slower and still well under its SQL
-- floor. PostgreSQL keeps those columns in its primary key (INCLUDE), which
-- every insert writes anyway.
DROP INDEX events_namespace_summary;
