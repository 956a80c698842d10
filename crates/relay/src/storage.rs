//! Storage: the event log, devices and bookkeeping, on SQLite or PostgreSQL with one schema and
//! one behaviour. Almost every statement is the same text on both backends (sqlx's SQLite driver
//! takes `$n` parameters too), so each method is written once and run on whichever pool is open.
//! Only event intake differs: on PostgreSQL it serialises writers so commit order is seq order
//! (otherwise a stream could pass a seq that commits later) and sends NOTIFY to other nodes.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use rand::RngCore;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{Error, Result};

/// The channel other nodes LISTEN on; the payload is the user id whose log grew.
pub const NOTIFY_CHANNEL: &str = "vitaltrends_relay_events";

/// Key of the transaction-scoped advisory lock that orders intake on PostgreSQL.
const INTAKE_LOCK: i64 = 0x0056_5452_454c_4159; // "VTRELAY" in ASCII

/// Key of the advisory lock that makes a quota claim atomic across nodes on PostgreSQL.
const QUOTA_LOCK: i64 = 0x0056_5451_554f_5441; // "VTQUOTA"

/// A quota claim: `requests` more fit if the grants since each window's start stay within its cap.
#[derive(Debug, Clone, Copy)]
pub struct QuotaClaim<'a> {
    pub now_ms: i64,
    pub requests: i64,
    pub priority: &'a str,
    pub minute_from_ms: i64,
    pub minute_cap: i64,
    pub day_from_ms: i64,
    pub day_cap: i64,
}

/// A database call that hangs must not hold a webhook past WHOOP's timeout.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub enum Storage {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code on whichever pool is open; the body is compiled once per backend.
macro_rules! on_pool {
    ($storage:expr, |$pool:ident| $body:expr) => {
        match $storage {
            Storage::Sqlite($pool) => $body,
            Storage::Postgres($pool) => $body,
        }
    };
}

/// A notice as intake stores it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub user_id: i64,
    pub kind: String,
    pub object_id: String,
    pub trace_id: String,
    pub received_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub user_id: i64,
    pub kind: String,
    pub object_id: String,
    pub trace_id: String,
    pub received_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub user_id: i64,
    pub last_seen_at_ms: Option<i64>,
    /// The licence the device signed in with (none when the subscription gate was off).
    pub licence_id: Option<String>,
}

/// A licence as the relay knows it now (the key only says how it was issued).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceRow {
    pub id: String,
    pub plan: String,
    pub max_devices: i64,
    /// `active`, `cancelled` or `revoked`.
    pub status: String,
    pub active_until_ms: i64,
    pub issued_at_ms: i64,
    pub updated_at_ms: i64,
}

type LicenceTuple = (String, String, i64, String, i64, i64, i64);

fn licence_from_row(row: LicenceTuple) -> LicenceRow {
    let (id, plan, max_devices, status, active_until_ms, issued_at_ms, updated_at_ms) = row;
    LicenceRow {
        id,
        plan,
        max_devices,
        status,
        active_until_ms,
        issued_at_ms,
        updated_at_ms,
    }
}

const LICENCE_COLUMNS: &str = "id, plan, max_devices, status, active_until, issued_at, updated_at";

/// Where a user stands in the log, for deciding whether a cursor has missed something.
#[derive(Debug, Clone, Copy, Default)]
pub struct Position {
    /// Highest seq ever stored (retained or pruned), over all users.
    pub log_head: i64,
    /// Highest seq of this user's that retention removed.
    pub pruned_through: i64,
    /// Highest seq of this user's, retained or pruned: a cursor here has seen everything.
    pub user_head: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub devices: u64,
}

type EventRow = (i64, i64, String, String, String, i64);
/// seq, user_id, trace_id, type, object_id of a row a batch insert added.
type InsertedRow = (i64, i64, String, String, String);

fn event_from_row(row: EventRow) -> StoredEvent {
    let (seq, user_id, kind, object_id, trace_id, received_at_ms) = row;
    StoredEvent {
        seq,
        user_id,
        kind,
        object_id,
        trace_id,
        received_at_ms,
    }
}

impl Storage {
    /// Opens (creating an SQLite file if missing) and migrates the database.
    pub async fn connect(url: &str) -> Result<Storage> {
        let storage = if url.starts_with("sqlite:") {
            // The URL is not echoed in errors: it may be a path users consider private.
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|_| Error::Config("the SQLite database URL does not parse".into()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // A 204 promises WHOOP the event is durable, so commits wait for the disk.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Storage::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // Not echoed either: it usually carries a password.
            let options = PgConnectOptions::from_str(url)
                .map_err(|_| Error::Config("the PostgreSQL database URL does not parse".into()))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Storage::Postgres(pool)
        } else {
            return Err(Error::Config(
                "the database URL must start with sqlite: or postgres:".into(),
            ));
        };
        Ok(storage)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Storage::Sqlite(_) => "sqlite",
            Storage::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }

    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// The log's epoch, made once with the database; racing nodes agree on the first one written.
    pub async fn log_epoch(&self) -> Result<String> {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let candidate: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ('log_epoch', $1) ON CONFLICT (key) DO NOTHING",
            )
            .bind(&candidate)
            .execute(pool)
            .await?;
            let epoch: String =
                sqlx::query_scalar("SELECT value FROM meta WHERE key = 'log_epoch'")
                    .fetch_one(pool)
                    .await?;
            Ok(epoch)
        })
    }

    /// Appends a batch of notices in one transaction, skipping those already in the log (also
    /// a repeat within the batch). The answer holds, per notice and in batch order, `Some(seq)`
    /// for a new event or `None` for a duplicate. Returns only after the commit; on an error
    /// nothing of the batch was stored.
    pub async fn insert_events(&self, batch: &[NewEvent]) -> Result<Vec<Option<i64>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // One multi-row statement: a statement per row would cost a round trip each to the
        // database (SQLite's worker thread, PostgreSQL's socket) while the writer is held.
        let mut sql = String::with_capacity(96 + batch.len() * 32);
        sql.push_str(
            "INSERT INTO events (user_id, type, object_id, trace_id, received_at) VALUES ",
        );
        for i in 0..batch.len() {
            let n = i * 5;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5
            ));
        }
        sql.push_str(
            " ON CONFLICT (trace_id, type, object_id) DO NOTHING \
             RETURNING seq, user_id, trace_id, type, object_id",
        );
        let inserted: Vec<InsertedRow> = match self {
            // SQLite has a single writer, so seq order is commit order. One statement in
            // autocommit is its own transaction (all rows or none), which saves the BEGIN and
            // COMMIT round trips to the driver's worker thread while the writer is held.
            Storage::Sqlite(pool) => {
                let mut q = sqlx::query_as(&sql);
                for ev in batch {
                    q = q
                        .bind(ev.user_id)
                        .bind(&ev.kind)
                        .bind(&ev.object_id)
                        .bind(&ev.trace_id)
                        .bind(ev.received_at_ms);
                }
                q.fetch_all(pool).await?
            }
            Storage::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(INTAKE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let mut q = sqlx::query_as(&sql);
                for ev in batch {
                    q = q
                        .bind(ev.user_id)
                        .bind(&ev.kind)
                        .bind(&ev.object_id)
                        .bind(&ev.trace_id)
                        .bind(ev.received_at_ms);
                }
                let rows: Vec<InsertedRow> = q.fetch_all(&mut *tx).await?;
                // One NOTIFY per user whose log grew, delivered by PostgreSQL only on commit.
                let mut users: Vec<i64> = rows.iter().map(|r| r.1).collect();
                users.sort_unstable();
                users.dedup();
                for user_id in users {
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(NOTIFY_CHANNEL)
                        .bind(user_id.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                rows
            }
        };
        // The first notice with a key gets the row; any later one in the batch is a duplicate.
        let mut seqs: HashMap<(String, String, String), i64> = inserted
            .into_iter()
            .map(|(seq, _, trace_id, kind, object_id)| ((trace_id, kind, object_id), seq))
            .collect();
        Ok(batch
            .iter()
            .map(|ev| seqs.remove(&(ev.trace_id.clone(), ev.kind.clone(), ev.object_id.clone())))
            .collect())
    }

    /// The user's events after `after_seq`, in log order.
    pub async fn events_after(
        &self,
        user_id: i64,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        const SELECT: &str =
            "SELECT seq, user_id, type, object_id, trace_id, received_at FROM events \
             WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
        let rows: Vec<EventRow> = on_pool!(self, |pool| {
            sqlx::query_as(SELECT)
                .bind(user_id)
                .bind(after_seq)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(event_from_row).collect())
    }

    /// The log's head and the users with events after `after_seq`, for the node's backstop read
    /// of the log tail (one query per period however many streams are open).
    pub async fn users_after(&self, after_seq: i64) -> Result<(i64, Vec<i64>)> {
        let head: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT MAX(seq) FROM events")
                .fetch_one(pool)
                .await?
        });
        let head = head.unwrap_or(0);
        if head <= after_seq {
            return Ok((head, Vec::new()));
        }
        let users: Vec<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT DISTINCT user_id FROM events WHERE seq > $1 AND seq <= $2 ORDER BY user_id",
            )
            .bind(after_seq)
            .bind(head)
            .fetch_all(pool)
            .await?
        });
        Ok((head, users))
    }

    pub async fn position(&self, user_id: i64) -> Result<Position> {
        const SELECT: &str = "SELECT \
             (SELECT MAX(seq) FROM events), \
             (SELECT value FROM meta WHERE key = 'pruned_through'), \
             (SELECT MAX(seq) FROM events WHERE user_id = $1), \
             (SELECT pruned_through FROM prune_marks WHERE user_id = $1)";
        let (log_max, log_pruned, user_max, user_pruned): (
            Option<i64>,
            Option<String>,
            Option<i64>,
            Option<i64>,
        ) = on_pool!(self, |pool| {
            sqlx::query_as(SELECT).bind(user_id).fetch_one(pool).await?
        });
        let log_pruned = log_pruned.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let pruned_through = user_pruned.unwrap_or(0);
        Ok(Position {
            log_head: log_max.unwrap_or(0).max(log_pruned),
            pruned_through,
            user_head: user_max.unwrap_or(0).max(pruned_through),
        })
    }

    /// Whether `seq` is one of the user's events (so a device of that user may ack it).
    pub async fn is_users_event(&self, user_id: i64, seq: i64) -> Result<bool> {
        let found: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT seq FROM events WHERE seq = $1 AND user_id = $2")
                .bind(seq)
                .bind(user_id)
                .fetch_optional(pool)
                .await?
        });
        Ok(found.is_some())
    }

    pub async fn create_device(
        &self,
        id: &str,
        user_id: i64,
        credential_hash: &str,
        now_ms: i64,
        licence_id: Option<&str>,
    ) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO devices (id, user_id, credential_hash, created_at, last_seen_at, acked_seq, revoked, licence_id) \
                 VALUES ($1, $2, $3, $4, NULL, 0, FALSE, $5)",
            )
            .bind(id)
            .bind(user_id)
            .bind(credential_hash)
            .bind(now_ms)
            .bind(licence_id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The live (not revoked) device holding this credential hash.
    pub async fn device_by_hash(&self, credential_hash: &str) -> Result<Option<Device>> {
        let row: Option<(String, i64, Option<i64>, Option<String>)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, user_id, last_seen_at, licence_id FROM devices \
                 WHERE credential_hash = $1 AND revoked = FALSE",
            )
            .bind(credential_hash)
            .fetch_optional(pool)
            .await?
        });
        Ok(
            row.map(|(id, user_id, last_seen_at_ms, licence_id)| Device {
                id,
                user_id,
                last_seen_at_ms,
                licence_id,
            }),
        )
    }

    /// Marks the device as in use; `false` if it was revoked or removed meanwhile.
    pub async fn touch_device(&self, id: &str, now_ms: i64) -> Result<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE id = $2 AND revoked = FALSE")
                .bind(now_ms)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// Records how far the device has applied; never moves backwards.
    pub async fn ack(&self, id: &str, seq: i64, now_ms: i64) -> Result<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE devices SET acked_seq = CASE WHEN acked_seq > $1 THEN acked_seq ELSE $1 END, \
                 last_seen_at = $2 WHERE id = $3 AND revoked = FALSE",
            )
            .bind(seq)
            .bind(now_ms)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    pub async fn revoke_device(&self, id: &str) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE devices SET revoked = TRUE WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records a licence; `false` if one with this id is already known (its row is left alone:
    /// the database, not a key, says what a licence's status is).
    pub async fn insert_licence(&self, l: &LicenceRow) -> Result<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO licences (id, plan, max_devices, status, active_until, issued_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&l.id)
            .bind(&l.plan)
            .bind(l.max_devices)
            .bind(&l.status)
            .bind(l.active_until_ms)
            .bind(l.issued_at_ms)
            .bind(l.updated_at_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    pub async fn licence(&self, id: &str) -> Result<Option<LicenceRow>> {
        let sql = format!("SELECT {LICENCE_COLUMNS} FROM licences WHERE id = $1");
        let row: Option<LicenceTuple> = on_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(licence_from_row))
    }

    /// Every licence, newest first, with its live (not revoked) device count.
    pub async fn licences(&self) -> Result<Vec<(LicenceRow, i64)>> {
        let sql = format!(
            "SELECT {LICENCE_COLUMNS}, (SELECT COUNT(*) FROM devices d \
             WHERE d.licence_id = licences.id AND d.revoked = FALSE) FROM licences \
             ORDER BY issued_at DESC, id"
        );
        type Row = (String, String, i64, String, i64, i64, i64, i64);
        let rows: Vec<Row> = on_pool!(self, |pool| { sqlx::query_as(&sql).fetch_all(pool).await? });
        Ok(rows
            .into_iter()
            .map(|(a, b, c, d, e, f, g, devices)| {
                (licence_from_row((a, b, c, d, e, f, g)), devices)
            })
            .collect())
    }

    /// Sets a licence's status and end; `false` if there is no such licence.
    pub async fn set_licence(
        &self,
        id: &str,
        status: &str,
        active_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE licences SET status = $1, active_until = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(status)
            .bind(active_until_ms)
            .bind(now_ms)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Moves a device to another licence (the person entered a new key without signing in
    /// again); `false` if the device is gone or revoked.
    pub async fn set_device_licence(&self, device_id: &str, licence_id: &str) -> Result<bool> {
        let done = on_pool!(self, |pool| {
            sqlx::query("UPDATE devices SET licence_id = $1 WHERE id = $2 AND revoked = FALSE")
                .bind(licence_id)
                .bind(device_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// How many live (not revoked) devices are bound to a licence.
    pub async fn licence_devices(&self, id: &str) -> Result<i64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM devices WHERE licence_id = $1 AND revoked = FALSE",
            )
            .bind(id)
            .fetch_one(pool)
            .await?
        }))
    }

    /// Removes events received before `cutoff_ms` (remembering, per user and overall, the highest
    /// seq removed so older cursors get a gap) and devices idle since before it.
    pub async fn prune(&self, cutoff_ms: i64) -> Result<Pruned> {
        // Fix the upper bound first so rows committed meanwhile are neither deleted unrecorded
        // nor recorded undeleted. Marks are upserted in user order so two nodes pruning at once
        // lock rows in the same order and cannot deadlock.
        const BOUND: &str = "SELECT MAX(seq) FROM events WHERE received_at < $1";
        const MARK_USERS: &str = "INSERT INTO prune_marks (user_id, pruned_through) \
             SELECT user_id, MAX(seq) FROM events WHERE received_at < $1 AND seq <= $2 \
             GROUP BY user_id ORDER BY user_id \
             ON CONFLICT (user_id) DO UPDATE SET pruned_through = \
             CASE WHEN prune_marks.pruned_through > excluded.pruned_through \
             THEN prune_marks.pruned_through ELSE excluded.pruned_through END";
        // Computed in the upsert, not read first, so two nodes pruning at once never lower it.
        const MARK_LOG: &str = "INSERT INTO meta (key, value) VALUES ('pruned_through', $1) \
             ON CONFLICT (key) DO UPDATE SET value = \
             CASE WHEN CAST(meta.value AS BIGINT) > CAST(excluded.value AS BIGINT) \
             THEN meta.value ELSE excluded.value END";
        const DELETE_EVENTS: &str = "DELETE FROM events WHERE received_at < $1 AND seq <= $2";
        const DELETE_DEVICES: &str = "DELETE FROM devices WHERE \
             CASE WHEN last_seen_at IS NULL OR last_seen_at < created_at THEN created_at ELSE last_seen_at END < $1";
        on_pool!(self, |pool| {
            let bound: Option<i64> = sqlx::query_scalar(BOUND)
                .bind(cutoff_ms)
                .fetch_one(pool)
                .await?;
            let mut events = 0;
            if let Some(bound) = bound {
                let mut tx = pool.begin().await?;
                sqlx::query(MARK_USERS)
                    .bind(cutoff_ms)
                    .bind(bound)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(MARK_LOG)
                    .bind(bound.to_string())
                    .execute(&mut *tx)
                    .await?;
                events = sqlx::query(DELETE_EVENTS)
                    .bind(cutoff_ms)
                    .bind(bound)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
            }
            let devices = sqlx::query(DELETE_DEVICES)
                .bind(cutoff_ms)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(Pruned { events, devices })
        })
    }

    /// Records the grant if it fits under both caps; false (nothing recorded) if it does not.
    /// On PostgreSQL an advisory lock serialises claims, so several nodes share one budget;
    /// SQLite serves one node, whose coordinator claims from a single task.
    pub async fn claim_quota(&self, claim: &QuotaClaim<'_>) -> Result<bool> {
        // Both windows in one scan: the minute's grants are the newest of the day's.
        const USED: &str =
            "SELECT COALESCE(SUM(CASE WHEN granted_at > $1 THEN requests ELSE 0 END), 0),
                    COALESCE(SUM(requests), 0)
             FROM quota_grants WHERE granted_at > $2";
        const INSERT: &str =
            "INSERT INTO quota_grants (granted_at, requests, priority) VALUES ($1, $2, $3)";
        macro_rules! claim_in {
            ($tx:expr) => {{
                let (minute, day): (i64, i64) = sqlx::query_as(USED)
                    .bind(claim.minute_from_ms)
                    .bind(claim.day_from_ms)
                    .fetch_one(&mut *$tx)
                    .await?;
                let fits = minute + claim.requests <= claim.minute_cap
                    && day + claim.requests <= claim.day_cap;
                if fits {
                    sqlx::query(INSERT)
                        .bind(claim.now_ms)
                        .bind(claim.requests)
                        .bind(claim.priority)
                        .execute(&mut *$tx)
                        .await?;
                }
                fits
            }};
        }
        match self {
            Storage::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let fits = claim_in!(tx);
                tx.commit().await?;
                Ok(fits)
            }
            Storage::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(QUOTA_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let fits = claim_in!(tx);
                tx.commit().await?;
                Ok(fits)
            }
        }
    }

    /// Forgets grants made before `before_ms`.
    pub async fn prune_quota(&self, before_ms: i64) -> Result<u64> {
        on_pool!(self, |pool| {
            Ok(
                sqlx::query("DELETE FROM quota_grants WHERE granted_at < $1")
                    .bind(before_ms)
                    .execute(pool)
                    .await?
                    .rows_affected(),
            )
        })
    }
}
