//! The import against WHOOP's less tidy shapes of JSON, as the simulator can serve them: `null`
//! where a field is usually left out, `Z` and `+05:30` offsets, `"next_token": ""`, one sport
//! spelled two ways, no body measurement, and paging tokens that expire while an import is
//! paused.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use common::*;
use serde_json::{json, Value};
use sync::events::SystemClock;
use sync::Schedule;
use whoop::types::{normalize_sport_name, parse_timestamp};

fn records<'a>(dump: &'a Value, collection: &str) -> &'a Vec<Value> {
    dump[collection].as_array().expect("a list of records")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_fields_import_and_export_like_absent_ones() {
    let mut config = sim_config(120, 21);
    config.shapes.null_fields = true;
    let host = host(config).await;
    host.connect().await;
    let report = host.engine.sync_now().await.expect("the import completes");
    assert_eq!(report.skipped, 0, "no record was dropped over a null");

    // The simulator really sent the nulls this is about.
    let dump = host.dump().await;
    let sleeps = records(&dump, "sleep");
    let workouts = records(&dump, "workout");
    assert!(sleeps.iter().any(|s| s["nap"].is_null()));
    assert!(workouts.iter().any(|w| w["sport_name"].is_null()));
    assert!(workouts
        .iter()
        .any(|w| w["score"].is_object() && w["score"]["zone_durations"].is_null()));
    assert!(workouts
        .iter()
        .any(|w| w["score"].is_object() && w["score"]["percent_recorded"].is_null()));
    assert!(records(&dump, "recovery")
        .iter()
        .any(|r| r["score"].is_object() && r["score"]["user_calibrating"].is_null()));
    assert!(dump["profile"]["email"].is_null());
    assert!(dump["body_measurement"]["max_heart_rate"].is_null());

    // The store holds every record as WHOOP sent it, and both exports work.
    let export = host.export().await;
    assert_same(&export, &dump, |_, _| false);
    assert_eq!(export["profile"], dump["profile"]);
    assert_eq!(export["body_measurement"], dump["body_measurement"]);
    let dir = tempfile::tempdir().unwrap();
    let files = host.engine.store().export_csv(dir.path()).await.unwrap();
    assert_eq!(files.len(), 4);
    let workout_csv = std::fs::read_to_string(dir.path().join("workout.csv")).unwrap();
    assert_eq!(
        workout_csv.lines().count(),
        workouts.len() + 1,
        "header + rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sport_spelled_two_ways_groups_as_one() {
    let mut config = sim_config(150, 22);
    config.shapes.mixed_sport_casing = true;
    let host = host(config).await;
    host.connect().await;
    host.engine.sync_now().await.unwrap();
    let dump = host.dump().await;
    let names: Vec<&str> = records(&dump, "workout")
        .iter()
        .filter_map(|w| w["sport_name"].as_str())
        .collect();
    assert!(names.iter().any(|n| n.contains(' ')), "{names:?}");
    assert!(names.iter().any(|n| n.contains('_')), "{names:?}");
    // Raw records are kept as sent.
    assert_same(&host.export().await, &dump, |_, _| false);

    // What the dashboard lists groups by one spelling per sport.
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for name in &names {
        *want.entry(normalize_sport_name(name)).or_default() += 1;
    }
    let listed = host
        .engine
        .store()
        .workouts(
            NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2200, 1, 1).unwrap(),
            100_000,
        )
        .await
        .unwrap();
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for workout in &listed {
        *got.entry(workout.sport.clone()).or_default() += 1;
    }
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_and_an_empty_last_token_import_whole() {
    let mut config = sim_config(90, 23);
    config.shapes.offset_timestamps = true;
    config.shapes.empty_last_token = true;
    let host = host(config).await;
    host.connect().await;
    host.engine.sync_now().await.unwrap();
    let dump = host.dump().await;
    let starts: Vec<&str> = records(&dump, "sleep")
        .iter()
        .filter_map(|s| s["start"].as_str())
        .collect();
    assert!(starts.iter().any(|s| s.ends_with("+05:30")));
    assert!(starts.iter().any(|s| s.ends_with('Z')));
    assert_same(&host.export().await, &dump, |_, _| false);
    // Typed times are the same instants, whatever offset they were written with.
    let listed = host
        .engine
        .store()
        .workouts(
            NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2200, 1, 1).unwrap(),
            100_000,
        )
        .await
        .unwrap();
    let by_id: BTreeMap<String, Value> = by_key("workout", &dump["workout"]);
    for workout in &listed {
        let sent = by_id[&workout.id]["start"].as_str().unwrap();
        assert_eq!(Some(workout.start), parse_timestamp(sent), "{sent}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_body_measurement_is_not_an_error() {
    let mut config = sim_config(30, 24);
    config.shapes.no_body_measurement = true;
    let host = host(config).await;
    host.connect().await;
    host.engine.sync_now().await.expect("a 404 body is no body");
    assert!(host.stats().await["requests"]["body_measurement"].as_u64() >= Some(1));
    let dump = host.dump().await;
    assert!(dump["body_measurement"].is_null());
    let export = host.export().await;
    assert!(export["body_measurement"].is_null());
    assert_same(&export, &dump, |_, _| false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_measurement_gone_at_whoop_is_gone_here() {
    let host = host(sim_config(20, 26)).await;
    host.connect().await;
    host.engine.sync_now().await.unwrap();
    assert!(host.export().await["body_measurement"].is_object());

    // The person removed it; an import that runs again (here: as if it never finished) reads
    // WHOOP's 404 as "none" and drops the old copy.
    host.post("/_sim/shapes", json!({"no_body_measurement": true}))
        .await;
    host.engine
        .store()
        .delete_meta("import_complete")
        .await
        .unwrap();
    host.engine.sync_now().await.expect("a 404 body is no body");
    assert!(host.export().await["body_measurement"].is_null());
}

/// A laptop closed for days mid-import: the saved `next_token` has expired at WHOOP (400). The
/// window is read again from its start and the import completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_saved_paging_token_restarts_its_window() {
    // Every collection pages through its chain several times.
    let host = host_with(
        sim_config(400, 25),
        Arc::new(SystemClock),
        Schedule::default(),
    )
    .await;
    host.connect().await;
    host.post("/_sim/faults", json!({"latency_ms": 40})).await;

    let engine = host.engine.clone();
    let import = tokio::spawn(async move { engine.sync_now().await });
    let saved = loop {
        let checkpoints = host.engine.store().checkpoints().await.unwrap();
        if let Some(c) = checkpoints
            .into_iter()
            .find(|c| c.next_token.is_some() && !c.done)
        {
            break c;
        }
        assert!(
            !import.is_finished(),
            "stopped before any window was half read"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // The process stops here (each page and its checkpoint are one transaction).
    import.abort();
    let _ = import.await;
    host.post("/_sim/faults", json!({"latency_ms": 0})).await;
    host.post("/_sim/expire-paging-tokens", json!({})).await;

    let report = host
        .engine
        .sync_now()
        .await
        .expect("the resumed import completes");
    assert_eq!(report.kind, "import");
    assert_same(&host.export().await, &host.dump().await, |_, _| false);
    let after = host.engine.store().checkpoints().await.unwrap();
    assert!(after.iter().all(|c| c.done && c.next_token.is_none()));
    let same_window = after
        .iter()
        .find(|c| c.collection == saved.collection && c.window == saved.window)
        .expect("the interrupted window's checkpoint");
    assert!(same_window.pages > saved.pages, "it was read again");
}
