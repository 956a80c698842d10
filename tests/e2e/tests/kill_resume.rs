//! A `vitaltrends sync` killed with SIGKILL in the middle of phase 2 resumes on the next run:
//! the store ends equal to WHOOP, and no page that was stored before the kill is fetched again.

use std::process::Stdio;
use std::time::Duration;

use e2e::{Cli, SimProcess};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

const SIM_ARGS: [&str; 8] = [
    "--days",
    "1200",
    "--seed",
    "31",
    "--latency-ms",
    "20",
    "--rate-limit-minute",
    "100000",
];

fn collection_requests(stats: &Value) -> u64 {
    ["cycle", "sleep", "recovery", "workout"]
        .iter()
        .map(|c| {
            stats["requests"][format!("{c}.collection")]
                .as_u64()
                .unwrap_or(0)
        })
        .sum()
}

async fn connected(sim: &SimProcess) -> Cli {
    let cli = Cli::new(sim);
    let connected = cli.connect().await;
    assert!(connected.status.success(), "connect: {}", connected.stderr);
    sim.post_json("/_sim/reset-stats", serde_json::json!({}))
        .await;
    cli
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_phase_2_then_resume() {
    let mut args = vec!["--auto-approve"];
    args.extend(SIM_ARGS);
    // Two identical WHOOPs: one for an uninterrupted reference import, one for the killed one.
    let reference = SimProcess::start(&args).await;
    let sim = SimProcess::start(&args).await;

    let reference_cli = connected(&reference).await;
    let done = reference_cli.run(&["sync"], Duration::from_secs(300)).await;
    assert!(done.status.success(), "reference import: {}", done.stderr);
    let uninterrupted = collection_requests(&reference.get_json("/_sim/stats").await);

    let cli = connected(&sim).await;
    let mut child = cli
        .command()
        .arg("sync")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let killed_at = tokio::time::timeout(Duration::from_secs(120), async {
        // Phase 2 begins (progress is one line per phase off a terminal)…
        while let Some(line) = lines.next_line().await.unwrap() {
            assert!(
                !line.contains("Import finished"),
                "finished before it could be killed"
            );
            if line.starts_with("progress: history") {
                break;
            }
        }
        // …and goes on until well into it: some history pages stored, plenty still to go.
        loop {
            let used = collection_requests(&sim.get_json("/_sim/stats").await);
            if used >= uninterrupted * 3 / 5 {
                return used;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "sync ended before it could be killed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("phase 2 reached in time");
    child.start_kill().unwrap(); // SIGKILL: no chance to clean up
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "killed after {killed_at} requests");

    let partial = cli
        .run(&["status", "--json"], Duration::from_secs(60))
        .await;
    let partial: Value = serde_json::from_str(&partial.stdout).unwrap();
    assert_eq!(partial["import_complete"], false);
    assert!(partial["counts"]["cycle"].as_u64().unwrap() > 0);

    let resumed = cli.run(&["sync"], Duration::from_secs(300)).await;
    assert!(resumed.status.success(), "resume: {}", resumed.stderr);
    assert!(
        resumed.stdout.contains("Import finished"),
        "{}",
        resumed.stdout
    );

    // Equal to WHOOP.
    let export_path = cli.data_dir.path().join("export.json");
    let out = cli
        .run(
            &[
                "export",
                "--format",
                "json",
                "--out",
                export_path.to_str().unwrap(),
            ],
            Duration::from_secs(60),
        )
        .await;
    assert!(out.status.success());
    let export: Value = serde_json::from_slice(&std::fs::read(&export_path).unwrap()).unwrap();
    let dump = sim.get_json("/_sim/dump").await;
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        let mut want: Vec<String> = dump[collection]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        let mut got: Vec<String> = export[collection]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got.len(), want.len(), "{collection} count");
        assert!(got == want, "{collection} differs from WHOOP");
    }

    // Requests: the uninterrupted import's, plus at most the pages that were in flight when the
    // process died (one per collection walking back through history), never a stored page again.
    let used = collection_requests(&sim.get_json("/_sim/stats").await);
    assert!(
        used <= uninterrupted + 4,
        "killed + resumed used {used} collection requests; uninterrupted {uninterrupted}"
    );
    assert!(
        used >= uninterrupted,
        "{used} < {uninterrupted}: some data was not fetched"
    );
}
