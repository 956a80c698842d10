//! The relay on the open internet: whose address counts behind a proxy, who may read `/metrics`,
//! and what slow, greedy or guessing clients get (header and body timeouts, the connection cap,
//! streams per device, throttled failed authentication). SQLite only: none of it touches the
//! database's dialect.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

fn bodies_ok(base: &str, xff: Option<&str>) -> reqwest::RequestBuilder {
    let mut req = http()
        .post(format!("{base}/oauth/whoop/token"))
        .form(&[("redirect_uri", REDIRECT_URI)]);
    if let Some(v) = xff {
        req = req.header("X-Forwarded-For", v);
    }
    req
}

/// The broker's per-IP limit, counted on a request the broker refuses cheaply (400, no WHOOP call).
async fn status_of(base: &str, xff: Option<&str>) -> StatusCode {
    bodies_ok(base, xff).send().await.expect("request").status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    bounded(async {
        let db = Db::sqlite();
        let sim = sim(41, SECRET).await;
        // The test client is 127.0.0.1; first it plays the trusted proxy.
        let trusting = relay(relay::RelayConfig {
            per_ip_per_minute: 2,
            trusted_proxies: vec![relay::parse_cidr("127.0.0.1/32").expect("cidr")],
            ..config(&db, &sim)
        })
        .await;
        let base = &trusting.base_url;
        for _ in 0..2 {
            assert_eq!(
                status_of(base, Some("203.0.113.1")).await,
                StatusCode::BAD_REQUEST
            );
        }
        assert_eq!(
            status_of(base, Some("203.0.113.1")).await,
            StatusCode::TOO_MANY_REQUESTS
        );
        // Another client behind the same proxy has its own budget.
        assert_eq!(
            status_of(base, Some("203.0.113.2")).await,
            StatusCode::BAD_REQUEST
        );
        // A client cannot escape its bucket by prepending addresses of its own.
        assert_eq!(
            status_of(base, Some("198.51.100.9, 203.0.113.1")).await,
            StatusCode::TOO_MANY_REQUESTS
        );

        // The same headers from a peer that is not trusted are ignored: one bucket, the peer's.
        let untrusting = relay(relay::RelayConfig {
            per_ip_per_minute: 2,
            trusted_proxies: vec![relay::parse_cidr("10.0.0.0/8").expect("cidr")],
            ..config(&db, &sim)
        })
        .await;
        let base = &untrusting.base_url;
        assert_eq!(
            status_of(base, Some("203.0.113.1")).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of(base, Some("203.0.113.2")).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of(base, Some("203.0.113.3")).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_behind_a_token_or_on_their_own_listener() {
    bounded(async {
        let db = Db::sqlite();
        let sim = sim(42, SECRET).await;
        let token = "metrics-token-4b1d9c0e7f";
        let guarded = relay(relay::RelayConfig {
            metrics: relay::MetricsAccess::Token(token.into()),
            ..config(&db, &sim)
        })
        .await;
        let url = format!("{}/metrics", guarded.base_url);
        let resp = http().get(&url).send().await.expect("metrics");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let resp = http()
            .get(&url)
            .bearer_auth("wrong-token-0123456789")
            .send()
            .await
            .expect("metrics");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let resp = http()
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .expect("metrics");
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp
            .text()
            .await
            .expect("text")
            .contains("relay_streams_open"));
        let (status, _) = get_with(&guarded.base_url, "/healthz", None).await;
        assert_eq!(status, StatusCode::OK, "healthz stays public");

        let separate = relay(relay::RelayConfig {
            metrics: relay::MetricsAccess::Off,
            metrics_listen: Some("127.0.0.1:0".parse().expect("literal")),
            ..config(&db, &sim)
        })
        .await;
        let (status, _) = get_with(&separate.base_url, "/metrics", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "not on the public listener");
        let metrics_url = separate.metrics_url.clone().expect("metrics listener");
        let resp = http()
            .get(format!("{metrics_url}/metrics"))
            .send()
            .await
            .expect("metrics");
        assert_eq!(resp.status(), StatusCode::OK);
        let (status, _) = get_with(&metrics_url, "/healthz", None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = get_with(&metrics_url, "/v1/events", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "nothing else there");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_per_device_are_capped() {
    bounded(async {
        let db = Db::sqlite();
        let sim = sim(43, SECRET).await;
        let relay = relay(relay::RelayConfig {
            max_streams_per_device: 2,
            ..config(&db, &sim)
        })
        .await;
        let base = &relay.base_url;
        let device = connect(&sim, base).await;
        let first = Sse::open(base, &device.credential, None).await;
        let second = Sse::open(base, &device.credential, None).await;
        let (status, body) = get_with(base, "/v1/events", Some(&device.credential)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body, br#"{"error":"too_many_streams"}"#);
        // Another device is not affected.
        let other = connect(&sim, base).await;
        let third = Sse::open(base, &other.credential, None).await;
        // A closed stream gives its slot back.
        drop(first);
        eventually(Duration::from_secs(5), "a slot is free again", || async {
            let (status, _) = poll(base, &device.credential, None, 0).await;
            status == StatusCode::OK
        })
        .await;
        drop((second, third));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_device_authentication_is_throttled_per_ip() {
    bounded(async {
        let db = Db::sqlite();
        let sim = sim(44, SECRET).await;
        let relay = relay(relay::RelayConfig {
            auth_failures_per_minute: 3,
            trusted_proxies: vec![relay::parse_cidr("127.0.0.1").expect("cidr")],
            ..config(&db, &sim)
        })
        .await;
        let base = &relay.base_url;
        let device = connect(&sim, base).await;
        let guess = |xff: &'static str| {
            let url = format!("{base}/v1/events?mode=poll&wait_secs=0");
            async move {
                http()
                    .get(url)
                    .bearer_auth("guessed-credential")
                    .header("X-Forwarded-For", xff)
                    .send()
                    .await
                    .expect("guess")
                    .status()
            }
        };
        for _ in 0..3 {
            assert_eq!(guess("203.0.113.7").await, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(guess("203.0.113.7").await, StatusCode::TOO_MANY_REQUESTS);
        // The throttled address is refused even with a good credential, before any lookup.
        let resp = http()
            .get(format!("{base}/v1/events?mode=poll&wait_secs=0"))
            .bearer_auth(&device.credential)
            .header("X-Forwarded-For", "203.0.113.7")
            .send()
            .await
            .expect("poll");
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        // Others, and successful devices, are not.
        assert_eq!(guess("203.0.113.8").await, StatusCode::UNAUTHORIZED);
        let (status, _) = poll(base, &device.credential, None, 0).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(metric(base, "relay_device_auth_throttled_total").await, 2.0);
    })
    .await;
}

async fn read_to_end_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut out))
        .await
        .ok()
        .map(|_| out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_bodies_are_cut_off() {
    bounded(async {
        let db = Db::sqlite();
        let sim = sim(45, SECRET).await;
        let relay = relay(relay::RelayConfig {
            header_read_timeout: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(1),
            ..config(&db, &sim)
        })
        .await;
        // Half a request line, then nothing: closed after the header timeout.
        let started = Instant::now();
        let mut half = TcpStream::connect(relay.addr).await.expect("connect");
        half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        read_to_end_within(&mut half, Duration::from_secs(5))
            .await
            .expect("the relay closes the connection");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(900), "{took:?}");

        // Headers complete, the body promised but trickling: 408 body_timeout.
        let mut slow = TcpStream::connect(relay.addr).await.expect("connect");
        slow.write_all(
            b"POST /oauth/whoop/refresh HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nrefresh",
        )
        .await
        .expect("write");
        let answer = read_to_end_within(&mut slow, Duration::from_secs(5))
            .await
            .expect("an answer");
        let text = String::from_utf8_lossy(&answer);
        // The refresh route checks the credential first; the ack route reads its body.
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
        let device = connect(&sim, &relay.base_url).await;
        let mut slow = TcpStream::connect(relay.addr).await.expect("connect");
        slow.write_all(
            format!(
                "POST /v1/events/ack HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"cur",
                device.credential
            )
            .as_bytes(),
        )
        .await
        .expect("write");
        let answer = read_to_end_within(&mut slow, Duration::from_secs(5))
            .await
            .expect("an answer");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains(r#"{"error":"body_timeout"}"#), "{text}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_one_is_freed() {
    bounded(async {
        let db = Db::sqlite();
        let sim = sim(46, SECRET).await;
        let relay = relay(relay::RelayConfig {
            max_connections: Some(4),
            header_read_timeout: Duration::from_secs(2),
            ..config(&db, &sim)
        })
        .await;
        let addr: SocketAddr = relay.addr;
        let mut idle = Vec::new();
        for _ in 0..4 {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
            idle.push(s);
        }
        // The fifth waits in the backlog while four idle connections hold every permit, and
        // is served once the header timeout frees them.
        let started = Instant::now();
        let (status, _) = get_with(&relay.base_url, "/healthz", None).await;
        assert_eq!(status, StatusCode::OK);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1500),
            "served before a permit was free: {waited:?}"
        );
        assert!(waited < Duration::from_secs(6), "{waited:?}");
        drop(idle);
    })
    .await;
}
