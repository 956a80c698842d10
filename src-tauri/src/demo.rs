//! Demo mode, without a desktop around it: the WHOOP simulator and the relay run in-process on
//! loopback, wired the way production is. The simulator's signed webhooks go to the relay, the
//! relay brokers the sign-in (it alone holds the simulator's client secret) and streams events to
//! the engine. A newcomer sees exactly what a WHOOP member sees, webhooks included.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sync::{Engine, EngineOptions, MemoryStore, Settings};
use url::Url;

/// How much simulated time passes at each step of `grow`: enough for a new cycle (sleep,
/// recovery, a workout now and then) every couple of steps.
const HOURS_PER_STEP: f64 = 4.0;

/// The demo's engine and the services it talks to. Dropping it stops the simulator; the relay
/// stops with the process.
pub struct Demo {
    pub engine: Arc<Engine>,
    pub sim: whoop_sim::SimHandle,
    pub relay: relay::RelayHandle,
}

/// The demo's WHOOP: a year of history and WHOOP's own rate limits. Last night is not held
/// back as still being scored (the simulator's default for tests), so a newcomer's first screen
/// shows numbers unless the simulated person is asleep or just woke up right now.
pub fn sim_config() -> whoop_sim::SimConfig {
    whoop_sim::SimConfig {
        days: 365,
        seed: 42,
        newest_night_pending: false,
        ..whoop_sim::SimConfig::default()
    }
}

/// Starts a fresh simulator and relay, and opens a fresh demo database in `dir`. Nothing is
/// kept between starts: the simulator's history is the same each time, its tokens are not.
pub async fn start(
    dir: &Path,
    options: EngineOptions,
    sim_config: whoop_sim::SimConfig,
) -> anyhow::Result<Demo> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let client_secret = sim_config.client_secret.clone();
    let sim = whoop_sim::start(sim_config, loopback()).await?;
    let relay = relay::start(relay::RelayConfig {
        listen: loopback(),
        database_url: format!("sqlite://{}", dir.join("relay.db").display()),
        whoop_base_url: Url::parse(&sim.base_url)?,
        client_id: sim.client_id.clone(),
        client_secrets: vec![client_secret],
        ..relay::RelayConfig::default()
    })
    .await?;
    post_json(
        &sim.base_url,
        "/_sim/webhook-url",
        serde_json::json!({ "url": format!("{}/webhooks/whoop", relay.base_url) }),
    )
    .await?;

    let settings = Settings {
        data_dir: dir.to_path_buf(),
        whoop_base_url: Url::parse(&sim.base_url)?,
        client_id: sim.client_id.clone(),
        // The relay brokers every token request, as in production.
        client_secret: None,
        relay_url: Some(Url::parse(&relay.base_url)?),
    };
    // Throwaway simulator tokens: memory is the right place for them.
    let engine = Engine::open(settings, Arc::new(MemoryStore::default()), options).await?;
    Ok(Demo { engine, sim, relay })
}

/// Demo data keeps coming: every `every`, a few simulated hours pass at WHOOP, which announces
/// the new records by signed webhook to the relay, which streams them to the engine. Time only
/// moves while someone is connected, so an idle demo does not run far ahead of the clock.
pub async fn grow(engine: Arc<Engine>, sim_base_url: String, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if engine.ensure_syncable().await.is_err() {
            continue;
        }
        let advanced = post_json(
            &sim_base_url,
            "/_sim/advance",
            serde_json::json!({ "hours": HOURS_PER_STEP }),
        )
        .await;
        if let Err(e) = advanced {
            tracing::info!(error = %e, "demo time did not advance");
        }
    }
}

fn loopback() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn post_json(base: &str, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    http.post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}
