//! The relay as deployed: the real `vitaltrends-relay` behind a real Caddy serving the shipped
//! `deploy/Caddyfile` (imported under test-only global options: Caddy's local CA instead of
//! Let's Encrypt, unprivileged loopback ports, its storage in a temporary directory). Over
//! HTTPS: the simulator's signed webhooks, the CLI's sign-in through the broker, a refresh, and
//! the live event stream. Rate limits count the client address Caddy forwards, and only because
//! Caddy is the relay's `--trusted-proxy`: the same header sent straight to the relay is ignored.
//!
//! Every client trusts Caddy's root through `SSL_CERT_FILE` (reqwest's native roots, see the
//! workspace Cargo.toml); the test's own client adds the root explicitly. Distinct client
//! addresses are distinct loopback sources (127.0.0.2, .3, .4), which Linux routes to lo.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::{closed_records, free_port, Cli, RelayProcess, SimProcess};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

const MINUTE: Duration = Duration::from_secs(60);
/// Broker requests per client address per minute at the relay in this suite.
const PER_IP: usize = 30;
const TEST_BUDGET: Duration = Duration::from_secs(240);

/// A Caddy process with its own configuration and storage, killed on drop.
struct Caddy {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
    root_cert: PathBuf,
}

impl Caddy {
    async fn start(upstream: &str) -> Caddy {
        let dir = tempfile::tempdir().expect("tempdir");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/Caddyfile");
        let shipped = shipped.canonicalize().expect("deploy/Caddyfile");
        let https_port = free_port();
        let config = dir.path().join("Caddyfile");
        std::fs::write(
            &config,
            format!(
                "{{\n\tadmin off\n\thttp_port {}\n\thttps_port {https_port}\n\tlocal_certs\n\t\
                 skip_install_trust\n}}\nimport {}\n",
                free_port(),
                shipped.display()
            ),
        )
        .expect("write Caddyfile");
        let log = std::fs::File::create(dir.path().join("caddy.log")).expect("log file");
        let child = Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&config)
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("RELAY_DOMAIN", "127.0.0.1")
            .env("RELAY_UPSTREAM", upstream)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("caddy could not run; scripts/setup.sh installs it");
        let root_cert = dir.path().join("data/caddy/pki/authorities/local/root.crt");
        let caddy = Caddy {
            child,
            url: format!("https://127.0.0.1:{https_port}"),
            root_cert,
            dir,
        };
        // Caddy makes its local CA as it starts, before any upstream is up.
        let started = Instant::now();
        while !caddy.root_cert.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "Caddy made no root certificate within 30 s:\n{}",
                caddy.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        caddy
    }

    /// Waits until `/healthz` answers 200 through Caddy (the relay behind it is up).
    async fn wait_ready(&mut self) {
        let started = Instant::now();
        let client = self.client(None);
        loop {
            if let Ok(resp) = client.get(format!("{}/healthz", self.url)).send().await {
                if resp.status().is_success() {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("Caddy exited ({status}):\n{}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "Caddy did not serve the relay within 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("caddy.log")).unwrap_or_default()
    }

    /// A client that trusts Caddy's root, optionally from a given loopback source address.
    fn client(&self, from: Option<&str>) -> reqwest::Client {
        let pem = std::fs::read(&self.root_cert).expect("Caddy's root certificate");
        let mut builder = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
            .timeout(Duration::from_secs(10));
        if let Some(ip) = from {
            builder = builder.local_address(ip.parse::<std::net::IpAddr>().expect("address"));
        }
        builder.build().expect("client")
    }
}

/// The broker's cheapest counted request: a code exchange without a code (400, no WHOOP call).
async fn broker_status(
    client: &reqwest::Client,
    base: &str,
    forwarded_for: Option<&str>,
) -> reqwest::StatusCode {
    let mut req = client
        .post(format!("{base}/oauth/whoop/token"))
        .form(&[("redirect_uri", "http://127.0.0.1:9/cb")]);
    if let Some(v) = forwarded_for {
        req = req.header("X-Forwarded-For", v);
    }
    req.send().await.expect("broker request").status()
}

/// Spends `PER_IP` requests and returns whether the next one is refused.
async fn limited_after_budget(
    client: &reqwest::Client,
    base: &str,
    forwarded_for: impl Fn(usize) -> Option<String>,
) -> bool {
    for i in 0..PER_IP {
        let status = broker_status(client, base, forwarded_for(i).as_deref()).await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "request {i}");
    }
    broker_status(client, base, forwarded_for(PER_IP).as_deref()).await
        == reqwest::StatusCode::TOO_MANY_REQUESTS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_refresh_webhooks_and_stream_over_https_through_caddy() {
    tokio::time::timeout(TEST_BUDGET, through_caddy())
        .await
        .expect("the HTTPS suite did not finish in time");
}

async fn through_caddy() {
    let relay_dir = tempfile::tempdir().expect("tempdir");
    let relay_port = free_port();
    let relay_listen = format!("127.0.0.1:{relay_port}");
    // The simulator must trust Caddy's root before it is started, so Caddy comes before it,
    // and the relay (which needs the simulator's URL) after it, on the port Caddy proxies to.
    let mut caddy = Caddy::start(&relay_listen).await;
    let cert = caddy.root_cert.display().to_string();
    let sim = SimProcess::start_with_env(
        &[
            "--days",
            "20",
            "--seed",
            "77",
            "--auto-approve",
            "--webhook-retry-scale",
            "0.01",
        ],
        &[("SSL_CERT_FILE", cert.as_str())],
    )
    .await;
    let per_ip = PER_IP.to_string();
    let relay = RelayProcess::start_with(
        &sim,
        &relay_dir.path().join("relay.db"),
        &relay_listen,
        &[
            "--trusted-proxy",
            "127.0.0.1/32",
            "--per-ip-per-minute",
            &per_ip,
        ],
    )
    .await;
    caddy.wait_ready().await;
    let https = caddy.url.clone();
    sim.post_json(
        "/_sim/webhook-url",
        json!({ "url": format!("{https}/webhooks/whoop") }),
    )
    .await;

    // Sign-in through the broker over HTTPS: tokens and a device credential.
    let mut cli = Cli::new(&sim);
    cli.relay_url = Some(https.clone());
    cli.extra_env.push(("SSL_CERT_FILE".into(), cert.clone()));
    let connected = cli.connect().await;
    assert!(
        connected.status.success(),
        "connect through Caddy: {}{}",
        connected.stdout,
        connected.stderr
    );
    let secrets: Value = serde_json::from_slice(
        &std::fs::read(cli.data_dir.path().join("insecure-secrets.json")).expect("secrets"),
    )
    .expect("JSON");
    assert!(
        secrets["relay-device"].is_string(),
        "the broker bound a device"
    );
    let synced = cli.run(&["sync"], MINUTE).await;
    assert!(synced.status.success(), "import: {}", synced.stderr);

    // A refresh through the broker over HTTPS, carrying the device credential.
    sim.post_json("/_sim/reset-stats", json!({})).await;
    sim.post_json("/_sim/expire-tokens", json!({})).await;
    let synced = cli.run(&["sync"], MINUTE).await;
    assert!(
        synced.status.success(),
        "sync after expiry: {}",
        synced.stderr
    );
    let stats = sim.get_json("/_sim/stats").await;
    assert_eq!(stats["refreshes"], 1, "{stats}");
    assert_eq!(stats["refresh_replays"], 0);

    // Live: signed webhooks into Caddy, the event stream out of it, applied by `vitaltrends run`.
    let mut run = cli
        .command()
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vitaltrends run");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let change = sim.post_json("/_sim/advance", json!({ "hours": 30 })).await;
    assert!(
        change["events"].as_array().is_some_and(|e| !e.is_empty()),
        "{change}"
    );
    let started = Instant::now();
    let mut same = false;
    while started.elapsed() < Duration::from_secs(40) {
        let want = closed_records(&sim.get_json("/_sim/dump").await);
        let got = closed_records(&cli.export_json().await);
        if want == got {
            same = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let applied_after = started.elapsed();
    let stats = sim.get_json("/_sim/stats").await;
    let _ = run.kill().await;
    assert!(
        same,
        "the store never matched WHOOP; simulator stats {stats}"
    );
    println!(
        "relay_https: {} changes announced; store equal to WHOOP {:.1} s after they happened; \
         {} webhooks sent over HTTPS",
        change["events"].as_array().map_or(0, Vec::len),
        applied_after.as_secs_f64(),
        stats["webhooks_sent"]
    );
    let delivered = stats["webhooks_sent"].as_u64().unwrap_or_default();
    assert!(
        delivered > 0,
        "no webhook reached the relay through Caddy: {stats}"
    );

    // Rate limits: through Caddy each client address has its own budget; a client cannot pick
    // another's by sending X-Forwarded-For (Caddy replaces it).
    let a = caddy.client(Some("127.0.0.2"));
    let b = caddy.client(Some("127.0.0.3"));
    assert!(
        limited_after_budget(&a, &https, |i| Some(format!("203.0.113.{i}"))).await,
        "127.0.0.2 was not limited through Caddy"
    );
    assert_eq!(
        broker_status(&b, &https, None).await,
        reqwest::StatusCode::BAD_REQUEST,
        "127.0.0.3 shares 127.0.0.2's budget"
    );
    // Straight to the relay from an untrusted peer, the header counts for nothing: one budget
    // for every X-Forwarded-For value.
    let direct = reqwest::Client::builder()
        .local_address("127.0.0.4".parse::<std::net::IpAddr>().expect("address"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    assert!(
        limited_after_budget(&direct, &relay.base_url, |i| Some(format!(
            "198.51.100.{i}"
        )))
        .await,
        "an untrusted peer escaped its limit with X-Forwarded-For"
    );

    // The CLI refuses a relay that is neither https nor on this machine.
    let mut plain = Cli::new(&sim);
    plain.relay_url = Some("http://relay.example.com".into());
    let refused = plain.run(&["status"], MINUTE).await;
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("must use https"),
        "{}",
        refused.stderr
    );

    relay.stop().await;
    sim.stop().await;
    drop(caddy);
}
