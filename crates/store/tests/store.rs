//! The store against a real SQLite file: idempotent upserts that respect `updated_at`, deletes,
//! checkpoints that land with their page, day-by-day reads and exports.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use serde_json::json;
use store::{Checkpoint, ImportWindow, Metric, RunOutcome, Store};
use whoop::{Collection, Cycle, Fetched, Recovery, Sleep, Workout};

fn fetched<T: serde::de::DeserializeOwned>(raw: serde_json::Value) -> Fetched<T> {
    Fetched {
        record: serde_json::from_value(raw.clone()).unwrap(),
        raw,
    }
}

fn cycle(id: i64, start: &str, updated_at: &str, strain: Option<f64>) -> Fetched<Cycle> {
    let mut v = json!({
        "id": id, "user_id": 7, "created_at": start, "updated_at": updated_at, "start": start,
        "timezone_offset": "-05:00", "score_state": "PENDING_SCORE"
    });
    if let Some(strain) = strain {
        v["score_state"] = json!("SCORED");
        v["score"] = json!({"strain": strain, "kilojoule": 9000.0, "average_heart_rate": 60, "max_heart_rate": 150});
    }
    fetched(v)
}

fn recovery(
    cycle_id: i64,
    sleep_id: &str,
    updated_at: &str,
    score: Option<f64>,
) -> Fetched<Recovery> {
    let mut v = json!({
        "cycle_id": cycle_id, "sleep_id": sleep_id, "user_id": 7,
        "created_at": "2024-01-01T00:00:00.000Z", "updated_at": updated_at,
        "score_state": "PENDING_SCORE"
    });
    if let Some(score) = score {
        v["score_state"] = json!("SCORED");
        v["score"] = json!({"user_calibrating": false, "recovery_score": score,
            "resting_heart_rate": 55.0, "hrv_rmssd_milli": 61.5});
    }
    fetched(v)
}

fn sleep(id: &str, cycle_id: i64, start: &str, end: &str, nap: bool) -> Fetched<Sleep> {
    fetched(json!({
        "id": id, "cycle_id": cycle_id, "user_id": 7, "created_at": end, "updated_at": end,
        "start": start, "end": end, "timezone_offset": "-05:00", "nap": nap, "score_state": "SCORED",
        "score": {"stage_summary": {"total_in_bed_time_milli": 30000000, "total_awake_time_milli": 1000000,
            "total_no_data_time_milli": 0, "total_light_sleep_time_milli": 14400000,
            "total_slow_wave_sleep_time_milli": 5400000, "total_rem_sleep_time_milli": 7200000,
            "sleep_cycle_count": 4, "disturbance_count": 9},
          "sleep_needed": {"baseline_milli": 27000000, "need_from_sleep_debt_milli": 0,
            "need_from_recent_strain_milli": 0, "need_from_recent_nap_milli": 0},
          "sleep_performance_percentage": 91.0}
    }))
}

async fn file_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("vitaltrends.db"))
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn upserts_are_idempotent_and_never_go_back_in_time() {
    let (_dir, store) = file_store().await;
    let v1 = cycle(
        1,
        "2024-03-05T04:00:00.000Z",
        "2024-03-05T12:00:00.000Z",
        Some(8.0),
    );
    let v2 = cycle(
        1,
        "2024-03-05T04:00:00.000Z",
        "2024-03-05T18:00:00.000Z",
        Some(12.5),
    );

    let first = store
        .upsert(&[
            v1.clone(),
            cycle(
                2,
                "2024-03-06T04:00:00.000Z",
                "2024-03-06T12:00:00.000Z",
                None,
            ),
        ])
        .await
        .unwrap();
    assert_eq!(first.written, 2);
    store.upsert(std::slice::from_ref(&v2)).await.unwrap();
    // The older version arriving late (a slow page, an out-of-order webhook) changes nothing.
    let late = store.upsert(&[v1]).await.unwrap();
    assert_eq!((late.written, late.unchanged), (0, 1));
    // The same version again is harmless and counts as unchanged.
    let same = store.upsert(std::slice::from_ref(&v2)).await.unwrap();
    assert_eq!((same.written, same.unchanged), (0, 1));

    assert_eq!(store.counts().await.unwrap().cycle, 2);
    let export = store.export_json().await.unwrap();
    let stored = export["cycle"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == 1)
        .unwrap()
        .clone();
    assert_eq!(stored["score"]["strain"], 12.5);
    assert_eq!(stored["updated_at"], "2024-03-05T18:00:00.000Z");
}

#[tokio::test]
async fn deletes_by_id_and_recovery_by_sleep() {
    let (_dir, store) = file_store().await;
    store
        .upsert(&[sleep(
            "s-1",
            1,
            "2024-03-05T04:00:00.000Z",
            "2024-03-05T12:00:00.000Z",
            false,
        )])
        .await
        .unwrap();
    store
        .upsert(&[recovery(1, "s-1", "2024-03-05T13:00:00.000Z", Some(70.0))])
        .await
        .unwrap();
    store
        .upsert(&[cycle(
            1,
            "2024-03-05T04:00:00.000Z",
            "2024-03-05T12:00:00.000Z",
            Some(8.0),
        )])
        .await
        .unwrap();

    assert!(store.delete_recovery_for_sleep("s-1").await.unwrap());
    assert!(store.delete(Collection::Sleep, "s-1").await.unwrap());
    assert!(
        !store.delete(Collection::Sleep, "s-1").await.unwrap(),
        "already gone"
    );
    assert!(store.delete(Collection::Cycle, "1").await.unwrap());
    assert!(!store
        .delete(Collection::Cycle, "not-a-number")
        .await
        .unwrap());
    assert_eq!(store.counts().await.unwrap().total(), 0);
}

#[tokio::test]
async fn a_recovery_moving_to_another_cycle_replaces_the_old_row() {
    let (_dir, store) = file_store().await;
    store
        .upsert(&[recovery(1, "s-1", "2024-03-05T13:00:00.000Z", Some(70.0))])
        .await
        .unwrap();
    store
        .upsert(&[recovery(2, "s-1", "2024-03-05T14:00:00.000Z", Some(71.0))])
        .await
        .unwrap();
    let export = store.export_json().await.unwrap();
    let recoveries = export["recovery"].as_array().unwrap();
    assert_eq!(recoveries.len(), 1);
    assert_eq!(recoveries[0]["cycle_id"], 2);
    // And the older one arriving afterwards does not bring the old row back.
    let late = store
        .upsert(&[recovery(1, "s-1", "2024-03-05T13:00:00.000Z", Some(70.0))])
        .await
        .unwrap();
    assert_eq!(late.unchanged, 1);
    assert_eq!(store.counts().await.unwrap().recovery, 1);
}

#[tokio::test]
async fn checkpoints_land_with_their_page_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vitaltrends.db");
    let window = ImportWindow {
        start: Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()),
        end: None,
    };
    {
        let store = Store::open(&path).await.unwrap();
        assert_eq!(
            store
                .load_checkpoint(Collection::Cycle, &window)
                .await
                .unwrap(),
            None
        );
        let mut cp = Checkpoint::new(Collection::Cycle, window);
        cp.next_token = Some("page-2".into());
        cp.pages = 1;
        cp.records = 1;
        store
            .apply_page(
                &[cycle(
                    1,
                    "2024-03-05T04:00:00.000Z",
                    "2024-03-05T12:00:00.000Z",
                    None,
                )],
                &cp,
            )
            .await
            .unwrap();
        // A checkpoint for the wrong collection is refused and writes nothing.
        let wrong = Checkpoint::new(Collection::Sleep, window);
        assert!(store
            .apply_page(
                &[cycle(
                    2,
                    "2024-03-06T04:00:00.000Z",
                    "2024-03-06T12:00:00.000Z",
                    None
                )],
                &wrong
            )
            .await
            .is_err());
        store.close().await;
    }
    let store = Store::open(&path).await.unwrap();
    let cp = store
        .load_checkpoint(Collection::Cycle, &window)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cp.next_token.as_deref(), Some("page-2"));
    assert_eq!((cp.pages, cp.records, cp.done), (1, 1, false));
    assert_eq!(store.counts().await.unwrap().cycle, 1);
    // Another window of the same collection is independent.
    assert_eq!(
        store
            .load_checkpoint(Collection::Cycle, &ImportWindow::ALL)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn daily_series_uses_local_whoop_days_and_skips_pending() {
    let store = Store::open_in_memory().await.unwrap();
    // Onsets 23:00 and 00:30 local (-05:00) on consecutive nights: consecutive days.
    store
        .upsert(&[
            cycle(
                1,
                "2024-03-05T04:00:00.000Z",
                "2024-03-05T20:00:00.000Z",
                Some(10.0),
            ),
            cycle(
                2,
                "2024-03-06T05:30:00.000Z",
                "2024-03-06T20:00:00.000Z",
                Some(14.0),
            ),
            cycle(
                3,
                "2024-03-07T04:00:00.000Z",
                "2024-03-07T20:00:00.000Z",
                None,
            ),
        ])
        .await
        .unwrap();
    store
        .upsert(&[
            recovery(1, "s-1", "2024-03-05T13:00:00.000Z", Some(80.0)),
            recovery(2, "s-2", "2024-03-06T13:00:00.000Z", Some(30.0)),
            recovery(3, "s-3", "2024-03-07T13:00:00.000Z", None),
        ])
        .await
        .unwrap();
    store
        .upsert(&[
            sleep(
                "s-1",
                1,
                "2024-03-05T04:00:00.000Z",
                "2024-03-05T12:00:00.000Z",
                false,
            ),
            sleep(
                "nap",
                1,
                "2024-03-05T19:00:00.000Z",
                "2024-03-05T19:40:00.000Z",
                true,
            ),
        ])
        .await
        .unwrap();

    let d = |day| NaiveDate::from_ymd_opt(2024, 3, day).unwrap();
    let strain = store
        .daily_series(Metric::DayStrain, d(1), d(31))
        .await
        .unwrap();
    assert_eq!(
        strain.iter().map(|v| (v.day, v.value)).collect::<Vec<_>>(),
        vec![(d(5), 10.0), (d(6), 14.0)]
    );
    let rec = store
        .daily_series(Metric::Recovery, d(1), d(31))
        .await
        .unwrap();
    assert_eq!(
        rec.iter().map(|v| v.value).collect::<Vec<_>>(),
        vec![80.0, 30.0],
        "pending is not a zero"
    );
    let hours = store
        .daily_series(Metric::SleepHours, d(1), d(31))
        .await
        .unwrap();
    assert_eq!(hours.len(), 1, "naps are not the night's sleep");
    assert!((hours[0].value - 7.5).abs() < 1e-9);
    // One read of several metrics: each day carries exactly the metrics asked for.
    let days = store
        .days(d(1), d(31), &[Metric::DayStrain, Metric::Recovery])
        .await
        .unwrap();
    assert_eq!(
        days.iter()
            .map(|x| (x.day, x.get(Metric::DayStrain), x.get(Metric::Recovery)))
            .collect::<Vec<_>>(),
        vec![
            (d(5), Some(10.0), Some(80.0)),
            (d(6), Some(14.0), Some(30.0))
        ]
    );
    assert!(days
        .iter()
        .all(|x| x.get(Metric::Hrv).is_none() && x.stages.is_none()));
    let nights = store
        .days_and_stages(d(1), d(31), &[Metric::SleepPerformance])
        .await
        .unwrap();
    let stages: Vec<_> = nights.iter().filter_map(|x| x.stages).collect();
    assert_eq!(stages.len(), 1, "the main sleep's stages, not the nap's");
    assert!((stages[0].light + stages[0].deep + stages[0].rem - 7.5).abs() < 1e-9);
    assert_eq!(
        store
            .daily_series(Metric::Hrv, d(6), d(6))
            .await
            .unwrap()
            .len(),
        1,
        "range is inclusive"
    );
    assert_eq!(store.days_of_history().await.unwrap(), 3);
}

#[tokio::test]
async fn a_day_read_returns_values_exactly_as_stored_and_the_later_record_of_a_day_wins() {
    let store = Store::open_in_memory().await.unwrap();
    // Two cycles on one local day (a restarted cycle: 01:00 and 03:00 local): the later wins.
    store
        .upsert(&[
            cycle(
                1,
                "2024-03-05T06:00:00.000Z",
                "2024-03-05T20:00:00.000Z",
                Some(10.25),
            ),
            cycle(
                2,
                "2024-03-05T08:00:00.000Z",
                "2024-03-05T21:00:00.000Z",
                Some(13.0123456789),
            ),
        ])
        .await
        .unwrap();
    let mut rec = recovery(2, "s-odd", "2024-03-05T13:00:00.000Z", Some(67.0));
    rec.raw["score"]["hrv_rmssd_milli"] = json!(38.123456);
    rec.raw["score"]["resting_heart_rate"] = json!(51.5);
    rec.record = serde_json::from_value(rec.raw.clone()).unwrap();
    store.upsert(&[rec]).await.unwrap();
    // Stage times that make long fractions of an hour.
    let mut night = sleep(
        "s-odd",
        2,
        "2024-03-05T08:00:00.000Z",
        "2024-03-05T15:00:00.000Z",
        false,
    );
    let (light, deep, rem) = (14_400_123_i64, 5_399_999_i64, 7_200_007_i64);
    let stages = &mut night.raw["score"]["stage_summary"];
    stages["total_light_sleep_time_milli"] = json!(light);
    stages["total_slow_wave_sleep_time_milli"] = json!(deep);
    stages["total_rem_sleep_time_milli"] = json!(rem);
    night.raw["score"]["sleep_needed"]["need_from_sleep_debt_milli"] = json!(1_234_567);
    night.record = serde_json::from_value(night.raw.clone()).unwrap();
    store.upsert(&[night]).await.unwrap();

    let day = NaiveDate::from_ymd_opt(2024, 3, 5).unwrap();
    let read = store
        .days_and_stages(
            day,
            day,
            &[
                Metric::DayStrain,
                Metric::Hrv,
                Metric::RestingHeartRate,
                Metric::SleepHours,
                Metric::SleepNeedHours,
            ],
        )
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    let got = &read[0];
    assert_eq!(got.get(Metric::DayStrain), Some(13.0123456789));
    assert_eq!(got.get(Metric::Hrv), Some(38.123456));
    assert_eq!(got.get(Metric::RestingHeartRate), Some(51.5));
    let hour = 3_600_000.0;
    assert_eq!(
        got.get(Metric::SleepHours),
        Some((light + deep + rem) as f64 / hour)
    );
    assert_eq!(
        got.get(Metric::SleepNeedHours),
        Some((27_000_000 + 1_234_567) as f64 / hour)
    );
    let stages = got.stages.unwrap();
    assert_eq!(stages.light, light as f64 / hour);
    assert_eq!(stages.deep, deep as f64 / hour);
    assert_eq!(stages.need, Some((27_000_000 + 1_234_567) as f64 / hour));
}

#[tokio::test]
async fn today_tells_scored_from_pending_from_unscorable() {
    let (_dir, store) = file_store().await;
    // The newest cycle's night: WHOOP has the recovery and the sleep but could not score them.
    store
        .upsert(&[cycle(
            201,
            "2024-03-05T04:00:00.000Z",
            "2024-03-05T20:00:00.000Z",
            Some(8.5),
        )])
        .await
        .unwrap();
    let unscorable_recovery: Fetched<Recovery> = fetched(json!({
        "cycle_id": 201, "sleep_id": "night-201", "user_id": 7,
        "created_at": "2024-03-05T12:00:00.000Z", "updated_at": "2024-03-05T12:00:00.000Z",
        "score_state": "UNSCORABLE"
    }));
    let unscorable_sleep: Fetched<Sleep> = fetched(json!({
        "id": "night-201", "cycle_id": 201, "user_id": 7,
        "created_at": "2024-03-05T12:00:00.000Z", "updated_at": "2024-03-05T12:00:00.000Z",
        "start": "2024-03-05T04:00:00.000Z", "end": "2024-03-05T11:00:00.000Z",
        "timezone_offset": "-05:00", "nap": false, "score_state": "UNSCORABLE"
    }));
    store.upsert(&[unscorable_recovery]).await.unwrap();
    store.upsert(&[unscorable_sleep]).await.unwrap();
    let today = store.today().await.unwrap();
    for metric in [today.recovery, today.hrv, today.resting_hr] {
        assert_eq!(
            (metric.value, metric.pending, metric.unscorable),
            (None, false, true)
        );
    }
    assert!(today.sleep.unscorable && !today.sleep.pending);
    assert_eq!(today.sleep.performance, None);
    let strain = today.day_strain;
    assert_eq!(
        (strain.value, strain.pending, strain.unscorable),
        (Some(8.5), false, false)
    );

    // A newer cycle WHOOP is still scoring, its night not in yet: pending, not unscorable.
    store
        .upsert(&[cycle(
            202,
            "2024-03-06T04:00:00.000Z",
            "2024-03-06T05:00:00.000Z",
            None,
        )])
        .await
        .unwrap();
    let today = store.today().await.unwrap();
    for metric in [today.recovery, today.day_strain] {
        assert_eq!(
            (metric.value, metric.pending, metric.unscorable),
            (None, true, false)
        );
    }
    assert!(today.sleep.pending && !today.sleep.unscorable);
}

#[tokio::test]
async fn the_workout_list_is_newest_first_within_the_range_and_limit() {
    let (_dir, store) = file_store().await;
    let workout = |id: &str, start: &str| -> Fetched<Workout> {
        fetched(json!({
            "id": id, "user_id": 7, "created_at": start, "updated_at": start, "start": start,
            "end": start, "timezone_offset": "-05:00", "sport_name": "running",
            "score_state": "PENDING_SCORE"
        }))
    };
    // Two on March 5 (local), one on March 6, one on March 9; stored out of order.
    store
        .upsert(&[
            workout("mar6", "2024-03-06T18:00:00.000Z"),
            workout("mar5-morning", "2024-03-05T12:00:00.000Z"),
            workout("mar9", "2024-03-09T18:00:00.000Z"),
            workout("mar5-evening", "2024-03-05T23:30:00.000Z"),
        ])
        .await
        .unwrap();
    let day = |d| NaiveDate::from_ymd_opt(2024, 3, d).unwrap();
    let ids = |list: Vec<store::WorkoutSummary>| list.into_iter().map(|w| w.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.workouts(day(1), day(8), 50).await.unwrap()),
        ["mar6", "mar5-evening", "mar5-morning"],
        "newest first, and March 9 is outside the range"
    );
    assert_eq!(
        ids(store.workouts(day(1), day(31), 2).await.unwrap()),
        ["mar9", "mar6"],
        "the limit keeps the newest"
    );
}

#[tokio::test]
async fn exports_json_in_whoop_shape_and_csv_with_typed_columns() {
    let (dir, store) = file_store().await;
    let w: Fetched<Workout> = fetched(json!({
        "id": "w-1", "user_id": 7, "created_at": "2024-03-05T20:00:00.000Z",
        "updated_at": "2024-03-05T20:00:00.000Z", "start": "2024-03-05T18:00:00.000Z",
        "end": "2024-03-05T19:00:00.000Z", "timezone_offset": "-05:00", "sport_name": "running",
        "score_state": "SCORED", "some_future_field": true,
        "score": {"strain": 11.25, "average_heart_rate": 140, "max_heart_rate": 171, "kilojoule": 2000.0,
          "percent_recorded": 100.0, "distance_meter": 10000.0,
          "zone_duration": {"zone_one_milli": 60000}}
    }));
    store.upsert(&[w]).await.unwrap();
    let json = store.export_json().await.unwrap();
    assert_eq!(
        json["workout"][0]["some_future_field"], true,
        "raw JSON kept as WHOOP sent it"
    );
    assert_eq!(json["cycle"], json!([]));
    assert!(json["profile"].is_null());

    let files = store.export_csv(&dir.path().join("csv")).await.unwrap();
    assert_eq!(files.len(), 4);
    let text = std::fs::read_to_string(dir.path().join("csv/workout.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("strain"), "11.25");
    assert_eq!(col("zone_one_milli"), "60000");
    assert_eq!(col("day"), "2024-03-05");
    assert!(!header.contains(&"raw"));
}

#[tokio::test]
async fn sync_runs_and_meta_are_remembered() {
    let store = Store::open_in_memory().await.unwrap();
    assert!(store.last_sync_run(false).await.unwrap().is_none());
    let id = store.start_sync_run("import").await.unwrap();
    assert_eq!(
        store.last_sync_run(false).await.unwrap().unwrap().status,
        store::RunStatus::Running
    );
    store
        .finish_sync_run(
            id,
            &RunOutcome {
                records_written: 10,
                requests: 3,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let failed = store.start_sync_run("catch_up").await.unwrap();
    store
        .finish_sync_run(
            failed,
            &RunOutcome {
                error: Some("offline".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let last_ok = store.last_sync_run(true).await.unwrap().unwrap();
    assert_eq!(
        (last_ok.id, last_ok.records_written, last_ok.requests),
        (id, 10, 3)
    );
    assert!(last_ok.finished_at.unwrap() >= last_ok.started_at - Duration::seconds(1));
    assert_eq!(
        store
            .last_sync_run(false)
            .await
            .unwrap()
            .unwrap()
            .error
            .as_deref(),
        Some("offline")
    );

    store
        .set_meta("connection", "{\"state\":\"connected\"}")
        .await
        .unwrap();
    store
        .set_meta("connection", "{\"state\":\"disconnected\"}")
        .await
        .unwrap();
    assert_eq!(
        store.get_meta("connection").await.unwrap().as_deref(),
        Some("{\"state\":\"disconnected\"}")
    );
    store.delete_meta("connection").await.unwrap();
    assert_eq!(store.get_meta("connection").await.unwrap(), None);
}

#[tokio::test]
async fn delete_all_whoop_data_empties_the_file() {
    let (_dir, store) = file_store().await;
    store
        .upsert(&[cycle(
            1,
            "2024-03-05T04:00:00.000Z",
            "2024-03-05T12:00:00.000Z",
            Some(8.0),
        )])
        .await
        .unwrap();
    store.delete_all_whoop_data().await.unwrap();
    assert_eq!(store.counts().await.unwrap().total(), 0);
    assert!(store.newest_record_time().await.unwrap().is_none());
}

#[tokio::test]
async fn replacing_a_window_leaves_alone_what_changed_after_the_fetch_began() {
    let (_dir, store) = file_store().await;
    let t = |day: u32, hour: u32| format!("2024-03-{day:02}T{hour:02}:00:00.000Z");
    let before = [
        sleep("s-kept", 1, &t(1, 4), &t(1, 12), false),
        sleep("s-deleted-later", 2, &t(2, 4), &t(2, 12), false),
        sleep("s-gone", 3, &t(3, 4), &t(3, 12), true),
    ];
    store.upsert(&before).await.unwrap();
    store
        .upsert(&[recovery(2, "s-deleted-later", &t(2, 13), Some(60.0))])
        .await
        .unwrap();

    // The fetch begins; meanwhile the applier deletes one sleep (and its recovery) and stores a
    // new one.
    let mark = store.change_mark().await.unwrap();
    assert!(store
        .delete_recovery_for_sleep("s-deleted-later")
        .await
        .unwrap());
    assert!(store
        .delete(Collection::Sleep, "s-deleted-later")
        .await
        .unwrap());
    store
        .upsert(&[sleep("s-new", 4, &t(4, 4), &t(4, 12), false)])
        .await
        .unwrap();

    // What the fetch saw: the two older sleeps and the recovery, not the new one; "s-gone"
    // was gone at WHOOP before the fetch.
    let contents = store::WindowContents {
        sleeps: vec![before[0].clone(), before[1].clone()],
        recoveries: vec![recovery(2, "s-deleted-later", &t(2, 13), Some(60.0))],
        ..Default::default()
    };
    let start = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
    let outcome = store.replace_window(start, &contents, mark).await.unwrap();
    assert_eq!(outcome.deleted, 1, "only the sleep WHOOP no longer had");
    let export = store.export_json().await.unwrap();
    let ids: Vec<&str> = export["sleep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"s-kept") && ids.contains(&"s-new"), "{ids:?}");
    assert!(
        !ids.contains(&"s-deleted-later") && !ids.contains(&"s-gone"),
        "{ids:?}"
    );
    assert!(export["recovery"].as_array().unwrap().is_empty());

    // Without later changes the window is WHOOP's exactly.
    let mark = store.change_mark().await.unwrap();
    let outcome = store
        .replace_window(start, &store::WindowContents::default(), mark)
        .await
        .unwrap();
    assert_eq!(outcome.deleted, 2);
}

#[tokio::test]
async fn events_that_did_not_apply_wait_or_are_skipped() {
    let (_dir, store) = file_store().await;
    // Stored to the millisecond, like every time in the store.
    let now = Utc
        .timestamp_millis_opt(Utc::now().timestamp_millis())
        .unwrap();
    let event = r#"{"type":"sleep.updated","id":"s-1","user_id":7,"trace_id":"t"}"#;
    store
        .add_pending_event("sleep.updated", "s-1", event, "WHOOP is not answering", now)
        .await
        .unwrap();
    // The same work again is one pending event, not two.
    store
        .add_pending_event("sleep.updated", "s-1", event, "still not", now)
        .await
        .unwrap();
    store
        .add_skipped_event("workout.updated", "w-1", "{}", "unreadable")
        .await
        .unwrap();
    let summary = store.event_issue_summary(5).await.unwrap();
    assert_eq!((summary.pending, summary.skipped), (1, 1));
    assert_eq!(summary.last_skipped[0].id, "w-1");

    assert!(store
        .due_pending_events(now - Duration::seconds(1))
        .await
        .unwrap()
        .is_empty());
    let due = store.due_pending_events(now).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempts, 2);
    assert_eq!(due[0].event, event);
    let later = now + Duration::minutes(1);
    store
        .retry_pending_event_later(due[0].id, "again", later)
        .await
        .unwrap();
    assert_eq!(store.next_pending_event_at().await.unwrap(), Some(later));
    assert!(store.due_pending_events(now).await.unwrap().is_empty());
    store.resolve_pending_event(due[0].id).await.unwrap();
    let summary = store.event_issue_summary(5).await.unwrap();
    assert_eq!((summary.pending, summary.skipped), (0, 1));
    assert_eq!(store.next_pending_event_at().await.unwrap(), None);
}

#[tokio::test]
async fn a_night_whose_cycle_has_not_arrived_counts_on_its_own_day_once() {
    let store = Store::open_in_memory().await.unwrap();
    let d = |day| NaiveDate::from_ymd_opt(2024, 3, day).unwrap();
    store
        .upsert(&[sleep(
            "s-9",
            9,
            "2024-03-09T04:00:00.000Z",
            "2024-03-09T12:00:00.000Z",
            false,
        )])
        .await
        .unwrap();
    store
        .upsert(&[recovery(9, "s-9", "2024-03-09T13:00:00.000Z", Some(55.0))])
        .await
        .unwrap();
    let wanted = [Metric::Recovery, Metric::SleepHours];
    let before = store.days(d(1), d(31), &wanted).await.unwrap();
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].get(Metric::Recovery), Some(55.0));
    assert!(before[0].get(Metric::SleepHours).is_some());
    let night = before[0].day;

    // The cycle arrives: the same day, still once.
    store
        .upsert(&[cycle(
            9,
            "2024-03-09T04:00:00.000Z",
            "2024-03-09T20:00:00.000Z",
            Some(12.0),
        )])
        .await
        .unwrap();
    let after = store
        .days(
            d(1),
            d(31),
            &[Metric::Recovery, Metric::SleepHours, Metric::DayStrain],
        )
        .await
        .unwrap();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].day, night);
    assert_eq!(after[0].get(Metric::Recovery), Some(55.0));
    assert_eq!(after[0].get(Metric::DayStrain), Some(12.0));
    // A range that ends the day before holds nothing of it.
    let earlier = store
        .days(d(1), night.pred_opt().unwrap(), &wanted)
        .await
        .unwrap();
    assert!(earlier.is_empty(), "{earlier:?}");
}
