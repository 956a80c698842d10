//! The token broker against the simulator's OAuth server: code exchange binds a device to the
//! WHOOP user the tokens belong to, refresh rotates, WHOOP's errors pass through untouched, and
//! the landing page hands the callback to the app.

use std::time::Duration;

use reqwest::StatusCode;

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    code_exchange_returns_tokens_and_a_bound_device,
    refresh_through_the_broker_rotates,
    the_broker_is_not_an_open_proxy,
    a_lost_answer_and_an_unreachable_whoop_are_told_apart,
);

/// What the simulator counted (requests per endpoint, refreshes, replays).
async fn sim_stats(sim: &whoop_sim::SimHandle) -> serde_json::Value {
    http()
        .get(format!("{}/_sim/stats", sim.base_url))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats JSON")
}

async fn profile_status(sim_url: &str, access_token: &str) -> StatusCode {
    http()
        .get(format!("{sim_url}/developer/v2/user/profile/basic"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("profile")
        .status()
}

async fn code_exchange_returns_tokens_and_a_bound_device(db: &Db) {
    let sim = sim(11, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    point_sim_at(&sim, &relay.base_url).await;
    let (code, verifier) = authorize(&sim).await;
    let (status, json, _) = exchange(&relay.base_url, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    // WHOOP's object unchanged, plus exactly one field.
    let mut keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "access_token",
            "device_credential",
            "expires_in",
            "refresh_token",
            "scope",
            "token_type"
        ]
    );
    assert_eq!(json["token_type"], "bearer");
    assert_eq!(json["expires_in"], 3600);
    assert!(json["scope"]
        .as_str()
        .is_some_and(|s| s.contains("offline")));
    let access = json["access_token"].as_str().expect("access token");
    let credential = json["device_credential"].as_str().expect("credential");
    assert_eq!(profile_status(&sim.base_url, access).await, StatusCode::OK);

    // Bound to the simulator's user, stored only as a hash.
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM devices WHERE user_id = {}",
            sim.user_id
        ))
        .await,
        1
    );
    let devices = db.text_dump("devices").await;
    let hash = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(credential.as_bytes()))
    };
    assert!(devices.contains(&hash), "{devices}");
    assert!(!devices.contains(credential));
    assert!(!devices.contains(access));
    let trace = fire(&sim, "workout.updated", &uuid()).await;
    let mut stream = Sse::open(&relay.base_url, credential, None).await;
    let ev = stream.expect(Duration::from_secs(5)).await;
    assert_eq!(ev.json()["trace_id"], trace.as_str());
    assert_eq!(ev.json()["user_id"], sim.user_id);

    // WHOOP's refusals come back as WHOOP sent them: a spent code, then an unknown one.
    let (status, json, _) = exchange(&relay.base_url, &code, &verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["error"], "invalid_grant");
    let (relayed_status, _, relayed) = exchange(&relay.base_url, "nope", &verifier).await;
    let direct = http()
        .post(format!("{}/oauth/oauth2/token", sim.base_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "nope"),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
            ("client_id", sim.client_id.as_str()),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .expect("direct exchange");
    assert_eq!(relayed_status, direct.status());
    assert_eq!(relayed, direct.bytes().await.expect("body").to_vec());
    // A wrong secret at the relay is WHOOP's 401 invalid_client, passed through.
    let misconfigured = relay::start(relay::RelayConfig {
        client_secrets: vec!["wrong".into()],
        ..config(db, &sim)
    })
    .await
    .expect("relay");
    let (code, verifier) = authorize(&sim).await;
    let (status, json, _) = exchange(&misconfigured.base_url, &code, &verifier).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"], "invalid_client");
    // The broker's own checks.
    let resp = http()
        .post(format!("{}/oauth/whoop/token", relay.base_url))
        .form(&[("redirect_uri", REDIRECT_URI)])
        .send()
        .await
        .expect("exchange");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM devices").await,
        1,
        "no device for refused exchanges"
    );
}

async fn refresh_through_the_broker_rotates(db: &Db) {
    let sim = sim(12, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    let first = connect(&sim, &relay.base_url).await;
    let refresh = |token: String| {
        let url = format!("{}/oauth/whoop/refresh", relay.base_url);
        let credential = first.credential.clone();
        async move {
            let resp = http()
                .post(url)
                .bearer_auth(credential)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                    ("scope", "offline"),
                ])
                .send()
                .await
                .expect("refresh");
            let status = resp.status();
            let cache = resp
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let json: serde_json::Value = resp.json().await.expect("JSON");
            (status, cache, json)
        }
    };
    let (status, cache, json) = refresh(first.refresh_token.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cache, "no-store");
    assert!(json.get("device_credential").is_none());
    let new_access = json["access_token"].as_str().expect("access").to_string();
    let new_refresh = json["refresh_token"].as_str().expect("refresh").to_string();
    assert_ne!(new_access, first.access_token);
    assert_ne!(new_refresh, first.refresh_token);
    assert_eq!(
        profile_status(&sim.base_url, &new_access).await,
        StatusCode::OK
    );
    assert_eq!(
        profile_status(&sim.base_url, &first.access_token).await,
        StatusCode::UNAUTHORIZED
    );
    // Replaying the spent refresh token: WHOOP's invalid_grant, unchanged.
    let (status, _, json) = refresh(first.refresh_token.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["error"], "invalid_grant");
    // Missing token: the broker's own 400.
    let (status, _, json) = refresh(String::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["error"], "invalid_request");
    // Refreshing binds nothing.
    assert_eq!(db.scalar("SELECT COUNT(*) FROM devices").await, 1);
}

#[tokio::test]
async fn callback_page_hands_the_code_to_the_app() {
    let db = Db::sqlite();
    let sim = sim(13, SECRET).await;
    let relay = relay(config(&db, &sim)).await;
    let (status, body) = get_with(
        &relay.base_url,
        "/oauth/whoop/callback?code=ab%2Fc%26d&state=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E&scope=offline",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(body).expect("UTF-8");
    let link = "vitaltrends://oauth/whoop/callback?code=ab%2Fc%26d&amp;state=%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E";
    assert!(
        page.contains(&format!("content=\"0;url={link}\"")),
        "{page}"
    );
    assert!(page.contains(&format!("<a href=\"{link}\">Open VitalTrends</a>")));
    assert!(!page.contains("<script"));
    assert!(!page.contains("scope"));

    let resp = http()
        .get(format!(
            "{}/oauth/whoop/callback?error=access_denied&state=12345678",
            relay.base_url
        ))
        .send()
        .await
        .expect("callback");
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert_eq!(
        headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert!(headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html")));
    let page = resp.text().await.expect("page");
    assert!(
        page.contains("vitaltrends://oauth/whoop/callback?state=12345678&amp;error=access_denied")
    );
}

async fn broker_refresh(
    base_url: &str,
    credential: Option<&str>,
    token: &str,
) -> (StatusCode, serde_json::Value) {
    let mut req = http().post(format!("{base_url}/oauth/whoop/refresh"));
    if let Some(credential) = credential {
        req = req.bearer_auth(credential);
    }
    let resp = req
        .form(&[("refresh_token", token)])
        .send()
        .await
        .expect("refresh");
    let status = resp.status();
    (status, resp.json().await.expect("JSON"))
}

/// Refreshes need the device credential the code exchange handed out, and a code exchange needs
/// PKCE: otherwise anyone could use the relay's client secret to refresh WHOOP tokens or trade
/// codes they saw. Neither refusal reaches WHOOP.
async fn the_broker_is_not_an_open_proxy(db: &Db) {
    let sim = sim(14, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    let tokens = connect(&sim, &relay.base_url).await;
    let other = connect(&sim, &relay.base_url).await;
    let resp = http()
        .delete(format!("{}/v1/devices/self", relay.base_url))
        .bearer_auth(&other.credential)
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (code, _verifier) = authorize(&sim).await;
    http()
        .post(format!("{}/_sim/reset-stats", sim.base_url))
        .send()
        .await
        .expect("reset");
    for credential in [None, Some("not-a-device-credential")] {
        let (status, json) =
            broker_refresh(&relay.base_url, credential, &tokens.refresh_token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{credential:?}");
        assert_eq!(json["error"], "unauthorized");
    }
    // A revoked device cannot refresh either.
    let (status, _) = broker_refresh(
        &relay.base_url,
        Some(&other.credential),
        &other.refresh_token,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let resp = http()
        .post(format!("{}/oauth/whoop/token", relay.base_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
        ])
        .send()
        .await
        .expect("exchange");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let json: serde_json::Value = resp.json().await.expect("JSON");
    assert_eq!(json["error"], "code_verifier_required");
    let stats = sim_stats(&sim).await;
    assert_eq!(stats["requests"]["token"], 0, "nothing was sent to WHOOP");

    // With the credential the same refresh token works (nothing above spent it).
    let (status, json) = broker_refresh(
        &relay.base_url,
        Some(&tokens.credential),
        &tokens.refresh_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
}

/// WHOOP failing after it rotated (or cutting the answer) is 502 `whoop_outcome_unknown`, sent
/// to WHOOP once; WHOOP out of reach is 503 `whoop_unreachable`, which the client may retry.
async fn a_lost_answer_and_an_unreachable_whoop_are_told_apart(db: &Db) {
    let sim = sim(13, SECRET).await;
    let relay = relay(config(db, &sim)).await;
    for fault in ["fail_after_rotate_next", "cut_after_rotate_next"] {
        let tokens = connect(&sim, &relay.base_url).await;
        http()
            .post(format!("{}/_sim/token-faults", sim.base_url))
            .json(&serde_json::json!({ fault: 1 }))
            .send()
            .await
            .expect("faults");
        http()
            .post(format!("{}/_sim/reset-stats", sim.base_url))
            .send()
            .await
            .expect("reset");
        let (status, json) = broker_refresh(
            &relay.base_url,
            Some(&tokens.credential),
            &tokens.refresh_token,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{fault}");
        assert_eq!(json["error"], "whoop_outcome_unknown", "{fault}");
        let stats = sim_stats(&sim).await;
        assert_eq!(
            stats["requests"]["token"], 1,
            "{fault}: sent to WHOOP again"
        );
        assert_eq!(stats["refresh_replays"], 0, "{fault}");
    }

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let device = connect(&sim, &relay.base_url).await;
    // Same database, so the device bound above is known there.
    let unreachable = relay::start(relay::RelayConfig {
        whoop_base_url: format!("http://127.0.0.1:{closed}").parse().expect("URL"),
        ..config(db, &sim)
    })
    .await
    .expect("relay");
    let (status, json) = broker_refresh(
        &unreachable.base_url,
        Some(&device.credential),
        "ory_rt_anything",
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json["error"], "whoop_unreachable");
}
