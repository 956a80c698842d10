//! Two real `vitaltrends` processes on one data directory (a cron `vitaltrends sync` beside the
//! desktop or `vitaltrends run`): when the access token dies they both need a refresh at once.
//! WHOOP rotates the refresh token and revokes the whole grant if a spent one is replayed, so
//! exactly one of them may refresh; the other must use the pair it stored. The simulator's
//! token endpoint answers slowly (after rotating), which makes the race certain without the
//! cross-process lock.

use std::time::Duration;

use e2e::{Cli, SimProcess};
use serde_json::{json, Value};

const MINUTE: Duration = Duration::from_secs(60);
const ROUNDS: u64 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_syncing_at_once_never_replay_a_refresh_token() {
    let sim = SimProcess::start(&[
        "--days",
        "20",
        "--seed",
        "8",
        "--auto-approve",
        "--token-latency-ms",
        "400",
    ])
    .await;
    let cli = Cli::new(&sim);
    let connected = cli.connect().await;
    assert!(connected.status.success(), "{}", connected.stderr);
    let first = cli.run(&["sync"], 2 * MINUTE).await;
    assert!(first.status.success(), "first sync: {}", first.stderr);

    sim.post_json("/_sim/reset-stats", json!({})).await;
    for round in 1..=ROUNDS {
        sim.post_json("/_sim/expire-tokens", json!({})).await;
        let (a, b) = tokio::join!(
            cli.run(&["sync"], 2 * MINUTE),
            cli.run(&["sync"], 2 * MINUTE)
        );
        assert!(a.status.success(), "round {round}, first: {}", a.stderr);
        assert!(b.status.success(), "round {round}, second: {}", b.stderr);
    }
    let stats = sim.get_json("/_sim/stats").await;
    assert_eq!(
        stats["refresh_replays"], 0,
        "a spent refresh token was replayed"
    );
    assert_eq!(
        stats["refreshes"], ROUNDS,
        "one refresh per expiry, shared by both processes"
    );

    // The grant is alive: a third sync works and the connection is still connected.
    let third = cli.run(&["sync"], 2 * MINUTE).await;
    assert!(third.status.success(), "third sync: {}", third.stderr);
    let status = cli.run(&["status", "--json"], MINUTE).await;
    assert!(status.status.success(), "{}", status.stderr);
    let status: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(status["state"], "connected", "{status}");
    // No temporary token files left behind by the writers.
    let leftovers: Vec<_> = std::fs::read_dir(cli.data_dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
