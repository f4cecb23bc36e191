-- Counts, the summary and the category views read the events' indexes
-- alone (index-only scans), which skip the table only for pages the
-- visibility map marks all-visible, and only VACUUM marks them. Events are
-- only ever inserted, so autovacuum comes by when inserts since its last
-- visit pass autovacuum_vacuum_insert_threshold (1,000) plus
-- autovacuum_vacuum_insert_scale_factor (0.2) of the table: the newest
-- fifth of a large table, the part read most, is read row by row from the
-- table, and a day partition's last fifth stays so for good once its day
-- is over. Measured (bench/README.md): a useraccess page 1 over 17,533
-- events counted them in 15 ms before a VACUUM and 3 ms after. A visit
-- every 20,000 inserts instead, whatever the size: each visit reads only
-- the pages not marked yet, so the work is the same, spread out. A
-- partitioned table takes no storage parameters: each partition gets
-- them, and so does each day partition made later (partitions.go). Taking
-- SHARE UPDATE EXCLUSIVE, this waits for a running VACUUM, never for
-- ingest or reads.
DO $$
DECLARE
    p regclass;
BEGIN
    -- Plain tables only: a partition attached by hand that is itself
    -- partitioned, or a foreign table, takes no storage parameters.
    FOR p IN SELECT i.inhrelid::regclass FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'events'::regclass AND c.relkind = 'r' LOOP
        EXECUTE format('ALTER TABLE %s SET (autovacuum_vacuum_insert_threshold = 20000, autovacuum_vacuum_insert_scale_factor = 0)', p);
    END LOOP;
END
$$;
