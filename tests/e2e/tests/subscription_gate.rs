//! The subscription gate with the real binaries: `vitaltrends-relay` (gate on, licences from its
//! own `licence` commands), `whoop-sim` as WHOOP and the `vitaltrends` CLI as the app.
//!
//! Connecting without a licence is refused (402) and the app says "subscription required"; with
//! an issued licence the import and live updates run; the billing webhook renews only when its
//! signature is right; after a revocation refreshes keep working through the (short) grace
//! period, then the relay refuses them and the stream, the app says "subscription ended" and its
//! history stays readable.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::{binary, closed_records, Cli, RelayProcess, SimProcess};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const MINUTE: Duration = Duration::from_secs(60);
const GRACE_SECS: u64 = 10;
const BILLING_SECRET: &str = "whsec-e2e-0b6f";

/// `vitaltrends-relay ARGS`, to completion; returns stdout (asserting success).
async fn relay_command(args: &[&str]) -> String {
    let out = Command::new(binary("vitaltrends-relay"))
        .args(args)
        .env_remove("VITALTRENDS_RELAY_DATABASE_URL")
        .output()
        .await
        .expect("run vitaltrends-relay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vitaltrends-relay {args:?}: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

async fn state(cli: &Cli) -> String {
    let out = cli.run(&["status", "--json"], MINUTE).await;
    assert!(out.status.success(), "status: {}", out.stderr);
    let status: Value = serde_json::from_str(&out.stdout).expect("status JSON");
    status["state"].as_str().unwrap_or_default().to_string()
}

fn billing_signature(body: &str) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut mac = Hmac::<Sha256>::new_from_slice(BILLING_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_needs_a_licence_and_a_lapse_ends_syncing_but_keeps_history() {
    let sim = SimProcess::start(&[
        "--days",
        "30",
        "--seed",
        "77",
        "--auto-approve",
        "--webhook-retry-scale",
        "0.01",
        // The suite syncs and exports often; WHOOP's 100 a minute would make it wait.
        "--rate-limit-minute",
        "10000",
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let signing = dir.path().join("licence-signing.key");
    let public = dir.path().join("licence-public.key");
    let billing = dir.path().join("billing.secret");
    let database = dir.path().join("relay.db");
    let database_url = format!("sqlite://{}", database.display());

    // The operator's key pair: the relay gets only the public half.
    let printed = relay_command(&["licence", "keygen", "--out", signing.to_str().unwrap()]).await;
    let public_key = printed.trim();
    assert!(
        public_key.starts_with("vt-licence-public-key-1."),
        "{printed}"
    );
    std::fs::write(&public, format!("{public_key}\n")).unwrap();
    std::fs::write(&billing, format!("{BILLING_SECRET}\n")).unwrap();
    let grace = GRACE_SECS.to_string();
    let relay = RelayProcess::start_with(
        &sim,
        &database,
        "127.0.0.1:0",
        &[
            "--licence-key-file",
            public.to_str().unwrap(),
            "--licence-grace-secs",
            &grace,
            "--billing-webhook-secret-file",
            billing.to_str().unwrap(),
            "--heartbeat-secs",
            "1",
        ],
    )
    .await;
    sim.post_json(
        "/_sim/webhook-url",
        json!({ "url": format!("{}/webhooks/whoop", relay.base_url) }),
    )
    .await;
    let mut cli = Cli::new(&sim);
    cli.relay_url = Some(relay.base_url.clone());

    // 1. No licence: the broker answers 402 and the app says so.
    let refused = cli.connect().await;
    assert!(!refused.status.success(), "connected without a licence");
    assert!(
        refused.stderr.contains("subscription_required"),
        "{}",
        refused.stderr
    );
    assert_eq!(state(&cli).await, "subscription_required");
    let shown = cli.run(&["status"], MINUTE).await;
    assert!(
        shown.stdout.contains("Subscription required"),
        "{}",
        shown.stdout
    );

    // 2. An issued licence: the key alone on stdout.
    let issued = relay_command(&[
        "licence",
        "issue",
        "--database-url",
        &database_url,
        "--licence-key-file",
        signing.to_str().unwrap(),
        "--days",
        "30",
        "--plan",
        "personal",
        "--devices",
        "2",
    ])
    .await;
    assert_eq!(issued.lines().count(), 1, "{issued}");
    let key = issued.trim().to_string();
    assert!(key.starts_with("VT1."));
    let mut set = cli
        .command()
        .args(["licence", "set"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    set.stdin
        .take()
        .unwrap()
        .write_all(format!("{key}\n").as_bytes())
        .await
        .unwrap();
    let set = set.wait_with_output().await.unwrap();
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let show = cli.run(&["licence", "show"], MINUTE).await;
    assert!(show.stdout.contains("Plan: personal"), "{}", show.stdout);
    assert!(show.stdout.contains("lic_"));
    assert!(!show.stdout.contains(&key) && !show.stderr.contains(&key));

    // 3. Connect, import, live updates.
    let connected = cli.connect().await;
    assert!(connected.status.success(), "connect: {}", connected.stderr);
    let synced = cli.run(&["sync"], MINUTE).await;
    assert!(synced.status.success(), "import: {}", synced.stderr);
    let show = cli.run(&["licence", "show"], MINUTE).await;
    assert!(
        show.stdout.contains("At the relay: active"),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains("1 of 2 devices"), "{}", show.stdout);
    let mut run = cli
        .command()
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.post_json("/_sim/advance", json!({ "hours": 30 })).await;
    let started = Instant::now();
    loop {
        let want = closed_records(&sim.get_json("/_sim/dump").await);
        if want == closed_records(&cli.export_json().await) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "live updates did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // 4. The billing webhook: a bad signature is refused, a good one renews.
    let id = show
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Licence: "))
        .expect("licence id")
        .to_string();
    let body = json!({
        "type": "licence.renewed",
        "licence_id": id,
        "active_until": "2099-01-01T00:00:00Z",
    })
    .to_string();
    let http = reqwest::Client::new();
    let post = |signature: String| {
        http.post(format!("{}/billing/webhook", relay.base_url))
            .header("VitalTrends-Signature", signature)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
    };
    let bad = post("t=1,v1=00".into()).await.unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    let forged = post(billing_signature(&body).replace("v1=", "v1=0"))
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let list = relay_command(&["licence", "list", "--database-url", &database_url]).await;
    assert!(!list.contains("2099"), "{list}");
    let good = post(billing_signature(&body)).await.unwrap();
    assert_eq!(good.status().as_u16(), 204);
    let list = relay_command(&["licence", "list", "--database-url", &database_url]).await;
    assert!(list.contains("until 2099-01-01"), "{list}");

    // 5. Revoked: refreshes work through the grace period…
    let revoked = relay_command(&["licence", "revoke", "--database-url", &database_url, &id]).await;
    assert!(revoked.contains("revoked"), "{revoked}");
    let revoked_at = Instant::now();
    sim.post_json("/_sim/expire-tokens", json!({})).await;
    let synced = cli.run(&["sync"], MINUTE).await;
    assert!(
        synced.status.success(),
        "a refresh inside the grace period: {}",
        synced.stderr
    );
    assert!(
        revoked_at.elapsed() < Duration::from_secs(GRACE_SECS),
        "the test was too slow"
    );
    assert_eq!(state(&cli).await, "connected");

    // …then the stream stops with subscription_inactive and the app says the subscription ended.
    let mut ended = String::new();
    while revoked_at.elapsed() < Duration::from_secs(GRACE_SECS + 25) {
        ended = state(&cli).await;
        if ended == "subscription_ended" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(ended, "subscription_ended");
    let _ = run.kill().await;
    // The relay refuses the refresh itself (and never asked WHOOP: the token still works).
    let secrets: Value = serde_json::from_slice(
        &std::fs::read(cli.data_dir.path().join("insecure-secrets.json")).unwrap(),
    )
    .unwrap();
    let tokens: Value =
        serde_json::from_str(secrets["whoop-tokens"].as_str().expect("tokens")).unwrap();
    let device = secrets["relay-device"].as_str().expect("a relay device");
    let refresh = http
        .post(format!("{}/oauth/whoop/refresh", relay.base_url))
        .bearer_auth(device)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("scope", "offline"),
            ("licence_key", key.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status().as_u16(), 402);
    let refusal: Value = refresh.json().await.unwrap();
    assert_eq!(refusal["code"], "subscription_inactive");
    let sync = cli.run(&["sync"], MINUTE).await;
    assert!(!sync.status.success());
    assert!(
        sync.stderr.contains("subscription_inactive"),
        "{}",
        sync.stderr
    );

    // History stays readable.
    let shown = cli.run(&["status"], MINUTE).await;
    assert!(
        shown.stdout.contains("Subscription ended · history kept"),
        "{}",
        shown.stdout
    );
    let want = closed_records(&sim.get_json("/_sim/dump").await);
    assert_eq!(closed_records(&cli.export_json().await), want);
    // The key never reached the database or the logs.
    let db = std::fs::read(cli.data_dir.path().join("vitaltrends.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains(&key));
    relay.stop().await;
}
