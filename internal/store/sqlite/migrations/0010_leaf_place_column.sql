-- A leaf's place in its log is column `place`, as on PostgreSQL (migration
-- 9 there renames it where its ingest began placing leaves, so that a
-- manager of the version before, still running beside an upgraded one,
-- fails on every read of the logs instead of reading placed leaves as
-- sealed). Indexes follow the rename.
ALTER TABLE leaves RENAME COLUMN idx TO place;
