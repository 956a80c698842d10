//! Helpers for suites that run the project's real binaries as separate processes, the way a
//! person or the desktop would: a simulator on a loopback port, the `vitaltrends` CLI against a
//! temporary data directory.
//!
//! The binaries are the ones `cargo build --workspace --bins` put next to this test's own
//! executable; the README's test command builds them first.

pub mod desktop;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A binary of this workspace, from the same target directory as the running test.
/// The Python interpreter of the suites' virtual environment (`target/python`, made by
/// scripts/setup.sh with the packages in scripts/python-requirements.txt).
pub fn python() -> PathBuf {
    let path = binary("vitaltrends")
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join("python/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh (the README's test command does)",
        path.display()
    );
    path
}

/// Reads an SQLite file with Python's own `sqlite3` (an independent reader): runs `script`
/// with the file as `sys.argv[1]` and returns the JSON it prints, or the error it wrote (a file
/// being replaced, say).
pub fn python_reads(script: &str, db: &Path) -> Result<serde_json::Value, String> {
    let out = std::process::Command::new(python())
        .args(["-c", script])
        .arg(db)
        .output()
        .map_err(|e| format!("python: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("python printed no JSON: {e}"))
}

/// Runs one of the suites' Python scripts (`tests/e2e/python/<name>`) with `job` as JSON on its
/// stdin, and returns the JSON it prints; fails the test with its stderr if it fails or outlives
/// `limit`.
pub async fn python_script(
    name: &str,
    job: &serde_json::Value,
    limit: Duration,
) -> serde_json::Value {
    use tokio::io::AsyncWriteExt;
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name);
    let mut child = tokio::process::Command::new(python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", script.display()));
    let mut stdin = child.stdin.take().expect("the script's stdin");
    stdin.write_all(job.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{name} did not finish within {limit:?}"))
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} failed:\n{stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{name} printed no JSON ({e}):\n{stderr}"))
}

pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (the README's test command does)",
        path.display()
    );
    path
}

/// A running `whoop-sim` process, killed on drop.
pub struct SimProcess {
    child: Child,
    pub base_url: String,
    pub ready: serde_json::Value,
}

impl SimProcess {
    /// Starts `whoop-sim --port 0 <args>` and waits for its ready line.
    pub async fn start(args: &[&str]) -> SimProcess {
        Self::start_with_env(args, &[]).await
    }

    /// Like `start`, with extra environment variables (e.g. `SSL_CERT_FILE`, so its webhooks
    /// trust a relay behind a private CA).
    pub async fn start_with_env(args: &[&str], envs: &[(&str, &str)]) -> SimProcess {
        let mut child = Command::new(binary("whoop-sim"))
            .args(["--port", "0"])
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start whoop-sim");
        let stdout = child.stdout.take().expect("sim stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("whoop-sim ready within 30 s")
            .expect("read whoop-sim stdout")
            .expect("whoop-sim printed a ready line");
        let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
        let base_url = ready["base_url"]
            .as_str()
            .expect("ready line has base_url")
            .to_string();
        // Keep draining stdout so the simulator never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        SimProcess {
            child,
            base_url,
            ready,
        }
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let url = format!("{}{}", self.base_url, path);
        reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let url = format!("{}{}", self.base_url, path);
        let response = reqwest::Client::new()
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert!(
            response.status().is_success(),
            "POST {url}: {}",
            response.status()
        );
        response.json().await.unwrap_or(serde_json::Value::Null)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The `vitaltrends` CLI pointed at a simulator and a private data directory.
pub struct Cli {
    pub data_dir: tempfile::TempDir,
    base_url: String,
    client_id: String,
    /// When set, tokens go through this relay's broker and events come from its stream.
    pub relay_url: Option<String>,
    /// More environment for every command (e.g. `SSL_CERT_FILE`).
    pub extra_env: Vec<(String, String)>,
}

pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Cli {
    pub fn new(sim: &SimProcess) -> Cli {
        Cli {
            data_dir: tempfile::tempdir().expect("temp data dir"),
            base_url: sim.base_url.clone(),
            client_id: sim.ready["client_id"]
                .as_str()
                .unwrap_or("vitaltrends-demo")
                .to_string(),
            relay_url: None,
            extra_env: Vec::new(),
        }
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(binary("vitaltrends"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("VITALTRENDS_DATA_DIR", self.data_dir.path())
            .env("VITALTRENDS_WHOOP_BASE_URL", &self.base_url)
            .env("VITALTRENDS_WHOOP_CLIENT_ID", &self.client_id)
            .env("VITALTRENDS_WHOOP_CLIENT_SECRET", "demo-secret")
            .env("VITALTRENDS_SECRET_STORE", "insecure-file")
            .env(
                "VITALTRENDS_CONFIG_DIR",
                self.data_dir.path().join("config"),
            )
            // Any free port: the simulator accepts any loopback redirect unless told otherwise.
            .env("VITALTRENDS_LOOPBACK_PORT", "0")
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .kill_on_drop(true);
        if let Some(relay) = &self.relay_url {
            // With a relay the app holds no client secret: the broker adds it.
            command
                .env_remove("VITALTRENDS_WHOOP_CLIENT_SECRET")
                .env("VITALTRENDS_RELAY_URL", relay);
        }
        command
    }

    /// Runs a command to completion (bounded by `limit`).
    pub async fn run(&self, args: &[&str], limit: Duration) -> Output {
        let child = self
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vitaltrends");
        let output = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("vitaltrends {args:?} did not finish within {limit:?}"))
            .expect("vitaltrends output");
        Output {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Everything the local store holds, through `export --format json`.
    pub async fn export_json(&self) -> serde_json::Value {
        let path = self.data_dir.path().join("export.json");
        let out = self
            .run(
                &[
                    "export",
                    "--format",
                    "json",
                    "--out",
                    path.to_str().unwrap(),
                ],
                Duration::from_secs(60),
            )
            .await;
        assert!(out.status.success(), "export: {}", out.stderr);
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }

    /// `connect --no-browser`, following the printed URL the way a browser would (the simulator
    /// auto-approves and redirects to the CLI's loopback listener).
    pub async fn connect(&self) -> Output {
        let mut child = self
            .command()
            .args(["connect", "--no-browser"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vitaltrends connect");
        let stdout = child.stdout.take().expect("connect stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut printed = String::new();
        let url = loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("connect prints the URL within 30 s")
                .expect("read connect stdout")
                .expect("connect printed an authorization URL");
            printed.push_str(&line);
            printed.push('\n');
            if line.starts_with("http://") || line.starts_with("https://") {
                break line;
            }
        };
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .expect("browser client");
        let landing = browser
            .get(&url)
            .send()
            .await
            .expect("follow authorization URL");
        assert!(
            landing.status().is_success(),
            "callback page: {}",
            landing.status()
        );
        while let Ok(Some(line)) = lines.next_line().await {
            printed.push_str(&line);
            printed.push('\n');
        }
        let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("connect finishes after the callback")
            .expect("connect output");
        Output {
            status: output.status,
            stdout: printed,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A running `vitaltrends-relay` process on a SQLite file, killed on drop.
pub struct RelayProcess {
    child: Child,
    pub base_url: String,
}

impl RelayProcess {
    pub async fn start(sim: &SimProcess, database: &Path) -> RelayProcess {
        Self::start_on(sim, database, "127.0.0.1:0").await
    }

    /// Starts the relay on `listen` (a fixed port lets a test restart it where the app expects
    /// it).
    pub async fn start_on(sim: &SimProcess, database: &Path, listen: &str) -> RelayProcess {
        Self::start_with(sim, database, listen, &[]).await
    }

    /// Like `start_on`, with more flags (`--trusted-proxy`, rate limits, the subscription
    /// gate's). Without `--licence-key-file` among them the gate is off, as a self-hosted relay
    /// runs it.
    pub async fn start_with(
        sim: &SimProcess,
        database: &Path,
        listen: &str,
        args: &[&str],
    ) -> RelayProcess {
        let gate_off: &[&str] = if args.contains(&"--licence-key-file") {
            &[]
        } else {
            &["--no-subscription-gate"]
        };
        let mut child = Command::new(binary("vitaltrends-relay"))
            .args(gate_off)
            .args(["--listen", listen, "--database-url"])
            .arg(format!("sqlite://{}", database.display()))
            .args(args)
            .env("VITALTRENDS_WHOOP_BASE_URL", &sim.base_url)
            .env("VITALTRENDS_WHOOP_CLIENT_ID", "vitaltrends-demo")
            .env("VITALTRENDS_WHOOP_CLIENT_SECRET", "demo-secret")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start vitaltrends-relay");
        let stdout = child.stdout.take().expect("relay stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("relay ready within 30 s")
            .expect("read relay stdout")
            .expect("relay printed a ready line");
        let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        RelayProcess {
            child,
            base_url: ready["base_url"].as_str().expect("base_url").to_string(),
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The records of an export or a simulator dump as comparable strings, leaving out the open
/// cycle (WHOOP sends no event for it and re-scores it as the day goes on).
pub fn closed_records(v: &serde_json::Value) -> Vec<String> {
    let mut all = Vec::new();
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        for r in v[collection].as_array().unwrap() {
            if collection == "cycle" && r.get("end").is_none() {
                continue;
            }
            all.push(format!("{collection}:{r}"));
        }
    }
    all.sort();
    all
}

/// A port that was free a moment ago on 127.0.0.1 (for a process that must be told its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Points the simulator's signed webhooks at the relay, as a WHOOP app's dashboard setting does.
pub async fn send_webhooks_to(sim: &SimProcess, relay: &RelayProcess) {
    sim.post_json(
        "/_sim/webhook-url",
        serde_json::json!({"url": format!("{}/webhooks/whoop", relay.base_url)}),
    )
    .await;
}
