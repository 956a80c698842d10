//! The engine against a relay whose subscription gate is on: a sign-in without a licence leaves
//! "subscription required" and stores nothing; a licence key goes to the secret store only and
//! lets the sign-in through; after the licence lapses (past a short grace) a refresh is refused,
//! the connection becomes "subscription ended" with tokens and history kept, and a new licence
//! resumes syncing without signing in again (the refused refresh never spent the token), as does
//! the same licence renewed by the operator after a cancellation ran out.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use sync::events::{RecordingNotifier, SystemClock};
use sync::{ConnectionState, MemoryStore, Schedule, SecretStore, LICENCE_SECRET, TOKENS_SECRET};
use url::Url;

const BILLING_SECRET: &str = "whsec-sync-test";

/// The payment provider cancels the licence with its paid period ending now.
async fn cancel_now(relay: &str, licence_id: &str) {
    use hmac::{Hmac, Mac};
    let now = chrono::Utc::now();
    let body = json!({
        "type": "licence.cancelled",
        "licence_id": licence_id,
        "active_until": now.to_rfc3339(),
    })
    .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(BILLING_SECRET.as_bytes()).unwrap();
    mac.update(format!("{}.{body}", now.timestamp()).as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let answer = reqwest::Client::new()
        .post(format!("{relay}/billing/webhook"))
        .header(
            relay::BILLING_SIGNATURE_HEADER,
            format!("t={},v1={sig}", now.timestamp()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_follows_the_subscription_gate() {
    let sim = whoop_sim::start(sim_config(20, 5), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("relay.db").display());
    let signing = licence::SigningKey::generate();
    let relay = relay::start(relay::RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.clone(),
        whoop_base_url: Url::parse(&sim.base_url).unwrap(),
        client_id: "vitaltrends-demo".into(),
        client_secrets: vec!["demo-secret".into()],
        subscription_gate: Some(relay::SubscriptionGate {
            public_key: signing.public_key(),
            grace: Duration::from_secs(1),
        }),
        billing_webhook_secret: Some(BILLING_SECRET.into()),
        ..relay::RelayConfig::default()
    })
    .await
    .unwrap();
    let app_dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemoryStore::default());
    let engine = open_engine(
        &sim,
        Some(Url::parse(&relay.base_url).unwrap()),
        &app_dir,
        secrets.clone(),
        Arc::new(RecordingNotifier::default()),
        Arc::new(SystemClock),
        Schedule::default(),
    )
    .await;

    // No licence: refused before WHOOP, nothing stored.
    let refused = sign_in(&engine).await.unwrap_err();
    assert_eq!(refused.code(), "subscription_required");
    assert!(matches!(
        engine.connection_state().await.unwrap(),
        ConnectionState::SubscriptionRequired { user_id: None, .. }
    ));
    assert!(secrets.get(TOKENS_SECRET).unwrap().is_none());
    assert_eq!(
        engine
            .set_licence_key("not a key")
            .await
            .unwrap_err()
            .code(),
        "invalid_licence"
    );
    assert!(engine.licence_info().await.unwrap().is_none());

    // A licence: kept in the secret store, read offline, and the sign-in goes through.
    let key = relay::licence_admin::issue(&database_url, &signing, "personal", 30, 2)
        .await
        .unwrap();
    let info = engine.set_licence_key(&format!(" {key}\n")).await.unwrap();
    assert_eq!((info.plan.as_str(), info.max_devices), ("personal", 2));
    assert_eq!(secrets.get(LICENCE_SECRET).unwrap().unwrap().expose(), key);
    sign_in(&engine).await.unwrap();
    assert_eq!(engine.connection_state().await.unwrap().name(), "connected");
    let info = engine.licence_info().await.unwrap().unwrap();
    let at_relay = info.relay.expect("the relay's view");
    assert_eq!((at_relay.devices, at_relay.status.as_str()), (1, "active"));
    engine.sync_now().await.unwrap();
    let records = engine.store().counts().await.unwrap().total();
    assert!(records > 0);

    // Revoked and past the grace: the refresh is refused, the connection says so, all is kept.
    relay::licence_admin::revoke(&database_url, &key)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sim_post(&sim.base_url, "/_sim/expire-tokens", json!({})).await;
    let ended = engine.sync_now().await.unwrap_err();
    assert_eq!(ended.code(), "subscription_inactive");
    assert!(matches!(
        engine.connection_state().await.unwrap(),
        ConnectionState::SubscriptionEnded { .. }
    ));
    assert_eq!(
        engine.ensure_syncable().await.unwrap_err().code(),
        "subscription_inactive"
    );
    assert!(engine.tokens().has_tokens().await.unwrap());
    assert_eq!(
        engine.store().counts().await.unwrap().total(),
        records,
        "history kept"
    );

    // Still lapsed: a sync does not resume (the relay says the licence is out of service).
    assert_eq!(
        engine.sync_now().await.unwrap_err().code(),
        "subscription_inactive"
    );

    // A new licence resumes with the same grant: no new sign-in.
    let renewed = relay::licence_admin::issue(&database_url, &signing, "personal", 30, 2)
        .await
        .unwrap();
    engine.set_licence_key(&renewed).await.unwrap();
    assert_eq!(engine.connection_state().await.unwrap().name(), "connected");
    engine.sync_now().await.unwrap();

    // Cancelled and run out, then renewed by the operator: the same key, no action in the app.
    let renewed_id = licence::decode(&renewed).unwrap().id;
    cancel_now(&relay.base_url, &renewed_id).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sim_post(&sim.base_url, "/_sim/expire-tokens", json!({})).await;
    assert_eq!(
        engine.sync_now().await.unwrap_err().code(),
        "subscription_inactive"
    );
    relay::licence_admin::extend(&database_url, &renewed_id, 30)
        .await
        .unwrap();
    engine.sync_now().await.unwrap();
    assert_eq!(engine.connection_state().await.unwrap().name(), "connected");
    // The key never reaches the database.
    for file in ["vitaltrends.db", "vitaltrends.db-wal"] {
        let bytes = std::fs::read(app_dir.path().join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&key) && !text.contains(&renewed), "{file}");
    }
    relay.shutdown().await;
}
