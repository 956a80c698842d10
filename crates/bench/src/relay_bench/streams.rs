//! The relay's resident memory with N idle SSE streams.
//!
//! A relay child process binds N devices through its token broker (the simulator as WHOOP, one
//! OAuth code per device), then is restarted on the same SQLite database so the baseline is a
//! fresh process rather than one whose allocator still holds the binding work. Its VmRSS is read
//! before and after N streams (`GET /v1/events`, one TCP connection each, never read from) are
//! opened and left idle.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use url::Url;
use whoop_sim::SimConfig;

use super::child::{RelayChild, RelayProgram};
use super::{group, RAISED_RELAY_LIMIT, RAISED_SIM_DAY, RAISED_SIM_MINUTE, REDIRECT_URI};
use super::{metric, SIM_CLIENT_SECRET};

/// File descriptors the benchmark keeps free for everything that is not a stream.
const FD_RESERVE: u64 = 256;
const BIND_BUDGET: Duration = Duration::from_secs(60);
const BIND_CONCURRENCY: usize = 32;
const OPEN_BUDGET: Duration = Duration::from_secs(60);
const OPEN_CONCURRENCY: usize = 64;
const PER_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const SETTLE: Duration = Duration::from_secs(5);
/// One whole heartbeat period (15 s by default), so every stream's periodic work falls inside
/// the window once, wherever its timers happen to stand.
const CPU_WINDOW: Duration = Duration::from_secs(15);
/// Webhooks per second for members without a stream during the second CPU window: the relay's
/// default overall webhook limit.
pub const OTHER_MEMBERS_RATE: u64 = 200;
/// WHOOP user ids for those webhooks; the simulator's member (every stream's) is not among them.
const OTHER_MEMBER_BASE: i64 = 900_000_000;

pub struct StreamsResult {
    pub devices: usize,
    pub opened: usize,
    pub open_failed: usize,
    pub open_wall: Duration,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub rss_peak_kib: u64,
    pub relay_open_streams: u64,
    pub idle_cpu_percent: f64,
    /// CPU while webhooks for other members arrive, and how many were acknowledged.
    pub busy_cpu_percent: f64,
    pub busy_acknowledged: usize,
    pub busy_sent: usize,
    pub notes: Vec<String>,
}

/// `rlim_t` is `u64` on Linux but not everywhere.
#[allow(clippy::useless_conversion)]
fn as_u64(v: libc::rlim_t) -> u64 {
    u64::from(v)
}

/// Raises this process's soft RLIMIT_NOFILE to the hard limit. Returns (soft before, soft now,
/// hard).
fn raise_open_files() -> anyhow::Result<(u64, u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        anyhow::bail!("getrlimit: {}", std::io::Error::last_os_error());
    }
    let before = as_u64(lim.rlim_cur);
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given; raising the soft limit up to the hard
        // limit needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        }
    }
    Ok((before, as_u64(lim.rlim_cur), as_u64(lim.rlim_max)))
}

pub async fn run(wanted: usize, relay_bin: Option<&Path>) -> anyhow::Result<StreamsResult> {
    let mut notes = Vec::new();
    let (soft_before, soft, hard) = raise_open_files()?;
    let cap = soft.saturating_sub(FD_RESERVE) as usize;
    let target = wanted.min(cap);
    notes.push(format!(
        "Streams: RLIMIT_NOFILE of the benchmark (one descriptor per client stream) {}; the relay \
         child inherits it{}.",
        if soft > soft_before {
            format!(
                "raised from {} to {} (the hard limit)",
                group(soft_before),
                group(soft)
            )
        } else {
            format!(
                "left at {} (already the hard limit, {})",
                group(soft),
                group(hard)
            )
        },
        if target < wanted {
            format!(
                "; streams capped at {} (the limit minus {FD_RESERVE} spare)",
                group(target as u64)
            )
        } else {
            String::new()
        }
    ));

    let program = RelayProgram::locate(relay_bin)?;
    notes.push(format!("Streams: relay child = {}.", program.description));
    let sim = whoop_sim::start(
        SimConfig {
            days: 14,
            seed: 7,
            latency_ms: 0,
            auto_approve: true,
            rate_limit_minute: RAISED_SIM_MINUTE,
            rate_limit_day: RAISED_SIM_DAY,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let sim_url = Url::parse(&sim.base_url)?;
    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}", dir.path().join("relay.db").display());
    let spawn = || {
        RelayChild::spawn(
            &program,
            &database_url,
            &sim.base_url,
            &sim.client_id,
            SIM_CLIENT_SECRET,
            RAISED_RELAY_LIMIT,
        )
    };

    // Devices, through the broker as the desktop app gets them.
    let binder = spawn().await?;
    eprintln!("streams: binding up to {target} devices through the broker…");
    let bound = bind_devices(&sim_url, &sim.client_id, &binder.base_url, target).await;
    binder.stop().await;
    let devices = bound.credentials.len();
    notes.push(format!(
        "Streams: {} devices bound through the broker in {:.1} s ({} failed{}); relay rate limits \
         raised as for intake, simulator rate limits as for latency (each binding costs WHOOP a \
         token and a profile request).",
        group(devices as u64),
        bound.wall.as_secs_f64(),
        bound.failed,
        bound
            .first_error
            .as_ref()
            .map(|e| format!(", first: {e}"))
            .unwrap_or_default()
    ));
    anyhow::ensure!(devices > 0, "no device could be bound through the broker");

    // A fresh relay on the same database: the baseline.
    let relay = spawn().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before_kib = relay.status_kib("VmRSS")?;
    eprintln!("streams: opening {devices} idle SSE streams…");
    let opened = open_streams(relay.addr, &bound.credentials).await;
    tokio::time::sleep(SETTLE).await;
    let cpu_start = relay.cpu_time()?;
    let window = Instant::now();
    tokio::time::sleep(CPU_WINDOW).await;
    let cpu = relay.cpu_time()?.saturating_sub(cpu_start);
    let idle_cpu_percent = cpu.as_secs_f64() / window.elapsed().as_secs_f64() * 100.0;
    eprintln!("streams: webhooks for other members at {OTHER_MEMBERS_RATE}/s…");
    let cpu_start = relay.cpu_time()?;
    let window = Instant::now();
    let (busy_sent, busy_acknowledged) =
        other_members_webhooks(&relay.base_url, OTHER_MEMBERS_RATE, CPU_WINDOW).await?;
    let cpu = relay.cpu_time()?.saturating_sub(cpu_start);
    let busy_cpu_percent = cpu.as_secs_f64() / window.elapsed().as_secs_f64() * 100.0;
    let rss_after_kib = relay.status_kib("VmRSS")?;
    let rss_peak_kib = relay.status_kib("VmHWM")?;
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", relay.metrics_url))
        .timeout(PER_REQUEST_TIMEOUT)
        .send()
        .await?
        .text()
        .await?;
    let relay_open_streams = metric(&metrics, "relay_streams_open");
    notes.push(format!(
        "Streams: relay child's open-file limit {}; {} open streams need as many descriptors \
         there plus the database's.",
        relay
            .open_files_limit()
            .map(group)
            .unwrap_or_else(|| "unknown".into()),
        group(opened.streams.len() as u64)
    ));
    let (logged, last) = relay.log_summary();
    if logged > 0 {
        notes.push(format!(
            "Streams: the relay child logged {} lines at RUST_LOG=warn; the last: {}",
            group(logged as u64),
            last.unwrap_or_default()
        ));
    }
    if let Some(err) = &opened.first_error {
        notes.push(format!("Streams: first failure opening a stream: {err}"));
    }

    let open = opened.streams.len();
    drop(opened.streams);
    relay.stop().await;
    drop(sim);
    Ok(StreamsResult {
        devices,
        opened: open,
        open_failed: opened.failed,
        open_wall: opened.wall,
        rss_before_kib,
        rss_after_kib,
        rss_peak_kib,
        relay_open_streams,
        idle_cpu_percent,
        busy_cpu_percent,
        busy_acknowledged,
        busy_sent,
        notes,
    })
}

/// Signed webhooks for members that have no stream open, `rate` a second for `window`, from a
/// few keep-alive clients; returns (sent, answered 204). Every stream stays idle: none of these
/// is its member's.
async fn other_members_webhooks(
    relay: &str,
    rate: u64,
    window: Duration,
) -> anyhow::Result<(usize, usize)> {
    const CLIENTS: u64 = 4;
    let http = reqwest::Client::builder()
        .http1_only()
        .timeout(PER_REQUEST_TIMEOUT)
        .build()?;
    let url = Arc::new(format!("{relay}/webhooks/whoop"));
    let run = super::run_id();
    let started = tokio::time::Instant::now();
    let total = (rate * window.as_secs()) as usize;
    let mut tasks = JoinSet::new();
    for c in 0..CLIENTS {
        let (http, url, run) = (http.clone(), url.clone(), run.clone());
        tasks.spawn(async move {
            let period = Duration::from_secs_f64(CLIENTS as f64 / rate as f64);
            let mut tick = tokio::time::interval_at(started, period);
            let (mut sent, mut ok) = (0usize, 0usize);
            let mut i = c as usize;
            // Paced, and never past the window: a relay that cannot keep up sends fewer.
            while i < total && started.elapsed() < window {
                tick.tick().await;
                let body = serde_json::json!({
                    "user_id": OTHER_MEMBER_BASE + (i as i64 % 1000),
                    "id": format!("00000000-0000-4000-9000-{i:012x}"),
                    "type": "workout.updated",
                    "trace_id": format!("idle-{run}-{i}"),
                })
                .to_string();
                let timestamp = super::now_ms().to_string();
                let signature =
                    whoop::webhook::sign(SIM_CLIENT_SECRET.as_bytes(), &timestamp, body.as_bytes());
                sent += 1;
                if let Ok(resp) = http
                    .post(url.as_str())
                    .header("Content-Type", "application/json")
                    .header(whoop::webhook::SIGNATURE_HEADER, signature)
                    .header(whoop::webhook::TIMESTAMP_HEADER, timestamp)
                    .body(body)
                    .send()
                    .await
                {
                    ok += usize::from(resp.status().as_u16() == 204);
                    let _ = resp.bytes().await;
                }
                i += CLIENTS as usize;
            }
            (sent, ok)
        });
    }
    let (mut sent, mut ok) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (s, o) = done?;
        sent += s;
        ok += o;
    }
    Ok((sent, ok))
}

struct Bound {
    credentials: Vec<String>,
    failed: usize,
    first_error: Option<String>,
    wall: Duration,
}

/// Binds up to `n` devices, `BIND_CONCURRENCY` at a time, for at most `BIND_BUDGET`.
async fn bind_devices(sim: &Url, client_id: &str, relay: &str, n: usize) -> Bound {
    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .timeout(PER_REQUEST_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return Bound {
                credentials: Vec::new(),
                failed: 0,
                first_error: Some(e.to_string()),
                wall: Duration::ZERO,
            }
        }
    };
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let started = Instant::now();
    let deadline = started + BIND_BUDGET;
    let mut tasks = JoinSet::new();
    for _ in 0..BIND_CONCURRENCY.min(n.max(1)) {
        let (http, next, failed, first_error) = (
            http.clone(),
            next.clone(),
            failed.clone(),
            first_error.clone(),
        );
        let (sim, client_id, relay) = (sim.clone(), client_id.to_string(), relay.to_string());
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() >= deadline {
                    break;
                }
                match bind_one(&http, &sim, &client_id, &relay).await {
                    Ok(credential) => mine.push(credential),
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            mine
        });
    }
    let mut credentials = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        if let Ok(mine) = done {
            credentials.extend(mine);
        }
    }
    let first_error = first_error.lock().unwrap_or_else(|p| p.into_inner()).take();
    Bound {
        credentials,
        failed: failed.load(Ordering::Relaxed),
        first_error,
        wall: started.elapsed(),
    }
}

/// One device: the authorization page (auto-approved) for a code, then the broker's exchange,
/// which binds a device and hands back its credential with WHOOP's tokens.
async fn bind_one(
    http: &reqwest::Client,
    sim: &Url,
    client_id: &str,
    relay: &str,
) -> anyhow::Result<String> {
    let authorize = whoop::oauth::authorize_url(sim)?;
    let request = whoop::oauth::authorization_request(&authorize, client_id, REDIRECT_URI)?;
    let answer = http.get(request.url.clone()).send().await?;
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("no redirect from the authorization page")?;
    let code = Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code in the redirect")?;
    let answer = http
        .post(format!("{relay}/oauth/whoop/token"))
        .form(&[
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", request.pkce_verifier.expose()),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        answer.status().is_success(),
        "broker answered {}",
        answer.status()
    );
    let body: Value = answer.json().await?;
    Ok(body["device_credential"]
        .as_str()
        .context("the broker bound no device")?
        .to_string())
}

struct Opened {
    streams: Vec<TcpStream>,
    failed: usize,
    first_error: Option<String>,
    wall: Duration,
}

/// Opens one stream per credential, `OPEN_CONCURRENCY` at a time, for at most `OPEN_BUDGET`.
async fn open_streams(addr: SocketAddr, credentials: &[String]) -> Opened {
    let credentials: Arc<Vec<String>> = Arc::new(credentials.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + OPEN_BUDGET;
    let mut tasks = JoinSet::new();
    for _ in 0..OPEN_CONCURRENCY.min(credentials.len().max(1)) {
        let (credentials, next) = (credentials.clone(), next.clone());
        tasks.spawn(async move {
            let mut mine = Vec::new();
            let mut failed = 0usize;
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= credentials.len() || Instant::now() >= deadline {
                    break;
                }
                match tokio::time::timeout(PER_REQUEST_TIMEOUT, open_one(addr, &credentials[i]))
                    .await
                {
                    Ok(Ok(stream)) => mine.push(stream),
                    Ok(Err(e)) => {
                        failed += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                    Err(_) => {
                        failed += 1;
                        first_error.get_or_insert_with(|| "timed out".to_string());
                    }
                }
            }
            (mine, failed, first_error)
        });
    }
    let mut opened = Opened {
        streams: Vec::with_capacity(credentials.len()),
        failed: 0,
        first_error: None,
        wall: Duration::ZERO,
    };
    while let Some(done) = tasks.join_next().await {
        if let Ok((mine, failed, first_error)) = done {
            opened.streams.extend(mine);
            opened.failed += failed;
            if opened.first_error.is_none() {
                opened.first_error = first_error;
            }
        }
    }
    opened.wall = started.elapsed();
    opened
}

/// `GET /v1/events` as an EventSource sends it; returns the connection once the relay answered
/// 200 with its headers. Nothing is read after that: the stream stays idle.
async fn open_one(addr: SocketAddr, credential: &str) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET /v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {credential}\r\n\
         Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the relay closed the connection");
        head.extend_from_slice(&chunk[..n]);
        anyhow::ensure!(head.len() <= 16 * 1024, "response headers too long");
    }
    let status_line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(
        status_line.starts_with("HTTP/1.1 200"),
        "the relay answered {status_line}"
    );
    Ok(stream)
}
