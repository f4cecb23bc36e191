-- Audit events (spec/API.md section 1). Times are Unix nanoseconds (bigint:
-- timestamptz keeps only microseconds). Every string that is compared or
-- sorted uses the "C" collation: byte order, as in SQLite.
CREATE TABLE events (
    namespace text COLLATE "C" NOT NULL CHECK (namespace <> ''),
    ts bigint NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    id text COLLATE "C" NOT NULL CHECK (id <> ''),
    user_name text COLLATE "C" NOT NULL CHECK (user_name <> ''),
    api text COLLATE "C" NOT NULL,
    status text COLLATE "C" NOT NULL CHECK (status IN ('success', 'failure')),
    category text COLLATE "C" NOT NULL CHECK (category IN ('access', 'user', 'data')),
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
    -- One tenant's events in time order; the included columns let the
    -- summary aggregate a date from the index alone.
    CONSTRAINT events_pkey PRIMARY KEY (namespace, ts, seq) INCLUDE (user_name, api, status),
    -- Idempotent inserts: one event per (namespace, id).
    CONSTRAINT events_namespace_id UNIQUE (namespace, id)
);

-- Network CSV views (userAccess, users): one category in time order.
CREATE INDEX events_namespace_category ON events (namespace, category, ts, seq);
-- One user's events in time order: user logs, UserExists, user filters.
CREATE INDEX events_namespace_user ON events (namespace, user_name, ts, seq) INCLUDE (category);
