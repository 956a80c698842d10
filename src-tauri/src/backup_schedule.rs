//! Scheduled backups in the desktop app: the settings behind Settings → Data's "Back up every
//! day" (the `[backup]` section of settings.toml, shared with `vitaltrends config`), and the task
//! beside each engine that makes the day's backup while the app runs. What a backup is, when one
//! is due and which are kept is `sync::scheduled_backup`'s; this module only reads the settings,
//! runs it, and tells the window.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use config::Config;
use serde::Serialize;
use sync::scheduled_backup;
use sync::Engine;
use tauri::{AppHandle, Emitter, Manager, State};
use ts_rs::TS;

use crate::core::{IpcError, IpcResult};
use crate::dialogs;
use crate::session::Sessions;

/// How often the task looks whether a backup is due (a change in Settings wakes it at once).
const LOOK_EVERY: Duration = Duration::from_secs(60);
/// After a failure (a folder on a drive that is not plugged in), the next try.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(15 * 60);

/// What Settings → Data shows about scheduled backups.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct BackupScheduleView {
    pub scheduled: bool,
    pub folder: Option<String>,
    /// How many scheduled backups are kept.
    pub keep: f64,
    /// RFC 3339 (UTC), the newest scheduled backup in the folder.
    pub last_backup: Option<String>,
    /// Why the last scheduled backup failed, until one succeeds.
    pub problem: Option<String>,
}

/// The shell's state: what wakes the task, the last failure, and the backup being made (one at
/// a time: the task and a change in Settings may both find one due).
#[derive(Default)]
pub struct BackupSchedule {
    wake: tokio::sync::Notify,
    problem: Mutex<Option<String>>,
    making: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn view(config: &Config, schedule: &BackupSchedule) -> BackupScheduleView {
    let folder = config.backup.folder.clone();
    BackupScheduleView {
        scheduled: config.backup.scheduled,
        last_backup: folder
            .as_deref()
            .and_then(|f| scheduled_backup::last_backup(&PathBuf::from(f)))
            .map(|at| at.to_rfc3339()),
        folder,
        keep: f64::from(config.backup.keep),
        problem: lock(&schedule.problem).clone(),
    }
}

#[tauri::command]
pub async fn get_backup_schedule(
    sessions: State<'_, Sessions>,
    schedule: State<'_, BackupSchedule>,
) -> IpcResult<BackupScheduleView> {
    Ok(view(&sessions.load_config()?, &schedule))
}

/// Turns the daily backup on or off and sets how many are kept. On needs a folder first.
#[tauri::command]
pub async fn set_backup_schedule(
    app: AppHandle,
    sessions: State<'_, Sessions>,
    schedule: State<'_, BackupSchedule>,
    scheduled: bool,
    keep: u32,
) -> IpcResult<BackupScheduleView> {
    let mut config = sessions.load_config()?;
    if scheduled && config.backup.folder.is_none() {
        return Err(IpcError {
            code: "folder_required".into(),
            message: "Choose a folder for the backups first.".into(),
        });
    }
    config
        .set("backup.keep", &keep.to_string())
        .map_err(|_| IpcError {
            code: "invalid_field".into(),
            message: "Keep between 1 and 365 backups.".into(),
        })?;
    config.backup.scheduled = scheduled;
    sessions.save_config(&config)?;
    back_up_now_if_due(&app, &sessions, &schedule).await;
    Ok(view(&config, &schedule))
}

/// The folder dialog for scheduled backups. Cancelled: nothing changes.
#[tauri::command]
pub async fn choose_backup_folder(
    app: AppHandle,
    sessions: State<'_, Sessions>,
    schedule: State<'_, BackupSchedule>,
) -> IpcResult<BackupScheduleView> {
    let mut config = sessions.load_config()?;
    if let Some(folder) = dialogs::folder(&app, "Folder for daily backups").await? {
        config
            .set("backup.folder", &folder.display().to_string())
            .map_err(crate::session::settings_error)?;
        sessions.save_config(&config)?;
        *lock(&schedule.problem) = None;
        back_up_now_if_due(&app, &sessions, &schedule).await;
    }
    Ok(view(&config, &schedule))
}

/// After a change in Settings, the first backup is made before the answer rather than up to a
/// minute later, so the answer (and any read after it) already shows it: a backup made by the
/// task could be announced before an older answer arrived, which then showed "none yet".
async fn back_up_now_if_due(app: &AppHandle, sessions: &Sessions, schedule: &BackupSchedule) {
    match sessions.core() {
        Ok(core) => back_up_if_due(app, &core.engine, schedule).await,
        // No connection chosen yet: the task makes it once there is one.
        Err(_) => schedule.wake.notify_one(),
    }
}

/// The task beside each engine: while the schedule is on, a backup when one is due, the oldest
/// beyond the number kept removed; the window hears `backup-schedule` after each attempt.
pub async fn run(app: AppHandle, engine: Arc<Engine>) {
    // Managed before any engine starts (app.rs), so always there.
    let schedule = app.state::<BackupSchedule>();
    loop {
        back_up_if_due(&app, &engine, &schedule).await;
        let wait = if lock(&schedule.problem).is_some() {
            RETRY_AFTER_FAILURE
        } else {
            LOOK_EVERY
        };
        tokio::select! {
            _ = schedule.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn back_up_if_due(app: &AppHandle, engine: &Engine, schedule: &BackupSchedule) {
    let _one_at_a_time = schedule.making.lock().await;
    let handover = app.state::<crate::handover::Handover>();
    let _operation = handover.operation().await;
    // The first engine starts while the shell is still being set up.
    let Some(sessions) = app.try_state::<Sessions>() else {
        return;
    };
    let Ok(config) = Config::load(sessions.settings_file()) else {
        return;
    };
    let (true, Some(folder)) = (config.backup.scheduled, config.backup.folder.as_deref()) else {
        return;
    };
    let folder = PathBuf::from(folder);
    let keep = config.backup.keep as usize;
    let outcome =
        scheduled_backup::back_up_if_due(engine.store(), &folder, keep, chrono::Utc::now()).await;
    let problem = match outcome {
        Ok(None) => return,
        Ok(Some(done)) => {
            tracing::info!(path = %done.path.display(), removed = done.removed.len(), "scheduled backup");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "scheduled backup failed");
            Some(format!(
                "The daily backup to {} failed: {}",
                folder.display(),
                crate::core::sentence(&e.to_string())
            ))
        }
    };
    *lock(&schedule.problem) = problem;
    let _ = app.emit("backup-schedule", view(&config, schedule));
}
