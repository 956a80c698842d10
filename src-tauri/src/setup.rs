//! Start-up: logging, settings, and the mode the app runs in.
//!
//! With no WHOOP configuration the app runs in demo mode: a WHOOP simulator in-process on
//! loopback with a year of data that keeps growing, so a newcomer can click Connect WHOOP,
//! authorize on the simulator's consent page in their browser, watch the import and see updates
//! land. With `VITALTRENDS_WHOOP_CLIENT_ID` set it talks to the configured WHOOP (and relay).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sync::{
    Engine, EngineOptions, InsecureFileStore, KeychainStore, MemoryStore, SecretStore, Settings,
};
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

/// Demo mode: a fresh simulator and a fresh demo database on every start (the simulator's
/// history is the same each time; its tokens are not, so nothing is kept).
async fn open_demo(app: &AppHandle, dir: &Path, options: EngineOptions) -> anyhow::Result<Core> {
    let _ = std::fs::remove_dir_all(dir);
    let sim = whoop_sim::start(
        whoop_sim::SimConfig {
            days: 365,
            seed: 42,
            ..whoop_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let settings = Settings {
        data_dir: dir.to_path_buf(),
        whoop_base_url: Url::parse(&sim.base_url)?,
        client_id: sim.client_id.clone(),
        client_secret: Some(Secret::new(whoop_sim::SimConfig::default().client_secret)),
        relay_url: None,
    };
    // Throwaway simulator tokens: memory is the right place for them.
    let engine = Engine::open(settings, Arc::new(MemoryStore::default()), options).await?;
    tauri::async_runtime::spawn(grow_demo(engine.clone(), sim.base_url.clone()));
    app.manage(DemoSim { _sim: sim });
    Ok(Core { engine, demo: true })
}

/// Keeps the simulator alive for the app's lifetime (it stops when dropped).
struct DemoSim {
    _sim: whoop_sim::SimHandle,
}

/// Demo data keeps coming: every couple of minutes a few simulated hours pass, and the changes
/// WHOOP would announce by webhook are applied as events.
async fn grow_demo(engine: Arc<Engine>, base_url: String) {
    let http = reqwest_client();
    loop {
        tokio::time::sleep(Duration::from_secs(120)).await;
        if engine.ensure_syncable().await.is_err() {
            continue;
        }
        let advanced = http
            .post(format!("{base_url}/_sim/advance"))
            .json(&serde_json::json!({ "hours": 4 }))
            .send()
            .await;
        let Ok(answer) = advanced else { continue };
        let Ok(change) = answer.json::<serde_json::Value>().await else {
            continue;
        };
        let user_id = engine
            .store()
            .profile()
            .await
            .ok()
            .flatten()
            .map(|p| p.user_id)
            .unwrap_or_default();
        for (i, event) in change["events"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let event = whoop::webhook::WebhookEvent {
                user_id,
                id: event["id"].as_str().unwrap_or_default().to_string(),
                kind: event["type"].as_str().unwrap_or_default().to_string(),
                trace_id: format!("demo-{i}"),
            };
            if let Err(e) = engine.apply_event(&event).await {
                tracing::info!(error = %e, "demo event not applied");
            }
        }
    }
}

fn reqwest_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}
