-- The number of events of category access and of category user per
-- namespace and hour (UTC, from the Unix epoch), so that the total of a
-- network CSV view (totalRecords: userAccess reads access, users reads
-- user) counts only the partial hours at the ends of its range in the
-- index and adds the whole hours from here: counting a month of one
-- tenant's access events took ~9 ms of a first page's ~11 (bench/README.md).
-- SQLite's migration 13 is the same table.
--
-- Statement triggers on events keep it, with the rows each INSERT, COPY or
-- DELETE changed (transition tables), whoever runs it: a replica of the
-- version before, still ingesting during a rolling update, is counted too.
-- Each takes its hours' rows in key order, so two ingest transactions that
-- share hours wait for each other instead of deadlocking. Retention that
-- drops a whole partition fires no trigger: it deletes the partition's
-- hours itself (Store.dropPartition), and each retention run deletes the
-- hours before its cut that no event holds (what a replica of the version
-- before leaves when it drops one). Events before 1970 are never counted
-- here: their ranges are counted in the index.
--
-- namespace and category in events' collation ("C"), so that the two
-- triggers' ORDER BY sort alike: one lock order.
CREATE TABLE category_hours (
    namespace text COLLATE "C" NOT NULL,
    category text COLLATE "C" NOT NULL,
    hour bigint NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (namespace, category, hour)
);

CREATE FUNCTION auditops_count_hours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO category_hours AS h (namespace, category, hour, n)
    SELECT namespace, category, ts / 3600000000000, count(*) FROM new_rows
    WHERE category IN ('access', 'user') AND ts >= 0
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (namespace, category, hour) DO UPDATE SET n = h.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION auditops_uncount_hours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The rows in key order first (FOR UPDATE locks as it returns them,
    -- after the sort), as ingest's upserts take them.
    PERFORM 1 FROM category_hours AS h
    JOIN (SELECT DISTINCT namespace, category, ts / 3600000000000 AS hour FROM old_rows
          WHERE category IN ('access', 'user') AND ts >= 0) AS g USING (namespace, category, hour)
    ORDER BY h.namespace, h.category, h.hour FOR UPDATE OF h;
    UPDATE category_hours AS h SET n = h.n - g.n
    FROM (SELECT namespace, category, ts / 3600000000000 AS hour, count(*) AS n FROM old_rows
          WHERE category IN ('access', 'user') AND ts >= 0 GROUP BY 1, 2, 3) AS g
    WHERE h.namespace = g.namespace AND h.category = g.category AND h.hour = g.hour;
    -- An hour retention emptied goes.
    DELETE FROM category_hours AS h
    USING (SELECT DISTINCT namespace, category, ts / 3600000000000 AS hour FROM old_rows
           WHERE category IN ('access', 'user') AND ts >= 0) AS g
    WHERE h.namespace = g.namespace AND h.category = g.category AND h.hour = g.hour AND h.n <= 0;
    RETURN NULL;
END $$;

-- The triggers first: creating them waits for the inserts under way and
-- holds new ones until this migration commits, so the count below sees
-- every event stored before the triggers count the next.
CREATE TRIGGER events_count_hours AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION auditops_count_hours();
CREATE TRIGGER events_uncount_hours AFTER DELETE ON events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION auditops_uncount_hours();

-- One category at a time, each with the literal its partial index
-- (migration 10) is made for, so each can be read from that index alone.
INSERT INTO category_hours (namespace, category, hour, n)
SELECT namespace, 'access', ts / 3600000000000, count(*) FROM events
WHERE category = 'access' AND ts >= 0 GROUP BY 1, 3;
INSERT INTO category_hours (namespace, category, hour, n)
SELECT namespace, 'user', ts / 3600000000000, count(*) FROM events
WHERE category = 'user' AND ts >= 0 GROUP BY 1, 3;
