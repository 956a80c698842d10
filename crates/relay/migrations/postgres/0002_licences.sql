-- Licences for the subscription gate (PostgreSQL). Keep in step with ../sqlite/0002_licences.sql.
-- The signed key says who the licence is; this row says whether it is active now. A key is never
-- stored: only its id, so a leaked database cannot be turned into working keys.
CREATE TABLE licences (
    id           TEXT    PRIMARY KEY,
    plan         TEXT    NOT NULL,
    max_devices  BIGINT  NOT NULL,
    -- active | cancelled (runs to active_until, not renewed) | revoked (ended at once)
    status       TEXT    NOT NULL,
    -- Epoch ms. Sign-ins need now < active_until; refreshes and streams get a grace after it.
    active_until BIGINT  NOT NULL,
    issued_at    BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

-- The licence a device signed in with (NULL when the gate was off), for its stream and the
-- device limit.
ALTER TABLE devices ADD COLUMN licence_id TEXT;
CREATE INDEX devices_licence ON devices (licence_id);
