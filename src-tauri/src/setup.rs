//! Start-up: logging, where things live, and the connection the settings choose (see
//! `session` for the modes and switching between them).

use std::path::Path;
use std::sync::Arc;

use tauri::{AppHandle, Manager};

use crate::session::{Paths, SecretsKind, Sessions, Starter};

/// The log file's writer, kept until the process ends or is replaced.
pub struct LogFile(std::sync::Mutex<Option<tracing_appender::non_blocking::WorkerGuard>>);

impl LogFile {
    /// Writes out what is buffered and closes the file; later log lines are dropped.
    pub fn close(&self) {
        drop(self.0.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

/// Logs to a daily-rotated file in the OS log directory; nothing secret is ever logged.
pub fn logging(dir: &Path) -> anyhow::Result<LogFile> {
    std::fs::create_dir_all(dir)?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("vitaltrends")
        .filename_suffix("log")
        .max_log_files(7)
        .build(dir)?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    Ok(LogFile(std::sync::Mutex::new(Some(guard))))
}

/// Where things live, from the OS (or the test variables `VITALTRENDS_DATA_DIR` and
/// `VITALTRENDS_CONFIG_DIR`), then the connection the settings choose.
pub async fn open_sessions(
    app: &AppHandle,
    notifier: Arc<dyn sync::Notifier>,
    starter: Starter,
) -> anyhow::Result<Sessions> {
    let data_root = match std::env::var_os("VITALTRENDS_DATA_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => dir.into(),
        None => app.path().app_data_dir()?,
    };
    let paths = Paths {
        data_root,
        settings_file: config::default_path()?,
        log_dir: app.path().app_log_dir()?,
    };
    let secrets = match std::env::var("VITALTRENDS_SECRET_STORE").as_deref() {
        Ok("insecure-file") => SecretsKind::InsecureFile,
        _ => SecretsKind::Keychain,
    };
    Ok(Sessions::open(
        paths,
        secrets,
        notifier,
        starter,
        config::Release::of_this_build(),
    )
    .await)
}
