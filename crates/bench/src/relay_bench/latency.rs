//! Webhook to applied-in-store latency: simulator → relay → SSE → engine → WHOOP (simulated) →
//! store, one event in flight at a time.
//!
//! Each event is a `POST /_sim/edit` of a workout or a recovery (alternating): the simulator
//! re-scores the record, sets its `updated_at` to the simulator's "now" (returned by the call)
//! and queues exactly one webhook before answering. The simulator does not expose per-webhook
//! send times, so the clock starts just before that control call; the webhook leaves within the
//! call. It stops when the engine announces `DataChanged` and its store holds that `updated_at`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use relay::RelayConfig;
use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sync::events::{RecordingNotifier, SystemClock};
use sync::{Engine, EngineEvent, EngineOptions, MemoryStore, Schedule, Settings};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use url::Url;
use whoop_sim::SimConfig;

use super::{
    group, RAISED_RELAY_LIMIT, RAISED_SIM_DAY, RAISED_SIM_MINUTE, REDIRECT_URI, SIM_CLIENT_SECRET,
};

/// Days of history the engine imports before the events (6 months).
const DAYS: u32 = 183;
/// Events stop being generated after this, however many were asked for.
const EVENT_BUDGET: Duration = Duration::from_secs(150);
/// An event not applied by then counts as timed out.
const PER_EVENT_TIMEOUT: Duration = Duration::from_secs(15);
const LIVE_TIMEOUT: Duration = Duration::from_secs(20);

pub struct LatencyResult {
    /// Control calls that made the simulator send a webhook.
    pub sent: usize,
    pub timed_out: usize,
    /// Per webhook type, in the order first seen.
    pub samples: Vec<(String, Vec<Duration>)>,
    /// From the first event to the last one's outcome.
    pub wall: Duration,
    pub notes: Vec<String>,
}

#[derive(Clone)]
enum Target {
    Workout(String),
    /// By cycle id, the key of both the simulator's control API and the store.
    Recovery(i64),
}

impl Target {
    fn edit_body(&self) -> Value {
        match self {
            Target::Workout(id) => json!({"collection": "workout", "id": id}),
            Target::Recovery(cycle) => json!({"collection": "recovery", "id": cycle}),
        }
    }

    /// Whether the store holds this record at `updated_at` or later (same text format, so text
    /// order is time order).
    async fn applied(&self, store: &SqlitePool, updated_at: &str) -> anyhow::Result<bool> {
        let stored: Option<String> = match self {
            Target::Workout(id) => {
                sqlx::query_scalar("SELECT updated_at FROM workout WHERE id = ?")
                    .bind(id)
                    .fetch_optional(store)
                    .await?
            }
            Target::Recovery(cycle) => {
                sqlx::query_scalar("SELECT updated_at FROM recovery WHERE cycle_id = ?")
                    .bind(cycle)
                    .fetch_optional(store)
                    .await?
            }
        };
        Ok(stored.is_some_and(|s| s.as_str() >= updated_at))
    }
}

pub async fn run(n: usize, latency_ms: u64) -> anyhow::Result<LatencyResult> {
    let sim = whoop_sim::start(
        SimConfig {
            days: DAYS,
            seed: 2026,
            latency_ms,
            auto_approve: true,
            rate_limit_minute: RAISED_SIM_MINUTE,
            rate_limit_day: RAISED_SIM_DAY,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let relay_dir = tempfile::tempdir()?;
    let relay = relay::start(RelayConfig {
        listen: "127.0.0.1:0".parse()?,
        database_url: format!("sqlite://{}", relay_dir.path().join("relay.db").display()),
        whoop_base_url: Url::parse(&sim.base_url)?,
        client_id: sim.client_id.clone(),
        client_secrets: vec![SIM_CLIENT_SECRET.into()],
        per_ip_per_minute: RAISED_RELAY_LIMIT,
        global_per_second: RAISED_RELAY_LIMIT,
        ..RelayConfig::default()
    })
    .await
    .context("starting the relay")?;

    let data_dir = tempfile::tempdir()?;
    let engine = Engine::open(
        Settings {
            data_dir: data_dir.path().to_path_buf(),
            whoop_base_url: Url::parse(&sim.base_url)?,
            client_id: sim.client_id.clone(),
            client_secret: None,
            relay_url: Some(Url::parse(&relay.base_url)?),
        },
        Arc::new(MemoryStore::default()),
        EngineOptions {
            notifier: Arc::new(RecordingNotifier::default()),
            clock: Arc::new(SystemClock),
            schedule: Schedule::default(),
        },
    )
    .await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;

    // Sign in through the relay's broker (which binds the device), then import.
    let url = engine.begin_authorization(REDIRECT_URI)?;
    let answer = http.get(url).send().await?;
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow::anyhow!("no redirect from the consent page"))?
        .to_string();
    engine
        .complete_authorization(&Url::parse(&location)?)
        .await
        .context("signing in through the relay's broker")?;
    let import_started = Instant::now();
    engine.sync_now().await.context("importing")?;
    let import_wall = import_started.elapsed();
    let records = engine.store().counts().await?.total();

    let stream = tokio::spawn(Arc::clone(&engine).run_stream());
    let live_by = Instant::now() + LIVE_TIMEOUT;
    while !engine.is_live() {
        anyhow::ensure!(
            Instant::now() < live_by,
            "the engine's relay stream did not come up within {LIVE_TIMEOUT:?} \
             (no device credential from the broker?)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let set = http
        .post(format!("{}/_sim/webhook-url", sim.base_url))
        .json(&json!({"url": format!("{}/webhooks/whoop", relay.base_url)}))
        .send()
        .await?;
    anyhow::ensure!(
        set.status().is_success(),
        "setting the simulator's webhook URL failed"
    );

    let dump: Value = http
        .get(format!("{}/_sim/dump", sim.base_url))
        .send()
        .await?
        .json()
        .await?;
    let workouts: Vec<Target> = dump["workout"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["id"].as_str())
        .map(|id| Target::Workout(id.to_string()))
        .collect();
    let recoveries: Vec<Target> = dump["recovery"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["cycle_id"].as_i64())
        .map(Target::Recovery)
        .collect();
    anyhow::ensure!(
        !workouts.is_empty() && !recoveries.is_empty(),
        "the simulator has no workouts or recoveries to edit"
    );

    let store = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(data_dir.path().join("vitaltrends.db"))
                .read_only(true),
        )
        .await
        .context("opening the engine's store read-only")?;

    let mut events = engine.subscribe();
    let mut samples: Vec<(String, Vec<Duration>)> = Vec::new();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let (mut sent, mut timed_out, mut refused) = (0usize, 0usize, 0usize);
    let edit_url = format!("{}/_sim/edit", sim.base_url);
    let started = Instant::now();
    let budget_end = started + EVENT_BUDGET;
    for i in 0..n {
        if Instant::now() >= budget_end {
            break;
        }
        let target = if i % 2 == 0 {
            &workouts[(i / 2) % workouts.len()]
        } else {
            &recoveries[(i / 2) % recoveries.len()]
        };
        // Whatever the previous event left behind is not news about this one.
        loop {
            match events.try_recv() {
                Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => anyhow::bail!("the engine's event channel closed"),
            }
        }
        let t0 = Instant::now();
        let answer = http
            .post(&edit_url)
            .json(&target.edit_body())
            .send()
            .await?;
        if !answer.status().is_success() {
            // Deleted by the simulator's own timeline meanwhile; try the next record.
            refused += 1;
            continue;
        }
        let summary: Value = answer.json().await?;
        let updated_at = summary["now"].as_str().unwrap_or_default().to_string();
        let kind = summary["events"][0]["type"]
            .as_str()
            .unwrap_or("unknown")
            .to_string();
        sent += 1;
        let deadline = tokio::time::Instant::from_std(t0 + PER_EVENT_TIMEOUT);
        let applied_at = loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Ok(EngineEvent::DataChanged)) | Ok(Err(RecvError::Lagged(_))) => {
                    let seen = Instant::now();
                    if target.applied(&store, &updated_at).await? {
                        break Some(seen);
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(RecvError::Closed)) => anyhow::bail!("the engine's event channel closed"),
                Err(_) => break None,
            }
        };
        match applied_at {
            Some(t) => {
                let slot = *by_kind.entry(kind.clone()).or_insert_with(|| {
                    samples.push((kind.clone(), Vec::new()));
                    samples.len() - 1
                });
                samples[slot].1.push(t - t0);
            }
            None => timed_out += 1,
        }
    }
    let wall = started.elapsed();

    stream.abort();
    let _ = stream.await;
    store.close().await;
    relay.shutdown().await;
    drop(sim);

    let mut notes = vec![format!(
        "Latency setup: the engine signed in through the relay's broker and imported {DAYS} days \
         ({} records) in {:.1} s before the events; events alternate workout and recovery edits.",
        group(records),
        import_wall.as_secs_f64()
    )];
    if sent < n {
        notes.push(format!(
            "Latency: {} of {} events were sent within the {} s budget{}.",
            group(sent as u64),
            group(n as u64),
            EVENT_BUDGET.as_secs(),
            if refused > 0 {
                format!(" ({refused} edits refused by the simulator)")
            } else {
                String::new()
            }
        ));
    }
    Ok(LatencyResult {
        sent,
        timed_out,
        samples,
        wall,
        notes,
    })
}
