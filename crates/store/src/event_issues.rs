//! Relay events the live applier could not apply. A `pending` one failed for a passing reason
//! (WHOOP down, rate limited) and is retried with backoff; a `skipped` one never can be (WHOOP
//! sends a record we cannot read, the event makes no sense) and is kept so status can say so.
//! Either way the stream moves on: one bad event must not hold back the ones after it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use whoop::types::{format_timestamp, parse_timestamp};

use crate::error::{Error, Result};
use crate::Store;

/// Skipped events kept for status; older ones are forgotten.
const KEEP_SKIPPED: i64 = 200;

/// A pending event, due for another attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventIssue {
    pub id: i64,
    pub kind: String,
    pub object_id: String,
    /// The relay's event JSON, to apply again.
    pub event: String,
    pub attempts: u32,
    pub first_seen_at: DateTime<Utc>,
}

/// One skipped event, as status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedEvent {
    /// The webhook type, e.g. `workout.updated`.
    pub kind: String,
    pub id: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// What status shows about events that did not apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventIssueSummary {
    /// Waiting for another attempt.
    pub pending: u64,
    /// Given up on (kept: the newest 200).
    pub skipped: u64,
    /// The newest few skipped, newest first.
    pub last_skipped: Vec<SkippedEvent>,
}

fn time(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<DateTime<Utc>> {
    let text: String = row.try_get(column)?;
    parse_timestamp(&text).ok_or_else(|| Error::Corrupt(format!("event issue {column}: {text}")))
}

impl Store {
    /// Records that an event could not be applied yet. A pending event for the same object and
    /// type is the same work, so it is updated rather than added twice.
    pub async fn add_pending_event(
        &self,
        kind: &str,
        object_id: &str,
        event: &str,
        reason: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<()> {
        let now = format_timestamp(&Utc::now());
        let next = format_timestamp(&next_attempt_at);
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE event_issue SET reason = ?, attempts = attempts + 1, updated_at = ?,
               next_attempt_at = MIN(next_attempt_at, ?)
             WHERE state = 'pending' AND kind = ? AND object_id = ?",
        )
        .bind(reason)
        .bind(&now)
        .bind(&next)
        .bind(kind)
        .bind(object_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            sqlx::query(
                "INSERT INTO event_issue (kind, object_id, event, state, reason, attempts,
                   first_seen_at, updated_at, next_attempt_at)
                 VALUES (?, ?, ?, 'pending', ?, 1, ?, ?, ?)",
            )
            .bind(kind)
            .bind(object_id)
            .bind(event)
            .bind(reason)
            .bind(&now)
            .bind(&now)
            .bind(&next)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Pending events whose next attempt is due at `now`, oldest first.
    pub async fn due_pending_events(&self, now: DateTime<Utc>) -> Result<Vec<EventIssue>> {
        let rows = sqlx::query(
            "SELECT id, kind, object_id, event, attempts, first_seen_at FROM event_issue
             WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id",
        )
        .bind(format_timestamp(&now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(EventIssue {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    object_id: row.try_get("object_id")?,
                    event: row.try_get("event")?,
                    attempts: row.try_get::<i64, _>("attempts")?.max(0) as u32,
                    first_seen_at: time(row, "first_seen_at")?,
                })
            })
            .collect()
    }

    /// When the next pending event is due, if any is waiting.
    pub async fn next_pending_event_at(&self) -> Result<Option<DateTime<Utc>>> {
        let next: Option<String> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM event_issue WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next.as_deref().and_then(parse_timestamp))
    }

    /// Another attempt failed for a passing reason: try again at `next_attempt_at`.
    pub async fn retry_pending_event_later(
        &self,
        id: i64,
        reason: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE event_issue SET reason = ?, attempts = attempts + 1, updated_at = ?,
               next_attempt_at = ? WHERE id = ? AND state = 'pending'",
        )
        .bind(reason)
        .bind(format_timestamp(&Utc::now()))
        .bind(format_timestamp(&next_attempt_at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A pending event applied at last.
    pub async fn resolve_pending_event(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM event_issue WHERE id = ? AND state = 'pending'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A pending event that can never apply (or waited too long) becomes a skipped one.
    pub async fn skip_pending_event(&self, id: i64, reason: &str) -> Result<()> {
        sqlx::query(
            "UPDATE event_issue SET state = 'skipped', reason = ?, updated_at = ?,
               next_attempt_at = NULL WHERE id = ?",
        )
        .bind(reason)
        .bind(format_timestamp(&Utc::now()))
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.forget_old_skipped().await
    }

    /// Records an event that can never be applied.
    pub async fn add_skipped_event(
        &self,
        kind: &str,
        object_id: &str,
        event: &str,
        reason: &str,
    ) -> Result<()> {
        let now = format_timestamp(&Utc::now());
        sqlx::query(
            "INSERT INTO event_issue (kind, object_id, event, state, reason, attempts,
               first_seen_at, updated_at, next_attempt_at)
             VALUES (?, ?, ?, 'skipped', ?, 1, ?, ?, NULL)",
        )
        .bind(kind)
        .bind(object_id)
        .bind(event)
        .bind(reason)
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        self.forget_old_skipped().await
    }

    async fn forget_old_skipped(&self) -> Result<()> {
        sqlx::query(
            "DELETE FROM event_issue WHERE state = 'skipped' AND id NOT IN
               (SELECT id FROM event_issue WHERE state = 'skipped' ORDER BY id DESC LIMIT ?)",
        )
        .bind(KEEP_SKIPPED)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Counts of pending and skipped events and the newest `last` skipped ones.
    pub async fn event_issue_summary(&self, last: u32) -> Result<EventIssueSummary> {
        let (pending, skipped): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM event_issue WHERE state = 'pending'),
                    (SELECT COUNT(*) FROM event_issue WHERE state = 'skipped')",
        )
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(
            "SELECT kind, object_id, reason, updated_at FROM event_issue WHERE state = 'skipped'
             ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(last))
        .fetch_all(&self.pool)
        .await?;
        let last_skipped = rows
            .iter()
            .map(|row| {
                Ok(SkippedEvent {
                    kind: row.try_get("kind")?,
                    id: row.try_get("object_id")?,
                    reason: row.try_get("reason")?,
                    at: time(row, "updated_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EventIssueSummary {
            pending: pending as u64,
            skipped: skipped as u64,
            last_skipped,
        })
    }
}
