//! Service mode under the relay's quota coordinator: the engine asks for leases before it calls
//! WHOOP, ranks an import's pages (last 30 days, six months, older) and live fetches, and tells
//! the person when it waits for its turn.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use sync::events::{RecordingNotifier, SystemClock};
use sync::{Engine, MemoryStore, Schedule};
use url::Url;
use whoop_sim::SimHandle;

async fn service_engine(
    sim: &SimHandle,
    relay: &relay::RelayHandle,
    dir: &tempfile::TempDir,
) -> Arc<Engine> {
    let engine = open_engine(
        sim,
        Some(Url::parse(&relay.base_url).unwrap()),
        dir,
        Arc::new(MemoryStore::default()),
        Arc::new(RecordingNotifier::default()),
        Arc::new(SystemClock),
        Schedule::default(),
    )
    .await;
    sign_in(&engine).await.unwrap();
    engine
}

async fn granted(relay: &relay::RelayHandle, priority: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", relay.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("relay_quota_granted_total{{priority=\"{priority}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {text}"))
}

#[tokio::test]
async fn an_import_spends_leases_newest_first_and_live_fetches_rank_first() {
    let sim = whoop_sim::start(
        whoop_sim::SimConfig {
            rate_limit_minute: 10_000,
            webhook_retry_scale: 0.01,
            ..sim_config(400, 81)
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_with(
        Url::parse(&sim.base_url).unwrap(),
        &dir,
        Some(relay::QuotaConfig {
            per_minute: 2_000,
            per_day: 100_000,
            time_scale: 1.0,
        }),
    )
    .await;
    sim_post(
        &sim.base_url,
        "/_sim/webhook-url",
        json!({"url": format!("{}/webhooks/whoop", relay.base_url)}),
    )
    .await;
    let engine = service_engine(&sim, &relay, &dir).await;
    // The relay's own request while binding the device (whose profile this is) ranks live.
    let signed_in_live = granted(&relay, "live").await;
    assert_eq!(signed_in_live, 1);
    sim_post(&sim.base_url, "/_sim/reset-stats", json!({})).await;
    engine.sync_now().await.unwrap();

    // Every page was paid for with a lease, ranked by how far back the import had read.
    let (recent, months, history) = (
        granted(&relay, "recent").await,
        granted(&relay, "months").await,
        granted(&relay, "history").await,
    );
    let stats: serde_json::Value = reqwest::get(format!("{}/_sim/stats", sim.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = data_requests(&stats);
    assert!(
        recent > 0 && months > 0 && history > 0,
        "{recent} {months} {history}"
    );
    assert!(
        recent + months + history >= sent,
        "{sent} requests sent, {} granted",
        recent + months + history
    );
    assert_eq!(granted(&relay, "live").await, signed_in_live);

    // Fetches for webhook events ask at the live level.
    let stream = tokio::spawn(engine.clone().run_stream());
    let jobs = tokio::spawn(engine.clone().run_jobs());
    let started = std::time::Instant::now();
    while !engine.is_live() {
        assert!(started.elapsed() < Duration::from_secs(10), "no stream");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sim_post(&sim.base_url, "/_sim/advance", json!({"hours": 20})).await;
    let started = std::time::Instant::now();
    while granted(&relay, "live").await == signed_in_live {
        assert!(started.elapsed() < Duration::from_secs(15), "no live lease");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stream.abort();
    jobs.abort();
}

#[tokio::test]
async fn waiting_for_a_turn_is_said_on_the_card() {
    let sim = whoop_sim::start(sim_config(400, 82), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Ten requests a minute for everyone: the import's share (8) is gone after its first pages.
    let relay = relay_with(
        Url::parse(&sim.base_url).unwrap(),
        &dir,
        Some(relay::QuotaConfig {
            per_minute: 10,
            per_day: 100_000,
            time_scale: 1.0,
        }),
    )
    .await;
    let engine = service_engine(&sim, &relay, &dir).await;
    let mut events = engine.subscribe();
    let import = tokio::spawn({
        let engine = engine.clone();
        async move { engine.sync_now().await }
    });
    // A window learns of the wait when it starts (it re-reads the status on every event).
    wait_for(&mut events, Duration::from_secs(20), |e| {
        matches!(e, sync::EngineEvent::QuotaWait { waiting: true })
    })
    .await;
    let started = std::time::Instant::now();
    let message = loop {
        let status = engine.status().await.unwrap();
        if let Some(message) = status.quota_wait {
            break message;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never said it waits: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        message.starts_with("Queued: many people are importing right now."),
        "{message}"
    );
    assert!(!import.is_finished(), "the import waits for its turn");
    import.abort();
}
