//! `vitaltrends-bench mcp`: how long each MCP tool takes to answer on a long history.
//!
//! Builds a store of N years (the simulator in-process without rate limits, imported by a real
//! engine), starts the real `vitaltrends mcp` binary over stdio as Claude Desktop does, performs
//! the MCP handshake, then calls every tool many times and prints p50/p99 of the round trip
//! (request written to the answer read), per tool.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use clap::Args as ClapArgs;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::stats::{days_in_years, percentile};

#[derive(ClapArgs)]
pub struct Args {
    /// Years of history in the store.
    #[arg(long, default_value_t = 5)]
    years: u32,
    /// Calls per tool (after 5 warm-up calls).
    #[arg(long, default_value_t = 200)]
    calls: u32,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let days = days_in_years(args.years);
    eprintln!("building a store of {days} days…");
    let (engine, records) =
        crate::history::imported_history(dir.path().to_path_buf(), days).await?;
    drop(engine);

    let cli = cli_binary()?;
    let mut child = tokio::process::Command::new(&cli)
        .args(["--data-dir", &dir.path().display().to_string(), "mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting {}: {e}", cli.display()))?;
    let mut session = Session {
        stdin: child.stdin.take().expect("stdin"),
        stdout: BufReader::new(child.stdout.take().expect("stdout")).lines(),
        next_id: 1,
    };
    session
        .request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "vitaltrends-bench", "version": "0"}}),
        )
        .await?;
    session.notify("notifications/initialized").await?;

    let calls: Vec<(&str, Value)> = vec![
        ("get_today", json!({})),
        (
            "get_metric_series",
            json!({"metric": "hrv", "range": "all", "rolling_days": 30}),
        ),
        ("summarize_period", json!({"range": "1y"})),
        (
            "compare_periods",
            json!({"a_from": "2000-01-01", "a_to": "2100-01-01",
                   "b_from": "2000-01-01", "b_to": "2100-01-01"}),
        ),
        (
            "correlate",
            json!({"x": "day_strain", "y": "recovery", "lag_days": 1, "range": "all"}),
        ),
        ("list_workouts", json!({"limit": 1000})),
        ("get_sleep", json!({})),
        ("data_status", json!({})),
    ];
    let mut rows = Vec::new();
    for (tool, arguments) in &calls {
        let params = json!({"name": tool, "arguments": arguments});
        for _ in 0..5 {
            session.call(&params).await?;
        }
        let mut times = Vec::with_capacity(args.calls as usize);
        for _ in 0..args.calls {
            let started = Instant::now();
            session.call(&params).await?;
            times.push(started.elapsed());
        }
        times.sort();
        let at = |p| percentile(&times, p).unwrap_or_default();
        rows.push((tool, at(0.50), at(0.99)));
    }
    drop(session);
    let _ = child.wait().await;

    println!();
    println!(
        "MCP tool latency over stdio, {} years of history ({records} records), {} calls each",
        args.years, args.calls
    );
    println!("{:<20} {:>9} {:>9}", "tool", "p50", "p99");
    for (tool, p50, p99) in rows {
        println!(
            "{:<20} {:>7.2}ms {:>7.2}ms",
            tool,
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0
        );
    }
    Ok(())
}

/// `vitaltrends` beside this benchmark's own binary (the same target directory).
fn cli_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .map(|d| d.join(format!("vitaltrends{}", std::env::consts::EXE_SUFFIX)))
        .filter(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("build the CLI first: cargo build -p cli"))?;
    Ok(path)
}

struct Session {
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    next_id: u64,
}

impl Session {
    async fn send(&mut self, message: &Value) -> anyhow::Result<()> {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn notify(&mut self, method: &str) -> anyhow::Result<()> {
        self.send(&json!({"jsonrpc": "2.0", "method": method}))
            .await
    }

    async fn request(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        loop {
            let line = self
                .stdout
                .next_line()
                .await?
                .ok_or_else(|| anyhow::anyhow!("vitaltrends mcp closed stdout"))?;
            let message: Value = serde_json::from_str(&line)
                .map_err(|e| anyhow::anyhow!("not JSON-RPC on stdout ({e}): {line}"))?;
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    anyhow::bail!("{method}: {error}");
                }
                return Ok(message["result"].clone());
            }
        }
    }

    async fn call(&mut self, params: &Value) -> anyhow::Result<()> {
        let result = self.request("tools/call", params.clone()).await?;
        if result["isError"] == true {
            anyhow::bail!("{}: {}", params["name"], result["content"]);
        }
        Ok(())
    }
}
