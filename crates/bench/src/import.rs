//! `vitaltrends-bench import`: how fast and how frugal the import is against WHOOP's limits.
//!
//! Each scenario starts the simulator in-process with WHOOP's default rate limits (100 requests
//! a minute, 10,000 a day) and a fixed latency, connects a fresh engine, imports everything, and
//! prints one table row: wall time, requests, 429s hit, and each figure next to its lower bound.
//!
//! Lower bounds:
//! - requests: the sum over collections of ceil(records / 25), the pages the data fills;
//! - time: the larger of the rate-limit bound (requests beyond the first 100 wait for the next
//!   minute window) and one round trip per page along the longest chain of dependent pages (the
//!   largest collection's records / 25 pages, each one latency, if fetched as one sequence).

use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use whoop_sim::SimConfig;

#[derive(ClapArgs)]
pub struct Args {
    /// Simulated WHOOP latency per request, in milliseconds.
    #[arg(long, default_value_t = 100)]
    latency_ms: u64,
    /// Scenarios as days of history (default: 6 months and 5 years).
    #[arg(long, value_delimiter = ',', default_values_t = vec![183, 1826])]
    days: Vec<u32>,
}

struct Row {
    days: u32,
    records: u64,
    requests: u64,
    request_bound: u64,
    rate_limited: u64,
    wall: Duration,
    time_bound: Duration,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for days in &args.days {
        eprintln!("importing {days} days at {} ms latency…", args.latency_ms);
        rows.push(import(*days, args.latency_ms).await?);
    }
    println!();
    println!(
        "{:<12} {:>8} {:>9} {:>9} {:>6} {:>5} {:>9} {:>10} {:>6}",
        "history",
        "records",
        "requests",
        "req bound",
        "ratio",
        "429s",
        "wall",
        "time bound",
        "ratio"
    );
    for r in &rows {
        println!(
            "{:<12} {:>8} {:>9} {:>9} {:>6.2} {:>5} {:>8.1}s {:>9.1}s {:>6.2}",
            label(r.days),
            r.records,
            r.requests,
            r.request_bound,
            r.requests as f64 / r.request_bound.max(1) as f64,
            r.rate_limited,
            r.wall.as_secs_f64(),
            r.time_bound.as_secs_f64(),
            r.wall.as_secs_f64() / r.time_bound.as_secs_f64().max(0.001),
        );
    }
    Ok(())
}

fn label(days: u32) -> String {
    match days {
        183 => "6 months".into(),
        1826 => "5 years".into(),
        d => format!("{d} days"),
    }
}

async fn import(days: u32, latency_ms: u64) -> anyhow::Result<Row> {
    let sim = whoop_sim::start(
        SimConfig {
            days,
            seed: 2026,
            latency_ms,
            auto_approve: true,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let engine = crate::history::signed_in_engine(&sim.base_url, dir.path().to_path_buf()).await?;
    let http = reqwest::Client::new();
    http.post(format!("{}/_sim/reset-stats", sim.base_url))
        .send()
        .await?;

    let started = Instant::now();
    engine.sync_now().await?;
    let wall = started.elapsed();

    let stats: serde_json::Value = http
        .get(format!("{}/_sim/stats", sim.base_url))
        .send()
        .await?
        .json()
        .await?;
    let mut records = 0;
    let mut request_bound = 0;
    let mut longest_chain = 0;
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        let n = stats["records"][collection].as_u64().unwrap_or(0);
        records += n;
        request_bound += n.div_ceil(25);
        longest_chain = longest_chain.max(n.div_ceil(25));
    }
    let requests: u64 = stats["requests"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.as_str() != "token" && k.as_str() != "auth")
                .map(|(_, v)| v.as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    // Profile and body measurement are two more requests the data needs.
    request_bound += 2;
    let rate_bound = Duration::from_secs(60 * (request_bound.saturating_sub(1) / 100));
    let chain_bound = Duration::from_millis(latency_ms * longest_chain);
    Ok(Row {
        days,
        records,
        requests,
        request_bound,
        rate_limited: stats["rate_limited"].as_u64().unwrap_or(0),
        wall,
        time_bound: rate_bound.max(chain_bound),
    })
}
