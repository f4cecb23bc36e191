-- Events are partitioned by time: RANGE on ts, one partition per UTC day
-- (events_pYYYYMMDD), made ahead by the leader (Store.Maintain), so that
-- retention drops whole days instead of deleting rows, and a query of a
-- window reads only its days' partitions. Times no day partition holds
-- (far past or future: any time in the model's range is accepted) go to
-- events_default, which stays small; a day partition made later takes its
-- rows over.
--
-- The table as it is, unless empty, becomes one partition, events_legacy,
-- of every time before the day after this migration: attached, not
-- copied, so no row is rewritten and its indexes become the partition's
-- (ATTACH reads it once to check the range). Its rows expire by DELETE
-- until the whole partition is past retention, then it is dropped like a
-- day.
--
-- PostgreSQL 15 keeps the identity on the partitioned table; its sequence
-- continues where the old one stopped, so seq stays monotonic.
LOCK TABLE events IN ACCESS EXCLUSIVE MODE;
CREATE TEMP TABLE events_seq_state ON COMMIT DROP AS SELECT last_value, is_called FROM events_seq_seq;
ALTER TABLE events ALTER COLUMN seq DROP IDENTITY;
ALTER TABLE events RENAME TO events_legacy;
ALTER TABLE events_legacy RENAME CONSTRAINT events_pkey TO events_legacy_pkey;
ALTER TABLE events_legacy RENAME CONSTRAINT events_content_key TO events_legacy_content_key;
ALTER INDEX events_namespace_category RENAME TO events_legacy_namespace_category;
ALTER INDEX events_namespace_user RENAME TO events_legacy_namespace_user;
ALTER INDEX events_namespace_id RENAME TO events_legacy_namespace_id;

-- The same columns, in the same order, with the same constraint names (a
-- partition must carry its parent's CHECK constraints by name).
CREATE TABLE events (
    namespace text COLLATE "C" NOT NULL CONSTRAINT events_namespace_check CHECK (namespace <> ''),
    ts bigint NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    id text COLLATE "C" NOT NULL CONSTRAINT events_id_check CHECK (id <> ''),
    user_name text COLLATE "C" NOT NULL CONSTRAINT events_user_name_check CHECK (user_name <> ''),
    api text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL CONSTRAINT events_status_check CHECK (status IN ('success', 'failure')),
    category text COLLATE "C" NOT NULL CONSTRAINT events_category_check CHECK (category IN ('access', 'user', 'data')),
    method text COLLATE "C" NOT NULL,
    status_code bigint NOT NULL,
    entity_kind text COLLATE "C" NOT NULL,
    entity_id text COLLATE "C" NOT NULL,
    device_id text COLLATE "C" NOT NULL,
    certificate_serial_number text COLLATE "C" NOT NULL,
    issuer_dn text COLLATE "C" NOT NULL,
    details text COLLATE "C" NOT NULL,
    archived boolean NOT NULL,
    message text COLLATE "C" NOT NULL,
    error text COLLATE "C",
    principal bytea,
    request bytea,
    response bytea,
    previous_state bytea,
    current_state bytea,
    id_hash bigint NOT NULL,
    content_hash bytea NOT NULL CONSTRAINT events_content_hash_len CHECK (length(content_hash) = 32),
    CONSTRAINT events_pkey PRIMARY KEY (namespace, ts, seq) INCLUDE (user_name, api, status),
    CONSTRAINT events_content_key UNIQUE (namespace, ts, content_hash)
) PARTITION BY RANGE (ts);
CREATE INDEX events_namespace_category ON events (namespace, category, ts, seq);
CREATE INDEX events_namespace_user ON events (namespace, user_name, ts, seq) INCLUDE (category);
CREATE INDEX events_namespace_id ON events (namespace, id_hash);
SELECT setval('events_seq_seq', last_value, is_called) FROM events_seq_state;
CREATE TABLE events_default PARTITION OF events DEFAULT;

DO $$
DECLARE
    cutover bigint := extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day')::bigint * 1000000000;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM events_legacy) THEN
        DROP TABLE events_legacy;
        RETURN;
    END IF;
    -- Stored events dated after the cutover (a sender's clock far ahead)
    -- are no part of the legacy range: they move to the default partition.
    WITH moved AS (DELETE FROM events_legacy WHERE ts >= cutover RETURNING *)
    INSERT INTO events_default SELECT * FROM moved;
    EXECUTE format('ALTER TABLE events ATTACH PARTITION events_legacy FOR VALUES FROM (MINVALUE) TO (%s)', cutover);
END
$$;
