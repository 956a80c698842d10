//! The README's first command, as a newcomer meets it: the real app with no WHOOP settings at
//! all starts in demo mode (simulator and relay in-process), says it shows demo data, and
//! Connect WHOOP goes through the simulator's consent page in the (stand-in) system browser,
//! where the person presses Authorize; the import lands and live updates are on.

use std::time::Duration;

use e2e::binary;
use e2e::desktop::{
    app_env, expected_recovery, shots_dir, shows_word, Consent, Desktop, WebDriver,
};

const LONG: Duration = Duration::from_secs(90);
const SHORT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_tries_the_demo_without_a_whoop_account() {
    let work = tempfile::tempdir().unwrap();
    let app = binary("vitaltrends-desktop");
    let shots = shots_dir();
    let mut desktop = Desktop::start(work.path()).await;
    // Demo mode, as scripts/demo.sh opens it.
    let env = app_env(
        work.path(),
        &desktop,
        &app,
        Consent::PressAuthorize,
        &[("VITALTRENDS_MODE", "demo".to_string())],
    );
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
        .wait_text("[data-testid=today-recovery]", SHORT, |t| {
            shows_word(t, &want)
        })
        .await;
    assert!(
        want == "0%" || !shows_word(&recovery, "0%"),
        "pending is never zero: {recovery}"
    );
    ui.wait_for("[data-testid=chart-recovery]", SHORT).await;
    ui.screenshot_settled(&shots.join("demo-2-dashboard.png"))
        .await;
    desktop
        .wait_notifications("Demo data · WHOOP import finished", 1, SHORT)
        .await;
    // The tray says it too (Linux tray hosts show no tooltip, so its status line does).
    let menu = desktop.tray_menu().await;
    assert!(menu.contains("Demo data · "), "{menu}");
    // The bubble carries the app's icon: a PNG the notification server can load.
    let icons = desktop.notification_icons();
    assert!(!icons.is_empty());
    for icon in icons {
        let png = std::fs::read(&icon).unwrap_or_else(|e| panic!("icon {icon:?}: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "{icon} is a PNG");
    }
    ui.close().await;
}

/// Where the desktop cannot register the `vitaltrends://` scheme, the browser brings the sign-in
/// back to a one-off listener on 127.0.0.1 instead; the person sees the same card and result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_scheme_the_sign_in_comes_back_through_loopback() {
    let work = tempfile::tempdir().unwrap();
    let app = binary("vitaltrends-desktop");
    let mut desktop = Desktop::start(work.path()).await;
    let env = app_env(
        work.path(),
        &desktop,
        &app,
        Consent::PressAuthorize,
        &[
            ("VITALTRENDS_MODE", "demo".to_string()),
            ("VITALTRENDS_SIGN_IN_REDIRECT", "loopback".to_string()),
        ],
    );
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
