-- Audit events (spec/API.md section 1). Times are Unix nanoseconds.
-- The table is clustered by (namespace, ts, seq): one tenant's events in
-- time order are one contiguous range of the B-tree. Small columns come
-- first so reads that need only them stay out of overflow pages.
CREATE TABLE events (
    namespace TEXT NOT NULL CHECK (namespace <> ''),
    ts INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL CHECK (id <> ''),
    user_name TEXT NOT NULL CHECK (user_name <> ''),
    api TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('success', 'failure')),
    category TEXT NOT NULL CHECK (category IN ('access', 'user', 'data')),
    method TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    entity_kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    certificate_serial_number TEXT NOT NULL,
    issuer_dn TEXT NOT NULL,
    details TEXT NOT NULL,
    archived INTEGER NOT NULL CHECK (archived IN (0, 1)),
    message TEXT NOT NULL,
    error TEXT,
    principal BLOB,
    request BLOB,
    response BLOB,
    previous_state BLOB,
    current_state BLOB,
    PRIMARY KEY (namespace, ts, seq)
) WITHOUT ROWID, STRICT;

-- Idempotent inserts: one event per (namespace, id).
CREATE UNIQUE INDEX events_namespace_id ON events (namespace, id);
-- Network CSV views (userAccess, users): one category in time order.
CREATE INDEX events_namespace_category ON events (namespace, category, ts, seq);
-- One user's events in time order: user logs, UserExists, user filters.
CREATE INDEX events_namespace_user ON events (namespace, user_name, ts, seq, category);
-- Namespace-users summary: covers its aggregation of one date.
CREATE INDEX events_namespace_summary ON events (namespace, ts, user_name, api, status);

-- The next seq to assign; only the (single) writer reads and bumps it.
CREATE TABLE seq_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next INTEGER NOT NULL
) STRICT;
INSERT INTO seq_counter (id, next) VALUES (1, 1);
