//! The client against the simulator over real HTTP: paging, by-id fetches, retries through
//! injected faults, rate-limit pacing and 429, 401s, token rotation and revocation.

use std::time::Duration;

use url::Url;
use whoop::oauth::{authorization_request, authorize_url, token_url, TokenClient, TokenEndpoint};
use whoop::{
    Client, ClientConfig, Collection, Cycle, Error, PageQuery, Recovery, Secret, Sleep, Workout,
};
use whoop_sim::{SimConfig, SimHandle};

async fn sim(config: SimConfig) -> SimHandle {
    whoop_sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

fn config(days: u32) -> SimConfig {
    SimConfig {
        days,
        seed: 11,
        auto_approve: true,
        ..SimConfig::default()
    }
}

fn token_client(sim: &SimHandle) -> TokenClient {
    TokenClient::new(TokenEndpoint::Direct {
        token_url: token_url(&Url::parse(&sim.base_url).unwrap()).unwrap(),
        client_id: "vitaltrends-demo".into(),
        client_secret: Secret::new("demo-secret"),
    })
    .unwrap()
}

/// Authorizes through the auto-approving consent page and exchanges the code.
async fn authorize(sim: &SimHandle) -> (Secret, Secret) {
    let base = Url::parse(&sim.base_url).unwrap();
    let redirect = "http://127.0.0.1:9/oauth/whoop/callback";
    let request =
        authorization_request(&authorize_url(&base).unwrap(), "vitaltrends-demo", redirect)
            .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = http.get(request.url.clone()).send().await.unwrap();
    assert!(answer.status().is_redirection(), "{}", answer.status());
    let location = Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], request.state, "state echoed exactly");
    let tokens = token_client(sim)
        .exchange_code(&pairs["code"], redirect, &request.pkce_verifier)
        .await
        .unwrap();
    assert!(tokens.scope.contains("offline"));
    (
        tokens.access_token,
        tokens.refresh_token.expect("offline gives a refresh token"),
    )
}

fn client(sim: &SimHandle) -> Client {
    let mut config = ClientConfig::new(Url::parse(&sim.base_url).unwrap());
    config.backoff_base = Duration::from_millis(20);
    config.backoff_cap = Duration::from_millis(200);
    Client::new(config).unwrap()
}

async fn control(sim: &SimHandle, path: &str, body: serde_json::Value) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(serde_json::Value::Null)
}

async fn stats(sim: &SimHandle) -> serde_json::Value {
    reqwest::get(format!("{}/_sim/stats", sim.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn pages_every_collection_with_the_fewest_requests() {
    let sim = sim(config(120)).await;
    let (token, _) = authorize(&sim).await;
    let client = client(&sim);
    let dump: serde_json::Value = reqwest::get(format!("{}/_sim/dump", sim.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let cycles = client
        .collect_all::<Cycle>(token.expose(), None, None)
        .await
        .unwrap();
    let sleeps = client
        .collect_all::<Sleep>(token.expose(), None, None)
        .await
        .unwrap();
    let recoveries = client
        .collect_all::<Recovery>(token.expose(), None, None)
        .await
        .unwrap();
    let workouts = client
        .collect_all::<Workout>(token.expose(), None, None)
        .await
        .unwrap();
    let counts = [
        (Collection::Cycle, cycles.records.len()),
        (Collection::Sleep, sleeps.records.len()),
        (Collection::Recovery, recoveries.records.len()),
        (Collection::Workout, workouts.records.len()),
    ];
    let stats = stats(&sim).await;
    for (collection, n) in counts {
        assert_eq!(
            n,
            dump[collection.as_str()].as_array().unwrap().len(),
            "{collection}"
        );
        let requests = stats["requests"][format!("{collection}.collection")]
            .as_u64()
            .unwrap();
        assert_eq!(requests, (n as u64).div_ceil(25), "{collection} requests");
    }
    assert!(cycles.skipped.is_empty());
    // Newest first, and the open cycle (no end) is the newest.
    assert!(cycles
        .records
        .windows(2)
        .all(|w| w[0].record.start >= w[1].record.start));
    assert!(cycles.records[0].record.end.is_none());

    // A time window returns only what intersects it, with the same start/end on every page.
    let start = cycles.records[40].record.start;
    let end = cycles.records[10].record.start;
    let window = client
        .collect_all::<Cycle>(token.expose(), Some(start), Some(end))
        .await
        .unwrap();
    assert!(
        window.records.len() >= 30 && window.records.len() <= 32,
        "{}",
        window.records.len()
    );
    assert!(window.records.iter().all(|c| c.record.start < end));
}

#[tokio::test]
async fn by_id_fetches_and_missing_records() {
    let sim = sim(config(20)).await;
    let (token, _) = authorize(&sim).await;
    let client = client(&sim);
    let page = client
        .page::<Recovery>(token.expose(), &PageQuery::default())
        .await
        .unwrap();
    let recovery = &page
        .records
        .iter()
        .find(|r| r.record.score.is_some())
        .unwrap()
        .record;

    let sleep = client
        .sleep(token.expose(), &recovery.sleep_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sleep.record.cycle_id, recovery.cycle_id);
    let cycle = client
        .cycle(token.expose(), recovery.cycle_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cycle.record.id, recovery.cycle_id);
    let again = client
        .recovery_for_cycle(token.expose(), recovery.cycle_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&again.record, recovery);
    let cycle_sleep = client
        .sleep_for_cycle(token.expose(), recovery.cycle_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cycle_sleep.record.id, recovery.sleep_id);
    let workouts = client
        .page::<Workout>(token.expose(), &PageQuery::default())
        .await
        .unwrap();
    let w = &workouts.records[0].record;
    assert_eq!(
        client
            .workout(token.expose(), &w.id)
            .await
            .unwrap()
            .unwrap()
            .record,
        *w
    );

    assert!(client
        .sleep(token.expose(), "00000000-0000-4000-8000-000000000000")
        .await
        .unwrap()
        .is_none());
    assert!(client.cycle(token.expose(), 1).await.unwrap().is_none());
    // An id that tries to leave its path segment stays one (encoded) segment: WHOOP calls it a
    // malformed id instead of serving another endpoint.
    let escaped = client
        .sleep(token.expose(), "../../user/profile/basic")
        .await;
    assert!(
        matches!(escaped, Err(Error::Status { status: 400, .. })),
        "{escaped:?}"
    );

    let profile = client.profile(token.expose()).await.unwrap();
    assert_eq!(profile.record.user_id, sim.user_id);
    assert!(client
        .body_measurement(token.expose())
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn server_errors_and_garbled_bodies_are_retried() {
    let sim = sim(config(20)).await;
    let (token, _) = authorize(&sim).await;
    let client = client(&sim);

    control(&sim, "/_sim/faults", serde_json::json!({"fail_next": 2})).await;
    let page = client
        .page::<Cycle>(token.expose(), &PageQuery::default())
        .await
        .unwrap();
    assert!(!page.records.is_empty());
    assert_eq!(client.stats().retries, 2);

    control(
        &sim,
        "/_sim/faults",
        serde_json::json!({"malformed_next": 1}),
    )
    .await;
    let page = client
        .page::<Sleep>(token.expose(), &PageQuery::default())
        .await
        .unwrap();
    assert!(!page.records.is_empty());
    assert_eq!(client.stats().retries, 3);

    // WHOOP failing longer than the retry budget is a clear error, not a hang.
    control(&sim, "/_sim/faults", serde_json::json!({"fail_next": 10})).await;
    let err = client
        .page::<Cycle>(token.expose(), &PageQuery::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unavailable { attempts: 5, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn the_client_paces_itself_and_reports_429_it_cannot_wait_out() {
    let sim = sim(SimConfig {
        rate_limit_minute: 5,
        ..config(20)
    })
    .await;
    let (token, _) = authorize(&sim).await;
    let mut paced = ClientConfig::new(Url::parse(&sim.base_url).unwrap());
    paced.max_rate_limit_wait = Duration::from_secs(1);
    let client = Client::new(paced.clone()).unwrap();
    for _ in 0..5 {
        client
            .page::<Cycle>(token.expose(), &PageQuery::default())
            .await
            .unwrap();
    }
    // The budget is spent: the client knows from the headers and does not send a sixth request.
    let err = client
        .page::<Cycle>(token.expose(), &PageQuery::default())
        .await
        .unwrap_err();
    let Error::RateLimited { retry_after } = err else {
        panic!("{err:?}")
    };
    assert!(retry_after > Duration::from_secs(1) && retry_after <= Duration::from_secs(61));
    assert_eq!(
        stats(&sim).await["rate_limited"],
        0,
        "pacing avoided the 429"
    );
    assert_eq!(client.stats().requests, 5);

    // A client that did not see the headers runs into the 429 and reports how long to wait.
    let unaware = Client::new(paced).unwrap();
    let err = unaware
        .page::<Cycle>(token.expose(), &PageQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert_eq!(stats(&sim).await["rate_limited"], 1);
    assert_eq!(unaware.stats().rate_limited, 1);
}

#[tokio::test]
async fn expired_tokens_are_401_and_refresh_rotates() {
    let sim = sim(config(10)).await;
    let (token, refresh) = authorize(&sim).await;
    let client = client(&sim);
    let tokens = token_client(&sim);

    control(&sim, "/_sim/expire-tokens", serde_json::json!({})).await;
    let err = client.profile(token.expose()).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized), "{err:?}");

    let fresh = tokens.refresh(&refresh, None).await.unwrap();
    let new_refresh = fresh.refresh_token.clone().unwrap();
    assert_ne!(new_refresh, refresh, "refresh tokens rotate");
    client.profile(fresh.access_token.expose()).await.unwrap();

    // Replaying the spent refresh token is invalid_grant, and it kills the newer pair too.
    let replay = tokens.refresh(&refresh, None).await.unwrap_err();
    assert!(matches!(replay, Error::InvalidGrant { .. }), "{replay:?}");
    let after = tokens.refresh(&new_refresh, None).await.unwrap_err();
    assert!(matches!(after, Error::InvalidGrant { .. }), "{after:?}");
    assert!(matches!(
        client.profile(fresh.access_token.expose()).await,
        Err(Error::Unauthorized)
    ));
}

#[tokio::test]
async fn revoke_ends_access() {
    let sim = sim(config(10)).await;
    let (token, refresh) = authorize(&sim).await;
    let client = client(&sim);
    client.revoke(token.expose()).await.unwrap();
    assert!(matches!(
        client.profile(token.expose()).await,
        Err(Error::Unauthorized)
    ));
    let err = token_client(&sim)
        .refresh(&refresh, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidGrant { .. }), "{err:?}");
}

#[tokio::test]
async fn a_wrong_client_secret_is_not_mistaken_for_a_dead_grant() {
    let sim = sim(config(10)).await;
    let (_, refresh) = authorize(&sim).await;
    let wrong = TokenClient::new(TokenEndpoint::Direct {
        token_url: token_url(&Url::parse(&sim.base_url).unwrap()).unwrap(),
        client_id: "vitaltrends-demo".into(),
        client_secret: Secret::new("not-the-secret"),
    })
    .unwrap();
    let err = wrong.refresh(&refresh, None).await.unwrap_err();
    assert!(
        matches!(err, Error::OAuth { ref error, .. } if error == "invalid_client"),
        "{err:?}"
    );
}
