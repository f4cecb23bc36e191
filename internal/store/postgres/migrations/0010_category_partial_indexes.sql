-- Only the network CSV views read one category alone (userAccess: access,
-- users: user), and most events are of category data: events_namespace_
-- category (namespace, category, ts, seq) held every event and was one more
-- B-tree every insert wrote. It gives way to a partial index per category a
-- view reads, without the category column; an event of category data
-- enters neither (bench/README.md). On the partitioned table, each is made
-- on every partition, and on the ones made later.
DROP INDEX events_namespace_category;
CREATE INDEX events_category_access ON events (namespace, ts, seq) WHERE category = 'access';
CREATE INDEX events_category_user ON events (namespace, ts, seq) WHERE category = 'user';
