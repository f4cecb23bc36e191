-- Ingest gives each leaf its place in the log (idx) as it writes it: SQLite
-- has one writer, so the next place of a namespace's log is known there, and
-- the sealer no longer rewrites every leaf to set it (one UPDATE per leaf,
-- with its index moves, was ~12% of the single writer's time under full
-- ingest: bench/README.md). A leaf is sealed when a signed checkpoint covers
-- its place (idx < the log's newest checkpoint size), no longer when its idx
-- is set. Leaves that ingest wrote before this version and no checkpoint
-- covers yet take their places now, after every leaf placed already, in seq
-- order (ingest's order).
UPDATE leaves SET idx = p.idx
FROM (
    SELECT l.namespace, l.ts, l.seq,
        max(
            coalesce((SELECT max(c.size) FROM checkpoints AS c WHERE c.namespace = l.namespace), 0),
            coalesce((SELECT max(k.idx) + 1 FROM leaves AS k WHERE k.namespace = l.namespace AND k.idx IS NOT NULL), 0)
        ) + row_number() OVER (PARTITION BY l.namespace ORDER BY l.seq) - 1 AS idx
    FROM leaves AS l
    WHERE l.idx IS NULL
) AS p
WHERE leaves.namespace = p.namespace AND leaves.ts = p.ts AND leaves.seq = p.seq;

-- leaves_unsealed (namespace, seq) WHERE idx IS NULL stays: ingest no
-- longer writes such a leaf, so it costs ingest nothing, and it holds the
-- leaves the sealer refused (their MAC is no key's of its ring, so they
-- gave their places up) or rows written with SQL. The sealer reads them
-- again each run, after the placed ones: a leaf whose key is added to the
-- ring later (a rotation the running leader has not loaded yet) still
-- seals.
