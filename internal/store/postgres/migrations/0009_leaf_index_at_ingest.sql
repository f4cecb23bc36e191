-- Ingest gives each leaf its place in the log (idx) as it writes it, as
-- SQLite's does since its migration 7. Ingest already serializes its
-- commits under one advisory lock (the reuse probe's, writersLock), so it
-- places the leaves there, in commit order, and the sealer no longer
-- rewrites every leaf: that UPDATE made a second version of each leaf with
-- new entries in both its indexes, which autovacuum then cleared, and cost
-- the webhook ingest beside it 8-15% (bench/README.md). A leaf is sealed
-- when a signed checkpoint covers its place (idx < the log's newest
-- checkpoint size), no longer when its idx is set. Leaves written before
-- this version that no checkpoint covers yet take their places now, after
-- every leaf placed already, in seq order (the sealer's order until now).
UPDATE leaves SET idx = p.idx
FROM (
    SELECT l.namespace, l.ts, l.seq,
        greatest(
            coalesce((SELECT max(c.size) FROM checkpoints AS c WHERE c.namespace = l.namespace), 0),
            coalesce((SELECT max(k.idx) + 1 FROM leaves AS k WHERE k.namespace = l.namespace AND k.idx IS NOT NULL), 0)
        ) + row_number() OVER (PARTITION BY l.namespace ORDER BY l.seq) - 1 AS idx
    FROM leaves AS l
    WHERE l.idx IS NULL
) AS p
-- idx IS NULL again: a sealer of the version before, still running, may
-- have placed the leaf since this statement's snapshot; PostgreSQL re-checks
-- this WHERE on the newest version of a row it waited for.
WHERE leaves.namespace = p.namespace AND leaves.ts = p.ts AND leaves.seq = p.seq AND leaves.idx IS NULL;

-- leaves_unsealed (namespace, seq) WHERE idx IS NULL stays, for the leaves
-- the sealer refused (their MAC is no key's of its ring, so they gave their
-- places up), rows written with SQL, and leaves a manager of the version
-- before writes while it still runs beside this one. The sealer reads them
-- again at the start of each run, and those whose MAC checks take the next
-- places then.

-- The column is `place` from now on. The rename is deliberate, as those of
-- migrations 6 and 8: during a rolling update a manager of the version
-- before, still running, would take a placed leaf without a checkpoint for
-- sealed in its reads and, as leader, pin reports to checkpoints that leave
-- out what upgraded replicas ingested. With the rename its sealer, its
-- pinned reads and its log endpoints fail (reports retry, the API answers
-- 500) until the rollout ends; its ingest, which writes no place, goes on,
-- and an upgraded leader places and seals those leaves.
ALTER TABLE leaves RENAME COLUMN idx TO place;
