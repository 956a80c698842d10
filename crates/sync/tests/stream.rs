//! The relay stream client against the real relay (in-process) and the simulator: events flow
//! into the store, a restart resumes from the saved cursor, and a gap turns into a catch-up and
//! then normal streaming, without a reconnect loop.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sync::events::{RecordingNotifier, SystemClock};
use sync::{EngineEvent, JobKind, MemoryStore, Schedule, SecretStore};
use url::Url;

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
        // The simulator closes a cycle when the next sleep starts, but announces nothing until
        // that sleep is over; a cycle closed by a sleep still in progress is compared then.
        let newest_sleep_end = dump["sleep"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["end"].as_str().map(str::to_owned))
            .max()
            .unwrap_or_default();
        let unannounced = |collection: &str, record: &Value| {
            open_cycle(collection, record)
                || (collection == "cycle"
                    && record["end"]
                        .as_str()
                        .is_some_and(|end| end > newest_sleep_end.as_str()))
        };
        let same = std::panic::catch_unwind(|| assert_same(&export, &dump, unannounced)).is_ok();
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
    sim_post(
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
    sim_post(&sim.base_url, "/_sim/advance", json!({"hours": 20})).await;
    converges(&engine, &sim, Duration::from_secs(15)).await;
    let cursor = engine.store().get_meta("relay_cursor").await.unwrap();
    assert!(cursor.is_some(), "the cursor is saved after applying");

    // The app is closed while WHOOP changes; on restart it resumes from its cursor.
    stream.abort();
    jobs.abort();
    drop(engine);
    sim_post(&sim.base_url, "/_sim/advance", json!({"hours": 20})).await;
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
    sim_post(&sim.base_url, "/_sim/advance", json!({"hours": 10})).await;
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

/// A simulator whose webhooks go to a real relay, and an engine signed in through the relay's
/// broker and imported, with its stream and job runner not started yet.
struct Relayed {
    sim: whoop_sim::SimHandle,
    relay: relay::RelayHandle,
    dir: tempfile::TempDir,
    secrets: Arc<MemoryStore>,
    schedule: Schedule,
}

impl Relayed {
    async fn start(days: u32, seed: u64, schedule: Schedule) -> (Relayed, Arc<sync::Engine>) {
        let sim = whoop_sim::start(
            whoop_sim::SimConfig {
                rate_limit_minute: 10_000,
                webhook_retry_scale: 0.01,
                ..sim_config(days, seed)
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let relay = relay_for(&sim, &dir).await;
        sim_post(
            &sim.base_url,
            "/_sim/webhook-url",
            json!({"url": format!("{}/webhooks/whoop", relay.base_url)}),
        )
        .await;
        let relayed = Relayed {
            sim,
            relay,
            dir,
            secrets: Arc::new(MemoryStore::default()),
            schedule,
        };
        let engine = relayed.open().await;
        relayed.sign_in(&engine).await;
        engine.sync_now().await.unwrap();
        (relayed, engine)
    }

    async fn open(&self) -> Arc<sync::Engine> {
        open_engine(
            &self.sim,
            Some(Url::parse(&self.relay.base_url).unwrap()),
            &self.dir,
            self.secrets.clone(),
            Arc::new(RecordingNotifier::default()),
            Arc::new(SystemClock),
            self.schedule.clone(),
        )
        .await
    }

    /// Signs in through the relay's broker (which hands out a new device credential).
    async fn sign_in(&self, engine: &sync::Engine) {
        sign_in(engine).await.unwrap();
    }

    async fn sim_post(&self, path: &str, body: Value) -> Value {
        sim_post(&self.sim.base_url, path, body).await
    }

    async fn dump(&self) -> Value {
        reqwest::get(format!("{}/_sim/dump", self.sim.base_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A counter from the relay's `/metrics`.
    async fn relay_metric(&self, name: &str) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.relay.base_url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the relay's metrics"))
    }
}

async fn wait_live(engine: &sync::Engine) {
    let started = std::time::Instant::now();
    while !engine.is_live() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the stream never came up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `check` holds, for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The record `id` of `collection` in an export or dump.
fn record<'a>(records: &'a Value, collection: &str, id: &str) -> Option<&'a Value> {
    records[collection]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| key_of(collection, r) == id)
}

/// Scored records of `collection` from the last week, newest first.
fn recent_ids(dump: &Value, collection: &str, filter: impl Fn(&Value) -> bool) -> Vec<String> {
    dump[collection]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["score_state"] == "SCORED" && filter(r))
        .take(7)
        .map(|r| key_of(collection, r))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unreadable_or_failing_event_does_not_hold_back_the_ones_after_it() {
    let schedule = Schedule {
        event_retry_after: Duration::from_millis(200),
        ..Schedule::default()
    };
    let (world, engine) = Relayed::start(30, 61, schedule).await;
    let stream = tokio::spawn(engine.clone().run_stream());
    wait_live(&engine).await;
    let dump = world.dump().await;
    let workouts = recent_ids(&dump, "workout", |_| true);
    let sleeps = recent_ids(&dump, "sleep", |s| s["nap"] == false);
    assert!(
        workouts.len() >= 3 && !sleeps.is_empty(),
        "enough recent records"
    );
    let (unreadable, gone, later) = (&workouts[0], &workouts[1], &workouts[2]);
    let failing = &sleeps[0];
    let cursor_before = engine.store().get_meta("relay_cursor").await.unwrap();

    // A record WHOOP sends but nobody can read: the event is skipped.
    world
        .sim_post(
            "/_sim/record-faults",
            json!({"id": unreadable, "fault": "malformed"}),
        )
        .await;
    world
        .sim_post(
            "/_sim/edit",
            json!({"collection": "workout", "id": unreadable}),
        )
        .await;
    // WHOOP fails on a sleep for a while (5xx after every client retry): set aside, retried.
    world
        .sim_post(
            "/_sim/record-faults",
            json!({"id": failing, "fault": "server_error"}),
        )
        .await;
    world
        .sim_post("/_sim/edit", json!({"collection": "sleep", "id": failing}))
        .await;
    // A workout deleted at WHOOP whose deletion webhook was lost, then an update for it: the
    // fetch answers 404, which deletes it here.
    world
        .sim_post("/_sim/webhook-faults", json!({"drop_next": 1}))
        .await;
    world
        .sim_post("/_sim/delete", json!({"collection": "workout", "id": gone}))
        .await;
    world
        .sim_post(
            "/_sim/webhook",
            json!({"type": "workout.updated", "id": gone}),
        )
        .await;
    // And an ordinary change after all of them.
    world
        .sim_post("/_sim/edit", json!({"collection": "workout", "id": later}))
        .await;

    let want = world.dump().await;
    let want_later = record(&want, "workout", later).unwrap().clone();
    eventually(
        Duration::from_secs(90),
        "the later event applying",
        || async {
            let export = engine.store().export_json().await.unwrap();
            record(&export, "workout", later) == Some(&want_later)
                && record(&export, "workout", gone).is_none()
        },
    )
    .await;
    let status = engine.status().await.unwrap();
    assert!(status.skipped_events >= 1, "{status:?}");
    assert!(
        status
            .last_skipped_events
            .iter()
            .any(|s| &s.id == unreadable),
        "{:?}",
        status.last_skipped_events
    );
    assert!(
        status.pending_events >= 1,
        "the failing sleep waits: {status:?}"
    );
    assert_ne!(
        engine.store().get_meta("relay_cursor").await.unwrap(),
        cursor_before,
        "the cursor moved on"
    );

    // WHOOP recovers: the pending events apply by themselves.
    world
        .sim_post("/_sim/record-faults", json!({"id": failing, "fault": null}))
        .await;
    eventually(
        Duration::from_secs(60),
        "the pending events applying",
        || async { engine.status().await.unwrap().pending_events == 0 },
    )
    .await;
    let export = engine.store().export_json().await.unwrap();
    let want = world.dump().await;
    assert_eq!(
        record(&export, "sleep", failing),
        record(&want, "sleep", failing)
    );

    // The skipped record reads again; the next catch-up brings it, and the store is WHOOP's.
    world
        .sim_post(
            "/_sim/record-faults",
            json!({"id": unreadable, "fault": null}),
        )
        .await;
    engine.sync_now().await.unwrap();
    converges(&engine, &world.sim, Duration::from_secs(15)).await;
    assert!(engine.is_live());
    stream.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_acknowledged_just_before_the_app_died_is_caught_up_at_the_next_start() {
    let (world, engine) = Relayed::start(30, 62, Schedule::default()).await;
    let stream = tokio::spawn(engine.clone().run_stream());
    wait_live(&engine).await;
    stream.abort();

    // WHOOP changes while nothing reaches the relay: only a catch-up can find these.
    world
        .sim_post("/_sim/webhook-url", json!({"url": null}))
        .await;
    world.sim_post("/_sim/advance", json!({"hours": 20})).await;
    world
        .sim_post(
            "/_sim/webhook-url",
            json!({"url": format!("{}/webhooks/whoop", world.relay.base_url)}),
        )
        .await;

    // The relay answers a cursor it cannot resume from with a gap. The app acknowledges it and
    // dies before its catch-up ran (no job runner here).
    let bogus = "v1.0000000000000000.1";
    engine
        .store()
        .set_meta("relay_cursor", bogus)
        .await
        .unwrap();
    let stream = tokio::spawn(engine.clone().run_stream());
    eventually(
        Duration::from_secs(15),
        "the gap being acknowledged",
        || async {
            engine
                .store()
                .get_meta("relay_cursor")
                .await
                .unwrap()
                .as_deref()
                != Some(bogus)
        },
    )
    .await;
    stream.abort();
    let _ = stream.await;
    drop(engine);

    // Next start on the same data directory.
    let engine = world.open().await;
    engine.on_start().await.unwrap();
    let stream = tokio::spawn(engine.clone().run_stream());
    let jobs = tokio::spawn(engine.clone().run_jobs());
    converges(&engine, &world.sim, Duration::from_secs(20)).await;
    eventually(
        Duration::from_secs(10),
        "the pending catch-up clearing",
        || async {
            engine
                .store()
                .get_meta("pending_catch_up")
                .await
                .unwrap()
                .is_none()
        },
    )
    .await;
    stream.abort();
    jobs.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_the_relay_forgot_stops_live_updates_visibly_until_reconnect() {
    let (world, engine) = Relayed::start(20, 63, Schedule::default()).await;
    let stream = tokio::spawn(engine.clone().run_stream());
    wait_live(&engine).await;
    stream.abort();
    let _ = stream.await;

    // The relay forgets the device (as retention does after a week unused).
    let credential = world.secrets.get(sync::DEVICE_SECRET).unwrap().unwrap();
    let revoked = reqwest::Client::new()
        .delete(format!("{}/v1/devices/self", world.relay.base_url))
        .bearer_auth(credential.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);

    let before = world.relay_metric("relay_device_unauthorized_total").await;
    let stream = tokio::spawn(engine.clone().run_stream());
    eventually(
        Duration::from_secs(15),
        "the device-unknown state",
        || async {
            engine.status().await.unwrap().live_updates == sync::LiveUpdates::DeviceUnknown
        },
    )
    .await;
    let status = engine.status().await.unwrap();
    assert!(!status.live);
    let message = status
        .live_updates_message
        .clone()
        .expect("a message for the person");
    assert!(message.contains("Reconnect WHOOP"), "{message}");
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["live_updates"], "device_unknown");

    // No reconnect loop: the relay hears nothing more from this device.
    let refused = world.relay_metric("relay_device_unauthorized_total").await;
    assert_eq!(refused, before + 1, "one refused connection");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        world.relay_metric("relay_device_unauthorized_total").await,
        refused,
        "the engine kept knocking"
    );
    // Catch-up carries on without live updates, fresh data or not.
    assert!(engine.catch_up_tick().await.unwrap());

    // Reconnecting brings a new device credential: live updates resume.
    world.sign_in(&engine).await;
    wait_live(&engine).await;
    assert_eq!(
        engine.status().await.unwrap().live_updates,
        sync::LiveUpdates::Live
    );
    stream.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backdated_workout_whose_webhook_was_lost_is_found_by_the_next_catch_up() {
    let (world, engine) = Relayed::start(30, 64, Schedule::default()).await;
    let stream = tokio::spawn(engine.clone().run_stream());
    wait_live(&engine).await;
    // Logged now for three days ago; WHOOP's webhook for it never arrives.
    world
        .sim_post("/_sim/webhook-faults", json!({"drop_next": 1}))
        .await;
    let logged = world
        .sim_post("/_sim/log-workout", json!({"hours_ago": 72}))
        .await;
    let id = logged["events"][0]["id"].as_str().unwrap().to_string();
    let stats: Value = reqwest::get(format!("{}/_sim/stats", world.sim.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["webhooks_dropped"], 1);
    let export = engine.store().export_json().await.unwrap();
    assert!(record(&export, "workout", &id).is_none());

    // The next catch-up (what the six-hourly check or `vitaltrends sync` runs) reaches it.
    let report = engine.sync_now().await.unwrap();
    assert_eq!(report.kind, "catch_up");
    let export = engine.store().export_json().await.unwrap();
    let dump = world.dump().await;
    assert_eq!(
        record(&export, "workout", &id),
        record(&dump, "workout", &id),
        "the backdated workout arrived"
    );
    converges(&engine, &world.sim, Duration::from_secs(15)).await;

    // Every webhook delivered twice with its trace_id: the relay keeps one, nothing is off.
    world
        .sim_post("/_sim/webhook-faults", json!({"duplicate_rate": 1.0}))
        .await;
    let duplicates = world.relay_metric("relay_webhooks_duplicate_total").await;
    world.sim_post("/_sim/advance", json!({"hours": 24})).await;
    eventually(
        Duration::from_secs(15),
        "duplicates reaching the relay",
        || async { world.relay_metric("relay_webhooks_duplicate_total").await > duplicates },
    )
    .await;
    converges(&engine, &world.sim, Duration::from_secs(15)).await;
    stream.abort();
}
