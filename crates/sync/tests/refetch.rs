//! Re-fetching a range of days against the simulator: deleted days come back, a record WHOOP
//! deleted inside the range goes, one it deleted outside the range stays (the job replaces
//! exactly the range), and two requests waiting in the queue run as one job over both ranges.

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::*;
use serde_json::json;
use store::day::cycle_day;
use store::{Completeness, DayRange};
use sync::events::{EngineEvent, JobKind};
use sync::Enqueued;
use whoop::types::parse_timestamp;

/// The WHOOP day the store gives each main sleep, from the completeness read.
async fn days(host: &Host) -> Vec<NaiveDate> {
    let last = host
        .engine
        .store()
        .data_summary()
        .await
        .unwrap()
        .last_day
        .unwrap();
    let first = last - chrono::Duration::days(80);
    host.engine
        .store()
        .completeness(first, last)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.cycle != Completeness::Missing)
        .map(|d| d.day)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refetch_replaces_exactly_the_days_asked_for() {
    let host = host(sim_config(60, 31)).await;
    host.connect().await;
    host.engine.sync_now().await.unwrap();
    let days = days(&host).await;
    let (from, to) = (days[20], days[24]);

    // Locally lost days, and at WHOOP a sleep deleted inside the range and one outside it.
    let store = host.engine.store();
    let deleted = store
        .delete_range(&DayRange::new(Some(from), Some(to)).unwrap())
        .await
        .unwrap();
    assert!(deleted.cycle >= 5, "{deleted:?}");
    let calendar = store.completeness(from, to).await.unwrap();
    assert!(calendar.iter().all(|d| d.state == Completeness::Missing));

    let dump = host.dump().await;
    // The main sleep of a day, its day worked out from WHOOP's own fields.
    let sleep_on = |day: NaiveDate| {
        dump["sleep"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                let start = parse_timestamp(s["start"].as_str().unwrap()).unwrap();
                s["nap"] != true && cycle_day(start, s["timezone_offset"].as_str().unwrap()) == day
            })
            .map(|s| s["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let inside = sleep_on(days[22]);
    let outside = sleep_on(days[40]);
    let outside_cycle = dump["sleep"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == outside.as_str())
        .unwrap()["cycle_id"]
        .clone();
    for id in [&inside, &outside] {
        host.post("/_sim/delete", json!({"collection": "sleep", "id": id}))
            .await;
    }

    let report = host.engine.refetch_now(from, to).await.unwrap();
    assert!(report.written.cycle >= 5, "{report:?}");
    let after = host.export().await;
    let now = host.dump().await;
    // Everything WHOOP has is here, except the sleep deleted outside the range (its recovery,
    // and its cycle, which WHOOP re-scored), which a re-fetch of other days does not touch.
    assert_same(&after, &now, |collection, r| {
        (collection == "sleep" && r["id"] == outside.as_str())
            || (collection == "recovery" && r["sleep_id"] == outside.as_str())
            || (collection == "cycle" && r["id"] == outside_cycle)
    });
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["sleep"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!ids(&after).contains(&inside), "gone at WHOOP, gone here");
    assert!(
        ids(&after).contains(&outside),
        "outside the range, untouched"
    );
    let calendar = store.completeness(from, to).await.unwrap();
    assert!(
        calendar.iter().all(|d| d.cycle != Completeness::Missing),
        "{calendar:?}"
    );

    assert!(host.engine.refetch_now(to, from).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_waiting_refetches_run_as_one_job_over_both_ranges() {
    let host = host(sim_config(40, 32)).await;
    host.connect().await;
    host.engine.sync_now().await.unwrap();
    let days = days(&host).await;
    let store = host.engine.store();
    let before = host.export().await;
    for (a, b) in [(5, 6), (20, 21)] {
        store
            .delete_range(&DayRange::new(Some(days[a]), Some(days[b])).unwrap())
            .await
            .unwrap();
    }
    assert_eq!(
        host.engine.request_refetch(days[5], days[6]).unwrap(),
        Enqueued::Queued
    );
    assert_eq!(
        host.engine.request_refetch(days[20], days[21]).unwrap(),
        Enqueued::AlreadyQueued
    );
    let status = host.engine.status().await.unwrap();
    let waiting = status
        .queued_jobs
        .iter()
        .filter(|j| **j == JobKind::Refetch);
    assert_eq!(waiting.count(), 1, "{:?}", status.queued_jobs);

    let mut events = host.engine.subscribe();
    let jobs = tokio::spawn(host.engine.clone().run_jobs());
    wait_for(&mut events, Duration::from_secs(60), |e| {
        matches!(
            e,
            EngineEvent::JobFinished {
                job: JobKind::Refetch,
                error: None,
                ..
            }
        )
    })
    .await;
    jobs.abort();
    // One job ran, and it repaired both ranges.
    let status = host.engine.status().await.unwrap();
    assert!(
        !status.queued_jobs.contains(&JobKind::Refetch),
        "{:?}",
        status.queued_jobs
    );
    assert_same(&host.export().await, &before, |_, _| false);
}
