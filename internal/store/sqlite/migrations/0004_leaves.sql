-- Tamper evidence (spec/API.md section 6, docs/tamper-evidence.md). Each
-- namespace's events are an append-only Merkle log. Ingest writes an
-- event's leaf in the event's transaction: its encoding version, data
-- (time in ns, then the SHA-256 of the event's canonical encoding) and a
-- MAC only the seal key makes; idx stays NULL until the leader seals it.
-- Keyed like events, so verify walks both in one order. Retention deletes
-- events, never leaves: a leaf stays checkable against the signed cutoff.
CREATE TABLE leaves (
    namespace TEXT NOT NULL,
    ts INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    version INTEGER NOT NULL,
    data BLOB NOT NULL CHECK (length(data) = 40),
    mac BLOB NOT NULL CHECK (length(mac) = 32),
    idx INTEGER,
    -- When ingest wrote it (Unix ns): verify names a leaf still unsealed
    -- twice the seal interval after.
    created INTEGER NOT NULL,
    PRIMARY KEY (namespace, ts, seq)
) WITHOUT ROWID, STRICT;
-- The log in order, for proofs and verify.
CREATE UNIQUE INDEX leaves_by_index ON leaves (namespace, idx) WHERE idx IS NOT NULL;
-- What the sealer reads next: small, leaves leave it once sealed.
CREATE INDEX leaves_unsealed ON leaves (namespace, seq) WHERE idx IS NULL;

-- The logs' interior hashes, by golang.org/x/mod/sumdb/tlog's stored-hash
-- index: a proof or a root reads at most 1 + log2(size) of them.
CREATE TABLE tree_hashes (
    namespace TEXT NOT NULL,
    id INTEGER NOT NULL,
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (namespace, id)
) WITHOUT ROWID, STRICT;

-- Signed checkpoints (C2SP signed notes), one per sealed size.
CREATE TABLE checkpoints (
    namespace TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size > 0),
    root BLOB NOT NULL CHECK (length(root) = 32),
    sealed_at INTEGER NOT NULL,
    retention_cut INTEGER NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (namespace, size)
) WITHOUT ROWID, STRICT;
