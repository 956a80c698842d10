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
