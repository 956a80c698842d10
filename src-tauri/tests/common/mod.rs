//! What the desktop's headless suites start from: the WHOOP simulator on loopback, an engine
//! over a temporary data directory pointed at it, and the system browser's part of a sign-in.

use std::path::Path;
use std::sync::Arc;

use sync::events::{RecordingNotifier, SystemClock};
use sync::{Engine, EngineOptions, MemoryStore, Schedule, Settings};
use url::Url;
use whoop::Secret;

/// A simulator with `days` of history that approves every sign-in by itself.
pub async fn sim(days: u32, seed: u64) -> whoop_sim::SimHandle {
    whoop_sim::start(
        whoop_sim::SimConfig {
            days,
            seed,
            auto_approve: true,
            ..whoop_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// An engine on `dir` for `sim`, not signed in yet (tokens in memory).
pub async fn engine(sim: &whoop_sim::SimHandle, dir: &Path) -> Arc<Engine> {
    Engine::open(
        Settings {
            data_dir: dir.to_path_buf(),
            whoop_base_url: Url::parse(&sim.base_url).unwrap(),
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
    .await
    .unwrap()
}

/// Follows the consent URL the way the system browser would and returns the deep link WHOOP
/// redirects to.
pub async fn authorize(url: &Url) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(url.clone()).send().await.unwrap();
    answer.headers()["location"].to_str().unwrap().to_string()
}
