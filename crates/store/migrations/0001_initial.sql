-- WHOOP records. Keys follow whoop-api.md §3.6. Times are UTC text in WHOOP's own format
-- (YYYY-MM-DDTHH:MM:SS.mmmZ), so text comparison is time comparison. `day` is the person's local
-- WHOOP day, derived once at write time. `raw` is the JSON WHOOP sent, so a later schema can be
-- rebuilt from disk without calling WHOOP again.
--
-- No foreign keys between collections: WHOOP delivers them independently (parallel import,
-- webhooks in any order), so a recovery may legitimately arrive before its cycle.

CREATE TABLE cycle (
    id                 INTEGER PRIMARY KEY,
    user_id            INTEGER NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    start              TEXT NOT NULL,
    "end"              TEXT,
    timezone_offset    TEXT NOT NULL,
    day                TEXT NOT NULL,
    score_state        TEXT NOT NULL,
    strain             REAL,
    kilojoule          REAL,
    average_heart_rate INTEGER,
    max_heart_rate     INTEGER,
    raw                TEXT NOT NULL
);
CREATE INDEX cycle_start ON cycle(start);
CREATE INDEX cycle_day ON cycle(day);

CREATE TABLE sleep (
    id                               TEXT PRIMARY KEY,
    cycle_id                         INTEGER NOT NULL,
    v1_id                            INTEGER,
    user_id                          INTEGER NOT NULL,
    created_at                       TEXT NOT NULL,
    updated_at                       TEXT NOT NULL,
    start                            TEXT NOT NULL,
    "end"                            TEXT NOT NULL,
    timezone_offset                  TEXT NOT NULL,
    day                              TEXT NOT NULL,
    nap                              INTEGER NOT NULL,
    score_state                      TEXT NOT NULL,
    respiratory_rate                 REAL,
    sleep_performance_percentage     REAL,
    sleep_consistency_percentage     REAL,
    sleep_efficiency_percentage      REAL,
    total_in_bed_time_milli          INTEGER,
    total_awake_time_milli           INTEGER,
    total_no_data_time_milli         INTEGER,
    total_light_sleep_time_milli     INTEGER,
    total_slow_wave_sleep_time_milli INTEGER,
    total_rem_sleep_time_milli       INTEGER,
    sleep_cycle_count                INTEGER,
    disturbance_count                INTEGER,
    baseline_milli                   INTEGER,
    need_from_sleep_debt_milli       INTEGER,
    need_from_recent_strain_milli    INTEGER,
    need_from_recent_nap_milli       INTEGER,
    raw                              TEXT NOT NULL
);
CREATE INDEX sleep_start ON sleep(start);
CREATE INDEX sleep_cycle ON sleep(cycle_id);

CREATE TABLE recovery (
    cycle_id           INTEGER PRIMARY KEY,
    sleep_id           TEXT NOT NULL UNIQUE,
    user_id            INTEGER NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    score_state        TEXT NOT NULL,
    user_calibrating   INTEGER,
    recovery_score     REAL,
    resting_heart_rate REAL,
    hrv_rmssd_milli    REAL,
    spo2_percentage    REAL,
    skin_temp_celsius  REAL,
    raw                TEXT NOT NULL
);

CREATE TABLE workout (
    id                    TEXT PRIMARY KEY,
    v1_id                 INTEGER,
    sport_id              INTEGER,
    user_id               INTEGER NOT NULL,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    start                 TEXT NOT NULL,
    "end"                 TEXT NOT NULL,
    timezone_offset       TEXT NOT NULL,
    day                   TEXT NOT NULL,
    sport_name            TEXT NOT NULL,
    score_state           TEXT NOT NULL,
    strain                REAL,
    average_heart_rate    INTEGER,
    max_heart_rate        INTEGER,
    kilojoule             REAL,
    percent_recorded      REAL,
    distance_meter        REAL,
    altitude_gain_meter   REAL,
    altitude_change_meter REAL,
    zone_zero_milli       INTEGER,
    zone_one_milli        INTEGER,
    zone_two_milli        INTEGER,
    zone_three_milli      INTEGER,
    zone_four_milli       INTEGER,
    zone_five_milli       INTEGER,
    raw                   TEXT NOT NULL
);
CREATE INDEX workout_start ON workout(start);
CREATE INDEX workout_day ON workout(day);

CREATE TABLE profile (
    user_id    INTEGER PRIMARY KEY,
    email      TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name  TEXT NOT NULL,
    raw        TEXT NOT NULL,
    fetched_at TEXT NOT NULL
);

CREATE TABLE body_measurement (
    user_id         INTEGER PRIMARY KEY,
    height_meter    REAL NOT NULL,
    weight_kilogram REAL NOT NULL,
    max_heart_rate  INTEGER NOT NULL,
    raw             TEXT NOT NULL,
    fetched_at      TEXT NOT NULL
);

-- Where a paged import of one collection over one time window stands. Written in the same
-- transaction as the page's records, so a crash never separates the two.
CREATE TABLE import_checkpoint (
    collection   TEXT NOT NULL,
    window_start TEXT NOT NULL,  -- '' for unbounded
    window_end   TEXT NOT NULL,  -- '' for "now"
    next_token   TEXT,           -- NULL: start from the first page (or done)
    pages        INTEGER NOT NULL DEFAULT 0,
    records      INTEGER NOT NULL DEFAULT 0,
    done         INTEGER NOT NULL DEFAULT 0,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (collection, window_start, window_end)
);

-- One row per sync job: what it was, how it ended, what it did.
CREATE TABLE sync_run (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    status          TEXT NOT NULL,  -- running | ok | failed
    records_written INTEGER NOT NULL DEFAULT 0,
    records_deleted INTEGER NOT NULL DEFAULT 0,
    records_skipped INTEGER NOT NULL DEFAULT 0,
    requests        INTEGER NOT NULL DEFAULT 0,
    error           TEXT
);

-- Small named values the sync engine persists (connection state and the like). Never secrets.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
