//! `vitaltrends-bench scale`: many people connecting at once to one WHOOP app.
//!
//! Starts a simulator with N members and WHOOP's default app-wide limits, the real relay with
//! its quota coordinator in front of it, and N desktop engines in this process (each with its own
//! store and secret store) that connect within a short window, as on a launch day. Time is scaled:
//! WHOOP's minute and day (in the simulator and in the relay's coordinator) last `--time-scale`
//! times less, so a run of minutes covers hours of WHOOP's clock; everything else (latency, the
//! engines) runs in real time. While the imports run, the simulator's clock moves on at the same
//! scale, so new data and its webhooks arrive as they would at WHOOP, through the relay.
//!
//! Printed: per person, the time until the last 30 days, six months and all history are in (in
//! real seconds and in WHOOP's scaled minutes); 429s; the share of WHOOP's daily quota used;
//! webhook-to-store latency during the import wave; fairness among people who connected in the
//! same WHOOP minute.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use serde_json::{json, Value};
use sync::events::{EngineEvent, JobKind, Phase};
use sync::Engine;
use tokio::sync::Mutex;
use url::Url;
use whoop_sim::SimConfig;

use crate::stats::percentile;

#[derive(ClapArgs)]
pub struct Args {
    /// People connecting.
    #[arg(long, default_value_t = 100)]
    users: u32,
    /// Days of history each person has at WHOOP.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// WHOOP's minute and day pass this many times faster (simulator and relay).
    #[arg(long, default_value_t = 60.0)]
    time_scale: f64,
    /// WHOOP's rate limits for the app, per minute and per day (WHOOP's defaults).
    #[arg(long, default_value_t = 100)]
    rate_minute: u32,
    #[arg(long, default_value_t = 10_000)]
    rate_day: u32,
    /// Everyone connects within this many real seconds.
    #[arg(long, default_value_t = 10.0)]
    connect_window_s: f64,
    /// WHOOP's answer time per data request, real milliseconds.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Real seconds between the simulator's advances (each moves WHOOP's clock on by as much
    /// scaled time; the first comes one second into the wave).
    #[arg(long, default_value_t = 2.0)]
    advance_every_s: f64,
    /// The run ends after this many real seconds even if imports are still running.
    #[arg(long, default_value_t = 600)]
    limit_s: u64,
}

/// The engines signed in so far, each under its WHOOP user id.
type SignedIn = Arc<Mutex<Vec<(i64, Arc<Engine>)>>>;

/// When a person reached one point of their import.
type Milestone = fn(&Person) -> Option<Duration>;

/// What one person's engine went through, in real time since they connected.
#[derive(Default, Clone)]
struct Person {
    connected_at: Option<Instant>,
    last_30_days: Option<Duration>,
    six_months: Option<Duration>,
    all: Option<Duration>,
    failed: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    // The relay's and the engines' warnings (why a sign-in failed, say) go to stderr when
    // RUST_LOG asks for them.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let started = Instant::now();
    let sim = whoop_sim::start(
        SimConfig {
            users: args.users,
            days: args.days,
            seed: 2026,
            auto_approve: true,
            latency_ms: args.latency_ms,
            rate_limit_minute: args.rate_minute,
            rate_limit_day: args.rate_day,
            rate_window_scale: args.time_scale,
            webhook_retry_scale: 1.0 / args.time_scale,
            newest_night_pending: false,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let relay_dir = tempfile::tempdir()?;
    let relay = relay::start(relay::RelayConfig {
        listen: "127.0.0.1:0".parse()?,
        database_url: format!("sqlite://{}", relay_dir.path().join("relay.db").display()),
        whoop_base_url: Url::parse(&sim.base_url)?,
        client_id: "vitaltrends-demo".into(),
        client_secrets: vec!["demo-secret".into()],
        // Every desktop comes from 127.0.0.1 here; the per-IP limits are for the internet.
        per_ip_per_minute: u32::MAX,
        global_per_second: u32::MAX,
        auth_failures_per_minute: u32::MAX,
        quota: Some(relay::QuotaConfig {
            per_minute: args.rate_minute,
            per_day: args.rate_day,
            time_scale: args.time_scale,
        }),
        ..relay::RelayConfig::default()
    })
    .await?;
    let http = reqwest::Client::new();
    http.post(format!("{}/_sim/webhook-url", sim.base_url))
        .json(&json!({"url": format!("{}/webhooks/whoop", relay.base_url)}))
        .send()
        .await?
        .error_for_status()?;
    eprintln!(
        "simulator ({} members, {} days) and relay up in {:.1} s; connecting…",
        args.users,
        args.days,
        started.elapsed().as_secs_f64()
    );

    let people: Arc<Mutex<Vec<Person>>> =
        Arc::new(Mutex::new(vec![Person::default(); args.users as usize]));
    let engines: SignedIn = Arc::new(Mutex::new(Vec::new()));
    let dirs = tempfile::tempdir()?;
    let wave = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.users as usize {
        let offset =
            Duration::from_secs_f64(args.connect_window_s * i as f64 / args.users.max(1) as f64);
        let (people, engines) = (people.clone(), engines.clone());
        let data_dir = dirs.path().join(format!("person-{i}"));
        let (whoop, relay_url) = (sim.base_url.clone(), relay.base_url.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until((wave + offset).into()).await;
            let outcome = person(i, data_dir, &whoop, &relay_url, &people, &engines).await;
            if let Err(e) = outcome {
                people.lock().await[i].failed = Some(e.to_string());
            }
        }));
    }

    // New data keeps arriving while everyone imports; each advance is a burst of webhooks.
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let deadline = wave + Duration::from_secs(args.limit_s);
    let mut next_advance = wave + Duration::from_secs(1);
    loop {
        let done = people
            .lock()
            .await
            .iter()
            .all(|p| p.all.is_some() || p.failed.is_some());
        if done || Instant::now() >= deadline {
            break;
        }
        if Instant::now() >= next_advance {
            next_advance += Duration::from_secs_f64(args.advance_every_s);
            let advanced = Instant::now();
            let answer: Value = http
                .post(format!("{}/_sim/advance", sim.base_url))
                .json(&json!({"hours": args.advance_every_s * args.time_scale / 3600.0}))
                .send()
                .await?
                .json()
                .await?;
            // A sleep or workout WHOOP just created is announced by a webhook; how long until it
            // is in its person's store is the webhook-to-store latency.
            let engines = engines.lock().await.clone();
            for event in answer["events"].as_array().into_iter().flatten() {
                let kind = event["type"].as_str().unwrap_or_default();
                let Some(collection) = kind.strip_suffix(".updated") else {
                    continue;
                };
                if collection != "sleep" && collection != "workout" {
                    continue;
                }
                let member = event["user"].as_u64().unwrap_or(0) as usize;
                let Some(user_id) = sim.user_ids.get(member.wrapping_sub(1)) else {
                    continue;
                };
                let Some((_, engine)) = engines.iter().find(|(id, _)| id == user_id) else {
                    continue;
                };
                let (engine, id) = (
                    engine.clone(),
                    event["id"].as_str().unwrap_or_default().to_string(),
                );
                if stored(&engine, collection, &id).await {
                    continue; // an update of a record it already has
                }
                let latencies = latencies.clone();
                let collection = collection.to_string();
                tokio::spawn(async move {
                    let limit = advanced + Duration::from_secs(120);
                    while Instant::now() < limit {
                        if stored(&engine, &collection, &id).await {
                            latencies.lock().await.push(advanced.elapsed());
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    latencies.lock().await.push(Duration::MAX);
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wave_s = wave.elapsed().as_secs_f64();
    let stats: Value = http
        .get(format!("{}/_sim/stats", sim.base_url))
        .send()
        .await?
        .json()
        .await?;
    let relay_metrics = http
        .get(format!("{}/metrics", relay.base_url))
        .send()
        .await?
        .text()
        .await?;
    for task in &tasks {
        task.abort();
    }
    let people = people.lock().await.clone();
    report(&args, &people, &latencies.lock().await, &stats, wave_s);
    let granted: Vec<String> = relay_metrics
        .lines()
        .filter_map(|l| l.strip_prefix("relay_quota_granted_total{priority=\""))
        .map(|l| l.replace("\"}", ":"))
        .collect();
    println!(
        "granted by the relay, per priority: {} (live per person and WHOOP day: {:.1})",
        granted.join(", "),
        live_per_person_day(
            &relay_metrics,
            args.users,
            wave_s * args.time_scale / 86_400.0
        )
    );
    Ok(())
}

/// One person: opens an engine, signs in (the simulator's consent page approves the next member),
/// runs the app's job runner and live stream, and notes when the import passes 30 days, six
/// months and the end of history.
async fn person(
    i: usize,
    data_dir: PathBuf,
    whoop: &str,
    relay_url: &str,
    people: &Mutex<Vec<Person>>,
    engines: &Mutex<Vec<(i64, Arc<Engine>)>>,
) -> anyhow::Result<()> {
    let engine = crate::history::signed_in_through(whoop, Some(relay_url), data_dir).await?;
    let mut events = engine.subscribe();
    let connected = Instant::now();
    people.lock().await[i].connected_at = Some(connected);
    let user_id = engine
        .status()
        .await?
        .connection
        .user()
        .map(|(id, _)| id)
        .ok_or_else(|| anyhow::anyhow!("signed in as nobody"))?;
    engines.lock().await.push((user_id, engine.clone()));
    tokio::spawn(engine.clone().run_jobs());
    tokio::spawn(engine.clone().run_stream());
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let now = connected.elapsed();
        let mut people = people.lock().await;
        let me = &mut people[i];
        match event {
            EngineEvent::Progress(p) if p.job == JobKind::Import => {
                if p.recent_windows_done >= 1 && me.last_30_days.is_none() {
                    me.last_30_days = Some(now);
                }
                let months_in = p.phase == Phase::History
                    || (p.recent_windows_total > 0
                        && p.recent_windows_done >= p.recent_windows_total);
                if months_in && me.six_months.is_none() {
                    me.six_months = Some(now);
                    me.last_30_days.get_or_insert(now);
                }
            }
            EngineEvent::JobFinished {
                job: JobKind::Import,
                error,
                ..
            } => {
                if let Some(error) = error {
                    me.failed = Some(error);
                } else {
                    me.last_30_days.get_or_insert(now);
                    me.six_months.get_or_insert(now);
                    me.all = Some(now);
                }
                return Ok(());
            }
            _ => {}
        }
    }
}

/// Whether the engine's store holds the sleep or workout `id`.
async fn stored(engine: &Engine, collection: &str, id: &str) -> bool {
    let store = engine.store();
    match collection {
        "sleep" => matches!(store.sleep_cycle_id(id).await, Ok(Some(_))),
        _ => matches!(store.workout_start(id).await, Ok(Some(_))),
    }
}

/// Live fetches granted per person and WHOOP day: what keeping one person current costs.
fn live_per_person_day(metrics: &str, users: u32, days: f64) -> f64 {
    let live: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("relay_quota_granted_total{priority=\"live\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    live / users.max(1) as f64 / days.max(f64::MIN_POSITIVE)
}

fn report(args: &Args, people: &[Person], latencies: &[Duration], stats: &Value, wave_s: f64) {
    let whoop_minutes = |s: f64| s * args.time_scale / 60.0;
    println!(
        "scale: {} people, {} days each, WHOOP limits {}/min and {}/day, time scale {}× \
         (a WHOOP minute = {:.2} s, a day = {:.1} min), all connecting within {} s",
        args.users,
        args.days,
        args.rate_minute,
        args.rate_day,
        args.time_scale,
        60.0 / args.time_scale,
        1440.0 / args.time_scale,
        args.connect_window_s
    );
    println!(
        "{:<24} {:>7} {:>9} {:>9} {:>9} {:>22}",
        "", "done", "p50 s", "p99 s", "max s", "p50/p99/max WHOOP min"
    );
    let rows: [(&str, Milestone); 3] = [
        ("last 30 days in", |p| p.last_30_days),
        ("6 months in", |p| p.six_months),
        ("all history in", |p| p.all),
    ];
    for (name, of) in rows {
        let mut times: Vec<f64> = people
            .iter()
            .filter_map(of)
            .map(|d| d.as_secs_f64())
            .collect();
        times.sort_by(f64::total_cmp);
        let cell = |q| percentile(&times, q).map_or("–".into(), |v| format!("{v:.1}"));
        let minutes =
            |q| percentile(&times, q).map_or("–".into(), |v| format!("{:.0}", whoop_minutes(v)));
        println!(
            "{name:<24} {:>7} {:>9} {:>9} {:>9} {:>22}",
            format!("{}/{}", times.len(), people.len()),
            cell(0.5),
            cell(0.99),
            cell(1.0),
            format!("{}/{}/{}", minutes(0.5), minutes(0.99), minutes(1.0))
        );
    }
    let failed: Vec<&String> = people.iter().filter_map(|p| p.failed.as_ref()).collect();
    if !failed.is_empty() {
        println!("failed imports: {} (first: {})", failed.len(), failed[0]);
    }

    let lost = latencies.iter().filter(|d| **d == Duration::MAX).count();
    let mut ms: Vec<f64> = latencies
        .iter()
        .filter(|d| **d != Duration::MAX)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "webhook to store during the wave: {} new records ({lost} not in within 2 min), \
         p50 {} ms, p99 {} ms (target p99 < 5000)",
        ms.len(),
        percentile(&ms, 0.5).map_or("–".into(), |v| format!("{v:.0}")),
        percentile(&ms, 0.99).map_or("–".into(), |v| format!("{v:.0}")),
    );

    let app = &stats["app"];
    let requests = app["requests"].as_f64().unwrap_or(f64::NAN);
    let limited = app["rate_limited"].as_f64().unwrap_or(f64::NAN);
    let minutes = whoop_minutes(wave_s);
    println!(
        "WHOOP requests: {requests:.0} in {minutes:.0} WHOOP minutes ({:.0} % of the minute limit \
         on average), {:.1} % of one day's quota; 429s: {limited:.0} (target 0 after the first)",
        requests / (args.rate_minute as f64 * minutes.max(1e-9)) * 100.0,
        requests / args.rate_day as f64 * 100.0,
    );

    // Fairness: people who connected in the same WHOOP minute.
    let Some(first) = people.iter().filter_map(|p| p.connected_at).min() else {
        return;
    };
    let minute = 60.0 / args.time_scale;
    let mut groups: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for p in people {
        if let (Some(at), Some(t)) = (p.connected_at, p.last_30_days) {
            let key = ((at - first).as_secs_f64() / minute) as u64;
            groups.entry(key).or_default().push(t.as_secs_f64());
        }
    }
    let worst = groups
        .values()
        .filter(|g| g.len() >= 2)
        .map(|g| {
            let max = g.iter().cloned().fold(f64::MIN, f64::max);
            let min = g.iter().cloned().fold(f64::MAX, f64::min);
            (max / min.max(1e-3), g.len())
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match worst {
        Some((ratio, n)) => println!(
            "fairness: max/min time to 30 days among people connected in the same WHOOP minute: \
             {ratio:.2} (worst of {} minutes; that one had {n} people)",
            groups.len()
        ),
        None => println!("fairness: no WHOOP minute had two people connect"),
    }
}
