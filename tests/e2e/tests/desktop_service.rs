//! A VitalTrends-service build, as a release is made: the WHOOP client id, relay and WHOOP
//! address are the build's own (here through the debug-build test hook: the
//! `VITALTRENDS_RELEASE_*` variables at run time stand in for the values a release bakes in at
//! compile time; see `config::Release`). The person never chooses anything: Connect WHOOP signs
//! in through the real relay's broker, the import runs, live updates come from the relay's
//! stream, and after a restart everything is as it was. No `VITALTRENDS_*` setting is involved.
//!
//! The service shares one WHOOP app's limits among everyone (the relay's quota coordinator),
//! here a small one: the import waits its turn part-way, and the card says so.

use std::time::Duration;

use e2e::desktop::{app_env, eventually, shots_dir, Consent, Desktop, WebDriver};
use e2e::{binary, python_reads, send_webhooks_to, RelayProcess, SimProcess};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_build_connects_through_the_relay_with_nothing_configured() {
    let work = tempfile::tempdir().unwrap();
    let app = binary("vitaltrends-desktop");
    // WHOOP's minute lasts 10 s for both (time scale 6), with 20 requests in it for the whole
    // app: the sign-in and the last 30 days fit in the first, the rest of 120 days waits.
    let limit = ["20", "6"];
    let sim = SimProcess::start(&[
        "--days",
        "120",
        "--seed",
        "31",
        "--auto-approve",
        "--rate-limit-minute",
        limit[0],
        "--rate-window-scale",
        limit[1],
    ])
    .await;
    let relay = RelayProcess::start_with(
        &sim,
        &work.path().join("relay.db"),
        "127.0.0.1:0",
        &[
            "--whoop-rate-minute",
            limit[0],
            "--whoop-time-scale",
            limit[1],
        ],
    )
    .await;
    send_webhooks_to(&sim, &relay).await;

    let mut desktop = Desktop::start(work.path()).await;
    desktop.start_keyring(work.path()).await;
    let build = [
        (
            "VITALTRENDS_RELEASE_WHOOP_CLIENT_ID",
            sim.ready["client_id"].as_str().unwrap().to_string(),
        ),
        ("VITALTRENDS_RELEASE_RELAY_URL", relay.base_url.clone()),
        ("VITALTRENDS_RELEASE_WHOOP_BASE_URL", sim.base_url.clone()),
    ];
    let env: Vec<(String, String)> =
        app_env(work.path(), &desktop, &app, Consent::AutoApproved, &build)
            .into_iter()
            .filter(|(k, _)| {
                !k.starts_with("VITALTRENDS_") || k.starts_with("VITALTRENDS_RELEASE_")
            })
            .collect();

    let ui = WebDriver::start(&app, &env, &mut desktop.processes).await;
    ui.click("[data-testid=nav-settings]").await;
    let via = ui.text("[data-testid=connection-mode]", SHORT).await;
    assert!(via.contains("the VitalTrends service"), "{via}");
    ui.click("[data-testid=connect-button]").await;
    assert!(
        !ui.exists("[data-testid=connect-chooser]").await,
        "a service build connects without asking how"
    );
    // The relay holds the import back while the minute's share is spent, and the card says
    // why: that the last 30 days are in, or (when the import's four chains spent the minute
    // unevenly) that the newest days come first.
    let queued = ui
        .wait_text("[data-testid=quota-wait-notice]", LONG, |t| {
            t.starts_with("Queued: many people are importing right now.")
        })
        .await;
    assert!(
        queued.contains("Your last 30 days are in")
            || queued.contains("Your newest days come first"),
        "{queued}"
    );
    ui.screenshot_settled(&shots_dir().join("card-queued.png"))
        .await;
    ui.wait_gone("[data-testid=quota-wait-notice]", LONG).await;
    let connected = ui
        .wait_text("[data-testid=whoop-status]", LONG, |t| {
            t.starts_with("Connected as")
        })
        .await;
    let store = work
        .path()
        .join("xdg/app.vitaltrends.desktop/service/vitaltrends.db");
    let want = record_ids_of(&sim.get_json("/_sim/dump").await);
    eventually("the whole import in the store", LONG, || async {
        record_ids_in(&store) == want
    })
    .await;
    assert_eq!(
        sim.get_json("/_sim/stats").await["app"]["rate_limited"],
        0,
        "WHOOP answered no request with a 429"
    );
    ui.wait_text("[data-testid=live-updates]", LONG, |t| {
        t == "Live updates on"
    })
    .await;

    // A new record at WHOOP arrives through the relay's stream.
    let before = ui.text("[data-testid=whoop-card]", SHORT).await;
    sim.post_json("/_sim/log-workout", json!({"hours_ago": 30.0}))
        .await;
    ui.wait_text("[data-testid=whoop-card]", LONG, |t| t != before)
        .await;

    let settings = work.path().join("xdg-config/vitaltrends/settings.toml");
    assert!(
        !settings.exists()
            || !std::fs::read_to_string(&settings)
                .unwrap()
                .contains("secret"),
        "nothing secret in the settings file"
    );
    assert!(
        work.path()
            .join("xdg/app.vitaltrends.desktop/service/vitaltrends.db")
            .exists(),
        "the service's records live in their own directory"
    );

    let ui = ui.restart(&app, &env, &mut desktop.processes).await;
    ui.click("[data-testid=nav-settings]").await;
    let again = ui
        .wait_text("[data-testid=whoop-status]", LONG, |t| {
            t.starts_with("Connected as")
        })
        .await;
    assert_eq!(again, connected);
    ui.wait_text("[data-testid=live-updates]", LONG, |t| {
        t == "Live updates on"
    })
    .await;
    let errors = ui.script("return window.__errs").await;
    assert_eq!(errors, json!([]), "script errors: {errors}");
}

/// The ids of every record WHOOP holds, per collection.
fn record_ids_of(dump: &Value) -> Value {
    let ids = |collection: &str, key: &str| -> Vec<String> {
        let mut ids: Vec<String> = dump[collection]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[key].to_string().trim_matches('"').to_string())
            .collect();
        ids.sort();
        ids
    };
    json!({
        "cycle": ids("cycle", "id"),
        "sleep": ids("sleep", "id"),
        "recovery": ids("recovery", "cycle_id"),
        "workout": ids("workout", "id"),
    })
}

/// The ids of every record in the app's store, read by Python's own `sqlite3` (Null while the
/// file cannot be read).
fn record_ids_in(db: &std::path::Path) -> Value {
    let script = r#"
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
ids = lambda sql: sorted(str(r[0]) for r in db.execute(sql))
print(json.dumps({"cycle": ids("SELECT id FROM cycle"), "sleep": ids("SELECT id FROM sleep"),
                  "recovery": ids("SELECT cycle_id FROM recovery"),
                  "workout": ids("SELECT id FROM workout")}))
"#;
    python_reads(script, db).unwrap_or(Value::Null)
}
