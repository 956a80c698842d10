//! Backups and restores of the database file.
//!
//! A backup is `VACUUM INTO` a new file: SQLite copies one consistent snapshot (a read
//! transaction), so sync can keep writing meanwhile and the copy is never half a page. It is
//! written beside its destination under a temporary name and renamed into place, so a failed
//! backup never leaves a truncated file where the person expects a good one.
//!
//! A restore never trusts the file it is given. It copies the candidate next to the database and
//! checks the copy (SQLite header, `integrity_check`, VitalTrends' tables, a schema version this
//! build knows) before anything is replaced; the database it replaces is kept aside under a
//! `.replaced-<time>` name, never deleted. The caller must have closed every `Store` on the
//! file first (the engine, the app): the file is swapped underneath.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::SqlitePool;

use crate::error::{Error, Result};
use crate::{Counts, Store};

/// What a checked backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupInfo {
    pub counts: Counts,
    /// The newest schema migration it has.
    pub schema_version: i64,
    pub first_day: Option<String>,
    pub last_day: Option<String>,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreOutcome {
    pub info: BackupInfo,
    /// Where the database that was replaced now is (None when there was none).
    pub kept_aside: Option<PathBuf>,
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
const TABLES: [&str; 4] = ["cycle", "sleep", "recovery", "workout"];

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `path` with `suffix` appended to its file name (`vitaltrends.db` → `vitaltrends.db-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// The newest migration version this build knows.
pub fn known_schema_version() -> i64 {
    crate::MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

impl Store {
    /// Writes a consistent copy of the database to `out` (replacing a file there only once the
    /// copy is complete). Safe while sync writes.
    pub async fn backup_to(&self, out: &Path) -> Result<BackupInfo> {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        let partial = with_suffix(out, &format!(".partial-{}", std::process::id()));
        let _ = std::fs::remove_file(&partial);
        let copied = sqlx::query("VACUUM INTO ?")
            .bind(partial.display().to_string())
            .execute(&self.pool)
            .await;
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
        let info = match inspect(&partial).await {
            Ok(info) => info,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        std::fs::rename(&partial, out).map_err(|e| io(out, e))?;
        Ok(info)
    }
}

/// Checks that `candidate` is a whole VitalTrends database this build can open, without
/// changing it. The message of a refusal says what is wrong, for the person to read.
pub async fn check_backup(candidate: &Path) -> Result<BackupInfo> {
    let shown = candidate.display();
    check_header(candidate)?;
    // The checks read a copy: SQLite may write beside the file it opens (a WAL's -shm), and the
    // person's file stays exactly as it was.
    let scratch = tempfile_beside(candidate)?;
    std::fs::copy(candidate, &scratch).map_err(|e| io(candidate, e))?;
    let checked = inspect(&scratch).await;
    remove_database_files(&scratch);
    checked.map_err(|e| match e {
        Error::NotABackup(why) => Error::NotABackup(format!("{shown} {why}")),
        other => other,
    })
}

/// A fresh path in the system's temporary directory for a scratch copy.
fn tempfile_beside(candidate: &Path) -> Result<PathBuf> {
    let name = candidate
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    Ok(std::env::temp_dir().join(format!(
        "vitaltrends-check-{}-{}-{name}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or(0)
    )))
}

fn remove_database_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(with_suffix(path, suffix));
    }
}

/// Opens `path` (which must exist) and checks it; messages start after the file's name.
async fn inspect(path: &Path) -> Result<BackupInfo> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| Error::NotABackup(format!("cannot be opened as a database: {e}")))?;
    let result = inspect_pool(&pool).await;
    pool.close().await;
    result
}

async fn inspect_pool(pool: &SqlitePool) -> Result<BackupInfo> {
    let damaged = |e: sqlx::Error| Error::NotABackup(format!("is damaged: {e}"));
    let verdict: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(pool)
        .await
        .map_err(damaged)?;
    if verdict != ["ok"] {
        // SQLite may list hundreds of damaged pages (one row can hold many lines): the person
        // needs to know it is damaged, and a taste of why, not the list.
        let lines: Vec<&str> = verdict
            .iter()
            .flat_map(|v| v.lines())
            .filter(|l| !l.trim().starts_with("***"))
            .collect();
        let shown: Vec<String> = lines
            .iter()
            .take(2)
            .map(|l| l.trim().chars().take(100).collect())
            .collect();
        let more = if lines.len() > shown.len() {
            format!("; {} more", lines.len() - shown.len())
        } else {
            String::new()
        };
        return Err(Error::NotABackup(format!(
            "is damaged (SQLite's integrity check: {}{more})",
            shown.join("; ")
        )));
    }
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(pool)
            .await
            .map_err(damaged)?;
    let has = |t: &str| tables.iter().any(|n| n == t);
    if !has("_sqlx_migrations") || !TABLES.iter().all(|t| has(t)) {
        return Err(Error::NotABackup(
            "is not a VitalTrends backup: it is an SQLite database without VitalTrends' tables"
                .into(),
        ));
    }
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(damaged)?;
    let known = known_schema_version();
    let schema_version = versions.last().copied().unwrap_or(0);
    if schema_version > known {
        return Err(Error::NotABackup(format!(
            "was made by a newer VitalTrends (schema version {schema_version}; this one knows up \
             to {known}): update VitalTrends first"
        )));
    }
    if let Some(unknown) = versions
        .iter()
        .find(|v| !crate::MIGRATOR.iter().any(|m| m.version == **v))
    {
        return Err(Error::NotABackup(format!(
            "has a schema step ({unknown}) this VitalTrends does not know"
        )));
    }
    let (cycle, sleep, recovery, workout): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM cycle), (SELECT COUNT(*) FROM sleep),
                (SELECT COUNT(*) FROM recovery), (SELECT COUNT(*) FROM workout)",
    )
    .fetch_one(pool)
    .await
    .map_err(damaged)?;
    let (first_day, last_day): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT MIN(day), MAX(day) FROM (SELECT day FROM cycle UNION ALL SELECT day FROM sleep
           UNION ALL SELECT day FROM workout)",
    )
    .fetch_one(pool)
    .await
    .map_err(damaged)?;
    Ok(BackupInfo {
        counts: Counts {
            cycle: cycle as u64,
            sleep: sleep as u64,
            recovery: recovery as u64,
            workout: workout as u64,
        },
        schema_version,
        first_day,
        last_day,
    })
}

/// Replaces the database at `database` with the backup `candidate`, after checking a copy of
/// it; the replaced database is renamed to `<database>.replaced-<UTC time>`. Nothing on
/// `database` may be open. On any refusal or failure the original database is left in place.
pub async fn restore_backup(database: &Path, candidate: &Path) -> Result<RestoreOutcome> {
    let shown = candidate.display();
    // Same-named so SQLite's own side files of the copy cannot clash with the database's.
    let incoming = with_suffix(database, ".restoring");
    remove_database_files(&incoming);
    // Check the header first so a foreign file is refused before anything is copied.
    check_header(candidate)?;
    if database.exists() {
        // Opening and closing checkpoints the WAL and removes it, unless another connection
        // (another process) still has the database open: then swapping the file would leave
        // that process writing to the one set aside.
        Store::open(database).await?.close().await;
        // The pool's close can return while SQLite still checkpoints a large log on its
        // connection's thread: give it a moment before concluding someone else holds it. A
        // connection that was itself closing when ours closed (a reader just done) leaves the
        // log behind with nobody to remove it, so the check opens and closes again each second.
        let wal = with_suffix(database, "-wal");
        for attempt in 1..=50 {
            if !wal.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            if attempt % 10 == 0 {
                Store::open(database).await?.close().await;
            }
        }
        if wal.exists() {
            return Err(Error::InUse(format!(
                "{} is open in another VitalTrends process (the app or `vitaltrends run`): quit \
                 it, then restore",
                database.display()
            )));
        }
    }
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    std::fs::copy(candidate, &incoming).map_err(|e| io(candidate, e))?;
    let info = match inspect(&incoming).await {
        Ok(info) => info,
        Err(e) => {
            remove_database_files(&incoming);
            return Err(match e {
                Error::NotABackup(why) => Error::NotABackup(format!("{shown} {why}")),
                other => other,
            });
        }
    };
    // The checked copy becomes the database; bring it to this build's schema before the swap,
    // so a failing migration also leaves the original in place.
    match Store::open(&incoming).await {
        Ok(store) => store.close().await,
        Err(e) => {
            remove_database_files(&incoming);
            return Err(e);
        }
    }
    let kept_aside = if database.exists() {
        let stamp = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        // Two restores within a second must not overwrite the first one's kept file.
        let mut aside = with_suffix(database, &format!(".replaced-{stamp}"));
        let mut n = 1;
        while aside.exists() {
            n += 1;
            aside = with_suffix(database, &format!(".replaced-{stamp}-{n}"));
        }
        std::fs::rename(database, &aside).map_err(|e| io(database, e))?;
        // A WAL belongs to its database: it goes aside with it (a closed store has none).
        for suffix in ["-wal", "-shm"] {
            let side = with_suffix(database, suffix);
            if side.exists() {
                let _ = std::fs::rename(&side, with_suffix(&aside, suffix));
            }
        }
        Some(aside)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&incoming, database) {
        // Put the original back rather than leave no database.
        if let Some(aside) = &kept_aside {
            let _ = std::fs::rename(aside, database);
        }
        remove_database_files(&incoming);
        return Err(io(database, e));
    }
    remove_database_files(&incoming);
    Ok(RestoreOutcome { info, kept_aside })
}

fn check_header(candidate: &Path) -> Result<()> {
    let shown = candidate.display();
    let mut header = [0u8; 16];
    match std::fs::File::open(candidate)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
    {
        Ok(()) if &header == SQLITE_HEADER => Ok(()),
        Ok(()) => Err(Error::NotABackup(format!(
            "{shown} is not a VitalTrends backup: it is not an SQLite database"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Error::NotABackup(format!(
            "{shown} is not a VitalTrends backup: it is too short to be a database"
        ))),
        Err(e) => Err(io(candidate, e)),
    }
}
