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
    let engine = Engine::open(
        Settings {
            data_dir,
            whoop_base_url: Url::parse(whoop_base_url)?,
            client_id: "vitaltrends-demo".into(),
            client_secret: Some(Secret::new("demo-secret")),
            relay_url: None,
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
