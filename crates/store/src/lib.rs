//! The local SQLite file that holds a person's WHOOP history.
//!
//! One `Store` per database file. It writes WHOOP records idempotently (an older version never
//! overwrites a newer one), keeps the sync engine's bookkeeping (import checkpoints written in the
//! same transaction as the page they describe, sync runs, small persisted state), answers the
//! dashboard's day-by-day reads (shared with the MCP server and the REST API, which open the file
//! read-only), exports (CSV, WHOOP-shaped JSON, Parquet), backs up and restores the file, and
//! looks after the data (completeness per day, deleting a range, rebuilding the typed tables from
//! the raw JSON).

mod assistant;
mod backup;
mod bookkeeping;
mod changes;
mod dashboard;
pub mod day;
mod error;
mod event_issues;
mod export;
mod maintenance;
mod parquet_export;
mod reads;
mod records;
mod window;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use whoop::types::{format_timestamp, parse_timestamp};
use whoop::{BodyMeasurement, Collection, Fetched, Profile};

pub use assistant::{normalise_sport, Holdings, ScoreStates, SleepRecord, WorkoutFilter};
pub use backup::{check_backup, known_schema_version, restore_backup, BackupInfo, RestoreOutcome};
pub use bookkeeping::{Checkpoint, ImportWindow, RunOutcome, RunStatus, SyncRun};
pub use changes::ChangeMark;
pub use dashboard::{
    Dashboard, MetricNow, SleepNow, SleepStages, TodaySummary, WorkoutSummary, CHARTED,
};
pub use error::{Error, Result};
pub use event_issues::{EventIssue, EventIssueSummary, SkippedEvent};
pub use export::{DayRange, ExportFormat, ExportProgress, Progress};
pub use maintenance::{Completeness, DataSummary, DayCompleteness};
pub use reads::{values_of, DayMetrics, DayValue, Metric};
pub use records::{StoreRecord, UpsertCounts};
pub use window::{WindowContents, WindowOutcome};

/// The schema steps in ./migrations, which a restored backup's must be among.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Record counts per collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub cycle: u64,
    pub sleep: u64,
    pub recovery: u64,
    pub workout: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.cycle + self.sleep + self.recovery + self.workout
    }

    pub fn get(&self, collection: Collection) -> u64 {
        match collection {
            Collection::Cycle => self.cycle,
            Collection::Sleep => self.sleep,
            Collection::Recovery => self.recovery,
            Collection::Workout => self.workout,
        }
    }
}

/// How much of the file SQLite reads through a memory map rather than its page cache. A
/// five-year dashboard reads ~8 MB of pages, four times SQLite's default 2 MB cache: without the
/// map every "All" read copied the file in again through read(2) (measured: 27 ms of SQL against
/// 11 ms). Mapped pages are the OS's file cache, shared by every connection and reclaimable, so
/// the app's own heap does not grow with the history. 256 MiB is address space, not memory.
const MMAP_SIZE: &str = "268435456";

#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    path: Option<PathBuf>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL survives a process crash without losing committed transactions; only
            // an OS crash can lose the last few, which a re-sync restores.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .pragma("mmap_size", MMAP_SIZE)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = Store {
            pool,
            path: Some(path.to_path_buf()),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A private in-memory database, for tests.
    pub async fn open_in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to ":memory:" would be its own empty database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let store = Store { pool, path: None };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Writes a batch of records in one transaction, noting each in the change log (these are
    /// the live applier's and catch-up's writes; a Force Sync running meanwhile keeps them).
    pub async fn upsert<T: StoreRecord>(&self, items: &[Fetched<T>]) -> Result<UpsertCounts> {
        let mut tx = self.pool.begin().await?;
        let counts = records::upsert_all(&mut tx, items).await?;
        changes::forget_old_changes(&mut tx).await?;
        for item in items {
            changes::log_change(&mut tx, T::COLLECTION.as_str(), &item.record.key(), false).await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// Deletes one record by its key (cycle id, sleep or workout UUID, recovery's cycle id),
    /// noting it in the change log even if it was not here (a Force Sync must not bring it
    /// back). Returns whether it existed.
    pub async fn delete(&self, collection: Collection, key: &str) -> Result<bool> {
        let (table, column) = records::table_of(collection);
        let sql = format!("DELETE FROM {table} WHERE {column} = ?");
        let query = sqlx::query(&sql);
        let query = match collection {
            Collection::Cycle | Collection::Recovery => match key.parse::<i64>() {
                Ok(id) => query.bind(id),
                Err(_) => return Ok(false),
            },
            Collection::Sleep | Collection::Workout => query.bind(key.to_string()),
        };
        let mut tx = self.pool.begin().await?;
        let existed = query.execute(&mut *tx).await?.rows_affected() > 0;
        changes::forget_old_changes(&mut tx).await?;
        changes::log_change(&mut tx, collection.as_str(), key, true).await?;
        tx.commit().await?;
        Ok(existed)
    }

    /// Deletes the recovery computed from `sleep_id` (WHOOP deletes it with its sleep).
    pub async fn delete_recovery_for_sleep(&self, sleep_id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM recovery WHERE sleep_id = ?")
            .bind(sleep_id)
            .execute(&mut *tx)
            .await?;
        changes::log_change(&mut tx, changes::RECOVERY_OF_SLEEP, sleep_id, true).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn save_profile(&self, profile: &Fetched<Profile>) -> Result<()> {
        let p = &profile.record;
        sqlx::query(
            "INSERT INTO profile (user_id, email, first_name, last_name, raw, fetched_at)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(user_id) DO UPDATE SET email = excluded.email,
               first_name = excluded.first_name, last_name = excluded.last_name,
               raw = excluded.raw, fetched_at = excluded.fetched_at",
        )
        .bind(p.user_id)
        .bind(&p.email)
        .bind(&p.first_name)
        .bind(&p.last_name)
        .bind(profile.raw.to_string())
        .bind(format_timestamp(&Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn profile(&self) -> Result<Option<Profile>> {
        let raw: Option<String> =
            sqlx::query_scalar("SELECT raw FROM profile ORDER BY fetched_at DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        raw.map(|raw| {
            serde_json::from_str(&raw).map_err(|e| Error::Corrupt(format!("stored profile: {e}")))
        })
        .transpose()
    }

    pub async fn save_body_measurement(
        &self,
        user_id: i64,
        body: &Fetched<BodyMeasurement>,
    ) -> Result<()> {
        let b = &body.record;
        sqlx::query(
            "INSERT INTO body_measurement (user_id, height_meter, weight_kilogram, max_heart_rate,
               raw, fetched_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(user_id) DO UPDATE SET height_meter = excluded.height_meter,
               weight_kilogram = excluded.weight_kilogram, max_heart_rate = excluded.max_heart_rate,
               raw = excluded.raw, fetched_at = excluded.fetched_at",
        )
        .bind(user_id)
        .bind(b.height_meter)
        .bind(b.weight_kilogram)
        .bind(b.max_heart_rate)
        .bind(body.raw.to_string())
        .bind(format_timestamp(&Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets the body measurement: WHOOP says there is none (404), e.g. the person removed it.
    pub async fn delete_body_measurement(&self) -> Result<()> {
        sqlx::query("DELETE FROM body_measurement")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn counts(&self) -> Result<Counts> {
        let (cycle, sleep, recovery, workout): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM cycle), (SELECT COUNT(*) FROM sleep),
                    (SELECT COUNT(*) FROM recovery), (SELECT COUNT(*) FROM workout)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Counts {
            cycle: cycle as u64,
            sleep: sleep as u64,
            recovery: recovery as u64,
            workout: workout as u64,
        })
    }

    /// The start of the most recent cycle, sleep or workout.
    pub async fn newest_record_time(&self) -> Result<Option<DateTime<Utc>>> {
        let newest: Option<String> = sqlx::query_scalar(
            "SELECT MAX(t) FROM (SELECT MAX(start) AS t FROM cycle UNION ALL
               SELECT MAX(start) FROM sleep UNION ALL SELECT MAX(start) FROM workout)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(newest.as_deref().and_then(parse_timestamp))
    }

    /// The number of distinct local days that have any record: "history kept (1,834 days)".
    pub async fn days_of_history(&self) -> Result<u64> {
        let days: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT day FROM cycle UNION SELECT day FROM sleep
               UNION SELECT day FROM workout)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(days as u64)
    }

    /// Removes every WHOOP record, profile and import checkpoint, and reclaims the space. Sync
    /// runs stay as a log of what happened.
    pub async fn delete_all_whoop_data(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for table in [
            "cycle",
            "sleep",
            "recovery",
            "workout",
            "profile",
            "body_measurement",
            "import_checkpoint",
            "record_change",
            "event_issue",
        ] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        sqlx::query("VACUUM").execute(&self.pool).await?;
        Ok(())
    }
}
