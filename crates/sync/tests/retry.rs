//! A tray app runs for weeks: a failed import or catch-up is tried again by itself with backoff
//! (and at once on "Retry now"), the 36-hour safety net keeps running while the import is
//! incomplete, and a relay that accepts connections but never answers cannot hold Disconnect or
//! the event stream.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use sync::events::Clock;
use sync::{EngineEvent, Enqueued, JobKind, Schedule, SecretStore, DEVICE_SECRET};
use url::Url;
use whoop::Secret;

/// Stale after 30 s of the test clock, so the safety net can come due before the first retry
/// (1 minute); retries are looked for every 20 ms of real time.
fn short_schedule() -> Schedule {
    Schedule {
        stale_after: chrono::Duration::seconds(30),
        retry_check_every: Duration::from_millis(20),
        ..Schedule::default()
    }
}

/// A failing import spends many requests on retries; a wide rate limit keeps the test from
/// waiting out WHOOP's minute window afterwards.
fn failing_sim(days: u32, seed: u64) -> whoop_sim::SimConfig {
    whoop_sim::SimConfig {
        rate_limit_minute: 10_000,
        ..sim_config(days, seed)
    }
}

const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_import_retries_by_itself_and_the_safety_net_runs_meanwhile() {
    let clock = manual_clock();
    let host = host_with(failing_sim(60, 31), clock.clone(), short_schedule()).await;
    host.connect().await; // queues the import
    host.post("/_sim/faults", json!({"error_rate": 1.0})).await;
    let mut events = host.engine.subscribe();
    let worker = tokio::spawn(host.engine.clone().run_jobs());

    // WHOOP keeps failing: the import fails and says when it tries again.
    let EngineEvent::RetryScheduled(retry) = wait_for(&mut events, LIMIT, |e| {
        matches!(e, EngineEvent::RetryScheduled(_))
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(retry.job, JobKind::Import);
    assert_eq!(retry.attempt, 1);
    assert_eq!(retry.next_at, clock.now() + chrono::Duration::minutes(1));
    assert_eq!(retry.reason, "whoop_unavailable");
    let status = host.engine.status().await.unwrap();
    assert!(!status.import_complete);
    let shown = status.retry.clone().expect("the card shows the retry");
    assert_eq!(
        shown.message,
        "WHOOP is not answering. Retrying in 1 minute."
    );
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["retry"]["job"], "import");
    assert_eq!(json["retry"]["attempt"], 1);
    assert!(json["retry"]["next_at"].is_string());

    // WHOOP is back. Before the retry is due, nothing new for "36 hours": the safety net runs
    // although the import is incomplete, and leaves the import's checkpoints alone.
    host.post("/_sim/faults", json!({"error_rate": 0.0})).await;
    let checkpoints = host.engine.store().checkpoints().await.unwrap();
    clock.advance(chrono::Duration::seconds(31));
    assert!(
        host.engine.catch_up_tick().await.unwrap(),
        "catch-up queued while the import is incomplete"
    );
    let EngineEvent::JobFinished { error, .. } =
        wait_for(&mut events, LIMIT, finished(JobKind::CatchUp)).await
    else {
        unreachable!()
    };
    assert_eq!(error, None);
    assert!(host.engine.store().counts().await.unwrap().total() > 0);
    assert_eq!(
        host.engine.store().checkpoints().await.unwrap(),
        checkpoints
    );
    let status = host.engine.status().await.unwrap();
    assert!(!status.import_complete);
    assert_eq!(
        status.retry.map(|r| r.message),
        Some("WHOOP is not answering. Retrying in 1 minute.".to_string())
    );

    // The retry comes due and runs by itself, to the end.
    clock.advance(chrono::Duration::seconds(30));
    let EngineEvent::JobFinished { error, .. } =
        wait_for(&mut events, LIMIT, finished(JobKind::Import)).await
    else {
        unreachable!()
    };
    assert_eq!(error, None);
    wait_for(&mut events, LIMIT, |e| {
        matches!(
            e,
            EngineEvent::RetryCleared {
                job: JobKind::Import
            }
        )
    })
    .await;
    let status = host.engine.status().await.unwrap();
    assert!(status.import_complete);
    assert!(status.retry.is_none());
    assert_same(&host.export().await, &host.dump().await, |_, _| false);
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_now_runs_at_once_and_a_revoked_grant_waits_for_reconnect() {
    let clock = manual_clock();
    let host = host_with(failing_sim(30, 32), clock.clone(), short_schedule()).await;
    host.connect().await;
    host.post("/_sim/faults", json!({"error_rate": 1.0})).await;
    let mut events = host.engine.subscribe();
    let worker = tokio::spawn(host.engine.clone().run_jobs());
    wait_for(&mut events, LIMIT, |e| {
        matches!(e, EngineEvent::RetryScheduled(_))
    })
    .await;

    // "Retry now" without moving the clock.
    host.post("/_sim/faults", json!({"error_rate": 0.0})).await;
    assert_eq!(host.engine.retry_now().await.unwrap(), Enqueued::Queued);
    let EngineEvent::JobFinished { error, .. } =
        wait_for(&mut events, LIMIT, finished(JobKind::Import)).await
    else {
        unreachable!()
    };
    assert_eq!(error, None);
    // The success clears the wait just after it says the job finished.
    wait_for(&mut events, LIMIT, |e| {
        matches!(
            e,
            EngineEvent::RetryCleared {
                job: JobKind::Import
            }
        )
    })
    .await;
    assert!(host.engine.status().await.unwrap().retry.is_none());

    // The grant is revoked: the failure needs the person (Reconnect), so it is not retried.
    host.post("/_sim/revoke", json!({})).await;
    host.engine.retry_now().await.unwrap(); // nothing waits: a catch-up
    let EngineEvent::JobFinished { error, .. } =
        wait_for(&mut events, LIMIT, finished(JobKind::CatchUp)).await
    else {
        unreachable!()
    };
    assert!(error.is_some());
    wait_for(&mut events, LIMIT, idle).await;
    let status = host.engine.status().await.unwrap();
    assert_eq!(status.connection.name(), "reconnect_needed");
    assert!(status.retry.is_none(), "{:?}", status.retry);
    worker.abort();
}

/// A relay stand-in that accepts every connection and never says a word; counts the accepts.
async fn silent_relay() -> (Url, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (url, accepted)
}

/// An engine on a connected data directory whose relay is the silent stand-in, with a device
/// credential as the broker would have issued; returns it and the stand-in's accept count.
async fn engine_with_silent_relay(host: &Host) -> (Arc<sync::Engine>, Arc<AtomicU64>) {
    host.connect().await;
    let (relay_url, accepted) = silent_relay().await;
    host.secrets
        .set(DEVICE_SECRET, &Secret::new("device-credential"))
        .unwrap();
    let schedule = Schedule {
        relay_request_timeout: Duration::from_millis(500),
        ..Schedule::default()
    };
    let engine = open_engine(
        &host.sim,
        Some(relay_url),
        &host.dir,
        host.secrets.clone(),
        host.notifier.clone(),
        Arc::new(sync::events::SystemClock),
        schedule,
    )
    .await;
    (engine, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_never_answers_does_not_hold_the_event_stream() {
    let host = host(sim_config(10, 33)).await;
    let (engine, accepted) = engine_with_silent_relay(&host).await;
    // The stream gives up on the unanswered request and connects again.
    let stream = tokio::spawn(engine.clone().run_stream());
    tokio::time::timeout(Duration::from_secs(30), async {
        while accepted.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stream reconnected instead of waiting forever for headers");
    stream.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_never_answers_does_not_hold_disconnect() {
    let host = host(sim_config(10, 34)).await;
    let (engine, accepted) = engine_with_silent_relay(&host).await;
    tokio::time::timeout(Duration::from_secs(30), engine.disconnect())
        .await
        .expect("disconnect returned")
        .expect("revoked at WHOOP");
    assert!(accepted.load(Ordering::SeqCst) >= 1, "it did try the relay");
    assert_eq!(
        engine.status().await.unwrap().connection.name(),
        "disconnected"
    );
}
