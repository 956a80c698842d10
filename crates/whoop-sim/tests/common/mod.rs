//! Helpers shared by the integration tests: start a simulator on loopback, run the OAuth
//! flow, and bound every test in time.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use whoop_sim::{SimConfig, SimHandle};

pub const REDIRECT: &str = "http://127.0.0.1:8765/oauth/whoop/callback";
pub const ALL_SCOPES: &str =
    "read:recovery read:cycles read:workout read:sleep read:profile read:body_measurement offline";

/// Fails the test instead of hanging CI if something never answers.
pub async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test took longer than 60 s");
}

pub async fn sim(config: SimConfig) -> SimHandle {
    whoop_sim::start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator starts")
}

pub fn small(days: u32) -> SimConfig {
    SimConfig {
        days,
        auto_approve: true,
        ..SimConfig::default()
    }
}

/// A client that shows redirects instead of following them.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub fn pkce_pair(seed: u8) -> (String, String) {
    let verifier: String = (0..64)
        .map(|i| (b'a' + ((i as u8).wrapping_mul(7).wrapping_add(seed)) % 26) as char)
        .collect();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .expect("ascii")
        .to_string()
}

pub fn auth_url(sim: &SimHandle, scope: &str, state: &str, challenge: Option<&str>) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", "vitaltrends-demo"),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", state),
    ];
    if let Some(c) = challenge {
        pairs.push(("code_challenge", c));
        pairs.push(("code_challenge_method", "S256"));
    }
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{}/oauth/oauth2/auth?{q}", sim.base_url)
}

/// Runs the auto-approved authorization and returns the code.
pub async fn code(sim: &SimHandle, scope: &str, challenge: Option<&str>) -> String {
    let resp = http()
        .get(auth_url(sim, scope, "state-1234", challenge))
        .send()
        .await
        .expect("auth");
    assert_eq!(resp.status(), 302);
    let q = query_of(&location(&resp));
    assert_eq!(q.get("state").map(String::as_str), Some("state-1234"));
    q.get("code").expect("code").clone()
}

pub async fn token_request(sim: &SimHandle, form: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![
        ("client_id", "vitaltrends-demo"),
        ("client_secret", "demo-secret"),
    ];
    all.extend_from_slice(form);
    let resp = http()
        .post(format!("{}/oauth/oauth2/token", sim.base_url))
        .form(&all)
        .send()
        .await
        .expect("token");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("token JSON"))
}

pub async fn exchange(sim: &SimHandle, code: &str, verifier: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    token_request(sim, &form).await
}

pub async fn refresh(sim: &SimHandle, refresh_token: &str) -> (u16, Value) {
    token_request(
        sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("scope", "offline"),
        ],
    )
    .await
}

pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

pub async fn login(sim: &SimHandle) -> Tokens {
    let (verifier, challenge) = pkce_pair(1);
    let code = code(sim, ALL_SCOPES, Some(&challenge)).await;
    let (status, body) = exchange(sim, &code, Some(&verifier)).await;
    assert_eq!(status, 200, "{body}");
    Tokens {
        access: body["access_token"].as_str().expect("access").to_string(),
        refresh: body["refresh_token"].as_str().expect("refresh").to_string(),
    }
}

/// GET a data path with a bearer token; returns status and body text.
pub async fn get(sim: &SimHandle, token: &str, path_and_query: &str) -> (u16, String) {
    let resp = http()
        .get(format!("{}/developer{path_and_query}", sim.base_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("data request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

pub async fn get_json(sim: &SimHandle, token: &str, path_and_query: &str) -> Value {
    let (status, body) = get(sim, token, path_and_query).await;
    assert_eq!(status, 200, "{path_and_query}: {body}");
    serde_json::from_str(&body).expect("JSON body")
}

pub async fn control(sim: &SimHandle, path: &str, body: Value) -> Value {
    let resp = http()
        .post(format!("{}/_sim/{path}", sim.base_url))
        .json(&body)
        .send()
        .await
        .expect("control request");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.expect("control JSON")
}

pub async fn dump(sim: &SimHandle) -> Value {
    http()
        .get(format!("{}/_sim/dump", sim.base_url))
        .send()
        .await
        .expect("dump")
        .json()
        .await
        .expect("dump JSON")
}

pub async fn stats(sim: &SimHandle) -> Value {
    http()
        .get(format!("{}/_sim/stats", sim.base_url))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats JSON")
}
