//! `vitaltrends-bench dashboard`: how long the dashboard's read takes for every range on a long
//! history.
//!
//! Builds a store of N years (the simulator in-process without rate limits, imported by a real
//! engine), then reads the dashboard of each range many times through the same store call the
//! desktop's `dashboard` command makes, and prints p50/p99. Beside it, the same charts read the
//! way the dashboard did before the day read existed: one query per charted metric.

use std::time::{Duration, Instant};

use clap::Args as ClapArgs;

use crate::stats::{days_in_years, percentile};

#[derive(ClapArgs)]
pub struct Args {
    /// Years of history in the store.
    #[arg(long, default_value_t = 5)]
    years: u32,
    /// Reads per range (after 5 warm-up reads).
    #[arg(long, default_value_t = 200)]
    calls: u32,
    /// Keep the store in this folder and reuse it on the next run (built there when it holds
    /// none), instead of a temporary folder.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

const RANGES: [(&str, Option<i64>); 6] = [
    ("7d", Some(7)),
    ("30d", Some(30)),
    ("90d", Some(90)),
    ("6m", Some(183)),
    ("1y", Some(365)),
    ("all", None),
];

pub async fn run(args: Args) -> anyhow::Result<()> {
    let temporary = tempfile::tempdir()?;
    let dir = args
        .data_dir
        .clone()
        .unwrap_or(temporary.path().to_path_buf());
    let file = dir.join("vitaltrends.db");
    if !file.exists() {
        let days = days_in_years(args.years);
        eprintln!("building a store of {days} days in {}…", dir.display());
        std::fs::create_dir_all(&dir)?;
        crate::history::imported_history(dir.clone(), days).await?;
    }
    let store = store::Store::open(&file).await?;
    let records = store.data_summary().await?.counts.total();

    println!(
        "dashboard read, {} years ({records} records), {} reads per range",
        args.years, args.calls
    );
    println!(
        "{:<6} {:>6} {:>9} {:>9} {:>9} {:>22} {:>26}",
        "range",
        "days",
        "p50 ms",
        "p99 ms",
        "max ms",
        "per-metric p50/p99 ms",
        "p50 ms: today/days/workouts"
    );
    for (name, range) in RANGES {
        let mut one_read = Vec::new();
        let (mut shown_days, mut from, mut to) =
            (0, chrono::NaiveDate::MIN, chrono::NaiveDate::MIN);
        for i in 0..args.calls + 5 {
            let started = Instant::now();
            let dashboard = store.dashboard(range, 50).await?;
            if i >= 5 {
                one_read.push(started.elapsed());
            }
            (shown_days, from, to) = (dashboard.days.len(), dashboard.from, dashboard.to);
        }
        // The previous way: the same range (as the store's read chose it), one query per chart.
        let mut per_metric = Vec::new();
        for i in 0..args.calls + 5 {
            let started = Instant::now();
            store.today().await?;
            for metric in store::CHARTED {
                store.days(from, to, &[metric]).await?;
            }
            store.workouts(from, to, 50).await?;
            if i >= 5 {
                per_metric.push(started.elapsed());
            }
        }
        // Where the time goes: the parts of the read, each timed alone.
        let mut parts = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..args.calls {
            let t = Instant::now();
            store.today().await?;
            parts[0].push(t.elapsed());
            let t = Instant::now();
            store.days_and_stages(from, to, &store::CHARTED).await?;
            parts[1].push(t.elapsed());
            let t = Instant::now();
            store.workouts(from, to, 50).await?;
            parts[2].push(t.elapsed());
        }
        let [today_part, days_part, workouts_part] = parts.map(|mut p| ms(percentiles(&mut p).0));
        let (p50, p99, max) = percentiles(&mut one_read);
        let (old50, old99, _) = percentiles(&mut per_metric);
        println!(
            "{name:<6} {shown_days:>6} {:>9.2} {:>9.2} {:>9.2} {:>22} {:>26}",
            ms(p50),
            ms(p99),
            ms(max),
            format!("{:.2} / {:.2}", ms(old50), ms(old99)),
            format!("{today_part:.2}/{days_part:.2}/{workouts_part:.2}")
        );
    }
    println!("target: p99 under 20 ms for every range");
    Ok(())
}

/// p50, p99 and the slowest of the samples.
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |p| percentile(samples, p).unwrap_or_default();
    (at(0.5), at(0.99), at(1.0))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
