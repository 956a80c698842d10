//! The commands behind Settings → Data and the completeness calendar: each adapts `data` to
//! the session's engine. Exports report progress to the window as `export-progress` events.

use std::path::PathBuf;

use tauri::{AppHandle, Emitter, State};

use crate::core::IpcResult;
use crate::data::{self, CalendarDay, DataView, ExportFormatKey, ExportProgressView};
use crate::session::Sessions;

#[tauri::command]
pub async fn get_data(sessions: State<'_, Sessions>) -> IpcResult<DataView> {
    data::summary(&sessions.core()?.engine).await
}

#[tauri::command]
pub async fn export_data(
    app: AppHandle,
    sessions: State<'_, Sessions>,
    format: ExportFormatKey,
    from: Option<String>,
    to: Option<String>,
    path: String,
) -> IpcResult<Vec<String>> {
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

#[tauri::command]
pub async fn backup_data(sessions: State<'_, Sessions>, path: String) -> IpcResult<String> {
    data::backup(&sessions.core()?.engine, &PathBuf::from(path)).await
}

#[tauri::command]
pub async fn delete_days(
    app: AppHandle,
    sessions: State<'_, Sessions>,
    from: String,
    to: String,
) -> IpcResult<String> {
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
