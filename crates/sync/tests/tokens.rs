//! Tokens that must survive what real WHOOP does: a token request whose answer is lost after
//! WHOOP already rotated (never replayed, the person told plainly), a connect failure (retried),
//! two processes on one data directory, a sign-in as another WHOOP member (refused, the current
//! connection untouched), and an app registered with fewer scopes. Against the simulator over
//! HTTP, directly and through the real relay (in-process).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sync::events::{RecordingNotifier, SystemClock};
use sync::{ConnectionState, Error, InsecureFileStore, Schedule, SecretStore};
use url::Url;
use whoop::Secret;

/// A host whose engine gets its tokens through the relay's broker.
async fn brokered_host(days: u32, seed: u64) -> (Host, relay::RelayHandle, tempfile::TempDir) {
    let host = host(sim_config(days, seed)).await;
    let relay_dir = tempfile::tempdir().unwrap();
    let relay = relay_for(&host.sim, &relay_dir).await;
    let engine = open_engine(
        &host.sim,
        Some(Url::parse(&relay.base_url).unwrap()),
        &host.dir,
        host.secrets.clone(),
        host.notifier.clone(),
        Arc::new(SystemClock),
        Schedule::default(),
    )
    .await;
    let host = Host { engine, ..host };
    (host, relay, relay_dir)
}

fn stored(secrets: &dyn SecretStore, name: &str) -> Option<String> {
    secrets.get(name).unwrap().map(|s| s.expose().to_string())
}

/// Expires the access token at WHOOP, makes the next token answer fail after rotating, and
/// checks the engine does not send the refresh token again and tells the person plainly.
async fn lost_refresh_answer_is_not_replayed(host: &Host, fault: &str) {
    host.post("/_sim/token-faults", json!({ fault: 1 })).await;
    host.post("/_sim/expire-tokens", json!({})).await;
    host.reset_stats().await;
    let err = host.engine.sync_now().await.unwrap_err();
    assert!(
        matches!(&err, Error::ReconnectNeeded { reason } if reason.contains("did not confirm")),
        "{fault}: {err}"
    );
    // Later attempts do not send it either.
    let again = host.engine.sync_now().await.unwrap_err();
    assert_eq!(again.code(), "reconnect_needed");
    let stats = host.stats().await;
    assert_eq!(
        stats["refresh_replays"], 0,
        "{fault}: a spent refresh token was replayed"
    );
    assert_eq!(
        stats["requests"]["token"], 1,
        "{fault}: the refresh was sent again"
    );
    match host.engine.connection_state().await.unwrap() {
        ConnectionState::ReconnectNeeded { reason, .. } => assert!(
            reason.starts_with("WHOOP did not confirm renewing access"),
            "{reason}"
        ),
        other => panic!("{fault}: {other:?}"),
    }
    let sent = host.notifier.sent();
    let last = sent.last().expect("the person is told");
    assert!(
        last.body.contains("will not ask again") && last.body.contains("nothing is lost"),
        "{}",
        last.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_a_token_5xx_after_rotating_is_not_replayed() {
    let host = host(sim_config(10, 61)).await;
    host.connect().await;
    lost_refresh_answer_is_not_replayed(&host, "fail_after_rotate_next").await;
    // Reconnecting repairs it.
    host.connect().await;
    host.engine
        .sync_now()
        .await
        .expect("syncs after reconnecting");
    lost_refresh_answer_is_not_replayed(&host, "cut_after_rotate_next").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokered_a_token_5xx_or_cut_after_rotating_is_not_replayed() {
    let (host, _relay, _relay_dir) = brokered_host(10, 62).await;
    host.connect().await;
    lost_refresh_answer_is_not_replayed(&host, "fail_after_rotate_next").await;
    host.connect().await;
    host.engine
        .sync_now()
        .await
        .expect("syncs after reconnecting");
    lost_refresh_answer_is_not_replayed(&host, "cut_after_rotate_next").await;
}

/// One WHOOP call through the engine's token handling.
async fn profile_call(engine: &Arc<sync::Engine>) -> Result<whoop::Profile, Error> {
    engine
        .with_token(|t| {
            let engine = engine.clone();
            async move { engine.client().profile(t.expose()).await }
        })
        .await
        .map(|fetched| fetched.record)
}

/// Makes the stored pair due for its early refresh while its access token is still valid, and
/// opens a new engine on it (a fresh process: nothing cached).
async fn due_for_refresh(host: &Host) -> Arc<sync::Engine> {
    let secrets: &dyn SecretStore = host.secrets.as_ref();
    let mut tokens: Value =
        serde_json::from_str(&stored(secrets, "whoop-tokens").unwrap()).unwrap();
    tokens["refresh_after"] = json!(chrono::Utc::now() - chrono::Duration::minutes(1));
    secrets
        .set("whoop-tokens", &Secret::new(tokens.to_string()))
        .unwrap();
    open_engine(
        &host.sim,
        None,
        &host.dir,
        host.secrets.clone(),
        host.notifier.clone(),
        Arc::new(SystemClock),
        Schedule::default(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_that_did_not_rotate_is_tried_again_later() {
    let host = host(sim_config(5, 68)).await;
    host.connect().await;

    // A 5xx before WHOOP rotated: the old access token still works, so nothing was spent.
    let engine = due_for_refresh(&host).await;
    host.post("/_sim/token-faults", json!({"fail_next": 1}))
        .await;
    let err = profile_call(&engine).await.unwrap_err();
    assert_eq!(err.code(), "whoop_unavailable", "{err}");
    assert_eq!(engine.connection_state().await.unwrap().name(), "connected");
    profile_call(&engine)
        .await
        .expect("the refresh is tried again and works");

    // A 5xx after WHOOP rotated: the old access token is dead, so the refresh must not be
    // repeated.
    let engine = due_for_refresh(&host).await;
    host.post("/_sim/token-faults", json!({"fail_after_rotate_next": 1}))
        .await;
    let err = profile_call(&engine).await.unwrap_err();
    assert_eq!(err.code(), "reconnect_needed", "{err}");
    let again = profile_call(&engine).await.unwrap_err();
    assert_eq!(again.code(), "reconnect_needed");
    assert_eq!(
        engine.connection_state().await.unwrap().name(),
        "reconnect_needed"
    );
    let stats = host.stats().await;
    assert_eq!(stats["refresh_replays"], 0);
    assert_eq!(stats["refreshes"], 2, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lived_token_is_not_refreshed_for_every_call() {
    // 60-second tokens: refreshing 120 s ahead would mean a refresh before every call, each one
    // killing the token the other calls are using.
    let host = host(whoop_sim::SimConfig {
        token_ttl_secs: 60,
        ..sim_config(20, 73)
    })
    .await;
    host.connect().await;
    host.reset_stats().await;
    host.engine.sync_now().await.expect("imports");
    let stats = host.stats().await;
    assert_eq!(stats["refreshes"], 0, "{stats}");
    assert_eq!(stats["unauthorized"], 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_exchange_answered_with_5xx_after_spending_the_code_is_not_repeated() {
    let direct = host(sim_config(5, 69)).await;
    let (brokered, _relay, _relay_dir) = brokered_host(5, 70).await;
    for host in [&direct, &brokered] {
        host.post("/_sim/token-faults", json!({"fail_after_rotate_next": 1}))
            .await;
        host.reset_stats().await;
        let err = sign_in(&host.engine).await.unwrap_err();
        assert_eq!(err.code(), "token_outcome_unknown", "{err}");
        assert_eq!(
            host.stats().await["requests"]["token"],
            1,
            "the code was sent again"
        );
        assert_eq!(
            host.engine.connection_state().await.unwrap().name(),
            "not_connected"
        );
        // Signing in again is the way on, and works.
        host.connect().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_answers_a_code_exchange_before_the_client_gives_up() {
    // WHOOP's data endpoints (the profile the broker binds the device with) take 20 s to
    // answer. The broker's own deadline keeps the whole exchange inside the client's 30 s: the
    // tokens arrive, without a device credential, instead of a client timeout after WHOOP
    // already spent the code.
    let (host, relay, _relay_dir) = brokered_host(5, 71).await;
    host.post("/_sim/faults", json!({"latency_ms": 20_000}))
        .await;
    let authorize = whoop::oauth::authorize_url(&Url::parse(&host.sim.base_url).unwrap()).unwrap();
    let request = whoop::oauth::authorization_request(
        &authorize,
        "vitaltrends-demo",
        "vitaltrends://oauth/whoop/callback",
    )
    .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(request.url.clone()).send().await.unwrap();
    let callback = Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let broker = whoop::oauth::TokenClient::new(whoop::oauth::TokenEndpoint::Broker {
        base_url: Url::parse(&relay.base_url).unwrap(),
    })
    .unwrap();
    let tokens = broker
        .exchange_code(&code, &request.redirect_uri, &request.pkce_verifier)
        .await
        .expect("the broker answered within the client's timeout");
    assert!(tokens.device_credential.is_none());
    assert_eq!(host.stats().await["requests"]["token"], 1);
}

/// A TCP forwarder to `target` that starts listening on `port` only after `delay`, so requests
/// before then fail to connect (they were certainly not sent).
fn late_forwarder(port: u16, target: std::net::SocketAddr, delay: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the reserved port is free again");
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_could_not_connect_is_retried_directly_and_through_the_broker() {
    let host = host(sim_config(5, 63)).await;
    host.connect().await;
    let secrets: &dyn SecretStore = host.secrets.as_ref();
    let tokens: Value = serde_json::from_str(&stored(secrets, "whoop-tokens").unwrap()).unwrap();
    let mut refresh = Secret::new(tokens["refresh_token"].as_str().unwrap());

    // Directly: WHOOP's port is closed at first, then opens.
    let port = free_port();
    late_forwarder(port, host.sim.addr, Duration::from_millis(300));
    let direct = whoop::oauth::TokenClient::new(whoop::oauth::TokenEndpoint::Direct {
        token_url: Url::parse(&format!("http://127.0.0.1:{port}/oauth/oauth2/token")).unwrap(),
        client_id: "vitaltrends-demo".into(),
        client_secret: Secret::new("demo-secret"),
    })
    .unwrap();
    direct
        .refresh(&refresh, None)
        .await
        .expect("retried until it connected");

    // Through the broker: a device signs in through a relay that reaches WHOOP, then the relay
    // on the same database cannot reach WHOOP at first (503 whoop_unreachable).
    let relay_dir = tempfile::tempdir().unwrap();
    let reachable = relay_for(&host.sim, &relay_dir).await;
    let base = Url::parse(&host.sim.base_url).unwrap();
    let request = whoop::oauth::authorization_request(
        &whoop::oauth::authorize_url(&base).unwrap(),
        "vitaltrends-demo",
        "vitaltrends://oauth/whoop/callback",
    )
    .unwrap();
    let consent = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(request.url.clone())
        .send()
        .await
        .unwrap();
    let callback = Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let signed_in = whoop::oauth::TokenClient::new(whoop::oauth::TokenEndpoint::Broker {
        base_url: Url::parse(&reachable.base_url).unwrap(),
    })
    .unwrap()
    .exchange_code(&code, &request.redirect_uri, &request.pkce_verifier)
    .await
    .unwrap();
    reachable.shutdown().await;
    refresh = signed_in.refresh_token.unwrap();
    let credential = signed_in.device_credential.unwrap();
    host.reset_stats().await;
    let port = free_port();
    let relay = relay_to(
        Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        &relay_dir,
    )
    .await;
    late_forwarder(port, host.sim.addr, Duration::from_millis(300));
    let brokered = whoop::oauth::TokenClient::new(whoop::oauth::TokenEndpoint::Broker {
        base_url: Url::parse(&relay.base_url).unwrap(),
    })
    .unwrap();
    assert!(
        matches!(
            brokered.refresh(&refresh, None).await,
            Err(whoop::Error::DeviceUnknown)
        ),
        "no credential, nothing sent"
    );
    assert!(
        matches!(
            brokered
                .refresh(&refresh, Some(&Secret::new("not-a-device-credential")))
                .await,
            Err(whoop::Error::DeviceUnknown)
        ),
        "the broker's 401 for an unknown device is not a dead grant"
    );
    brokered
        .refresh(&refresh, Some(&credential))
        .await
        .expect("retried until the broker reached WHOOP");

    let stats = host.stats().await;
    assert_eq!(stats["refreshes"], 1);
    assert_eq!(stats["refresh_replays"], 0);
}

/// Opens another engine on the same data directory with its own file secret store: what a
/// second process sees.
async fn second_process(host: &Host, secrets: Arc<InsecureFileStore>) -> Arc<sync::Engine> {
    open_engine(
        &host.sim,
        None,
        &host.dir,
        secrets,
        Arc::new(RecordingNotifier::default()),
        Arc::new(SystemClock),
        Schedule::default(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_process_adopts_the_tokens_another_process_stored_instead_of_replaying() {
    let host = host(sim_config(10, 64)).await;
    let a = second_process(&host, Arc::new(InsecureFileStore::in_dir(host.dir.path()))).await;
    let b = second_process(&host, Arc::new(InsecureFileStore::in_dir(host.dir.path()))).await;
    let host = Host {
        engine: a.clone(),
        ..host
    };
    host.connect().await;
    a.sync_now().await.expect("A imports");
    b.sync_now()
        .await
        .expect("B catches up with the same tokens");

    // A refreshes; B still holds the spent pair and must pick up A's instead of replaying.
    host.post("/_sim/expire-tokens", json!({})).await;
    host.reset_stats().await;
    a.sync_now().await.expect("A refreshes");
    b.sync_now().await.expect("B uses A's new pair");
    let stats = host.stats().await;
    assert_eq!(stats["refreshes"], 1, "{stats}");
    assert_eq!(stats["refresh_replays"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_dead_verdict_does_not_undo_a_reconnect_made_by_another_process() {
    let host = host(sim_config(10, 72)).await;
    let a = second_process(&host, Arc::new(InsecureFileStore::in_dir(host.dir.path()))).await;
    let b = second_process(&host, Arc::new(InsecureFileStore::in_dir(host.dir.path()))).await;
    let host = Host {
        engine: a.clone(),
        ..host
    };
    host.connect().await;
    a.sync_now().await.expect("A imports");

    // WHOOP revokes, A finds out, then the person reconnects through B: A must use B's grant,
    // not flag it dead.
    host.post("/_sim/revoke", json!({})).await;
    assert_eq!(a.sync_now().await.unwrap_err().code(), "reconnect_needed");
    let host = Host {
        engine: b.clone(),
        ..host
    };
    host.connect().await;
    a.sync_now().await.expect("A adopts the fresh grant");
    assert_eq!(
        a.connection_state().await.unwrap().name(),
        "connected",
        "A flipped the fresh connection back"
    );
    assert_eq!(host.stats().await["refresh_replays"], 0);
}

async fn other_member_is_refused(host: &Host) {
    host.connect().await;
    host.engine.sync_now().await.expect("A imports");
    let secrets: &dyn SecretStore = host.secrets.as_ref();
    let tokens_before = stored(secrets, "whoop-tokens");
    let device_before = stored(secrets, sync::DEVICE_SECRET);
    let cursor_before = host.engine.store().get_meta("relay_cursor").await.unwrap();
    let state_before = host.engine.connection_state().await.unwrap();

    host.post("/_sim/other-member-logins", json!({"count": 1}))
        .await;
    let err = sign_in(&host.engine).await.unwrap_err();

    // The current connection is exactly as it was, and works.
    // Compared without printing: they are secrets even in a test.
    assert!(
        stored(secrets, "whoop-tokens") == tokens_before,
        "the stored tokens changed"
    );
    assert!(
        stored(secrets, sync::DEVICE_SECRET) == device_before,
        "the device credential changed"
    );
    assert_eq!(
        host.engine.store().get_meta("relay_cursor").await.unwrap(),
        cursor_before
    );
    assert_eq!(host.engine.connection_state().await.unwrap(), state_before);
    assert_eq!(
        state_before.user().map(|(id, _)| id),
        Some(host.sim.user_id)
    );
    host.engine.sync_now().await.expect("A still syncs");
    assert_eq!(err.code(), "other_member", "{err}");
    let message = err.to_string();
    assert!(
        message.contains("Riley Other") && message.contains("nothing was changed"),
        "{message}"
    );

    // The stray grant was withdrawn at WHOOP; A's was not.
    let grants = host.get("/_sim/grants").await;
    let grants = grants.as_array().unwrap();
    let other: Vec<_> = grants
        .iter()
        .filter(|g| g["other_member"] == true)
        .collect();
    assert_eq!(other.len(), 1, "{grants:?}");
    assert_eq!(other[0]["revoked"], true, "the stray grant is still alive");
    assert!(grants
        .iter()
        .filter(|g| g["other_member"] == false)
        .any(|g| g["revoked"] == false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_as_another_member_is_refused_and_changes_nothing() {
    let host = host(sim_config(10, 65)).await;
    other_member_is_refused(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_as_another_member_through_the_broker_keeps_the_device() {
    let (host, _relay, _relay_dir) = brokered_host(10, 66).await;
    other_member_is_refused(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_registered_with_fewer_scopes_gets_a_clear_message() {
    let host = host(sim_config(5, 67)).await;
    host.post(
        "/_sim/app-scopes",
        json!({"scopes": ["read:profile", "offline"]}),
    )
    .await;
    let err = sign_in(&host.engine).await.unwrap_err();
    assert_eq!(err.code(), "invalid_scope", "{err}");
    let message = err.to_string();
    assert!(
        message.contains("may not ask for all the data it needs") && message.contains("read:"),
        "{message}"
    );
    assert_eq!(
        host.engine.connection_state().await.unwrap().name(),
        "not_connected"
    );
}

/// The relay returned tokens but could not bind the device (here: its database is gone). It
/// refreshes only for bound devices, so those tokens would die within the hour: the engine
/// withdraws the grant at WHOOP, stores nothing and says to connect again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_the_relay_could_not_bind_are_withdrawn_not_kept() {
    let (host, relay, _relay_dir) = brokered_host(2, 81).await;
    relay.close_database().await;
    let err = sign_in(&host.engine).await.unwrap_err();
    assert_eq!(err.code(), "relay_device_not_bound", "{err}");
    assert!(
        matches!(err, Error::RelayDeviceNotBound { revoked: true }),
        "{err}"
    );
    assert!(err.to_string().contains("Try connecting again"), "{err}");
    let secrets: &dyn SecretStore = host.secrets.as_ref();
    assert!(stored(secrets, "whoop-tokens").is_none());
    assert!(stored(secrets, sync::DEVICE_SECRET).is_none());
    assert!(!matches!(
        host.engine.connection_state().await.unwrap(),
        ConnectionState::Connected { .. }
    ));
    let grants = host.get("/_sim/grants").await;
    let grants = grants.as_array().unwrap();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(
        grants[0]["revoked"], true,
        "the unusable grant is still alive"
    );
}

/// A stored pair without a relay device credential (bound before the broker required one, or
/// the device was forgotten) cannot be refreshed through the relay: reconnect, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_without_a_device_credential_asks_to_reconnect() {
    let (host, _relay, _relay_dir) = brokered_host(2, 82).await;
    sign_in(&host.engine).await.unwrap();
    host.secrets.delete(sync::DEVICE_SECRET).unwrap();
    host.post("/_sim/expire-tokens", json!({})).await;
    let err = host.engine.sync_now().await.unwrap_err();
    assert_eq!(err.code(), "reconnect_needed", "{err}");
    assert!(
        err.to_string().contains("no longer knows this device"),
        "{err}"
    );
    assert_eq!(host.stats().await["refreshes"], 0, "nothing reached WHOOP");
}

/// A process about to be replaced (the desktop handing over to a fresh tray process) holds the
/// tokens first: the hold waits for a refresh in flight to be saved, and no refresh starts while
/// it lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_hold_waits_for_the_refresh_in_flight_and_starts_none() {
    let host = host(sim_config(5, 74)).await;
    host.connect().await;
    let engine = due_for_refresh(&host).await;
    let before = stored(host.secrets.as_ref(), "whoop-tokens").unwrap();
    host.post("/_sim/token-faults", json!({"latency_ms": 1500}))
        .await;
    host.reset_stats().await;

    let calling = engine.clone();
    let first = tokio::spawn(async move { profile_call(&calling).await });
    // The refresh is on its way to WHOOP (answered after 1.5 s).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hold = engine.tokens().hold().await;
    let saved = stored(host.secrets.as_ref(), "whoop-tokens").unwrap();
    assert_ne!(
        saved, before,
        "the hold came before the rotated pair was saved"
    );
    assert_eq!(host.stats().await["refreshes"], 1);

    // While held, a call waits (it would read or refresh the tokens).
    let calling = engine.clone();
    let second = tokio::spawn(async move { profile_call(&calling).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!second.is_finished(), "a call went ahead during the hold");
    drop(hold);
    first.await.unwrap().expect("the first call succeeds");
    second
        .await
        .unwrap()
        .expect("the second call goes on after the hold");
    assert_eq!(host.stats().await["refresh_replays"], 0);
}
