//! The OS file dialogs of Settings → Data (where an export or a backup goes, which backup to
//! restore), opened from Rust with tauri-plugin-dialog, so the webview only ever receives the
//! path the person chose.
//!
//! The test hook: a GTK file chooser cannot be driven through WebDriver, so a debug build started
//! with `VITALTRENDS_TEST_DIALOG_ANSWER=<file>` shows no dialog and answers with what that file
//! holds when the dialog would open (the test writes it before pressing the button): a path is
//! the chosen one; a folder given to a save dialog means that folder with the suggested name
//! (which the suite then sees); an empty file is Cancel. Release builds never read it, and a
//! debug build without it shows the real dialog.

use std::path::PathBuf;

use tauri::{AppHandle, Manager};
use tauri_plugin_dialog::DialogExt;

use crate::core::{IpcError, IpcResult};

/// The environment variable naming the file that answers dialogs in tests (debug builds only).
pub const TEST_ANSWER_ENV: &str = "VITALTRENDS_TEST_DIALOG_ANSWER";

/// A file type the dialog offers (name, extensions without dots).
pub type Filter = (&'static str, &'static [&'static str]);

/// What the test hook answers, or `None` when it is not in use (release builds, or unset).
fn test_answer(suggested: Option<&str>) -> Option<Option<PathBuf>> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let file = std::env::var_os(TEST_ANSWER_ENV)?;
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let answer = text.trim();
    if answer.is_empty() {
        return Some(None);
    }
    let path = PathBuf::from(answer);
    Some(Some(match suggested {
        Some(name) if path.is_dir() => path.join(name),
        _ => path,
    }))
}

/// Where a dialog starts: the person's Documents folder, else their home.
fn start_folder(app: &AppHandle) -> Option<PathBuf> {
    app.path()
        .document_dir()
        .ok()
        .filter(|d| d.is_dir())
        .or_else(|| app.path().home_dir().ok())
}

fn dialog_error(e: impl std::fmt::Display) -> IpcError {
    IpcError {
        code: "dialog".into(),
        message: format!("The file dialog could not be used ({e})."),
    }
}

/// Asks where to save, suggesting `suggested` in the person's Documents folder. `None`: the
/// person cancelled.
pub async fn save(
    app: &AppHandle,
    title: &str,
    suggested: &str,
    filter: Option<Filter>,
) -> IpcResult<Option<PathBuf>> {
    if let Some(answer) = test_answer(Some(suggested)) {
        return Ok(answer);
    }
    let mut dialog = app
        .dialog()
        .file()
        .set_title(title)
        .set_file_name(suggested);
    if let Some(dir) = start_folder(app) {
        dialog = dialog.set_directory(dir);
    }
    if let Some((name, extensions)) = filter {
        dialog = dialog.add_filter(name, extensions);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    dialog.save_file(move |path| {
        let _ = tx.send(path);
    });
    match rx.await.map_err(dialog_error)? {
        Some(path) => Ok(Some(path.into_path().map_err(dialog_error)?)),
        None => Ok(None),
    }
}

/// Asks for a folder. `None`: the person cancelled.
pub async fn folder(app: &AppHandle, title: &str) -> IpcResult<Option<PathBuf>> {
    if let Some(answer) = test_answer(None) {
        return Ok(answer);
    }
    let mut dialog = app.dialog().file().set_title(title);
    if let Some(dir) = start_folder(app) {
        dialog = dialog.set_directory(dir);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    dialog.pick_folder(move |path| {
        let _ = tx.send(path);
    });
    match rx.await.map_err(dialog_error)? {
        Some(path) => Ok(Some(path.into_path().map_err(dialog_error)?)),
        None => Ok(None),
    }
}

/// Asks which file to open. `None`: the person cancelled.
pub async fn open(app: &AppHandle, title: &str, filter: Filter) -> IpcResult<Option<PathBuf>> {
    if let Some(answer) = test_answer(None) {
        return Ok(answer);
    }
    let mut dialog = app
        .dialog()
        .file()
        .set_title(title)
        .add_filter(filter.0, filter.1);
    if let Some(dir) = start_folder(app) {
        dialog = dialog.set_directory(dir);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    dialog.pick_file(move |path| {
        let _ = tx.send(path);
    });
    match rx.await.map_err(dialog_error)? {
        Some(path) => Ok(Some(path.into_path().map_err(dialog_error)?)),
        None => Ok(None),
    }
}
