//! The desktop's commands without a desktop around them: `core` over a temporary database and
//! the WHOOP simulator, exactly what the Tauri commands call.

mod common;

use std::sync::Arc;

use common::authorize;
use sync::Engine;
use vitaltrends_desktop::core::{self, ConnectionStateKey, RangeKey};

struct Host {
    sim: whoop_sim::SimHandle,
    engine: Arc<Engine>,
    _dir: tempfile::TempDir,
}

async fn host(days: u32) -> Host {
    let sim = common::sim(days, 77).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = common::engine(&sim, dir.path()).await;
    Host {
        sim,
        engine,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_card_walks_through_its_states() {
    let host = host(60).await;
    let engine = &host.engine;
    let status = core::status(engine, false).await.unwrap();
    assert_eq!(status.state, ConnectionStateKey::NotConnected);
    assert_eq!(status.records, 0.0);

    let url = core::begin_connect(engine).unwrap();
    assert!(
        url.as_str().starts_with(&host.sim.base_url),
        "the consent page is WHOOP's"
    );
    assert_eq!(
        core::status(engine, false).await.unwrap().state,
        ConnectionStateKey::Authorizing
    );

    let link = authorize(&url).await;
    assert!(link.starts_with(core::DEEP_LINK_CALLBACK), "{link}");
    let said = core::handle_deep_link(engine, &link).await.unwrap();
    assert!(said.starts_with("Connected as"), "{said}");
    // Connected with the import queued: the card shows the import.
    let status = core::status(engine, false).await.unwrap();
    assert_eq!(status.state, ConnectionStateKey::Importing);
    assert!(status.member_name.is_some());

    engine.sync_now().await.unwrap();
    let status = core::status(engine, true).await.unwrap();
    assert_eq!(status.state, ConnectionStateKey::Connected);
    assert!(status.import_complete && status.demo);
    assert!(status.last_synced_at.is_some());
    assert!(status.records > 200.0);

    // Force Sync: the first press queues, the second says it is already running.
    let first = core::force_sync(engine);
    let second = core::force_sync(engine);
    assert!(first.queued && !second.queued);
    assert_eq!(second.message, "Force Sync is already running");

    // Reconnection needed after WHOOP revoked access.
    let http = reqwest::Client::new();
    http.post(format!("{}/_sim/revoke", host.sim.base_url))
        .send()
        .await
        .unwrap();
    let err = engine.force_sync_now().await.unwrap_err();
    let ipc: core::IpcError = err.into();
    assert_eq!(ipc.code, "reconnect_needed");
    assert!(
        !ipc.message.contains("invalid_grant"),
        "plain words: {}",
        ipc.message
    );
    let status = core::status(engine, false).await.unwrap();
    assert_eq!(status.state, ConnectionStateKey::ReconnectNeeded);
    assert!(status.reason.is_some());

    // Disconnect keeps the history.
    engine.disconnect().await.unwrap();
    let status = core::status(engine, false).await.unwrap();
    assert_eq!(status.state, ConnectionStateKey::Disconnected);
    assert!(status.days_of_history > 50.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_link_nobody_asked_for_is_refused() {
    let host = host(10).await;
    for link in [
        "vitaltrends://oauth/whoop/callback?code=stolen&state=abcdefgh",
        "vitaltrends://settings/delete-everything",
        "not a url",
    ] {
        let err = core::handle_deep_link(&host.engine, link)
            .await
            .unwrap_err();
        assert_eq!(err.code, "unexpected_link", "{link}");
        assert!(err.message.contains("Nothing was changed"));
    }
    let status = core::status(&host.engine, false).await.unwrap();
    assert_eq!(status.state, ConnectionStateKey::NotConnected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_today_trends_and_workouts() {
    let host = host(120).await;
    let empty = core::dashboard(&host.engine, RangeKey::D30).await.unwrap();
    assert!(!empty.has_data);
    assert!(empty.series.recovery.is_empty());

    let url = core::begin_connect(&host.engine).unwrap();
    core::handle_deep_link(&host.engine, &authorize(&url).await)
        .await
        .unwrap();
    host.engine.sync_now().await.unwrap();

    let month = core::dashboard(&host.engine, RangeKey::D30).await.unwrap();
    assert!(month.has_data);
    assert!(month.today.day.is_some());
    // The newest night is usually still being scored (the simulator holds it back at start, or
    // the person is asleep right now); then it is pending, never zero.
    let recovery = &month.today.recovery;
    assert!(recovery.pending || recovery.value.is_some());
    if recovery.pending {
        assert_eq!(recovery.value, None);
    }
    assert!(recovery.baseline.is_some(), "a 30-day baseline");
    assert!(
        (25..=31).contains(&month.series.recovery.len()),
        "{}",
        month.series.recovery.len()
    );
    assert!(month
        .series
        .sleep
        .iter()
        .all(|s| s.light + s.deep + s.rem > 3.0));
    assert!(!month.workouts.is_empty());
    assert!(month.workouts.windows(2).all(|w| w[0].start >= w[1].start));

    let all = core::dashboard(&host.engine, RangeKey::All).await.unwrap();
    assert!(all.series.day_strain.len() > month.series.day_strain.len());
    let week = core::dashboard(&host.engine, RangeKey::D7).await.unwrap();
    assert!(week.series.hrv.len() <= 7);
}

#[test]
fn a_notification_click_leads_to_the_screen_it_is_about() {
    use sync::NotificationKind::*;
    use vitaltrends_desktop::core::{notification_id, notification_screen, NavigateTarget};
    let screen = |kind| notification_screen(notification_id(kind));
    assert_eq!(screen(ImportFinished), Some(NavigateTarget::Dashboard));
    assert_eq!(screen(ForceSyncFinished), Some(NavigateTarget::Dashboard));
    assert_eq!(screen(ReconnectNeeded), Some(NavigateTarget::Connections));
    // Each kind has its own id, and an id that is none of ours leads nowhere.
    assert_ne!(
        notification_id(ImportFinished),
        notification_id(ForceSyncFinished)
    );
    assert_eq!(notification_screen(0), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_scheme_the_sign_in_comes_back_through_loopback() {
    let host = host(20).await;
    let engine = host.engine.clone();
    let (consent, waiting) = core::begin_loopback_connect(&engine, 0).await.unwrap();
    assert!(
        consent
            .as_str()
            .contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"),
        "{consent}"
    );
    assert_eq!(
        core::status(&engine, false).await.unwrap().state,
        ConnectionStateKey::Authorizing
    );
    // The browser follows WHOOP's redirect to the app's listener, which answers with a page.
    let browser = tokio::spawn(async move {
        let page = reqwest::get(consent).await.unwrap();
        assert!(page.status().is_success(), "{}", page.status());
    });
    let callback = waiting.redirect().await.unwrap();
    let message = core::complete_sign_in(&engine, &callback).await.unwrap();
    assert!(message.starts_with("Connected as "), "{message}");
    browser.await.unwrap();
    let status = core::status(&engine, false).await.unwrap();
    assert!(
        matches!(
            status.state,
            ConnectionStateKey::Importing | ConnectionStateKey::Connected
        ),
        "{:?}",
        status.state
    );
}

#[test]
fn a_refused_sign_in_as_another_member_reads_as_a_sentence_with_its_code() {
    let error: core::IpcError = sync::Error::OtherMember {
        current: "Alex Morgan".into(),
        other: "Sam Lee".into(),
        revoked: true,
    }
    .into();
    assert_eq!(error.code, "other_member");
    assert!(
        error
            .message
            .starts_with("You signed in to WHOOP as Sam Lee"),
        "{}",
        error.message
    );
    assert!(error.message.contains("nothing was changed"));
    assert!(error.message.ends_with('.'), "{}", error.message);
}
