//! `vitaltrends-bench relay`: three measurements of the relay, printed as one table.
//!
//! 1. Intake: an in-process relay (SQLite in a temporary directory; PostgreSQL in a fresh schema
//!    that is dropped afterwards) takes N signed webhooks with distinct trace ids from a bounded
//!    number of HTTP/1.1 keep-alive clients; the figure is N over the wall time until every one
//!    was acknowledged.
//! 2. Latency: the WHOOP simulator (50 ms per data request) sends its webhooks to an in-process
//!    relay; an engine signed in through the relay's token broker has imported its history and
//!    runs the relay stream. Each event is one `/_sim/edit` (one webhook); its latency runs from
//!    the control call until the engine reports `DataChanged` and its store holds the edit's
//!    `updated_at`.
//! 3. Memory: a relay child process (the `vitaltrends-relay` binary when built, otherwise this
//!    binary running the relay library with the same flags) with N devices bound through the
//!    broker; its VmRSS before and after N idle SSE streams are opened, and its CPU time over a
//!    heartbeat period with the streams idle, then over one while webhooks for other members
//!    (none with a stream) arrive.

pub mod child;
mod intake;
mod latency;
mod streams;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args as ClapArgs, ValueEnum};

use crate::stats::percentile;

/// The relay's rate limits during every run here, instead of 600/min per IP and 200/s overall.
pub const RAISED_RELAY_LIMIT: u32 = 1_000_000_000;
/// The simulator's rate limits in the latency and stream runs, instead of WHOOP's 100/min and
/// 10,000/day.
pub const RAISED_SIM_MINUTE: u32 = 1_000_000;
pub const RAISED_SIM_DAY: u32 = 10_000_000;
/// The webhook-signing secret and the client the simulator registers by default.
pub const SIM_CLIENT_SECRET: &str = "demo-secret";
/// The desktop app's redirect URI; the simulator accepts any `vitaltrends://` URI.
pub const REDIRECT_URI: &str = "vitaltrends://oauth/whoop/callback";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    /// Verified webhooks per second (SQLite, PostgreSQL).
    Intake,
    /// Webhook to applied-in-store latency.
    Latency,
    /// Resident memory with idle SSE streams.
    Streams,
}

#[derive(ClapArgs)]
pub struct Args {
    /// PostgreSQL URL for the intake row on PostgreSQL (a fresh schema is created in that
    /// database and dropped afterwards); without it the row is skipped.
    #[arg(
        long,
        env = "VITALTRENDS_TEST_POSTGRES_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    postgres_url: Option<String>,
    /// Webhooks posted per intake run, and events generated for the latency run (which stops
    /// generating after 150 s; the table says how many were measured).
    #[arg(long, default_value_t = 1000)]
    events: usize,
    /// Idle SSE streams for the memory figure (fewer if the open-file limit or the 60 s budgets
    /// for binding devices and opening streams do not allow that many; the table says how many).
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// Concurrent HTTP/1.1 keep-alive clients posting webhooks in the intake runs.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Simulated WHOOP latency per data request in the latency run, in milliseconds.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Relay binary for the memory figure. Default: `vitaltrends-relay` next to this binary if it
    /// was built, otherwise this binary runs the relay library as the child process.
    #[arg(long, value_name = "PATH")]
    relay_bin: Option<PathBuf>,
    /// Which measurements to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values_t = vec![Part::Intake, Part::Latency, Part::Streams]
    )]
    only: Vec<Part>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(args.streams > 0, "--streams must be at least 1");
    let postgres = args.postgres_url.filter(|u| !u.trim().is_empty());
    let mut table = Table::default();
    let mut notes: Vec<String> = Vec::new();

    if args.only.contains(&Part::Intake) {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("relay.db").display());
        eprintln!(
            "intake: {} webhooks into SQLite, {} clients…",
            args.events, args.clients
        );
        let r = intake::run(&url, args.events, args.clients).await?;
        table.intake("SQLite", &r);
        match &postgres {
            Some(base) => {
                eprintln!(
                    "intake: {} webhooks into PostgreSQL, {} clients…",
                    args.events, args.clients
                );
                let r = intake::run_postgres(base, args.events, args.clients).await?;
                table.intake("PostgreSQL", &r);
            }
            None => notes.push(
                "PostgreSQL intake skipped: pass --postgres-url URL or set \
                 VITALTRENDS_TEST_POSTGRES_URL (scripts/postgres.sh prints one)."
                    .into(),
            ),
        }
        notes.push(format!(
            "Intake: relay rate limits raised for these runs from 600/min per IP and 200/s \
             overall to {}/min and {}/s (all clients share 127.0.0.1).",
            group(RAISED_RELAY_LIMIT as u64),
            group(RAISED_RELAY_LIMIT as u64)
        ));
    }

    if args.only.contains(&Part::Latency) {
        eprintln!(
            "latency: {} events, simulator at {} ms…",
            args.events, args.latency_ms
        );
        let r = latency::run(args.events, args.latency_ms).await?;
        table.latency(&r);
        notes.push(format!(
            "Latency: simulator rate limits raised from WHOOP's 100/min and 10,000/day to {}/min \
             and {}/day ({} events need about {} data requests); relay rate limits raised as for \
             intake (the simulator's webhooks all come from 127.0.0.1).",
            group(RAISED_SIM_MINUTE as u64),
            group(RAISED_SIM_DAY as u64),
            group(args.events as u64),
            group(args.events as u64 * 5 / 2),
        ));
        notes.extend(r.notes.iter().cloned());
    }

    if args.only.contains(&Part::Streams) {
        eprintln!("streams: up to {} idle SSE streams…", args.streams);
        let r = streams::run(args.streams, args.relay_bin.as_deref()).await?;
        table.streams(&r);
        notes.extend(r.notes.iter().cloned());
    }

    println!();
    print!("{}", table.render());
    println!();
    println!("Legend:");
    for (part, line) in LEGEND {
        if args.only.contains(&part) || line.starts_with("n:") {
            println!("  {line}");
        }
    }
    println!();
    println!("Limits and notes:");
    for note in &notes {
        println!("  - {note}");
    }
    Ok(())
}

const LEGEND: [(Part, &str); 6] = [
    (
        Part::Intake,
        "verified/s: webhooks acknowledged 204 (HMAC checked, event committed) per second of wall \
         time from the first request to the last answer; in-process relay, loopback, keep-alive \
         clients.",
    ),
    (
        Part::Latency,
        "webhook → applied: from the /_sim/edit call that makes the simulator send one webhook \
         until the engine announced DataChanged and its store held the edit's updated_at (relay \
         on SQLite, engine stream over SSE, one event in flight at a time).",
    ),
    (
        Part::Latency,
        "workout.updated costs the engine 2 WHOOP requests (workout, cycle), recovery.updated 3 \
         (sleep, cycle, recovery), each with the simulated latency; with half of each, the \
         all-events p50 sits where the two types meet.",
    ),
    (
        Part::Streams,
        "RSS: VmRSS of the relay child process from /proc/<pid>/status; 'no streams' is a freshly \
         started relay with the devices already bound, 'idle streams' is with every stream open \
         and idle for 10 s; peak is VmHWM.",
    ),
    (
        Part::Streams,
        "per idle stream: (idle streams - no streams) / streams open; CPU: relay user+system time \
         over 15 s (one heartbeat period) of idle streams, then over 15 s of idle streams while \
         webhooks arrive for 1,000 other members (none of them has a stream open).",
    ),
    (
        Part::Intake,
        "n: how many webhooks, events, devices or streams the figure is over.",
    ),
];

/// The one output table: measure, backend, n, value, detail.
#[derive(Default)]
struct Table {
    rows: Vec<[String; 5]>,
}

impl Table {
    fn push(&mut self, measure: &str, db: &str, n: String, value: String, detail: String) {
        self.rows
            .push([measure.into(), db.into(), n, value, detail]);
    }

    fn intake(&mut self, db: &str, r: &intake::IntakeResult) {
        let rate = r.acknowledged as f64 / r.wall.as_secs_f64().max(1e-9);
        let mut detail = format!(
            "{:.2} s wall, {} clients, {} × 204",
            r.wall.as_secs_f64(),
            r.clients,
            group(r.acknowledged as u64)
        );
        if r.failed > 0 {
            let _ = write!(detail, ", {} not 204 ({})", r.failed, r.failures);
        }
        if r.batches > 0 {
            let _ = write!(
                detail,
                ", {:.1} webhooks per commit",
                r.stored_metric as f64 / r.batches as f64
            );
        }
        if r.verified_metric != r.acknowledged as u64 || r.stored_metric != r.acknowledged as u64 {
            let _ = write!(
                detail,
                "; relay counted {} verified, {} stored",
                r.verified_metric, r.stored_metric
            );
        }
        self.push(
            "webhook intake",
            db,
            group(r.sent as u64),
            format!("{} verified/s", group(rate.round() as u64)),
            detail,
        );
    }

    fn latency(&mut self, r: &latency::LatencyResult) {
        let mut all: Vec<Duration> = Vec::new();
        for (_, samples) in &r.samples {
            all.extend(samples.iter().copied());
        }
        let detail = format!(
            "{} events sent, {} measured, {} timed out; {:.0} s",
            group(r.sent as u64),
            group(all.len() as u64),
            r.timed_out,
            r.wall.as_secs_f64()
        );
        self.latency_rows("webhook → applied", &all, detail);
        for (kind, samples) in &r.samples {
            self.latency_rows(&format!("  {kind}"), samples, String::new());
        }
    }

    fn latency_rows(&mut self, measure: &str, samples: &[Duration], detail: String) {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let value = if sorted.is_empty() {
            "no samples".to_string()
        } else {
            format!(
                "p50 {} · p99 {} · max {}",
                ms(percentile(&sorted, 0.50).unwrap_or_default()),
                ms(percentile(&sorted, 0.99).unwrap_or_default()),
                ms(*sorted.last().unwrap_or(&Duration::ZERO))
            )
        };
        self.push(measure, "SQLite", group(sorted.len() as u64), value, detail);
    }

    fn streams(&mut self, r: &streams::StreamsResult) {
        self.push(
            "relay RSS, no streams",
            "SQLite",
            group(r.devices as u64),
            format!("{} KiB", group(r.rss_before_kib)),
            format!(
                "fresh relay process, {} devices bound",
                group(r.devices as u64)
            ),
        );
        self.push(
            "relay RSS, idle streams",
            "SQLite",
            group(r.opened as u64),
            format!("{} KiB", group(r.rss_after_kib)),
            format!(
                "relay reports {} open; peak {} KiB",
                group(r.relay_open_streams),
                group(r.rss_peak_kib)
            ),
        );
        let per = if r.opened > 0 {
            (r.rss_after_kib as f64 - r.rss_before_kib as f64) / r.opened as f64
        } else {
            0.0
        };
        self.push(
            "per idle stream",
            "SQLite",
            group(r.opened as u64),
            format!("{per:.1} KiB"),
            format!(
                "opening took {:.1} s, {} failed",
                r.open_wall.as_secs_f64(),
                r.open_failed
            ),
        );
        self.push(
            "relay CPU, streams idle",
            "SQLite",
            group(r.opened as u64),
            format!("{:.0} % of a core", r.idle_cpu_percent),
            "over 15 s; no events, heartbeats every 15 s".into(),
        );
        self.push(
            "relay CPU, streams idle, others' webhooks",
            "SQLite",
            group(r.opened as u64),
            format!("{:.0} % of a core", r.busy_cpu_percent),
            format!(
                "over 15 s; {} of {} webhooks for other members 204 ({}/s)",
                group(r.busy_acknowledged as u64),
                group(r.busy_sent as u64),
                streams::OTHER_MEMBERS_RATE
            ),
        );
    }

    fn render(&self) -> String {
        let header = ["measure", "db", "n", "result", "detail"];
        let mut widths = header.map(|h| h.chars().count());
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: [&str; 5]| {
            let pad = |s: &str, w: usize| " ".repeat(w.saturating_sub(s.chars().count()));
            let _ = writeln!(
                out,
                "{}{}  {}{}  {}{}  {}{}  {}",
                cells[0],
                pad(cells[0], widths[0]),
                cells[1],
                pad(cells[1], widths[1]),
                pad(cells[2], widths[2]),
                cells[2],
                pad(cells[3], widths[3]),
                cells[3],
                cells[4]
            );
        };
        line(&mut out, header);
        for row in &self.rows {
            line(&mut out, [&row[0], &row[1], &row[2], &row[3], &row[4]]);
        }
        out
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// 1234567 → "1,234,567".
pub fn group(n: u64) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|g| g.iter().collect())
        .collect();
    groups.join(",")
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A name unlikely to repeat across runs and processes (schemas, trace ids).
pub fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}_{:x}", std::process::id(), nanos)
}

/// One value from a Prometheus text page (`name value` lines), 0 when absent.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|rest| rest.strip_prefix(' '))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .map(|v| v.max(0.0) as u64)
        .next()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
        let page = "# HELP x\nrelay_streams_open 12\nrelay_streams_open_x 3\n";
        assert_eq!(metric(page, "relay_streams_open"), 12);
        assert_eq!(metric(page, "missing"), 0);
    }
}
