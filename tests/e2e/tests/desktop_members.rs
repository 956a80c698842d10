//! Two WHOOP accounts on one computer, in the real window: each keeps a store of its own.
//!
//! The person's history is imported as member A; signing in to WHOOP as member B (the
//! simulator's second member) is refused with an offer to switch; switching disconnects A, sets
//! A's store aside and signs in as B into a new store; switching back brings A's store back
//! exactly as it was. The stores are read with Python's own `sqlite3`, not through VitalTrends.

use std::path::Path;
use std::time::Duration;

use e2e::desktop::{service_env, shots_dir, Desktop, WebDriver};
use e2e::{binary, python_reads, RelayProcess, SimProcess};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(90);
const SHORT: Duration = Duration::from_secs(20);

/// Whose store a file is (the profile's user id and name) and how many records of each kind
/// it holds, as an independent reader sees it.
fn read_store(db: &Path) -> Value {
    let script = r#"
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
profile = db.execute("SELECT user_id, first_name || ' ' || last_name FROM profile").fetchall()
counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
          for t in ("cycle", "sleep", "recovery", "workout")}
print(json.dumps({"profiles": profile, "counts": counts}))
"#;
    python_reads(script, db).unwrap_or_else(|e| panic!("{e}"))
}

async fn disconnect(ui: &WebDriver) {
    ui.click("[data-testid=disconnect-button]").await;
    ui.click("[data-testid=confirm-button]").await;
    ui.wait_text("[data-testid=whoop-status]", LONG, |t| {
        t.starts_with("Not connected")
    })
    .await;
}

/// Connect WHOOP as someone whose history is not the one here: refused, then switched to.
async fn sign_in_as_other_and_switch(ui: &WebDriver, other: &str) {
    ui.click("[data-testid=connect-button]").await;
    let offer = ui
        .wait_text("[data-testid=member-switch]", LONG, |t| t.contains(other))
        .await;
    assert!(offer.contains("You signed in to WHOOP as"), "{offer}");
    ui.click("[data-testid=switch-member-button]").await;
    let dialog = ui.text("[role=dialog]", SHORT).await;
    assert!(dialog.contains(&format!("Switch to {other}?")), "{dialog}");
    ui.click("[data-testid=confirm-button]").await;
    ui.wait_text("[data-testid=whoop-status]", LONG, |t| {
        t == format!("Connected as {other}")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_whoop_account_keeps_its_own_history() {
    let work = tempfile::tempdir().unwrap();
    let app = binary("vitaltrends-desktop");
    let shots = shots_dir();
    let sim = SimProcess::start(&["--days", "20", "--seed", "17", "--auto-approve"]).await;
    let relay = RelayProcess::start(&sim, &work.path().join("relay.db")).await;
    let mut desktop = Desktop::start(work.path()).await;
    let env = service_env(work.path(), &desktop, &app, &sim, &relay);
    let ui = WebDriver::start(&app, &env, &mut desktop.processes).await;
    let data_dir = work.path().join("data/service");
    let store = data_dir.join("vitaltrends.db");

    // Member A imports their history.
    ui.click("[data-testid=nav-settings]").await;
    ui.click("[data-testid=connect-button]").await;
    let as_a = ui
        .wait_text("[data-testid=whoop-status]", LONG, |t| {
            t.starts_with("Connected as")
        })
        .await;
    let a_name = as_a.trim_start_matches("Connected as ").to_string();
    ui.wait_text("[data-testid=whoop-card]", LONG, |t| {
        t.contains("Last synced")
    })
    .await;
    let a_id = sim.ready["user_id"].as_i64().unwrap();
    let a_store = read_store(&store);
    assert_eq!(a_store["profiles"][0][0], json!(a_id), "{a_store}");
    assert!(
        a_store["counts"]["cycle"].as_i64().unwrap() >= 19,
        "{a_store}"
    );

    // A disconnects; the next sign-in at WHOOP is someone else. Refused, offered, switched.
    disconnect(&ui).await;
    sim.post_json("/_sim/other-member-logins", json!({"count": 2}))
        .await;
    ui.click("[data-testid=connect-button]").await;
    let offer = ui
        .wait_text("[data-testid=member-switch]", LONG, |t| {
            t.contains("Riley Other")
        })
        .await;
    assert!(offer.contains("one history per WHOOP account"), "{offer}");
    ui.screenshot_settled(&shots.join("card-member-switch-offer.png"))
        .await;
    ui.click("[data-testid=switch-member-button]").await;
    ui.wait_for("[role=dialog]", SHORT).await;
    ui.screenshot_settled(&shots.join("dialog-member-switch.png"))
        .await;
    ui.click("[data-testid=confirm-button]").await;
    ui.wait_text("[data-testid=whoop-status]", LONG, |t| {
        t == "Connected as Riley Other"
    })
    .await;
    ui.wait_text("[data-testid=whoop-card]", LONG, |t| {
        t.contains("Last synced")
    })
    .await;

    // A's store waits under members/<A>/, untouched; B's is new and B's alone.
    let a_aside = data_dir
        .join("members")
        .join(a_id.to_string())
        .join("vitaltrends.db");
    assert_eq!(
        read_store(&a_aside),
        a_store,
        "A's store set aside as it was"
    );
    let b_store = read_store(&store);
    let b_id = b_store["profiles"][0][0].as_i64().unwrap();
    assert_ne!(b_id, a_id);
    assert_eq!(
        b_store["profiles"].as_array().unwrap().len(),
        1,
        "{b_store}"
    );
    assert_eq!(b_store["profiles"][0][1], "Riley Other");

    // Back to A: B's store goes aside, A's comes back as it was.
    disconnect(&ui).await;
    sign_in_as_other_and_switch(&ui, &a_name).await;
    let back = read_store(&store);
    assert_eq!(back["profiles"], a_store["profiles"]);
    assert!(
        back["counts"]["cycle"].as_i64() >= a_store["counts"]["cycle"].as_i64(),
        "A's history came back: {back} vs {a_store}"
    );
    let b_aside = data_dir
        .join("members")
        .join(b_id.to_string())
        .join("vitaltrends.db");
    assert_eq!(read_store(&b_aside)["profiles"], b_store["profiles"]);
    assert!(
        !data_dir.join("members").join(a_id.to_string()).exists(),
        "A's set-aside folder is gone once A's store is back in use"
    );
    let errors = ui.script("return window.__errs").await;
    assert_eq!(errors, json!([]), "script errors: {errors}");
    ui.close().await;
}
