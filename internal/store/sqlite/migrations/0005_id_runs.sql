-- Finding an id's events (the reuse probe of every insert group) moves from
-- an index on events to two tables of (namespace, id_hash, ts, seq): ids,
-- large, and ids_recent, small. Ids are random, so every insert into one
-- index on them lands on a random page, and each commit writes every page
-- it touched to the WAL whole: at 300k events the index put a group commit
-- on ~1,000 pages, 16 KiB each, for ~800 events (bench/README.md). Inserts
-- now go to ids_recent, whose few pages each commit rewrites; the store
-- moves ids_recent into ids in key order every few ten thousand events,
-- rewriting each page of ids once per move instead of once per commit. The
-- probe looks in both. Like the index they replace, they hold the keys of
-- stored events only: retention deletes an event's entry with the event.
CREATE TABLE ids (
    namespace TEXT NOT NULL,
    id_hash INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (namespace, id_hash, ts, seq)
) WITHOUT ROWID, STRICT;

CREATE TABLE ids_recent (
    namespace TEXT NOT NULL,
    id_hash INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (namespace, id_hash, ts, seq)
) WITHOUT ROWID, STRICT;

INSERT INTO ids (namespace, id_hash, ts, seq)
SELECT namespace, id_hash, ts, seq FROM events ORDER BY namespace, id_hash, ts, seq;

DROP INDEX events_namespace_id;
