//! The quota coordinator: leases of WHOOP's app-wide budget, handed out by priority with a
//! reserve for live events, never more than WHOOP's limit in any window.

use std::time::{Duration, Instant};

use relay::{QuotaConfig, RelayConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    live_events_pass_a_full_import_queue_and_recent_data_goes_before_history,
    a_lease_needs_a_device_and_a_coordinator,
    a_sign_in_waits_its_turn_for_whoop_and_is_still_bound,
);

async fn lease(base_url: &str, credential: &str, priority: &str) -> (StatusCode, Value) {
    lease_of(base_url, credential, priority, 5).await
}

async fn lease_of(
    base_url: &str,
    credential: &str,
    priority: &str,
    requests: u32,
) -> (StatusCode, Value) {
    let resp = http()
        .post(format!("{base_url}/v1/quota/lease"))
        .bearer_auth(credential)
        .json(&json!({"priority": priority, "requests": requests}))
        .send()
        .await
        .expect("lease request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Asks until granted (a long poll ends "queued" after a while); the moment it was granted.
async fn lease_granted(base_url: String, credential: String, priority: &'static str) -> Instant {
    loop {
        let (status, answer) = lease(&base_url, &credential, priority).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        if answer["granted"].as_u64().unwrap_or(0) > 0 {
            return Instant::now();
        }
        assert_eq!(answer["queued"], true, "{answer}");
    }
}

/// A relay whose coordinator shares `per_minute` requests in a WHOOP minute lasting 10 s (the
/// day is plenty).
async fn minute_of_ten_seconds(
    db: &Db,
    sim: &whoop_sim::SimHandle,
    per_minute: u32,
) -> relay::RelayHandle {
    relay(RelayConfig {
        quota: Some(QuotaConfig {
            per_minute,
            per_day: 100_000,
            time_scale: 6.0,
        }),
        ..config(db, sim)
    })
    .await
}

async fn live_events_pass_a_full_import_queue_and_recent_data_goes_before_history(db: &Db) {
    let sim = sim(71, SECRET).await;
    // WHOOP's minute lasts 10 s here; 15 requests in it, 12 of them for imports. The sign-in
    // spends one (at the live level) on the way.
    let relay = minute_of_ten_seconds(db, &sim, 15).await;
    let device = connect(&sim, &relay.base_url).await.credential;
    let base = relay.base_url.clone();

    for _ in 0..2 {
        let (status, answer) = lease(&base, &device, "history").await;
        assert_eq!(
            (status, answer["granted"].as_u64()),
            (StatusCode::OK, Some(5)),
            "{answer}"
        );
        assert!(answer["valid_ms"].as_u64().unwrap_or(0) > 0, "{answer}");
    }
    let started = Instant::now();
    // The import's share of the window is spent: more history waits…
    let history = tokio::spawn(lease_granted(base.clone(), device.clone(), "history"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !history.is_finished(),
        "history got past the import's share"
    );
    // …while a live event's fetch is served from the reserve at once.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (status, answer) = lease_of(&base, &device, "live", 4).await;
    assert_eq!(
        (status, answer["granted"].as_u64()),
        (StatusCode::OK, Some(4)),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "live waited behind the import"
    );
    // Recent data asked later than history still goes first when the window frees.
    let recent = tokio::spawn(lease_granted(base.clone(), device.clone(), "recent"));
    let recent_at = tokio::time::timeout(Duration::from_secs(30), recent)
        .await
        .expect("recent granted within two windows")
        .expect("task");
    let history_at = tokio::time::timeout(Duration::from_secs(30), history)
        .await
        .expect("history granted within two windows")
        .expect("task");
    assert!(
        recent_at < history_at,
        "recent {:?} after history {:?}",
        recent_at - started,
        history_at - started
    );
    // Nothing was granted before the first grants left WHOOP's window.
    assert!(
        recent_at - started >= Duration::from_secs(9),
        "{:?}",
        recent_at - started
    );
    for (priority, requests) in [("live", 5.0), ("recent", 5.0), ("history", 15.0)] {
        let series = format!("relay_quota_granted_total{{priority=\"{priority}\"}}");
        assert_eq!(metric(&relay.base_url, &series).await, requests, "{series}");
    }
}

async fn a_lease_needs_a_device_and_a_coordinator(db: &Db) {
    let sim = sim(72, SECRET).await;
    let with = relay(RelayConfig {
        quota: Some(QuotaConfig::default()),
        ..config(db, &sim)
    })
    .await;
    let (status, _) = lease(&with.base_url, "not-a-device-credential", "recent").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let device = connect(&sim, &with.base_url).await.credential;
    let (status, answer) = lease(&with.base_url, &device, "recent").await;
    assert_eq!(
        (status, answer["granted"].as_u64()),
        (StatusCode::OK, Some(5)),
        "{answer}"
    );
    with.shutdown().await;

    let without = relay(config(db, &sim)).await;
    let (status, answer) = lease(&without.base_url, &device, "recent").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"], "quota_off");
}

/// The broker's own WHOOP request (whose profile a new sign-in is, to bind the device) counts
/// against the app's limits: in a spent minute it waits for the window rather than going out
/// for a 429, and the sign-in still ends bound.
async fn a_sign_in_waits_its_turn_for_whoop_and_is_still_bound(db: &Db) {
    let sim = sim(74, SECRET).await;
    // WHOOP's minute lasts 10 s here, with 5 requests in it.
    let relay = minute_of_ten_seconds(db, &sim, 5).await;
    let live = "relay_quota_granted_total{priority=\"live\"}";
    let first = connect(&sim, &relay.base_url).await;
    let bound_at = Instant::now();
    assert_eq!(
        metric(&relay.base_url, live).await,
        1.0,
        "the bind's request"
    );
    // Live events take the rest of the minute.
    let (status, answer) = lease_of(&relay.base_url, &first.credential, "live", 4).await;
    assert_eq!(
        (status, answer["granted"].as_u64()),
        (StatusCode::OK, Some(4)),
        "{answer}"
    );

    let second = connect(&sim, &relay.base_url).await;
    let waited = bound_at.elapsed();
    assert!(
        waited >= Duration::from_secs(9),
        "the second sign-in asked WHOOP before the first request left the minute ({waited:?})"
    );
    assert_ne!(second.credential, first.credential);
    assert_eq!(metric(&relay.base_url, live).await, 6.0);
}

/// Requests granted to one device, a request at a time, until the node says it is queued.
async fn drain(base_url: &str, credential: &str) -> u64 {
    let mut granted = 0;
    loop {
        let (status, answer) = lease_of(base_url, credential, "history", 1).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        match answer["granted"].as_u64() {
            Some(n) if n > 0 => granted += n,
            _ => return granted,
        }
    }
}

/// Two relay nodes on one PostgreSQL hand out one budget between them (PostgreSQL only: an
/// SQLite relay is one node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_share_one_budget() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    bounded(async {
        let sim = sim(73, SECRET).await;
        // WHOOP's minute lasts 15 s here: longer than a lease's long poll, so nothing granted
        // leaves the window while the nodes are drained.
        let quota = QuotaConfig {
            per_minute: 20,
            per_day: 100_000,
            time_scale: 4.0,
        };
        let a = relay(RelayConfig {
            quota: Some(quota.clone()),
            ..config(&db, &sim)
        })
        .await;
        let b = relay(RelayConfig {
            quota: Some(quota),
            ..config(&db, &sim)
        })
        .await;
        let on_a = connect(&sim, &a.base_url).await.credential;
        let on_b = connect(&sim, &b.base_url).await.credential;
        let (from_a, from_b) = tokio::join!(drain(&a.base_url, &on_a), drain(&b.base_url, &on_b));
        // The imports' share of the window (80 % of 20) less the two sign-ins' own requests,
        // once for both nodes, not once each.
        assert_eq!(from_a + from_b, 14, "node a {from_a}, node b {from_b}");
    })
    .await;
    db.cleanup().await;
}
