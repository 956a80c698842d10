//! Many members, one app (`--users N`) over real HTTP: each member reads only their own data
//! with their own tokens, the rate limit counts every member together, sign-ins take members in
//! turn (or the one picked on the consent page), dumps and stats are per member, and webhooks
//! carry the member's user id.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use common::*;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use whoop_sim::{SimConfig, SimHandle};

fn members(users: u32, days: u32) -> SimConfig {
    SimConfig {
        users,
        ..small(days)
    }
}

async fn get_sim(sim: &SimHandle, path_and_query: &str) -> (u16, Value) {
    let resp = http()
        .get(format!("{}{path_and_query}", sim.base_url))
        .send()
        .await
        .expect("control GET");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("control JSON"))
}

async fn dump_of(sim: &SimHandle, user: u32) -> Value {
    let (status, body) = get_sim(sim, &format!("/_sim/dump?user={user}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn ids(records: &Value, key: &str) -> Vec<String> {
    records
        .as_array()
        .expect("an array of records")
        .iter()
        .map(|r| match &r[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// Every record of a collection through the API, following `nextToken`.
async fn all_ids(sim: &SimHandle, token: &str, path: &str, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let query = match &next {
            Some(t) => format!("{path}?limit=25&nextToken={t}"),
            None => format!("{path}?limit=25"),
        };
        let page = get_json(sim, token, &query).await;
        out.extend(ids(&page["records"], key));
        match page["next_token"].as_str() {
            Some(t) if !t.is_empty() => next = Some(t.to_string()),
            _ => return out,
        }
    }
}

async fn profile_user(sim: &SimHandle, token: &str) -> i64 {
    get_json(sim, token, "/v2/user/profile/basic").await["user_id"]
        .as_i64()
        .expect("user_id")
}

#[tokio::test]
async fn members_read_their_own_data_with_their_own_tokens_and_nobody_elses() {
    bounded(async {
        let sim = sim(members(3, 20)).await;
        assert_eq!(sim.user_ids.len(), 3);
        assert_eq!(sim.user_ids[0], sim.user_id);
        let one = login(&sim).await;
        let two = login(&sim).await;

        let p1 = get_json(&sim, &one.access, "/v2/user/profile/basic").await;
        let p2 = get_json(&sim, &two.access, "/v2/user/profile/basic").await;
        assert_eq!(p1["user_id"], sim.user_ids[0]);
        assert_eq!(p2["user_id"], sim.user_ids[1]);
        assert_ne!(p1["email"], p2["email"]);
        assert_ne!(
            (&p1["first_name"], &p1["last_name"]),
            (&p2["first_name"], &p2["last_name"])
        );

        // Each token reads exactly its member's records, as the member's dump lists them.
        let d1 = dump_of(&sim, 1).await;
        let d2 = dump_of(&sim, 2).await;
        assert_eq!(d1["profile"], p1);
        assert_eq!(d2["profile"], p2);
        for (path, collection, key) in [
            ("/v2/cycle", "cycle", "id"),
            ("/v2/activity/sleep", "sleep", "id"),
            ("/v2/activity/workout", "workout", "id"),
            ("/v2/recovery", "recovery", "cycle_id"),
        ] {
            let mine1 = all_ids(&sim, &one.access, path, key).await;
            let mine2 = all_ids(&sim, &two.access, path, key).await;
            assert_eq!(mine1, ids(&d1[collection], key), "{path} of member 1");
            assert_eq!(mine2, ids(&d2[collection], key), "{path} of member 2");
            assert!(!mine1.is_empty());
            assert!(
                mine1.iter().all(|id| !mine2.contains(id)),
                "{path}: the members share records"
            );
        }
        assert!(d2["cycle"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["user_id"] == sim.user_ids[1]));

        // A record of member 1 is not found with member 2's token, and the other way round.
        let cycle1 = &ids(&d1["cycle"], "id")[0];
        let sleep1 = &ids(&d1["sleep"], "id")[0];
        let workout2 = &ids(&d2["workout"], "id")[0];
        assert_eq!(
            get(&sim, &one.access, &format!("/v2/cycle/{cycle1}"))
                .await
                .0,
            200
        );
        assert_eq!(
            get(&sim, &two.access, &format!("/v2/cycle/{cycle1}"))
                .await
                .0,
            404
        );
        let recovery = format!("/v2/cycle/{cycle1}/recovery");
        assert_eq!(get(&sim, &two.access, &recovery).await.0, 404);
        let sleep = format!("/v2/activity/sleep/{sleep1}");
        assert_eq!(get(&sim, &two.access, &sleep).await.0, 404);
        let workout = format!("/v2/activity/workout/{workout2}");
        assert_eq!(get(&sim, &two.access, &workout).await.0, 200);
        assert_eq!(get(&sim, &one.access, &workout).await.0, 404);

        // A refreshed token still reads its own member.
        let (status, refreshed) = refresh(&sim, &two.refresh).await;
        assert_eq!(status, 200, "{refreshed}");
        let access = refreshed["access_token"].as_str().unwrap();
        assert_eq!(profile_user(&sim, access).await, sim.user_ids[1]);
    })
    .await;
}

#[tokio::test]
async fn the_rate_limit_counts_every_member_together() {
    bounded(async {
        let sim = sim(SimConfig {
            rate_limit_minute: 5,
            ..members(2, 5)
        })
        .await;
        let one = login(&sim).await;
        let two = login(&sim).await;
        let remaining = |resp: &reqwest::Response| -> u64 {
            resp.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        };
        let call = |token: String| {
            let url = format!("{}/developer/v2/cycle", sim.base_url);
            async move {
                http()
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .expect("request")
            }
        };
        let mut seen = Vec::new();
        for token in [
            &one.access,
            &one.access,
            &one.access,
            &two.access,
            &two.access,
        ] {
            let resp = call(token.clone()).await;
            assert_eq!(resp.status(), 200);
            seen.push(remaining(&resp));
        }
        // One window for the app: member 2's requests see what member 1 used.
        assert_eq!(seen, [4, 3, 2, 1, 0]);
        assert_eq!(
            sim_header(&call(one.access.clone()).await),
            "5, 5;window=60, 10000;window=86400"
        );
        let refused = call(two.access.clone()).await;
        assert_eq!(refused.status(), 429);
        assert_eq!(remaining(&refused), 0);

        let (_, stats) = get_sim(&sim, "/_sim/stats").await;
        assert_eq!(stats["users"], 2);
        assert_eq!(stats["app"]["minute"]["used"], 5);
        assert_eq!(stats["app"]["minute"]["limit"], 5);
        assert_eq!(stats["app"]["minute"]["remaining"], 0);
        assert_eq!(stats["app"]["day"]["used"], 5);
        assert_eq!(stats["app"]["requests"], 7);
        assert_eq!(stats["app"]["rate_limited"], 2);
        assert_eq!(stats["rate_limited"], 2);
        let m = stats["members"].as_array().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            (
                &m[0]["requests"],
                &m[0]["minute_used"],
                &m[0]["rate_limited"]
            ),
            (&json!(4), &json!(3), &json!(1))
        );
        assert_eq!(
            (
                &m[1]["requests"],
                &m[1]["minute_used"],
                &m[1]["rate_limited"]
            ),
            (&json!(3), &json!(2), &json!(1))
        );
        assert_eq!(m[1]["day_used"], 2);
        assert_eq!(m[1]["user_id"], sim.user_ids[1]);

        // Resetting the counters keeps the windows: they are the limiter's reality.
        let reset = control(&sim, "reset-stats", json!({})).await;
        assert_eq!(reset["app"]["rate_limited"], 0);
        assert_eq!(reset["members"][0]["requests"], 0);
        assert_eq!(reset["members"][1]["rate_limited"], 0);
        assert_eq!(reset["app"]["minute"]["used"], 5);
        assert_eq!(reset["members"][1]["minute_used"], 2);
    })
    .await;
}

#[tokio::test]
async fn time_scaled_windows_reopen_sooner_for_the_whole_app() {
    bounded(async {
        let sim = sim(SimConfig {
            rate_limit_minute: 2,
            // A "minute" of 2 s: short, yet long enough for three requests on a busy machine.
            rate_window_scale: 30.0,
            ..members(2, 3)
        })
        .await;
        let one = login(&sim).await;
        let two = login(&sim).await;
        assert_eq!(get(&sim, &one.access, "/v2/cycle").await.0, 200);
        let resp = http()
            .get(format!("{}/developer/v2/cycle", sim.base_url))
            .bearer_auth(&two.access)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(sim_header(&resp), "2, 2;window=2, 10000;window=2880");
        assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
        assert_eq!(get(&sim, &one.access, "/v2/cycle").await.0, 429);
        // The scaled "minute" is over after 2 s of real time.
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        assert_eq!(get(&sim, &two.access, "/v2/cycle").await.0, 200);
        let (_, stats) = get_sim(&sim, "/_sim/stats").await;
        assert_eq!(stats["app"]["minute"]["length_secs"], 2);
        assert_eq!(stats["app"]["day"]["length_secs"], 2880);
        assert_eq!(stats["app"]["day"]["used"], 3);
        assert_eq!(stats["members"][0]["rate_limited"], 1);
    })
    .await;
}

fn sim_header(resp: &reqwest::Response) -> String {
    resp.headers()["x-ratelimit-limit"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn auto_approve_signs_members_in_turn_and_wraps() {
    bounded(async {
        let sim = sim(members(3, 3)).await;
        let mut who = Vec::new();
        for _ in 0..4 {
            let t = login(&sim).await;
            who.push(profile_user(&sim, &t.access).await);
        }
        let u = &sim.user_ids;
        assert_eq!(who, [u[0], u[1], u[2], u[0]]);

        // The turn can be set; the ones after follow on from it.
        let set = control(&sim, "next-member", json!({"user": 3})).await;
        assert_eq!(set["user_id"], u[2]);
        let t = login(&sim).await;
        assert_eq!(profile_user(&sim, &t.access).await, u[2]);
        let t = login(&sim).await;
        assert_eq!(profile_user(&sim, &t.access).await, u[0]);
        let bad = http()
            .post(format!("{}/_sim/next-member", sim.base_url))
            .json(&json!({"user": 4}))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);

        let (_, grants) = get_sim(&sim, "/_sim/grants").await;
        let members: Vec<u64> = grants
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["member"].as_u64().unwrap())
            .collect();
        assert_eq!(members, [1, 2, 3, 1, 3, 1]);
    })
    .await;
}

#[tokio::test]
async fn the_consent_page_lets_one_pick_the_member() {
    bounded(async {
        let sim = sim(SimConfig {
            auto_approve: false,
            ..members(3, 3)
        })
        .await;
        let page = |state: &'static str| {
            let url = auth_url(&sim, ALL_SCOPES, state, None);
            async move {
                let resp = http()
                    .get(url)
                    .header("accept", "text/html")
                    .send()
                    .await
                    .expect("consent page");
                assert_eq!(resp.status(), 200);
                resp.text().await.expect("HTML")
            }
        };
        let consent_id = |html: &str| -> String {
            let at = html
                .find("name=\"consent\" value=\"")
                .expect("consent field")
                + 22;
            html[at..].split('"').next().unwrap().to_string()
        };
        let decide = |form: Vec<(&'static str, String)>| {
            let url = format!("{}/oauth/oauth2/auth/decision", sim.base_url);
            async move { http().post(url).form(&form).send().await.expect("decision") }
        };

        let html = page("state-pick-1").await;
        assert_eq!(html.matches("<option").count(), 3, "{html}");
        assert!(html.contains("<option value=\"1\" selected>"), "{html}");
        let (_, d3) = get_sim(&sim, "/_sim/dump?user=3").await;
        let email3 = d3["profile"]["email"].as_str().unwrap();
        assert!(html.contains(email3), "member 3 is listed by email");

        let resp = decide(vec![
            ("consent", consent_id(&html)),
            ("decision", "allow".into()),
            ("member", "3".into()),
        ])
        .await;
        assert_eq!(resp.status(), 302);
        let code = query_of(&location(&resp))["code"].clone();
        let (status, tokens) = exchange(&sim, &code, None).await;
        assert_eq!(status, 200, "{tokens}");
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(profile_user(&sim, access).await, sim.user_ids[2]);

        // The next page offers the member after the one picked.
        let html = page("state-pick-2").await;
        assert!(html.contains("<option value=\"1\" selected>"), "{html}");
        let resp = decide(vec![
            ("consent", consent_id(&html)),
            ("decision", "allow".into()),
            ("member", "9".into()),
        ])
        .await;
        assert_eq!(resp.status(), 400);
    })
    .await;
}

#[tokio::test]
async fn dumps_and_stats_are_per_member() {
    bounded(async {
        let sim = sim(members(3, 10)).await;
        let (_, before) = get_sim(&sim, "/_sim/stats").await;
        let generated: Vec<bool> = before["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["generated"] == true)
            .collect();
        assert_eq!(
            generated,
            [true, false, false],
            "histories are made on first use"
        );
        assert!(before["members"][1]["records"].is_null());
        assert_eq!(before["app"]["generated"], 1);

        let d1 = dump_of(&sim, 1).await;
        let plain = dump(&sim).await;
        assert_eq!(
            plain["profile"], d1["profile"],
            "no user: member 1, as before"
        );
        let d2 = dump_of(&sim, 2).await;
        assert_eq!(d2["profile"]["user_id"], sim.user_ids[1]);
        assert_ne!(d1["cycle"], d2["cycle"]);
        let (status, body) = get_sim(&sim, "/_sim/dump?user=4").await;
        assert_eq!(status, 400, "{body}");
        assert!(body["error"].as_str().unwrap().contains("1 to 3"), "{body}");

        let (_, s2) = get_sim(&sim, "/_sim/stats?user=2").await;
        let m = s2["members"].as_array().unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0]["user"], 2);
        assert_eq!(m[0]["generated"], true);
        for collection in ["cycle", "sleep", "recovery", "workout"] {
            let n = d2[collection].as_array().unwrap().len();
            assert_eq!(s2["records"][collection], n, "{collection}");
            assert_eq!(m[0]["records"][collection], n, "{collection}");
        }
        // The same seed gives member 2 the same history in another simulator, also when every
        // history is made at start.
        let again = whoop_sim::start(
            SimConfig {
                generate_all_at_start: true,
                ..members(3, 10)
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let (_, all) = get_sim(&again, "/_sim/stats").await;
        assert_eq!(all["app"]["generated"], 3);
        let d2_again = dump_of(&again, 2).await;
        assert_eq!(d2_again["profile"], d2["profile"]);
        assert_eq!(ids(&d2_again["sleep"], "id"), ids(&d2["sleep"], "id"));
    })
    .await;
}

/// A webhook endpoint that takes every delivery.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(serde_json::from_slice::<Value>(&body).expect("JSON"));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), rx)
}

async fn take(rx: &mut mpsc::UnboundedReceiver<Value>, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    while got.len() < n {
        let v = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("webhook arrives in time")
            .expect("receiver open");
        got.push(v);
    }
    // Nothing more than expected.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err(), "an unexpected webhook arrived");
    got
}

#[tokio::test]
async fn webhooks_carry_the_member_they_are_about() {
    bounded(async {
        let (url, mut rx) = receiver().await;
        let sim = sim(SimConfig {
            webhook_url: Some(url),
            ..members(3, 5)
        })
        .await;
        let u = sim.user_ids.clone();
        let _one = login(&sim).await;
        let _two = login(&sim).await;
        // Member 3 exists (and has a history) but never authorized the app.
        dump_of(&sim, 3).await;

        let fired = control(
            &sim,
            "webhook",
            json!({"type": "workout.updated", "id": "hand-made", "user": 2}),
        )
        .await;
        let got = take(&mut rx, 1).await;
        assert_eq!(got[0]["user_id"], u[1]);
        assert_eq!(got[0]["trace_id"], fired["trace_id"]);

        // A day and a half passes: each signed-in member hears about their own records.
        let summary = control(&sim, "advance", json!({"hours": 36})).await;
        let events = summary["events"].as_array().unwrap();
        let users_in: Vec<u64> = events.iter().map(|e| e["user"].as_u64().unwrap()).collect();
        assert!(users_in.contains(&1) && users_in.contains(&2) && users_in.contains(&3));
        let mut expected: HashMap<(i64, String), usize> = HashMap::new();
        for e in events.iter().filter(|e| e["user"] != 3) {
            let user_id = u[e["user"].as_u64().unwrap() as usize - 1];
            *expected
                .entry((user_id, e["id"].as_str().unwrap().to_string()))
                .or_default() += 1;
        }
        let n: usize = expected.values().sum();
        let mut delivered: HashMap<(i64, String), usize> = HashMap::new();
        for w in take(&mut rx, n).await {
            *delivered
                .entry((
                    w["user_id"].as_i64().unwrap(),
                    w["id"].as_str().unwrap().to_string(),
                ))
                .or_default() += 1;
        }
        assert_eq!(delivered, expected);
        // And what member 2 heard about is member 2's.
        let d2 = dump_of(&sim, 2).await;
        let sleeps2 = ids(&d2["sleep"], "id");
        assert!(expected
            .keys()
            .filter(|(user, _)| *user == u[1])
            .any(|(_, id)| sleeps2.contains(id)));

        // An edit of member 2's main sleep is announced (sleep and recovery) as member 2's.
        let sleep = d2["recovery"][1]["sleep_id"].as_str().unwrap();
        control(
            &sim,
            "edit",
            json!({"collection": "sleep", "id": sleep, "user": 2}),
        )
        .await;
        let got = take(&mut rx, 2).await;
        assert!(got.iter().all(|w| w["user_id"] == u[1] && w["id"] == sleep));

        let (_, before) = get_sim(&sim, "/_sim/stats").await;
        let notified: Vec<bool> = before["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["notified"] == true)
            .collect();
        assert_eq!(notified, [true, true, false]);
        assert_eq!(before["members"][1]["grants"], 1);

        // Member 2 revokes the app: member 1 is still heard about, member 2 no more.
        control(&sim, "revoke", json!({"user": 2})).await;
        let (_, after) = get_sim(&sim, "/_sim/stats?user=2").await;
        assert_eq!(after["members"][0]["grants"], 0);
        assert_eq!(after["members"][0]["notified"], false);
        let summary = control(&sim, "advance", json!({"hours": 24})).await;
        let from_one = summary["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["user"] == 1)
            .count();
        assert!(from_one > 0);
        let got = take(&mut rx, from_one).await;
        assert!(got.iter().all(|w| w["user_id"] == u[0]));
    })
    .await;
}

#[test]
fn the_binary_takes_users_and_documents_them() {
    let bin = env!("CARGO_BIN_EXE_whoop-sim");
    let out = std::process::Command::new(bin)
        .arg("--help")
        .output()
        .expect("whoop-sim --help runs");
    let help = String::from_utf8_lossy(&out.stdout);
    for text in [
        "--users",
        "/_sim/dump?user=K",
        "/_sim/next-member",
        "in turn",
    ] {
        assert!(help.contains(text), "{text} missing from --help:\n{help}");
    }
    let refused = std::process::Command::new(bin)
        .args(["--users", "0"])
        .output()
        .expect("whoop-sim runs");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--users"), "{err}");

    // The ready line says how many members there are.
    let mut child = std::process::Command::new(bin)
        .args(["--users", "3", "--days", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("whoop-sim starts");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("ready line");
    let _ = child.kill();
    let _ = child.wait();
    let ready: Value = serde_json::from_str(&line).expect("JSON ready line");
    assert_eq!(ready["users"], 3, "{line}");
    assert!(ready["user_id"].is_i64());
}

#[tokio::test]
async fn control_requests_change_the_member_they_name() {
    bounded(async {
        let sim = sim(members(2, 10)).await;
        let before1 = dump_of(&sim, 1).await;
        let before2 = dump_of(&sim, 2).await;

        // Deleting member 2's workout leaves member 1 alone; member 1 has no such record.
        let workout = ids(&before2["workout"], "id")[0].clone();
        let body = json!({"collection": "workout", "id": workout, "user": 1});
        let missing = http()
            .post(format!("{}/_sim/delete", sim.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        let deleted = control(
            &sim,
            "delete",
            json!({"collection": "workout", "id": workout, "user": 2}),
        )
        .await;
        assert_eq!(deleted["events"][0]["type"], "workout.deleted");
        let after2 = dump_of(&sim, 2).await;
        assert!(!ids(&after2["workout"], "id").contains(&workout));
        assert_eq!(dump_of(&sim, 1).await["workout"], before1["workout"]);

        // A workout logged for yesterday by member 2 is member 2's.
        let logged = control(&sim, "log-workout", json!({"hours_ago": 20, "user": 2})).await;
        let new_id = logged["events"][0]["id"].as_str().unwrap().to_string();
        assert!(ids(&dump_of(&sim, 2).await["workout"], "id").contains(&new_id));
        assert!(!ids(&dump_of(&sim, 1).await["workout"], "id").contains(&new_id));

        // Late records for member 2 only.
        let late = control(
            &sim,
            "late-records",
            json!({"upload_delay_hours": 3.0, "user": 2}),
        )
        .await;
        assert_eq!(late["upload_delay_hours"], 3.0);
        let all = control(&sim, "late-records", json!({})).await;
        assert_eq!(all["upload_delay_hours"], 0.0, "the others keep no delay");

        // A member that does not exist is a clear 400.
        for (path, body) in [
            (
                "edit",
                json!({"collection": "sleep", "id": workout, "user": 3}),
            ),
            (
                "webhook",
                json!({"type": "sleep.updated", "id": "x", "user": 0}),
            ),
            ("log-workout", json!({"hours_ago": 1, "user": 9})),
            ("revoke", json!({"user": 5})),
        ] {
            let resp = http()
                .post(format!("{}/_sim/{path}", sim.base_url))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 400, "{path}");
            let err: Value = resp.json().await.unwrap();
            assert!(
                err["error"]
                    .as_str()
                    .unwrap()
                    .contains("members are 1 to 2"),
                "{path}: {err}"
            );
        }
    })
    .await;
}
