//! The unkind WHOOP the client must survive at the token endpoint and at sign-in: answers that
//! fail or break off after the refresh token was already rotated, a slow token endpoint, an app
//! registered with fewer scopes, tokens refused outside their granted scopes, and a sign-in as
//! another member.

mod common;

use common::*;
use serde_json::json;
use whoop_sim::SimConfig;

#[tokio::test]
async fn token_answers_can_fail_or_break_off_after_rotating() {
    bounded(async {
        let sim = sim(small(3)).await;
        let t = login(&sim).await;

        // A 500 after rotating: the refresh token presented is spent all the same.
        control(&sim, "token-faults", json!({"fail_after_rotate_next": 1})).await;
        let (status, _) = refresh(&sim, &t.refresh).await;
        assert_eq!(status, 500);
        assert_eq!(
            get(&sim, &t.access, "/v2/cycle").await.0,
            401,
            "old token still works"
        );
        let (status, body) = refresh(&sim, &t.refresh).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        let s = stats(&sim).await;
        assert_eq!(s["refresh_replays"], 1);

        // A cut connection after rotating: headers, then the body breaks off.
        let t = login(&sim).await;
        control(&sim, "token-faults", json!({"cut_after_rotate_next": 1})).await;
        let resp = http()
            .post(format!("{}/oauth/oauth2/token", sim.base_url))
            .form(&[
                ("client_id", "vitaltrends-demo"),
                ("client_secret", "demo-secret"),
                ("grant_type", "refresh_token"),
                ("refresh_token", t.refresh.as_str()),
                ("scope", "offline"),
            ])
            .send()
            .await;
        let broke = match resp {
            Err(_) => true,
            Ok(resp) => resp.bytes().await.is_err(),
        };
        assert!(broke, "the answer arrived whole");
        assert_eq!(get(&sim, &t.access, "/v2/cycle").await.0, 401);

        // A 500 before anything happened leaves the refresh token usable, and faults are
        // one-shot: the next answers are normal.
        let t = login(&sim).await;
        let set = control(
            &sim,
            "token-faults",
            json!({"fail_next": 1, "latency_ms": 50}),
        )
        .await;
        assert_eq!(set["fail_next"], 1);
        assert_eq!(set["latency_ms"], 50);
        assert_eq!(refresh(&sim, &t.refresh).await.0, 500);
        let (status, body) = refresh(&sim, &t.refresh).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(stats(&sim).await["refresh_replays"], 1);
    })
    .await;
}

#[tokio::test]
async fn token_faults_can_be_set_by_flags() {
    bounded(async {
        let sim = sim(SimConfig {
            token_fail_after_rotate: 1,
            ..small(3)
        })
        .await;
        let (verifier, challenge) = pkce_pair(1);
        let code = code(&sim, ALL_SCOPES, Some(&challenge)).await;
        // The code is spent even though the answer was a 500.
        assert_eq!(exchange(&sim, &code, Some(&verifier)).await.0, 500);
        let (status, body) = exchange(&sim, &code, Some(&verifier)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    })
    .await;
}

#[tokio::test]
async fn tokens_only_reach_the_endpoints_of_their_scopes() {
    bounded(async {
        let sim = sim(small(3)).await;
        let code = code(&sim, "read:profile offline", None).await;
        let (status, body) = exchange(&sim, &code, None).await;
        assert_eq!(status, 200, "{body}");
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(get(&sim, access, "/v2/user/profile/basic").await.0, 200);
        for path in [
            "/v2/cycle",
            "/v2/recovery",
            "/v2/activity/sleep",
            "/v2/activity/workout",
            "/v2/user/measurement/body",
        ] {
            assert_eq!(get(&sim, access, path).await.0, 401, "{path}");
        }
        // Refreshing keeps the granted scopes, no more.
        let (_, body) = refresh(&sim, body["refresh_token"].as_str().unwrap()).await;
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(get(&sim, access, "/v2/cycle").await.0, 401);
        assert_eq!(get(&sim, access, "/v2/user/profile/basic").await.0, 200);
    })
    .await;
}

#[tokio::test]
async fn an_app_registered_with_fewer_scopes_gets_invalid_scope_at_sign_in() {
    bounded(async {
        let sim = sim(SimConfig {
            app_scopes: vec!["read:profile".into(), "offline".into()],
            ..small(3)
        })
        .await;
        let resp = http()
            .get(auth_url(&sim, ALL_SCOPES, "state-1234", None))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        let q = query_of(&location(&resp));
        assert_eq!(q["error"], "invalid_scope");
        assert!(q["error_description"].contains("read:recovery"), "{q:?}");
        assert_eq!(q["state"], "state-1234");
        // What the registration allows still works; lifting the limit allows everything.
        code(&sim, "read:profile offline", None).await;
        control(&sim, "app-scopes", json!({"scopes": null})).await;
        code(&sim, ALL_SCOPES, None).await;
    })
    .await;
}

#[tokio::test]
async fn a_sign_in_can_be_as_another_member_and_its_grant_revoked() {
    bounded(async {
        let sim = sim(small(3)).await;
        let main = login(&sim).await;
        let set = control(&sim, "other-member-logins", json!({"count": 1})).await;
        let other = login(&sim).await;
        let profile = get_json(&sim, &other.access, "/v2/user/profile/basic").await;
        assert_eq!(profile["user_id"], set["user_id"]);
        assert_ne!(profile["user_id"].as_i64(), Some(sim.user_id));
        assert_eq!(profile["first_name"], "Riley");
        let mine = get_json(&sim, &main.access, "/v2/user/profile/basic").await;
        assert_eq!(mine["user_id"].as_i64(), Some(sim.user_id));
        // Only the next sign-in was switched.
        let again = login(&sim).await;
        let profile = get_json(&sim, &again.access, "/v2/user/profile/basic").await;
        assert_eq!(profile["user_id"].as_i64(), Some(sim.user_id));

        let revoked = http()
            .delete(format!("{}/developer/v2/user/access", sim.base_url))
            .bearer_auth(&other.access)
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 204);
        let grants: serde_json::Value = http()
            .get(format!("{}/_sim/grants", sim.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let grants = grants.as_array().unwrap();
        assert_eq!(grants.len(), 3);
        let revoked: Vec<bool> = grants.iter().map(|g| g["revoked"] == true).collect();
        let other_member: Vec<bool> = grants.iter().map(|g| g["other_member"] == true).collect();
        assert_eq!(revoked, [false, true, false]);
        assert_eq!(other_member, [false, true, false]);
        assert_eq!(get(&sim, &main.access, "/v2/cycle").await.0, 200);
    })
    .await;
}
