//! Shared test harness: a database per test on either backend, the WHOOP simulator as WHOOP, the
//! OAuth dance through the broker, a small SSE reader, signed and forged webhooks, and metrics.
//! Every test is written once and run on SQLite and (when configured) PostgreSQL.

// Two test targets share this file and each uses a different subset of it.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::Rng;
use relay::{RelayConfig, RelayHandle};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use whoop_sim::{SimConfig, SimHandle};

pub const SECRET: &str = "test-client-secret-5f2a9b";
pub const OLD_SECRET: &str = "test-client-secret-old-91c3";
pub const POSTGRES_ENV: &str = "VITALTRENDS_TEST_POSTGRES_URL";
/// Every test must finish well inside 30 s.
pub const TEST_BUDGET: Duration = Duration::from_secs(25);

/// Runs a test body, failing it if it takes longer than the budget.
pub async fn bounded<F: Future<Output = ()>>(test: F) {
    if tokio::time::timeout(TEST_BUDGET, test).await.is_err() {
        panic!("test did not finish within {TEST_BUDGET:?}");
    }
}

/// Declares `sqlite` and `postgres` variants of each named `async fn name(db: &Db)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::common::Db::sqlite();
                $crate::common::bounded(super::$name(&db)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::common::Db::postgres().await else {
                    return;
                };
                $crate::common::bounded(super::$name(&db)).await;
                db.cleanup().await;
            }
        }
    )*};
}

/// One test's database: an SQLite file in a temporary directory, or a fresh PostgreSQL schema.
pub struct Db {
    pub url: String,
    pub kind: &'static str,
    schema: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

fn ci_is_set() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

impl Db {
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("relay.db").display());
        Db {
            url,
            kind: "sqlite",
            schema: None,
            _dir: Some(dir),
        }
    }

    /// A fresh schema in the configured PostgreSQL database; `None` (after saying so) when none
    /// is configured, and a failure instead under CI, where skipping would hide the half of the
    /// suite that covers multi-node deployments.
    pub async fn postgres() -> Option<Db> {
        let base = std::env::var(POSTGRES_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty());
        let Some(base) = base else {
            if ci_is_set() {
                panic!(
                    "{POSTGRES_ENV} is not set but CI is: the PostgreSQL tests must run in CI. \
                     Run scripts/postgres.sh and export {POSTGRES_ENV} set to the URL it prints."
                );
            }
            eprintln!(
                "skipped: PostgreSQL not configured (run scripts/postgres.sh and set {POSTGRES_ENV})"
            );
            return None;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let schema = format!("relay_test_{now}_{:08x}", rand::thread_rng().gen::<u32>());
        let pool = sqlx::PgPool::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_ENV}: {e}"));
        sweep_old_schemas(&pool, now).await;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&pool)
            .await
            .expect("create the test schema");
        pool.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options[search_path]={schema}");
        Some(Db {
            url,
            kind: "postgres",
            schema: Some((base, schema)),
            _dir: None,
        })
    }

    /// Another handle on the same database (for tasks that query it concurrently); it does
    /// not own the database, so dropping it removes nothing.
    pub fn at(url: &str, kind: &'static str) -> Db {
        Db {
            url: url.to_string(),
            kind,
            schema: None,
            _dir: None,
        }
    }

    /// Drops this test's schema (a failed test leaves it to the next run's sweep).
    pub async fn cleanup(&self) {
        if let Some((base, schema)) = &self.schema {
            if let Ok(pool) = sqlx::PgPool::connect(base).await {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&pool)
                    .await;
                pool.close().await;
            }
        }
    }

    /// One integer from the test's database, for checking what the relay stored.
    pub async fn scalar(&self, sql: &str) -> i64 {
        if self.kind == "sqlite" {
            let pool = sqlx::SqlitePool::connect(&self.url)
                .await
                .expect("open SQLite");
            let v: i64 = sqlx::query_scalar(sql)
                .fetch_one(&pool)
                .await
                .expect("query");
            pool.close().await;
            v
        } else {
            let pool = sqlx::PgPool::connect(&self.url)
                .await
                .expect("open PostgreSQL");
            let v: i64 = sqlx::query_scalar(sql)
                .fetch_one(&pool)
                .await
                .expect("query");
            pool.close().await;
            v
        }
    }

    /// Runs statements on the test's database (e.g. a trigger that makes the relay's writes fail).
    pub async fn execute(&self, sql: &str) {
        if self.kind == "sqlite" {
            let pool = sqlx::SqlitePool::connect(&self.url)
                .await
                .expect("open SQLite");
            sqlx::raw_sql(sql).execute(&pool).await.expect("statement");
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(&self.url)
                .await
                .expect("open PostgreSQL");
            sqlx::raw_sql(sql).execute(&pool).await.expect("statement");
            pool.close().await;
        }
    }

    /// Every text cell of a table, for checking that no secret was stored.
    pub async fn text_dump(&self, table: &str) -> String {
        let sql = format!("SELECT * FROM {table}");
        let mut out = String::new();
        if self.kind == "sqlite" {
            use sqlx::{Column, Row, ValueRef};
            let pool = sqlx::SqlitePool::connect(&self.url)
                .await
                .expect("open SQLite");
            for row in sqlx::query(&sql).fetch_all(&pool).await.expect("query") {
                for col in row.columns() {
                    let raw = row.try_get_raw(col.ordinal()).expect("cell");
                    if raw.is_null() {
                        continue;
                    }
                    if let Ok(s) = row.try_get::<String, _>(col.ordinal()) {
                        out.push_str(&s);
                    } else if let Ok(i) = row.try_get::<i64, _>(col.ordinal()) {
                        out.push_str(&i.to_string());
                    }
                    out.push('|');
                }
                out.push('\n');
            }
            pool.close().await;
        } else {
            // Every column as text, whatever its type.
            let pool = sqlx::PgPool::connect(&self.url)
                .await
                .expect("open PostgreSQL");
            let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {table} t"))
                .fetch_all(&pool)
                .await
                .expect("query");
            for r in rows {
                out.push_str(&r);
                out.push('\n');
            }
            pool.close().await;
        }
        out
    }
}

/// Schemas a crashed earlier run left behind (older than ten minutes).
async fn sweep_old_schemas(pool: &sqlx::PgPool, now: u64) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'relay\\_test\\_%'",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    for name in names {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0);
        if created + 600 < now {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(pool)
                .await;
        }
    }
}

pub async fn sim(seed: u64, secret: &str) -> SimHandle {
    whoop_sim::start(
        SimConfig {
            days: 2,
            seed,
            auto_approve: true,
            client_secret: secret.to_string(),
            webhook_retry_scale: 0.01,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("literal"),
    )
    .await
    .expect("simulator starts")
}

pub fn config(db: &Db, sim: &SimHandle) -> RelayConfig {
    RelayConfig {
        listen: "127.0.0.1:0".parse().expect("literal"),
        database_url: db.url.clone(),
        whoop_base_url: sim.base_url.parse().expect("simulator URL"),
        client_id: sim.client_id.clone(),
        client_secrets: vec![SECRET.to_string()],
        heartbeat: Duration::from_millis(500),
        per_ip_per_minute: 100_000,
        global_per_second: 100_000,
        ..RelayConfig::default()
    }
}

pub async fn relay(config: RelayConfig) -> RelayHandle {
    relay::start(config).await.expect("relay starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("HTTP client")
}

/// Makes the simulator deliver its webhooks to this relay.
pub async fn point_sim_at(sim: &SimHandle, base_url: &str) {
    let resp = http()
        .post(format!("{}/_sim/webhook-url", sim.base_url))
        .json(&serde_json::json!({ "url": format!("{base_url}/webhooks/whoop") }))
        .send()
        .await
        .expect("simulator control");
    assert!(resp.status().is_success());
}

/// Has the simulator send one signed webhook; returns its trace id.
pub async fn fire(sim: &SimHandle, kind: &str, id: &str) -> String {
    let resp = http()
        .post(format!("{}/_sim/webhook", sim.base_url))
        .json(&serde_json::json!({ "type": kind, "id": id }))
        .send()
        .await
        .expect("simulator control");
    assert!(resp.status().is_success(), "fire: {}", resp.status());
    let body: Value = resp.json().await.expect("trace id");
    body["trace_id"].as_str().expect("trace id").to_string()
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A webhook body as WHOOP writes it.
pub fn webhook_body(user_id: i64, kind: &str, id: &str, trace_id: &str) -> String {
    format!(r#"{{"user_id":{user_id},"id":"{id}","type":"{kind}","trace_id":"{trace_id}"}}"#)
}

/// POSTs a webhook with exactly these headers; returns status and body bytes.
pub async fn post_webhook(
    base_url: &str,
    body: impl Into<reqwest::Body>,
    timestamp: Option<&str>,
    signature: Option<&str>,
) -> (StatusCode, Vec<u8>) {
    let mut req = http()
        .post(format!("{base_url}/webhooks/whoop"))
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(ts) = timestamp {
        req = req.header("X-WHOOP-Signature-Timestamp", ts);
    }
    if let Some(sig) = signature {
        req = req.header("X-WHOOP-Signature", sig);
    }
    let resp = req.send().await.expect("webhook request");
    let status = resp.status();
    (status, resp.bytes().await.expect("body").to_vec())
}

/// POSTs a correctly signed webhook, `age_ms` old.
pub async fn post_signed(base_url: &str, secret: &str, body: &str, age_ms: i64) -> StatusCode {
    let ts = (now_ms() - age_ms).to_string();
    let sig = whoop::webhook::sign(secret.as_bytes(), &ts, body.as_bytes());
    post_webhook(base_url, body.to_string(), Some(&ts), Some(&sig))
        .await
        .0
}

/// What the broker hands a device after the OAuth dance.
#[derive(Debug, Clone)]
pub struct Connected {
    pub response: Value,
    pub access_token: String,
    pub refresh_token: String,
    pub credential: String,
}

pub const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/whoop/callback";

/// Authorizes at the simulator (auto-approve) and returns the code and PKCE verifier, without
/// following the redirect into the app's redirect URI.
pub async fn authorize(sim: &SimHandle) -> (String, String) {
    let verifier: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(64)
        .map(char::from)
        .collect();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let url = url::Url::parse_with_params(
        &format!("{}/oauth/oauth2/auth", sim.base_url),
        &[
            ("response_type", "code"),
            ("client_id", sim.client_id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            (
                "scope",
                "read:profile read:sleep read:recovery read:workout offline",
            ),
            ("state", "state-12345678"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .expect("authorize URL");
    let resp = http().get(url).send().await.expect("authorize");
    assert_eq!(resp.status(), StatusCode::FOUND, "auto-approve redirects");
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location")
        .to_string();
    let location = url::Url::parse(&location).expect("redirect URL");
    assert!(location.as_str().starts_with(REDIRECT_URI));
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code in redirect");
    (code, verifier)
}

/// POSTs the code exchange to the broker; returns status and JSON (or Null).
pub async fn exchange(base_url: &str, code: &str, verifier: &str) -> (StatusCode, Value, Vec<u8>) {
    let resp = http()
        .post(format!("{base_url}/oauth/whoop/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("token exchange");
    let status = resp.status();
    let bytes = resp.bytes().await.expect("body").to_vec();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json, bytes)
}

/// The whole connect flow: authorize at WHOOP, exchange through the relay.
pub async fn connect(sim: &SimHandle, base_url: &str) -> Connected {
    let (code, verifier) = authorize(sim).await;
    let (status, json, _) = exchange(base_url, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "exchange: {json}");
    let field = |k: &str| json[k].as_str().unwrap_or_default().to_string();
    let c = Connected {
        access_token: field("access_token"),
        refresh_token: field("refresh_token"),
        credential: field("device_credential"),
        response: json.clone(),
    };
    assert!(!c.access_token.is_empty() && !c.refresh_token.is_empty());
    assert_eq!(c.credential.len(), 43, "a 256-bit base64url credential");
    c
}

pub async fn get_with(
    base_url: &str,
    path: &str,
    credential: Option<&str>,
) -> (StatusCode, Vec<u8>) {
    let mut req = http().get(format!("{base_url}{path}"));
    if let Some(c) = credential {
        req = req.bearer_auth(c);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    (status, resp.bytes().await.expect("body").to_vec())
}

/// A long poll; returns status and JSON.
pub async fn poll(
    base_url: &str,
    credential: &str,
    cursor: Option<&str>,
    wait_secs: u64,
) -> (StatusCode, Value) {
    let mut url = url::Url::parse(&format!("{base_url}/v1/events")).expect("URL");
    url.query_pairs_mut()
        .append_pair("mode", "poll")
        .append_pair("wait_secs", &wait_secs.to_string());
    if let Some(c) = cursor {
        url.query_pairs_mut().append_pair("cursor", c);
    }
    let resp = http()
        .get(url)
        .bearer_auth(credential)
        .send()
        .await
        .expect("poll");
    let status = resp.status();
    let json = resp.json().await.unwrap_or(Value::Null);
    (status, json)
}

pub async fn ack(base_url: &str, credential: &str, cursor: &str) -> StatusCode {
    http()
        .post(format!("{base_url}/v1/events/ack"))
        .bearer_auth(credential)
        .json(&serde_json::json!({ "cursor": cursor }))
        .send()
        .await
        .expect("ack")
        .status()
}

/// The value of one series in `/metrics`.
pub async fn metric(base_url: &str, series: &str) -> f64 {
    let text = http()
        .get(format!("{base_url}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse::<f64>().ok())?
        })
        .unwrap_or_else(|| panic!("no series {series} in /metrics"))
}

/// Waits until `check` holds, polling every 50 ms, or panics after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("event data is JSON")
    }

    pub fn cursor(&self) -> &str {
        self.id.as_deref().expect("event has an id")
    }
}

/// A minimal SSE client over a streaming reqwest response.
pub struct Sse {
    resp: reqwest::Response,
    buf: String,
    pub heartbeats: usize,
}

impl Sse {
    pub async fn open(base_url: &str, credential: &str, last_event_id: Option<&str>) -> Sse {
        Sse::open_url(&format!("{base_url}/v1/events"), credential, last_event_id).await
    }

    pub async fn open_url(url: &str, credential: &str, last_event_id: Option<&str>) -> Sse {
        let mut req = http().get(url).bearer_auth(credential);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        // The overall client timeout would cut a long stream; streams are bounded by the test.
        let req = req.timeout(Duration::from_secs(120));
        let resp = req.send().await.expect("open stream");
        assert_eq!(resp.status(), StatusCode::OK, "stream status");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "content type {ct}");
        Sse {
            resp,
            buf: String::new(),
            heartbeats: 0,
        }
    }

    /// The next event (heartbeat comments are counted and skipped); `None` on timeout or end.
    pub async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut ev = SseEvent {
                    id: None,
                    event: "message".to_string(),
                    data: String::new(),
                };
                let mut fields = 0;
                for line in block.lines() {
                    if line.is_empty() || line.starts_with(':') {
                        continue;
                    }
                    let (name, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    fields += 1;
                    match name {
                        "id" => ev.id = Some(value.to_string()),
                        "event" => ev.event = value.to_string(),
                        "data" => ev.data.push_str(value),
                        _ => {}
                    }
                }
                if fields == 0 {
                    self.heartbeats += 1;
                    continue;
                }
                return Some(ev);
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    pub async fn expect(&mut self, within: Duration) -> SseEvent {
        self.next(within).await.expect("an event on the stream")
    }

    /// The next `n` events, which must all be WHOOP events.
    pub async fn whoop_events(&mut self, n: usize, within: Duration) -> Vec<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ev = self
                .next(left)
                .await
                .unwrap_or_else(|| panic!("only {} of {n} events arrived", out.len()));
            assert_eq!(ev.event, "whoop", "unexpected event {ev:?}");
            out.push(ev);
        }
        out
    }
}

/// The sequence number inside a cursor, for order checks only (devices treat cursors as opaque).
pub fn seq_of(cursor: &str) -> i64 {
    relay::Cursor::parse(cursor).expect("a cursor").seq
}
