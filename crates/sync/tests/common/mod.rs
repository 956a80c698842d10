//! A test host for the engine "without a desktop around it": a temporary data directory, tokens
//! in memory, notifications recorded, and the WHOOP simulator on a loopback port.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sync::events::{Clock, ManualClock, RecordingNotifier, SystemClock};
use sync::{Engine, EngineEvent, EngineOptions, MemoryStore, Schedule, SecretStore, Settings};
use url::Url;
use whoop::Secret;
use whoop_sim::{SimConfig, SimHandle};

pub struct Host {
    pub sim: SimHandle,
    pub engine: Arc<Engine>,
    pub notifier: Arc<RecordingNotifier>,
    pub secrets: Arc<MemoryStore>,
    pub dir: tempfile::TempDir,
}

/// Follows the authorization URL through the simulator's auto-approving consent page, the way
/// the browser and the deep link would deliver the redirect, and completes the sign-in.
pub async fn sign_in(engine: &Engine) -> sync::Result<whoop::Profile> {
    let url = engine
        .begin_authorization("vitaltrends://oauth/whoop/callback")
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(url).send().await.unwrap();
    assert!(answer.status().is_redirection(), "{}", answer.status());
    let callback = Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    engine.complete_authorization(&callback).await
}

/// Requests a simulator's `/_sim/stats` counts at data endpoints (everything but OAuth).
pub fn data_requests(stats: &Value) -> u64 {
    stats["requests"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "auth" && k.as_str() != "token")
        .map(|(_, v)| v.as_u64().unwrap_or(0))
        .sum()
}

/// POSTs to the simulator's control API and returns its JSON answer.
pub async fn sim_post(base_url: &str, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base_url}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

/// The real relay in-process, in front of `whoop` (the simulator or a stand-in), with quick
/// heartbeats so streams notice things fast.
pub async fn relay_to(whoop: Url, dir: &tempfile::TempDir) -> relay::RelayHandle {
    relay_with(whoop, dir, None).await
}

/// The same relay, sharing WHOOP's quota out among desktops when `quota` is set.
pub async fn relay_with(
    whoop: Url,
    dir: &tempfile::TempDir,
    quota: Option<relay::QuotaConfig>,
) -> relay::RelayHandle {
    relay::start(relay::RelayConfig {
        quota,
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}", dir.path().join("relay.db").display()),
        whoop_base_url: whoop,
        client_id: "vitaltrends-demo".into(),
        client_secrets: vec!["demo-secret".into()],
        heartbeat: Duration::from_secs(1),
        poll_backstop: Duration::from_millis(200),
        ..relay::RelayConfig::default()
    })
    .await
    .expect("relay starts")
}

pub async fn relay_for(sim: &SimHandle, dir: &tempfile::TempDir) -> relay::RelayHandle {
    relay_to(Url::parse(&sim.base_url).unwrap(), dir).await
}

pub fn sim_config(days: u32, seed: u64) -> SimConfig {
    SimConfig {
        days,
        seed,
        auto_approve: true,
        ..SimConfig::default()
    }
}

pub async fn host(config: SimConfig) -> Host {
    host_with(config, Arc::new(SystemClock), Schedule::default()).await
}

pub async fn host_with(config: SimConfig, clock: Arc<dyn Clock>, schedule: Schedule) -> Host {
    let sim = whoop_sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemoryStore::default());
    let notifier = Arc::new(RecordingNotifier::default());
    let engine = open_engine(
        &sim,
        None,
        &dir,
        secrets.clone(),
        notifier.clone(),
        clock,
        schedule,
    )
    .await;
    Host {
        sim,
        engine,
        notifier,
        secrets,
        dir,
    }
}

pub async fn open_engine(
    sim: &SimHandle,
    relay_url: Option<Url>,
    dir: &tempfile::TempDir,
    secrets: Arc<dyn SecretStore>,
    notifier: Arc<RecordingNotifier>,
    clock: Arc<dyn Clock>,
    schedule: Schedule,
) -> Arc<Engine> {
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        whoop_base_url: Url::parse(&sim.base_url).unwrap(),
        client_id: "vitaltrends-demo".into(),
        client_secret: Some(Secret::new("demo-secret")),
        relay_url,
    };
    Engine::open(
        settings,
        secrets,
        EngineOptions {
            notifier,
            clock,
            schedule,
        },
    )
    .await
    .expect("engine opens")
}

pub fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(chrono::Utc::now()))
}

impl Host {
    /// Connects through the simulator's auto-approving consent page, the way the browser and
    /// the deep link would deliver the redirect.
    pub async fn connect(&self) {
        sign_in(&self.engine).await.unwrap();
    }

    pub async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.sim.base_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        sim_post(&self.sim.base_url, path, body).await
    }

    pub async fn dump(&self) -> Value {
        self.get("/_sim/dump").await
    }

    pub async fn stats(&self) -> Value {
        self.get("/_sim/stats").await
    }

    pub async fn reset_stats(&self) {
        self.post("/_sim/reset-stats", serde_json::json!({})).await;
    }

    /// Requests made to data endpoints (everything but OAuth).
    pub async fn data_requests(&self) -> u64 {
        data_requests(&self.stats().await)
    }

    pub async fn collection_requests(&self, collection: &str) -> u64 {
        self.stats().await["requests"][format!("{collection}.collection")]
            .as_u64()
            .unwrap_or(0)
    }

    pub async fn export(&self) -> Value {
        self.engine.store().export_json().await.unwrap()
    }
}

pub fn key_of(collection: &str, record: &Value) -> String {
    let field = if collection == "recovery" {
        "cycle_id"
    } else {
        "id"
    };
    match &record[field] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn by_key(collection: &str, records: &Value) -> BTreeMap<String, Value> {
    records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (key_of(collection, r), r.clone()))
        .collect()
}

/// Asserts the store holds exactly WHOOP's records, except those `skip` excludes.
pub fn assert_same(export: &Value, dump: &Value, skip: impl Fn(&str, &Value) -> bool) {
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        let want: BTreeMap<_, _> = by_key(collection, &dump[collection])
            .into_iter()
            .filter(|(_, r)| !skip(collection, r))
            .collect();
        let got: BTreeMap<_, _> = by_key(collection, &export[collection])
            .into_iter()
            .filter(|(_, r)| !skip(collection, r))
            .collect();
        let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
        assert!(missing.is_empty(), "{collection}: missing {missing:?}");
        assert!(
            extra.is_empty(),
            "{collection}: should be gone {:?}",
            extra.iter().map(|k| &got[*k]).collect::<Vec<_>>()
        );
        for (key, record) in &want {
            assert_eq!(&got[key], record, "{collection} {key} differs");
        }
    }
}

/// For `wait_for`: the end of a job of this kind.
pub fn finished(job: sync::JobKind) -> impl Fn(&EngineEvent) -> bool {
    move |e| matches!(e, EngineEvent::JobFinished { job: j, .. } if *j == job)
}

/// The engine has finished a job and everything that follows it (its last-sync time, its
/// retry, its notification): `JobFinished` goes out before those, `idle` after.
pub fn idle(e: &EngineEvent) -> bool {
    matches!(e, EngineEvent::StateChanged { state } if state == "idle")
}

/// Waits for an event matching `pred`, for at most `limit`.
pub async fn wait_for(
    events: &mut tokio::sync::broadcast::Receiver<EngineEvent>,
    limit: Duration,
    pred: impl Fn(&EngineEvent) -> bool,
) -> EngineEvent {
    tokio::time::timeout(limit, async {
        loop {
            match events.recv().await {
                Ok(event) if pred(&event) => return event,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event channel: {e}"),
            }
        }
    })
    .await
    .expect("the event arrived in time")
}
