//! What the person sees in the real window when WHOOP or the VitalTrends service misbehaves:
//! an import that keeps failing waits and says when it retries (and Retry now runs it), live
//! updates the service stopped say why and offer Reconnect, and signing in as another WHOOP
//! member is refused while the card stays true. Screenshots of each state go to `target/shots/`.

use std::time::Duration;

use e2e::desktop::{service_env, shots_dir, Desktop, WebDriver};
use e2e::{binary, RelayProcess, SimProcess};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(90);
const SHORT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_tells_the_truth_when_whoop_or_the_service_misbehaves() {
    let work = tempfile::tempdir().unwrap();
    let shots = shots_dir();
    let app = binary("vitaltrends-desktop");

    let sim = SimProcess::start(&[
        // A slow WHOOP with years of history: the import is still running when WHOOP breaks.
        "--days",
        "900",
        "--seed",
        "17",
        "--latency-ms",
        "150",
        "--auto-approve",
        "--webhook-retry-scale",
        "0.01",
        "--rate-limit-minute",
        "10000",
    ])
    .await;
    let relay = RelayProcess::start(&sim, &work.path().join("relay.db")).await;
    e2e::send_webhooks_to(&sim, &relay).await;

    let mut desktop = Desktop::start(work.path()).await;
    let env = service_env(work.path(), &desktop, &app, &sim, &relay);
    let ui = WebDriver::start(&app, &env, &mut desktop.processes).await;
    ui.click("[data-testid=nav-settings]").await;

    // Mid-import, WHOOP starts answering every data request with a 5xx: the import fails,
    // waits, and says so.
    ui.click("[data-testid=connect-button]").await;
    ui.wait_text("[data-testid=whoop-status]", LONG, |t| {
        t.contains("Importing")
    })
    .await;
    sim.post_json("/_sim/faults", json!({"error_rate": 1.0}))
        .await;
    let retrying = ui
        .wait_text("[data-testid=retry-notice]", LONG, |t| {
            t.contains("Retrying in")
        })
        .await;
    assert!(retrying.contains("WHOOP is not answering"), "{retrying}");
    ui.screenshot_settled(&shots.join("card-retrying.png"))
        .await;

    // WHOOP recovers; Retry now runs the import at once and it completes.
    sim.post_json("/_sim/faults", json!({"error_rate": 0.0}))
        .await;
    ui.click("[data-testid=retry-now-button]").await;
    // The card said "Connected as" before the click too (a failed import is not running), so
    // what shows the retried import succeeded is the retry notice going away.
    ui.wait_gone("[data-testid=retry-notice]", LONG).await;
    ui.wait_text("[data-testid=whoop-status]", LONG, |t| {
        t.contains("Connected as")
    })
    .await;
    ui.wait_text("[data-testid=live-updates]", LONG, |t| {
        t.contains("Live updates on")
    })
    .await;

    // The service forgets this device (as its retention pruning does): live updates stop with
    // the reason, catch-up goes on, and Reconnect is offered.
    let secrets: Value = serde_json::from_slice(
        &std::fs::read(work.path().join("data/service/insecure-secrets.json")).unwrap(),
    )
    .unwrap();
    let device = secrets["relay-device"].as_str().expect("a relay device");
    let forgot = reqwest::Client::new()
        .delete(format!("{}/v1/devices/self", relay.base_url))
        .bearer_auth(device)
        .send()
        .await
        .unwrap();
    assert!(forgot.status().is_success(), "{}", forgot.status());
    let live = ui
        .wait_text("[data-testid=live-updates]", LONG, |t| {
            t.contains("stopped")
        })
        .await;
    assert!(live.contains("catching up every 6 hours"), "{live}");
    let why = ui.text("[data-testid=live-problem]", SHORT).await;
    assert!(why.contains("no longer knows this device"), "{why}");
    assert!(ui.exists("[data-testid=reconnect-button]").await);
    ui.screenshot_settled(&shots.join("card-live-updates-stopped.png"))
        .await;

    // Reconnecting, the person signs in to WHOOP as someone else by mistake: refused, that
    // grant withdrawn, and the card still shows the first member, connected.
    let connected_as = ui.text("[data-testid=whoop-status]", SHORT).await;
    assert!(connected_as.starts_with("Connected as"), "{connected_as}");
    sim.post_json("/_sim/other-member-logins", json!({"count": 1}))
        .await;
    ui.click("[data-testid=reconnect-button]").await;
    let refused = ui
        .wait_text("[data-testid=notice]", LONG, |t| {
            t.contains("nothing was changed")
        })
        .await;
    assert!(refused.contains("You signed in to WHOOP as"), "{refused}");
    assert_eq!(
        ui.text("[data-testid=whoop-status]", SHORT).await,
        connected_as,
        "the card still shows the member whose history this is"
    );
    let grants = sim.get_json("/_sim/grants").await;
    let stray = grants
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["revoked"] == true)
        .count();
    assert!(
        stray >= 1,
        "the other member's grant was withdrawn: {grants}"
    );
    ui.screenshot_settled(&shots.join("card-other-member-refused.png"))
        .await;
    // The card offers to switch to that account; the person keeps the one whose history this is.
    let offer = ui.text("[data-testid=member-switch]", SHORT).await;
    assert!(offer.contains("You signed in to WHOOP as"), "{offer}");
    ui.click("[data-testid=keep-member-button]").await;
    ui.wait_gone("[data-testid=member-switch]", SHORT).await;

    // Reconnect: a new device credential, live updates on again.
    ui.click("[data-testid=reconnect-button]").await;
    ui.wait_text("[data-testid=live-updates]", LONG, |t| {
        t.contains("Live updates on")
    })
    .await;
    assert!(!ui.exists("[data-testid=live-problem]").await);
    ui.close().await;
}
