-- Finding an id's events (the reuse probe; spec/API.md section 1) moves
-- from the index events_namespace_id (namespace, id_hash) to two tables of
-- the same key, a small one that takes every new event and a large one the
-- writer moves it into in one sorted pass every 32,768 events
-- (Store.mergeRecentIDs). The index led with a random hash, so nearly every
-- event of a group commit dirtied a page of its own, which the commit wrote
-- to the WAL whole (16 KiB): half of what webhook ingest wrote at a million
-- events, and the reason it ran at 0.6x its insert floor (bench/README.md).
-- ids_recent stays small enough that a group's random inserts share its few
-- pages, and a merge writes each page of ids once.
--
-- The writer inserts a group's entries in one statement (a trigger per
-- event made every insert keep a statement journal: 15% of the writer's
-- time). A trigger deletes an event's entry with it, whoever deletes it;
-- the probe also checks each match's id in events, so a stale or planted
-- entry never counts. A manager of the
-- version before, still running beside an upgraded one, fails on its next
-- insert (its probe names the dropped index) instead of storing events the
-- probe here cannot find.
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

-- In key order: the copy appends (the index is in that order).
INSERT INTO ids (namespace, id_hash, ts, seq)
SELECT namespace, id_hash, ts, seq FROM events INDEXED BY events_namespace_id ORDER BY namespace, id_hash, ts, seq;

DROP INDEX events_namespace_id;

CREATE TRIGGER events_ids_delete AFTER DELETE ON events BEGIN
    DELETE FROM ids_recent WHERE namespace = old.namespace AND id_hash = old.id_hash AND ts = old.ts AND seq = old.seq;
    DELETE FROM ids WHERE namespace = old.namespace AND id_hash = old.id_hash AND ts = old.ts AND seq = old.seq;
END;
