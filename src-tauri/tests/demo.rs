//! Demo mode without a desktop around it: the in-process simulator and relay the app starts when
//! no WHOOP is configured. A newcomer's path, step by step: consent page, deep link, import
//! through the relay's token broker, then live data as the simulator's webhooks pass through the
//! relay's event stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sync::events::{RecordingNotifier, SystemClock};
use sync::{EngineOptions, Schedule};
use vitaltrends_desktop::core::{self, ConnectionStateKey};
use vitaltrends_desktop::demo;

/// Answers the simulator's consent page the way a person does: open it, press Authorize.
/// Returns where WHOOP redirects the browser.
async fn approve_in_browser(consent_url: &url::Url) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(consent_url.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Authorize"), "a consent page: {page}");
    let marker = "name=\"consent\" value=\"";
    let at = page.find(marker).expect("the consent form") + marker.len();
    let consent = &page[at..at + page[at..].find('"').unwrap()];
    let origin = consent_url.origin().ascii_serialization();
    let answer = http
        .post(format!("{origin}/oauth/oauth2/auth/decision"))
        .form(&[("consent", consent), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_redirection(), "{}", answer.status());
    answer.headers()["location"].to_str().unwrap().to_string()
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_signs_in_through_the_relay_and_keeps_growing_by_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let notifier = Arc::new(RecordingNotifier::default());
    let demo = demo::start(
        &dir.path().join("demo"),
        EngineOptions {
            notifier: notifier.clone(),
            clock: Arc::new(SystemClock),
            schedule: Schedule::default(),
        },
        whoop_sim::SimConfig {
            // The import spends most of a minute's WHOOP budget of 100 requests; the test
            // should not wait a minute for the next one.
            rate_limit_minute: 10_000,
            ..demo::sim_config()
        },
    )
    .await
    .unwrap();
    let engine = demo.engine.clone();
    // No scheduler: after the import, new data can only arrive by webhook.
    tokio::spawn(engine.clone().run_jobs());
    tokio::spawn(engine.clone().run_stream());

    let status = core::status(&engine, true).await.unwrap();
    assert_eq!(status.state, ConnectionStateKey::NotConnected);
    assert!(status.demo);

    // The consent page is the simulator's, on loopback; the redirect is the app's deep link.
    let consent = core::begin_connect(&engine).unwrap();
    assert!(
        consent.as_str().starts_with(&demo.sim.base_url),
        "{consent}"
    );
    let link = approve_in_browser(&consent).await;
    assert!(link.starts_with(core::DEEP_LINK_CALLBACK), "{link}");
    core::handle_deep_link(&engine, &link).await.unwrap();

    // The code exchange went through the relay's broker; the import runs to the end.
    wait_until("the import to finish", Duration::from_secs(60), || async {
        let s = core::status(&engine, true).await.unwrap();
        s.state == ConnectionStateKey::Connected && s.import_complete
    })
    .await;
    let imported = engine.store().counts().await.unwrap();
    assert!(imported.cycle >= 360, "a year of cycles: {imported:?}");
    assert!(notifier
        .sent()
        .iter()
        .any(|n| n.title.contains("import finished")));
    wait_until(
        "the relay stream to be live",
        Duration::from_secs(20),
        || async { core::status(&engine, true).await.unwrap().live },
    )
    .await;

    // The demo keeps growing: simulated time passes, the simulator signs webhooks to the
    // relay, the relay streams them, the engine fetches and stores the new records.
    let grower = tokio::spawn(demo::grow(
        engine.clone(),
        demo.sim.base_url.clone(),
        Duration::from_millis(500),
    ));
    wait_until(
        "new cycles to arrive by webhook",
        Duration::from_secs(30),
        || async {
            let now = engine.store().counts().await.unwrap();
            now.cycle >= imported.cycle + 2 && now.sleep > imported.sleep
        },
    )
    .await;
    grower.abort();
    let status = core::status(&engine, true).await.unwrap();
    assert_eq!(
        status.last_job.map(|j| j.kind),
        Some(core::JobKindKey::Import),
        "no sync ran after the import: the new records came by webhook"
    );
}
