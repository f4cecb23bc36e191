-- A middle tier of ids (migration 12) between ids_recent and ids: a merge
-- wrote each page of ids it reached, which past ~100k events is nearly
-- every page, so a merge's cost per event grew with the store (~1.6 KB of
-- WAL an event at a million events, ~4.3 KB at four million:
-- BenchmarkIDMerge). From 2^21 events on (Store's tiersFrom; below it the
-- third tier costs more than it saves), each merge moves one of ids_mid's
-- 16 slices into ids, a sixteenth of ids' pages, then ids_recent into
-- ids_mid (~16 merges' entries, at most ~1,200 pages). An entry's slice is
-- its id hash's high 4 bits, a range of ids' key in each namespace, and
-- leads the key, so that a merge reads and deletes its slice alone;
-- changing the number of slices takes a migration (the probe seeks by
-- slice). The table starts empty: nothing moves.
CREATE TABLE ids_mid (
    slice INTEGER NOT NULL CHECK (slice = (id_hash >> 60) & 15),
    namespace TEXT NOT NULL,
    id_hash INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (slice, namespace, id_hash, ts, seq)
) WITHOUT ROWID, STRICT;

DROP TRIGGER events_ids_delete;
CREATE TRIGGER events_ids_delete AFTER DELETE ON events BEGIN
    DELETE FROM ids_recent WHERE namespace = old.namespace AND id_hash = old.id_hash AND ts = old.ts AND seq = old.seq;
    DELETE FROM ids_mid WHERE slice = (old.id_hash >> 60) & 15 AND namespace = old.namespace AND id_hash = old.id_hash AND ts = old.ts AND seq = old.seq;
    DELETE FROM ids WHERE namespace = old.namespace AND id_hash = old.id_hash AND ts = old.ts AND seq = old.seq;
END;
