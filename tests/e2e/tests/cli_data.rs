//! The person's data as files, through the real `vitaltrends` binary against the simulator:
//! exports of a range of days in CSV, JSON and Parquet read back by independent readers
//! (Python's `csv` and `json`, and `pyarrow`) holding exactly the simulator's records with the
//! right types; a backup taken while an import runs, and restores into fresh data directories
//! equal to the store; damaged and foreign files refused with nothing replaced; `rebuild`
//! leaving every typed column as it was; deleting a range of days and re-fetching it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Duration as Days, NaiveDate, Utc};
use e2e::{Cli, SimProcess};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

fn key_of(collection: &str, record: &Value) -> String {
    let field = if collection == "recovery" {
        "cycle_id"
    } else {
        "id"
    };
    match &record[field] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

/// The local date of `t` in WHOOP's `timezone_offset` (`-05:00`, `+05:30`, `Z`).
fn local_date(t: DateTime<Utc>, offset: &str) -> NaiveDate {
    let seconds = if offset == "Z" {
        0
    } else {
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let digits: String = offset.chars().filter(|c| c.is_ascii_digit()).collect();
        let hours: i64 = digits[..2].parse().unwrap();
        let minutes: i64 = digits.get(2..4).map_or(0, |m| m.parse().unwrap());
        sign * (hours * 3600 + minutes * 60)
    };
    (t + Days::seconds(seconds)).date_naive()
}

/// The WHOOP day of each record in a WHOOP-shaped dump, worked out here from WHOOP's fields
/// (a cycle or main sleep describes the date twelve hours after it starts; a nap or workout the
/// date it starts; a recovery its cycle's day), not read from VitalTrends.
fn days_of(dump: &Value) -> BTreeMap<(String, String), NaiveDate> {
    let mut days = BTreeMap::new();
    for collection in ["cycle", "sleep", "workout"] {
        for r in dump[collection].as_array().unwrap() {
            let start = instant(r["start"].as_str().unwrap());
            let offset = r["timezone_offset"].as_str().unwrap();
            let main = collection == "cycle" || (collection == "sleep" && r["nap"] != true);
            let day = if main {
                local_date(start + Days::hours(12), offset)
            } else {
                local_date(start, offset)
            };
            days.insert((collection.to_string(), key_of(collection, r)), day);
        }
    }
    for r in dump["recovery"].as_array().unwrap() {
        let cycle = days[&("cycle".to_string(), r["cycle_id"].to_string())];
        days.insert(("recovery".to_string(), key_of("recovery", r)), cycle);
    }
    days
}

/// Reads an export with Python's own `csv` and `json` modules and pyarrow, and prints what it
/// found as JSON: per collection, Arrow's type names and the rows of each format.
const READER: &str = r#"
import csv, datetime, json, sys
import pyarrow.parquet as pq

parquet_dir, csv_dir, json_file = sys.argv[1:4]
def plain(v):
    if isinstance(v, datetime.datetime):
        assert v.tzinfo is not None, "timestamps carry their UTC zone"
        return {"instant_ms": int(round(v.timestamp() * 1000))}
    if isinstance(v, datetime.date):
        return {"date": v.isoformat()}
    return v
out = {"types": {}, "parquet": {}, "csv": {}}
for c in ["cycle", "sleep", "recovery", "workout"]:
    table = pq.read_table(f"{parquet_dir}/{c}.parquet")
    out["types"][c] = {f.name: str(f.type) for f in table.schema}
    out["parquet"][c] = [{k: plain(v) for k, v in row.items()} for row in table.to_pylist()]
    with open(f"{csv_dir}/{c}.csv", newline="") as f:
        out["csv"][c] = list(csv.DictReader(f))
with open(json_file) as f:
    out["json"] = json.load(f)
print(json.dumps(out))
"#;

fn read_back(parquet: &Path, csv: &Path, json: &Path) -> Value {
    let output = std::process::Command::new(e2e::python())
        .args(["-c", READER])
        .arg(parquet)
        .arg(csv)
        .arg(json)
        .output()
        .expect("run the Python reader");
    assert!(
        output.status.success(),
        "python reader: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the reader's JSON")
}

async fn ok(cli: &Cli, args: &[&str]) -> String {
    let out = cli.run(args, 5 * MINUTE).await;
    assert!(
        out.status.success(),
        "vitaltrends {args:?} failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_of_a_range_read_back_by_independent_readers() {
    let sim = SimProcess::start(&["--days", "90", "--seed", "14", "--auto-approve"]).await;
    let cli = Cli::new(&sim);
    assert!(cli.connect().await.status.success());
    ok(&cli, &["sync"]).await;
    let dump = sim.get_json("/_sim/dump").await;
    let days = days_of(&dump);

    let newest = *days.values().max().unwrap();
    let (from, to) = (newest - Days::days(40), newest - Days::days(10));
    let (from_s, to_s) = (from.to_string(), to.to_string());
    let dir = cli.data_dir.path();
    let (pq_dir, csv_dir, json_file) = (dir.join("pq"), dir.join("csv"), dir.join("range.json"));
    for (format, out) in [
        ("parquet", &pq_dir),
        ("csv", &csv_dir),
        ("json", &json_file),
    ] {
        let printed = ok(
            &cli,
            &[
                "export",
                "--format",
                format,
                "--from",
                &from_s,
                "--to",
                &to_s,
                "--out",
                out.to_str().unwrap(),
            ],
        )
        .await;
        assert!(printed.contains("Wrote"), "{printed}");
    }
    let read = read_back(&pq_dir, &csv_dir, &json_file);

    // Typed columns, as pandas, polars and DuckDB will see them.
    let types = &read["types"];
    assert_eq!(types["cycle"]["start"], "timestamp[ms, tz=UTC]");
    assert_eq!(types["cycle"]["end"], "timestamp[ms, tz=UTC]");
    assert_eq!(types["cycle"]["day"], "date32[day]");
    assert_eq!(types["cycle"]["strain"], "double");
    assert_eq!(types["cycle"]["id"], "int64");
    assert_eq!(types["sleep"]["nap"], "bool");
    assert_eq!(types["sleep"]["total_rem_sleep_time_milli"], "int64");
    assert_eq!(types["recovery"]["day"], "date32[day]");
    assert_eq!(types["recovery"]["user_calibrating"], "bool");
    assert_eq!(types["workout"]["sport_name"], "string");

    let mut checked = 0;
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        // Exactly the simulator's records of those days, in every format.
        let want: BTreeMap<String, &Value> = dump[collection]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                let day = days[&(collection.to_string(), key_of(collection, r))];
                day >= from && day <= to
            })
            .map(|r| (key_of(collection, r), r))
            .collect();
        assert!(!want.is_empty(), "{collection}: some records in range");
        let keys = |rows: &Value, field: &str| -> BTreeSet<String> {
            rows.as_array()
                .unwrap()
                .iter()
                .map(|r| match &r[field] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        };
        let key_field = if collection == "recovery" {
            "cycle_id"
        } else {
            "id"
        };
        let want_keys: BTreeSet<String> = want.keys().cloned().collect();
        assert_eq!(keys(&read["parquet"][collection], key_field), want_keys);
        assert_eq!(keys(&read["csv"][collection], key_field), want_keys);
        // JSON: the records exactly as WHOOP sent them.
        let json_records: BTreeMap<String, &Value> = read["json"][collection]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (key_of(collection, r), r))
            .collect();
        assert_eq!(json_records, want, "{collection} JSON");

        // Parquet and CSV rows carry the record's values: UTC instants, local days, numbers.
        let csv_rows: BTreeMap<String, &Value> = read["csv"][collection]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[key_field].as_str().unwrap().to_string(), r))
            .collect();
        for row in read["parquet"][collection].as_array().unwrap() {
            let key = match &row[key_field] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let record = want[&key];
            let csv = csv_rows[&key];
            let day = days[&(collection.to_string(), key.clone())].to_string();
            assert_eq!(row["day"]["date"], day.as_str(), "{collection} {key} day");
            assert_eq!(csv["day"], day.as_str());
            assert_eq!(row["score_state"], record["score_state"]);
            if collection != "recovery" {
                let start = instant(record["start"].as_str().unwrap());
                assert_eq!(row["start"]["instant_ms"], start.timestamp_millis());
                assert_eq!(instant(csv["start"].as_str().unwrap()), start);
            }
            let (column, value) = match collection {
                "cycle" => ("strain", &record["score"]["strain"]),
                "sleep" => (
                    "sleep_performance_percentage",
                    &record["score"]["sleep_performance_percentage"],
                ),
                "recovery" => ("hrv_rmssd_milli", &record["score"]["hrv_rmssd_milli"]),
                _ => ("kilojoule", &record["score"]["kilojoule"]),
            };
            match value.as_f64() {
                Some(v) => {
                    assert_eq!(row[column].as_f64(), Some(v), "{collection} {key} {column}");
                    assert_eq!(csv[column].as_str().unwrap().parse::<f64>().unwrap(), v);
                    checked += 1;
                }
                None => {
                    assert!(row[column].is_null(), "{collection} {key} {column}");
                    assert_eq!(csv[column], "");
                }
            }
            if collection == "sleep" {
                assert_eq!(row["nap"], record["nap"].as_bool().unwrap_or(false));
                assert_eq!(csv["nap"], row["nap"].to_string().as_str());
            }
        }
    }
    assert!(checked > 60, "{checked} values compared");

    // Rebuilding the typed tables from the raw JSON changes none of them.
    let all_before = dir.join("all-before");
    ok(
        &cli,
        &[
            "export",
            "--format",
            "csv",
            "--out",
            all_before.to_str().unwrap(),
        ],
    )
    .await;
    let rebuilt = ok(&cli, &["rebuild"]).await;
    assert!(rebuilt.contains("Rebuilt"), "{rebuilt}");
    let all_after = dir.join("all-after");
    ok(
        &cli,
        &[
            "export",
            "--format",
            "csv",
            "--out",
            all_after.to_str().unwrap(),
        ],
    )
    .await;
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        let file = format!("{collection}.csv");
        assert_eq!(
            std::fs::read(all_before.join(&file)).unwrap(),
            std::fs::read(all_after.join(&file)).unwrap(),
            "{file} after rebuild"
        );
    }

    // Deleting the range leaves nothing of it, and the rest as it was.
    let refused = cli
        .run(&["delete-data", "--from", &from_s, "--to", &to_s], MINUTE)
        .await;
    assert!(!refused.status.success());
    ok(
        &cli,
        &["delete-data", "--from", &from_s, "--to", &to_s, "--yes"],
    )
    .await;
    let left = cli.export_json().await;
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        let total = dump[collection].as_array().unwrap().len();
        let remaining = left[collection].as_array().unwrap();
        let in_range = read["json"][collection].as_array().unwrap().len();
        assert_eq!(remaining.len(), total - in_range, "{collection}");
        assert!(remaining.iter().all(|r| {
            let day = days[&(collection.to_string(), key_of(collection, r))];
            day < from || day > to
        }));
    }

    // Re-fetching the range brings back exactly what WHOOP has.
    let refetched = ok(&cli, &["refetch", "--from", &from_s, "--to", &to_s]).await;
    assert!(refetched.contains("Re-fetched"), "{refetched}");
    let back = cli.export_json().await;
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        let keys = |v: &Value| -> BTreeSet<String> {
            v[collection]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| key_of(collection, r))
                .collect()
        };
        assert_eq!(keys(&back), keys(&dump), "{collection} after refetch");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_during_an_import_restores_and_bad_files_are_refused() {
    // Slow pages, so the import is still running while the backup is taken.
    let sim = SimProcess::start(&[
        "--days",
        "500",
        "--seed",
        "15",
        "--auto-approve",
        "--latency-ms",
        "150",
    ])
    .await;
    let cli = Cli::new(&sim);
    assert!(cli.connect().await.status.success());
    let mut import = cli
        .command()
        .arg("sync")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the import has stored something.
    let started = std::time::Instant::now();
    loop {
        let status = cli.run(&["status", "--json"], MINUTE).await;
        let status: Value = serde_json::from_str(&status.stdout).unwrap();
        let stored: u64 = ["cycle", "sleep", "recovery", "workout"]
            .iter()
            .map(|c| status["counts"][c].as_u64().unwrap())
            .sum();
        if stored > 100 {
            break;
        }
        assert!(started.elapsed() < 2 * MINUTE, "the import stored nothing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let during = cli.data_dir.path().join("during.db");
    let printed = ok(&cli, &["backup", "--out", during.to_str().unwrap()]).await;
    assert!(printed.contains("Backed up"), "{printed}");
    assert!(
        import.try_wait().unwrap().is_none(),
        "the import was still running when the backup finished"
    );

    // Restored into a fresh data directory, the mid-import backup is a working store whose
    // records are all the simulator's, exactly.
    let fresh = Cli::new(&sim);
    ok(&fresh, &["restore", during.to_str().unwrap(), "--yes"]).await;
    let dump = sim.get_json("/_sim/dump").await;
    let restored = fresh.export_json().await;
    let mut partial = 0;
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        let sim_records: BTreeMap<String, &Value> = dump[collection]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (key_of(collection, r), r))
            .collect();
        for r in restored[collection].as_array().unwrap() {
            assert_eq!(
                Some(&r),
                sim_records.get(&key_of(collection, r)),
                "{collection}"
            );
            partial += 1;
        }
    }
    assert!(partial > 100, "{partial}");

    let output = import.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let store = cli.export_json().await;

    // After the import, a backup restored into a fresh directory equals the store.
    let after = cli.data_dir.path().join("after.db");
    ok(&cli, &["backup", "--out", after.to_str().unwrap()]).await;
    let second = Cli::new(&sim);
    ok(&second, &["restore", after.to_str().unwrap(), "--yes"]).await;
    assert_eq!(second.export_json().await, store);

    // A foreign file, another program's database, a damaged backup: refused, nothing replaced.
    let scratch = cli.data_dir.path();
    let text = scratch.join("notes.txt");
    std::fs::write(&text, "not a database ".repeat(20)).unwrap();
    let damaged = scratch.join("damaged.db");
    let mut bytes = std::fs::read(&after).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 3..len / 2] {
        *b = 0x5a;
    }
    std::fs::write(&damaged, &bytes).unwrap();
    // Without --yes and without a terminal it asks for --yes and replaces nothing.
    let unconfirmed = fresh
        .run(&["restore", after.to_str().unwrap()], MINUTE)
        .await;
    assert!(!unconfirmed.status.success());
    assert!(
        unconfirmed.stderr.contains("--yes"),
        "{}",
        unconfirmed.stderr
    );
    for (file, why) in [(&text, "not an SQLite database"), (&damaged, "damaged")] {
        let refused = fresh
            .run(&["restore", file.to_str().unwrap(), "--yes"], MINUTE)
            .await;
        assert!(!refused.status.success(), "{}", refused.stdout);
        assert!(
            refused.stderr.contains(why) && refused.stderr.contains(file.to_str().unwrap()),
            "{}",
            refused.stderr
        );
        assert_eq!(fresh.export_json().await, restored, "nothing replaced");
    }
    // A restore over an existing store keeps the replaced one aside.
    let over = ok(&fresh, &["restore", after.to_str().unwrap(), "--yes"]).await;
    assert!(over.contains("kept as"), "{over}");
    assert_eq!(fresh.export_json().await, store);
    let aside: Vec<_> = std::fs::read_dir(fresh.data_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vitaltrends.db.replaced-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
}
