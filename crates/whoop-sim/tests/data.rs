//! Data endpoints: paging and filtering semantics, limits, rate limits, faults, relations
//! between records, and determinism of the generated history.

mod common;

use std::collections::{HashMap, HashSet};

use common::*;
use serde_json::{json, Value};
use whoop_sim::SimConfig;

fn ids(records: &Value) -> Vec<String> {
    records
        .as_array()
        .expect("array")
        .iter()
        .map(|r| match r.get("id") {
            Some(id) => id.to_string(),
            None => r["cycle_id"].to_string(),
        })
        .collect()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Walks every page of a collection; returns the records and how many pages it took.
async fn walk(
    sim: &whoop_sim::SimHandle,
    token: &str,
    path: &str,
    extra: &str,
) -> (Vec<Value>, usize) {
    let mut all = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = format!("{path}?{extra}");
        if let Some(t) = &next {
            q.push_str(&format!("&nextToken={}", enc(t)));
        }
        let page = get_json(sim, token, &q).await;
        pages += 1;
        all.extend(page["records"].as_array().expect("records").iter().cloned());
        match page.get("next_token") {
            Some(Value::String(t)) if !t.is_empty() => next = Some(t.clone()),
            None | Some(Value::Null) => break,
            other => panic!("unexpected next_token {other:?}"),
        }
        assert!(pages < 100, "paging does not end");
    }
    (all, pages)
}

#[tokio::test]
async fn pages_walk_newest_first_and_match_the_dump() {
    bounded(async {
        let sim = sim(small(40)).await;
        let t = login(&sim).await;
        let d = dump(&sim).await;
        for (path, key) in [
            ("/v2/cycle", "cycle"),
            ("/v2/activity/sleep", "sleep"),
            ("/v2/activity/workout", "workout"),
            ("/v2/recovery", "recovery"),
        ] {
            let (records, pages) = walk(&sim, &t.access, path, "limit=7").await;
            assert_eq!(ids(&Value::Array(records.clone())), ids(&d[key]), "{path}");
            assert!(pages >= 2, "{path} needs several pages");
            let starts: Vec<String> = records
                .iter()
                .map(|r| match r.get("start") {
                    Some(s) => s.as_str().expect("start").to_string(),
                    None => String::new(),
                })
                .collect();
            let mut sorted = starts.clone();
            sorted.sort_by(|a, b| b.cmp(a));
            assert_eq!(starts, sorted, "{path} newest first");
        }
    })
    .await;
}

#[tokio::test]
async fn start_end_filters_and_token_rules() {
    bounded(async {
        let sim = sim(small(30)).await;
        let t = login(&sim).await;
        let d = dump(&sim).await;
        let sleep = &d["sleep"][5];
        let (s_start, s_end) = (
            sleep["start"].as_str().expect("start"),
            sleep["end"].as_str().expect("end"),
        );
        let has = |page: &Value| ids(&page["records"]).contains(&sleep["id"].to_string());

        let plus_ms = |s: &str| {
            let t = chrono::DateTime::parse_from_rfc3339(s).expect("time")
                + chrono::Duration::milliseconds(1);
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string()
        };
        // A record matches when its end >= start (inclusive) and its start < end (exclusive).
        let q = format!("/v2/activity/sleep?start={}", enc(s_end));
        assert!(has(&get_json(&sim, &t.access, &q).await));
        let q = format!("/v2/activity/sleep?start={}", enc(&plus_ms(s_end)));
        assert!(!has(&get_json(&sim, &t.access, &q).await));
        let q = format!("/v2/activity/sleep?end={}", enc(s_start));
        assert!(!has(&get_json(&sim, &t.access, &q).await));
        let q = format!("/v2/activity/sleep?end={}", enc(&plus_ms(s_start)));
        assert!(has(&get_json(&sim, &t.access, &q).await));
        // Zone-less timestamps are UTC.
        let zoneless = s_start.trim_end_matches('Z');
        let q = format!(
            "/v2/activity/sleep?start={}&end={}",
            enc(zoneless),
            enc(s_end)
        );
        let page = get_json(&sim, &t.access, &q).await;
        assert_eq!(ids(&page["records"]), vec![sleep["id"].to_string()]);

        // Malformed input is a 400.
        for bad in [
            "/v2/cycle?start=yesterday",
            "/v2/cycle?end=2025-13-45T00:00:00Z",
            "/v2/cycle?limit=0",
            "/v2/cycle?limit=abc",
            "/v2/cycle?nextToken=not-a-token",
        ] {
            assert_eq!(get(&sim, &t.access, bad).await.0, 400, "{bad}");
        }
        // Limits above 25 are clamped.
        let page = get_json(&sim, &t.access, "/v2/cycle?limit=100").await;
        assert_eq!(page["records"].as_array().expect("records").len(), 25);
        let page = get_json(&sim, &t.access, "/v2/cycle").await;
        assert_eq!(page["records"].as_array().expect("records").len(), 10);

        // A token must come back with the same start/end it was issued for.
        let start = d["cycle"][20]["start"].as_str().expect("start");
        let q = format!("/v2/cycle?limit=5&start={}", enc(start));
        let page = get_json(&sim, &t.access, &q).await;
        let token = page["next_token"].as_str().expect("token").to_string();
        let same = format!("{q}&nextToken={}", enc(&token));
        assert_eq!(get(&sim, &t.access, &same).await.0, 200);
        let moved = format!(
            "/v2/cycle?limit=5&start={}&nextToken={}",
            enc(d["cycle"][21]["start"].as_str().expect("start")),
            enc(&token)
        );
        assert_eq!(get(&sim, &t.access, &moved).await.0, 400);
        let dropped = format!("/v2/cycle?limit=5&nextToken={}", enc(&token));
        assert_eq!(get(&sim, &t.access, &dropped).await.0, 400);
        let other = format!(
            "/v2/activity/sleep?limit=5&start={}&nextToken={}",
            enc(start),
            enc(&token)
        );
        assert_eq!(get(&sim, &t.access, &other).await.0, 400);

        // By-id lookups and 404s.
        let cycle_id = d["cycle"][3]["id"].as_i64().expect("id");
        let c = get_json(&sim, &t.access, &format!("/v2/cycle/{cycle_id}")).await;
        assert_eq!(c, d["cycle"][3]);
        let s = get_json(&sim, &t.access, &format!("/v2/cycle/{cycle_id}/sleep")).await;
        assert_eq!(s["cycle_id"], cycle_id);
        assert_eq!(s["nap"], false);
        let r = get_json(&sim, &t.access, &format!("/v2/cycle/{cycle_id}/recovery")).await;
        assert_eq!(r["sleep_id"], s["id"]);
        assert_eq!(get(&sim, &t.access, "/v2/cycle/1").await.0, 404);
        assert_eq!(
            get(
                &sim,
                &t.access,
                "/v2/activity/workout/00000000-0000-4000-8000-000000000000"
            )
            .await
            .0,
            404
        );
        let w = &d["workout"][0];
        let fetched = get_json(
            &sim,
            &t.access,
            &format!("/v2/activity/workout/{}", w["id"].as_str().expect("id")),
        )
        .await;
        assert_eq!(&fetched, w);
    })
    .await;
}

#[tokio::test]
async fn records_arriving_mid_paging_do_not_shift_pages() {
    bounded(async {
        let sim = sim(small(30)).await;
        let t = login(&sim).await;
        let before = get_json(&sim, &t.access, "/v2/cycle?limit=25").await;
        let expected = ids(&before["records"]);

        let page1 = get_json(&sim, &t.access, "/v2/cycle?limit=5").await;
        assert_eq!(ids(&page1["records"]), expected[..5]);
        let token = page1["next_token"].as_str().expect("token").to_string();

        // Two days pass: two new cycles appear at the top.
        let adv = control(&sim, "advance", json!({"hours": 48})).await;
        assert!(adv["added"].as_u64() >= Some(2));
        let now_top = get_json(&sim, &t.access, "/v2/cycle?limit=3").await;
        assert!(!expected.contains(&ids(&now_top["records"])[0]));

        let page2 = get_json(
            &sim,
            &t.access,
            &format!("/v2/cycle?limit=5&nextToken={}", enc(&token)),
        )
        .await;
        assert_eq!(ids(&page2["records"]), expected[5..10]);
    })
    .await;
}

#[tokio::test]
async fn last_page_has_no_token_and_pagination_ends() {
    bounded(async {
        let sim = sim(small(12)).await;
        let t = login(&sim).await;
        let d = dump(&sim).await;
        let n = d["cycle"].as_array().expect("cycles").len();
        // Exactly one full page: no token for an empty remainder.
        let page = get_json(&sim, &t.access, &format!("/v2/cycle?limit={n}")).await;
        assert!(matches!(page.get("next_token"), None | Some(Value::Null)));
        let page = get_json(&sim, &t.access, &format!("/v2/cycle?limit={}", n - 1)).await;
        assert!(page["next_token"].is_string());
        let empty = get_json(&sim, &t.access, "/v2/cycle?end=2001-01-01T00:00:00Z").await;
        assert_eq!(empty["records"], json!([]));
        assert!(matches!(empty.get("next_token"), None | Some(Value::Null)));
    })
    .await;
}

#[tokio::test]
async fn rate_limit_headers_and_429() {
    bounded(async {
        let sim = sim(SimConfig {
            rate_limit_minute: 3,
            ..small(3)
        })
        .await;
        let t = login(&sim).await;
        let client = http();
        let url = format!("{}/developer/v2/cycle", sim.base_url);
        // Even a 401 counts and carries the headers.
        let resp = client.get(&url).send().await.expect("req");
        assert_eq!(resp.status(), 401);
        let h = resp.headers();
        assert_eq!(h["x-ratelimit-limit"], "3, 3;window=60, 10000;window=86400");
        assert_eq!(h["x-ratelimit-remaining"], "2");
        for expected_remaining in ["1", "0"] {
            let resp = client
                .get(&url)
                .bearer_auth(&t.access)
                .send()
                .await
                .expect("req");
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["x-ratelimit-remaining"], expected_remaining);
        }
        let resp = client
            .get(&url)
            .bearer_auth(&t.access)
            .send()
            .await
            .expect("req");
        assert_eq!(resp.status(), 429);
        let h = resp.headers();
        assert!(h.get("retry-after").is_none());
        assert_eq!(h["x-ratelimit-remaining"], "0");
        let reset: u64 = h["x-ratelimit-reset"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("number");
        assert!((1..=60).contains(&reset), "reset {reset}");
        // Token calls are not rate limited.
        assert_eq!(refresh(&sim, &t.refresh).await.0, 200);
        let s = stats(&sim).await;
        assert_eq!(s["rate_limited"], 1);
        assert_eq!(s["requests"]["cycle.collection"], 4);
    })
    .await;
}

#[tokio::test]
async fn injected_faults() {
    bounded(async {
        let sim = sim(small(3)).await;
        let t = login(&sim).await;
        control(&sim, "faults", json!({"fail_next": 1})).await;
        let (status, _) = get(&sim, &t.access, "/v2/cycle").await;
        assert!((500..=503).contains(&status), "{status}");
        assert_eq!(get(&sim, &t.access, "/v2/cycle").await.0, 200);

        let settings = control(&sim, "faults", json!({"malformed_next": 1})).await;
        assert_eq!(settings["malformed_next"], 1);
        let (status, body) = get(&sim, &t.access, "/v2/activity/sleep").await;
        assert_eq!(status, 200);
        assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
        let (status, body) = get(&sim, &t.access, "/v2/activity/sleep").await;
        assert_eq!(status, 200);
        assert!(serde_json::from_str::<Value>(&body).is_ok());

        control(&sim, "faults", json!({"latency_ms": 150})).await;
        let started = std::time::Instant::now();
        assert_eq!(
            get(&sim, &t.access, "/v2/user/measurement/body").await.0,
            200
        );
        assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    })
    .await;
}

fn is_whoop_time(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    s.len() == 24
        && s.ends_with('Z')
        && s.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

#[tokio::test]
async fn generated_data_is_consistent() {
    bounded(async {
        let sim = sim(small(60)).await;
        let d = dump(&sim).await;
        let cycles = d["cycle"].as_array().expect("cycles");
        let sleeps = d["sleep"].as_array().expect("sleeps");
        let recoveries = d["recovery"].as_array().expect("recoveries");
        let workouts = d["workout"].as_array().expect("workouts");
        assert!(cycles.len() >= 58);

        let open: Vec<&Value> = cycles.iter().filter(|c| c.get("end").is_none()).collect();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0]["id"], cycles[0]["id"]);
        // WHOOP scores the current cycle as it goes: a strain so far, above zero (unless today
        // is one of the rare days that cannot be scored at all).
        match open[0]["score_state"].as_str() {
            Some("SCORED") => {
                let running = open[0]["score"]["strain"].as_f64().expect("strain so far");
                assert!(running > 0.0, "{running}");
            }
            other => assert_eq!(other, Some("PENDING_SCORE"), "{}", open[0]),
        }

        let sleep_by_id: HashMap<&str, &Value> = sleeps
            .iter()
            .map(|s| (s["id"].as_str().expect("id"), s))
            .collect();
        let cycle_ids: HashSet<i64> = cycles.iter().filter_map(|c| c["id"].as_i64()).collect();
        for r in recoveries {
            let s = sleep_by_id[r["sleep_id"].as_str().expect("sleep_id")];
            assert_eq!(s["nap"], false);
            assert_eq!(s["cycle_id"], r["cycle_id"]);
        }
        assert!(sleeps.iter().any(|s| s["nap"] == true));
        let main_sleeps = sleeps.iter().filter(|s| s["nap"] == false).count();
        assert_eq!(main_sleeps, recoveries.len());
        for s in sleeps {
            assert!(cycle_ids.contains(&s["cycle_id"].as_i64().expect("cycle_id")));
        }
        // The newest sleep and recovery are still being scored.
        let newest_main = sleeps.iter().find(|s| s["nap"] == false).expect("sleep");
        assert_eq!(newest_main["score_state"], "PENDING_SCORE");
        assert_eq!(recoveries[0]["score_state"], "PENDING_SCORE");

        let mut offsets = HashSet::new();
        for (kind, list) in [
            ("cycle", cycles),
            ("sleep", sleeps),
            ("recovery", recoveries),
            ("workout", workouts),
        ] {
            for r in list {
                let scored = r["score_state"] == "SCORED";
                assert_eq!(r.get("score").is_some(), scored, "{kind} {r}");
                for f in ["created_at", "updated_at", "start", "end"] {
                    if let Some(v) = r.get(f) {
                        assert!(is_whoop_time(v), "{kind}.{f} = {v}");
                    }
                }
                if let Some(o) = r.get("timezone_offset") {
                    offsets.insert(o.as_str().expect("offset").to_string());
                }
            }
        }
        assert!(offsets.len() >= 2, "{offsets:?}");
        for w in workouts.iter().filter(|w| w["score_state"] == "SCORED") {
            assert!(w["score"]["zone_durations"].is_object());
            assert!(w["score"].get("zone_duration").is_none());
            assert!(w["sport_name"].is_string());
        }
        let calibrating = recoveries
            .iter()
            .filter(|r| r["score"]["user_calibrating"] == true)
            .count();
        assert!((1..=4).contains(&calibrating));
        let oldest = sleeps.last().expect("sleep");
        assert!(oldest["score"]
            .get("sleep_consistency_percentage")
            .is_none());
    })
    .await;
}

#[tokio::test]
async fn same_seed_same_data_different_seed_different_data() {
    bounded(async {
        let a = sim(SimConfig {
            seed: 11,
            ..small(30)
        })
        .await;
        let b = sim(SimConfig {
            seed: 11,
            ..small(30)
        })
        .await;
        let c = sim(SimConfig {
            seed: 12,
            ..small(30)
        })
        .await;
        let (da, db, dc) = (dump(&a).await, dump(&b).await, dump(&c).await);
        assert_eq!(da, db);
        assert_ne!(da["sleep"], dc["sleep"]);
        assert_eq!(a.user_id, b.user_id);
        assert_ne!(a.user_id, c.user_id);
        assert_eq!(da["profile"]["user_id"], a.user_id);
    })
    .await;
}

#[tokio::test]
async fn shutdown_stops_serving() {
    bounded(async {
        let sim = sim(small(2)).await;
        let client = http();
        let url = format!("{}/_sim/stats", sim.base_url);
        let resp = client.get(&url).send().await.expect("running");
        assert!(resp.status().is_success());
        sim.shutdown();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(client.get(&url).send().await.is_err());
    })
    .await;
}

#[tokio::test]
async fn the_newest_night_can_start_scored() {
    bounded(async {
        let newest_main = |d: &Value| {
            let sleeps = d["sleep"].as_array().expect("sleeps").clone();
            sleeps
                .into_iter()
                .find(|s| s["nap"] == false)
                .expect("sleep")
        };
        let held = dump(&sim(small(30)).await).await;
        let unheld = dump(
            &sim(SimConfig {
                newest_night_pending: false,
                ..small(30)
            })
            .await,
        )
        .await;
        // By default last night is held back, still being scored.
        assert_eq!(newest_main(&held)["score_state"], "PENDING_SCORE");
        // Without the hold it is scored, unless it ended so recently that WHOOP would still be
        // scoring it anyway (uploads come up to 45 minutes after waking, scores up to 75 after).
        let night = newest_main(&unheld);
        let ended = chrono::DateTime::parse_from_rfc3339(night["end"].as_str().expect("end"))
            .expect("a time");
        if chrono::Utc::now() - ended.with_timezone(&chrono::Utc) > chrono::Duration::hours(2) {
            assert_ne!(night["score_state"], "PENDING_SCORE", "{night}");
        }
    })
    .await;
}
