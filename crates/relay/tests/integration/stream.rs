//! Event streams: isolation between users, authentication, resume, long poll, and gaps.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    devices_only_see_and_ack_their_own_users_events,
    events_before_any_device_are_delivered_when_it_binds,
    resume_from_a_cursor_loses_and_repeats_nothing,
    long_poll_returns_events_and_gaps,
    foreign_malformed_and_future_cursors_get_a_gap,
    a_members_webhooks_wake_only_that_members_streams,
);

const WAIT: Duration = Duration::from_secs(5);

async fn devices_only_see_and_ack_their_own_users_events(db: &Db) {
    // Two WHOOP users: two simulators (same app secret), each brokered by its own relay node on
    // the shared database; both send their webhooks to the first node.
    let sim_a = sim(21, SECRET).await;
    let sim_b = sim(22, SECRET).await;
    assert_ne!(sim_a.user_id, sim_b.user_id);
    let node_a = relay(config(db, &sim_a)).await;
    let node_b = relay(config(db, &sim_b)).await;
    assert_eq!(node_a.log_epoch(), node_b.log_epoch());
    point_sim_at(&sim_a, &node_a.base_url).await;
    point_sim_at(&sim_b, &node_a.base_url).await;
    let a = connect(&sim_a, &node_a.base_url).await;
    let b = connect(&sim_b, &node_b.base_url).await;

    let mut stream_a = Sse::open(&node_a.base_url, &a.credential, None).await;
    let mut stream_b = Sse::open(&node_a.base_url, &b.credential, None).await;
    let mut traces_a = Vec::new();
    let mut traces_b = Vec::new();
    for _ in 0..3 {
        traces_a.push(fire(&sim_a, "sleep.updated", &uuid()).await);
        traces_b.push(fire(&sim_b, "workout.updated", &uuid()).await);
    }
    let got_a = stream_a.whoop_events(3, WAIT).await;
    let got_b = stream_b.whoop_events(3, WAIT).await;
    for ev in &got_a {
        assert_eq!(ev.json()["user_id"], sim_a.user_id);
    }
    for ev in &got_b {
        assert_eq!(ev.json()["user_id"], sim_b.user_id);
    }
    let mut seen_a: Vec<String> = got_a
        .iter()
        .map(|e| {
            e.json()["trace_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    seen_a.sort();
    traces_a.sort();
    assert_eq!(seen_a, traces_a);
    let extra = stream_a.next(Duration::from_millis(500)).await;
    assert!(extra.is_none(), "{extra:?}");
    // The long poll from the very start shows the same separation.
    let (_, all_b) = poll(&node_a.base_url, &b.credential, None, 0).await;
    assert_eq!(all_b["events"].as_array().map(Vec::len), Some(3));
    assert!(all_b["events"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| e["user_id"] == sim_b.user_id));

    // Acks: own cursor yes; another user's, another log's or garbage no.
    let own = got_a[2].cursor();
    let theirs = got_b[2].cursor();
    let acked_sql = format!(
        "SELECT acked_seq FROM devices WHERE user_id = {}",
        sim_a.user_id
    );
    let acked = || db.scalar(&acked_sql);
    assert_eq!(
        ack(&node_a.base_url, &a.credential, theirs).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(acked().await, 0);
    assert_eq!(
        ack(&node_a.base_url, &a.credential, own).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(acked().await, seq_of(own));
    // Acks never move backwards.
    assert_eq!(
        ack(&node_a.base_url, &a.credential, got_a[0].cursor()).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(acked().await, seq_of(own));
    let foreign = format!("v1.0123456789abcdef.{}", seq_of(own));
    assert_eq!(
        ack(&node_a.base_url, &a.credential, &foreign).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        ack(&node_a.base_url, &a.credential, "garbage").await,
        StatusCode::BAD_REQUEST
    );

    // Unknown, missing, malformed and revoked credentials all get the same 401.
    let (status, unknown) = get_with(
        &node_a.base_url,
        "/v1/events?mode=poll&wait_secs=0",
        Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, missing) = get_with(&node_a.base_url, "/v1/events", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing, unknown);
    let resp = http()
        .delete(format!("{}/v1/devices/self", node_a.base_url))
        .bearer_auth(&a.credential)
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, revoked) = get_with(&node_b.base_url, "/v1/events", Some(&a.credential)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(revoked, unknown);
    assert_eq!(
        ack(&node_a.base_url, &a.credential, own).await,
        StatusCode::UNAUTHORIZED
    );
    let resp = http()
        .delete(format!("{}/v1/devices/self", node_a.base_url))
        .bearer_auth(&a.credential)
        .send()
        .await
        .expect("revoke again");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // B is unaffected.
    let (status, _) = poll(&node_a.base_url, &b.credential, None, 0).await;
    assert_eq!(status, StatusCode::OK);
}

async fn events_before_any_device_are_delivered_when_it_binds(db: &Db) {
    let sim = sim(23, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    point_sim_at(&sim, &relay.base_url).await;
    let mut traces = Vec::new();
    for kind in ["sleep.updated", "recovery.updated", "workout.updated"] {
        traces.push(fire(&sim, kind, &uuid()).await);
    }
    let count = || db.scalar("SELECT COUNT(*) FROM events");
    eventually(WAIT, "three events stored", || async { count().await == 3 }).await;
    let device = connect(&sim, &relay.base_url).await;
    let mut stream = Sse::open(&relay.base_url, &device.credential, None).await;
    let events = stream.whoop_events(3, WAIT).await;
    let mut got: Vec<String> = events
        .iter()
        .map(|e| {
            e.json()["trace_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    got.sort();
    traces.sort();
    assert_eq!(got, traces);
}

async fn resume_from_a_cursor_loses_and_repeats_nothing(db: &Db) {
    let sim = sim(24, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    point_sim_at(&sim, &relay.base_url).await;
    let device = connect(&sim, &relay.base_url).await;
    let mut applied: Vec<String> = Vec::new();
    let mut sent: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    // Five sessions: each reads what is there, disconnects, and more arrives while it is away.
    for round in 0..5 {
        for _ in 0..2 {
            sent.push(fire(&sim, "sleep.updated", &uuid()).await);
        }
        let mut stream = Sse::open(&relay.base_url, &device.credential, cursor.as_deref()).await;
        for ev in stream.whoop_events(2, WAIT).await {
            applied.push(
                ev.json()["trace_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            cursor = Some(ev.cursor().to_string());
        }
        assert!(
            stream.next(Duration::from_millis(200)).await.is_none(),
            "round {round}: nothing more"
        );
    }
    let mut unique = applied.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), applied.len(), "nothing twice");
    let mut sent_sorted = sent.clone();
    sent_sorted.sort();
    assert_eq!(unique, sent_sorted, "nothing lost");

    // `?cursor=` works too, and Last-Event-ID (what a reconnecting EventSource sends) wins.
    let (_, all) = poll(&relay.base_url, &device.credential, None, 0).await;
    let events = all["events"].as_array().expect("events").clone();
    assert_eq!(events.len(), 10);
    let eighth = events[7]["cursor"].as_str().expect("cursor");
    let second = events[1]["cursor"].as_str().expect("cursor");
    let mut stream = Sse::open_url(
        &format!("{}/v1/events?cursor={second}", relay.base_url),
        &device.credential,
        Some(eighth),
    )
    .await;
    let rest = stream.whoop_events(2, WAIT).await;
    assert_eq!(rest[0].json()["trace_id"], events[8]["trace_id"]);
    assert_eq!(rest[1].json()["trace_id"], events[9]["trace_id"]);
    let mut stream = Sse::open_url(
        &format!("{}/v1/events?cursor={eighth}", relay.base_url),
        &device.credential,
        None,
    )
    .await;
    assert_eq!(
        stream.whoop_events(2, WAIT).await[1].cursor(),
        rest[1].cursor()
    );
    // Idle streams carry heartbeats.
    assert!(stream.next(Duration::from_millis(1200)).await.is_none());
    assert!(
        stream.heartbeats >= 1,
        "heartbeat comments on an idle stream"
    );
}

async fn long_poll_returns_events_and_gaps(db: &Db) {
    let sim = sim(25, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    point_sim_at(&sim, &relay.base_url).await;
    let device = connect(&sim, &relay.base_url).await;
    let base = relay.base_url.clone();

    // Nothing there: the poll waits for the whole wait and answers empty.
    let started = Instant::now();
    let (status, body) = poll(&base, &device.credential, None, 1).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(body["events"].as_array().map(Vec::len), Some(0));
    assert_eq!(body["gap"], false);
    assert!(body.get("head").is_none());

    // An event arriving mid-wait ends the wait at once.
    let started = Instant::now();
    let waiting = tokio::spawn({
        let base = base.clone();
        let credential = device.credential.clone();
        async move { poll(&base, &credential, None, 20).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let trace = fire(&sim, "sleep.updated", &uuid()).await;
    let (status, body) = waiting.await.expect("poll task");
    assert_eq!(status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken, not timed out"
    );
    let events = body["events"].as_array().expect("events");
    assert_eq!(events.len(), 1);
    let ev = &events[0];
    assert_eq!(ev["trace_id"], trace.as_str());
    assert_eq!(ev["type"], "sleep.updated");
    assert_eq!(ev["user_id"], sim.user_id);
    let cursor = ev["cursor"].as_str().expect("cursor").to_string();

    // From that cursor: nothing new.
    let (_, body) = poll(&base, &device.credential, Some(&cursor), 0).await;
    assert_eq!(body["events"].as_array().map(Vec::len), Some(0));

    // A cursor of another log: a gap at once, with the head to carry on from.
    let started = Instant::now();
    let (status, body) = poll(&base, &device.credential, Some("v1.feedface.1"), 20).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(body["gap"], true);
    assert_eq!(body["reason"], "log_replaced");
    let head = body["head"].as_str().expect("head").to_string();
    assert_eq!(head, cursor, "the head is the user's latest position");
    let next = fire(&sim, "workout.updated", &uuid()).await;
    let (_, body) = poll(&base, &device.credential, Some(&head), 5).await;
    assert_eq!(body["gap"], false);
    assert_eq!(body["events"][0]["trace_id"], next.as_str());

    // Bad parameters.
    let (status, _) = get_with(
        &base,
        "/v1/events?mode=poll&wait_secs=soon",
        Some(&device.credential),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get_with(
        &base,
        "/v1/events?mode=carrier-pigeon",
        Some(&device.credential),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn foreign_malformed_and_future_cursors_get_a_gap(db: &Db) {
    let sim = sim(26, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    point_sim_at(&sim, &relay.base_url).await;
    let device = connect(&sim, &relay.base_url).await;
    let mut first = Sse::open(&relay.base_url, &device.credential, None).await;
    fire(&sim, "sleep.updated", &uuid()).await;
    let mut latest = first.expect(WAIT).await.cursor().to_string();
    drop(first);
    let epoch = relay.log_epoch().to_string();
    for (cursor, reason) in [
        ("v1.0badc0ffee0badc0ffee.7".to_string(), "log_replaced"),
        ("not-a-cursor".to_string(), "malformed_cursor"),
        (format!("v1.{epoch}.999999"), "log_restored"),
    ] {
        let mut stream = Sse::open(&relay.base_url, &device.credential, Some(&cursor)).await;
        let gap = stream.expect(WAIT).await;
        assert_eq!(gap.event, "gap", "{cursor}");
        assert_eq!(gap.json()["reason"], reason);
        assert_eq!(gap.cursor(), latest, "carry on from the head");
        // Then normal streaming.
        let trace = fire(&sim, "recovery.updated", &uuid()).await;
        let ev = stream.expect(WAIT).await;
        assert_eq!(ev.event, "whoop");
        assert_eq!(ev.json()["trace_id"], trace.as_str());
        // The gap's head is a position the device may ack.
        assert_eq!(
            ack(&relay.base_url, &device.credential, gap.cursor()).await,
            StatusCode::NO_CONTENT
        );
        drop(stream);
        // The head moves on with the log.
        let (_, body) = poll(&relay.base_url, &device.credential, Some(&cursor), 0).await;
        assert_eq!(body["gap"], true);
        assert_eq!(body["head"], ev.cursor());
        latest = ev.cursor().to_string();
    }
}

async fn a_members_webhooks_wake_only_that_members_streams(db: &Db) {
    // Two WHOOP members (two simulators, each brokered by its own node on the shared database);
    // both members' streams are open on the first node, which takes every webhook.
    let sim_a = sim(31, SECRET).await;
    let sim_b = sim(32, SECRET).await;
    let node = relay(config(db, &sim_a)).await;
    let broker_b = relay(config(db, &sim_b)).await;
    let a = connect(&sim_a, &node.base_url).await;
    let b = connect(&sim_b, &broker_b.base_url).await;
    let mut stream_b = Sse::open(&node.base_url, &b.credential, None).await;
    eventually(WAIT, "B's stream is open", || async {
        metric(&node.base_url, "relay_streams_open").await == 1.0
    })
    .await;

    // Member A's webhooks, with only B's stream open: B's stream is never woken.
    let woken_before = metric(&node.base_url, "relay_stream_wakeups_total").await;
    for _ in 0..10 {
        let body = webhook_body(sim_a.user_id, "workout.updated", &uuid(), &uuid());
        assert_eq!(
            post_signed(&node.base_url, SECRET, &body, 0).await,
            StatusCode::NO_CONTENT
        );
    }
    assert!(stream_b.next(Duration::from_millis(300)).await.is_none());
    assert_eq!(
        metric(&node.base_url, "relay_stream_wakeups_total").await,
        woken_before,
        "member A's webhooks woke member B's stream"
    );

    // A's stream: its backlog first, then each new webhook as it is acknowledged; B still sleeps.
    let mut stream_a = Sse::open(&node.base_url, &a.credential, None).await;
    assert_eq!(stream_a.whoop_events(10, WAIT).await.len(), 10);
    for _ in 0..3 {
        let trace = uuid();
        let body = webhook_body(sim_a.user_id, "sleep.updated", &uuid(), &trace);
        assert_eq!(
            post_signed(&node.base_url, SECRET, &body, 0).await,
            StatusCode::NO_CONTENT
        );
        // Within WAIT, well before the node's backstop read (15 s): the webhook woke it.
        let ev = stream_a.expect(WAIT).await;
        assert_eq!(ev.json()["trace_id"], trace.as_str());
    }
    assert!(stream_b.next(Duration::from_millis(300)).await.is_none());
    let woken = metric(&node.base_url, "relay_stream_wakeups_total").await - woken_before;
    // Once per webhook at most, twice on PostgreSQL (intake and the NOTIFY both wake it).
    assert!(
        (1.0..=6.0).contains(&woken),
        "only A's stream is woken: {woken}"
    );

    // And B's own webhook still reaches B.
    let trace = uuid();
    let body = webhook_body(sim_b.user_id, "recovery.updated", &uuid(), &trace);
    assert_eq!(
        post_signed(&node.base_url, SECRET, &body, 0).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        stream_b.expect(WAIT).await.json()["trace_id"],
        trace.as_str()
    );
}
