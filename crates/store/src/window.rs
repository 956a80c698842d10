//! Replacing a time window with what WHOOP returned for it (Force Sync), and small lookups the
//! event applier needs.
//!
//! WHOOP never lists tombstones: a record deleted at WHOOP simply stops coming back. So after a
//! window was fetched completely, local records in it that WHOOP did not return are gone there
//! too. Everything happens in one transaction, so a failure leaves the window as it was.
//!
//! The fetch takes minutes while the live applier keeps writing. A record it wrote or deleted
//! after the fetch began (the change log after the caller's mark) is newer news than the fetch:
//! it is neither deleted for being absent from the fetch nor brought back for being in it.

use chrono::{DateTime, Utc};
use whoop::types::format_timestamp;
use whoop::{CollectionRecord, Cycle, Fetched, Recovery, Sleep, Workout};

use crate::changes::{changes_after, ChangeMark, LastChange, RECOVERY_OF_SLEEP};
use crate::error::Result;
use crate::records::upsert_all;
use crate::{Counts, Store};

/// The records of `items` that `keep` accepts (cloned: a window is a few hundred records).
fn kept<T: Clone>(items: &[Fetched<T>], keep: impl Fn(&Fetched<T>) -> bool) -> Vec<Fetched<T>> {
    items.iter().filter(|item| keep(item)).cloned().collect()
}

/// What replacing a window changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowOutcome {
    pub written: Counts,
    pub unchanged: u64,
    pub deleted: u64,
}

/// Everything WHOOP returned for one window.
#[derive(Debug, Default)]
pub struct WindowContents {
    pub cycles: Vec<Fetched<Cycle>>,
    pub sleeps: Vec<Fetched<Sleep>>,
    pub recoveries: Vec<Fetched<Recovery>>,
    pub workouts: Vec<Fetched<Workout>>,
}

impl Store {
    /// Upserts `contents` and deletes local records intersecting `[start, now)` that WHOOP did
    /// not return, with WHOOP's own matching rule: a record is in the window when it ends (or,
    /// for the open cycle, is still running) at or after `start`; a recovery when its sleep
    /// starts at or after `start`. Records changed after `fetch_began` (see `change_mark`) are
    /// left as the later change made them. Returns what was written and how many records were
    /// removed.
    pub async fn replace_window(
        &self,
        start: DateTime<Utc>,
        contents: &WindowContents,
        fetch_began: ChangeMark,
    ) -> Result<WindowOutcome> {
        self.replace_range(start, None, contents, fetch_began).await
    }

    /// `replace_window` for `[start, end)`: with an `end`, only local records that also start
    /// before it (a recovery: whose sleep or cycle does) are candidates for deletion, WHOOP's
    /// own rule for a query with both bounds. Re-fetching a few days uses it.
    pub async fn replace_range(
        &self,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
        contents: &WindowContents,
        fetch_began: ChangeMark,
    ) -> Result<WindowOutcome> {
        let start = format_timestamp(&start);
        // No end: a start no record can reach.
        let end = end.map_or_else(|| "9999".to_string(), |e| format_timestamp(&e));
        // The write lock up front: this reads the change log before it writes, and a deferred
        // transaction whose read another process's write overtook cannot upgrade (SQLITE_BUSY at
        // once, the busy timeout notwithstanding), as two `vitaltrends sync` catch-ups did.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let later = changes_after(&mut tx, fetch_began).await?;
        let changed_later =
            |collection: &str, key: &str| later.get(&(collection.to_string(), key.to_string()));
        let deleted_later = |collection: &str, key: &str| {
            changed_later(collection, key) == Some(&LastChange::Deleted)
        };
        let cycles = kept(&contents.cycles, |c| {
            !deleted_later("cycle", &c.record.key())
        });
        let sleeps = kept(&contents.sleeps, |s| !deleted_later("sleep", &s.record.id));
        let recoveries = kept(&contents.recoveries, |r| {
            !deleted_later("recovery", &r.record.key())
                && !deleted_later(RECOVERY_OF_SLEEP, &r.record.sleep_id)
        });
        let workouts = kept(&contents.workouts, |w| {
            !deleted_later("workout", &w.record.id)
        });
        // Whatever changed later is kept out of the deletions below, as if WHOOP had returned it.
        let protected = later
            .keys()
            .filter(|(collection, _)| collection != RECOVERY_OF_SLEEP);
        sqlx::query("CREATE TEMP TABLE IF NOT EXISTS keep_key (collection TEXT, k TEXT)")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM keep_key")
            .execute(&mut *tx)
            .await?;
        let keys = cycles
            .iter()
            .map(|c| ("cycle", c.record.id.to_string()))
            .chain(sleeps.iter().map(|s| ("sleep", s.record.id.clone())))
            .chain(
                recoveries
                    .iter()
                    .map(|r| ("recovery", r.record.cycle_id.to_string())),
            )
            .chain(workouts.iter().map(|w| ("workout", w.record.id.clone())))
            .chain(protected.map(|(collection, key)| (collection.as_str(), key.clone())));
        for (collection, key) in keys {
            sqlx::query("INSERT INTO keep_key (collection, k) VALUES (?, ?)")
                .bind(collection)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }

        let mut deleted = 0;
        // Recoveries first: their window is their sleep's start, read before sleeps go.
        deleted += sqlx::query(
            "DELETE FROM recovery WHERE CAST(cycle_id AS TEXT) NOT IN
               (SELECT k FROM keep_key WHERE collection = 'recovery')
             AND (sleep_id IN (SELECT id FROM sleep WHERE start >= ?1 AND start < ?2)
                  OR cycle_id IN (SELECT id FROM cycle WHERE start >= ?1 AND start < ?2))",
        )
        .bind(&start)
        .bind(&end)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        deleted += sqlx::query(
            r#"DELETE FROM cycle WHERE COALESCE("end", '9999') >= ? AND start < ?
             AND CAST(id AS TEXT) NOT IN (SELECT k FROM keep_key WHERE collection = 'cycle')"#,
        )
        .bind(&start)
        .bind(&end)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        for table in ["sleep", "workout"] {
            deleted += sqlx::query(&format!(
                r#"DELETE FROM {table} WHERE "end" >= ? AND start < ?
                 AND id NOT IN (SELECT k FROM keep_key WHERE collection = '{table}')"#
            ))
            .bind(&start)
            .bind(&end)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        sqlx::query("DELETE FROM keep_key")
            .execute(&mut *tx)
            .await?;

        let cycles = upsert_all(&mut tx, &cycles).await?;
        let sleeps = upsert_all(&mut tx, &sleeps).await?;
        let recoveries = upsert_all(&mut tx, &recoveries).await?;
        let workouts = upsert_all(&mut tx, &workouts).await?;
        tx.commit().await?;
        Ok(WindowOutcome {
            written: Counts {
                cycle: cycles.written,
                sleep: sleeps.written,
                recovery: recoveries.written,
                workout: workouts.written,
            },
            unchanged: cycles.unchanged
                + sleeps.unchanged
                + recoveries.unchanged
                + workouts.unchanged,
            deleted,
        })
    }

    /// The id of the cycle that started last before `start` (the "previous cycle").
    pub async fn cycle_before(&self, start: DateTime<Utc>) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM cycle WHERE start < ? ORDER BY start DESC LIMIT 1")
                .bind(format_timestamp(&start))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The locally stored cycle running at `at` (started at or before it, not yet ended).
    pub async fn cycle_at(&self, at: DateTime<Utc>) -> Result<Option<i64>> {
        let at = format_timestamp(&at);
        Ok(sqlx::query_scalar(
            r#"SELECT id FROM cycle WHERE start <= ? AND ("end" IS NULL OR "end" > ?)
               ORDER BY start DESC LIMIT 1"#,
        )
        .bind(&at)
        .bind(&at)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The cycle a locally stored sleep belongs to.
    pub async fn sleep_cycle_id(&self, id: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT cycle_id FROM sleep WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// When a locally stored workout started (for refreshing its cycle after a deletion).
    pub async fn workout_start(&self, id: &str) -> Result<Option<DateTime<Utc>>> {
        let start: Option<String> = sqlx::query_scalar("SELECT start FROM workout WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(start.as_deref().and_then(whoop::types::parse_timestamp))
    }
}
