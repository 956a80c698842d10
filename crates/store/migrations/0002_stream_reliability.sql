-- Which records the live applier and catch-ups wrote or deleted, in order, so a Force Sync that
-- fetched a window over several minutes leaves alone what changed after its fetch began (it
-- would otherwise delete a record created meanwhile, or bring back one deleted meanwhile).
-- Kept for a week; a Force Sync only needs the entries since it started.
CREATE TABLE record_change (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,     -- cycle | sleep | recovery | workout | recovery_of_sleep
    k          TEXT NOT NULL,     -- the record's key; for recovery_of_sleep the sleep's id
    deleted    INTEGER NOT NULL,  -- 1: deleted, 0: written (or confirmed unchanged)
    changed_at TEXT NOT NULL
);
CREATE INDEX record_change_key ON record_change(collection, k);

-- Relay events the applier could not apply: `pending` ones (WHOOP failed transiently) are retried
-- with backoff until they apply; `skipped` ones (a record WHOOP sends but we cannot read, an event
-- we cannot understand) are kept so status can show them. Neither blocks the stream.
CREATE TABLE event_issue (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,  -- the webhook type, e.g. workout.updated
    object_id       TEXT NOT NULL,
    event           TEXT NOT NULL,  -- the relay's event JSON (type, id, user_id, trace_id)
    state           TEXT NOT NULL,  -- pending | skipped
    reason          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    first_seen_at   TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    next_attempt_at TEXT            -- pending only
);
CREATE INDEX event_issue_state ON event_issue(state, next_attempt_at);
