//! The webhook event applier against the simulator: every event type, duplicates, out-of-order
//! pairs and records that are gone by the time they are fetched.

mod common;

use common::*;
use serde_json::{json, Value};
use whoop::webhook::WebhookEvent;

fn event(user_id: i64, kind: &str, id: &str) -> WebhookEvent {
    WebhookEvent {
        user_id,
        id: id.to_string(),
        kind: kind.to_string(),
        trace_id: format!("trace-{kind}-{id}"),
    }
}

/// The events a simulator change announced, as WHOOP would deliver them.
fn announced(host: &Host, change: &Value) -> Vec<WebhookEvent> {
    change["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            event(
                host.sim.user_id,
                e["type"].as_str().unwrap(),
                e["id"].as_str().unwrap(),
            )
        })
        .collect()
}

/// Cycles change by themselves while open (WHOOP sends no event for them); the catch-up
/// covers that, so comparisons leave the open cycle out.
fn open_cycle(collection: &str, record: &Value) -> bool {
    collection == "cycle" && record.get("end").is_none()
}

async fn imported(days: u32, seed: u64) -> Host {
    // Every event costs a few fetches; these tests are about correctness, not pacing.
    let host = host(whoop_sim::SimConfig {
        rate_limit_minute: 10_000,
        ..sim_config(days, seed)
    })
    .await;
    host.connect().await;
    host.engine.sync_now().await.unwrap();
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_passing_applied_event_by_event_matches_whoop_even_twice() {
    let host = imported(40, 21).await;
    let change = host.post("/_sim/advance", json!({"hours": 60})).await;
    let events = announced(&host, &change);
    let kinds: std::collections::HashSet<_> = events.iter().map(|e| e.kind.clone()).collect();
    for kind in ["sleep.updated", "recovery.updated", "workout.updated"] {
        assert!(
            kinds.contains(kind),
            "advance announced no {kind}: {kinds:?}"
        );
    }
    for e in &events {
        host.engine.apply_event(e).await.unwrap();
    }
    let dump = host.dump().await;
    assert_same(&host.export().await, &dump, open_cycle);

    // Duplicates (WHOOP retries, relay replays) change nothing.
    host.reset_stats().await;
    for e in events.iter().chain(events.iter()) {
        let applied = host.engine.apply_event(e).await.unwrap();
        assert_eq!(
            applied.written, 0,
            "{} {} applied again wrote something",
            e.kind, e.id
        );
    }
    assert_same(&host.export().await, &dump, open_cycle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_before_updated_and_recovery_before_its_sleep() {
    let host = imported(30, 22).await;
    let user = host.sim.user_id;
    let dump = host.dump().await;
    let sleep = dump["sleep"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["nap"] == false && s["score_state"] == "SCORED")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The sleep is edited at WHOOP (sleep.updated + recovery.updated). The recovery event
    // arrives first: it carries the sleep's id, so the applier fetches the sleep, then the
    // cycle's recovery.
    let change = host
        .post("/_sim/edit", json!({"collection": "sleep", "id": sleep}))
        .await;
    let events = announced(&host, &change);
    let recovery_event = events
        .iter()
        .find(|e| e.kind == "recovery.updated")
        .unwrap();
    host.engine.apply_event(recovery_event).await.unwrap();
    let after = host.dump().await;
    let stored = host.export().await;
    for collection in ["sleep", "recovery"] {
        let want = by_key(collection, &after[collection]);
        let got = by_key(collection, &stored[collection]);
        let key = match collection {
            "sleep" => sleep.clone(),
            _ => want
                .values()
                .find(|r| r["sleep_id"] == sleep)
                .map(|r| key_of("recovery", r))
                .unwrap(),
        };
        assert_eq!(got[&key], want[&key], "{collection} after recovery.updated");
    }
    for e in &events {
        host.engine.apply_event(e).await.unwrap();
    }
    assert_same(&host.export().await, &host.dump().await, open_cycle);

    // The sleep is then deleted, but the events arrive as sleep.deleted, then a late
    // sleep.updated: the update finds a 404 and the sleep stays deleted, recovery with it.
    let change = host
        .post("/_sim/delete", json!({"collection": "sleep", "id": sleep}))
        .await;
    let deleted = announced(&host, &change);
    assert!(deleted.iter().any(|e| e.kind == "sleep.deleted"));
    assert!(deleted.iter().any(|e| e.kind == "recovery.deleted"));
    for e in &deleted {
        host.engine.apply_event(e).await.unwrap();
    }
    host.engine
        .apply_event(&event(user, "sleep.updated", &sleep))
        .await
        .unwrap();
    host.engine
        .apply_event(&event(user, "recovery.updated", &sleep))
        .await
        .unwrap();
    let export = host.export().await;
    assert!(!by_key("sleep", &export["sleep"]).contains_key(&sleep));
    assert!(export["recovery"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["sleep_id"] != sleep.as_str()));
    assert_same(&export, &host.dump().await, open_cycle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workouts_updated_and_deleted_refresh_their_cycle() {
    let host = imported(30, 23).await;
    let dump = host.dump().await;
    let workout = dump["workout"][2]["id"].as_str().unwrap().to_string();
    let change = host
        .post(
            "/_sim/edit",
            json!({"collection": "workout", "id": workout}),
        )
        .await;
    for e in announced(&host, &change) {
        host.engine.apply_event(&e).await.unwrap();
    }
    assert_same(&host.export().await, &host.dump().await, open_cycle);

    let change = host
        .post(
            "/_sim/delete",
            json!({"collection": "workout", "id": workout}),
        )
        .await;
    for e in announced(&host, &change) {
        host.engine.apply_event(&e).await.unwrap();
    }
    let export = host.export().await;
    assert!(!by_key("workout", &export["workout"]).contains_key(&workout));
    assert_same(&export, &host.dump().await, open_cycle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_and_unknown_types_are_harmless() {
    let host = imported(15, 24).await;
    let user = host.sim.user_id;
    let before = host.export().await;
    let missing = "3f0c5d7e-0000-4000-8000-000000000000";
    for kind in [
        "workout.updated",
        "workout.deleted",
        "sleep.updated",
        "sleep.deleted",
        "recovery.updated",
        "recovery.deleted",
    ] {
        let applied = host
            .engine
            .apply_event(&event(user, kind, missing))
            .await
            .unwrap();
        assert_eq!((applied.written, applied.deleted), (0, 0), "{kind}");
    }
    let applied = host
        .engine
        .apply_event(&event(user, "cycle.updated", "1"))
        .await
        .unwrap();
    assert!(applied.ignored);
    assert_eq!(host.export().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_sync_keeps_what_the_live_applier_changed_while_it_ran() {
    // Two years re-read page by page, slowly: the fetch is still going when WHOOP changes.
    let schedule = sync::Schedule {
        recent_span: chrono::Duration::days(700),
        ..sync::Schedule::default()
    };
    let host = host_with(
        whoop_sim::SimConfig {
            rate_limit_minute: 10_000,
            ..sim_config(720, 25)
        },
        std::sync::Arc::new(sync::events::SystemClock),
        schedule,
    )
    .await;
    host.connect().await;
    host.engine.sync_now().await.unwrap();
    host.post("/_sim/faults", json!({"latency_ms": 200})).await;
    host.reset_stats().await;
    let engine = host.engine.clone();
    let force = tokio::spawn(async move { engine.force_sync_now().await });

    // Wait until every collection's first (newest) page was answered: what changes now is
    // missing from, or stale in, what the Force Sync fetched.
    let started = std::time::Instant::now();
    loop {
        let mut answered = true;
        for collection in ["cycle", "sleep", "recovery", "workout"] {
            answered &= host.collection_requests(collection).await >= 2;
        }
        if answered {
            break;
        }
        assert!(
            !force.is_finished(),
            "the Force Sync ended too soon to race"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the Force Sync never got going"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // Meanwhile at WHOOP: the newest workout is deleted and a new one is logged; the live
    // applier applies their webhooks as they come.
    let dump = host.dump().await;
    let newest_workout = dump["workout"][0]["id"].as_str().unwrap().to_string();
    let deleted = host
        .post(
            "/_sim/delete",
            json!({"collection": "workout", "id": newest_workout}),
        )
        .await;
    let logged = host
        .post("/_sim/log-workout", json!({"hours_ago": 1}))
        .await;
    let logged_id = logged["events"][0]["id"].as_str().unwrap().to_string();
    let mut events = announced(&host, &deleted);
    events.extend(announced(&host, &logged));
    for event in &events {
        host.engine.apply_event(event).await.unwrap();
    }
    let ids = |export: &Value| -> Vec<String> {
        export["workout"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap().to_string())
            .collect()
    };
    let applied = ids(&host.export().await);
    assert!(
        !applied.contains(&newest_workout),
        "the applier deleted one"
    );
    assert!(
        applied.contains(&logged_id),
        "the applier stored the new one"
    );
    assert!(
        !force.is_finished(),
        "the Force Sync was still fetching when the events applied"
    );

    force.await.unwrap().unwrap();
    host.post("/_sim/faults", json!({"latency_ms": 0})).await;
    let after = ids(&host.export().await);
    assert!(
        !after.contains(&newest_workout),
        "the deleted workout came back"
    );
    assert!(after.contains(&logged_id), "the new workout was deleted");
    assert_same(&host.export().await, &host.dump().await, open_cycle);
}
