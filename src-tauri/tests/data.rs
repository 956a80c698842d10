//! Settings → Data and the completeness calendar without a desktop: `data` over a temporary
//! database and the WHOOP simulator, exactly what the Tauri commands call. The calendar shows
//! the simulator's pending and unscorable days and a deleted day as missing; re-fetching the
//! day through the job queue repairs it; exports report progress; a backup is written.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sync::events::{EngineEvent, JobKind};
use sync::Engine;
use url::Url;
use vitaltrends_desktop::data::{self, DayStateKey, ExportFormatKey};

async fn connected(days: u32) -> (whoop_sim::SimHandle, Arc<Engine>, tempfile::TempDir) {
    let sim = common::sim(days, 91).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = common::engine(&sim, dir.path()).await;
    let url = engine
        .begin_authorization("vitaltrends://oauth/whoop/callback")
        .unwrap();
    let link = common::authorize(&url).await;
    engine
        .complete_authorization(&Url::parse(&link).unwrap())
        .await
        .unwrap();
    engine.sync_now().await.unwrap();
    (sim, engine, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calendar_shows_each_day_and_refetch_repairs_a_deleted_one() {
    let (_sim, engine, dir) = connected(400).await;
    let view = data::summary(&engine).await.unwrap();
    assert!(view.cycles >= 399.0, "{view:?}");
    assert!(view.path.ends_with("vitaltrends.db"));
    let last: chrono::NaiveDate = view.last_day.clone().unwrap().parse().unwrap();
    let year = chrono::Datelike::year(&last);

    let days = data::calendar(&engine, year, last).await.unwrap();
    assert_eq!(days.last().unwrap().day, last.to_string());
    let count = |days: &[data::CalendarDay], state: DayStateKey| {
        days.iter().filter(|d| d.state == state).count()
    };
    // The simulator's newest night is still being scored, and about 1 in 60 nights is
    // unscorable: both show as such, the rest scored.
    assert_eq!(
        days.last().unwrap().state,
        DayStateKey::Pending,
        "{:?}",
        days.last()
    );
    let mut all = days.clone();
    if all.len() < 300 {
        all.extend(data::calendar(&engine, year - 1, last).await.unwrap());
    }
    assert!(
        count(&all, DayStateKey::Unscorable) >= 1,
        "some unscorable day"
    );
    assert!(count(&all, DayStateKey::Scored) > 250);

    // A deleted day is missing; re-fetching it through the queue repairs it.
    let victim = days[days.len() - 10].day.clone();
    let said = data::delete_days(&engine, &victim, &victim).await.unwrap();
    assert!(said.starts_with("Deleted"), "{said}");
    let after = data::calendar(&engine, year, last).await.unwrap();
    let state_of =
        |days: &[data::CalendarDay], d: &str| days.iter().find(|x| x.day == d).unwrap().state;
    assert_eq!(state_of(&after, &victim), DayStateKey::Missing);

    let mut events = engine.subscribe();
    let jobs = tokio::spawn(engine.clone().run_jobs());
    assert!(data::refetch(&engine, &victim, &victim).await.unwrap());
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(EngineEvent::JobFinished {
                job: JobKind::Refetch,
                error,
                ..
            }) = events.recv().await
            {
                assert_eq!(error, None);
                return;
            }
        }
    })
    .await
    .expect("the re-fetch finishes");
    jobs.abort();
    let repaired = data::calendar(&engine, year, last).await.unwrap();
    assert_ne!(state_of(&repaired, &victim), DayStateKey::Missing);
    assert_eq!(repaired, days, "the calendar is as before the deletion");
    assert!(data::refetch(&engine, "2024-02-30", &victim).await.is_err());

    // Exports report progress up to their total; a backup is written.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let files = data::export(
        &engine,
        ExportFormatKey::Parquet,
        Some(&days[0].day),
        None,
        &dir.path().join("export"),
        &move |p| log.lock().unwrap().push(p),
    )
    .await
    .unwrap();
    assert_eq!(files.len(), 4);
    let seen = seen.lock().unwrap().clone();
    let last_report = seen.last().unwrap();
    assert!(last_report.total > 0.0 && last_report.done == last_report.total);
    let bad = data::export(
        &engine,
        ExportFormatKey::Csv,
        Some("2025-05-05"),
        Some("2025-05-01"),
        &dir.path().join("bad"),
        &|_| {},
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code, "invalid_range", "{bad:?}");
    let said = data::backup(&engine, &dir.path().join("b.db"))
        .await
        .unwrap();
    assert!(said.starts_with("Backed up"), "{said}");
    assert!(store::check_backup(&dir.path().join("b.db")).await.is_ok());
}

#[test]
fn the_save_dialog_suggests_names_for_the_format_and_range() {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
    let name = |format, from, to| data::export_name(format, from, to, today).unwrap();
    assert_eq!(
        name(ExportFormatKey::Json, None, None),
        "vitaltrends-all-2026-12-03.json"
    );
    assert_eq!(
        name(ExportFormatKey::Csv, Some("2026-01-01"), Some("2026-03-31")),
        "vitaltrends-2026-01-01-to-2026-03-31-csv"
    );
    assert_eq!(
        name(ExportFormatKey::Parquet, Some("2026-11-01"), Some("")),
        "vitaltrends-2026-11-01-to-2026-12-03-parquet"
    );
    assert_eq!(
        name(ExportFormatKey::Csv, None, Some("2025-12-31")),
        "vitaltrends-start-to-2025-12-31-csv"
    );
    let bad =
        data::export_name(ExportFormatKey::Json, Some("2026-02-30"), None, today).unwrap_err();
    assert_eq!(bad.code, "invalid_range");
    assert_eq!(data::backup_name(today), "vitaltrends-backup-2026-12-03.db");
}

/// The dashboard names the missing days of the last week (so it can link to the calendar); a
/// full week names none, a deleted day is named until it is re-fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_names_missing_days_of_the_last_week() {
    use vitaltrends_desktop::core::{self, RangeKey};
    let (_sim, engine, _dir) = connected(40).await;
    let dashboard = core::dashboard(&engine, RangeKey::D30).await.unwrap();
    assert!(dashboard.has_data);
    assert_eq!(dashboard.missing_days, Vec::<String>::new());
    let today = chrono::Local::now().date_naive();
    let victim = (today - chrono::Duration::days(3)).to_string();
    let long_ago = (today - chrono::Duration::days(20)).to_string();
    data::delete_days(&engine, &victim, &victim).await.unwrap();
    data::delete_days(&engine, &long_ago, &long_ago)
        .await
        .unwrap();
    let dashboard = core::dashboard(&engine, RangeKey::D30).await.unwrap();
    assert_eq!(
        dashboard.missing_days,
        vec![victim.clone()],
        "only the last week's"
    );
    let empty = tempfile::tempdir().unwrap();
    let store = store::Store::open(&empty.path().join("v.db"))
        .await
        .unwrap();
    assert!(core::recently_missing(&store, today)
        .await
        .unwrap()
        .is_empty());
}
