-- The relay's whole schema (SQLite). Keep in step with ../postgres/0001_initial.sql: both backends
-- must behave the same. Times are epoch milliseconds so both backends compare them identically.

-- The event log. AUTOINCREMENT (not a plain rowid) so a sequence number is never reused after
-- retention deletes the newest rows: cursors are positions in this log.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    object_id   TEXT    NOT NULL,
    trace_id    TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (trace_id, type, object_id)
);
CREATE INDEX events_user_seq ON events (user_id, seq);
CREATE INDEX events_received_at ON events (received_at);

-- Devices bound to a WHOOP user through the token broker. Only a hash of the credential is kept.
CREATE TABLE devices (
    id              TEXT    PRIMARY KEY,
    user_id         INTEGER NOT NULL,
    credential_hash TEXT    NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER,
    acked_seq       INTEGER NOT NULL DEFAULT 0,
    revoked         BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX devices_user ON devices (user_id);

-- log_epoch (random id made with the database) and pruned_through (highest seq retention removed).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Per user, the highest seq retention has removed: a cursor below it has missed events.
CREATE TABLE prune_marks (
    user_id        INTEGER PRIMARY KEY,
    pruned_through INTEGER NOT NULL
);
