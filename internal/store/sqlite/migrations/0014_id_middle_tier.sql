-- A middle tier of ids (migration 12) between ids_recent and ids: a merge
-- wrote each page of ids it reached, which past ~100k events is nearly
-- every page, so a merge's cost per event grew with the store (~1.6 KB of
-- WAL an event at a million events, ~4.3 KB at four million:
-- BenchmarkIDMerge). Now each merge moves ids_recent into ids_mid (at most
-- ~512k entries, ~1,200 pages), and one sixteenth of ids_mid, a range of
-- id hashes, into ids: a sixteenth of ids' pages (Store.mergeRecentIDs).
CREATE TABLE ids_mid (
    namespace TEXT NOT NULL,
    id_hash INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (namespace, id_hash, ts, seq)
) WITHOUT ROWID, STRICT;

DROP TRIGGER events_ids_delete;
CREATE TRIGGER events_ids_delete AFTER DELETE ON events BEGIN
    DELETE FROM ids_recent WHERE namespace = old.namespace AND id_hash = old.id_hash AND ts = old.ts AND seq = old.seq;
    DELETE FROM ids_mid WHERE namespace = old.namespace AND id_hash = old.id_hash AND ts = old.ts AND seq = old.seq;
    DELETE FROM ids WHERE namespace = old.namespace AND id_hash = old.id_hash AND ts = old.ts AND seq = old.seq;
END;
