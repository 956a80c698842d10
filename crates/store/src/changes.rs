//! The record change log: which records the live applier and catch-ups wrote or deleted, in
//! order. Force Sync takes a mark before it fetches and, when it replaces the window, leaves alone
//! every record changed after the mark: those changes are newer news than its fetch.

use std::collections::HashMap;

use chrono::Utc;
use sqlx::{Sqlite, Transaction};
use whoop::types::format_timestamp;

use crate::error::Result;
use crate::Store;

/// How long entries are kept: far longer than any Force Sync runs.
const KEEP_DAYS: i64 = 7;

/// A point in the change log; changes after it are newer than a fetch that began at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChangeMark(pub(crate) i64);

/// What happened last to a record after a mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LastChange {
    Written,
    Deleted,
}

/// The change-log name of a recovery deleted by its sleep's id (its cycle id may be unknown).
pub(crate) const RECOVERY_OF_SLEEP: &str = "recovery_of_sleep";

/// Forgets entries older than anyone needs; called once per logged write, so the log stays a
/// week long (a few hundred rows) whether or not a Force Sync ever runs.
pub(crate) async fn forget_old_changes(tx: &mut Transaction<'static, Sqlite>) -> Result<()> {
    let cutoff = format_timestamp(&(Utc::now() - chrono::Duration::days(KEEP_DAYS)));
    sqlx::query("DELETE FROM record_change WHERE changed_at < ?")
        .bind(cutoff)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(crate) async fn log_change(
    tx: &mut Transaction<'static, Sqlite>,
    collection: &str,
    key: &str,
    deleted: bool,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO record_change (collection, k, deleted, changed_at) VALUES (?, ?, ?, ?)",
    )
    .bind(collection)
    .bind(key)
    .bind(deleted)
    .bind(format_timestamp(&Utc::now()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The last change of every record changed after `mark`, keyed by (collection, key).
pub(crate) async fn changes_after(
    tx: &mut Transaction<'static, Sqlite>,
    mark: ChangeMark,
) -> Result<HashMap<(String, String), LastChange>> {
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT collection, k, deleted FROM record_change WHERE seq > ? ORDER BY seq",
    )
    .bind(mark.0)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(collection, key, deleted)| {
            let last = if deleted {
                LastChange::Deleted
            } else {
                LastChange::Written
            };
            ((collection, key), last)
        })
        .collect())
}

impl Store {
    /// The current end of the change log.
    pub async fn change_mark(&self) -> Result<ChangeMark> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM record_change")
            .fetch_one(&self.pool)
            .await?;
        // AUTOINCREMENT never reuses a number, even after the rows above were deleted.
        let seq = match seq {
            Some(seq) => seq,
            None => sqlx::query_scalar::<_, i64>(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'record_change'), 0)",
            )
            .fetch_one(&self.pool)
            .await?,
        };
        Ok(ChangeMark(seq))
    }
}
