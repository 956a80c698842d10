//! `vitaltrends-relay`: the relay as a process. Settings come from flags (or their environment
//! variables); the WHOOP app's secret only ever from the environment or a file, never a flag,
//! so it does not show up in `ps` or shell history. Prints one JSON line when ready; logs go to
//! stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use relay::{MetricsAccess, RelayConfig, SubscriptionGate, WHOOP_PRODUCTION};
use url::Url;

#[derive(Debug, Parser)]
#[command(
    name = "vitaltrends-relay",
    version,
    about = "VitalTrends relay: WHOOP webhooks in, device event streams out, token broker",
    after_help = "The WHOOP app comes from the environment: VITALTRENDS_WHOOP_BASE_URL (default \
                  https://api.prod.whoop.com), VITALTRENDS_WHOOP_CLIENT_ID, \
                  VITALTRENDS_WHOOP_CLIENT_SECRET or VITALTRENDS_WHOOP_CLIENT_SECRET_FILE, and \
                  during a secret rotation VITALTRENDS_WHOOP_CLIENT_SECRET_PREVIOUS (or \
                  _PREVIOUS_FILE). /metrics is served only with --metrics-token-file or \
                  --metrics-listen. \
                  RUST_LOG sets the log filter (default info). The subscription gate is on \
                  unless --no-subscription-gate: serving needs --licence-key-file then.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Without a subcommand the relay serves.
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on (port 0 picks a free one).
    #[arg(
        long,
        env = "VITALTRENDS_RELAY_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,
    /// sqlite://PATH (created if missing) or postgres://USER:PASSWORD@HOST/DB.
    #[arg(
        long,
        env = "VITALTRENDS_RELAY_DATABASE_URL",
        default_value = "sqlite://relay.db",
        hide_env_values = true
    )]
    database_url: String,
    /// How far a webhook's timestamp may be from now, in seconds.
    #[arg(long, default_value_t = 65 * 60)]
    webhook_window_secs: u64,
    /// How long events and idle devices are kept, in hours.
    #[arg(long, default_value_t = 7 * 24)]
    retention_hours: u64,
    /// Seconds between heartbeat comments on idle event streams.
    #[arg(long, default_value_t = 15)]
    heartbeat_secs: u64,
    /// Milliseconds between the node's backstop reads of the log's tail, which wake the streams
    /// of users whose log grew without a wake-up (a last resort: intake and NOTIFY wake a
    /// user's streams at once). One query per period for the node, not one per open stream.
    #[arg(long, default_value_t = 15_000)]
    poll_backstop_ms: u64,
    /// Webhook and token-broker requests per client IP per minute.
    #[arg(long, default_value_t = 600)]
    per_ip_per_minute: u32,
    /// Webhook and token-broker requests per second overall.
    #[arg(long, default_value_t = 200)]
    global_per_second: u32,
    /// A reverse proxy (address or CIDR range) whose X-Forwarded-For is believed for rate limits
    /// and logs; repeatable. Without one the TCP peer is the client.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "VITALTRENDS_RELAY_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,
    /// Seconds a connection gets to send a request's headers (also idle between requests).
    #[arg(long, default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a request body gets to arrive.
    #[arg(long, default_value_t = 10)]
    body_timeout_secs: u64,
    /// Open connections at most (default: the open-file limit minus 128).
    #[arg(long, env = "VITALTRENDS_RELAY_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Event streams and long polls one device may have open at once.
    #[arg(long, default_value_t = 4)]
    max_streams_per_device: usize,
    /// Failed device authentications per client IP per minute before 429s.
    #[arg(long, default_value_t = 30)]
    auth_failures_per_minute: u32,
    /// Serve /metrics (and /healthz) on this separate address, without a token; e.g.
    /// 127.0.0.1:9464 for a scraper on the same host.
    #[arg(long, env = "VITALTRENDS_RELAY_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Serve /metrics on the main listener to requests bearing the token in this file
    /// (`Authorization: Bearer …`). Without this or --metrics-listen, /metrics is not served.
    #[arg(long, env = "VITALTRENDS_RELAY_METRICS_TOKEN_FILE")]
    metrics_token_file: Option<PathBuf>,
    /// The licence key file: the public key (`licence keygen` prints it; enough to verify) or
    /// the signing key itself. Needed unless --no-subscription-gate.
    #[arg(long, env = "VITALTRENDS_RELAY_LICENCE_KEY_FILE")]
    licence_key_file: Option<PathBuf>,
    /// Let every device sign in without a licence: for a relay run with your own WHOOP app.
    #[arg(
        long,
        env = "VITALTRENDS_RELAY_NO_SUBSCRIPTION_GATE",
        conflicts_with = "licence_key_file"
    )]
    no_subscription_gate: bool,
    /// Days refreshes and event streams keep working after a licence ends.
    #[arg(long, default_value_t = 14)]
    licence_grace_days: u64,
    /// The grace period in seconds instead of days (for tests).
    #[arg(long, hide = true, conflicts_with = "licence_grace_days")]
    licence_grace_secs: Option<u64>,
    /// The secret `POST /billing/webhook` signatures are checked with (one line); without it
    /// that route answers 404.
    #[arg(long, env = "VITALTRENDS_RELAY_BILLING_WEBHOOK_SECRET_FILE")]
    billing_webhook_secret_file: Option<PathBuf>,
    /// WHOOP's requests per minute for your developer app (every desktop together; WHOOP's
    /// default is 100). Given this or --whoop-rate-day, the quota coordinator hands the app's
    /// limits out by priority: live events, each person's last 30 days, six months, older
    /// history; 20 % stays reserved for live events. Without either, desktops pace themselves.
    #[arg(long, env = "VITALTRENDS_RELAY_WHOOP_RATE_MINUTE")]
    whoop_rate_minute: Option<u32>,
    /// WHOOP's requests per day for your developer app (WHOOP's default is 10,000); older
    /// history leaves 30 % of the day to recent data and live events.
    #[arg(long, env = "VITALTRENDS_RELAY_WHOOP_RATE_DAY")]
    whoop_rate_day: Option<u32>,
    /// Do not coordinate WHOOP's quota (desktops pace themselves by WHOOP's headers alone).
    #[arg(long, env = "VITALTRENDS_RELAY_NO_QUOTA")]
    no_quota: bool,
    /// WHOOP's minute and day last this many times shorter, for benchmarks against a simulator
    /// started with `--rate-window-scale` set to the same factor.
    #[arg(long, hide = true, default_value_t = 1.0)]
    whoop_time_scale: f64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Licences: the signing key, issuing, extending, revoking, listing.
    #[command(subcommand)]
    Licence(LicenceCommand),
}

#[derive(Debug, Subcommand)]
enum LicenceCommand {
    /// Writes a new signing key to FILE (mode 0600, never overwritten) and prints its public key.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Issues a licence, records it in the database and prints the key (alone) on stdout.
    Issue {
        #[arg(long, env = "VITALTRENDS_RELAY_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// The signing key file `licence keygen` wrote.
        #[arg(long)]
        licence_key_file: PathBuf,
        /// Days from now the licence runs.
        #[arg(long)]
        days: u32,
        #[arg(long, default_value = "personal")]
        plan: String,
        /// How many devices may be signed in with it at once.
        #[arg(long, default_value_t = 3)]
        devices: u32,
    },
    /// Adds days to a licence (from its end, or from now if it has ended) and reactivates it.
    Extend {
        #[arg(long, env = "VITALTRENDS_RELAY_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// The licence id (lic_…) or key.
        licence: String,
        #[arg(long)]
        days: u32,
    },
    /// Ends a licence now; its devices keep refreshing through the grace period, then stop.
    Revoke {
        #[arg(long, env = "VITALTRENDS_RELAY_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// The licence id (lic_…) or key.
        licence: String,
    },
    /// Lists licences: id, plan, status, active until, devices in use / allowed.
    List {
        #[arg(long, env = "VITALTRENDS_RELAY_DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
}

fn key_file(path: &std::path::Path) -> Result<licence::KeyFile, String> {
    licence::KeyFile::parse(&read_secret_file("licence key file", path)?)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn subscription_gate(cli: &Cli) -> Result<Option<SubscriptionGate>, String> {
    if cli.no_subscription_gate {
        return Ok(None);
    }
    let Some(path) = &cli.licence_key_file else {
        return Err(
            "the subscription gate needs --licence-key-file (the public key `licence \
                    keygen` printed); a relay for your own WHOOP app can run with \
                    --no-subscription-gate"
                .into(),
        );
    };
    let grace = match cli.licence_grace_secs {
        Some(secs) => Duration::from_secs(secs),
        None => Duration::from_secs(cli.licence_grace_days.saturating_mul(24 * 3600)),
    };
    Ok(Some(SubscriptionGate {
        public_key: key_file(path)?.public_key(),
        grace,
    }))
}

fn print_licence(l: &relay::licence_admin::Licence) {
    println!(
        "{}\t{}\t{}\tuntil {}\tdevices {}/{}",
        l.id,
        l.plan,
        l.status,
        l.active_until
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        l.devices,
        l.max_devices
    );
}

fn write_new_private_file(path: &PathBuf, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

async fn licence_command(cmd: LicenceCommand) -> Result<(), String> {
    use relay::licence_admin as admin;
    match cmd {
        LicenceCommand::Keygen { out } => {
            let key = licence::SigningKey::generate();
            write_new_private_file(&out, &format!("{}\n", key.to_text()))
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            eprintln!(
                "signing key written to {}; give the relay the public key below (or this file)",
                out.display()
            );
            println!("{}", key.public_key().to_text());
        }
        LicenceCommand::Issue {
            database_url,
            licence_key_file,
            days,
            plan,
            devices,
        } => {
            let file = key_file(&licence_key_file)?;
            let signing = file
                .signing_key()
                .ok_or("issuing needs the signing key file, not the public key".to_string())?;
            let key = admin::issue(&database_url, signing, &plan, days, devices)
                .await
                .map_err(|e| e.to_string())?;
            println!("{key}");
        }
        LicenceCommand::Extend {
            database_url,
            licence,
            days,
        } => print_licence(
            &admin::extend(&database_url, &licence, days)
                .await
                .map_err(|e| e.to_string())?,
        ),
        LicenceCommand::Revoke {
            database_url,
            licence,
        } => print_licence(
            &admin::revoke(&database_url, &licence)
                .await
                .map_err(|e| e.to_string())?,
        ),
        LicenceCommand::List { database_url } => {
            for l in admin::list(&database_url)
                .await
                .map_err(|e| e.to_string())?
            {
                print_licence(&l);
            }
        }
    }
    Ok(())
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn client_secrets() -> Result<Vec<String>, String> {
    let direct = env_nonempty("VITALTRENDS_WHOOP_CLIENT_SECRET");
    let file = env_nonempty("VITALTRENDS_WHOOP_CLIENT_SECRET_FILE");
    let current = match (direct, file) {
        (Some(_), Some(_)) => {
            return Err("set VITALTRENDS_WHOOP_CLIENT_SECRET or \
                        VITALTRENDS_WHOOP_CLIENT_SECRET_FILE, not both"
                .into())
        }
        (Some(secret), None) => secret,
        (None, Some(path)) => {
            let path = PathBuf::from(path);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            text.trim().to_string()
        }
        (None, None) => {
            return Err("VITALTRENDS_WHOOP_CLIENT_SECRET (or \
                        VITALTRENDS_WHOOP_CLIENT_SECRET_FILE) is not set"
                .into())
        }
    };
    if current.is_empty() {
        return Err("the WHOOP client secret is empty".into());
    }
    let mut secrets = vec![current];
    let previous = env_nonempty("VITALTRENDS_WHOOP_CLIENT_SECRET_PREVIOUS");
    let previous_file = env_nonempty("VITALTRENDS_WHOOP_CLIENT_SECRET_PREVIOUS_FILE");
    match (previous, previous_file) {
        (Some(_), Some(_)) => {
            return Err("set VITALTRENDS_WHOOP_CLIENT_SECRET_PREVIOUS or \
                        VITALTRENDS_WHOOP_CLIENT_SECRET_PREVIOUS_FILE, not both"
                .into())
        }
        (Some(previous), None) => secrets.push(previous),
        // The rotation's old secret, as a file like the current one (a systemd credential).
        (None, Some(path)) => secrets.push(read_secret_file(
            "VITALTRENDS_WHOOP_CLIENT_SECRET_PREVIOUS_FILE",
            std::path::Path::new(&path),
        )?),
        (None, None) => {}
    }
    Ok(secrets)
}

/// A secret read from a file (systemd's LoadCredential, a mounted secret), trimmed.
fn read_secret_file(what: &str, path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{what}: cannot read {}: {e}", path.display()))?;
    let secret = text.trim().to_string();
    if secret.is_empty() {
        return Err(format!("{what}: {} is empty", path.display()));
    }
    Ok(secret)
}

fn config(cli: &Cli) -> Result<RelayConfig, String> {
    let base = env_nonempty("VITALTRENDS_WHOOP_BASE_URL").unwrap_or(WHOOP_PRODUCTION.to_string());
    let whoop_base_url =
        Url::parse(&base).map_err(|e| format!("VITALTRENDS_WHOOP_BASE_URL: {e}"))?;
    let client_id = env_nonempty("VITALTRENDS_WHOOP_CLIENT_ID")
        .ok_or("VITALTRENDS_WHOOP_CLIENT_ID is not set")?;
    Ok(RelayConfig {
        listen: cli.listen,
        database_url: cli.database_url.clone(),
        whoop_base_url,
        client_id,
        client_secrets: client_secrets()?,
        webhook_window: Duration::from_secs(cli.webhook_window_secs),
        heartbeat: Duration::from_secs(cli.heartbeat_secs),
        retention: Duration::from_secs(cli.retention_hours.saturating_mul(3600)),
        poll_backstop: Duration::from_millis(cli.poll_backstop_ms),
        per_ip_per_minute: cli.per_ip_per_minute,
        global_per_second: cli.global_per_second,
        trusted_proxies: cli
            .trusted_proxies
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| relay::parse_cidr(s).map_err(|e| format!("--trusted-proxy: {e}")))
            .collect::<Result<_, _>>()?,
        header_read_timeout: Duration::from_secs(cli.header_timeout_secs),
        body_read_timeout: Duration::from_secs(cli.body_timeout_secs),
        max_connections: cli.max_connections,
        max_streams_per_device: cli.max_streams_per_device,
        auth_failures_per_minute: cli.auth_failures_per_minute,
        // A public relay does not hand its counters to anyone who asks.
        metrics: match &cli.metrics_token_file {
            Some(path) => MetricsAccess::Token(read_secret_file("--metrics-token-file", path)?),
            None => MetricsAccess::Off,
        },
        metrics_listen: cli.metrics_listen,
        subscription_gate: subscription_gate(cli)?,
        billing_webhook_secret: match &cli.billing_webhook_secret_file {
            Some(path) => Some(read_secret_file("billing webhook secret file", path)?),
            None => None,
        },
        quota: (!cli.no_quota && (cli.whoop_rate_minute.is_some() || cli.whoop_rate_day.is_some()))
            .then(|| relay::QuotaConfig {
                per_minute: cli.whoop_rate_minute.unwrap_or(100).max(1),
                per_day: cli.whoop_rate_day.unwrap_or(10_000).max(1),
                time_scale: cli.whoop_time_scale.max(0.001),
            }),
        ..RelayConfig::default()
    })
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// jemalloc, not the system allocator: each idle event stream holds two 8 KiB buffers in hyper of
/// which it writes a few hundred bytes. glibc writes its bookkeeping at both ends of a chunk, so
/// pages of such a buffer that hold no data become resident too; jemalloc keeps its metadata
/// apart from the memory it hands out. 10,000 idle streams: 149 MB with glibc, 116 MB with jemalloc
/// (`vitaltrends-bench relay --only streams`, docs/NOTES.md).
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut cli = Cli::parse();
    if let Some(Command::Licence(cmd)) = cli.command.take() {
        return match licence_command(cmd).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(msg) => {
                eprintln!("vitaltrends-relay: {msg}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match config(&cli) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("vitaltrends-relay: {msg}");
            return ExitCode::from(2);
        }
    };
    let relay = match relay::start(config).await {
        Ok(r) => r,
        Err(err) => {
            eprintln!("vitaltrends-relay: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut ready = serde_json::json!({"base_url": relay.base_url, "database": relay.database});
    if let Some(url) = &relay.metrics_url {
        ready["metrics_url"] = serde_json::json!(url);
    }
    println!("{ready}");
    stop_signal().await;
    tracing::info!("stopping");
    relay.shutdown().await;
    ExitCode::SUCCESS
}
