//! Restore from a backup in the window, without a desktop around it: check the chosen file and
//! say what it holds (so the confirmation can), then swap it in with the engine stopped and start
//! the engine again on it. The checks and the swap are the store's (`store::check_backup`,
//! `store::restore_backup`, the CLI's `restore` uses the same); this module only orders them
//! around the running session. A refused file is refused before the engine stops, so nothing is
//! replaced or interrupted.

use std::path::Path;

use serde::Serialize;
use ts_rs::TS;

use crate::core::{IpcError, IpcResult};
use crate::session::Sessions;

/// What a backup holds and what restoring it will do, for the confirmation.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct RestorePreview {
    /// The backup file.
    pub path: String,
    pub cycles: f64,
    pub sleeps: f64,
    pub recoveries: f64,
    pub workouts: f64,
    /// `YYYY-MM-DD`, local WHOOP days.
    pub first_day: Option<String>,
    pub last_day: Option<String>,
    /// The database in use now, which is kept aside (not deleted) by the restore.
    pub database: String,
    /// Where it goes: `<database>.replaced-<UTC time of the restore>`.
    pub kept_aside_pattern: String,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct RestoreDone {
    pub message: String,
    /// Where the replaced database now is (none when there was none).
    pub kept_aside: Option<String>,
}

/// The store's refusal as the window shows it: the file named, and that nothing changed.
fn refused(e: store::Error) -> IpcError {
    match e {
        store::Error::NotABackup(why) => IpcError {
            code: "not_a_backup".into(),
            message: format!("The file {why}. Nothing was replaced."),
        },
        store::Error::InUse(why) => IpcError {
            code: "in_use".into(),
            message: format!(
                "{}. Nothing was replaced.",
                crate::core::sentence(&why).trim_end_matches('.')
            ),
        },
        other => other.into(),
    }
}

fn database_of(sessions: &Sessions) -> IpcResult<std::path::PathBuf> {
    let mode = sessions.mode().ok_or_else(|| IpcError {
        code: "not_configured".into(),
        message: "Choose how to connect to WHOOP first.".into(),
    })?;
    Ok(sessions.data_dir(mode).join(sync::DATABASE_FILE))
}

/// Checks `candidate` (integrity, VitalTrends' tables, a schema this build knows) without
/// touching it or the data in use.
pub async fn check(sessions: &Sessions, candidate: &Path) -> IpcResult<RestorePreview> {
    let database = database_of(sessions)?;
    let info = store::check_backup(candidate).await.map_err(refused)?;
    Ok(RestorePreview {
        path: candidate.display().to_string(),
        cycles: info.counts.cycle as f64,
        sleeps: info.counts.sleep as f64,
        recoveries: info.counts.recovery as f64,
        workouts: info.counts.workout as f64,
        first_day: info.first_day,
        last_day: info.last_day,
        database: database.display().to_string(),
        kept_aside_pattern: format!("{}.replaced-<date and time>", database.display()),
    })
}

/// Replaces the data in use with `candidate`: checked first (a refusal stops nothing), then the
/// engine stops, the store swaps the files (the old database kept aside), and the engine starts
/// again on the restored data. If the swap fails the original stays in place and runs again.
/// `before_swap` runs once the file passed, for whatever else must let go of the store first.
pub async fn restore(
    sessions: &Sessions,
    candidate: &Path,
    before_swap: impl FnOnce(),
) -> IpcResult<RestoreDone> {
    check(sessions, candidate).await?;
    before_swap();
    let outcome = sessions
        .with_store_closed(async |dir: &Path| {
            store::restore_backup(&dir.join(sync::DATABASE_FILE), candidate)
                .await
                .map_err(refused)
        })
        .await?;
    let kept_aside = outcome.kept_aside.map(|p| p.display().to_string());
    let records = outcome.info.counts.total();
    let message = match &kept_aside {
        Some(aside) => format!(
            "Restored {records} records from {}. The data you had before is kept at {aside}.",
            candidate.display()
        ),
        None => format!("Restored {records} records from {}.", candidate.display()),
    };
    Ok(RestoreDone {
        message,
        kept_aside,
    })
}
