//! The real binaries against WHOOP's untidy JSON: `whoop-sim` started with every shape flag
//! (nulls, `+05:30` offsets, two spellings of one sport, `"next_token": ""`, no body
//! measurement), then `vitaltrends connect`, `sync` and both exports. The JSON export must equal
//! the simulator's dump and the CSV must hold every record, one spelling per sport.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::{Cli, SimProcess};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

fn ids(collection: &str, records: &Value) -> BTreeSet<String> {
    let field = if collection == "recovery" {
        "cycle_id"
    } else {
        "id"
    };
    records
        .as_array()
        .unwrap_or_else(|| panic!("{collection} is not an array"))
        .iter()
        .map(|r| match &r[field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shape_flag_at_once_imports_and_exports_whole() {
    let sim = SimProcess::start(&[
        "--days",
        "150",
        "--seed",
        "11",
        "--auto-approve",
        "--null-fields",
        "--offset-timestamps",
        "--mixed-sport-casing",
        "--empty-last-token",
        "--no-body-measurement",
    ])
    .await;
    let cli = Cli::new(&sim);
    let connected = cli.connect().await;
    assert!(
        connected.status.success(),
        "connect failed: {}\n{}",
        connected.stdout,
        connected.stderr
    );
    let synced = cli.run(&["sync"], 5 * MINUTE).await;
    assert!(synced.status.success(), "sync failed: {}", synced.stderr);

    let export_path = cli.data_dir.path().join("export.json");
    let exported = cli
        .run(
            &[
                "export",
                "--format",
                "json",
                "--out",
                export_path.to_str().unwrap(),
            ],
            MINUTE,
        )
        .await;
    assert!(exported.status.success(), "{}", exported.stderr);
    let export: Value = serde_json::from_slice(&std::fs::read(&export_path).unwrap()).unwrap();
    let dump = sim.get_json("/_sim/dump").await;
    assert!(dump["sleep"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["nap"].is_null() && s["start"].as_str().is_some_and(|t| t.ends_with("+05:30"))));
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        assert_eq!(
            export[collection], dump[collection],
            "{collection}: the export differs from WHOOP"
        );
    }
    assert_eq!(export["profile"], dump["profile"]);
    assert!(export["body_measurement"].is_null());

    let csv_dir = cli.data_dir.path().join("csv");
    let csv = cli
        .run(
            &[
                "export",
                "--format",
                "csv",
                "--out",
                csv_dir.to_str().unwrap(),
            ],
            MINUTE,
        )
        .await;
    assert!(csv.status.success(), "csv export failed: {}", csv.stderr);
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        let text = std::fs::read_to_string(csv_dir.join(format!("{collection}.csv"))).unwrap();
        assert_eq!(
            text.lines().count() - 1,
            ids(collection, &dump[collection]).len(),
            "{collection}.csv rows"
        );
    }
    let workouts = std::fs::read_to_string(csv_dir.join("workout.csv")).unwrap();
    let mut lines = workouts.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let sport = header.iter().position(|h| *h == "sport_name").unwrap();
    let sports: BTreeSet<String> = lines
        .map(|l| l.split(',').nth(sport).unwrap_or_default().to_string())
        .collect();
    assert!(
        sports
            .iter()
            .all(|s| !s.contains(' ') && s.to_lowercase() == *s),
        "one spelling per sport: {sports:?}"
    );
}
