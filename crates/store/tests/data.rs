//! The person's data as files, against real SQLite files: exports with a day range (CSV, JSON,
//! Parquet read back with the parquet crate's own reader), backups taken while another task
//! writes, restores that refuse damaged and foreign files and keep the replaced database, a
//! rebuild of the typed tables from the raw JSON, deleting a range of days and the completeness
//! of each WHOOP day.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, Date32Array, Float64Array, TimestampMillisecondArray};
use arrow_schema::{DataType, TimeUnit};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use serde_json::json;
use sqlx::Row;
use store::{Completeness, DayRange, ExportFormat, Store};
use whoop::types::format_timestamp;
use whoop::{Cycle, Fetched, Recovery, Sleep, Workout};

fn fetched<T: serde::de::DeserializeOwned>(raw: serde_json::Value) -> Fetched<T> {
    Fetched {
        record: serde_json::from_value(raw.clone()).unwrap(),
        raw,
    }
}

/// What `days` of a person's history look like: a cycle, main sleep and recovery a day, a nap
/// and a workout some days, some records pending or unscorable, an east-of-UTC offset on some
/// days (so local days and UTC dates differ).
struct History {
    cycles: Vec<Fetched<Cycle>>,
    sleeps: Vec<Fetched<Sleep>>,
    recoveries: Vec<Fetched<Recovery>>,
    workouts: Vec<Fetched<Workout>>,
}

const FIRST: (i32, u32, u32) = (2024, 1, 1);

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(FIRST.0, FIRST.1, FIRST.2).unwrap()
}

fn history(days: i64) -> History {
    let mut h = History {
        cycles: vec![],
        sleeps: vec![],
        recoveries: vec![],
        workouts: vec![],
    };
    for d in 0..days {
        let offset = if d % 3 == 0 { "+05:30" } else { "-05:00" };
        let hours = if d % 3 == 0 { 5.5 } else { -5.0 };
        // Onset at 23:00 local the evening before the day.
        let day = first_day() + Duration::days(d);
        let local_onset = day.and_hms_opt(0, 0, 0).unwrap() - Duration::hours(1);
        let start = Utc.from_utc_datetime(&local_onset) - Duration::minutes((hours * 60.0) as i64);
        let end = start + Duration::hours(24);
        let wake = start + Duration::hours(8);
        let t = |x: chrono::DateTime<Utc>| format_timestamp(&x);
        let id = 1000 + d;
        let sleep_id = format!("00000000-0000-4000-8000-{:012}", d);
        let unscorable = d % 17 == 5;
        let pending = d == days - 1;
        let state = if pending {
            "PENDING_SCORE"
        } else if unscorable {
            "UNSCORABLE"
        } else {
            "SCORED"
        };
        let mut cycle = json!({"id": id, "user_id": 7, "created_at": t(start), "updated_at": t(wake),
            "start": t(start), "timezone_offset": offset, "score_state": if pending {"PENDING_SCORE"} else {"SCORED"}});
        if !pending {
            cycle["end"] = json!(t(end));
            cycle["score"] = json!({"strain": 5.0 + (d % 13) as f64 * 0.731, "kilojoule": 8000.0 + d as f64,
                "average_heart_rate": 60 + d % 9, "max_heart_rate": 150 + d % 20});
        }
        h.cycles.push(fetched(cycle));
        let mut sleep = json!({"id": sleep_id, "cycle_id": id, "v1_id": 500 + d, "user_id": 7,
            "created_at": t(wake), "updated_at": t(wake), "start": t(start), "end": t(wake),
            "timezone_offset": offset, "nap": false, "score_state": state});
        if state == "SCORED" {
            sleep["score"] = json!({"stage_summary": {"total_in_bed_time_milli": 28800000,
                "total_awake_time_milli": 1800000 + d, "total_no_data_time_milli": 0,
                "total_light_sleep_time_milli": 14400000, "total_slow_wave_sleep_time_milli": 5400000,
                "total_rem_sleep_time_milli": 7200000, "sleep_cycle_count": 4, "disturbance_count": d % 11},
              "sleep_needed": {"baseline_milli": 27000000, "need_from_sleep_debt_milli": 100 * d,
                "need_from_recent_strain_milli": 0, "need_from_recent_nap_milli": 0},
              "respiratory_rate": 15.25, "sleep_performance_percentage": 80.0 + (d % 20) as f64,
              "sleep_consistency_percentage": 70.5, "sleep_efficiency_percentage": 91.125});
        }
        h.sleeps.push(fetched(sleep));
        let mut recovery = json!({"cycle_id": id, "sleep_id": sleep_id, "user_id": 7,
            "created_at": t(wake), "updated_at": t(wake), "score_state": state});
        if state == "SCORED" {
            recovery["score"] = json!({"user_calibrating": d < 3, "recovery_score": (d * 7 % 100) as f64,
                "resting_heart_rate": 52.0, "hrv_rmssd_milli": 40.0 + (d % 30) as f64 * 1.5,
                "spo2_percentage": 95.5, "skin_temp_celsius": 33.7});
        }
        h.recoveries.push(fetched(recovery));
        if d % 2 == 0 {
            let ws = start + Duration::hours(18);
            h.workouts.push(fetched(json!({"id": format!("10000000-0000-4000-8000-{:012}", d),
                "user_id": 7, "created_at": t(ws), "updated_at": t(ws + Duration::hours(1)),
                "start": t(ws), "end": t(ws + Duration::hours(1)), "timezone_offset": offset,
                "sport_name": "running", "sport_id": 0, "score_state": "SCORED",
                "score": {"strain": 11.5, "average_heart_rate": 140, "max_heart_rate": 180,
                  "kilojoule": 2000.0, "percent_recorded": 100.0, "distance_meter": 8000.0 + d as f64,
                  "zone_durations": {"zone_two_milli": 1200000, "zone_three_milli": 600000}}})));
        }
        if d % 5 == 1 {
            let ns = start + Duration::hours(15);
            h.sleeps.push(fetched(
                json!({"id": format!("20000000-0000-4000-8000-{:012}", d),
                "cycle_id": id, "user_id": 7, "created_at": t(ns), "updated_at": t(ns),
                "start": t(ns), "end": t(ns + Duration::minutes(30)), "timezone_offset": offset,
                "nap": true, "score_state": "PENDING_SCORE"}),
            ));
        }
    }
    h
}

async fn filled(days: i64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("vitaltrends.db"))
        .await
        .unwrap();
    let h = history(days);
    store.upsert(&h.cycles).await.unwrap();
    store.upsert(&h.sleeps).await.unwrap();
    store.upsert(&h.recoveries).await.unwrap();
    store.upsert(&h.workouts).await.unwrap();
    (dir, store)
}

/// Every row of the data tables as JSON text, sorted: two stores are equal when these are.
async fn dump(path: &Path) -> BTreeSet<String> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", path.display()))
        .await
        .unwrap();
    let mut out = BTreeSet::new();
    for table in [
        "cycle",
        "sleep",
        "recovery",
        "workout",
        "profile",
        "body_measurement",
    ] {
        let columns: Vec<String> =
            sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(&pool)
                .await
                .unwrap();
        let list = columns
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT json_array('{table}', {list}) FROM {table}"
        ))
        .fetch_all(&pool)
        .await
        .unwrap();
        for row in rows {
            out.insert(row.get::<String, _>(0));
        }
    }
    pool.close().await;
    out
}

fn no_progress() -> impl Fn(store::ExportProgress) + Send + Sync {
    |_| {}
}

#[tokio::test]
async fn parquet_has_typed_columns_and_exactly_the_range() {
    let (dir, store) = filled(40).await;
    let from = first_day() + Duration::days(15);
    let to = first_day() + Duration::days(24);
    let range = DayRange::new(Some(from), Some(to)).unwrap();
    let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reports.clone();
    let out = dir.path().join("parquet");
    let files = store
        .export_to(ExportFormat::Parquet, &out, &range, &move |p| {
            seen.lock().unwrap().push(p)
        })
        .await
        .unwrap();
    assert_eq!(files.len(), 4);
    let reports = reports.lock().unwrap().clone();
    let last = reports.last().unwrap();
    assert_eq!(last.done, last.total);
    assert!(reports.windows(2).all(|w| w[0].done <= w[1].done));

    let read = |name: &str| {
        let file = std::fs::File::open(out.join(name)).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        reader.map(|b| b.unwrap()).collect::<Vec<_>>()
    };
    let cycles = read("cycle.parquet");
    let schema = cycles[0].schema();
    assert_eq!(
        schema.field_with_name("start").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(
        schema.field_with_name("day").unwrap().data_type(),
        &DataType::Date32
    );
    assert_eq!(
        schema.field_with_name("strain").unwrap().data_type(),
        &DataType::Float64
    );
    assert_eq!(
        schema.field_with_name("id").unwrap().data_type(),
        &DataType::Int64
    );
    let rows: usize = cycles.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 10, "one cycle per day of the range");

    // Values equal the store's, day by day.
    let csv_dir = dir.path().join("csv");
    store
        .export_to(ExportFormat::Csv, &csv_dir, &range, &no_progress())
        .await
        .unwrap();
    let mut csv = csv::Reader::from_path(csv_dir.join("cycle.csv")).unwrap();
    let headers = csv.headers().unwrap().clone();
    let csv_rows: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    let batch = &cycles[0];
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let days = batch
        .column_by_name("day")
        .unwrap()
        .as_any()
        .downcast_ref::<Date32Array>()
        .unwrap();
    let starts = batch
        .column_by_name("start")
        .unwrap()
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .unwrap();
    let strains = batch
        .column_by_name("strain")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    for (i, row) in csv_rows.iter().enumerate() {
        let day = days.value_as_date(i).unwrap();
        assert_eq!(row[col("day")], day.to_string());
        assert!(day >= from && day <= to);
        let start = starts.value_as_datetime(i).unwrap().and_utc();
        assert_eq!(row[col("start")], format_timestamp(&start));
        assert_eq!(row[col("strain")].parse::<f64>().unwrap(), strains.value(i));
    }

    // Recoveries carry their cycle's day; the unscorable one has no score.
    let recoveries = read("recovery.parquet");
    let batch = &recoveries[0];
    assert_eq!(batch.num_rows(), 10);
    assert_eq!(
        batch
            .schema()
            .field_with_name("user_calibrating")
            .unwrap()
            .data_type(),
        &DataType::Boolean
    );
    let scores = batch
        .column_by_name("recovery_score")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    assert_eq!(scores.null_count(), 1, "day 22 (17 * 1 + 5) is unscorable");
}

#[tokio::test]
async fn json_and_csv_exports_hold_exactly_the_days_of_the_range() {
    let (dir, store) = filled(30).await;
    let all = store.export_json().await.unwrap();
    assert_eq!(all["cycle"].as_array().unwrap().len(), 30);
    let from = first_day() + Duration::days(3);
    let to = first_day() + Duration::days(5);
    let range = DayRange::new(Some(from), Some(to)).unwrap();
    let part = store
        .export_json_range(&range, &no_progress())
        .await
        .unwrap();
    let ids: Vec<i64> = part["cycle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![1005, 1004, 1003],
        "newest first, in WHOOP's shape"
    );
    assert_eq!(part["recovery"].as_array().unwrap().len(), 3);
    assert_eq!(part["workout"].as_array().unwrap().len(), 1, "day 4 only");
    // Each record is exactly what was stored.
    let stored = &all["cycle"].as_array().unwrap()[30 - 1 - 4];
    assert_eq!(&part["cycle"][1], stored);

    let files = store
        .export_csv_range(&dir.path().join("csv"), &range, &no_progress())
        .await
        .unwrap();
    let mut sleep = csv::Reader::from_path(&files[1]).unwrap();
    let n = sleep.records().count();
    assert_eq!(n, 3, "three main sleeps; no nap on days 3 to 5");

    assert!(DayRange::new(Some(to), Some(from)).is_err());
}

#[tokio::test]
async fn a_backup_taken_while_writing_restores_to_an_equal_store() {
    let (dir, store) = filled(60).await;
    // Another task keeps writing new days while the backup runs.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let more = history(120);
            for chunk in more.cycles[60..].chunks(5) {
                store.upsert(chunk).await.unwrap();
            }
        })
    };
    let backup = dir.path().join("backups/vitaltrends-backup.db");
    let info = store.backup_to(&backup).await.unwrap();
    writer.await.unwrap();
    assert!(info.counts.cycle >= 60, "{:?}", info.counts);
    assert_eq!(info.schema_version, store::known_schema_version());

    // The backup is one consistent snapshot: restored elsewhere it opens and passes its check.
    let checked = store::check_backup(&backup).await.unwrap();
    assert_eq!(checked, info);

    // Once writing has stopped, a backup restored into a fresh data directory equals the store.
    let final_backup = dir.path().join("final.db");
    store.backup_to(&final_backup).await.unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let target = fresh.path().join("vitaltrends.db");
    let outcome = store::restore_backup(&target, &final_backup).await.unwrap();
    assert_eq!(outcome.kept_aside, None);
    store.close().await;
    assert_eq!(
        dump(&target).await,
        dump(&dir.path().join("vitaltrends.db")).await
    );
    let restored = Store::open(&target).await.unwrap();
    assert_eq!(restored.counts().await.unwrap().cycle, 120);
}

#[tokio::test]
async fn damaged_and_foreign_files_are_refused_and_nothing_is_replaced() {
    let (dir, store) = filled(20).await;
    let good = dir.path().join("good.db");
    store.backup_to(&good).await.unwrap();
    let target_dir = tempfile::tempdir().unwrap();
    let target = target_dir.path().join("vitaltrends.db");
    let existing = Store::open(&target).await.unwrap();
    existing.upsert(&history(3).cycles).await.unwrap();
    existing.close().await;
    let before = dump(&target).await;

    // Not a database at all.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is not a database, just some notes".repeat(10)).unwrap();
    // Another program's SQLite database.
    let foreign = dir.path().join("other.db");
    {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", foreign.display()))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    // A VitalTrends backup with damaged pages.
    let damaged = dir.path().join("damaged.db");
    let mut bytes = std::fs::read(&good).unwrap();
    let page = 4096;
    assert!(bytes.len() > 6 * page);
    for b in &mut bytes[2 * page + 100..5 * page] {
        *b = 0x5a;
    }
    std::fs::write(&damaged, &bytes).unwrap();
    // From a future VitalTrends.
    let newer = dir.path().join("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", newer.display()))
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (99990101, 'future', 1, x'00', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }

    for (file, expected) in [
        (&text, "not an SQLite database"),
        (&foreign, "without VitalTrends' tables"),
        (&damaged, "damaged"),
        (&newer, "newer VitalTrends"),
    ] {
        let err = store::restore_backup(&target, file).await.unwrap_err();
        assert_eq!(err.code(), "not_a_backup", "{err}");
        let message = err.to_string();
        assert!(message.contains(expected), "{}: {message}", file.display());
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert_eq!(
            dump(&target).await,
            before,
            "nothing replaced after {message}"
        );
        let left: Vec<_> = std::fs::read_dir(target_dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("vitaltrends.db-"))
            .collect();
        assert_eq!(left, vec!["vitaltrends.db"], "no leftovers after {message}");
    }

    // Not while another process (here another open store) has the database open.
    let open_elsewhere = Store::open(&target).await.unwrap();
    let err = store::restore_backup(&target, &good).await.unwrap_err();
    assert_eq!(err.code(), "in_use", "{err}");
    open_elsewhere.close().await;
    assert_eq!(dump(&target).await, before);

    // The good one replaces it, and the replaced database is kept aside, unchanged.
    let outcome = store::restore_backup(&target, &good).await.unwrap();
    let aside = outcome.kept_aside.expect("the old database kept aside");
    assert!(aside
        .file_name()
        .unwrap()
        .to_string_lossy()
        .contains(".replaced-"));
    assert_eq!(dump(&aside).await, before);
    assert_eq!(outcome.info.counts.cycle, 20);
    let restored = Store::open(&target).await.unwrap();
    assert_eq!(restored.counts().await.unwrap().cycle, 20);
}

#[tokio::test]
async fn rebuild_from_raw_json_gives_back_the_same_store() {
    let (dir, store) = filled(50).await;
    let db = dir.path().join("vitaltrends.db");
    let original = dump(&db).await;
    // Typed columns damaged or from an older derivation: the raw JSON still knows.
    {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE cycle SET strain = NULL, day = '1999-01-01' WHERE id % 4 = 0")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE workout SET sport_name = 'RUNNING ', distance_meter = 0")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE recovery SET recovery_score = -1")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    assert_ne!(dump(&db).await, original);
    let counts = store.rebuild().await.unwrap();
    assert_eq!(counts, store.counts().await.unwrap());
    assert_eq!(counts.cycle, 50);
    let rebuilt = dump(&db).await;
    let lost: Vec<_> = original.difference(&rebuilt).take(2).collect();
    let gained: Vec<_> = rebuilt.difference(&original).take(2).collect();
    assert!(
        lost.is_empty() && gained.is_empty(),
        "lost {lost:?}\ngained {gained:?}"
    );
}

#[tokio::test]
async fn completeness_per_day_and_deleting_a_range() {
    let (dir, store) = filled(30).await;
    let day = |d: i64| first_day() + Duration::days(d);
    let calendar = store.completeness(day(0), day(34)).await.unwrap();
    assert_eq!(calendar.len(), 35);
    assert_eq!(calendar[0].state, Completeness::Scored);
    assert_eq!(calendar[5].state, Completeness::Unscorable, "17 * 0 + 5");
    assert_eq!(calendar[22].state, Completeness::Unscorable);
    assert_eq!(
        calendar[29].state,
        Completeness::Pending,
        "the newest night"
    );
    assert_eq!(calendar[30].state, Completeness::Missing);
    assert_eq!(calendar[34].state, Completeness::Missing);

    let deleted = store
        .delete_range(&DayRange::new(Some(day(10)), Some(day(12))).unwrap())
        .await
        .unwrap();
    assert_eq!(deleted.cycle, 3);
    assert_eq!(deleted.recovery, 3);
    assert_eq!(deleted.sleep, 3 + 1, "day 11 had a nap");
    assert_eq!(deleted.workout, 2, "days 10 and 12");
    let calendar = store.completeness(day(9), day(13)).await.unwrap();
    let states: Vec<Completeness> = calendar.iter().map(|d| d.state).collect();
    assert_eq!(
        states,
        vec![
            Completeness::Scored,
            Completeness::Missing,
            Completeness::Missing,
            Completeness::Missing,
            Completeness::Scored
        ]
    );
    assert_eq!(store.counts().await.unwrap().cycle, 27);
    assert!(store.delete_range(&DayRange::ALL).await.is_err());
    let summary = store.data_summary().await.unwrap();
    assert_eq!(summary.first_day, Some(day(0)));
    assert_eq!(summary.last_day, Some(day(29)));
    assert!(summary.size_bytes > 0);

    // The newest cycle is still open (day 29): its night not yet in is pending, not missing.
    // A closed day without its night (day 28) is missing.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("vitaltrends.db").display()
    ))
    .await
    .unwrap();
    for d in [28, 29] {
        sqlx::query("DELETE FROM recovery WHERE cycle_id = ?")
            .bind(1000 + d)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM sleep WHERE cycle_id = ? AND NOT nap")
            .bind(1000 + d)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    let calendar = store.completeness(day(28), day(29)).await.unwrap();
    assert_eq!(calendar[0].sleep, Completeness::Missing);
    assert_eq!(calendar[0].state, Completeness::Missing);
    assert_eq!(calendar[1].sleep, Completeness::Pending);
    assert_eq!(calendar[1].recovery, Completeness::Pending);
    assert_eq!(calendar[1].state, Completeness::Pending);
}
