//! The relay as a child process, so its memory can be read from `/proc/<pid>/status` without the
//! benchmark's own clients in the figure. The `vitaltrends-relay` binary is used when it was
//! built; otherwise this binary's hidden `serve-relay` subcommand runs the relay library with the
//! same flags and environment variables (the binary is a thin wrapper around the same
//! `relay::start`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args as ClapArgs;
use relay::{RelayConfig, WHOOP_PRODUCTION};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use url::Url;

/// Environment the relay binary reads; cleared so the caller's shell cannot leak in.
const RELAY_ENV: [&str; 13] = [
    "VITALTRENDS_RELAY_LISTEN",
    "VITALTRENDS_RELAY_TRUSTED_PROXIES",
    "VITALTRENDS_RELAY_MAX_CONNECTIONS",
    "VITALTRENDS_RELAY_METRICS_LISTEN",
    "VITALTRENDS_RELAY_METRICS_TOKEN_FILE",
    "VITALTRENDS_WHOOP_CLIENT_SECRET_PREVIOUS_FILE",
    "VITALTRENDS_RELAY_DATABASE_URL",
    "VITALTRENDS_WHOOP_BASE_URL",
    "VITALTRENDS_WHOOP_CLIENT_ID",
    "VITALTRENDS_WHOOP_CLIENT_SECRET",
    "VITALTRENDS_WHOOP_CLIENT_SECRET_FILE",
    "VITALTRENDS_WHOOP_CLIENT_SECRET_PREVIOUS",
    "RUST_LOG",
];
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of the child's stderr is kept for error messages.
const STDERR_TAIL: usize = 8 * 1024;

/// `serve-relay`: the subset of `vitaltrends-relay`'s flags the benchmark passes.
#[derive(ClapArgs)]
pub struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value_t = 600)]
    per_ip_per_minute: u32,
    #[arg(long, default_value_t = 200)]
    global_per_second: u32,
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Runs the relay until SIGTERM or Ctrl-C, after printing the same ready line as the binary.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let base = env_nonempty("VITALTRENDS_WHOOP_BASE_URL").unwrap_or(WHOOP_PRODUCTION.to_string());
    let relay = relay::start(RelayConfig {
        listen: args.listen,
        database_url: args.database_url,
        whoop_base_url: Url::parse(&base)?,
        client_id: env_nonempty("VITALTRENDS_WHOOP_CLIENT_ID")
            .context("VITALTRENDS_WHOOP_CLIENT_ID is not set")?,
        client_secrets: vec![env_nonempty("VITALTRENDS_WHOOP_CLIENT_SECRET")
            .context("VITALTRENDS_WHOOP_CLIENT_SECRET is not set")?],
        per_ip_per_minute: args.per_ip_per_minute,
        global_per_second: args.global_per_second,
        // As the binary: /metrics only where --metrics-listen puts it.
        metrics: relay::MetricsAccess::Off,
        metrics_listen: args.metrics_listen,
        ..RelayConfig::default()
    })
    .await?;
    println!(
        "{}",
        serde_json::json!({
            "base_url": relay.base_url,
            "database": relay.database,
            "metrics_url": relay.metrics_url,
        })
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    relay.shutdown().await;
    Ok(())
}

/// Which program runs the relay child, and how it is described in the output.
pub struct RelayProgram {
    program: PathBuf,
    prefix: Vec<String>,
    pub description: String,
}

impl RelayProgram {
    /// `--relay-bin`, else `vitaltrends-relay` next to this binary, else this binary itself.
    pub fn locate(explicit: Option<&Path>) -> anyhow::Result<RelayProgram> {
        if let Some(path) = explicit {
            anyhow::ensure!(
                path.is_file(),
                "--relay-bin {}: no such file",
                path.display()
            );
            return Ok(RelayProgram {
                program: path.to_path_buf(),
                prefix: Vec::new(),
                description: format!("{} (--relay-bin)", path.display()),
            });
        }
        let me = std::env::current_exe().context("locating this binary")?;
        if let Some(sibling) = me.parent().map(|d| d.join("vitaltrends-relay")) {
            if sibling.is_file() {
                return Ok(RelayProgram {
                    description: sibling.display().to_string(),
                    program: sibling,
                    prefix: Vec::new(),
                });
            }
        }
        Ok(RelayProgram {
            description: format!(
                "{} serve-relay (vitaltrends-relay is not built; this runs the same \
                 relay::start with the same flags)",
                me.display()
            ),
            program: me,
            prefix: vec!["serve-relay".into()],
        })
    }
}

pub struct RelayChild {
    child: Child,
    pub pid: u32,
    pub base_url: String,
    /// Where `/metrics` is served (`--metrics-listen` on loopback).
    pub metrics_url: String,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    stderr_lines: Arc<AtomicUsize>,
}

impl RelayChild {
    /// Starts the relay on loopback with `database_url`, WHOOP at `whoop_base_url`, and the
    /// given rate limits; returns once it printed its ready line.
    pub async fn spawn(
        program: &RelayProgram,
        database_url: &str,
        whoop_base_url: &str,
        client_id: &str,
        client_secret: &str,
        rate_limit: u32,
    ) -> anyhow::Result<RelayChild> {
        let mut cmd = Command::new(&program.program);
        for name in RELAY_ENV {
            cmd.env_remove(name);
        }
        let limit = rate_limit.to_string();
        cmd.args(&program.prefix)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                database_url,
                "--per-ip-per-minute",
                &limit,
                "--global-per-second",
                &limit,
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .env("VITALTRENDS_WHOOP_BASE_URL", whoop_base_url)
            .env("VITALTRENDS_WHOOP_CLIENT_ID", client_id)
            .env("VITALTRENDS_WHOOP_CLIENT_SECRET", client_secret)
            // The benchmark measures the relay, not licences (the bench's own serve-relay
            // has no gate and ignores this).
            .env("VITALTRENDS_RELAY_NO_SUBSCRIPTION_GATE", "true")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", program.program.display()))?;
        let pid = child.id().context("the relay child has no pid")?;

        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_lines = Arc::new(AtomicUsize::new(0));
        if let Some(mut pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            let count = Arc::clone(&stderr_lines);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let newlines = buf[..n].iter().filter(|b| **b == b'\n').count();
                    count.fetch_add(newlines, Ordering::Relaxed);
                    let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if s.len() > 2 * STDERR_TAIL {
                        let mut cut = s.len() - STDERR_TAIL;
                        while !s.is_char_boundary(cut) {
                            cut += 1;
                        }
                        s.drain(..cut);
                    }
                }
            });
        }
        let stdout = child
            .stdout
            .take()
            .context("the relay child has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = match tokio::time::timeout(READY_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            _ => {
                let _ = child.kill().await;
                let tail = stderr.lock().unwrap_or_else(|p| p.into_inner()).clone();
                anyhow::bail!("the relay child printed no ready line; stderr:\n{tail}");
            }
        };
        // Anything else it prints is drained so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let ready: serde_json::Value =
            serde_json::from_str(&line).context("the relay child's ready line is not JSON")?;
        let base_url = ready["base_url"]
            .as_str()
            .context("the ready line has no base_url")?
            .to_string();
        let addr: SocketAddr = base_url
            .trim_start_matches("http://")
            .parse()
            .context("the relay child's base_url is not host:port")?;
        let metrics_url = ready["metrics_url"]
            .as_str()
            .context("the ready line has no metrics_url")?
            .to_string();
        Ok(RelayChild {
            child,
            pid,
            base_url,
            metrics_url,
            addr,
            stderr,
            stderr_lines,
        })
    }

    /// How many lines the child has logged, and the last one.
    pub fn log_summary(&self) -> (usize, Option<String>) {
        let last = self
            .stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lines()
            .last()
            .map(str::to_string);
        (self.stderr_lines.load(Ordering::Relaxed), last)
    }

    /// A line of `/proc/<pid>/status` in KiB (VmRSS, VmHWM).
    pub fn status_kib(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no {field} in /proc/{}/status", self.pid))
    }

    /// User plus system CPU time so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields
            .get(11..13)
            .context("short /proc/<pid>/stat")?
            .iter()
            .filter_map(|f| f.parse::<u64>().ok())
            .sum();
        // SAFETY: sysconf only reads a configuration value.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Ok(Duration::from_secs_f64(ticks as f64 / per_second as f64))
    }

    /// The child's `Max open files` soft limit from `/proc/<pid>/limits`.
    pub fn open_files_limit(&self) -> Option<u64> {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.pid)).ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }

    /// SIGTERM to this child's pid, then SIGKILL to it if it has not exited in time.
    pub async fn stop(mut self) {
        if let Ok(pid) = i32::try_from(self.pid) {
            // SAFETY: a signal to the pid of a child this process started and has not reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
