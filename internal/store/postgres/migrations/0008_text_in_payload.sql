-- An event's text fields that no query filters on (entity kind and id,
-- certificate serial number, issuer DN, details, archived, message, error)
-- go into its payload (internal/store/payload, flagText) beside its JSON
-- values, whose words they mostly repeat: there they compress to a few
-- bytes, where their columns took ~220 bytes an event (bench/README.md).
-- device_id stays a column: user logs filter on it. As in the payload
-- migration, nothing is rewritten: rows stored before keep these fields in
-- their columns, renamed with a _v1 suffix, and are read from there (their
-- payloads have no text fields); new rows leave the columns empty. The
-- renames make a manager of the version before, still running beside an
-- upgraded one, fail on every read and write of events instead of reading
-- new events without these fields.
ALTER TABLE events RENAME COLUMN entity_kind TO entity_kind_v1;
ALTER TABLE events RENAME COLUMN entity_id TO entity_id_v1;
ALTER TABLE events RENAME COLUMN certificate_serial_number TO certificate_serial_number_v1;
ALTER TABLE events RENAME COLUMN issuer_dn TO issuer_dn_v1;
ALTER TABLE events RENAME COLUMN details TO details_v1;
ALTER TABLE events RENAME COLUMN archived TO archived_v1;
ALTER TABLE events RENAME COLUMN message TO message_v1;
ALTER TABLE events RENAME COLUMN error TO error_v1;
