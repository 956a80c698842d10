//! The foundation end to end, with real processes over real HTTP: `whoop-sim` with 400 days of
//! history, `vitaltrends connect` through the loopback OAuth flow, `vitaltrends sync`, and then
//! the local store must hold exactly what WHOOP (the simulator) holds, fetched with no more
//! requests than the pages the data needs.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{Cli, SimProcess};
use serde_json::Value;

const MINUTE: Duration = Duration::from_secs(60);

fn key_of(collection: &str, record: &Value) -> String {
    let field = if collection == "recovery" {
        "cycle_id"
    } else {
        "id"
    };
    match &record[field] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn by_key(collection: &str, records: &Value) -> BTreeMap<String, Value> {
    records
        .as_array()
        .unwrap_or_else(|| panic!("{collection} is not an array"))
        .iter()
        .map(|r| (key_of(collection, r), r.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_import_400_days_matches_the_simulator() {
    let sim = SimProcess::start(&["--days", "400", "--seed", "7", "--auto-approve"]).await;
    let cli = Cli::new(&sim);

    let connected = cli.connect().await;
    assert!(
        connected.status.success(),
        "connect failed: {}\n{}",
        connected.stdout,
        connected.stderr
    );
    assert!(
        connected.stdout.contains("Connected as"),
        "{}",
        connected.stdout
    );

    sim.post_json("/_sim/reset-stats", serde_json::json!({}))
        .await;
    let synced = cli.run(&["sync"], 5 * MINUTE).await;
    assert!(synced.status.success(), "sync failed: {}", synced.stderr);
    assert!(
        synced.stdout.contains("Import finished"),
        "{}",
        synced.stdout
    );
    assert!(
        synced
            .stdout
            .contains("notification: WHOOP import finished"),
        "{}",
        synced.stdout
    );

    // Not on a terminal, progress is one line per phase, not one per page.
    let progress: Vec<&str> = synced
        .stdout
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(
        progress.len() == 2
            && progress[0].starts_with("progress: last 6 months")
            && progress[1].starts_with("progress: history"),
        "{}",
        synced.stdout
    );

    // Every record WHOOP has is stored, with the same ids, updated_at, score state and scores:
    // the JSON export must equal the simulator's dump record for record.
    let export_path = cli.data_dir.path().join("export.json");
    let exported = cli
        .run(
            &[
                "export",
                "--format",
                "json",
                "--out",
                export_path.to_str().unwrap(),
            ],
            MINUTE,
        )
        .await;
    assert!(
        exported.status.success(),
        "export failed: {}",
        exported.stderr
    );
    let export: Value = serde_json::from_slice(&std::fs::read(&export_path).unwrap()).unwrap();
    let dump = sim.get_json("/_sim/dump").await;
    let stats = sim.get_json("/_sim/stats").await;

    for collection in ["cycle", "sleep", "recovery", "workout"] {
        let want = by_key(collection, &dump[collection]);
        let got = by_key(collection, &export[collection]);
        assert!(
            !want.is_empty(),
            "the simulator has no {collection} records"
        );
        let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
        assert!(missing.is_empty(), "{collection}: missing {missing:?}");
        assert!(extra.is_empty(), "{collection}: unexpected {extra:?}");
        for (key, record) in &want {
            let stored = &got[key];
            for field in ["updated_at", "score_state", "score"] {
                assert_eq!(
                    stored.get(field),
                    record.get(field),
                    "{collection} {key}: {field} differs"
                );
            }
            assert_eq!(stored, record, "{collection} {key} differs");
        }

        // Exactly the pages the records fill: each collection is one chain of full pages, newest
        // first, and only its last page is partial.
        let records = want.len() as u64;
        let bound = records.div_ceil(25).max(1);
        let used = stats["requests"][format!("{collection}.collection")]
            .as_u64()
            .unwrap_or(0);
        assert_eq!(
            used, bound,
            "{collection}: {used} requests for {records} records"
        );
        assert!(used > 0, "{collection}: the import made no requests at all");
    }
    assert_eq!(export["profile"], dump["profile"]);
    assert_eq!(export["body_measurement"], dump["body_measurement"]);

    // The typed columns the dashboard reads hold the same numbers as WHOOP's JSON.
    let csv_dir = cli.data_dir.path().join("csv");
    let csv = cli
        .run(
            &[
                "export",
                "--format",
                "csv",
                "--out",
                csv_dir.to_str().unwrap(),
            ],
            MINUTE,
        )
        .await;
    assert!(csv.status.success(), "csv export failed: {}", csv.stderr);
    let text = std::fs::read_to_string(csv_dir.join("recovery.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let recoveries = by_key("recovery", &dump["recovery"]);
    let mut checked = 0;
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let record = &recoveries[fields[column("cycle_id")]];
        assert_eq!(fields[column("score_state")], record["score_state"]);
        if let Some(score) = record["score"]["recovery_score"].as_f64() {
            let stored: f64 = fields[column("recovery_score")].parse().unwrap();
            assert!(
                (stored - score).abs() < 1e-9,
                "cycle {}",
                fields[column("cycle_id")]
            );
            let hrv: f64 = fields[column("hrv_rmssd_milli")].parse().unwrap();
            assert!((hrv - record["score"]["hrv_rmssd_milli"].as_f64().unwrap()).abs() < 1e-9);
            checked += 1;
        } else {
            assert_eq!(
                fields[column("recovery_score")],
                "",
                "an unscored recovery has no score"
            );
        }
    }
    assert!(checked > 300, "only {checked} scored recoveries compared");

    // Status reports the connection and what is stored.
    let status = cli.run(&["status", "--json"], MINUTE).await;
    assert!(status.status.success(), "status failed: {}", status.stderr);
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["state"], "connected");
    assert_eq!(status["import_complete"], true);
    for collection in ["cycle", "sleep", "recovery", "workout"] {
        assert_eq!(
            status["counts"][collection].as_u64().unwrap() as usize,
            dump[collection].as_array().unwrap().len()
        );
    }
    assert_eq!(status["last_sync"]["kind"], "import");
    assert!(status["last_successful_sync_at"].is_string());
    assert!(status["newest_record"].is_string());

    // A second sync is a catch-up: it fetches only the last week (one page per collection).
    sim.post_json("/_sim/reset-stats", serde_json::json!({}))
        .await;
    let again = cli.run(&["sync"], MINUTE).await;
    assert!(
        again.status.success(),
        "second sync failed: {}",
        again.stderr
    );
    let stats = sim.get_json("/_sim/stats").await;
    let cycle_requests = stats["requests"]["cycle.collection"].as_u64().unwrap_or(0);
    assert!(
        (1..=2).contains(&cycle_requests),
        "incremental sync read {cycle_requests} cycle pages"
    );

    // Tokens never reach the database file.
    let db = std::fs::read(cli.data_dir.path().join("vitaltrends.db")).unwrap();
    let secrets: Value = serde_json::from_slice(
        &std::fs::read(cli.data_dir.path().join("insecure-secrets.json")).unwrap(),
    )
    .unwrap();
    let tokens: Value = serde_json::from_str(secrets["whoop-tokens"].as_str().unwrap()).unwrap();
    for token in [&tokens["access_token"], &tokens["refresh_token"]] {
        let token = token.as_str().unwrap();
        assert!(token.len() >= 16);
        assert!(
            !db.windows(token.len()).any(|w| w == token.as_bytes()),
            "a token is in the database file"
        );
    }

    // Disconnect revokes at WHOOP and keeps the history.
    let disconnected = cli.run(&["disconnect"], MINUTE).await;
    assert!(
        disconnected.status.success(),
        "disconnect: {}",
        disconnected.stderr
    );
    let stats = sim.get_json("/_sim/stats").await;
    assert_eq!(stats["requests"]["revoke"], 1);
    let status = cli.run(&["status", "--json"], MINUTE).await;
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["state"], "disconnected");
    assert_eq!(
        status["counts"]["cycle"].as_u64().unwrap() as usize,
        dump["cycle"].as_array().unwrap().len()
    );
    let refused = cli.run(&["sync"], MINUTE).await;
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("not_connected"),
        "{}",
        refused.stderr
    );

    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_consent_and_revoked_access_are_plain_errors() {
    // Without auto-approve, the consent page is shown; a Deny lands back at the CLI as a denial.
    let sim = SimProcess::start(&["--days", "30", "--seed", "3"]).await;
    let cli = Cli::new(&sim);
    let mut child = cli
        .command()
        .args(["connect", "--no-browser"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("an authorization URL");
        if line.starts_with("http") {
            break line;
        }
    };
    // A forged callback with the wrong state is refused and does not end the wait.
    let redirect_uri = reqwest::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let forged = reqwest::get(format!("{redirect_uri}?code=stolen&state=not-the-state"))
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);

    let consent = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(consent.contains("Deny"), "the consent page offers Deny");
    // Submit the consent form's Deny button the way a browser would.
    let form_action = consent
        .split("action=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("consent form action");
    let mut fields: Vec<(String, String)> = consent
        .split("<input")
        .skip(1)
        .filter(|input| input.contains("type=\"hidden\""))
        .filter_map(|input| {
            let name = input.split("name=\"").nth(1)?.split('"').next()?;
            let value = input.split("value=\"").nth(1)?.split('"').next()?;
            Some((name.to_string(), html_unescape(value)))
        })
        .collect();
    let deny = consent
        .split("<button")
        .skip(1)
        .find(|b| b.contains("Deny"))
        .expect("a Deny button");
    if let (Some(name), Some(value)) = (
        deny.split("name=\"")
            .nth(1)
            .and_then(|s| s.split('"').next()),
        deny.split("value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next()),
    ) {
        fields.push((name.to_string(), value.to_string()));
    }
    let action = reqwest::Url::parse(&url)
        .unwrap()
        .join(&html_unescape(form_action))
        .unwrap();
    let browser = reqwest::Client::new();
    let denied_page = browser.post(action).form(&fields).send().await.unwrap();
    assert!(
        denied_page.status().is_success(),
        "{}",
        denied_page.status()
    );
    let output = tokio::time::timeout(MINUTE, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("authorization_denied"), "{stderr}");

    // Connected, then access revoked at WHOOP: sync says reconnection is needed, and stays so.
    let sim = SimProcess::start(&["--days", "30", "--seed", "3", "--auto-approve"]).await;
    let cli = Cli::new(&sim);
    assert!(cli.connect().await.status.success());
    sim.post_json("/_sim/revoke", serde_json::json!({})).await;
    let synced = cli.run(&["sync"], MINUTE).await;
    assert!(!synced.status.success());
    assert!(
        synced.stderr.contains("reconnect_needed"),
        "{}",
        synced.stderr
    );
    sim.post_json("/_sim/reset-stats", serde_json::json!({}))
        .await;
    let status = cli.run(&["status", "--json"], MINUTE).await;
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["state"], "reconnect_needed");
    let again = cli.run(&["sync"], MINUTE).await;
    assert!(again.stderr.contains("reconnect_needed"));
    let stats = sim.get_json("/_sim/stats").await;
    let data_calls: u64 = stats["requests"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "auth" && k.as_str() != "token")
        .map(|(_, v)| v.as_u64().unwrap_or(0))
        .sum();
    assert_eq!(data_calls, 0, "no WHOOP calls once reconnection is needed");
}

fn html_unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}
