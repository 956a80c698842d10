//! The sync engine against the WHOOP simulator over HTTP: the phased import, token refresh under
//! load, revocation and reconnection, Force Sync, catch-up, disconnect.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use serde_json::{json, Value};
use sync::events::{thousands, Clock};
use sync::{EngineEvent, Enqueued, Error, JobKind, NotificationKind, Phase, Schedule};
use whoop::types::parse_timestamp;
use whoop::Collection;

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(parse_timestamp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phased_import_matches_whoop_with_monotonic_progress() {
    let host = host(sim_config(400, 5)).await;
    host.connect().await;
    host.reset_stats().await;
    let mut events = host.engine.subscribe();
    let report = host.engine.sync_now().await.unwrap();
    assert_eq!(report.kind, "import");

    // Progress: phase 1 strictly before phase 2, every figure moving one way only.
    let mut progress = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EngineEvent::Progress(p) = event {
            progress.push(p);
        }
    }
    assert!(progress.len() > 10, "{} progress events", progress.len());
    let first_history = progress
        .iter()
        .position(|p| p.phase == Phase::History)
        .expect("phase 2 ran");
    assert!(progress[..first_history]
        .iter()
        .all(|p| p.phase == Phase::Recent));
    assert!(progress[first_history..]
        .iter()
        .all(|p| p.phase == Phase::History));
    let at_switch = &progress[first_history];
    assert_eq!(
        at_switch.recent_windows_done,
        at_switch.recent_windows_total
    );
    for pair in progress.windows(2) {
        assert!(pair[1].records >= pair[0].records, "records went back");
        assert!(pair[1].recent_windows_done >= pair[0].recent_windows_done);
        if let (Some(a), Some(b)) = (pair[0].oldest_day, pair[1].oldest_day) {
            assert!(b <= a, "oldest day moved forward");
        }
    }

    // The store equals WHOOP, record for record.
    let dump = host.dump().await;
    assert_same(&host.export().await, &dump, |_, _| false);
    let total: usize = ["cycle", "sleep", "recovery", "workout"]
        .iter()
        .map(|c| dump[c].as_array().unwrap().len())
        .sum();
    assert_eq!(progress.last().unwrap().records as usize, total);

    // One completion notification with the right counts.
    let sent = host.notifier.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].kind, NotificationKind::ImportFinished);
    let days = host.engine.store().days_of_history().await.unwrap();
    assert!(days >= 399, "{days} days");
    assert!(
        sent[0]
            .body
            .contains(&format!("{} records", thousands(total as u64))),
        "{}",
        sent[0].body
    );

    // Requests: each collection is one chain of full pages, so it costs exactly the pages its
    // records fill (an empty collection, the one request that finds it empty).
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        let n = dump[collection].as_array().unwrap().len() as u64;
        let used = host.collection_requests(collection).await;
        assert_eq!(
            used,
            n.div_ceil(25).max(1),
            "{collection}: {used} requests for {n} records"
        );
    }
    assert_eq!(
        host.stats().await["rate_limited"],
        0,
        "pacing kept clear of 429"
    );
}

/// The dashboard fills from today backwards: while the import has stored only its first pages,
/// those are the newest records of every collection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_brings_today_first() {
    let host = host(sim_config(400, 8)).await;
    host.connect().await;
    let dump = host.dump().await;
    host.post("/_sim/faults", json!({"latency_ms": 150})).await;
    let engine = host.engine.clone();
    let import = tokio::spawn(async move { engine.sync_now().await });
    let total: usize = ["cycle", "sleep", "recovery", "workout"]
        .iter()
        .map(|c| dump[c].as_array().unwrap().len())
        .sum();
    // Once every collection has a page, long before the end.
    let early = loop {
        let counts = host.engine.store().counts().await.unwrap();
        if Collection::ALL.iter().all(|c| counts.get(*c) > 0) {
            break host.export().await;
        }
        assert!(!import.is_finished(), "the import ended before it was seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let held: usize = ["cycle", "sleep", "recovery", "workout"]
        .iter()
        .map(|c| early[c].as_array().unwrap().len())
        .sum();
    assert!(held < total / 2, "{held} of {total}: seen too late to tell");
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        let newest = &dump[collection][0];
        let key = if collection == "recovery" {
            "cycle_id"
        } else {
            "id"
        };
        assert!(
            early[collection]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r[key] == newest[key]),
            "{collection}: WHOOP's newest record is not among the first imported"
        );
    }
    import.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_with_an_expired_token_refresh_once() {
    let host = host(sim_config(20, 2)).await;
    host.connect().await;
    host.post("/_sim/expire-tokens", json!({})).await;
    host.reset_stats().await;
    let engine = host.engine.clone();
    let calls = (0..50).map(|_| {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .with_token(|t| {
                    let engine = engine.clone();
                    async move { engine.client().profile(t.expose()).await }
                })
                .await
        })
    });
    for call in futures_join(calls).await {
        call.expect("task")
            .expect("every call succeeds after the refresh");
    }
    assert_eq!(host.stats().await["refreshes"], 1);
    let status = host.engine.status().await.unwrap();
    assert_eq!(status.connection.name(), "connected");
    assert!(host.notifier.sent().is_empty());
}

async fn futures_join<T>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_access_needs_reconnecting_once_and_then_resumes() {
    let host = host(sim_config(120, 3)).await;
    host.connect().await;
    host.post("/_sim/revoke", json!({})).await;

    let err = host.engine.sync_now().await.unwrap_err();
    assert!(matches!(err, Error::ReconnectNeeded { .. }), "{err:?}");
    let status = host.engine.status().await.unwrap();
    assert_eq!(status.connection.name(), "reconnect_needed");
    let reconnects: Vec<_> = host
        .notifier
        .sent()
        .into_iter()
        .filter(|n| n.kind == NotificationKind::ReconnectNeeded)
        .collect();
    assert_eq!(reconnects.len(), 1, "exactly one notification");

    // Nothing calls WHOOP until the person reconnects.
    host.reset_stats().await;
    assert!(host.engine.sync_now().await.is_err());
    assert!(host.engine.catch_up_tick().await.is_ok());
    assert_eq!(host.data_requests().await, 0);
    assert_eq!(host.stats().await["requests"]["token"], 0);
    assert_eq!(host.notifier.sent().len(), 1);

    // Reconnect: the import carries on and completes.
    host.connect().await;
    assert_eq!(
        host.engine.status().await.unwrap().connection.name(),
        "connected"
    );
    let report = host.engine.sync_now().await.unwrap();
    assert_eq!(report.kind, "import");
    assert_same(&host.export().await, &host.dump().await, |_, _| false);
}

/// A record WHOOP deleted while no webhook could say so (the relay away, a gap) is gone after
/// the next catch-up, which lists its window again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_removes_what_whoop_deleted_in_its_window() {
    let host = host(sim_config(60, 8)).await;
    host.connect().await;
    host.engine.sync_now().await.unwrap();
    let newest_workout = workouts_newest_first(&host.dump().await).remove(0);
    host.post(
        "/_sim/delete",
        json!({"collection": "workout", "id": newest_workout}),
    )
    .await;

    let mut events = host.engine.subscribe();
    let worker = tokio::spawn(host.engine.clone().run_jobs());
    let (error, deleted) = run_catch_up(&host, &mut events).await;
    assert_eq!(error, None);
    assert_eq!(deleted, 1, "the deleted workout");
    assert_same(&host.export().await, &host.dump().await, |_, _| false);
    worker.abort();
}

/// The simulator's workout ids, newest first.
fn workouts_newest_first(dump: &Value) -> Vec<String> {
    let mut workouts: Vec<(&str, &str)> = dump["workout"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["start"].as_str().unwrap(), w["id"].as_str().unwrap()))
        .collect();
    workouts.sort_unstable_by(|a, b| b.cmp(a));
    workouts.into_iter().map(|(_, id)| id.to_string()).collect()
}

/// Runs one catch-up to its end (through the engine's idle); its error and how many records it
/// removed.
async fn run_catch_up(
    host: &Host,
    events: &mut tokio::sync::broadcast::Receiver<EngineEvent>,
) -> (Option<String>, u64) {
    assert_eq!(host.engine.request_job(JobKind::CatchUp), Enqueued::Queued);
    let finished = wait_for(events, Duration::from_secs(60), finished(JobKind::CatchUp)).await;
    let EngineEvent::JobFinished { error, deleted, .. } = finished else {
        unreachable!()
    };
    wait_for(events, Duration::from_secs(30), idle).await;
    (error, deleted)
}

/// A catch-up that meets a record it cannot read removes nothing (the unreadable record would
/// look deleted) and adds what it can; once the record reads again, the next catch-up removes
/// what WHOOP deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_that_meets_an_unreadable_record_removes_nothing() {
    let host = host(sim_config(60, 8)).await;
    host.connect().await;
    host.engine.sync_now().await.unwrap();
    let newest = workouts_newest_first(&host.dump().await);
    let (deleted, unreadable) = (newest[0].clone(), newest[1].clone());
    host.post(
        "/_sim/delete",
        json!({"collection": "workout", "id": deleted}),
    )
    .await;
    host.post(
        "/_sim/record-faults",
        json!({"id": unreadable, "fault": "unreadable"}),
    )
    .await;
    // A workout as the store holds it.
    let stored = |id: String| {
        let host = &host;
        async move {
            let export = host.export().await;
            export["workout"]
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w["id"] == json!(id))
                .cloned()
        }
    };
    let unreadable_before = stored(unreadable.clone()).await.expect("imported");

    let mut events = host.engine.subscribe();
    let worker = tokio::spawn(host.engine.clone().run_jobs());
    let (error, removed) = run_catch_up(&host, &mut events).await;
    assert_eq!(
        error, None,
        "an unreadable record does not fail the catch-up"
    );
    assert_eq!(
        removed, 0,
        "nothing is removed while a record cannot be read"
    );
    assert!(
        stored(deleted.clone()).await.is_some(),
        "the deleted workout waits"
    );
    assert_eq!(
        stored(unreadable.clone()).await,
        Some(unreadable_before),
        "the unreadable workout is kept as it was"
    );

    // It reads again: the next catch-up removes what WHOOP deleted.
    host.post(
        "/_sim/record-faults",
        json!({"id": unreadable, "fault": null}),
    )
    .await;
    let (error, removed) = run_catch_up(&host, &mut events).await;
    assert_eq!(error, None);
    assert_eq!(removed, 1, "the deleted workout");
    assert_same(&host.export().await, &host.dump().await, |_, _| false);
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_sync_makes_the_last_six_months_match_and_runs_once() {
    let host = host(sim_config(250, 4)).await;
    host.connect().await;
    host.engine.sync_now().await.unwrap();

    // WHOOP changes: time passes (new records, re-scores, deletions), plus explicit deletions.
    host.post("/_sim/advance", json!({"hours": 72})).await;
    let dump = host.dump().await;
    let recent_workout = dump["workout"][3]["id"].as_str().unwrap().to_string();
    let recent_sleep = dump["sleep"][5]["id"].as_str().unwrap().to_string();
    let edited_sleep = dump["sleep"][9]["id"].as_str().unwrap().to_string();
    host.post(
        "/_sim/delete",
        json!({"collection": "workout", "id": recent_workout}),
    )
    .await;
    host.post(
        "/_sim/delete",
        json!({"collection": "sleep", "id": recent_sleep}),
    )
    .await;
    host.post(
        "/_sim/edit",
        json!({"collection": "sleep", "id": edited_sleep}),
    )
    .await;

    // Two requests back to back: one job.
    let mut events = host.engine.subscribe();
    assert_eq!(host.engine.request_force_sync(), Enqueued::Queued);
    assert_eq!(host.engine.request_force_sync(), Enqueued::AlreadyQueued);
    let worker = tokio::spawn(host.engine.clone().run_jobs());
    let finished = wait_for(&mut events, Duration::from_secs(60), |e| {
        matches!(
            e,
            EngineEvent::JobFinished {
                job: JobKind::ForceSync,
                ..
            }
        )
    })
    .await;
    let EngineEvent::JobFinished { error, deleted, .. } = finished else {
        unreachable!()
    };
    assert_eq!(error, None);
    assert!(
        deleted >= 3,
        "the deleted workout, sleep and its recovery: {deleted}"
    );
    // Pressing again while it runs or just after: no second job was queued meanwhile.
    wait_for(&mut events, Duration::from_secs(30), idle).await;
    let status = host.engine.status().await.unwrap();
    assert!(status.queued_jobs.is_empty() && status.running_job.is_none());
    assert_eq!(status.last_sync.unwrap().kind, "force_sync");
    worker.abort();

    // The store equals WHOOP inside the window (the open cycle changes by itself, without
    // events, and is left to the next sync).
    let dump = host.dump().await;
    let window_start = Utc::now() - chrono::Duration::days(183) + chrono::Duration::hours(1);
    let sleeps: HashMap<String, DateTime<Utc>> = dump["sleep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                time(&s["start"]).unwrap(),
            )
        })
        .collect();
    let export = host.export().await;
    let in_window = |collection: &str, r: &Value| -> bool {
        match collection {
            "recovery" => sleeps
                .get(r["sleep_id"].as_str().unwrap())
                .is_none_or(|s| *s >= window_start),
            _ => time(&r["start"]).unwrap() >= window_start,
        }
    };
    assert_same(&export, &dump, |c, r| !in_window(c, r));
    let gone = |c: &str, id: &str| by_key(c, &export[c]).contains_key(id);
    assert!(!gone("workout", &recent_workout) && !gone("sleep", &recent_sleep));
    let forced: Vec<_> = host
        .notifier
        .sent()
        .into_iter()
        .filter(|n| n.kind == NotificationKind::ForceSyncFinished)
        .collect();
    assert_eq!(forced.len(), 1);
    assert!(forced[0].body.contains("updated"), "{}", forced[0].body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_force_sync_deletes_nothing() {
    let host = host(sim_config(60, 6)).await;
    host.connect().await;
    host.engine.sync_now().await.unwrap();
    let before = host.engine.store().counts().await.unwrap();
    let workout = host.dump().await["workout"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    host.post(
        "/_sim/delete",
        json!({"collection": "workout", "id": workout}),
    )
    .await;
    host.post("/_sim/faults", json!({"fail_next": 40})).await;
    assert!(host.engine.force_sync_now().await.is_err());
    assert_eq!(
        host.engine.store().counts().await.unwrap(),
        before,
        "nothing removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_fetches_48_hours_when_stale_nothing_when_fresh_and_more_after_an_absence() {
    let clock = manual_clock();
    let schedule = Schedule {
        catch_up_every: Duration::from_millis(50),
        ..Schedule::default()
    };
    let host = host_with(sim_config(60, 8), clock.clone(), schedule).await;
    host.connect().await;
    host.engine.sync_now().await.unwrap();
    let synced_at = host
        .engine
        .last_successful_sync_at()
        .await
        .unwrap()
        .unwrap();

    // Fresh data and a live stream: the six-hourly check makes no WHOOP call.
    host.engine.set_live(true);
    clock.advance(chrono::Duration::hours(6));
    host.reset_stats().await;
    assert!(!host.engine.catch_up_tick().await.unwrap());
    assert_eq!(host.data_requests().await, 0);

    // Nothing new for more than 36 hours: exactly the catch-up window (a week) of every
    // collection, one page each.
    host.engine.set_live(false);
    clock.set(synced_at + chrono::Duration::hours(37));
    let mut events = host.engine.subscribe();
    let worker = tokio::spawn(host.engine.clone().run_jobs());
    assert!(host.engine.catch_up_tick().await.unwrap());
    let finished = wait_for(&mut events, Duration::from_secs(30), |e| {
        matches!(
            e,
            EngineEvent::JobFinished {
                job: JobKind::CatchUp,
                ..
            }
        )
    })
    .await;
    let EngineEvent::JobFinished { since, error, .. } = finished else {
        unreachable!()
    };
    assert_eq!(error, None);
    assert_eq!(
        since,
        Some(clock.now() - Schedule::default().catch_up_window)
    );
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        assert_eq!(
            host.collection_requests(collection).await,
            1,
            "{collection}"
        );
    }

    // Started again after five days away: catch up from the last sync minus three days. The
    // catch-up records its sync time after JobFinished.
    wait_for(&mut events, Duration::from_secs(30), idle).await;
    let last = host
        .engine
        .last_successful_sync_at()
        .await
        .unwrap()
        .unwrap();
    clock.set(last + chrono::Duration::days(5));
    host.engine.on_start().await.unwrap();
    let finished = wait_for(&mut events, Duration::from_secs(30), |e| {
        matches!(
            e,
            EngineEvent::JobFinished {
                job: JobKind::CatchUp,
                ..
            }
        )
    })
    .await;
    let EngineEvent::JobFinished { since, .. } = finished else {
        unreachable!()
    };
    assert_eq!(since, Some(last - chrono::Duration::days(3)));
    worker.abort();

    // The scheduler itself runs the check on its interval.
    clock.set(clock.now() + chrono::Duration::hours(40));
    let worker = tokio::spawn(host.engine.clone().run_jobs());
    let scheduler = tokio::spawn(host.engine.clone().run_scheduler());
    wait_for(&mut events, Duration::from_secs(30), |e| {
        matches!(
            e,
            EngineEvent::JobFinished {
                job: JobKind::CatchUp,
                ..
            }
        )
    })
    .await;
    worker.abort();
    scheduler.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_revokes_keeps_history_and_retries_an_offline_revoke() {
    let host = host(sim_config(30, 9)).await;
    host.connect().await;
    host.engine.sync_now().await.unwrap();
    let counts = host.engine.store().counts().await.unwrap();

    // WHOOP unreachable: say so, stop syncing, keep the tokens only to retry the revoke.
    host.post("/_sim/faults", json!({"fail_next": 20})).await;
    let err = host.engine.disconnect().await.unwrap_err();
    assert!(matches!(err, Error::RevokePending(_)), "{err:?}");
    let status = host.engine.status().await.unwrap();
    assert_eq!(status.connection.name(), "disconnected");
    assert!(serde_json::to_value(&status).unwrap()["revoke_pending"] == true);
    assert!(
        host.engine.sync_now().await.is_err(),
        "no syncing after disconnect"
    );
    assert!(host.stats().await["requests"]["revoke"].as_u64().unwrap() > 0);

    // Back online: the retry revokes for real and forgets the tokens.
    host.post("/_sim/faults", json!({"fail_next": 0, "error_rate": 0.0}))
        .await;
    host.engine.retry_pending_revoke().await.unwrap();
    let status = serde_json::to_value(host.engine.status().await.unwrap()).unwrap();
    assert_eq!(status["revoke_pending"], false);
    assert!(!host.engine.tokens().has_tokens().await.unwrap());
    assert_eq!(
        host.engine.store().counts().await.unwrap(),
        counts,
        "history kept"
    );

    // Delete local data is separate and explicit.
    host.engine.delete_local_data().await.unwrap();
    assert_eq!(host.engine.store().counts().await.unwrap().total(), 0);
    assert_eq!(
        host.engine.status().await.unwrap().connection.name(),
        "not_connected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_replayed_callback_is_refused() {
    let host = host(sim_config(10, 10)).await;
    let forged =
        url::Url::parse("vitaltrends://oauth/whoop/callback?code=x&state=abcdefgh").unwrap();
    // Nobody asked: refused.
    assert!(matches!(
        host.engine.complete_authorization(&forged).await,
        Err(Error::UnexpectedCallback)
    ));
    // A pending sign-in is not cancelled by a forged link with the wrong state.
    let url = host
        .engine
        .begin_authorization("vitaltrends://oauth/whoop/callback")
        .unwrap();
    assert!(host.engine.complete_authorization(&forged).await.is_err());
    assert!(host.engine.is_authorizing());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(url).send().await.unwrap();
    let callback = url::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    host.engine.complete_authorization(&callback).await.unwrap();
    // The same callback again is single-use.
    assert!(matches!(
        host.engine.complete_authorization(&callback).await,
        Err(Error::UnexpectedCallback)
    ));
}

/// What the desktop waits out before it replaces its process: a sign-in waiting for the browser
/// (only this process can complete it) and a job queued or running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_is_known_while_a_sign_in_waits_or_a_job_is_queued_or_runs() {
    let host = host(sim_config(30, 75)).await;
    assert!(!host.engine.has_work());
    host.engine
        .begin_authorization("vitaltrends://oauth/whoop/callback")
        .unwrap();
    assert!(host.engine.has_work(), "a sign-in waits for the browser");
    host.engine.cancel_authorization();
    assert!(!host.engine.has_work());

    let mut events = host.engine.subscribe();
    host.connect().await;
    assert!(host.engine.has_work(), "the sign-in queued the import");
    tokio::spawn(host.engine.clone().run_jobs());
    wait_for(
        &mut events,
        Duration::from_secs(60),
        finished(JobKind::Import),
    )
    .await;
    wait_for(&mut events, Duration::from_secs(30), idle).await;
    assert!(!host.engine.has_work(), "every job has finished");
}
