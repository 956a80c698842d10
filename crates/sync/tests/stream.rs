//! The relay stream client against the real relay (in-process) and the simulator: events flow
//! into the store, a restart resumes from the saved cursor, and a gap turns into a catch-up and
//! then normal streaming, without a reconnect loop.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sync::events::{RecordingNotifier, SystemClock};
use sync::{EngineEvent, JobKind, MemoryStore, Schedule};
use url::Url;

async fn relay_for(sim: &whoop_sim::SimHandle, dir: &tempfile::TempDir) -> relay::RelayHandle {
    relay::start(relay::RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}", dir.path().join("relay.db").display()),
        whoop_base_url: Url::parse(&sim.base_url).unwrap(),
        client_id: "vitaltrends-demo".into(),
        client_secrets: vec!["demo-secret".into()],
        heartbeat: Duration::from_secs(1),
        poll_backstop: Duration::from_millis(200),
        ..relay::RelayConfig::default()
    })
    .await
    .expect("relay starts")
}

async fn post(base: &str, path: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null)
}

fn open_cycle(collection: &str, record: &Value) -> bool {
    collection == "cycle" && record.get("end").is_none()
}

/// Waits until the store equals WHOOP (open cycle aside), for at most `limit`.
async fn converges(engine: &sync::Engine, sim: &whoop_sim::SimHandle, limit: Duration) {
    let started = std::time::Instant::now();
    loop {
        let dump: Value = reqwest::get(format!("{}/_sim/dump", sim.base_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let export = engine.store().export_json().await.unwrap();
        let same = std::panic::catch_unwind(|| assert_same(&export, &dump, open_cycle)).is_ok();
        if same {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "the store did not converge within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_resuming_and_gaps() {
    let sim = whoop_sim::start(
        whoop_sim::SimConfig {
            rate_limit_minute: 10_000,
            webhook_retry_scale: 0.01,
            ..sim_config(40, 51)
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_for(&sim, &dir).await;
    post(
        &sim.base_url,
        "/_sim/webhook-url",
        json!({"url": format!("{}/webhooks/whoop", relay.base_url)}),
    )
    .await;

    let secrets = Arc::new(MemoryStore::default());
    let open = || {
        open_engine(
            &sim,
            Some(Url::parse(&relay.base_url).unwrap()),
            &dir,
            secrets.clone(),
            Arc::new(RecordingNotifier::default()),
            Arc::new(SystemClock),
            Schedule::default(),
        )
    };
    let engine = open().await;
    // Sign in through the relay's broker: the app never sees the client secret.
    let url = engine
        .begin_authorization("vitaltrends://oauth/whoop/callback")
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(url).send().await.unwrap();
    let callback = Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    engine.complete_authorization(&callback).await.unwrap();
    engine.sync_now().await.unwrap();

    // Live: events arrive through the stream.
    let stream = tokio::spawn(engine.clone().run_stream());
    let jobs = tokio::spawn(engine.clone().run_jobs());
    let started = std::time::Instant::now();
    while !engine.is_live() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the stream never came up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    post(&sim.base_url, "/_sim/advance", json!({"hours": 20})).await;
    converges(&engine, &sim, Duration::from_secs(15)).await;
    let cursor = engine.store().get_meta("relay_cursor").await.unwrap();
    assert!(cursor.is_some(), "the cursor is saved after applying");

    // The app is closed while WHOOP changes; on restart it resumes from its cursor.
    stream.abort();
    jobs.abort();
    drop(engine);
    post(&sim.base_url, "/_sim/advance", json!({"hours": 20})).await;
    let engine = open().await;
    let mut events = engine.subscribe();
    let stream = tokio::spawn(engine.clone().run_stream());
    let jobs = tokio::spawn(engine.clone().run_jobs());
    converges(&engine, &sim, Duration::from_secs(15)).await;
    assert_eq!(
        engine
            .store()
            .last_sync_run(false)
            .await
            .unwrap()
            .unwrap()
            .kind,
        "import"
    );

    // A cursor the relay cannot resume from (here: from another log) gets a gap: the app runs
    // a catch-up and goes on streaming.
    stream.abort();
    engine
        .store()
        .set_meta("relay_cursor", "v1.0000000000000000.1")
        .await
        .unwrap();
    let stream = tokio::spawn(engine.clone().run_stream());
    let finished = wait_for(&mut events, Duration::from_secs(20), |e| {
        matches!(
            e,
            EngineEvent::JobFinished {
                job: JobKind::CatchUp,
                ..
            }
        )
    })
    .await;
    let EngineEvent::JobFinished { error, .. } = finished else {
        unreachable!()
    };
    assert_eq!(error, None);
    post(&sim.base_url, "/_sim/advance", json!({"hours": 10})).await;
    converges(&engine, &sim, Duration::from_secs(15)).await;
    assert!(engine.is_live(), "streaming again after the gap");
    let new_cursor = engine
        .store()
        .get_meta("relay_cursor")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !new_cursor.starts_with("v1.0000000000000000."),
        "carried on from the relay's head"
    );

    stream.abort();
    jobs.abort();
}
