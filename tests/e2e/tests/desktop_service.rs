//! A VitalTrends-service build, as a release is made: the WHOOP client id, relay and WHOOP
//! address are the build's own (here through the debug-build test hook: the
//! `VITALTRENDS_RELEASE_*` variables at run time stand in for the values a release bakes in at
//! compile time; see `config::Release`). The person never chooses anything: Connect WHOOP signs
//! in through the real relay's broker, the import runs, live updates come from the relay's
//! stream, and after a restart everything is as it was. No `VITALTRENDS_*` setting is involved.

use std::time::Duration;

use e2e::desktop::{app_env, Consent, Desktop, WebDriver};
use e2e::{binary, send_webhooks_to, RelayProcess, SimProcess};
use serde_json::json;

const LONG: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_build_connects_through_the_relay_with_nothing_configured() {
    let work = tempfile::tempdir().unwrap();
    let app = binary("vitaltrends-desktop");
    let sim = SimProcess::start(&["--days", "40", "--seed", "31", "--auto-approve"]).await;
    let relay = RelayProcess::start(&sim, &work.path().join("relay.db")).await;
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
    let connected = ui
        .wait_text("[data-testid=whoop-status]", LONG, |t| {
            t.starts_with("Connected as")
        })
        .await;
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
