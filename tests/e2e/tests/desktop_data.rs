//! Settings → Data in the real window: exports in each format written where the person said,
//! read back with pyarrow and Python's csv and json (exactly the simulator's records); the
//! completeness calendar showing the simulator's pending and unscorable days, a deleted day as
//! missing, and "Re-fetch these days" repairing it; a backup. Screenshots in target/shots/.
//!
//! The path comes from the section's path field (the OS save dialog is not wired yet).

use std::time::Duration;

use e2e::desktop::{app_env, configured, shots_dir, Consent, Desktop, WebDriver};
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
    let env = app_env(
        work.path(),
        &desktop,
        &app,
        Consent::AutoApproved,
        &configured(&sim.base_url, &relay.base_url),
    );
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

    // Each format, all time, to a path the test chose.
    let out = work.path().join("exports");
    for (format, path) in [
        ("parquet", out.join("pq")),
        ("csv", out.join("csv")),
        ("json", out.join("all.json")),
    ] {
        set(&ui, "export-format", format).await;
        ui.type_into("[data-testid=export-path]", path.to_str().unwrap())
            .await;
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
        .arg(out.join("pq"))
        .arg(out.join("csv"))
        .arg(out.join("all.json"))
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    ui.screenshot(&shots.join("data-2-day-missing.png")).await;
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    ui.screenshot(&shots.join("data-3-repaired.png")).await;

    // Back up now.
    let backup = work.path().join("backup.db");
    ui.type_into("[data-testid=backup-path]", backup.to_str().unwrap())
        .await;
    press(&ui, "[data-testid=backup-button]").await;
    ui.wait_text("[data-testid=data-said]", LONG, |t| {
        t.starts_with("Backed up")
    })
    .await;
    assert!(backup.exists());
    ui.close().await;
}
