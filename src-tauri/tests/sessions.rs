//! Choosing and switching connections without a desktop around them: `Sessions` over temporary
//! directories and the WHOOP simulator, exactly what the chooser, the own-app form and Settings
//! call. The settings file and the secret store are read back from disk.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use config::Release;
use sync::events::RecordingNotifier;
use sync::NotificationKind;
use url::Url;
use vitaltrends_desktop::core::{self, ConnectionStateKey, RangeKey};
use vitaltrends_desktop::session::{ModeKey, OwnAppForm, Paths, SecretsKind, Sessions, Starter};

const SECRET: &str = "demo-secret";

fn paths(dir: &Path) -> Paths {
    Paths {
        data_root: dir.join("data"),
        settings_file: dir.join("config").join("settings.toml"),
        log_dir: dir.join("logs"),
    }
}

/// Runs the engine's job queue, as the shell does, so sign-ins import.
fn jobs_only() -> Starter {
    Arc::new(|core: &core::Core| vec![tokio::spawn(core.engine.clone().run_jobs())])
}

async fn open(dir: &Path, notifier: Arc<RecordingNotifier>, release: Release) -> Sessions {
    Sessions::open(
        paths(dir),
        SecretsKind::InsecureFile,
        notifier,
        jobs_only(),
        release,
    )
    .await
}

async fn sim(days: u32, redirect_uris: Vec<String>) -> whoop_sim::SimHandle {
    whoop_sim::start(
        whoop_sim::SimConfig {
            days,
            seed: 5,
            auto_approve: true,
            redirect_uris,
            ..whoop_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

fn form(sim: &whoop_sim::SimHandle, port: u16) -> OwnAppForm {
    OwnAppForm {
        client_id: sim.client_id.clone(),
        client_secret: Some(SECRET.into()),
        relay_url: None,
        loopback_port: port,
        whoop_base_url: Some(sim.base_url.clone()),
    }
}

/// Signs in by deep link the way the browser and the OS would, then waits for the import.
async fn sign_in(sessions: &Sessions) {
    let engine = sessions.core().unwrap().engine;
    let url = core::begin_connect(&engine).unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(url).send().await.unwrap();
    let link = answer.headers()["location"].to_str().unwrap().to_string();
    core::handle_deep_link(&engine, &link).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sessions.status().await.unwrap().state != ConnectionStateKey::Connected {
        assert!(std::time::Instant::now() < deadline, "the import finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_chosen_is_not_connected_with_an_empty_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let sessions = open(dir.path(), Default::default(), Release::default()).await;
    let status = sessions.status().await.unwrap();
    assert_eq!(status.state, ConnectionStateKey::NotConnected);
    assert_eq!(status.mode, None);
    assert_eq!(status.settings_problem, None);
    assert_eq!(
        sessions.core().err().map(|e| e.code).as_deref(),
        Some("not_configured")
    );
    let view = sessions.settings_view();
    assert!(!view.service_available);
    assert_eq!(view.about.mode_label, "Not chosen yet");
    assert_eq!(
        view.own_app.loopback_redirect_uri,
        format!(
            "http://127.0.0.1:{}/oauth/whoop/callback",
            config::DEFAULT_LOOPBACK_PORT
        )
    );
    assert!(!core::Dashboard::empty(RangeKey::D30).has_data);
    let refused = sessions
        .choose(Some(config::Mode::Service))
        .await
        .unwrap_err();
    assert_eq!(refused.code, "no_service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_settings_file_is_a_clear_problem_never_demo_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = paths(dir.path());
    std::fs::create_dir_all(p.settings_file.parent().unwrap()).unwrap();
    std::fs::write(&p.settings_file, "mode = \"cloud\"\n").unwrap();
    let sessions = open(dir.path(), Default::default(), Release::default()).await;
    let status = sessions.status().await.unwrap();
    assert!(!status.demo);
    assert_eq!(status.mode, None);
    let problem = status.settings_problem.expect("the card says why");
    assert!(problem.contains("settings.toml"), "{problem}");
    assert!(!dir.path().join("data").join("demo").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_own_app_form_saves_the_secret_apart_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = 48_123;
    let sim = sim(30, vec![config::DEEP_LINK_REDIRECT_URI.into()]).await;
    let notifier = Arc::new(RecordingNotifier::default());
    let sessions = open(dir.path(), notifier.clone(), Release::default()).await;

    // Nothing is saved unless all of it is valid.
    let mut bad = form(&sim, 80);
    let err = sessions.save_own_app(bad.clone()).await.unwrap_err();
    assert_eq!(err.code, "invalid_field");
    assert!(err.message.starts_with("Loopback port"), "{}", err.message);
    bad.loopback_port = port;
    bad.client_secret = None;
    let err = sessions.save_own_app(bad).await.unwrap_err();
    assert_eq!(err.code, "secret_required");
    assert!(!paths(dir.path()).settings_file.exists());

    sessions.save_own_app(form(&sim, port)).await.unwrap();
    let file = std::fs::read_to_string(paths(dir.path()).settings_file).unwrap();
    assert!(file.contains("mode = \"own-app\""), "{file}");
    assert!(
        file.contains(&sim.client_id) && file.contains("port = 48123"),
        "{file}"
    );
    assert!(!file.contains(SECRET), "{file}");
    let kept =
        std::fs::read_to_string(dir.path().join("config").join("insecure-secrets.json")).unwrap();
    assert!(kept.contains(SECRET), "the secret went to the secret store");
    let view = sessions.settings_view();
    assert_eq!(view.mode, Some(ModeKey::OwnApp));
    assert!(view.own_app.has_secret);
    assert!(view.about.data_dir.ends_with("own-app"));

    // With notifications of finished imports turned off, the import finishes silently.
    sessions.set_pref("notify_import", false).unwrap();
    sign_in(&sessions).await;
    assert!(
        !notifier
            .sent()
            .iter()
            .any(|n| n.kind == NotificationKind::ImportFinished),
        "{:?}",
        notifier.sent()
    );
    let status = sessions.status().await.unwrap();
    assert_eq!(status.mode, Some(ModeKey::OwnApp));
    assert!(!status.has_relay);
    let member = status.member_name.clone();
    drop(sessions);

    // A restart reads the same choice and finds the same connection.
    let again = open(dir.path(), Default::default(), Release::default()).await;
    let status = again.status().await.unwrap();
    assert_eq!(status.state, ConnectionStateKey::Connected);
    assert_eq!(status.member_name, member);
    assert!(!again.prefs().notify_import, "preferences are kept too");
    assert!(dir.path().join("data/own-app/vitaltrends.db").exists());
    assert!(!dir.path().join("data/vitaltrends.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_build_starts_in_the_service_and_switches_to_demo_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(20, Vec::new()).await;
    let relay = relay::start(relay::RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}", dir.path().join("relay.db").display()),
        whoop_base_url: Url::parse(&sim.base_url).unwrap(),
        client_id: sim.client_id.clone(),
        client_secrets: vec![SECRET.into()],
        ..relay::RelayConfig::default()
    })
    .await
    .unwrap();
    let release = Release {
        client_id: Some(sim.client_id.clone()),
        relay_url: Some(relay.base_url.clone()),
        whoop_base_url: Some(sim.base_url.clone()),
    };
    let sessions = open(dir.path(), Default::default(), release).await;
    assert_eq!(sessions.settings_view().mode, Some(ModeKey::Service));
    sign_in(&sessions).await;
    let service_records = sessions.status().await.unwrap().records;
    assert!(service_records > 0.0);

    sessions.choose(Some(config::Mode::Demo)).await.unwrap();
    let status = sessions.status().await.unwrap();
    assert!(status.demo);
    assert_eq!(status.state, ConnectionStateKey::NotConnected);
    assert_eq!(status.records, 0.0, "the demo starts on a store of its own");

    // Leaving demo data on a service build goes back to the service, records intact.
    sessions.choose(None).await.unwrap();
    let status = sessions.status().await.unwrap();
    assert_eq!(status.mode, Some(ModeKey::Service));
    assert_eq!(status.state, ConnectionStateKey::Connected);
    assert_eq!(status.records, service_records);
}

/// Restore from the window: a damaged file and a file that is no database are refused with a
/// sentence and replace nothing (the engine keeps running on the data in use); a good backup
/// replaces the data in use, which is kept aside, and the engine runs again on the restored
/// records without a restart of the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_is_checked_then_restored_into_the_running_session() {
    use vitaltrends_desktop::{data, restore};
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(60, vec![config::DEEP_LINK_REDIRECT_URI.into()]).await;
    let sessions = open(dir.path(), Default::default(), Release::default()).await;
    sessions.save_own_app(form(&sim, 48_124)).await.unwrap();
    sign_in(&sessions).await;
    let engine = sessions.core().unwrap().engine;
    let backup = dir.path().join("backup.db");
    data::backup(&engine, &backup).await.unwrap();
    let backed_up = data::summary(&engine).await.unwrap();

    // The data in use changes after the backup: a week deleted.
    let last: chrono::NaiveDate = backed_up.last_day.clone().unwrap().parse().unwrap();
    let week = (last - chrono::Duration::days(20)).to_string();
    let week_end = (last - chrono::Duration::days(14)).to_string();
    data::delete_days(&engine, &week, &week_end).await.unwrap();
    let in_use = data::summary(&engine).await.unwrap();
    assert!(in_use.cycles < backed_up.cycles);

    // A damaged copy (a page overwritten) and a text file: refused, nothing replaced.
    let damaged = dir.path().join("damaged.db");
    let mut bytes = std::fs::read(&backup).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 4096].fill(0xA5);
    std::fs::write(&damaged, &bytes).unwrap();
    let text = dir.path().join("notes.db");
    std::fs::write(&text, "these are not my records\n".repeat(10)).unwrap();
    for bad in [&damaged, &text] {
        let refused = restore::check(&sessions, bad).await.unwrap_err();
        assert_eq!(refused.code, "not_a_backup", "{refused:?}");
        assert!(
            refused
                .message
                .starts_with(&format!("The file {}", bad.display()))
                && refused.message.ends_with("Nothing was replaced."),
            "{}",
            refused.message
        );
        let mut let_go = false;
        let refused = restore::restore(&sessions, bad, || let_go = true)
            .await
            .unwrap_err();
        assert_eq!(refused.code, "not_a_backup");
        assert!(
            !let_go,
            "a refused file asks nothing to let go of the store"
        );
        let engine = sessions.core().unwrap().engine;
        assert_eq!(data::summary(&engine).await.unwrap(), in_use);
    }
    let text_refusal = restore::check(&sessions, &text).await.unwrap_err();
    assert!(
        text_refusal.message.contains("not an SQLite database"),
        "{}",
        text_refusal.message
    );

    // The good backup: previewed, then restored; the data in use is kept aside.
    let preview = restore::check(&sessions, &backup).await.unwrap();
    assert_eq!(preview.cycles, backed_up.cycles);
    assert_eq!(preview.last_day, backed_up.last_day);
    assert!(preview
        .kept_aside_pattern
        .contains("vitaltrends.db.replaced-"));
    let mut let_go = false;
    let done = restore::restore(&sessions, &backup, || let_go = true)
        .await
        .unwrap();
    assert!(
        let_go,
        "what holds the store is asked to let go before the swap"
    );
    let aside = done
        .kept_aside
        .clone()
        .expect("the data in use is kept aside");
    assert!(done.message.contains(&aside), "{}", done.message);
    assert!(std::path::Path::new(&aside).exists());
    let engine = sessions.core().unwrap().engine;
    let restored = data::summary(&engine).await.unwrap();
    assert_eq!(
        (
            restored.cycles,
            restored.sleeps,
            restored.recoveries,
            restored.workouts
        ),
        (
            backed_up.cycles,
            backed_up.sleeps,
            backed_up.recoveries,
            backed_up.workouts
        )
    );
    assert_eq!(restored.first_day, backed_up.first_day);
    assert_eq!(restored.last_day, backed_up.last_day);
    // The engine runs on it: the dashboard reads the restored days, the connection is as it was.
    let status = sessions.status().await.unwrap();
    assert_eq!(status.state, ConnectionStateKey::Connected);
    let dashboard = core::dashboard(&engine, RangeKey::D30).await.unwrap();
    assert!(dashboard.has_data);
    // The store kept aside holds what was in use before the restore.
    let kept = store::check_backup(std::path::Path::new(&aside))
        .await
        .unwrap();
    assert_eq!(kept.counts.cycle as f64, in_use.cycles);
}
