//! The subscription gate: sign-in needs an active licence (and a free device slot), refreshes
//! and the event stream carry on through the grace period after a licence ends and then stop with
//! `subscription_inactive`, and the billing webhook renews only when its signature is right.

use std::time::Duration;

use hmac::{Hmac, Mac};
use relay::{licence_admin, RelayConfig, SubscriptionGate};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Sha256;

use crate::common::*;
use crate::on_both_backends;

const GRACE: Duration = Duration::from_secs(2);
const BILLING_SECRET: &str = "whsec-test-7c1d";

fn gated(db: &Db, sim: &whoop_sim::SimHandle, key: &licence::SigningKey) -> RelayConfig {
    RelayConfig {
        subscription_gate: Some(SubscriptionGate {
            public_key: key.public_key(),
            grace: GRACE,
        }),
        billing_webhook_secret: Some(BILLING_SECRET.to_string()),
        ..config(db, sim)
    }
}

async fn exchange_with(
    base_url: &str,
    code: &str,
    verifier: &str,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier),
    ];
    if let Some(k) = key {
        form.push(("licence_key", k));
    }
    let resp = http()
        .post(format!("{base_url}/oauth/whoop/token"))
        .form(&form)
        .send()
        .await
        .expect("exchange");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn refresh_with(
    base_url: &str,
    credential: &str,
    refresh_token: &str,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("scope", "offline"),
    ];
    if let Some(k) = key {
        form.push(("licence_key", k));
    }
    let resp = http()
        .post(format!("{base_url}/oauth/whoop/refresh"))
        .bearer_auth(credential)
        .form(&form)
        .send()
        .await
        .expect("refresh");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Signs in with a licence; returns (refresh token, device credential).
async fn sign_in(sim: &whoop_sim::SimHandle, base_url: &str, key: &str) -> (String, String) {
    let (code, verifier) = authorize(sim).await;
    let (status, json) = exchange_with(base_url, &code, &verifier, Some(key)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    (
        json["refresh_token"]
            .as_str()
            .expect("refresh token")
            .to_string(),
        json["device_credential"]
            .as_str()
            .expect("credential")
            .to_string(),
    )
}

async fn sign_in_needs_an_active_licence_and_a_free_device(db: &Db) {
    let sim = sim(41, SECRET).await;
    let signing = licence::SigningKey::generate();
    let relay = relay(gated(db, &sim, &signing)).await;
    let base = relay.base_url.as_str();

    // No key: 402 before WHOOP is asked, so the same code still works afterwards.
    let (code, verifier) = authorize(&sim).await;
    let (status, json) = exchange_with(base, &code, &verifier, None).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(json["code"], "subscription_required");
    // A key signed by someone else's key, and garbage.
    let foreign = licence::SigningKey::generate().issue(&licence::Claims::new(
        "personal",
        0,
        now_ms() / 1000 + 3600,
        3,
    ));
    for bad in [foreign.as_str(), "VT1.nope.nope"] {
        let (status, json) = exchange_with(base, &code, &verifier, Some(bad)).await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{json}");
        assert_eq!(json["code"], "subscription_required");
    }
    // An issued licence for one device.
    let key = licence_admin::issue(&db.url, &signing, "personal", 30, 1)
        .await
        .expect("issue");
    let (status, json) = exchange_with(base, &code, &verifier, Some(&key)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the refused tries did not spend the code: {json}"
    );
    let credential = json["device_credential"].as_str().expect("credential");
    let (status, body) = get_with(base, "/v1/licence", Some(credential)).await;
    assert_eq!(status, StatusCode::OK);
    let info: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(info["plan"], "personal");
    assert_eq!(info["status"], "active");
    assert_eq!(info["devices"], 1);
    assert_eq!(info["max_devices"], 1);
    assert_eq!(info["licence_id"], licence::decode(&key).unwrap().id);
    let (status, _) = poll(base, credential, None, 0).await;
    assert_eq!(status, StatusCode::OK);
    // The one device slot is taken.
    let (code, verifier) = authorize(&sim).await;
    let (status, json) = exchange_with(base, &code, &verifier, Some(&key)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(json["code"], "device_limit");
    // Forgetting the device frees it.
    let resp = http()
        .delete(format!("{base}/v1/devices/self"))
        .bearer_auth(credential)
        .send()
        .await
        .expect("forget");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, json) = exchange_with(base, &code, &verifier, Some(&key)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    // The key is never stored, only its id.
    let licences = db.text_dump("licences").await;
    assert!(
        !licences.contains(&key) && licences.contains("lic_"),
        "{licences}"
    );
    relay.shutdown().await;
    db.cleanup().await;
}

async fn a_lapsed_licence_keeps_refreshing_through_the_grace_then_stops(db: &Db) {
    let sim = sim(42, SECRET).await;
    let signing = licence::SigningKey::generate();
    let relay = relay(gated(db, &sim, &signing)).await;
    let base = relay.base_url.as_str();
    let key = licence_admin::issue(&db.url, &signing, "personal", 30, 3)
        .await
        .expect("issue");
    let (mut refresh_token, credential) = sign_in(&sim, base, &key).await;
    let mut stream = Sse::open(base, &credential, None).await;

    // A refresh needs the key.
    let (status, json) = refresh_with(base, &credential, &refresh_token, None).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(json["code"], "subscription_required");

    let revoked = licence_admin::revoke(&db.url, &key).await.expect("revoke");
    assert_eq!(revoked.status, "revoked");
    // Inside the grace: refresh, poll and the open stream all still work.
    let (status, json) = refresh_with(base, &credential, &refresh_token, Some(&key)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    refresh_token = json["refresh_token"].as_str().expect("rotated").to_string();
    let (status, _) = poll(base, &credential, None, 0).await;
    assert_eq!(status, StatusCode::OK);
    // A new sign-in is refused at once.
    let (code, verifier) = authorize(&sim).await;
    let (status, json) = exchange_with(base, &code, &verifier, Some(&key)).await;
    assert_eq!(
        (status, json["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("subscription_required"))
    );

    // The open stream says why and ends once the grace is over.
    let last = stream
        .next(GRACE + Duration::from_secs(4))
        .await
        .expect("an event");
    assert_eq!(last.event, "subscription_inactive");
    assert!(last.data.contains("subscription_inactive"));
    assert!(
        stream.next(Duration::from_secs(2)).await.is_none(),
        "the stream ended"
    );

    let (status, json) = refresh_with(base, &credential, &refresh_token, Some(&key)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(json["code"], "subscription_inactive");
    let (status, body) =
        get_with(base, "/v1/events?mode=poll&wait_secs=0", Some(&credential)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert!(String::from_utf8_lossy(&body).contains("subscription_inactive"));
    // A new licence, entered without signing in again: the device moves to it, and refresh and
    // stream work again (the refused refresh was never forwarded, so the token is unspent).
    let renewed = licence_admin::issue(&db.url, &signing, "personal", 30, 3)
        .await
        .expect("issue");
    for (key, want) in [
        ("VT1.nope.nope", StatusCode::PAYMENT_REQUIRED),
        (renewed.as_str(), StatusCode::OK),
    ] {
        let resp = http()
            .post(format!("{base}/v1/licence"))
            .bearer_auth(&credential)
            .form(&[("licence_key", key)])
            .send()
            .await
            .expect("rebind");
        assert_eq!(resp.status(), want);
        if want == StatusCode::OK {
            let info: Value = resp.json().await.expect("JSON");
            assert_eq!(info["licence_id"], licence::decode(&renewed).unwrap().id);
            assert_eq!(info["devices"], 1);
        }
    }
    let (status, _) = poll(base, &credential, None, 0).await;
    assert_eq!(status, StatusCode::OK);
    let (status, json) = refresh_with(base, &credential, &refresh_token, Some(&renewed)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    relay.shutdown().await;
    db.cleanup().await;
}

fn billing_signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

async fn post_billing(base: &str, signature: &str, body: &str) -> StatusCode {
    http()
        .post(format!("{base}/billing/webhook"))
        .header(relay::BILLING_SIGNATURE_HEADER, signature)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("billing webhook")
        .status()
}

async fn billing_webhook_renews_only_when_signed(db: &Db) {
    let sim = sim(43, SECRET).await;
    let signing = licence::SigningKey::generate();
    let relay = relay(gated(db, &sim, &signing)).await;
    let base = relay.base_url.as_str();
    let key = licence_admin::issue(&db.url, &signing, "personal", 1, 3)
        .await
        .expect("issue");
    let id = licence::decode(&key).unwrap().id;
    let body = format!(
        r#"{{"type":"licence.renewed","licence_id":"{id}","active_until":"2099-01-01T00:00:00Z"}}"#
    );
    let now = now_ms() / 1000;
    let good = billing_signature(BILLING_SECRET, now, &body);
    assert_eq!(
        post_billing(base, &billing_signature("wrong", now, &body), &body).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post_billing(
            base,
            &billing_signature(BILLING_SECRET, now - 3600, &body),
            &body
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "stale"
    );
    assert_eq!(
        post_billing(base, "", &body).await,
        StatusCode::UNAUTHORIZED
    );
    let until = |l: &[licence_admin::Licence]| l[0].active_until.to_rfc3339();
    assert!(!until(&licence_admin::list(&db.url).await.unwrap()).starts_with("2099"));
    assert_eq!(
        post_billing(base, &good, &body).await,
        StatusCode::NO_CONTENT
    );
    let listed = licence_admin::list(&db.url).await.unwrap();
    assert!(until(&listed).starts_with("2099-01-01"), "{listed:?}");
    assert_eq!(listed[0].status, "active");

    let unknown = body.replace(&id, "lic_00000000000000000000000000000000");
    let signed = billing_signature(BILLING_SECRET, now, &unknown);
    assert_eq!(
        post_billing(base, &signed, &unknown).await,
        StatusCode::NOT_FOUND
    );
    let cancel = format!(r#"{{"type":"licence.cancelled","licence_id":"{id}"}}"#);
    let signed = billing_signature(BILLING_SECRET, now, &cancel);
    assert_eq!(
        post_billing(base, &signed, &cancel).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        licence_admin::list(&db.url).await.unwrap()[0].status,
        "cancelled"
    );
    let revoke = format!(r#"{{"type":"licence.revoked","licence_id":"{id}"}}"#);
    let signed = billing_signature(BILLING_SECRET, now, &revoke);
    assert_eq!(
        post_billing(base, &signed, &revoke).await,
        StatusCode::NO_CONTENT
    );
    // A revocation is final.
    assert_eq!(post_billing(base, &good, &body).await, StatusCode::CONFLICT);
    relay.shutdown().await;

    // Without a billing secret the route does not exist.
    let open = relay::start(config(db, &sim)).await.expect("relay");
    assert_eq!(
        post_billing(&open.base_url, &good, &body).await,
        StatusCode::NOT_FOUND
    );
    open.shutdown().await;
    db.cleanup().await;
}

on_both_backends!(
    sign_in_needs_an_active_licence_and_a_free_device,
    a_lapsed_licence_keeps_refreshing_through_the_grace_then_stops,
    billing_webhook_renews_only_when_signed,
);
