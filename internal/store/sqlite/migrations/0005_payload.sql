-- An event's JSON values (principal, request, response, previous and
-- current state) are stored together in one compressed column
-- (internal/store/payload): they are most of an event's bytes. The
-- migration rewrites nothing: rows stored before it keep their values in
-- the five columns that held them, renamed with a _v1 suffix, and are read
-- from there; new rows leave them NULL. The rename is so that a manager of
-- the version before, still running beside an upgraded one (a rolling
-- update), fails loudly on every read and write of events, and a sender
-- retries on another replica, instead of serving new events without their
-- values and writing reports from them.
ALTER TABLE events RENAME COLUMN principal TO principal_v1;
ALTER TABLE events RENAME COLUMN request TO request_v1;
ALTER TABLE events RENAME COLUMN response TO response_v1;
ALTER TABLE events RENAME COLUMN previous_state TO previous_state_v1;
ALTER TABLE events RENAME COLUMN current_state TO current_state_v1;
ALTER TABLE events ADD COLUMN payload BLOB;

-- The dictionaries payloads are compressed against (a payload names its
-- own). Never deleted: a row made with one needs it as long as it lives.
CREATE TABLE payload_dicts (
    id INTEGER PRIMARY KEY CHECK (id > 0),
    -- When it was stored (Unix ns): the newest is the one a store starts with.
    created INTEGER NOT NULL,
    dict BLOB NOT NULL
) STRICT;
