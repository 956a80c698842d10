//! The commands behind Settings → Data and the completeness calendar: each adapts `data` to
//! the session's engine; the save dialogs are `dialogs`'. Exports report progress to the window as `export-progress` events.

use std::path::PathBuf;

use tauri::{AppHandle, Emitter, State};

use crate::ai_api::{self, ApiServer};
use crate::core::IpcResult;
use crate::data::{self, CalendarDay, DataView, ExportFormatKey, ExportProgressView};
use crate::dialogs;
use crate::handover::Handover;
use crate::restore::{self, RestoreDone, RestorePreview};
use crate::session::Sessions;

#[tauri::command]
pub async fn get_data(sessions: State<'_, Sessions>) -> IpcResult<DataView> {
    data::summary(&sessions.core()?.engine).await
}

/// The save dialog for an export, suggesting a name for the format and range. `None`: cancelled.
#[tauri::command]
pub async fn choose_export_path(
    app: AppHandle,
    format: ExportFormatKey,
    from: Option<String>,
    to: Option<String>,
) -> IpcResult<Option<String>> {
    let today = chrono::Local::now().date_naive();
    let name = data::export_name(format, from.as_deref(), to.as_deref(), today)?;
    let (title, filter): (&str, Option<dialogs::Filter>) = match format {
        ExportFormatKey::Json => ("Export as JSON", Some(("JSON", &["json"]))),
        ExportFormatKey::Csv => ("Export as CSV (a folder of files)", None),
        ExportFormatKey::Parquet => ("Export as Parquet (a folder of files)", None),
    };
    Ok(dialogs::save(&app, title, &name, filter)
        .await?
        .map(|p| p.display().to_string()))
}

#[tauri::command]
pub async fn export_data(
    app: AppHandle,
    sessions: State<'_, Sessions>,
    handover: State<'_, Handover>,
    format: ExportFormatKey,
    from: Option<String>,
    to: Option<String>,
    path: String,
) -> IpcResult<Vec<String>> {
    let _operation = handover.operation().await;
    let engine = sessions.core()?.engine;
    let progress = move |p: ExportProgressView| {
        let _ = app.emit("export-progress", p);
    };
    data::export(
        &engine,
        format,
        from.as_deref(),
        to.as_deref(),
        &PathBuf::from(path),
        &progress,
    )
    .await
}

/// The save dialog for a backup. `None`: cancelled.
#[tauri::command]
pub async fn choose_backup_path(app: AppHandle) -> IpcResult<Option<String>> {
    let name = data::backup_name(chrono::Local::now().date_naive());
    Ok(dialogs::save(
        &app,
        "Back up to",
        &name,
        Some(("SQLite database", &["db"])),
    )
    .await?
    .map(|p| p.display().to_string()))
}

#[tauri::command]
pub async fn backup_data(
    sessions: State<'_, Sessions>,
    handover: State<'_, Handover>,
    path: String,
) -> IpcResult<String> {
    let _operation = handover.operation().await;
    data::backup(&sessions.core()?.engine, &PathBuf::from(path)).await
}

#[tauri::command]
pub async fn delete_days(
    app: AppHandle,
    sessions: State<'_, Sessions>,
    handover: State<'_, Handover>,
    from: String,
    to: String,
) -> IpcResult<String> {
    let _operation = handover.operation().await;
    let said = data::delete_days(&sessions.core()?.engine, &from, &to).await?;
    let _ = app.emit("data-changed", ());
    Ok(said)
}

#[tauri::command]
pub async fn get_calendar(sessions: State<'_, Sessions>, year: i32) -> IpcResult<Vec<CalendarDay>> {
    let today = chrono::Local::now().date_naive();
    data::calendar(&sessions.core()?.engine, year, today).await
}

#[tauri::command]
pub async fn refetch_days(
    sessions: State<'_, Sessions>,
    from: String,
    to: String,
) -> IpcResult<bool> {
    data::refetch(&sessions.core()?.engine, &from, &to).await
}

/// "Restore from backup…": the open dialog, then the chosen file checked without replacing
/// anything. `None`: cancelled; a refused file is an error saying why.
#[tauri::command]
pub async fn choose_restore_file(
    app: AppHandle,
    sessions: State<'_, Sessions>,
) -> IpcResult<Option<RestorePreview>> {
    let Some(path) = dialogs::open(
        &app,
        "Restore from backup",
        ("VitalTrends backup", &["db", "sqlite", "sqlite3"]),
    )
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(restore::check(&sessions, &path).await?))
}

/// Replaces the data in use with the backup at `path` (after the person confirmed), then shows
/// it: the engine restarts on it, the window and the REST API follow.
#[tauri::command]
pub async fn restore_data(
    app: AppHandle,
    sessions: State<'_, Sessions>,
    server: State<'_, ApiServer>,
    handover: State<'_, Handover>,
    path: String,
) -> IpcResult<RestoreDone> {
    let _operation = handover.operation().await;
    // The API server lets go of the file only once it passed, so a refusal interrupts nothing.
    let mut swapping = false;
    let done = restore::restore(&sessions, &PathBuf::from(path), || {
        ai_api::stop(&server);
        swapping = true;
    })
    .await;
    if swapping {
        crate::app::announce_switch(&app).await;
    }
    done
}
