//! The `vitaltrends-relay` binary as an operator runs it: configuration from flags and the
//! environment, the ready line, a clean stop on SIGTERM, and logs that never carry a token,
//! secret, signature or webhook body. Also two relay processes on one PostgreSQL database, where
//! an event taken in by one reaches a stream on the other through NOTIFY.

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use whoop_sim::SimHandle;

const BINARY: &str = env!("CARGO_BIN_EXE_vitaltrends-relay");

/// Environment the relay reads; cleared so the caller's shell cannot leak into a test.
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

struct RelayProcess {
    child: Child,
    base_url: String,
    metrics_url: Option<String>,
    database: String,
    stderr: Arc<Mutex<String>>,
    stderr_done: tokio::task::JoinHandle<()>,
}

fn command(envs: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(BINARY);
    for name in RELAY_ENV {
        cmd.env_remove(name);
    }
    // These tests are about serving, not licences: the gate (on by default) is turned off
    // unless the test configures it.
    if !args.contains(&"--licence-key-file") {
        cmd.env("VITALTRENDS_RELAY_NO_SUBSCRIPTION_GATE", "true");
    }
    cmd.args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn spawn_relay(envs: &[(&str, &str)], args: &[&str]) -> RelayProcess {
    let mut child = command(envs, args).spawn().expect("start the relay binary");
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err_pipe = child.stderr.take().expect("stderr");
    let sink = Arc::clone(&stderr);
    let stderr_done = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err_pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_str(&text);
        }
    });
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no ready line; stderr: {}",
                stderr.lock().unwrap_or_else(|p| p.into_inner())
            )
        })
        .expect("read stdout")
        .unwrap_or_else(|| {
            panic!(
                "relay exited; stderr: {}",
                stderr.lock().unwrap_or_else(|p| p.into_inner())
            )
        });
    let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
    let obj = ready.as_object().expect("object");
    assert!(
        obj.keys()
            .all(|k| ["base_url", "database", "metrics_url"].contains(&k.as_str())),
        "{line}"
    );
    RelayProcess {
        metrics_url: ready["metrics_url"].as_str().map(str::to_string),
        child,
        base_url: ready["base_url"].as_str().expect("base_url").to_string(),
        database: ready["database"].as_str().expect("database").to_string(),
        stderr,
        stderr_done,
    }
}

impl RelayProcess {
    /// SIGTERM, then the exit status and everything it logged.
    async fn stop(mut self) -> (bool, String) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the relay stops within 10 s of SIGTERM")
            .expect("exit status");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.stderr_done).await;
        let log = self
            .stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (exit.success(), log)
    }
}

fn sim_env<'a>(sim: &'a SimHandle, secret_file: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("VITALTRENDS_WHOOP_BASE_URL", sim.base_url.as_str()),
        ("VITALTRENDS_WHOOP_CLIENT_ID", sim.client_id.as_str()),
        ("VITALTRENDS_WHOOP_CLIENT_SECRET_FILE", secret_file),
    ]
}

on_both_backends!(full_run_logs_no_secrets);

/// A full exchange, refresh, webhooks (genuine and forged), stream, ack, long poll, callback and
/// disconnect, with every log level on; then nothing secret may appear in the relay's stderr.
async fn full_run_logs_no_secrets(db: &Db) {
    let sim = sim(41, SECRET).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write secret file");
    let secret_file = secret_file.display().to_string();
    let mut envs = sim_env(&sim, &secret_file);
    envs.push(("VITALTRENDS_WHOOP_CLIENT_SECRET_PREVIOUS", OLD_SECRET));
    envs.push(("RUST_LOG", "trace"));
    let relay = spawn_relay(
        &envs,
        &[
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db.url,
            "--heartbeat-secs",
            "1",
            "--webhook-window-secs",
            "600",
            "--retention-hours",
            "1",
        ],
    )
    .await;
    assert_eq!(relay.database, db.kind);
    assert!(relay.base_url.starts_with("http://127.0.0.1:"));
    let base = relay.base_url.clone();
    point_sim_at(&sim, &base).await;

    let mut secrets: Vec<(String, String)> = vec![
        ("client secret".into(), SECRET.into()),
        ("previous client secret".into(), OLD_SECRET.into()),
    ];
    let (code, verifier) = authorize(&sim).await;
    secrets.push(("authorization code".into(), code.clone()));
    secrets.push(("PKCE verifier".into(), verifier.clone()));
    let (status, json, _) = exchange(&base, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let access = json["access_token"].as_str().expect("access").to_string();
    let refresh = json["refresh_token"].as_str().expect("refresh").to_string();
    let credential = json["device_credential"]
        .as_str()
        .expect("credential")
        .to_string();
    secrets.push(("access token".into(), access));
    secrets.push(("refresh token".into(), refresh.clone()));
    secrets.push(("device credential".into(), credential.clone()));
    {
        use sha2::Digest;
        let hash = format!("{:x}", sha2::Sha256::digest(credential.as_bytes()));
        secrets.push(("credential hash".into(), hash));
    }
    let resp = http()
        .post(format!("{base}/oauth/whoop/refresh"))
        .bearer_auth(&credential)
        .form(&[("refresh_token", refresh.as_str())])
        .send()
        .await
        .expect("refresh");
    assert_eq!(resp.status(), StatusCode::OK);
    let refreshed: serde_json::Value = resp.json().await.expect("JSON");
    for key in ["access_token", "refresh_token"] {
        secrets.push((
            format!("refreshed {key}"),
            refreshed[key].as_str().expect(key).to_string(),
        ));
    }

    let mut stream = Sse::open(&base, &credential, None).await;
    // Genuine webhooks from WHOOP, one signed by hand (so its signature is known), one forged.
    let object = uuid();
    let trace = fire(&sim, "sleep.updated", &object).await;
    secrets.push(("webhook trace id".into(), trace));
    secrets.push(("webhook object id".into(), object));
    let (hand_trace, hand_object) = (uuid(), uuid());
    let body = webhook_body(sim.user_id, "workout.updated", &hand_object, &hand_trace);
    let ts = now_ms().to_string();
    let signature = whoop::webhook::sign(SECRET.as_bytes(), &ts, body.as_bytes());
    let (status, _) = post_webhook(&base, body.clone(), Some(&ts), Some(&signature)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    secrets.push(("webhook body".into(), body));
    secrets.push(("webhook signature".into(), signature));
    secrets.push(("hand webhook trace id".into(), hand_trace));
    secrets.push(("hand webhook object id".into(), hand_object));
    let forged_body = webhook_body(sim.user_id, "sleep.deleted", &uuid(), &uuid());
    let forged_sig = whoop::webhook::sign(b"attacker", &ts, forged_body.as_bytes());
    let (status, _) = post_webhook(&base, forged_body.clone(), Some(&ts), Some(&forged_sig)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    secrets.push(("forged body".into(), forged_body));
    secrets.push(("forged signature".into(), forged_sig));

    let events = stream.whoop_events(2, Duration::from_secs(5)).await;
    assert_eq!(
        ack(&base, &credential, events[1].cursor()).await,
        StatusCode::NO_CONTENT
    );
    let (status, polled) = poll(&base, &credential, Some(events[0].cursor()), 0).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(polled["events"].as_array().map(Vec::len), Some(1));
    // Let at least one heartbeat pass, then the landing page with a code in its query.
    assert!(stream.next(Duration::from_millis(1500)).await.is_none());
    drop(stream);
    let landing_code = "landing-code-6c1f0e2d9a";
    secrets.push(("landing page code".into(), landing_code.into()));
    let (status, _) = get_with(
        &base,
        &format!("/oauth/whoop/callback?code={landing_code}&state=abcdefgh"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let resp = http()
        .delete(format!("{base}/v1/devices/self"))
        .bearer_auth(&credential)
        .send()
        .await
        .expect("disconnect");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    let (clean_exit, log) = relay.stop().await;
    assert!(clean_exit, "exit status after SIGTERM; log:\n{log}");
    // For reviewing what the relay logs at every level: RELAY_TEST_DUMP_LOG=/some/file.
    if let Some(path) = std::env::var_os("RELAY_TEST_DUMP_LOG") {
        let _ = std::fs::write(path, &log);
    }
    // The log is not empty: the relay did log, at every level, during all of that.
    assert!(log.contains("relay listening"), "{log}");
    assert!(log.contains("event stored"), "{log}");
    assert!(log.contains("webhook rejected"), "{log}");
    assert!(log.contains("device bound"), "{log}");
    for (what, value) in &secrets {
        assert!(!value.is_empty(), "{what} is empty");
        assert!(
            !log.contains(value.as_str()),
            "the {what} appears in the relay's log"
        );
    }
    if db.kind == "postgres" {
        assert!(
            !log.contains("vitaltrends@"),
            "database password in the log"
        );
    }
}

#[tokio::test]
async fn bad_configuration_is_refused_with_a_clear_message() {
    let sim = sim(42, SECRET).await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("VITALTRENDS_WHOOP_BASE_URL", sim.base_url.as_str()),
                ("VITALTRENDS_WHOOP_CLIENT_SECRET", SECRET),
            ],
            "VITALTRENDS_WHOOP_CLIENT_ID",
        ),
        (
            vec![("VITALTRENDS_WHOOP_CLIENT_ID", sim.client_id.as_str())],
            "VITALTRENDS_WHOOP_CLIENT_SECRET",
        ),
        (
            vec![
                ("VITALTRENDS_WHOOP_CLIENT_ID", sim.client_id.as_str()),
                ("VITALTRENDS_WHOOP_CLIENT_SECRET", SECRET),
                ("VITALTRENDS_WHOOP_CLIENT_SECRET_FILE", "/nonexistent"),
            ],
            "not both",
        ),
    ];
    for (envs, expected) in cases {
        let out = command(&envs, &["--listen", "127.0.0.1:0"])
            .output()
            .await
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{expected}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains(SECRET));
        assert!(out.stdout.is_empty());
    }
    // The subscription gate fails closed: no licence key file and no --no-subscription-gate is a
    // refusal to serve, as is a key file it cannot read.
    let whoop_app = [
        ("VITALTRENDS_WHOOP_CLIENT_ID", sim.client_id.as_str()),
        ("VITALTRENDS_WHOOP_CLIENT_SECRET", SECRET),
    ];
    let mut ungated = command(&whoop_app, &["--listen", "127.0.0.1:0"]);
    ungated.env_remove("VITALTRENDS_RELAY_NO_SUBSCRIPTION_GATE");
    let unreadable = command(
        &whoop_app,
        &[
            "--listen",
            "127.0.0.1:0",
            "--licence-key-file",
            "/nonexistent/licence.key",
        ],
    );
    for (mut cmd, expected) in [
        (ungated, "--no-subscription-gate"),
        (unreadable, "licence key file: cannot read"),
    ] {
        let out = cmd.output().await.expect("run");
        assert_eq!(out.status.code(), Some(2), "{expected}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    // A database it cannot open: a failure, not a hang, and no URL echoed.
    let out = command(
        &[
            ("VITALTRENDS_WHOOP_CLIENT_ID", sim.client_id.as_str()),
            ("VITALTRENDS_WHOOP_CLIENT_SECRET", SECRET),
        ],
        &[
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "sqlite:///nonexistent-dir/for/sure/relay.db",
        ],
    )
    .output()
    .await
    .expect("run");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

/// Two relay processes on one PostgreSQL database: webhooks go to the binary, the device streams
/// from an in-process node whose poll backstop is 30 s, so only NOTIFY can deliver in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_wake_each_other_through_notify() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    bounded(two_nodes(&db)).await;
    db.cleanup().await;
}

async fn two_nodes(db: &Db) {
    let sim = sim(43, SECRET).await;
    let intake = spawn_relay(
        &[
            ("VITALTRENDS_WHOOP_BASE_URL", sim.base_url.as_str()),
            ("VITALTRENDS_WHOOP_CLIENT_ID", sim.client_id.as_str()),
            ("VITALTRENDS_WHOOP_CLIENT_SECRET", SECRET),
        ],
        &["--listen", "127.0.0.1:0", "--database-url", &db.url],
    )
    .await;
    assert_eq!(intake.database, "postgres");
    let streaming = relay(relay::RelayConfig {
        poll_backstop: Duration::from_secs(30),
        heartbeat: Duration::from_secs(30),
        ..config(db, &sim)
    })
    .await;
    point_sim_at(&sim, &intake.base_url).await;
    let device = connect(&sim, &streaming.base_url).await;
    let mut stream = Sse::open(&streaming.base_url, &device.credential, None).await;
    // Let the stream's first read and the LISTEN connection settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for kind in ["sleep.updated", "recovery.updated", "workout.updated"] {
        let sent = Instant::now();
        let trace = fire(&sim, kind, &uuid()).await;
        let ev = stream.expect(Duration::from_secs(3)).await;
        let took = sent.elapsed();
        assert_eq!(ev.json()["trace_id"], trace.as_str());
        assert!(
            took < Duration::from_secs(2),
            "{kind} took {took:?}: NOTIFY did not wake the other node"
        );
        eprintln!("{kind}: intake on one node to stream on the other in {took:?}");
    }
    let (clean_exit, log) = intake.stop().await;
    assert!(clean_exit, "{log}");
}

/// `/metrics` is not public unless asked for: absent by default, behind the token from
/// `--metrics-token-file`, or open on the `--metrics-listen` address; `/healthz` always answers.
#[tokio::test]
async fn metrics_are_served_only_where_configured() {
    let sim = sim(43, SECRET).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, SECRET).expect("write secret file");
    let secret_file = secret_file.display().to_string();
    let token = "metrics-token-7d1e0c9b2a";
    let token_file = dir.path().join("metrics-token");
    std::fs::write(&token_file, format!("{token}\n")).expect("write token file");
    let db = format!("sqlite://{}", dir.path().join("relay.db").display());
    let envs = sim_env(&sim, &secret_file);
    let status = |url: String, bearer: Option<&'static str>| async move {
        let mut req = http().get(url);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send().await.expect("request").status()
    };

    let plain = spawn_relay(&envs, &["--listen", "127.0.0.1:0", "--database-url", &db]).await;
    assert!(plain.metrics_url.is_none());
    assert_eq!(
        status(format!("{}/metrics", plain.base_url), None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(format!("{}/healthz", plain.base_url), None).await,
        StatusCode::OK
    );
    let (ok, _) = plain.stop().await;
    assert!(ok);

    let token_path = token_file.display().to_string();
    let configured = spawn_relay(
        &envs,
        &[
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db,
            "--metrics-token-file",
            &token_path,
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    )
    .await;
    let public = format!("{}/metrics", configured.base_url);
    assert_eq!(status(public.clone(), None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        status(public.clone(), Some("not-the-token-at-all")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status(public, Some(token)).await, StatusCode::OK);
    let private = configured
        .metrics_url
        .clone()
        .expect("metrics_url in the ready line");
    assert_eq!(
        status(format!("{private}/metrics"), None).await,
        StatusCode::OK
    );
    let (ok, stderr) = configured.stop().await;
    assert!(ok);
    assert!(!stderr.contains(token), "the metrics token was logged");
}
