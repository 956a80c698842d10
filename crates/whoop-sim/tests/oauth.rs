//! The OAuth behaviour clients must survive: consent, PKCE, single-use codes, rotating refresh
//! tokens whose replay kills the chain, and every way an access token can die.

mod common;

use common::*;
use whoop_sim::SimConfig;

const INVALID_GRANT: &str = "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.";

#[tokio::test]
async fn pkce_code_flow_checks_verifier_and_refuses_reuse() {
    bounded(async {
        let sim = sim(small(5)).await;
        let (verifier, challenge) = pkce_pair(3);
        let code = code(&sim, ALL_SCOPES, Some(&challenge)).await;

        let (wrong_verifier, _) = pkce_pair(9);
        let (status, body) = exchange(&sim, &code, Some(&wrong_verifier)).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], INVALID_GRANT);

        let (status, body) = exchange(&sim, &code, Some(&verifier)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 3600);
        assert!(body["refresh_token"].is_string());
        assert!(body["scope"].as_str().expect("scope").contains("offline"));
        let access = body["access_token"].as_str().expect("access").to_string();
        assert_eq!(get(&sim, &access, "/v2/user/profile/basic").await.0, 200);

        let (status, body) = exchange(&sim, &code, Some(&verifier)).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_grant");
        // Reusing a code also revokes what it was exchanged for.
        assert_eq!(get(&sim, &access, "/v2/user/profile/basic").await.0, 401);
    })
    .await;
}

#[tokio::test]
async fn code_exchange_checks_redirect_uri_and_client() {
    bounded(async {
        let sim = sim(small(3)).await;
        let code = code(&sim, "read:cycles", None).await;
        let (status, body) = token_request(
            &sim,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:8765/other"),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );

        let resp = http()
            .post(format!("{}/oauth/oauth2/token", sim.base_url))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("client_id", "vitaltrends-demo"),
                ("client_secret", "wrong"),
            ])
            .send()
            .await
            .expect("token");
        assert_eq!(resp.status(), 401);
        let body: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(body["error"], "invalid_client");

        // Without `offline` there is no refresh token.
        let (status, body) = exchange(&sim, &code, None).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("refresh_token").is_none());
        assert_eq!(body["scope"], "read:cycles");
    })
    .await;
}

#[tokio::test]
async fn refresh_rotates_and_replay_kills_the_chain() {
    bounded(async {
        let sim = sim(small(3)).await;
        let first = login(&sim).await;

        let (status, body) = refresh(&sim, &first.refresh).await;
        assert_eq!(status, 200, "{body}");
        let access2 = body["access_token"].as_str().expect("access").to_string();
        let refresh2 = body["refresh_token"].as_str().expect("refresh").to_string();
        assert_ne!(refresh2, first.refresh);
        // The previous access token dies at the moment of the refresh.
        assert_eq!(get(&sim, &first.access, "/v2/cycle").await.0, 401);
        assert_eq!(get(&sim, &access2, "/v2/cycle").await.0, 200);

        // Replaying the spent refresh token fails and takes the whole chain down.
        let (status, body) = refresh(&sim, &first.refresh).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], INVALID_GRANT);
        assert_eq!(get(&sim, &access2, "/v2/cycle").await.0, 401);
        let (status, body) = refresh(&sim, &refresh2).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );

        let s = stats(&sim).await;
        assert_eq!(s["refreshes"], 1);
        assert_eq!(s["tokens_issued"], 2);
        assert_eq!(s["requests"]["token"], 4);
    })
    .await;
}

#[tokio::test]
async fn revocations_and_expiry() {
    bounded(async {
        let sim = sim(small(3)).await;

        // The app disconnects itself.
        let t = login(&sim).await;
        let resp = http()
            .delete(format!("{}/developer/v2/user/access", sim.base_url))
            .bearer_auth(&t.access)
            .send()
            .await
            .expect("revoke");
        assert_eq!(resp.status(), 204);
        assert!(resp.text().await.expect("body").is_empty());
        assert_eq!(get(&sim, &t.access, "/v2/cycle").await.0, 401);
        assert_eq!(refresh(&sim, &t.refresh).await.0, 400);

        // The user revokes the app inside WHOOP.
        let t = login(&sim).await;
        control(&sim, "revoke", serde_json::json!({})).await;
        assert_eq!(get(&sim, &t.access, "/v2/cycle").await.0, 401);
        let (status, body) = refresh(&sim, &t.refresh).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );

        // Access tokens expire; the refresh token still works.
        let t = login(&sim).await;
        control(&sim, "expire-tokens", serde_json::json!({})).await;
        assert_eq!(get(&sim, &t.access, "/v2/cycle").await.0, 401);
        let (status, body) = refresh(&sim, &t.refresh).await;
        assert_eq!(status, 200, "{body}");
        let fresh = body["access_token"].as_str().expect("access");
        assert_eq!(get(&sim, fresh, "/v2/cycle").await.0, 200);
        assert_eq!(stats(&sim).await["unauthorized"], 3);
    })
    .await;
}

#[tokio::test]
async fn short_token_ttl_expires() {
    bounded(async {
        let sim = sim(SimConfig {
            token_ttl_secs: 1,
            ..small(3)
        })
        .await;
        let t = login(&sim).await;
        assert_eq!(get(&sim, &t.access, "/v2/cycle").await.0, 200);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert_eq!(get(&sim, &t.access, "/v2/cycle").await.0, 401);
    })
    .await;
}

#[tokio::test]
async fn consent_page_allow_and_deny() {
    bounded(async {
        let sim = sim(SimConfig {
            days: 3,
            ..SimConfig::default()
        })
        .await;
        let client = http();
        let consent_id = |html: &str| -> String {
            let marker = "name=\"consent\" value=\"";
            let start = html.find(marker).expect("consent field") + marker.len();
            html[start..].split('"').next().expect("value").to_string()
        };

        let page = client
            .get(auth_url(
                &sim,
                "read:sleep offline",
                "deny-state-0001",
                None,
            ))
            .send()
            .await
            .expect("auth");
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("html");
        assert!(html.contains("read:sleep") && html.contains("Authorize") && html.contains("Deny"));
        let resp = client
            .post(format!("{}/oauth/oauth2/auth/decision", sim.base_url))
            .form(&[
                ("consent", consent_id(&html).as_str()),
                ("decision", "deny"),
            ])
            .send()
            .await
            .expect("deny");
        assert_eq!(resp.status(), 302);
        let loc = location(&resp);
        assert!(loc.starts_with(REDIRECT));
        let q = query_of(&loc);
        assert_eq!(q["error"], "access_denied");
        assert_eq!(q["state"], "deny-state-0001");
        assert!(!q.contains_key("code"));

        let state = "a state with spaces & symbols/+=";
        let html = client
            .get(auth_url(&sim, "read:sleep offline", state, None))
            .send()
            .await
            .expect("auth")
            .text()
            .await
            .expect("html");
        let id = consent_id(&html);
        let resp = client
            .post(format!("{}/oauth/oauth2/auth/decision", sim.base_url))
            .form(&[("consent", id.as_str()), ("decision", "allow")])
            .send()
            .await
            .expect("allow");
        assert_eq!(resp.status(), 302);
        let q = query_of(&location(&resp));
        assert_eq!(q["state"], state);
        let (status, _) = exchange(&sim, &q["code"], None).await;
        assert_eq!(status, 200);
        // A consent can only be answered once.
        let again = client
            .post(format!("{}/oauth/oauth2/auth/decision", sim.base_url))
            .form(&[("consent", id.as_str()), ("decision", "allow")])
            .send()
            .await
            .expect("again");
        assert_eq!(again.status(), 400);
    })
    .await;
}

#[tokio::test]
async fn authorization_request_validation() {
    bounded(async {
        let sim = sim(SimConfig {
            redirect_uris: vec!["vitaltrends://oauth/whoop/callback?from=app".into()],
            ..small(3)
        })
        .await;
        let client = http();
        let url = |redirect: &str, state: &str| {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("response_type", "code"),
                    ("client_id", "vitaltrends-demo"),
                    ("redirect_uri", redirect),
                    ("scope", "read:cycles"),
                    ("state", state),
                ])
                .finish();
            format!("{}/oauth/oauth2/auth?{q}", sim.base_url)
        };

        // Unregistered redirect URI: an error, never a redirect.
        let resp = client
            .get(url(REDIRECT, "long-enough-state"))
            .send()
            .await
            .expect("auth");
        assert_eq!(resp.status(), 400);
        assert!(resp.headers().get("location").is_none());
        let body: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(body["error"], "invalid_request");
        assert!(body["error_hint"]
            .as_str()
            .expect("hint")
            .contains("redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls"));

        // A registered URI with a query keeps it and gets ours appended.
        let registered = "vitaltrends://oauth/whoop/callback?from=app";
        let resp = client
            .get(url(registered, "long-enough-state"))
            .send()
            .await
            .expect("auth");
        assert_eq!(resp.status(), 302);
        let loc = location(&resp);
        assert!(loc.starts_with(&format!("{registered}&code=")), "{loc}");
        assert_eq!(query_of(&loc)["from"], "app");

        // Too short a state is refused by redirecting with invalid_state.
        let resp = client
            .get(url(registered, "short"))
            .send()
            .await
            .expect("auth");
        assert_eq!(resp.status(), 302);
        let q = query_of(&location(&resp));
        assert_eq!(q["error"], "invalid_state");
        assert!(!q.contains_key("code"));

        let s = stats(&sim).await;
        assert_eq!(s["requests"]["auth"], 3);
    })
    .await;
}
