//! A WHOOP member installs VitalTrends (a build without the VitalTrends service) and connects
//! their own WHOOP developer app from the window, with no environment variables: the chooser,
//! the own-app form with the exact redirect URIs, a simulator that matches redirect URIs
//! strictly (as WHOOP does) registered with exactly those, sign-in, import, a restart that finds
//! everything as it was, and a trip to demo data and back that never mixes the two stores. The
//! client secret must be in the OS keychain (a real Secret Service on the test's bus) and
//! nowhere in the settings file. Screenshots go to `target/shots/`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use e2e::desktop::{app_env, eventually, shots_dir, Consent, Desktop, WebDriver};
use e2e::{binary, free_port, SimProcess};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(20);
const CLIENT_SECRET: &str = "demo-secret";

/// Every record id in a store, read through the CLI's export as a person would.
async fn store_ids(data_dir: &Path) -> BTreeSet<String> {
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("export.json");
    let done = tokio::process::Command::new(binary("vitaltrends"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("VITALTRENDS_CONFIG_DIR", scratch.path())
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--secret-store",
            "insecure-file",
            "export",
            "--format",
            "json",
            "--out",
        ])
        .arg(&out)
        .output()
        .await
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    ids_of(&serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap())
}

/// The record ids of an export or a simulator dump (both in WHOOP's own shape).
fn ids_of(export: &Value) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        for record in export[collection].as_array().unwrap() {
            let id = record.get("id").unwrap_or(&record["cycle_id"]);
            ids.insert(format!("{collection}:{id}"));
        }
    }
    ids
}

/// The app's environment with nothing VitalTrends-specific in it: the data and settings
/// locations are the OS defaults under the test's own XDG directories.
fn plain_env(work: &Path, desktop: &Desktop, app: &Path) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = app_env(work, desktop, app, Consent::PressAuthorize, &[])
        .into_iter()
        .filter(|(k, _)| !k.starts_with("VITALTRENDS_"))
        .collect();
    // The autostart entry goes to ~/.config/autostart whatever XDG_CONFIG_HOME says (the
    // auto-launch crate's choice), so the test gives the app a home of its own.
    env.push(("HOME".into(), work.join("home").display().to_string()));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_connects_their_own_whoop_app_from_the_window() {
    let work = tempfile::tempdir().unwrap();
    let shots = shots_dir();
    let app = binary("vitaltrends-desktop");
    let mut desktop = Desktop::start(work.path()).await;
    desktop.start_keyring(work.path()).await;
    let env = plain_env(work.path(), &desktop, &app);
    let data_root = work.path().join("xdg/app.vitaltrends.desktop");
    let settings_file = work.path().join("xdg-config/vitaltrends/settings.toml");

    // First run, nothing configured: Connect WHOOP asks how to connect.
    let ui = WebDriver::start(&app, &env, &mut desktop.processes).await;
    ui.click("[data-testid=nav-settings]").await;
    let status = ui.text("[data-testid=whoop-status]", SHORT).await;
    assert_eq!(status, "Not connected");
    ui.click("[data-testid=connect-button]").await;
    ui.wait_for("[data-testid=connect-chooser]", SHORT).await;
    assert!(
        !ui.exists("[data-testid=choose-service]").await,
        "a build without the service does not offer it"
    );
    ui.screenshot_settled(&shots.join("modes-1-chooser.png"))
        .await;

    // The own-app form: the person picks a port; the loopback URI follows it.
    ui.click("[data-testid=choose-own-app]").await;
    let port = free_port();
    ui.type_into("[data-testid=own-app-port]", &port.to_string())
        .await;
    let deep_link = ui.text("[data-testid=redirect-uri-deep-link]", SHORT).await;
    let loopback = ui
        .wait_text("[data-testid=redirect-uri-loopback]", SHORT, |t| {
            t.contains(&port.to_string())
        })
        .await;
    assert_eq!(deep_link, "vitaltrends://oauth/whoop/callback");
    assert_eq!(
        loopback,
        format!("http://127.0.0.1:{port}/oauth/whoop/callback")
    );

    // The person registers exactly those URIs with their WHOOP app (the simulator, strict).
    let sim = SimProcess::start(&[
        "--days",
        "45",
        "--seed",
        "901",
        "--redirect-uri",
        &deep_link,
        "--redirect-uri",
        &loopback,
    ])
    .await;
    let client_id = sim.ready["client_id"].as_str().unwrap().to_string();
    ui.type_into("[data-testid=own-app-client-id]", &client_id)
        .await;
    ui.type_into("[data-testid=own-app-client-secret]", CLIENT_SECRET)
        .await;
    ui.click("[data-testid=own-app-advanced]").await;
    ui.type_into("[data-testid=own-app-base-url]", &sim.base_url)
        .await;
    ui.screenshot_settled(&shots.join("modes-2-own-app-form.png"))
        .await;
    ui.click("[data-testid=own-app-save]").await;

    // Sign-in (the stand-in browser presses Authorize), then the import.
    let connected = ui
        .wait_text("[data-testid=whoop-status]", LONG, |t| {
            t.starts_with("Connected as")
        })
        .await;
    let via = ui.text("[data-testid=connection-mode]", SHORT).await;
    assert!(via.contains("your own WHOOP developer app"), "{via}");
    let live = ui.text("[data-testid=live-updates]", SHORT).await;
    assert_eq!(live, "Live updates off · catching up every 6 hours");
    let own_ids = store_ids(&data_root.join("own-app")).await;
    assert_eq!(
        own_ids,
        ids_of(&sim.get_json("/_sim/dump").await),
        "the import stored exactly the member's records"
    );

    // The file holds the choice and the client id, never the secret; the keychain holds it.
    let file = std::fs::read_to_string(&settings_file).expect("the settings file");
    assert!(file.contains("mode = \"own-app\""), "{file}");
    assert!(file.contains(&client_id), "{file}");
    assert!(file.contains(&format!("port = {port}")), "{file}");
    assert!(
        !file.contains(CLIENT_SECRET),
        "no secret in the file:\n{file}"
    );
    assert_eq!(
        desktop
            .keyring_lookup("VitalTrends (settings)", "whoop.client_secret")
            .await
            .as_deref(),
        Some(CLIENT_SECRET),
        "the client secret is in the OS keychain"
    );

    // Settings → General and About.
    ui.click("[data-testid=settings-nav-general]").await;
    ui.wait_for("[data-testid=pref-keep_in_tray]", SHORT).await;
    ui.screenshot_settled(&shots.join("modes-3-settings-general.png"))
        .await;
    // Start at login registers an XDG autostart entry that starts this binary.
    let autostart = work.path().join("home/.config/autostart");
    assert!(!autostart.exists(), "off by default");
    ui.click("[data-testid=pref-start_at_login]").await;
    eventually("the autostart entry", SHORT, || async {
        std::fs::read_dir(&autostart).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("vitaltrends-desktop"))
            })
        })
    })
    .await;
    ui.click("[data-testid=pref-start_at_login]").await;
    eventually("the autostart entry removed", SHORT, || async {
        std::fs::read_dir(&autostart).map_or(true, |mut entries| entries.next().is_none())
    })
    .await;
    // The OS hears of it first, then the settings file (see set_pref).
    eventually("start_at_login = false saved", SHORT, || async {
        std::fs::read_to_string(&settings_file).is_ok_and(|f| f.contains("start_at_login = false"))
    })
    .await;
    ui.click("[data-testid=settings-nav-about]").await;
    let mode = ui.text("[data-testid=about-mode]", SHORT).await;
    assert_eq!(mode, "My own WHOOP developer app");
    let data_dir = ui.text("[data-testid=about-data-dir]", SHORT).await;
    assert!(data_dir.ends_with("own-app"), "{data_dir}");
    ui.screenshot_settled(&shots.join("modes-4-settings-about.png"))
        .await;

    // Restart: still connected, same mode, nothing asked again.
    let ui = ui.restart(&app, &env, &mut desktop.processes).await;
    ui.click("[data-testid=nav-settings]").await;
    let again = ui
        .wait_text("[data-testid=whoop-status]", LONG, |t| {
            t.starts_with("Connected as")
        })
        .await;
    assert_eq!(again, connected);
    let via = ui.text("[data-testid=connection-mode]", SHORT).await;
    assert!(via.contains("your own WHOOP developer app"), "{via}");

    // To demo data (confirmed), signed in on the demo's own WHOOP.
    ui.click("[data-testid=change-connection-button]").await;
    ui.click("[data-testid=choose-demo]").await;
    let confirm = ui.text("[data-testid=connect-chooser]", SHORT).await;
    assert!(confirm.contains("Switch to demo data?"), "{confirm}");
    ui.click("[data-testid=confirm-switch]").await;
    ui.wait_for("[data-testid=card-demo-label]", LONG).await;
    ui.wait_text("[data-testid=whoop-status]", LONG, |t| {
        t.starts_with("Connected as")
    })
    .await;
    let badge = ui.text("[data-testid=demo-badge]", SHORT).await;
    assert_eq!(badge, "Demo data");
    let demo_ids = store_ids(&data_root.join("demo")).await;
    assert!(!demo_ids.is_empty(), "the demo imported its records");
    assert!(
        demo_ids.is_disjoint(&own_ids),
        "no demo record in the member's store or the other way round"
    );
    assert_eq!(
        store_ids(&data_root.join("own-app")).await,
        own_ids,
        "the member's store is untouched by the demo"
    );

    // And back: leave demo data, choose the own app again (the saved secret is kept).
    ui.click("[data-testid=leave-demo-button]").await;
    ui.click("[data-testid=confirm-button]").await;
    ui.wait_text("[data-testid=whoop-status]", LONG, |t| t == "Not connected")
        .await;
    ui.click("[data-testid=connect-button]").await;
    ui.click("[data-testid=choose-own-app]").await;
    let prefilled = ui
        .script("return document.querySelector('[data-testid=own-app-client-id]').value")
        .await;
    assert_eq!(prefilled.as_str(), Some(client_id.as_str()));
    ui.click("[data-testid=own-app-save]").await;
    let back = ui
        .wait_text("[data-testid=whoop-status]", LONG, |t| {
            t.starts_with("Connected as")
        })
        .await;
    assert_eq!(back, connected);
    assert!(!ui.exists("[data-testid=card-demo-label]").await);
    assert!(
        store_ids(&data_root.join("own-app"))
            .await
            .is_disjoint(&demo_ids),
        "no demo record reached the member's store"
    );
    let errors = ui.script("return window.__errs").await;
    assert_eq!(errors, serde_json::json!([]), "script errors: {errors}");

    // With "keep running in the tray" off, closing the window quits VitalTrends.
    ui.click("[data-testid=settings-nav-general]").await;
    ui.click("[data-testid=pref-keep_in_tray]").await;
    eventually("the preference saved", SHORT, || async {
        std::fs::read_to_string(&settings_file).is_ok_and(|t| t.contains("keep_in_tray = false"))
    })
    .await;
    assert!(!e2e::desktop::process_tree(&app).is_empty());
    desktop.close_window("VitalTrends").await;
    eventually("VitalTrends quit", SHORT, || async {
        e2e::desktop::process_tree(&app).is_empty()
    })
    .await;
}
