-- Ids are not trusted to be unique (spec/API.md section 1): an event is a
-- re-send of a stored one only when its whole content is equal. The unique
-- (namespace, id) index, which dropped every later event reusing an id, is
-- replaced by a unique (namespace, id_hash, content_hash): a retried batch
-- still stores nothing twice, any other event with a reused id is stored,
-- and the index's (namespace, id_hash) prefix finds the events of an id.
-- The table is rebuilt (SQLite cannot add NOT NULL columns without a
-- default), in primary-key order, so the copy only appends; the hashes of
-- existing rows come from Go functions the store registers
-- (auditops_id_hash, auditops_content_hash: store.IDHash, store.ContentHash).
CREATE TABLE events_v2 (
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
    id_hash INTEGER NOT NULL,
    content_hash BLOB NOT NULL CHECK (length(content_hash) = 32),
    principal BLOB,
    request BLOB,
    response BLOB,
    previous_state BLOB,
    current_state BLOB,
    PRIMARY KEY (namespace, ts, seq)
) WITHOUT ROWID, STRICT;

INSERT INTO events_v2 (namespace, ts, seq, id, user_name, api, status, category, method, status_code,
    entity_kind, entity_id, device_id, certificate_serial_number, issuer_dn, details, archived,
    message, error, id_hash, content_hash, principal, request, response, previous_state, current_state)
SELECT namespace, ts, seq, id, user_name, api, status, category, method, status_code,
    entity_kind, entity_id, device_id, certificate_serial_number, issuer_dn, details, archived,
    message, error, auditops_id_hash(id),
    auditops_content_hash(namespace, ts, id, user_name, api, status, category, method, status_code,
        entity_kind, entity_id, device_id, certificate_serial_number, issuer_dn, details, archived,
        message, error, principal, request, response, previous_state, current_state),
    principal, request, response, previous_state, current_state
FROM events ORDER BY namespace, ts, seq;

DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;

-- Re-sends are skipped by content; (namespace, id_hash) finds an id's events.
CREATE UNIQUE INDEX events_namespace_id ON events (namespace, id_hash, content_hash);
CREATE INDEX events_namespace_category ON events (namespace, category, ts, seq);
CREATE INDEX events_namespace_user ON events (namespace, user_name, ts, seq, category);
CREATE INDEX events_namespace_summary ON events (namespace, ts, user_name, api, status);
