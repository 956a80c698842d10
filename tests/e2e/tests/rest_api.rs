//! The local REST API as a script meets it: `vitaltrends serve-api` on 127.0.0.1 over a
//! simulator history. No token or a wrong one → 401; a request addressed to another host (DNS
//! rebinding from a web page) → 403 even with the token; every endpoint's JSON validates against
//! the OpenAPI document the server itself serves (Python `jsonschema`); only the token's hash is
//! kept in the settings file.

use std::process::Stdio;
use std::time::Duration;

use e2e::{Cli, SimProcess};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

const MINUTE: Duration = Duration::from_secs(60);

async fn validate(base: &str, token: &str, requests: Value) -> Value {
    let job = json!({"base": base, "token": token, "requests": requests});
    e2e::python_script("validate_openapi.py", &job, 2 * MINUTE).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_guards_and_matches_its_openapi_document() {
    let sim = SimProcess::start(&["--days", "120", "--seed", "3", "--auto-approve"]).await;
    let cli = Cli::new(&sim);
    assert!(cli.connect().await.status.success());
    let synced = cli.run(&["sync"], 5 * MINUTE).await;
    assert!(synced.status.success(), "sync: {}", synced.stderr);

    // Without a token the server refuses to start, saying how to make one.
    let refused = cli.run(&["serve-api", "--port", "0"], MINUTE).await;
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("api-token new"),
        "{}",
        refused.stderr
    );

    let made = cli.run(&["api-token", "new"], MINUTE).await;
    assert!(made.status.success(), "{}", made.stderr);
    let token = made.stdout.trim().to_string();
    assert!(token.starts_with("vt_") && token.len() > 40, "{token}");
    let settings =
        std::fs::read_to_string(cli.data_dir.path().join("config/settings.toml")).unwrap();
    assert!(
        !settings.contains(&token[3..]),
        "the token itself reached the settings file"
    );
    assert!(settings.contains("token_sha256"), "{settings}");

    let mut server = cli
        .command()
        .args(["serve-api", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(MINUTE, lines.next_line())
        .await
        .expect("serve-api says where it listens")
        .unwrap()
        .unwrap();
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    let today = format!("{base}/api/v1/today");

    // No token, a wrong token, a token in the wrong scheme: 401 with a JSON error.
    for auth in [
        None,
        Some("Bearer vt_wrong"),
        Some(&*format!("Basic {token}")),
    ] {
        let mut request = http.get(&today);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        assert!(response.headers().contains_key("www-authenticate"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized");
    }
    // Addressed to another name (as a rebinding web page would be): 403, token or not.
    for host in ["evil.example", "evil.example:80", "127.0.0.1.evil.example"] {
        let response = http
            .get(&today)
            .header("Host", host)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{host}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "forbidden_host");
    }
    // Read-only: nothing but GET.
    let posted = http.post(&today).bearer_auth(&token).send().await.unwrap();
    assert_eq!(posted.status(), 405);
    // localhost works as well as the address.
    let by_name = http
        .get(today.replace("127.0.0.1", "localhost"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.status(), 200);

    let dump = sim.get_json("/_sim/dump").await;
    let sport = dump["workout"][0]["sport_name"]
        .as_str()
        .unwrap()
        .to_string();
    let requests = json!([
        {"path": "/api/v1/today"},
        {"path": "/api/v1/series", "query": {"metric": "hrv", "range": "90d", "rolling_days": "7"}},
        {"path": "/api/v1/series", "query": {"metric": "skin_temp", "range": "all"}},
        {"path": "/api/v1/summary", "query": {"range": "30d"}},
        {"path": "/api/v1/compare", "query": {"a_from": "2020-01-01", "a_to": "2030-01-01", "b_from": "2020-01-01", "b_to": "2020-01-07"}},
        {"path": "/api/v1/correlate", "query": {"x": "workout_strain", "y": "recovery", "lag_days": "1", "range": "all"}},
        {"path": "/api/v1/workouts", "query": {"sport": sport, "min_strain": "5"}},
        {"path": "/api/v1/sleep"},
        {"path": "/api/v1/status"},
        {"path": "/api/v1/profile"},
        {"path": "/api/v1/series", "query": {"metric": "steps"}},
        {"path": "/api/v1/series", "query": {"metric": "hrv", "from": "2025-02-10", "to": "2025-02-01"}},
    ]);
    let report = validate(&base, &token, requests).await;
    assert!(report["openapi"].as_str().unwrap().starts_with("3."));
    let results = report["results"].as_array().unwrap();
    for r in results {
        assert_eq!(
            r["errors"],
            json!([]),
            "{} {}: {}",
            r["path"],
            r["query"],
            r["body"]
        );
    }
    let ok: Vec<&Value> = results.iter().filter(|r| r["status"] == 200).collect();
    assert_eq!(ok.len(), 10, "{results:#?}");
    // Every documented endpoint was called and answered.
    let documented: Vec<&str> = report["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .filter(|p| *p != "/api/v1/openapi.json")
        .collect();
    for path in &documented {
        assert!(ok.iter().any(|r| r["path"] == *path), "{path} untested");
    }
    // Bad input: 400 with a message naming the problem.
    assert_eq!(results[10]["status"], 400);
    assert!(results[10]["body"]["message"]
        .as_str()
        .unwrap()
        .contains("metric"));
    assert_eq!(results[11]["status"], 400);
    // The answers are the history's: status counts equal what WHOOP holds.
    let status = &results[8]["body"];
    let count = |collection: &str| dump[collection].as_array().unwrap().len() as u64;
    let total = |key: &str| {
        ["scored", "pending", "unscorable"]
            .iter()
            .map(|s| status[key][s].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(total("cycles"), count("cycle"));
    assert_eq!(total("workouts"), count("workout"));
    assert_eq!(results[9]["body"]["user_id"], dump["profile"]["user_id"]);

    // Revoking the token locks the API at once for a new server.
    server.kill().await.unwrap();
    assert!(cli
        .run(&["api-token", "revoke"], MINUTE)
        .await
        .status
        .success());
    let refused = cli.run(&["serve-api", "--port", "0"], MINUTE).await;
    assert!(!refused.status.success());
    sim.stop().await;
}
