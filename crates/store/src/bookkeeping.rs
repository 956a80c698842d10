//! What the sync engine remembers between runs: per-collection import checkpoints, a log of sync
//! runs, and small named values (connection state and the like; never secrets).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use whoop::types::{format_timestamp, parse_timestamp};
use whoop::{Collection, Fetched};

use crate::error::{Error, Result};
use crate::records::{upsert_all, StoreRecord, UpsertCounts};
use crate::Store;

/// A time window an import walks through page by page. `None` ends are unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImportWindow {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl ImportWindow {
    pub const ALL: ImportWindow = ImportWindow {
        start: None,
        end: None,
    };

    fn keys(&self) -> (String, String) {
        (
            self.start
                .as_ref()
                .map(format_timestamp)
                .unwrap_or_default(),
            self.end.as_ref().map(format_timestamp).unwrap_or_default(),
        )
    }
}

/// How far the import of one collection over one window has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub collection: Collection,
    pub window: ImportWindow,
    /// The cursor for the next page; `None` with `done == false` means "from the first page".
    pub next_token: Option<String>,
    pub pages: u64,
    pub records: u64,
    pub done: bool,
}

impl Checkpoint {
    pub fn new(collection: Collection, window: ImportWindow) -> Self {
        Checkpoint {
            collection,
            window,
            next_token: None,
            pages: 0,
            records: 0,
            done: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Ok,
    Failed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> RunStatus {
        match s {
            "ok" => RunStatus::Ok,
            "running" => RunStatus::Running,
            _ => RunStatus::Failed,
        }
    }
}

/// How a sync run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutcome {
    pub records_written: u64,
    pub records_deleted: u64,
    pub records_skipped: u64,
    pub requests: u64,
    /// `None` for success.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncRun {
    pub id: i64,
    pub kind: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub records_written: u64,
    pub records_deleted: u64,
    pub records_skipped: u64,
    pub requests: u64,
    pub error: Option<String>,
}

impl Store {
    pub async fn load_checkpoint(
        &self,
        collection: Collection,
        window: &ImportWindow,
    ) -> Result<Option<Checkpoint>> {
        let (start, end) = window.keys();
        let row = sqlx::query(
            "SELECT next_token, pages, records, done FROM import_checkpoint
             WHERE collection = ? AND window_start = ? AND window_end = ?",
        )
        .bind(collection.as_str())
        .bind(start)
        .bind(end)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| Checkpoint {
            collection,
            window: *window,
            next_token: row.get("next_token"),
            pages: row.get::<i64, _>("pages") as u64,
            records: row.get::<i64, _>("records") as u64,
            done: row.get::<i64, _>("done") != 0,
        }))
    }

    /// Writes one page of records and the checkpoint that follows it in a single transaction,
    /// so a crash either keeps both or neither: a resumed import never skips or repeats a page.
    pub async fn apply_page<T: StoreRecord>(
        &self,
        items: &[Fetched<T>],
        checkpoint: &Checkpoint,
    ) -> Result<UpsertCounts> {
        if checkpoint.collection != T::COLLECTION {
            return Err(Error::Corrupt(format!(
                "checkpoint for {} used with {} records",
                checkpoint.collection,
                T::COLLECTION
            )));
        }
        let mut tx = self.pool.begin().await?;
        let counts = upsert_all(&mut tx, items).await?;
        let (start, end) = checkpoint.window.keys();
        sqlx::query(
            "INSERT INTO import_checkpoint
               (collection, window_start, window_end, next_token, pages, records, done, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(collection, window_start, window_end) DO UPDATE SET
               next_token = excluded.next_token, pages = excluded.pages,
               records = excluded.records, done = excluded.done, updated_at = excluded.updated_at",
        )
        .bind(checkpoint.collection.as_str())
        .bind(start)
        .bind(end)
        .bind(&checkpoint.next_token)
        .bind(checkpoint.pages as i64)
        .bind(checkpoint.records as i64)
        .bind(checkpoint.done)
        .bind(format_timestamp(&Utc::now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(counts)
    }

    /// Every checkpoint, for progress reports and tests of resuming.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let rows = sqlx::query(
            "SELECT collection, window_start, window_end, next_token, pages, records, done
             FROM import_checkpoint ORDER BY collection, window_start",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get("collection")?;
            let collection = Collection::parse(&name).ok_or_else(|| {
                Error::Corrupt(format!("checkpoint of unknown collection {name:?}"))
            })?;
            let time = |column: &str| -> Result<Option<DateTime<Utc>>> {
                let text: String = row.try_get(column)?;
                Ok(parse_timestamp(&text))
            };
            out.push(Checkpoint {
                collection,
                window: ImportWindow {
                    start: time("window_start")?,
                    end: time("window_end")?,
                },
                next_token: row.try_get("next_token")?,
                pages: row.try_get::<i64, _>("pages")? as u64,
                records: row.try_get::<i64, _>("records")? as u64,
                done: row.try_get::<i64, _>("done")? != 0,
            });
        }
        Ok(out)
    }

    pub async fn clear_checkpoints(&self) -> Result<()> {
        sqlx::query("DELETE FROM import_checkpoint")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn start_sync_run(&self, kind: &str) -> Result<i64> {
        let id = sqlx::query("INSERT INTO sync_run (kind, started_at, status) VALUES (?, ?, ?)")
            .bind(kind)
            .bind(format_timestamp(&Utc::now()))
            .bind(RunStatus::Running.as_str())
            .execute(&self.pool)
            .await?
            .last_insert_rowid();
        Ok(id)
    }

    pub async fn finish_sync_run(&self, id: i64, outcome: &RunOutcome) -> Result<()> {
        let status = if outcome.error.is_some() {
            RunStatus::Failed
        } else {
            RunStatus::Ok
        };
        sqlx::query(
            "UPDATE sync_run SET finished_at = ?, status = ?, records_written = ?,
               records_deleted = ?, records_skipped = ?, requests = ?, error = ? WHERE id = ?",
        )
        .bind(format_timestamp(&Utc::now()))
        .bind(status.as_str())
        .bind(outcome.records_written as i64)
        .bind(outcome.records_deleted as i64)
        .bind(outcome.records_skipped as i64)
        .bind(outcome.requests as i64)
        .bind(&outcome.error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The most recent run, or the most recent successful one.
    pub async fn last_sync_run(&self, only_successful: bool) -> Result<Option<SyncRun>> {
        let sql = if only_successful {
            "SELECT * FROM sync_run WHERE status = 'ok' ORDER BY id DESC LIMIT 1"
        } else {
            "SELECT * FROM sync_run ORDER BY id DESC LIMIT 1"
        };
        let row = sqlx::query(sql).fetch_optional(&self.pool).await?;
        row.map(|row| -> Result<SyncRun> {
            let time = |column: &str| -> Result<Option<DateTime<Utc>>> {
                let text: Option<String> = row.try_get(column)?;
                Ok(text.as_deref().and_then(parse_timestamp))
            };
            Ok(SyncRun {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                started_at: time("started_at")?
                    .ok_or_else(|| Error::Corrupt("sync run without a start".into()))?,
                finished_at: time("finished_at")?,
                status: RunStatus::parse(&row.try_get::<String, _>("status")?),
                records_written: row.try_get::<i64, _>("records_written")? as u64,
                records_deleted: row.try_get::<i64, _>("records_deleted")? as u64,
                records_skipped: row.try_get::<i64, _>("records_skipped")? as u64,
                requests: row.try_get::<i64, _>("requests")? as u64,
                error: row.try_get("error")?,
            })
        })
        .transpose()
    }

    pub async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES (?, ?)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_meta(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM meta WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes `key` only if it still holds `expected`: a value replaced meanwhile (by work that
    /// came in while the caller ran) stays. Returns whether it was deleted.
    pub async fn delete_meta_if(&self, key: &str, expected: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM meta WHERE key = ? AND value = ?")
            .bind(key)
            .bind(expected)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
