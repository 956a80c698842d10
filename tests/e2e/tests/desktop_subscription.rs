//! The subscription gate in the real window: connecting through a relay whose gate is on, with
//! no licence, leaves the WHOOP card at "Subscription required" (Subscribe, Enter licence key);
//! a key issued by the relay's own `licence issue` command, entered on the card, lets the same
//! Connect go through, and Settings → Subscription shows the plan and the devices in use. Revoked,
//! the licence keeps working through its (short) grace period; then the relay ends the stream and
//! the card says "Subscription ended · history kept" while the dashboard still shows the history.
//! Screenshots go to `target/shots/`.

use std::time::Duration;

use e2e::desktop::{expected_recovery, service_env, shots_dir, shows_word, Desktop, WebDriver};
use e2e::{binary, RelayProcess, SimProcess};
use serde_json::json;
use tokio::process::Command;

const LONG: Duration = Duration::from_secs(90);
const SHORT: Duration = Duration::from_secs(20);

async fn relay_command(args: &[&str]) -> String {
    let out = Command::new(binary("vitaltrends-relay"))
        .args(args)
        .output()
        .await
        .expect("run vitaltrends-relay");
    assert!(
        out.status.success(),
        "vitaltrends-relay {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_asks_for_a_subscription_and_a_licence_key_lets_it_connect() {
    let work = tempfile::tempdir().unwrap();
    let shots = shots_dir();
    let app = binary("vitaltrends-desktop");
    let sim = SimProcess::start(&[
        "--days",
        "60",
        "--seed",
        "23",
        "--auto-approve",
        "--rate-limit-minute",
        "10000",
    ])
    .await;
    let signing = work.path().join("licence-signing.key");
    let public = work.path().join("licence-public.key");
    let database = work.path().join("relay.db");
    let printed = relay_command(&["licence", "keygen", "--out", signing.to_str().unwrap()]).await;
    std::fs::write(&public, printed).unwrap();
    let relay = RelayProcess::start_with(
        &sim,
        &database,
        "127.0.0.1:0",
        &[
            "--licence-key-file",
            public.to_str().unwrap(),
            "--licence-grace-secs",
            "4",
            "--heartbeat-secs",
            "1",
        ],
    )
    .await;
    sim.post_json(
        "/_sim/webhook-url",
        json!({"url": format!("{}/webhooks/whoop", relay.base_url)}),
    )
    .await;

    let mut desktop = Desktop::start(work.path()).await;
    let env = service_env(work.path(), &desktop, &app, &sim, &relay);
    let ui = WebDriver::start(&app, &env, &mut desktop.processes).await;
    ui.click("[data-testid=nav-settings]").await;

    // No licence: WHOOP approves, the relay answers 402, the card says what to do.
    ui.click("[data-testid=connect-button]").await;
    ui.wait_text("[data-testid=whoop-status]", LONG, |t| {
        t.contains("Subscription required")
    })
    .await;
    assert!(ui.exists("[data-testid=subscribe-button]").await);
    assert!(ui.exists("[data-testid=enter-key-button]").await);
    assert!(
        ui.exists("[data-testid=no-licence]").await,
        "Settings → Subscription"
    );
    ui.screenshot_settled(&shots.join("card-subscription-required.png"))
        .await;

    // A licence from the operator's command, entered on the card.
    let database_url = format!("sqlite://{}", database.display());
    let key = relay_command(&[
        "licence",
        "issue",
        "--database-url",
        &database_url,
        "--licence-key-file",
        signing.to_str().unwrap(),
        "--days",
        "30",
        "--plan",
        "personal",
    ])
    .await;
    ui.click("[data-testid=enter-key-button]").await;
    ui.wait_for("[data-testid=licence-input]", SHORT).await;
    ui.script(&format!(
        "const i = document.querySelector('[data-testid=licence-input]'); i.value = {}; \
         i.dispatchEvent(new Event('input', {{ bubbles: true }}));",
        serde_json::to_string(key.trim()).unwrap()
    ))
    .await;
    ui.click("[data-testid=save-key-button]").await;
    ui.wait_for("[data-testid=connect-button]", SHORT).await;
    let page: String = ui
        .script("return document.body.innerHTML;")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        !page.contains(key.trim()),
        "the key left the webview after entry"
    );
    ui.click("[data-testid=connect-button]").await;
    ui.wait_text("[data-testid=whoop-status]", LONG, |t| {
        t.contains("Importing") || t.contains("Connected as")
    })
    .await;
    ui.wait_text("[data-testid=licence-devices]", LONG, |t| {
        t.contains("1 of 3 in use")
    })
    .await;
    assert_eq!(
        ui.text("[data-testid=licence-plan]", SHORT)
            .await
            .to_lowercase(),
        "personal"
    );
    ui.screenshot_settled(&shots.join("settings-subscription.png"))
        .await;

    // The import finishes and live updates run; then the licence is revoked.
    ui.wait_text("[data-testid=live-updates]", LONG, |t| {
        t.contains("Live updates on")
    })
    .await;
    relay_command(&[
        "licence",
        "revoke",
        "--database-url",
        &database_url,
        key.trim(),
    ])
    .await;
    ui.wait_text("[data-testid=whoop-status]", LONG, |t| {
        t.contains("Subscription ended · history kept")
    })
    .await;
    assert!(ui.exists("[data-testid=renew-button]").await);
    ui.screenshot_settled(&shots.join("card-subscription-ended.png"))
        .await;
    ui.click("[data-testid=nav-dashboard]").await;
    let want = expected_recovery(&sim.get_json("/_sim/dump").await);
    ui.wait_text("[data-testid=today-recovery]", LONG, |t| {
        shows_word(t, &want)
    })
    .await;
    ui.screenshot_settled(&shots.join("dashboard-after-subscription-ended.png"))
        .await;
    ui.close().await;
}
