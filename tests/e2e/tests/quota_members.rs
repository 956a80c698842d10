//! Several people import at once through one VitalTrends service whose WHOOP app allows only a
//! few requests a minute: real `vitaltrends` processes, the real relay with its quota
//! coordinator, one multi-member simulator counting the app's limit as WHOOP does. Every
//! member's store ends equal to their WHOOP data, and WHOOP answered no request with a 429.
//!
//! Time is scaled (as in `vitaltrends-bench scale`): WHOOP's minute lasts 5 s of real time for
//! both the simulator (`--rate-window-scale`) and the relay (`--whoop-time-scale`).

use std::process::Stdio;
use std::time::Duration;

use e2e::{closed_records, free_port, Cli, RelayProcess, SimProcess};
use serde_json::json;

const MEMBERS: usize = 4;
/// Requests in one (scaled) WHOOP minute for the whole app: the four imports together need
/// several minutes' worth, so without coordination they would run into WHOOP's limit.
const PER_MINUTE: &str = "24";
const TIME_SCALE: &str = "12";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_importing_at_once_share_one_small_limit_without_a_429() {
    let sim = SimProcess::start(&[
        "--users",
        &MEMBERS.to_string(),
        "--days",
        "75",
        "--seed",
        "57",
        "--auto-approve",
        "--rate-limit-minute",
        PER_MINUTE,
        "--rate-window-scale",
        TIME_SCALE,
    ])
    .await;
    let relay_dir = tempfile::tempdir().unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let relay = RelayProcess::start_with(
        &sim,
        &relay_dir.path().join("relay.db"),
        "127.0.0.1:0",
        &[
            "--whoop-rate-minute",
            PER_MINUTE,
            "--whoop-time-scale",
            TIME_SCALE,
            "--metrics-listen",
            &metrics,
        ],
    )
    .await;

    // Members sign in one after another (the simulator approves member 1, then 2, …).
    let mut people = Vec::new();
    for member in 1..=MEMBERS {
        let mut cli = Cli::new(&sim);
        cli.relay_url = Some(relay.base_url.clone());
        let connected = cli.connect().await;
        assert!(
            connected.status.success(),
            "member {member} connects through the broker: {}",
            connected.stderr
        );
        people.push(cli);
    }
    // Let the sign-ins' requests age out of WHOOP's (scaled) minute, then count from zero.
    tokio::time::sleep(Duration::from_secs(6)).await;
    sim.post_json("/_sim/reset-stats", json!({})).await;

    // Everyone imports at once.
    let imports: Vec<_> = people
        .iter()
        .map(|cli| {
            cli.command()
                .arg("sync")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start vitaltrends sync")
        })
        .collect();
    for (k, import) in imports.into_iter().enumerate() {
        let out = tokio::time::timeout(Duration::from_secs(240), import.wait_with_output())
            .await
            .expect("the imports finish within 4 minutes")
            .unwrap();
        assert!(
            out.status.success(),
            "member {} imported: {}",
            k + 1,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let stats = sim.get_json("/_sim/stats").await;
    let requests = stats["app"]["requests"].as_u64().unwrap();
    let per_minute: u64 = PER_MINUTE.parse().unwrap();
    assert!(
        requests > 2 * per_minute,
        "the imports needed {requests} requests: more than two of WHOOP's minutes allow, so \
         the coordinator had to hold some back"
    );
    assert_eq!(
        stats["app"]["rate_limited"], 0,
        "WHOOP answered no request with a 429: {stats}"
    );
    for (k, cli) in people.iter().enumerate() {
        let member = k + 1;
        let member_stats = &stats["members"][k];
        assert_eq!(member_stats["user"], member);
        assert!(
            member_stats["requests"].as_u64().unwrap() > 0,
            "member {member} was served: {member_stats}"
        );
        let want = closed_records(&sim.get_json(&format!("/_sim/dump?user={member}")).await);
        let got = closed_records(&cli.export_json().await);
        assert!(!want.is_empty());
        assert_eq!(want, got, "member {member}'s store equals their WHOOP data");
    }

    // The relay handed the requests out: everything the imports sent was granted first.
    let metrics = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let granted: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("relay_quota_granted_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(
        granted >= requests,
        "the relay granted {granted} requests for the {requests} WHOOP saw"
    );
}
