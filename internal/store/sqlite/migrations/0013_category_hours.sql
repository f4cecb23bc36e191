-- The number of events of category access and of category user per
-- namespace and hour (UTC, from the Unix epoch), so that the total of a
-- network CSV view (totalRecords: userAccess reads access, users reads
-- user) counts only the partial hours at the ends of its range in the
-- index and adds the whole hours from here: counting a month of one
-- tenant's access events in the index took most of a first page's time
-- (bench/README.md). Only the store's writes keep it: ingest adds each
-- group's counts in one statement, a trigger takes a deleted event off
-- (retention, or anyone); an event written with SQL of your own is not
-- counted. Events before 1970 are never counted here: their ranges are
-- counted in the index.
CREATE TABLE category_hours (
    namespace TEXT NOT NULL,
    category TEXT NOT NULL,
    hour INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (namespace, category, hour)
) WITHOUT ROWID, STRICT;

-- Each category read from its partial index, in (namespace, ts) order:
-- no table rows, no sort.
INSERT INTO category_hours (namespace, category, hour, n)
SELECT namespace, 'access', ts / 3600000000000, count(*) FROM events INDEXED BY events_category_access
WHERE category = 'access' AND ts >= 0 GROUP BY namespace, ts / 3600000000000;
INSERT INTO category_hours (namespace, category, hour, n)
SELECT namespace, 'user', ts / 3600000000000, count(*) FROM events INDEXED BY events_category_user
WHERE category = 'user' AND ts >= 0 GROUP BY namespace, ts / 3600000000000;

CREATE TRIGGER events_category_hours_delete AFTER DELETE ON events
WHEN old.category IN ('access', 'user') AND old.ts >= 0 BEGIN
    UPDATE category_hours SET n = n - 1
    WHERE namespace = old.namespace AND category = old.category AND hour = old.ts / 3600000000000;
    -- An hour retention emptied goes, so that the table, and a total's
    -- sum over it, holds only hours with events.
    DELETE FROM category_hours
    WHERE namespace = old.namespace AND category = old.category AND hour = old.ts / 3600000000000 AND n <= 0;
END;
