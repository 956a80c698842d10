//! Real time through the real relay: `whoop-sim` sends signed webhooks to `vitaltrends-relay`,
//! `vitaltrends run` (connected through the relay's token broker) streams them and applies them.
//! Within seconds the local store equals WHOOP, and the catch-up made no WHOOP calls.

use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::{closed_records, Cli, RelayProcess, SimProcess};
use serde_json::{json, Value};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_reach_the_store_through_the_relay_within_seconds() {
    let sim = SimProcess::start(&[
        "--days",
        "45",
        "--seed",
        "41",
        "--auto-approve",
        "--webhook-retry-scale",
        "0.01",
    ])
    .await;
    let relay_dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(&sim, &relay_dir.path().join("relay.db")).await;
    sim.post_json(
        "/_sim/webhook-url",
        json!({ "url": format!("{}/webhooks/whoop", relay.base_url) }),
    )
    .await;

    let mut cli = Cli::new(&sim);
    cli.relay_url = Some(relay.base_url.clone());
    let connected = cli.connect().await;
    assert!(
        connected.status.success(),
        "connect through the broker: {}",
        connected.stderr
    );
    let secrets: Value = serde_json::from_slice(
        &std::fs::read(cli.data_dir.path().join("insecure-secrets.json")).unwrap(),
    )
    .unwrap();
    assert!(
        secrets["relay-device"].is_string(),
        "the broker bound a device"
    );
    let synced = cli.run(&["sync"], MINUTE).await;
    assert!(synced.status.success(), "import: {}", synced.stderr);

    let mut run = cli
        .command()
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let the stream connect before WHOOP changes anything.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.post_json("/_sim/reset-stats", json!({})).await;

    let change = sim.post_json("/_sim/advance", json!({ "hours": 30 })).await;
    let announced = change["events"].as_array().unwrap().len();
    assert!(
        announced >= 3,
        "the simulator announced {announced} changes"
    );

    let started = Instant::now();
    let mut last_diff = usize::MAX;
    while started.elapsed() < Duration::from_secs(30) {
        let want = closed_records(&sim.get_json("/_sim/dump").await);
        let got = closed_records(&cli.export_json().await);
        if want == got {
            last_diff = 0;
            break;
        }
        last_diff = want.iter().filter(|r| !got.contains(r)).count();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        last_diff, 0,
        "the store did not catch up with WHOOP in 30 s"
    );
    let applied_in = started.elapsed();
    eprintln!("{announced} webhook events applied through the relay in {applied_in:?}");

    // The simulator counts a webhook as sent when the relay's 204 reaches it; the relay commits
    // and wakes the stream before answering, so the store can match WHOOP a moment earlier.
    let counted = Instant::now();
    let stats = loop {
        let stats = sim.get_json("/_sim/stats").await;
        if stats["webhooks_sent"].as_u64().unwrap() >= announced as u64
            || counted.elapsed() > Duration::from_secs(5)
        {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(stats["webhooks_sent"].as_u64().unwrap() >= announced as u64);
    // No catch-up ran: no sync run after the import, and no collection listing besides the
    // cycle lookups the applier makes for a workout whose cycle it has not seen yet.
    let status = cli.run(&["status", "--json"], MINUTE).await;
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["last_sync"]["kind"], "import", "a catch-up ran");
    for collection in ["sleep", "recovery", "workout"] {
        assert_eq!(
            stats["requests"][format!("{collection}.collection")],
            0,
            "the catch-up made WHOOP calls while the stream was live"
        );
    }
    let by_id: u64 = [
        "sleep.by_id",
        "workout.by_id",
        "cycle.by_id",
        "cycle.recovery",
    ]
    .iter()
    .map(|k| stats["requests"][k].as_u64().unwrap_or(0))
    .sum();
    assert!(
        by_id > 0,
        "events were applied by fetching the changed objects"
    );

    let _ = run.kill().await;
    relay.stop().await;
    sim.stop().await;
}
