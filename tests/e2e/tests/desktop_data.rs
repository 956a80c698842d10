//! Settings → Data in the real window: exports in each format written where the save dialog
//! said, under the name it suggested, read back with pyarrow and Python's csv and json (exactly
//! the simulator's records); the completeness calendar showing the simulator's pending and
//! unscorable days, a deleted day as missing, and "Re-fetch these days" repairing it; a backup.
//! Screenshots in target/shots/.
//!
//! The OS save dialog (a GTK file chooser WebDriver cannot reach) is answered through the app's
//! documented test hook, `VITALTRENDS_TEST_DIALOG_ANSWER` (docs/NOTES.md): the test writes the
//! answer (a folder: "there, under the suggested name") before pressing the button.

use std::time::Duration;

use e2e::desktop::{app_env, configured, service_env, shots_dir, Consent, Desktop, WebDriver};
use e2e::{binary, python, RelayProcess, SimProcess};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(120);

/// Sets a Svelte-bound field (`input` or `select`) the way typing or choosing would.
async fn set(ui: &WebDriver, testid: &str, value: &str) {
    let set = ui
        .script(&format!(
            "const e = document.querySelector('[data-testid={testid}]'); e.value = {value:?}; \
             for (const k of ['input', 'change']) e.dispatchEvent(new Event(k, {{bubbles: true}})); \
             return e.value"
        ))
        .await;
    assert_eq!(set, value, "{testid}");
}

/// Clicks a button after scrolling it to the middle of the window, where no notice covers it.
async fn press(ui: &WebDriver, css: &str) {
    ui.wait_for(css, LONG).await;
    ui.script(&format!(
        "document.querySelector({css:?}).scrollIntoView({{block: 'center'}}); return true"
    ))
    .await;
    ui.click(css).await;
}

/// The calendar's cells as (day, state).
async fn cells(ui: &WebDriver) -> Vec<(String, String)> {
    let v = ui
        .script(
            "return [...document.querySelectorAll('[data-testid=calendar] [data-state]')]\
             .map(e => [e.dataset.testid.slice(4), e.dataset.state])",
        )
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const READER: &str = r#"
import csv, json, sys
import pyarrow.parquet as pq
pq_dir, csv_dir, json_file = sys.argv[1:4]
out = {}
for c in ["cycle", "sleep", "recovery", "workout"]:
    t = pq.read_table(f"{pq_dir}/{c}.parquet")
    with open(f"{csv_dir}/{c}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    out[c] = {"parquet": t.num_rows, "csv": len(rows),
              "start_type": str(t.schema.field("start").type) if c != "recovery" else None,
              "day_type": str(t.schema.field("day").type)}
with open(json_file) as f:
    j = json.load(f)
for c in ["cycle", "sleep", "recovery", "workout"]:
    out[c]["json"] = len(j[c])
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_data_exports_shows_completeness_and_repairs_a_day() {
    let work = tempfile::tempdir().unwrap();
    let app = binary("vitaltrends-desktop");
    let shots = shots_dir();
    let sim = SimProcess::start(&["--days", "120", "--seed", "23", "--auto-approve"]).await;
    let relay = RelayProcess::start(&sim, &work.path().join("relay.db")).await;
    let mut desktop = Desktop::start(work.path()).await;
    let env = service_env(work.path(), &desktop, &app, &sim, &relay);
    let answer = work.path().join("dialog-answer");
    let mut env = env;
    env.push((
        "VITALTRENDS_TEST_DIALOG_ANSWER".into(),
        answer.display().to_string(),
    ));
    let ui = WebDriver::start(&app, &env, &mut desktop.processes).await;
    ui.click("[data-testid=nav-settings]").await;
    ui.click("[data-testid=connect-button]").await;
    ui.wait_text("[data-testid=whoop-card]", LONG, |t| {
        t.contains("Last synced")
    })
    .await;
    let dump = sim.get_json("/_sim/dump").await;

    ui.click("[data-testid=settings-nav-data]").await;
    let counts = ui
        .wait_text("[data-testid=data-counts]", LONG, |t| t.contains("cycles"))
        .await;
    let cycles = dump["cycle"].as_array().unwrap().len();
    assert!(counts.starts_with(&format!("{cycles} cycles")), "{counts}");

    // Each format, all time, into the folder the dialog answers, under the suggested names.
    let out = work.path().join("exports");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(&answer, out.to_str().unwrap()).unwrap();
    let today = chrono::Local::now().date_naive();
    let named = |name: &str| out.join(format!("vitaltrends-all-{today}{name}"));
    for (format, path) in [
        ("parquet", named("-parquet")),
        ("csv", named("-csv")),
        ("json", named(".json")),
    ] {
        set(&ui, "export-format", format).await;
        press(&ui, "[data-testid=export-button]").await;
        let files = if format == "json" {
            "1 file "
        } else {
            "4 files"
        };
        ui.wait_text("[data-testid=data-said]", LONG, |t| {
            t.contains(&format!("Wrote {files}")) && t.contains(path.to_str().unwrap())
        })
        .await;
    }
    ui.screenshot(&shots.join("data-1-exported.png")).await;
    let read = std::process::Command::new(python())
        .args(["-c", READER])
        .arg(named("-parquet"))
        .arg(named("-csv"))
        .arg(named(".json"))
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let read: Value = serde_json::from_slice(&read.stdout).unwrap();
    for c in ["cycle", "sleep", "recovery", "workout"] {
        let n = dump[c].as_array().unwrap().len();
        for format in ["parquet", "csv", "json"] {
            assert_eq!(
                read[c][format].as_u64().unwrap() as usize,
                n,
                "{c} {format}"
            );
        }
        assert_eq!(read[c]["day_type"], "date32[day]");
    }
    assert_eq!(read["cycle"]["start_type"], "timestamp[ms, tz=UTC]");

    // The calendar: the simulator's pending newest night and unscorable nights.
    let days = cells(&ui).await;
    assert!(!days.is_empty());
    let state_of = |days: &[(String, String)], d: &str| {
        days.iter()
            .find(|(day, _)| day == d)
            .map(|(_, s)| s.clone())
    };
    assert!(
        days.iter().any(|(_, s)| s == "pending"),
        "the newest night is being scored: {:?}",
        days.iter().rev().take(3).collect::<Vec<_>>()
    );
    assert!(
        days.iter().any(|(_, s)| s == "unscorable"),
        "some night is unscorable"
    );

    // Delete a scored day: missing. Select it and re-fetch: repaired.
    let victim = days
        .iter()
        .rev()
        .skip(10)
        .find(|(_, s)| s == "scored")
        .map(|(d, _)| d.clone())
        .expect("a scored day");
    set(&ui, "delete-from", &victim).await;
    set(&ui, "delete-to", &victim).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    press(&ui, "[data-testid=delete-days]").await;
    press(&ui, "[data-testid=delete-confirm]").await;
    ui.wait_text("[data-testid=data-said]", LONG, |t| {
        t.starts_with("Deleted")
    })
    .await;
    let after = cells(&ui).await;
    assert_eq!(state_of(&after, &victim).as_deref(), Some("missing"));
    press(&ui, &format!("[data-testid=day-{victim}]")).await;
    ui.screenshot_settled(&shots.join("data-2-day-missing.png"))
        .await;
    press(&ui, "[data-testid=refetch-button]").await;
    ui.wait_text("[data-testid=data-said]", LONG, |t| {
        t.starts_with("Re-fetching")
    })
    .await;
    let started = std::time::Instant::now();
    loop {
        // The section reloads on data changes; reopening it reads the calendar again.
        ui.click("[data-testid=settings-nav-general]").await;
        ui.click("[data-testid=settings-nav-data]").await;
        ui.wait_for("[data-testid=calendar]", LONG).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if state_of(&cells(&ui).await, &victim).as_deref() == Some("scored") {
            break;
        }
        assert!(started.elapsed() < LONG, "the re-fetch repaired {victim}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ui.script(
        "document.querySelector('[data-testid=calendar]').scrollIntoView({block: 'center'}); \
         return true",
    )
    .await;
    ui.screenshot_settled(&shots.join("data-3-repaired.png"))
        .await;

    // Back up now, to the file the dialog answers.
    let backup = work.path().join("backup.db");
    std::fs::write(&answer, backup.to_str().unwrap()).unwrap();
    press(&ui, "[data-testid=backup-button]").await;
    ui.wait_text("[data-testid=data-said]", LONG, |t| {
        t.starts_with("Backed up")
    })
    .await;
    assert!(backup.exists());

    // Daily backups into a folder that already holds ten older scheduled copies and a file of
    // the person's own: turned on, the day's backup is made at once, the last 7 kept.
    let daily = work.path().join("daily");
    std::fs::create_dir_all(&daily).unwrap();
    for day in 1..=10 {
        std::fs::write(
            daily.join(format!("vitaltrends-scheduled-202601{day:02}T080000Z.db")),
            b"an older copy",
        )
        .unwrap();
    }
    std::fs::write(daily.join("mine.db"), b"the person's own").unwrap();
    ui.wait_text("[data-testid=last-backup]", LONG, |t| {
        t.contains("none yet")
    })
    .await;
    press(&ui, "[data-testid=schedule-toggle]").await;
    ui.wait_text("[data-testid=data-error]", LONG, |t| {
        t.contains("Choose a folder")
    })
    .await;
    std::fs::write(&answer, daily.to_str().unwrap()).unwrap();
    press(&ui, "[data-testid=schedule-folder-button]").await;
    ui.wait_text("[data-testid=schedule-folder]", LONG, |t| {
        t.contains(daily.to_str().unwrap())
    })
    .await;
    press(&ui, "[data-testid=schedule-toggle]").await;
    let last = ui
        .wait_text("[data-testid=last-backup]", LONG, |t| {
            t.contains("just now")
        })
        .await;
    assert!(!last.contains("none yet"), "{last}");
    let mut names: Vec<String> = std::fs::read_dir(&daily)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 8, "7 scheduled copies and mine.db: {names:?}");
    assert!(names.contains(&"mine.db".to_string()));
    assert!(
        !names
            .iter()
            .any(|n| n.contains("20260101T") || n.contains("20260104T")),
        "{names:?}"
    );
    let newest = daily.join(
        names
            .iter()
            .rev()
            .find(|n| n.starts_with("vitaltrends-scheduled-"))
            .unwrap(),
    );
    let head = std::fs::read(&newest).unwrap();
    assert!(
        head.starts_with(b"SQLite format 3\0"),
        "the day's copy is a database"
    );
    let settings =
        std::fs::read_to_string(work.path().join("xdg-config/vitaltrends/settings.toml")).unwrap();
    assert!(
        settings.contains("scheduled = true") && settings.contains("keep = 7"),
        "{settings}"
    );
    ui.script(
        "document.querySelector('[data-testid=backup-schedule]').scrollIntoView({block: 'center'}); \
         return true",
    )
    .await;
    ui.screenshot_settled(&shots.join("data-4-daily-backup.png"))
        .await;

    // A day of the last week deleted: the dashboard says so and links to the calendar.
    let recent = (today - chrono::Duration::days(3)).to_string();
    set(&ui, "delete-from", &recent).await;
    set(&ui, "delete-to", &recent).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    press(&ui, "[data-testid=delete-days]").await;
    press(&ui, "[data-testid=delete-confirm]").await;
    ui.wait_text("[data-testid=data-said]", LONG, |t| {
        t.starts_with("Deleted")
    })
    .await;
    ui.click("[data-testid=nav-dashboard]").await;
    let said = ui
        .wait_text("[data-testid=missing-days]", LONG, |t| {
            t.contains("has no data")
        })
        .await;
    assert!(said.contains("See the completeness calendar"), "{said}");
    ui.screenshot(&shots.join("data-5-dashboard-missing.png"))
        .await;
    ui.click("[data-testid=open-calendar]").await;
    ui.wait_for(
        &format!("[data-testid=day-{recent}][data-state=missing]"),
        LONG,
    )
    .await;
    ui.screenshot_settled(&shots.join("data-6-calendar-from-dashboard.png"))
        .await;
    ui.close().await;
}

/// The window's JSON export (through the dialog hook) of whatever the app holds now.
async fn export_json(ui: &WebDriver, answer: &std::path::Path, out: &std::path::Path) -> Value {
    std::fs::write(answer, out.to_str().unwrap()).unwrap();
    set(ui, "export-format", "json").await;
    set(ui, "export-from", "").await;
    set(ui, "export-to", "").await;
    press(ui, "[data-testid=export-button]").await;
    ui.wait_text("[data-testid=data-said]", LONG, |t| {
        t.contains("Wrote 1 file") && t.contains(out.to_str().unwrap())
    })
    .await;
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// Reopens Settings → Data so it reads the store again, and returns its record counts.
async fn counts(ui: &WebDriver) -> String {
    ui.click("[data-testid=settings-nav-general]").await;
    ui.click("[data-testid=settings-nav-data]").await;
    ui.wait_text("[data-testid=data-counts]", LONG, |t| t.contains("cycles"))
        .await
}

fn total(counts: &str) -> u64 {
    counts
        .split('·')
        .filter_map(|part| part.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

const FOREIGN: &str = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
db.executemany("INSERT INTO notes (body) VALUES (?)", [("another program's data",)] * 50)
db.commit()
db.close()
"#;

/// Backup while an import runs, then Restore from backup… in a fresh data directory, all in the
/// real window: the mid-import copy is a consistent part of WHOOP's records, a copy made after
/// the import restores equal to the store (JSON exports of both windows compared), and a damaged
/// copy and another program's SQLite file are refused with the reason, nothing replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_during_an_import_restores_in_a_fresh_window_and_bad_files_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let app = binary("vitaltrends-desktop");
    let shots = shots_dir();
    // Slow pages, so the import is still running while the backup is taken.
    let sim = SimProcess::start(&[
        "--days",
        "500",
        "--seed",
        "31",
        "--auto-approve",
        "--latency-ms",
        "150",
    ])
    .await;
    let relay = RelayProcess::start(&sim, &work.path().join("relay.db")).await;
    let mut desktop = Desktop::start(work.path()).await;
    let answer = work.path().join("dialog-answer");
    let files = work.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let with_hook = |dir: &std::path::Path, desktop: &Desktop| {
        let mut env = app_env(
            dir,
            desktop,
            &app,
            Consent::AutoApproved,
            &configured(&sim.base_url, &relay.base_url),
        );
        env.push((
            "VITALTRENDS_TEST_DIALOG_ANSWER".into(),
            answer.display().to_string(),
        ));
        env
    };
    let first_dir = work.path().join("first");
    let env = with_hook(&first_dir, &desktop);
    let ui = WebDriver::start(&app, &env, &mut desktop.processes).await;
    ui.click("[data-testid=nav-settings]").await;
    ui.click("[data-testid=connect-button]").await;
    ui.wait_text("[data-testid=status-line]", LONG, |t| {
        t.starts_with("Importing")
    })
    .await;
    ui.click("[data-testid=settings-nav-data]").await;
    let started = std::time::Instant::now();
    while total(&counts(&ui).await) < 150 {
        assert!(started.elapsed() < LONG, "the import stored nothing");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let during = files.join("during.db");
    std::fs::write(&answer, during.to_str().unwrap()).unwrap();
    press(&ui, "[data-testid=backup-button]").await;
    ui.wait_text("[data-testid=data-said]", LONG, |t| {
        t.starts_with("Backed up")
    })
    .await;
    let line = ui.text("[data-testid=status-line]", LONG).await;
    assert!(
        line.starts_with("Importing"),
        "the import was still running after the backup: {line}"
    );

    // The import finishes; a backup then, and the store as the window exports it.
    ui.click("[data-testid=settings-nav-connections]").await;
    ui.wait_text("[data-testid=whoop-card]", Duration::from_secs(300), |t| {
        t.contains("Last synced")
    })
    .await;
    ui.click("[data-testid=settings-nav-data]").await;
    ui.wait_for("[data-testid=backup-button]", LONG).await;
    let after = files.join("after.db");
    std::fs::write(&answer, after.to_str().unwrap()).unwrap();
    press(&ui, "[data-testid=backup-button]").await;
    ui.wait_text("[data-testid=data-said]", LONG, |t| {
        t.starts_with("Backed up")
    })
    .await;
    let store = export_json(&ui, &answer, &files.join("first.json")).await;
    ui.close().await;

    // A fresh data directory, nothing imported: restore the mid-import backup.
    let fresh_dir = work.path().join("fresh");
    let env = with_hook(&fresh_dir, &desktop);
    let ui = WebDriver::start(&app, &env, &mut desktop.processes).await;
    ui.click("[data-testid=nav-settings]").await;
    ui.click("[data-testid=settings-nav-data]").await;
    let empty = counts(&ui).await;
    assert!(empty.starts_with("0 cycles"), "{empty}");
    std::fs::write(&answer, during.to_str().unwrap()).unwrap();
    press(&ui, "[data-testid=restore-button]").await;
    let summary = ui.text("[data-testid=restore-summary]", LONG).await;
    assert!(summary.contains(during.to_str().unwrap()), "{summary}");
    let kept = ui.text("[data-testid=restore-kept-aside]", LONG).await;
    assert!(
        kept.contains(&format!(
            "{}/data/service/vitaltrends.db.replaced-",
            fresh_dir.display()
        )),
        "{kept}"
    );
    ui.screenshot(&shots.join("data-7-restore-confirm.png"))
        .await;
    ui.click("[data-testid=confirm-button]").await;
    ui.wait_text("[data-testid=data-said]", LONG, |t| {
        t.starts_with("Restored")
    })
    .await;
    let restored = export_json(&ui, &answer, &files.join("during.json")).await;
    let dump = sim.get_json("/_sim/dump").await;
    let mut partial = 0;
    for c in ["cycle", "sleep", "recovery", "workout"] {
        let sim_records = dump[c].as_array().unwrap();
        for r in restored[c].as_array().unwrap() {
            assert!(sim_records.contains(r), "{c}: a record WHOOP has, exactly");
            partial += 1;
        }
    }
    let all: usize = ["cycle", "sleep", "recovery", "workout"]
        .iter()
        .map(|c| dump[*c].as_array().unwrap().len())
        .sum();
    assert!(
        partial >= 150 && partial < all,
        "a part of the history: {partial} of {all}"
    );
    // The dashboard shows the restored data without a restart.
    ui.click("[data-testid=nav-dashboard]").await;
    ui.wait_for("[data-testid=today-recovery]", LONG).await;
    ui.click("[data-testid=nav-settings]").await;
    ui.click("[data-testid=settings-nav-data]").await;

    // The backup made after the import: restored over it, equal to the store.
    std::fs::write(&answer, after.to_str().unwrap()).unwrap();
    press(&ui, "[data-testid=restore-button]").await;
    ui.wait_for("[data-testid=restore-summary]", LONG).await;
    ui.click("[data-testid=confirm-button]").await;
    let said = ui
        .wait_text("[data-testid=data-said]", LONG, |t| {
            t.starts_with("Restored")
        })
        .await;
    assert!(
        said.contains("The data you had before is kept at"),
        "{said}"
    );
    let restored = export_json(&ui, &answer, &files.join("after.json")).await;
    assert_eq!(
        restored, store,
        "restored equal to the store it was backed up from"
    );
    let before = counts(&ui).await;

    // A damaged copy and another program's database: refused, saying why; nothing replaced.
    let damaged = files.join("damaged.db");
    let mut bytes = std::fs::read(&after).unwrap();
    let len = bytes.len();
    bytes[len / 3..len / 2].fill(0x5a);
    std::fs::write(&damaged, &bytes).unwrap();
    let foreign = files.join("notes.sqlite");
    let made = std::process::Command::new(python())
        .args(["-c", FOREIGN])
        .arg(&foreign)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for (file, why, shot) in [
        (&damaged, "is damaged", "data-8-restore-refused-damaged.png"),
        (
            &foreign,
            "is not a VitalTrends backup: it is an SQLite database without VitalTrends' tables",
            "data-9-restore-refused-foreign.png",
        ),
    ] {
        std::fs::write(&answer, file.to_str().unwrap()).unwrap();
        press(&ui, "[data-testid=restore-button]").await;
        let refused = ui
            .wait_text("[data-testid=restore-error]", LONG, |t| t.contains(why))
            .await;
        assert!(
            refused.starts_with(&format!("The file {}", file.display()))
                && refused.ends_with("Nothing was replaced.")
                && refused.len() < 400,
            "{refused}"
        );
        assert!(!ui.exists("[data-testid=restore-summary]").await);
        ui.script(
            "document.querySelector('[data-testid=restore-error]').scrollIntoView({block: 'center'}); \
             return true",
        )
        .await;
        ui.screenshot_settled(&shots.join(shot)).await;
        assert_eq!(counts(&ui).await, before, "nothing replaced");
    }
    let still = export_json(&ui, &answer, &files.join("still.json")).await;
    assert_eq!(still, store, "nothing replaced");
    let aside: Vec<String> = std::fs::read_dir(fresh_dir.join("data/service"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("vitaltrends.db.replaced-")
                && !n.ends_with("-wal")
                && !n.ends_with("-shm")
        })
        .collect();
    assert_eq!(
        aside.len(),
        2,
        "each restore kept the data before it: {aside:?}"
    );
    ui.close().await;
}

/// Without the test hook the real OS dialog opens (a GTK file chooser with the suggested name),
/// and closing it is Cancel: nothing written, nothing said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_save_dialog_opens_and_closing_it_cancels() {
    let work = tempfile::tempdir().unwrap();
    let app = binary("vitaltrends-desktop");
    let shots = shots_dir();
    let sim = SimProcess::start(&["--days", "30", "--seed", "3", "--auto-approve"]).await;
    let relay = RelayProcess::start(&sim, &work.path().join("relay.db")).await;
    let mut desktop = Desktop::start(work.path()).await;
    let env = service_env(work.path(), &desktop, &app, &sim, &relay);
    let ui = WebDriver::start(&app, &env, &mut desktop.processes).await;
    ui.click("[data-testid=nav-settings]").await;
    ui.click("[data-testid=settings-nav-data]").await;
    ui.wait_for("[data-testid=export-button]", LONG).await;
    set(&ui, "export-format", "json").await;
    press(&ui, "[data-testid=export-button]").await;
    let title = "Export as JSON";
    e2e::desktop::eventually("the save dialog opens", LONG, || async {
        desktop.window_size(title).await.is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    desktop
        .screenshot(&shots.join("data-0-save-dialog.png"))
        .await;
    desktop.close_window(title).await;
    e2e::desktop::eventually("the save dialog closes", LONG, || async {
        desktop.window_size(title).await.is_none()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!ui.exists("[data-testid=data-said]").await);
    assert!(!ui.exists("[data-testid=data-error]").await);
    ui.close().await;
}
