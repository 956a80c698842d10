//! `vitaltrends-bench`: measured figures, printed as tables.
//!
//! - `import`: how fast and how frugal the import is against WHOOP's limits (simulator in-process).
//! - `relay`: verified webhooks per second (SQLite, PostgreSQL), webhook-to-store latency through
//!   a real engine, and the relay's memory per idle event stream.
//! - `export`: Parquet, CSV and JSON exports and a backup of five years of data: time and size.
//! - `desktop`: the real app's cold start, its memory with the window open and in the tray, and
//!   the sizes of its binary and bundle.
//! - `dashboard`: p50/p99 of the dashboard's read for every range on five years of history.
//! - `mcp`: p50/p99 latency of every MCP tool, through the real `vitaltrends mcp` over stdio, on
//!   five years of history.
//!
//! - `scale`: many people connecting at once to one WHOOP app through the relay's quota
//!   coordinator (time-scaled): time to 30 days, six months and all history, 429s, quota used,
//!   webhook latency during the wave and fairness.
//!
//! Everything runs on loopback, and every load loop is bounded in count and in time.

mod dashboard;
mod desktop;
mod export;
mod history;
mod import;
mod mcp;
mod relay_bench;
mod scale;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vitaltrends-bench",
    about = "VitalTrends benchmarks (import, relay, export, dashboard, desktop, mcp, scale), on loopback against the WHOOP simulator, printed as tables"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import benchmarks: per history length, wall time, requests and 429s next to their lower
    /// bounds (simulator with WHOOP's default rate limits).
    Import(import::Args),
    /// Relay benchmarks: verified webhooks per second on SQLite (and PostgreSQL), webhook to
    /// applied-in-store latency through the relay and a real engine, and the relay's resident
    /// memory per idle event stream.
    Relay(relay_bench::Args),
    /// Export benchmarks: time and size of Parquet, CSV and JSON exports and of a backup, for
    /// five years of data imported from the simulator.
    Export(export::Args),
    /// Dashboard read latency: p50/p99 of every range (7 days to all) on a store of several
    /// years (default 5), next to one query per charted metric.
    Dashboard(dashboard::Args),
    /// Desktop benchmarks: cold start to an interactive Connections screen, memory of the app's
    /// whole process tree with the window open and closed to the tray, binary and bundle size.
    /// Needs a desktop session's tools (Xvfb, openbox, dbus, tauri-driver; scripts/setup.sh).
    Desktop(desktop::Args),
    /// MCP tool latency: p50/p99 per tool through the real `vitaltrends mcp` over stdio on a
    /// store of several years (default 5). Needs the CLI built (`cargo build -p cli`).
    Mcp(mcp::Args),
    /// Scale: N people connect within seconds to one WHOOP app (a multi-member simulator with
    /// WHOOP's default limits, time-scaled) through the real relay and its quota coordinator;
    /// prints time to 30 days / 6 months / all history, 429s, quota used, webhook latency and
    /// fairness.
    Scale(scale::Args),
    /// Internal: runs the relay library as a child process for the memory measurement when no
    /// `vitaltrends-relay` binary is available (same flags and environment as that binary).
    #[command(hide = true)]
    ServeRelay(relay_bench::child::ServeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Import(args) => import::run(args).await,
        Command::Relay(args) => relay_bench::run(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Dashboard(args) => dashboard::run(args).await,
        Command::Desktop(args) => desktop::run(args).await,
        Command::Mcp(args) => mcp::run(args).await,
        Command::Scale(args) => scale::run(args).await,
        Command::ServeRelay(args) => relay_bench::child::serve(args).await,
    }
}
