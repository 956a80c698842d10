//! Verified webhooks per second: N signed webhooks with distinct trace ids, posted by a fixed
//! number of HTTP/1.1 keep-alive clients to an in-process relay, timed until every answer is in.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use relay::RelayConfig;
use tokio::task::JoinSet;
use url::Url;
use whoop::webhook::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};

use super::{metric, now_ms, run_id, RAISED_RELAY_LIMIT};

/// The whole run (all clients) stops sending after this, whatever N is.
const BUDGET: Duration = Duration::from_secs(120);
const SECRET: &str = "bench-intake-secret";
const USER_ID: i64 = 10_101;

pub struct IntakeResult {
    pub sent: usize,
    pub clients: usize,
    pub acknowledged: usize,
    pub failed: usize,
    /// e.g. "429 × 3, error × 1".
    pub failures: String,
    pub wall: Duration,
    pub verified_metric: u64,
    pub stored_metric: u64,
    /// Intake transactions the relay counted (0 for a relay that does not count them).
    pub batches: u64,
}

/// A fresh schema in the configured database for the run, dropped afterwards (also on failure).
pub async fn run_postgres(base: &str, n: usize, clients: usize) -> anyhow::Result<IntakeResult> {
    let schema = format!("bench_relay_{}", run_id());
    let admin = tokio::time::timeout(Duration::from_secs(10), sqlx::PgPool::connect(base))
        .await
        .context("connecting to PostgreSQL timed out")?
        .context("cannot connect to the PostgreSQL URL")?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .context("creating the benchmark schema")?;
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options[search_path]={schema}");
    let result = run(&url, n, clients).await;
    let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&admin)
        .await;
    admin.close().await;
    if let Err(err) = dropped {
        eprintln!("warning: could not drop schema {schema}: {err}");
    }
    result
}

pub async fn run(database_url: &str, n: usize, clients: usize) -> anyhow::Result<IntakeResult> {
    let relay = relay::start(RelayConfig {
        listen: "127.0.0.1:0".parse()?,
        database_url: database_url.to_string(),
        // Never called: intake needs no WHOOP.
        whoop_base_url: Url::parse("http://127.0.0.1:9/")?,
        client_id: "vitaltrends-bench".into(),
        client_secrets: vec![SECRET.into()],
        per_ip_per_minute: RAISED_RELAY_LIMIT,
        global_per_second: RAISED_RELAY_LIMIT,
        ..RelayConfig::default()
    })
    .await
    .context("starting the relay")?;
    let url = Arc::new(format!("{}/webhooks/whoop", relay.base_url));
    let http = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(clients)
        .timeout(Duration::from_secs(30))
        .build()?;
    let run = Arc::new(run_id());
    let next = Arc::new(AtomicUsize::new(0));

    let started = Instant::now();
    let deadline = started + BUDGET;
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let (http, url, run, next) = (http.clone(), url.clone(), run.clone(), next.clone());
        tasks.spawn(async move {
            let mut tally: BTreeMap<String, usize> = BTreeMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() >= deadline {
                    break;
                }
                let body = serde_json::json!({
                    "user_id": USER_ID,
                    "id": format!("00000000-0000-4000-8000-{i:012x}"),
                    "type": "workout.updated",
                    "trace_id": format!("bench-{run}-{i}"),
                })
                .to_string();
                let timestamp = now_ms().to_string();
                let signature = sign(SECRET.as_bytes(), &timestamp, body.as_bytes());
                let answer = http
                    .post(url.as_str())
                    .header("Content-Type", "application/json")
                    .header(SIGNATURE_HEADER, signature)
                    .header(TIMESTAMP_HEADER, timestamp)
                    .body(body)
                    .send()
                    .await;
                let key = match answer {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        // Read the (empty) body so the connection goes back to the pool.
                        let _ = resp.bytes().await;
                        status.to_string()
                    }
                    Err(_) => "error".to_string(),
                };
                *tally.entry(key).or_insert(0) += 1;
            }
            tally
        });
    }
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        for (k, v) in done? {
            *tally.entry(k).or_insert(0) += v;
        }
    }
    let wall = started.elapsed();

    let metrics = http
        .get(format!("{}/metrics", relay.base_url))
        .send()
        .await?
        .text()
        .await?;
    relay.shutdown().await;

    let acknowledged = tally.get("204").copied().unwrap_or(0);
    let sent: usize = tally.values().sum();
    let failures = tally
        .iter()
        .filter(|(k, _)| k.as_str() != "204")
        .map(|(k, v)| format!("{k} × {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(IntakeResult {
        sent,
        clients,
        acknowledged,
        failed: sent - acknowledged,
        failures,
        wall,
        verified_metric: metric(&metrics, "relay_webhooks_verified_total"),
        stored_metric: metric(&metrics, "relay_events_stored_total"),
        batches: metric(&metrics, "relay_intake_batches_total"),
    })
}
