//! A VitalTrends engine signed in to a simulated WHOOP: where every benchmark that imports a
//! history starts (the real engine, the simulator's auto-approved consent page, tokens in memory).

use std::path::PathBuf;
use std::sync::Arc;

use sync::events::{RecordingNotifier, SystemClock};
use sync::{Engine, EngineOptions, MemoryStore, Schedule, Settings};
use url::Url;
use whoop::Secret;

/// Opens an engine on `data_dir` for the simulator at `whoop_base_url` (started with
/// `auto_approve`) and completes its sign-in, as a person pressing Connect WHOOP would.
pub async fn signed_in_engine(
    whoop_base_url: &str,
    data_dir: PathBuf,
) -> anyhow::Result<Arc<Engine>> {
    signed_in_through(whoop_base_url, None, data_dir).await
}

/// The same, in service mode when `relay_url` is given: tokens through the relay's broker and
/// WHOOP requests under its quota coordinator.
pub async fn signed_in_through(
    whoop_base_url: &str,
    relay_url: Option<&str>,
    data_dir: PathBuf,
) -> anyhow::Result<Arc<Engine>> {
    let engine = Engine::open(
        Settings {
            data_dir,
            whoop_base_url: Url::parse(whoop_base_url)?,
            client_id: "vitaltrends-demo".into(),
            client_secret: Some(Secret::new("demo-secret")),
            relay_url: relay_url.map(Url::parse).transpose()?,
        },
        Arc::new(MemoryStore::default()),
        EngineOptions {
            notifier: Arc::new(RecordingNotifier::default()),
            clock: Arc::new(SystemClock),
            schedule: Schedule::default(),
        },
    )
    .await?;
    let url = engine.begin_authorization("vitaltrends://oauth/whoop/callback")?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let answer = http.get(url).send().await?;
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow::anyhow!("no redirect from the consent page"))?;
    engine
        .complete_authorization(&Url::parse(location)?)
        .await?;
    Ok(engine)
}

/// An engine whose store holds `days` of simulated history, imported without rate limits (the
/// import's speed is not what the caller measures), and the number of records imported.
pub async fn imported_history(data_dir: PathBuf, days: u32) -> anyhow::Result<(Arc<Engine>, u64)> {
    let sim = whoop_sim::start(
        whoop_sim::SimConfig {
            days,
            seed: 2026,
            auto_approve: true,
            rate_limit_minute: 1_000_000,
            rate_limit_day: 10_000_000,
            ..whoop_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let engine = signed_in_engine(&sim.base_url, data_dir).await?;
    engine.sync_now().await?;
    let stats: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/_sim/stats", sim.base_url))
        .send()
        .await?
        .json()
        .await?;
    let records = ["cycle", "sleep", "recovery", "workout"]
        .iter()
        .map(|c| stats["records"][c].as_u64().unwrap_or(0))
        .sum();
    Ok((engine, records))
}
