//! Start-up: logging, settings, and the mode the app runs in.
//!
//! With no WHOOP configuration the app runs in demo mode: a WHOOP simulator and the relay
//! in-process on loopback, with a year of data that keeps growing, so a newcomer can click
//! Connect WHOOP, authorize on the simulator's consent page in their browser, watch the import
//! and see webhooks land. With `VITALTRENDS_WHOOP_CLIENT_ID` set it talks to the configured WHOOP (and relay).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sync::{Engine, EngineOptions, InsecureFileStore, KeychainStore, SecretStore, Settings};
use tauri::{AppHandle, Manager};
use url::Url;
use whoop::Secret;

use crate::core::Core;

/// Logs to a daily-rotated file in the OS log directory; nothing secret is ever logged.
pub fn logging(dir: &Path) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
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
    Ok(guard)
}

pub async fn open_core(app: &AppHandle, notifier: Arc<dyn sync::Notifier>) -> anyhow::Result<Core> {
    let data_dir = match std::env::var_os("VITALTRENDS_DATA_DIR") {
        Some(dir) => dir.into(),
        None => app.path().app_data_dir()?,
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let options = EngineOptions {
        notifier,
        ..EngineOptions::default()
    };

    let Some(client_id) = env("VITALTRENDS_WHOOP_CLIENT_ID") else {
        return open_demo(app, &data_dir.join("demo"), options).await;
    };
    let base =
        env("VITALTRENDS_WHOOP_BASE_URL").unwrap_or_else(|| whoop::PRODUCTION_BASE_URL.into());
    let settings = Settings {
        data_dir: data_dir.clone(),
        whoop_base_url: Url::parse(&base)?,
        client_id,
        client_secret: env("VITALTRENDS_WHOOP_CLIENT_SECRET").map(Secret::new),
        relay_url: env("VITALTRENDS_RELAY_URL")
            .map(|u| Url::parse(&u))
            .transpose()?,
    };
    let secrets: Arc<dyn SecretStore> = match env("VITALTRENDS_SECRET_STORE").as_deref() {
        Some("insecure-file") => Arc::new(InsecureFileStore::in_dir(&data_dir)),
        _ => Arc::new(KeychainStore::new(&data_dir.display().to_string())),
    };
    let engine = Engine::open(settings, secrets, options).await?;
    Ok(Core {
        engine,
        demo: false,
    })
}

/// Demo mode: the simulator and relay in-process (see `demo`), kept alive for the app's lifetime.
async fn open_demo(app: &AppHandle, dir: &Path, options: EngineOptions) -> anyhow::Result<Core> {
    let demo = crate::demo::start(dir, options, crate::demo::sim_config()).await?;
    let engine = demo.engine.clone();
    tauri::async_runtime::spawn(crate::demo::grow(
        engine.clone(),
        demo.sim.base_url.clone(),
        Duration::from_secs(120),
    ));
    app.manage(DemoServices { _demo: demo });
    Ok(Core { engine, demo: true })
}

/// Keeps the demo's simulator and relay running (they stop when dropped).
struct DemoServices {
    _demo: crate::demo::Demo,
}
