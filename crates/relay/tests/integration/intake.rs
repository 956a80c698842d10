//! Webhook intake: what WHOOP (the simulator) sends reaches devices in order; everything forged,
//! tampered, stale, oversized or replayed is refused or deduplicated.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    signed_webhooks_reach_the_stream_in_order,
    forged_webhooks_get_identical_401s,
    replayed_webhook_is_stored_and_delivered_once,
    oversized_bodies_get_413,
    previous_secret_is_accepted_during_rotation,
    unknown_types_are_ignored_and_bad_json_is_400,
    rate_limits_answer_429_before_reading,
    concurrent_webhooks_are_each_acknowledged_only_once_stored,
    a_failed_batch_answers_503_and_loses_nothing_acknowledged,
);

const WAIT: Duration = Duration::from_secs(5);

async fn signed_webhooks_reach_the_stream_in_order(db: &Db) {
    let sim = sim(1, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    point_sim_at(&sim, &relay.base_url).await;
    let device = connect(&sim, &relay.base_url).await;
    let mut stream = Sse::open(&relay.base_url, &device.credential, None).await;

    // One at a time: each must arrive before the next is sent, so the order is the sending order.
    let kinds = [
        "sleep.updated",
        "recovery.updated",
        "workout.updated",
        "workout.deleted",
        "sleep.deleted",
    ];
    let mut sent = Vec::new();
    let mut cursors = Vec::new();
    for kind in kinds {
        let id = uuid();
        let trace = fire(&sim, kind, &id).await;
        let ev = stream.expect(WAIT).await;
        assert_eq!(ev.event, "whoop");
        let data = ev.json();
        assert_eq!(data["type"], kind);
        assert_eq!(data["id"], id.as_str());
        assert_eq!(data["user_id"], sim.user_id);
        assert_eq!(data["trace_id"], trace.as_str());
        assert_eq!(data.as_object().map(|o| o.len()), Some(4), "{data}");
        sent.push(trace);
        cursors.push(ev.cursor().to_string());
    }

    // A burst: the simulator delivers concurrently, so only the log decides the order; the
    // stream must follow the log exactly and carry each event once.
    let mut burst = Vec::new();
    for _ in 0..5 {
        burst.push(fire(&sim, "sleep.updated", &uuid()).await);
    }
    let events = stream.whoop_events(5, WAIT).await;
    let mut got: Vec<String> = events
        .iter()
        .map(|e| {
            e.json()["trace_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    cursors.extend(events.iter().map(|e| e.cursor().to_string()));
    sent.extend(got.iter().cloned());
    got.sort();
    burst.sort();
    assert_eq!(got, burst);
    let seqs: Vec<i64> = cursors.iter().map(|c| seq_of(c)).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "log order: {seqs:?}");

    // The long poll from the start of the log agrees with the stream.
    let (status, body) = poll(&relay.base_url, &device.credential, None, 0).await;
    assert_eq!(status, StatusCode::OK);
    let polled: Vec<String> = body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["trace_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(polled, sent);
    assert_eq!(body["gap"], false);
    assert!(stream.next(Duration::from_millis(300)).await.is_none());
    assert!(metric(&relay.base_url, "relay_events_delivered_total").await >= 20.0);
    assert_eq!(
        metric(&relay.base_url, "relay_delivery_latency_seconds_count").await,
        metric(&relay.base_url, "relay_events_delivered_total").await
    );
}

async fn forged_webhooks_get_identical_401s(db: &Db) {
    let sim = sim(2, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    let base = relay.base_url.as_str();
    let body = webhook_body(sim.user_id, "sleep.updated", &uuid(), &uuid());
    let ts = now_ms().to_string();
    let good = whoop::webhook::sign(SECRET.as_bytes(), &ts, body.as_bytes());
    let reserialized = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(&body).expect("JSON"),
    )
    .expect("JSON");
    let tampered = body.replace("sleep.updated", "sleep.deleted");
    let old_ts = (now_ms() - 66 * 60 * 1000).to_string();
    let future_ts = (now_ms() + 66 * 60 * 1000).to_string();
    let sign =
        |secret: &str, ts: &str, b: &str| whoop::webhook::sign(secret.as_bytes(), ts, b.as_bytes());
    let cases: Vec<(&str, String, Option<String>, Option<String>)> = vec![
        ("missing_signature", body.clone(), Some(ts.clone()), None),
        ("missing_timestamp", body.clone(), None, Some(good.clone())),
        (
            "bad_timestamp",
            body.clone(),
            Some("yesterday".into()),
            Some(good.clone()),
        ),
        (
            "bad_encoding",
            body.clone(),
            Some(ts.clone()),
            Some("not base64!".into()),
        ),
        (
            "mismatch",
            body.clone(),
            Some(ts.clone()),
            Some(sign("some-other-secret", &ts, &body)),
        ),
        ("mismatch", tampered, Some(ts.clone()), Some(good.clone())),
        (
            "mismatch",
            reserialized,
            Some(ts.clone()),
            Some(good.clone()),
        ),
        (
            "mismatch",
            body.clone(),
            Some((now_ms() - 1000).to_string()),
            Some(good.clone()),
        ),
        (
            "outside_window",
            body.clone(),
            Some(old_ts.clone()),
            Some(sign(SECRET, &old_ts, &body)),
        ),
        (
            "outside_window",
            body.clone(),
            Some(future_ts.clone()),
            Some(sign(SECRET, &future_ts, &body)),
        ),
    ];
    let mut first: Option<Vec<u8>> = None;
    for (reason, b, t, s) in &cases {
        let (status, resp_body) = post_webhook(base, b.clone(), t.as_deref(), s.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "case {reason}");
        match &first {
            None => first = Some(resp_body),
            Some(f) => assert_eq!(f, &resp_body, "identical bodies ({reason})"),
        }
    }
    for (reason, count) in [
        ("missing_signature", 1.0),
        ("missing_timestamp", 1.0),
        ("bad_timestamp", 1.0),
        ("bad_encoding", 1.0),
        ("mismatch", 4.0),
        ("outside_window", 2.0),
    ] {
        let series = format!("relay_webhooks_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(base, &series).await, count, "{reason}");
    }
    assert_eq!(metric(base, "relay_webhooks_verified_total").await, 0.0);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM events").await, 0);

    // The genuine article passes, and so does a retry still carrying an hour-old timestamp.
    assert_eq!(
        post_webhook(base, body.clone(), Some(&ts), Some(&good))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let hour_old = webhook_body(sim.user_id, "workout.updated", &uuid(), &uuid());
    assert_eq!(
        post_signed(base, SECRET, &hour_old, 60 * 60 * 1000).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM events").await, 2);
    assert_eq!(metric(base, "relay_webhooks_received_total").await, 12.0);
}

async fn replayed_webhook_is_stored_and_delivered_once(db: &Db) {
    let sim = sim(3, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    point_sim_at(&sim, &relay.base_url).await;
    let device = connect(&sim, &relay.base_url).await;
    let mut stream = Sse::open(&relay.base_url, &device.credential, None).await;

    let trace = uuid();
    let body = webhook_body(sim.user_id, "recovery.updated", &uuid(), &trace);
    let ts = now_ms().to_string();
    let sig = whoop::webhook::sign(SECRET.as_bytes(), &ts, body.as_bytes());
    // The identical request three times (a replay), then as WHOOP's retry would send it.
    for _ in 0..3 {
        let (status, _) = post_webhook(&relay.base_url, body.clone(), Some(&ts), Some(&sig)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    assert_eq!(
        post_signed(&relay.base_url, SECRET, &body, 5_000).await,
        StatusCode::NO_CONTENT
    );
    let ev = stream.expect(WAIT).await;
    assert_eq!(ev.json()["trace_id"], trace.as_str());
    // The next thing on the stream is a fresh event, not a second copy.
    let next_trace = fire(&sim, "sleep.updated", &uuid()).await;
    let ev = stream.expect(WAIT).await;
    assert_eq!(ev.json()["trace_id"], next_trace.as_str());
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM events WHERE trace_id = '{trace}'"
        ))
        .await,
        1
    );
    assert_eq!(
        metric(&relay.base_url, "relay_webhooks_duplicate_total").await,
        3.0
    );
}

/// Sends a chunked request by hand (no Content-Length) and returns the status line's code.
async fn chunked_post(base_url: &str, chunks: usize, chunk: &[u8]) -> u16 {
    let addr = base_url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /webhooks/whoop HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    // One write of a request small enough for the server's first read to take all of it: a
    // server that answers early and closes with bytes still unread sends a reset, which could
    // reach the client before the answer does.
    let mut request = head.into_bytes();
    for _ in 0..chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    conn.write_all(&request).await.expect("write");
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut resp)).await;
    let text = String::from_utf8_lossy(&resp);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Sends only the head of a POST that announces `length` bytes, and returns the status code.
async fn declared_length_post(base_url: &str, length: usize) -> u16 {
    let addr = base_url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /webhooks/whoop HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut resp)).await;
    String::from_utf8_lossy(&resp)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

async fn oversized_bodies_get_413(db: &Db) {
    let sim = sim(4, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    let base = relay.base_url.as_str();
    let body = webhook_body(sim.user_id, "sleep.updated", &uuid(), &uuid());

    // Exactly at the cap (JSON with trailing spaces) is fine.
    let at_cap = format!("{body:<4096}");
    assert_eq!(at_cap.len(), 4096);
    assert_eq!(
        post_signed(base, SECRET, &at_cap, 0).await,
        StatusCode::NO_CONTENT
    );
    // One byte more is refused on its Content-Length, signed or not.
    let over = format!("{body:<4097}");
    assert_eq!(
        post_signed(base, SECRET, &over, 0).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // A megabyte announced: refused on the header alone, before a byte of it is read. (Sending
    // the body too would race the early answer: the relay closes while the client still writes.)
    assert_eq!(declared_length_post(base, 1 << 20).await, 413);
    // Without a Content-Length the read itself stops at the cap (5 KiB sent, 4 KiB allowed).
    assert_eq!(chunked_post(base, 5, &[b' '; 1024]).await, 413);
    assert_eq!(
        metric(base, "relay_webhooks_rejected_total{reason=\"too_large\"}").await,
        3.0
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM events").await, 1);
}

async fn previous_secret_is_accepted_during_rotation(db: &Db) {
    // WHOOP (the simulator) still signs with, and accepts only, the previous secret.
    let sim = sim(5, OLD_SECRET).await;
    let relay = relay(relay::RelayConfig {
        client_secrets: vec![SECRET.to_string(), OLD_SECRET.to_string()],
        ..config(db, &sim)
    })
    .await;
    point_sim_at(&sim, &relay.base_url).await;
    // The broker falls back to the previous secret when WHOOP refuses the current one.
    let device = connect(&sim, &relay.base_url).await;
    let mut stream = Sse::open(&relay.base_url, &device.credential, None).await;
    let trace = fire(&sim, "sleep.updated", &uuid()).await;
    assert_eq!(stream.expect(WAIT).await.json()["trace_id"], trace.as_str());
    // The current secret works as well; any other does not.
    let body = webhook_body(sim.user_id, "workout.updated", &uuid(), &uuid());
    assert_eq!(
        post_signed(&relay.base_url, SECRET, &body, 0).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(stream.expect(WAIT).await.event, "whoop");
    let other = webhook_body(sim.user_id, "workout.updated", &uuid(), &uuid());
    assert_eq!(
        post_signed(&relay.base_url, "third-secret", &other, 0).await,
        StatusCode::UNAUTHORIZED
    );
}

async fn unknown_types_are_ignored_and_bad_json_is_400(db: &Db) {
    let sim = sim(6, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    let base = relay.base_url.as_str();
    let cycle = webhook_body(sim.user_id, "cycle.updated", "12345", &uuid());
    assert_eq!(
        post_signed(base, SECRET, &cycle, 0).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post_signed(base, SECRET, "{not json", 0).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post_signed(base, SECRET, r#"{"type":"sleep.updated"}"#, 0).await,
        StatusCode::BAD_REQUEST
    );
    // v1-style integer ids still parse.
    let v1 = format!(
        r#"{{"user_id":{},"id":42,"type":"workout.updated","trace_id":"{}"}}"#,
        sim.user_id,
        uuid()
    );
    assert_eq!(
        post_signed(base, SECRET, &v1, 0).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM events").await, 1);
    assert_eq!(metric(base, "relay_webhooks_ignored_total").await, 1.0);
    assert_eq!(
        metric(base, "relay_webhooks_rejected_total{reason=\"bad_json\"}").await,
        2.0
    );
}

async fn rate_limits_answer_429_before_reading(db: &Db) {
    let sim = sim(7, SECRET).await;
    let per_ip = relay(relay::RelayConfig {
        per_ip_per_minute: 3,
        ..config(db, &sim)
    })
    .await;
    let body = webhook_body(sim.user_id, "sleep.updated", &uuid(), &uuid());
    for _ in 0..3 {
        assert_eq!(
            post_signed(&per_ip.base_url, SECRET, &body, 0).await,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(
        post_signed(&per_ip.base_url, SECRET, &body, 0).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Refused before the body is read: an oversized one gets 429, not 413.
    let (status, _) = post_webhook(&per_ip.base_url, vec![b' '; 10_000], None, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        metric(
            &per_ip.base_url,
            "relay_webhooks_rejected_total{reason=\"rate_limited\"}"
        )
        .await,
        2.0
    );

    let global = relay(relay::RelayConfig {
        global_per_second: 2,
        ..config(db, &sim)
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(post_signed(&global.base_url, SECRET, &body, 0).await);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

/// How many log rows hold this trace id (trace ids here are UUIDs, safe to inline).
async fn stored(db: &Db, trace: &str) -> i64 {
    db.scalar(&format!(
        "SELECT COUNT(*) FROM events WHERE trace_id = '{trace}'"
    ))
    .await
}

/// Posts every body at once (each on its own connection); returns the statuses in body order.
async fn post_all_at_once(base_url: &str, bodies: &[String]) -> Vec<StatusCode> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, body) in bodies.iter().enumerate() {
        let (base, body) = (base_url.to_string(), body.clone());
        tasks.spawn(async move { (i, post_signed(&base, SECRET, &body, 0).await) });
    }
    let mut statuses = vec![StatusCode::IM_A_TEAPOT; bodies.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, status) = done.expect("task");
        statuses[i] = status;
    }
    statuses
}

async fn concurrent_webhooks_are_each_acknowledged_only_once_stored(db: &Db) {
    let sim = sim(7, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    let device = connect(&sim, &relay.base_url).await;
    let mut stream = Sse::open(&relay.base_url, &device.credential, None).await;

    // 48 distinct notices and 4 copies of one more, all in flight together: they share
    // transactions, and the copies land in the same batch or in successive ones.
    const N: usize = 48;
    let traces: Vec<String> = (0..N).map(|_| uuid()).collect();
    let repeated = uuid();
    let repeated_id = uuid();
    let mut bodies: Vec<String> = traces
        .iter()
        .map(|t| webhook_body(sim.user_id, "workout.updated", &uuid(), t))
        .collect();
    for _ in 0..4 {
        bodies.push(webhook_body(
            sim.user_id,
            "sleep.updated",
            &repeated_id,
            &repeated,
        ));
    }
    // Few checking connections at once: PostgreSQL's connection limit is shared with the
    // other tests running beside this one.
    let checkers = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, body) in bodies.iter().enumerate() {
        let (base, body) = (relay.base_url.clone(), body.clone());
        let trace = if i < N {
            traces[i].clone()
        } else {
            repeated.clone()
        };
        let (url, kind, checkers) = (db.url.clone(), db.kind, checkers.clone());
        tasks.spawn(async move {
            let status = post_signed(&base, SECRET, &body, 0).await;
            // Once the 204 is in, another connection must find the row committed.
            let _permit = checkers.acquire().await.expect("semaphore");
            let db = Db::at(&url, kind);
            (status, stored(&db, &trace).await)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (status, rows) = done.expect("task");
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(rows, 1, "acknowledged before its row was committed");
    }
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM events").await,
        N as i64 + 1,
        "every notice once, the repeated one once"
    );
    assert_eq!(
        metric(&relay.base_url, "relay_events_stored_total").await,
        (N + 1) as f64
    );
    assert_eq!(
        metric(&relay.base_url, "relay_webhooks_duplicate_total").await,
        3.0
    );
    let batches = metric(&relay.base_url, "relay_intake_batches_total").await;
    assert!(batches >= 1.0 && batches <= (N + 4) as f64, "{batches}");

    // The device gets each once, in log order.
    let events = stream.whoop_events(N + 1, WAIT).await;
    let mut got: Vec<String> = events
        .iter()
        .map(|e| {
            e.json()["trace_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let seqs: Vec<i64> = events.iter().map(|e| seq_of(e.cursor())).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "log order: {seqs:?}");
    let mut want = traces.clone();
    want.push(repeated);
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(stream.next(Duration::from_millis(300)).await.is_none());
}

async fn a_failed_batch_answers_503_and_loses_nothing_acknowledged(db: &Db) {
    let sim = sim(8, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    // A notice the database refuses to store: every transaction holding it fails.
    if db.kind == "sqlite" {
        db.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.object_id = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        .await;
    } else {
        db.execute(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.object_id = 'poison' THEN RAISE EXCEPTION 'injected failure'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION poison()",
        )
        .await;
    }
    let traces: Vec<String> = (0..40).map(|_| uuid()).collect();
    let mut bodies: Vec<String> = traces
        .iter()
        .map(|t| webhook_body(sim.user_id, "workout.updated", &uuid(), t))
        .collect();
    let poison_trace = uuid();
    // In the middle, so it shares its batch with notices sent before and after it.
    bodies.insert(
        20,
        webhook_body(sim.user_id, "workout.updated", "poison", &poison_trace),
    );
    let mut all_traces = traces.clone();
    all_traces.insert(20, poison_trace.clone());

    let statuses = post_all_at_once(&relay.base_url, &bodies).await;
    assert_eq!(statuses[20], StatusCode::SERVICE_UNAVAILABLE);
    let mut retry = Vec::new();
    for (i, status) in statuses.iter().enumerate() {
        let rows = stored(db, &all_traces[i]).await;
        match *status {
            // Acknowledged: durably in the log.
            StatusCode::NO_CONTENT => assert_eq!(rows, 1),
            // Refused with its batch: nothing of it stored, WHOOP will send it again.
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(rows, 0, "half of a failed batch was stored");
                retry.push(i);
            }
            other => panic!("unexpected answer {other}"),
        }
    }
    let acknowledged = statuses
        .iter()
        .filter(|s| **s == StatusCode::NO_CONTENT)
        .count() as i64;
    assert_eq!(db.scalar("SELECT COUNT(*) FROM events").await, acknowledged);

    // The fault is fixed; WHOOP's retries of every refused notice are all stored.
    if db.kind == "sqlite" {
        db.execute("DROP TRIGGER poison").await;
    } else {
        db.execute("DROP TRIGGER poison ON events; DROP FUNCTION poison()")
            .await;
    }
    let again: Vec<String> = retry.iter().map(|&i| bodies[i].clone()).collect();
    let statuses = post_all_at_once(&relay.base_url, &again).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::NO_CONTENT),
        "{statuses:?}"
    );
    for trace in &all_traces {
        assert_eq!(stored(db, trace).await, 1);
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM events").await, 41);
}
