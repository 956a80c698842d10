//! The control API and webhooks: time advancing with signed notices to a real receiver,
//! deletions and edits with WHOOP's causality, retries, and the counters.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;
use whoop_sim::SimConfig;

struct Delivery {
    headers: HeaderMap,
    body: Bytes,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook JSON")
    }

    /// Verifies the signature independently of the simulator's own signing code.
    fn verify(&self, secret: &str) {
        let ts = self.headers["x-whoop-signature-timestamp"]
            .to_str()
            .expect("ascii");
        assert!(
            ts.len() >= 13 && ts.chars().all(|c| c.is_ascii_digit()),
            "{ts}"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(ts.as_bytes());
        mac.update(&self.body);
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(self.headers["x-whoop-signature"], expected.as_str());
        assert_eq!(self.headers["content-type"], "application/json");
    }
}

/// A webhook endpoint that answers 500 to its first `failures` deliveries.
async fn receiver(failures: usize) -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let remaining = Arc::new(AtomicUsize::new(failures));
    let app = axum::Router::new().route(
        "/webhooks/whoop",
        post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let remaining = Arc::clone(&remaining);
            async move {
                let _ = tx.send(Delivery { headers, body });
                let fail = remaining
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if fail {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/webhooks/whoop"), rx)
}

async fn collect(rx: &mut mpsc::UnboundedReceiver<Delivery>, n: usize) -> Vec<Delivery> {
    let mut got = Vec::new();
    while got.len() < n {
        let d = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("webhook arrives in time")
            .expect("receiver open");
        got.push(d);
    }
    got
}

fn events(summary: &Value) -> Vec<(String, String)> {
    summary["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["type"].as_str().expect("type").to_string(),
                e["id"].as_str().expect("id").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn advancing_time_adds_records_and_sends_signed_webhooks() {
    bounded(async {
        let (url, mut rx) = receiver(0).await;
        let sim = sim(SimConfig {
            webhook_url: Some(url),
            seed: 5,
            ..small(10)
        })
        .await;
        let before = dump(&sim).await;
        let open_before = before["cycle"][0]["id"].clone();
        let counts_before = stats(&sim).await["records"].clone();

        let summary = control(&sim, "advance", json!({"hours": 72})).await;
        let evs = events(&summary);
        assert!(summary["added"].as_u64() >= Some(3), "{summary}");
        assert!(evs.iter().any(|(t, _)| t == "sleep.updated"));
        assert!(evs.iter().any(|(t, _)| t == "recovery.updated"));
        assert!(evs.iter().all(|(t, _)| !t.starts_with("cycle")));

        let after = dump(&sim).await;
        let counts_after = stats(&sim).await["records"].clone();
        assert!(counts_after["cycle"].as_u64() >= counts_before["cycle"].as_u64().map(|n| n + 3));
        let closed = after["cycle"]
            .as_array()
            .expect("cycles")
            .iter()
            .find(|c| c["id"] == open_before)
            .expect("old open cycle still exists");
        assert!(closed.get("end").is_some());
        assert_ne!(closed["score_state"], "PENDING_SCORE");
        assert!(after["cycle"][0].get("end").is_none());
        // The new current cycle is scored as it goes (unless it is a rare unscorable day).
        let current = &after["cycle"][0];
        match current["score_state"].as_str() {
            Some("SCORED") => assert!(current["score"]["strain"].as_f64() > Some(0.0)),
            other => assert_eq!(other, Some("PENDING_SCORE"), "{current}"),
        }

        // Recovery notices carry the sleep's UUID.
        let sleep_ids: HashSet<String> = after["sleep"]
            .as_array()
            .expect("sleeps")
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_string())
            .chain(
                evs.iter()
                    .filter(|(t, _)| t == "sleep.deleted")
                    .map(|(_, id)| id.clone()),
            )
            .collect();
        for (t, id) in &evs {
            if t.starts_with("recovery.") {
                assert!(sleep_ids.contains(id), "{t} {id}");
            }
        }

        let deliveries = collect(&mut rx, evs.len()).await;
        let mut seen_traces = HashSet::new();
        let mut delivered: Vec<(String, String)> = Vec::new();
        for d in &deliveries {
            d.verify("demo-secret");
            let body = d.json();
            assert_eq!(body["user_id"], sim.user_id);
            assert!(seen_traces.insert(body["trace_id"].as_str().expect("trace").to_string()));
            delivered.push((
                body["type"].as_str().expect("type").to_string(),
                body["id"].as_str().expect("id").to_string(),
            ));
        }
        let mut expected = evs.clone();
        expected.sort();
        delivered.sort();
        assert_eq!(delivered, expected);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = stats(&sim).await;
        assert_eq!(s["webhooks_sent"].as_u64(), Some(evs.len() as u64));
        assert_eq!(s["webhooks_failed"], 0);
    })
    .await;
}

#[tokio::test]
async fn deleting_and_editing_follow_whoop_causality() {
    bounded(async {
        let (url, mut rx) = receiver(0).await;
        let sim = sim(SimConfig {
            webhook_url: Some(url),
            ..small(20)
        })
        .await;
        let t = login(&sim).await;
        let d = dump(&sim).await;
        let victim = d["recovery"]
            .as_array()
            .expect("recoveries")
            .iter()
            .find(|r| r["score_state"] == "SCORED")
            .expect("a scored recovery")
            .clone();
        let sleep_id = victim["sleep_id"].as_str().expect("sleep_id").to_string();
        let cycle_id = victim["cycle_id"].as_i64().expect("cycle_id");

        let summary = control(
            &sim,
            "delete",
            json!({"collection": "sleep", "id": sleep_id}),
        )
        .await;
        let evs = events(&summary);
        assert!(evs.contains(&("sleep.deleted".to_string(), sleep_id.clone())));
        assert!(evs.contains(&("recovery.deleted".to_string(), sleep_id.clone())));
        assert_eq!(summary["deleted"], 2);
        let gone = format!("/v2/activity/sleep/{sleep_id}");
        assert_eq!(get(&sim, &t.access, &gone).await.0, 404);
        let gone = format!("/v2/cycle/{cycle_id}/recovery");
        assert_eq!(get(&sim, &t.access, &gone).await.0, 404);
        let after = dump(&sim).await;
        assert!(!after["recovery"]
            .as_array()
            .expect("recoveries")
            .iter()
            .any(|r| r["cycle_id"] == cycle_id));
        let got = collect(&mut rx, 2).await;
        let types: HashSet<String> = got
            .iter()
            .map(|g| g.json()["type"].as_str().expect("type").to_string())
            .collect();
        assert!(types.contains("sleep.deleted") && types.contains("recovery.deleted"));

        // Editing a sleep re-scores it and its recovery, and announces both.
        let target = after["recovery"]
            .as_array()
            .expect("recoveries")
            .iter()
            .find(|r| r["score_state"] == "SCORED")
            .expect("a scored recovery")
            .clone();
        let sid = target["sleep_id"].as_str().expect("sleep_id");
        let summary = control(&sim, "edit", json!({"collection": "sleep", "id": sid})).await;
        let evs = events(&summary);
        assert!(evs.contains(&("sleep.updated".to_string(), sid.to_string())));
        assert!(evs.contains(&("recovery.updated".to_string(), sid.to_string())));
        let cid = target["cycle_id"].as_i64().expect("cycle_id");
        let fresh = get_json(&sim, &t.access, &format!("/v2/cycle/{cid}/recovery")).await;
        assert!(fresh["updated_at"].as_str() > target["updated_at"].as_str());
        assert_ne!(fresh["score"], target["score"]);

        // Editing a recovery is addressed by cycle id but announced with the sleep id.
        let summary = control(&sim, "edit", json!({"collection": "recovery", "id": cid})).await;
        assert_eq!(
            events(&summary),
            vec![("recovery.updated".to_string(), sid.to_string())]
        );

        let resp = http()
            .post(format!("{}/_sim/delete", sim.base_url))
            .json(&json!({"collection": "workout", "id": "00000000-0000-4000-8000-000000000000"}))
            .send()
            .await
            .expect("delete");
        assert_eq!(resp.status(), 404);
        let resp = http()
            .post(format!("{}/_sim/delete", sim.base_url))
            .json(&json!({"collection": "recovery", "id": cid}))
            .send()
            .await
            .expect("delete");
        assert_eq!(resp.status(), 400);
    })
    .await;
}

#[tokio::test]
async fn failed_webhooks_are_retried_with_the_same_body() {
    bounded(async {
        let (url, mut rx) = receiver(2).await;
        let sim = sim(SimConfig {
            webhook_url: Some(url),
            webhook_retry_scale: 0.001,
            client_secret: "another-secret".into(),
            ..small(3)
        })
        .await;
        let reply = control(
            &sim,
            "webhook",
            json!({"type": "workout.updated", "id": "6f1c2a5e-0000-4000-8000-00000000abcd"}),
        )
        .await;
        let trace = reply["trace_id"].as_str().expect("trace").to_string();
        let got = collect(&mut rx, 3).await;
        for g in &got {
            g.verify("another-secret");
            assert_eq!(g.body, got[0].body);
            assert_eq!(g.json()["trace_id"], trace.as_str());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = stats(&sim).await;
        assert_eq!(s["webhooks_failed"], 2);
        assert_eq!(s["webhooks_sent"], 1);
        assert_eq!(s["webhooks_pending"], 0);
    })
    .await;
}

#[tokio::test]
async fn disconnecting_stops_webhooks_and_stats_reset() {
    bounded(async {
        let sim = sim(small(5)).await;
        let (url, mut rx) = receiver(0).await;
        control(&sim, "webhook-url", json!({"url": url})).await;
        let t = login(&sim).await;
        let resp = http()
            .delete(format!("{}/developer/v2/user/access", sim.base_url))
            .bearer_auth(&t.access)
            .send()
            .await
            .expect("revoke");
        assert_eq!(resp.status(), 204);
        let summary = control(&sim, "advance", json!({"hours": 48})).await;
        assert!(!events(&summary).is_empty());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            rx.try_recv().is_err(),
            "no webhooks after the user disconnected"
        );

        let s = stats(&sim).await;
        assert_eq!(s["requests"]["revoke"], 1);
        assert_eq!(s["requests"]["auth"], 1);
        let s = control(&sim, "reset-stats", json!({})).await;
        assert_eq!(s["requests"]["revoke"], 0);
        assert_eq!(s["tokens_issued"], 0);
        assert!(s["records"]["cycle"].as_u64() > Some(0));
    })
    .await;
}

#[tokio::test]
async fn webhooks_can_be_duplicated_with_one_trace_id_or_lost() {
    bounded(async {
        let (url, mut rx) = receiver(0).await;
        let sim = sim(SimConfig {
            webhook_url: Some(url),
            ..small(3)
        })
        .await;
        let id = |n: u32| format!("6f1c2a5e-0000-4000-8000-{n:012}");
        control(&sim, "webhook-faults", json!({"duplicate_next": 1})).await;
        let twice = control(
            &sim,
            "webhook",
            json!({"type": "workout.updated", "id": id(1)}),
        )
        .await["trace_id"]
            .clone();
        control(&sim, "webhook-faults", json!({"drop_next": 1})).await;
        control(
            &sim,
            "webhook",
            json!({"type": "workout.updated", "id": id(2)}),
        )
        .await;
        let once = control(
            &sim,
            "webhook",
            json!({"type": "workout.updated", "id": id(3)}),
        )
        .await["trace_id"]
            .clone();
        let got: Vec<Value> = collect(&mut rx, 3)
            .await
            .iter()
            .map(Delivery::json)
            .collect();
        let traces: Vec<&Value> = got.iter().map(|d| &d["trace_id"]).collect();
        assert_eq!(traces.iter().filter(|t| **t == &twice).count(), 2);
        assert_eq!(traces.iter().filter(|t| **t == &once).count(), 1);
        assert!(
            got.iter().all(|d| d["id"] != id(2).as_str()),
            "the lost one"
        );
        let s = stats(&sim).await;
        assert_eq!(s["webhooks_duplicated"], 1);
        assert_eq!(s["webhooks_dropped"], 1);
        // Rates are validated and reported back.
        let settings = control(&sim, "webhook-faults", json!({"drop_rate": 0.25})).await;
        assert_eq!(settings["drop_rate"], 0.25);
        assert_eq!(settings["drop_next"], 0);
    })
    .await;
}

#[tokio::test]
async fn one_record_can_be_missing_failing_or_unreadable() {
    bounded(async {
        let sim = sim(small(10)).await;
        let tokens = login(&sim).await;
        let d = dump(&sim).await;
        let workout = d["workout"][0]["id"]
            .as_str()
            .expect("a workout")
            .to_string();
        let path = format!("/v2/activity/workout/{workout}");
        let fault =
            |fault: Value, count: Value| json!({"id": workout, "fault": fault, "count": count});

        control(
            &sim,
            "record-faults",
            fault(json!("not_found"), Value::Null),
        )
        .await;
        assert_eq!(get(&sim, &tokens.access, &path).await.0, 404);
        assert_eq!(get(&sim, &tokens.access, &path).await.0, 404);
        control(&sim, "record-faults", fault(Value::Null, Value::Null)).await;
        assert_eq!(get(&sim, &tokens.access, &path).await.0, 200);

        control(
            &sim,
            "record-faults",
            fault(json!("server_error"), json!(1)),
        )
        .await;
        assert!(get(&sim, &tokens.access, &path).await.0 >= 500);
        assert_eq!(get(&sim, &tokens.access, &path).await.0, 200);

        control(&sim, "record-faults", fault(json!("malformed"), json!(1))).await;
        let (status, body) = get(&sim, &tokens.access, &path).await;
        assert_eq!(status, 200);
        assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
        // Other records are untouched.
        let other = d["workout"][1]["id"].as_str().expect("another workout");
        assert_eq!(
            get(
                &sim,
                &tokens.access,
                &format!("/v2/activity/workout/{other}")
            )
            .await
            .0,
            200
        );
    })
    .await;
}

#[tokio::test]
async fn records_can_be_uploaded_late_or_logged_for_days_ago() {
    bounded(async {
        let sim = sim(small(10)).await;
        let now = |summary: &Value| {
            chrono::DateTime::parse_from_rfc3339(summary["now"].as_str().expect("now"))
                .expect("a time")
        };
        let time = |v: &Value| {
            chrono::DateTime::parse_from_rfc3339(v.as_str().expect("time")).expect("a time")
        };

        // An activity logged now for three days ago.
        let logged = control(&sim, "log-workout", json!({"hours_ago": 72})).await;
        let at = now(&logged);
        let id = logged["events"][0]["id"]
            .as_str()
            .expect("announced")
            .to_string();
        assert_eq!(logged["events"][0]["type"], "workout.updated");
        let d = dump(&sim).await;
        let w = d["workout"]
            .as_array()
            .expect("workouts")
            .iter()
            .find(|w| w["id"] == id.as_str())
            .expect("the logged workout");
        assert_eq!(time(&w["created_at"]), at);
        assert_eq!(at - time(&w["start"]), chrono::Duration::hours(72));

        // A strap that syncs eight hours late: days starting from now on upload late.
        let set = control(&sim, "late-records", json!({"upload_delay_hours": 8})).await;
        assert_eq!(set["upload_delay_hours"], 8.0);
        let advanced = control(&sim, "advance", json!({"hours": 96})).await;
        let d = dump(&sim).await;
        let late: Vec<&Value> = d["sleep"]
            .as_array()
            .expect("sleeps")
            .iter()
            .filter(|s| time(&s["start"]) > at + chrono::Duration::hours(30))
            .collect();
        assert!(!late.is_empty(), "new nights after {}", now(&advanced));
        for s in late {
            assert!(
                time(&s["created_at"]) >= time(&s["end"]) + chrono::Duration::hours(8),
                "uploaded late: {s}"
            );
        }
    })
    .await;
}
