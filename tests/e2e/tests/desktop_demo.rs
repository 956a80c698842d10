//! The README's first command, as a newcomer meets it: the real app with no WHOOP settings at
//! all starts in demo mode (simulator and relay in-process), says it shows demo data, and
//! Connect WHOOP goes through the simulator's consent page in the (stand-in) system browser,
//! where the person presses Authorize; the import lands and live updates are on.

use std::path::Path;
use std::time::Duration;

use e2e::binary;
use e2e::desktop::{expected_recovery, fake_browser_with, Consent, Desktop, WebDriver};

const LONG: Duration = Duration::from_secs(90);
const SHORT: Duration = Duration::from_secs(20);

/// The app's environment in demo mode: no VITALTRENDS_WHOOP_* settings. Only the places the
/// app writes to are pointed into the test's directory, and the stand-in browser comes first
/// on the PATH.
fn demo_env(work: &Path, desktop: &Desktop, app: &Path) -> Vec<(String, String)> {
    let browser_bin = fake_browser_with(work, app, Consent::PressAuthorize);
    let path = format!(
        "{}:{}",
        browser_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    [
        ("DISPLAY", desktop.display.clone()),
        ("DBUS_SESSION_BUS_ADDRESS", desktop.bus.clone()),
        ("PATH", path),
        ("XDG_DATA_HOME", work.join("xdg").display().to_string()),
        (
            "XDG_CONFIG_HOME",
            work.join("xdg-config").display().to_string(),
        ),
        (
            "VITALTRENDS_DATA_DIR",
            work.join("data").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_tries_the_demo_without_a_whoop_account() {
    let work = tempfile::tempdir().unwrap();
    let app = binary("vitaltrends-desktop");
    let shots = app.parent().unwrap().parent().unwrap().join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut desktop = Desktop::start(work.path()).await;
    let env = demo_env(work.path(), &desktop, &app);
    let ui = WebDriver::start(&app, &env, &mut desktop.processes).await;

    let badge = ui.text("[data-testid=demo-badge]", LONG).await;
    assert_eq!(badge, "Demo data");
    ui.click("[data-testid=nav-settings]").await;
    let status = ui.text("[data-testid=whoop-status]", SHORT).await;
    assert!(status.contains("Not connected"), "{status}");

    ui.click("[data-testid=connect-button]").await;
    ui.wait_text("[data-testid=whoop-status]", LONG, |t| {
        t.starts_with("Connected")
    })
    .await;
    // The consent page was the in-process simulator's, on loopback; the person authorized it
    // there and WHOOP's redirect reached the app as a deep link.
    let opened = std::fs::read_to_string(work.path().join("opened.log")).unwrap();
    assert!(
        opened.starts_with("http://127.0.0.1:") && opened.contains("/oauth/oauth2/auth?"),
        "{opened}"
    );
    assert!(
        opened.contains("redirect vitaltrends://oauth/whoop/callback?code="),
        "{opened}"
    );
    // The sign-in went through the in-process relay, whose stream now carries the webhooks.
    ui.wait_text("[data-testid=live-updates]", LONG, |t| {
        t.contains("Live updates on")
    })
    .await;
    ui.screenshot(&shots.join("demo-1-connected.png")).await;

    // The dashboard shows the demo WHOOP's latest recovery. (Whether last night is scored yet
    // depends on the hour: the demo's simulated person sleeps on a real clock.)
    let whoop = opened
        .split("/oauth/")
        .next()
        .expect("the consent URL's origin")
        .to_string();
    let dump: serde_json::Value = reqwest::get(format!("{whoop}/_sim/dump"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let want = expected_recovery(&dump);
    ui.click("[data-testid=nav-dashboard]").await;
    let recovery = ui
        .wait_text("[data-testid=today-recovery]", SHORT, |t| t.contains(&want))
        .await;
    assert!(
        !recovery.contains(" 0%"),
        "pending is never zero: {recovery}"
    );
    ui.wait_for("[data-testid=chart-recovery]", SHORT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ui.screenshot(&shots.join("demo-2-dashboard.png")).await;
    let notified = desktop.notifications();
    assert!(notified.contains("WHOOP import finished"), "{notified}");
    ui.close().await;
}

/// Where the desktop cannot register the `vitaltrends://` scheme, the browser brings the sign-in
/// back to a one-off listener on 127.0.0.1 instead; the person sees the same card and result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_scheme_the_sign_in_comes_back_through_loopback() {
    let work = tempfile::tempdir().unwrap();
    let app = binary("vitaltrends-desktop");
    let mut desktop = Desktop::start(work.path()).await;
    let mut env = demo_env(work.path(), &desktop, &app);
    env.push(("VITALTRENDS_SIGN_IN_REDIRECT".into(), "loopback".into()));
    let ui = WebDriver::start(&app, &env, &mut desktop.processes).await;

    ui.click("[data-testid=nav-settings]").await;
    ui.click("[data-testid=connect-button]").await;
    ui.wait_text("[data-testid=whoop-status]", LONG, |t| {
        t.starts_with("Connected")
    })
    .await;
    let notice = ui.text("[data-testid=notice]", SHORT).await;
    assert!(notice.starts_with("Connected as "), "{notice}");
    let opened = std::fs::read_to_string(work.path().join("opened.log")).unwrap();
    assert!(
        opened.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{opened}"
    );
    assert!(opened.contains("redirect http://127.0.0.1:"), "{opened}");
    ui.close().await;
}
