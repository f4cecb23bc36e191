-- Whether any row keeps a field in a legacy column: the JSON values stored
-- before migration 6 (principal_v1 .. current_state_v1) or the text fields
-- stored before migration 8 (entity_kind_v1 .. error_v1). Rows stored since
-- leave them empty, and a manager older than migration 8 cannot write
-- events at all (the renames), so once no row holds one none ever will:
-- reads then leave these 13 columns out of their select lists, where each
-- was sent and scanned for every row read (sqlstore.Reader.LegacyFlag).
-- Stores upgraded with such rows keep reading them. Every read takes the
-- flag in its own snapshot, so the API, reports and verify read the same
-- rows the same way whenever each opened the store. An intruder who sets
-- it makes reads slower and a value planted in those columns of a row whose
-- payload lacks that field read by all, verify included, which names the
-- row altered; one who clears it while such rows exist makes them read
-- without those fields, which verify names altered too.
CREATE TABLE legacy_columns (
    id integer PRIMARY KEY CHECK (id = 1),
    in_use boolean NOT NULL
);

INSERT INTO legacy_columns (id, in_use)
SELECT 1, EXISTS (SELECT 1 FROM events WHERE
    principal_v1 IS NOT NULL OR request_v1 IS NOT NULL OR response_v1 IS NOT NULL
    OR previous_state_v1 IS NOT NULL OR current_state_v1 IS NOT NULL
    OR entity_kind_v1 <> '' OR entity_id_v1 <> '' OR certificate_serial_number_v1 <> ''
    OR issuer_dn_v1 <> '' OR details_v1 <> '' OR archived_v1 OR message_v1 <> ''
    OR error_v1 IS NOT NULL);
