//! The relay over time: restarts, retention, a lost database, and what `/metrics` and `/healthz`
//! say about it.

use std::time::Duration;

use reqwest::StatusCode;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    restart_mid_stream_loses_and_repeats_nothing,
    retention_prunes_and_old_cursors_get_a_gap,
    database_gone_gives_503,
    metrics_track_streams_and_deliveries,
);

const WAIT: Duration = Duration::from_secs(5);

fn trace_of(ev: &SseEvent) -> String {
    ev.json()["trace_id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn restart_mid_stream_loses_and_repeats_nothing(db: &Db) {
    let sim = sim(31, SECRET).await;
    let first = relay(config(db, &sim)).await;
    let epoch = first.log_epoch().to_string();
    point_sim_at(&sim, &first.base_url).await;
    let device = connect(&sim, &first.base_url).await;
    let mut sent = Vec::new();
    let mut applied = Vec::new();

    let mut stream = Sse::open(&first.base_url, &device.credential, None).await;
    for _ in 0..3 {
        sent.push(fire(&sim, "sleep.updated", &uuid()).await);
    }
    for ev in stream.whoop_events(3, WAIT).await {
        applied.push(trace_of(&ev));
    }
    // One more arrives and is read, then the relay goes down under the open stream.
    sent.push(fire(&sim, "workout.updated", &uuid()).await);
    let ev = stream.expect(WAIT).await;
    applied.push(trace_of(&ev));
    let cursor = Some(ev.cursor().to_string());
    first.shutdown().await;
    assert!(
        stream.next(Duration::from_secs(2)).await.is_none(),
        "the stream ends with the relay"
    );

    // WHOOP keeps sending while the relay is down; its deliveries fail and are retried.
    for _ in 0..2 {
        sent.push(fire(&sim, "recovery.updated", &uuid()).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = relay(config(db, &sim)).await;
    assert_eq!(second.log_epoch(), epoch, "same database, same log");
    point_sim_at(&sim, &second.base_url).await;
    let mut stream = Sse::open(&second.base_url, &device.credential, cursor.as_deref()).await;
    for ev in stream.whoop_events(2, Duration::from_secs(12)).await {
        applied.push(trace_of(&ev));
    }
    sent.push(fire(&sim, "sleep.updated", &uuid()).await);
    applied.push(trace_of(&stream.expect(WAIT).await));
    assert!(stream.next(Duration::from_millis(500)).await.is_none());

    let mut unique = applied.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), applied.len(), "nothing applied twice");
    let mut sent_sorted = sent.clone();
    sent_sorted.sort();
    assert_eq!(unique, sent_sorted, "nothing lost");
}

async fn retention_prunes_and_old_cursors_get_a_gap(db: &Db) {
    let sim = sim(32, SECRET).await;
    let retention = Duration::from_secs(2);
    let relay = relay(relay::RelayConfig {
        retention,
        webhook_window: retention,
        ..config(db, &sim)
    })
    .await;
    let base = relay.base_url.clone();
    point_sim_at(&sim, &base).await;
    let device = connect(&sim, &base).await;
    let idle = connect(&sim, &base).await;

    let mut stream = Sse::open(&base, &device.credential, None).await;
    fire(&sim, "sleep.updated", &uuid()).await;
    fire(&sim, "recovery.updated", &uuid()).await;
    let events = stream.whoop_events(2, WAIT).await;
    let (old, newest) = (
        events[0].cursor().to_string(),
        events[1].cursor().to_string(),
    );
    drop(stream);

    // Wait for retention, using the device meanwhile so it is not pruned as idle.
    eventually(Duration::from_secs(10), "retention to prune", || async {
        let (status, _) = poll(&base, &device.credential, Some(&newest), 0).await;
        assert_eq!(status, StatusCode::OK);
        db.scalar("SELECT COUNT(*) FROM events").await == 0
    })
    .await;

    // The newest cursor is still good although the log is now empty: retention remembers how far
    // it pruned, so this is neither a gap nor "ahead of the log".
    let (_, body) = poll(&base, &device.credential, Some(&newest), 0).await;
    assert_eq!(body["gap"], false, "{body}");
    assert_eq!(body["events"].as_array().map(Vec::len), Some(0));

    // The cursor retention passed: gap first (with the head), then normal streaming.
    let mut stream = Sse::open(&base, &device.credential, Some(&old)).await;
    let gap = stream.expect(WAIT).await;
    assert_eq!(gap.event, "gap");
    assert_eq!(gap.json()["reason"], "retention");
    assert_eq!(gap.cursor(), newest);
    let trace = fire(&sim, "workout.updated", &uuid()).await;
    let ev = stream.expect(WAIT).await;
    assert_eq!(ev.event, "whoop");
    assert_eq!(trace_of(&ev), trace);
    // The newest cursor missed nothing: no gap.
    let (_, body) = poll(&base, &device.credential, Some(&newest), 0).await;
    assert_eq!(body["gap"], false);
    assert_eq!(body["events"][0]["trace_id"], trace.as_str());
    // Long poll sees the same gap.
    let (_, body) = poll(&base, &device.credential, Some(&old), 0).await;
    assert_eq!(body["gap"], true);
    assert_eq!(body["reason"], "retention");
    // The device nobody used is gone.
    let (status, _) = get_with(&base, "/v1/events", Some(&idle.credential)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn database_gone_gives_503(db: &Db) {
    let sim = sim(33, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    let base = relay.base_url.clone();
    let device = connect(&sim, &base).await;
    let (status, body) = get_with(&base, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, br#"{"ok":true}"#);

    relay.close_database().await;
    let body = webhook_body(sim.user_id, "sleep.updated", &uuid(), &uuid());
    assert_eq!(
        post_signed(&base, SECRET, &body, 0).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "WHOOP must retry"
    );
    let (status, _) = get_with(&base, "/healthz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = get_with(&base, "/v1/events", Some(&device.credential)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = poll(&base, &device.credential, None, 0).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ack(&base, &device.credential, "v1.x.0").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // WHOOP has spent the code by the time binding fails: the tokens still go back.
    let (code, verifier) = authorize(&sim).await;
    let (status, json, _) = exchange(&base, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    assert!(json["access_token"].as_str().is_some());
    assert!(json.get("device_credential").is_none());
    assert_eq!(
        metric(&base, "relay_device_binding_failed_total").await,
        1.0
    );
}

async fn metrics_track_streams_and_deliveries(db: &Db) {
    let sim = sim(34, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    let base = relay.base_url.clone();
    point_sim_at(&sim, &base).await;
    let device = connect(&sim, &base).await;
    assert_eq!(metric(&base, "relay_devices_bound_total").await, 1.0);
    let mut stream = Sse::open(&base, &device.credential, None).await;
    eventually(WAIT, "one open stream", || async {
        metric(&base, "relay_streams_open").await == 1.0
    })
    .await;
    let polling = tokio::spawn({
        let base = base.clone();
        let credential = device.credential.clone();
        async move { poll(&base, &credential, Some("v1.x.1"), 0).await }
    });
    let _ = polling.await;
    fire(&sim, "sleep.updated", &uuid()).await;
    stream.expect(WAIT).await;
    assert_eq!(metric(&base, "relay_events_delivered_total").await, 1.0);
    assert_eq!(metric(&base, "relay_webhooks_received_total").await, 1.0);
    assert_eq!(metric(&base, "relay_webhooks_verified_total").await, 1.0);
    assert_eq!(metric(&base, "relay_events_stored_total").await, 1.0);
    // Live delivery takes milliseconds, not seconds.
    assert_eq!(
        metric(&base, "relay_delivery_latency_seconds_bucket{le=\"1\"}").await,
        1.0
    );
    drop(stream);
    eventually(WAIT, "no open streams", || async {
        metric(&base, "relay_streams_open").await == 0.0
    })
    .await;
    let text = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(!text.contains(&sim.user_id.to_string()), "no user ids");
    assert!(text.contains("# TYPE relay_delivery_latency_seconds histogram"));
}
