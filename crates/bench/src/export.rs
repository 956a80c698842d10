//! `vitaltrends-bench export`: what exporting and backing up five years of data costs.
//!
//! Five years of history are imported from the simulator in-process (no latency and rate limits
//! raised: the import is not what is measured here), then each export of everything is timed
//! several times (the median is printed) and the bytes it wrote added up: Parquet (zstd), CSV,
//! WHOOP-shaped JSON, and a backup of the database (`VACUUM INTO`) for comparison, next to the
//! database's own size.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use store::{DayRange, ExportFormat};
use whoop_sim::SimConfig;

#[derive(ClapArgs)]
pub struct Args {
    /// Days of history exported.
    #[arg(long, default_value_t = 1826)]
    days: u32,
    /// Runs per format; the median is printed.
    #[arg(long, default_value_t = 5)]
    runs: u32,
}

fn size_of(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| size_of(&e.path())).sum())
            .unwrap_or(0)
    } else {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let sim = whoop_sim::start(
        SimConfig {
            days: args.days,
            seed: 2026,
            auto_approve: true,
            rate_limit_minute: 1_000_000,
            rate_limit_day: 1_000_000,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let engine = crate::history::signed_in_engine(&sim.base_url, dir.path().to_path_buf()).await?;
    engine.sync_now().await?;
    let store = engine.store();
    let counts = store.counts().await?;
    let database = size_of(&engine.settings().database_path());

    let mut rows = Vec::new();
    let formats = [
        ("Parquet (zstd)", Some(ExportFormat::Parquet)),
        ("CSV", Some(ExportFormat::Csv)),
        ("JSON (WHOOP's shape)", Some(ExportFormat::Json)),
        ("Backup (VACUUM INTO)", None),
    ];
    for (name, format) in formats {
        let mut times = Vec::new();
        let mut bytes = 0;
        for run in 0..args.runs.max(1) {
            let out = dir.path().join(format!("out-{run}"));
            let started = Instant::now();
            match format {
                Some(format) => {
                    store
                        .export_to(format, &out, &DayRange::ALL, &|_| {})
                        .await?;
                }
                None => {
                    store.backup_to(&out).await?;
                }
            }
            times.push(started.elapsed());
            bytes = size_of(&out);
            if out.is_dir() {
                std::fs::remove_dir_all(&out)?;
            } else {
                std::fs::remove_file(&out)?;
            }
        }
        times.sort();
        rows.push((name, times[times.len() / 2], bytes));
    }

    println!(
        "Export of {} days: {} records ({} cycles, {} sleeps, {} recoveries, {} workouts); database {}",
        args.days,
        counts.total(),
        counts.cycle,
        counts.sleep,
        counts.recovery,
        counts.workout,
        mib(database)
    );
    println!();
    println!("| format | time (median of {}) | size |", args.runs.max(1));
    println!("|---|---:|---:|");
    for (name, time, bytes) in rows {
        println!("| {name} | {} | {} |", ms(time), mib(bytes));
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}
