//! The JSON shapes a client must survive, switched through `/_sim/shapes` and the binary's
//! flags: each is off by default, does what it says over HTTP, and the dump shows the same.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn shapes_are_off_by_default_and_switch_over_http() {
    bounded(async {
        let sim = sim(small(12)).await;
        let tokens = login(&sim).await;
        let plain = get_json(&sim, &tokens.access, "/v2/activity/sleep?limit=25").await;
        assert!(plain["records"][0].get("v1_id").is_none());
        let off = control(&sim, "shapes", json!({})).await;
        assert_eq!(
            off,
            json!({"null_fields": false, "empty_last_token": false, "offset_timestamps": false,
                   "mixed_sport_casing": false, "no_body_measurement": false,
                   "paging_token_max_age_secs": null})
        );

        let on = control(
            &sim,
            "shapes",
            json!({"null_fields": true, "empty_last_token": true, "offset_timestamps": true,
                   "mixed_sport_casing": true, "no_body_measurement": true}),
        )
        .await;
        assert_eq!(on["null_fields"], true);
        // null instead of absent, "" on the last page, both offsets, both spellings.
        let sleeps = get_json(&sim, &tokens.access, "/v2/activity/sleep?limit=25").await;
        assert_eq!(sleeps["next_token"], "");
        let records = sleeps["records"].as_array().expect("records");
        assert!(records.iter().all(|s| s["v1_id"].is_null()));
        assert!(records.iter().any(|s| s["nap"].is_null()));
        let starts: Vec<&str> = records.iter().filter_map(|s| s["start"].as_str()).collect();
        assert!(starts.iter().any(|s| s.ends_with("+05:30")));
        assert!(starts.iter().any(|s| s.ends_with('Z')));
        let workouts = get_json(&sim, &tokens.access, "/v2/activity/workout?limit=25").await;
        let names: Vec<&str> = workouts["records"]
            .as_array()
            .expect("records")
            .iter()
            .filter_map(|w| w["sport_name"].as_str())
            .collect();
        // Title Case ("Functional Fitness") beside WHOOP's usual snake_case.
        assert!(
            names.iter().any(|n| n.starts_with(char::is_uppercase)),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n.starts_with(char::is_lowercase)),
            "{names:?}"
        );
        // A record looks the same by id, in a page and in the dump.
        let first = &records[0];
        let by_id = get_json(
            &sim,
            &tokens.access,
            &format!("/v2/activity/sleep/{}", first["id"].as_str().expect("id")),
        )
        .await;
        assert_eq!(&by_id, first);
        let dump = dump(&sim).await;
        let in_dump: Vec<&Value> = dump["sleep"]
            .as_array()
            .expect("sleeps")
            .iter()
            .filter(|s| s["id"] == first["id"])
            .collect();
        assert_eq!(in_dump, vec![first]);
        // No body measurement: 404, and null in the dump.
        let (status, _) = get(&sim, &tokens.access, "/v2/user/measurement/body").await;
        assert_eq!(status, 404);
        assert!(dump["body_measurement"].is_null());
        assert!(get_json(&sim, &tokens.access, "/v2/user/profile/basic").await["email"].is_null());

        // Unknown switches are refused rather than ignored.
        let resp = http()
            .post(format!("{}/_sim/shapes", sim.base_url))
            .json(&json!({"nulls": true}))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 400);
    })
    .await;
}

#[tokio::test]
async fn paging_tokens_expire_all_at_once_or_by_age() {
    bounded(async {
        let sim = sim(small(90)).await;
        let tokens = login(&sim).await;
        let query = "/v2/cycle?limit=5&start=2000-01-01T00:00:00.000Z";
        let first = get_json(&sim, &tokens.access, query).await;
        let token = first["next_token"]
            .as_str()
            .expect("more pages")
            .to_string();
        let next = format!("{query}&nextToken={token}");
        assert_eq!(get(&sim, &tokens.access, &next).await.0, 200);

        // Every token handed out so far dies; new ones work.
        control(&sim, "expire-paging-tokens", json!({})).await;
        let (status, body) = get(&sim, &tokens.access, &next).await;
        assert_eq!(status, 400, "{body}");
        let fresh = get_json(&sim, &tokens.access, query).await;
        let fresh_token = fresh["next_token"]
            .as_str()
            .expect("more pages")
            .to_string();
        let fresh_next = format!("{query}&nextToken={fresh_token}");
        assert_eq!(get(&sim, &tokens.access, &fresh_next).await.0, 200);

        // By age, in simulated time.
        control(&sim, "shapes", json!({"paging_token_max_age_secs": 3600})).await;
        assert_eq!(get(&sim, &tokens.access, &fresh_next).await.0, 200);
        control(&sim, "advance", json!({"hours": 2})).await;
        assert_eq!(get(&sim, &tokens.access, &fresh_next).await.0, 400);
        control(&sim, "shapes", json!({"paging_token_max_age_secs": null})).await;
        assert_eq!(get(&sim, &tokens.access, &fresh_next).await.0, 200);
    })
    .await;
}

#[test]
fn help_documents_every_shape_flag() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_whoop-sim"))
        .arg("--help")
        .output()
        .expect("whoop-sim --help runs");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--null-fields",
        "--empty-last-token",
        "--offset-timestamps",
        "--mixed-sport-casing",
        "--no-body-measurement",
        "--paging-token-max-age-secs",
        "/_sim/shapes",
        "/_sim/expire-paging-tokens",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
}
