-- An event's JSON values (principal, request, response, previous and
-- current state) are stored together in one compressed column
-- (internal/store/payload): they are most of an event's bytes. New rows
-- leave the five columns that held them NULL; rows stored before keep
-- them and are read from them, so the migration rewrites nothing (adding
-- a column without a default only changes the catalog).
ALTER TABLE events ADD COLUMN payload bytea;

-- The dictionaries payloads are compressed against (a payload names its
-- own). Never deleted: a row made with one needs it as long as it lives.
CREATE TABLE payload_dicts (
    id bigint PRIMARY KEY CHECK (id > 0),
    -- When it was stored (Unix ns): the newest is the one a store starts with.
    created bigint NOT NULL,
    dict bytea NOT NULL
);
