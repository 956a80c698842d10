//! Parsing WHOOP's JSON as it really arrives: every optional field present and absent, v1
//! remnants, unknown fields, and broken records in the middle of a page.

use whoop::{
    BodyMeasurement, Collection, Cycle, Page, Profile, Recovery, ScoreState, Sleep, Workout,
    ZoneDurations,
};

const FULL_CYCLE: &str = r#"{
  "id": 93845, "user_id": 10129, "created_at": "2022-04-24T11:25:44.774Z",
  "updated_at": "2022-04-24T14:25:44.774Z", "start": "2022-04-24T02:25:44.774Z",
  "end": "2022-04-24T10:25:44.774Z", "timezone_offset": "-05:00", "score_state": "SCORED",
  "score": {"strain": 5.2951527, "kilojoule": 8288.297, "average_heart_rate": 68, "max_heart_rate": 141},
  "step_count": 8123, "brand_new_field": {"x": 1}
}"#;

#[test]
fn cycle_with_every_field_and_unknown_ones() {
    let c: Cycle = serde_json::from_str(FULL_CYCLE).unwrap();
    assert_eq!(c.id, 93845);
    assert_eq!(c.score_state, ScoreState::Scored);
    let score = c.score.unwrap();
    assert_eq!(score.max_heart_rate, 141);
    assert!((score.strain - 5.2951527).abs() < 1e-9);
    assert_eq!(
        c.end.map(|e| e.to_rfc3339()),
        Some("2022-04-24T10:25:44.774+00:00".into())
    );
}

#[test]
fn current_cycle_has_no_end_and_no_score() {
    let json = r#"{"id": 1, "user_id": 2, "created_at": "2024-01-01T00:00:00.000Z",
      "updated_at": "2024-01-01T00:00:00.000Z", "start": "2024-01-01T00:00:00.000Z",
      "timezone_offset": "Z", "score_state": "PENDING_SCORE"}"#;
    let c: Cycle = serde_json::from_str(json).unwrap();
    assert!(c.end.is_none());
    assert!(c.score.is_none());
    // end: null is the same as absent.
    let with_null = json.replace("\"score_state\"", "\"end\": null, \"score_state\"");
    let c2: Cycle = serde_json::from_str(&with_null).unwrap();
    assert_eq!(c, c2);
}

#[test]
fn timestamps_without_a_zone_are_utc() {
    let json = FULL_CYCLE.replace("2022-04-24T02:25:44.774Z", "2022-04-24T02:25:44.774");
    let c: Cycle = serde_json::from_str(&json).unwrap();
    assert_eq!(c.start.to_rfc3339(), "2022-04-24T02:25:44.774+00:00");
    let offset = FULL_CYCLE.replace("2022-04-24T02:25:44.774Z", "2022-04-23T21:25:44.774-05:00");
    let c: Cycle = serde_json::from_str(&offset).unwrap();
    assert_eq!(c.start.to_rfc3339(), "2022-04-24T02:25:44.774+00:00");
}

#[test]
fn sleep_with_full_score_and_without_optional_percentages() {
    let full = r#"{
      "id": "ecfc6a15-4661-442f-a9a4-f160dd7afae8", "cycle_id": 93845, "v1_id": 93845,
      "user_id": 10129, "created_at": "2022-04-24T11:25:44.774Z", "updated_at": "2022-04-24T14:25:44.774Z",
      "start": "2022-04-24T02:25:44.774Z", "end": "2022-04-24T10:25:44.774Z", "timezone_offset": "-05:00",
      "nap": false, "score_state": "SCORED",
      "score": {
        "stage_summary": {"total_in_bed_time_milli": 30272735, "total_awake_time_milli": 1403507,
          "total_no_data_time_milli": 0, "total_light_sleep_time_milli": 14905851,
          "total_slow_wave_sleep_time_milli": 6630370, "total_rem_sleep_time_milli": 5879573,
          "sleep_cycle_count": 3, "disturbance_count": 12},
        "sleep_needed": {"baseline_milli": 27395716, "need_from_sleep_debt_milli": 352230,
          "need_from_recent_strain_milli": 208595, "need_from_recent_nap_milli": -12312},
        "respiratory_rate": 16.11328125, "sleep_performance_percentage": 98,
        "sleep_consistency_percentage": 90, "sleep_efficiency_percentage": 91.69533848
      }
    }"#;
    let s: Sleep = serde_json::from_str(full).unwrap();
    assert_eq!(s.v1_id, Some(93845));
    let score = s.score.as_ref().unwrap();
    assert_eq!(score.sleep_performance_percentage, Some(98.0));
    assert_eq!(
        score.stage_summary.total_sleep_milli(),
        14905851 + 6630370 + 5879573
    );
    assert_eq!(
        score.sleep_needed.total_milli(),
        27395716 + 352230 + 208595 - 12312
    );

    // A new user's sleep: no performance or consistency yet, no v1_id, no respiratory rate.
    let mut v: serde_json::Value = serde_json::from_str(full).unwrap();
    v.as_object_mut().unwrap().remove("v1_id");
    let score = v["score"].as_object_mut().unwrap();
    for f in [
        "respiratory_rate",
        "sleep_performance_percentage",
        "sleep_consistency_percentage",
        "sleep_efficiency_percentage",
    ] {
        score.remove(f);
    }
    let s: Sleep = serde_json::from_value(v).unwrap();
    assert_eq!(s.v1_id, None);
    let score = s.score.unwrap();
    assert_eq!(score.sleep_performance_percentage, None);
    assert_eq!(score.respiratory_rate, None);
}

#[test]
fn recovery_scored_pending_and_unscorable() {
    let scored = r#"{"cycle_id": 93845, "sleep_id": "123e4567-e89b-12d3-a456-426614174000",
      "user_id": 10129, "created_at": "2022-04-24T11:25:44.774Z", "updated_at": "2022-04-24T14:25:44.774Z",
      "score_state": "SCORED", "score": {"user_calibrating": false, "recovery_score": 44,
      "resting_heart_rate": 64, "hrv_rmssd_milli": 31.813562, "spo2_percentage": 95.6875,
      "skin_temp_celsius": 33.7}}"#;
    let r: Recovery = serde_json::from_str(scored).unwrap();
    let score = r.score.unwrap();
    assert_eq!(score.recovery_score, 44.0);
    assert_eq!(score.spo2_percentage, Some(95.6875));

    // A WHOOP 3.0 strap: no SpO2 or skin temperature.
    let older = scored.replace(
        ", \"spo2_percentage\": 95.6875,\n      \"skin_temp_celsius\": 33.7",
        "",
    );
    let r: Recovery = serde_json::from_str(&older).unwrap();
    assert_eq!(r.score.unwrap().skin_temp_celsius, None);

    for state in ["PENDING_SCORE", "UNSCORABLE"] {
        let json = format!(
            r#"{{"cycle_id": 1, "sleep_id": "s", "user_id": 2, "created_at": "2024-01-01T00:00:00.000Z",
            "updated_at": "2024-01-01T00:00:00.000Z", "score_state": "{state}"}}"#
        );
        let r: Recovery = serde_json::from_str(&json).unwrap();
        assert!(r.score.is_none());
        assert_eq!(r.score_state.as_str(), state);
    }
}

const WORKOUT: &str = r#"{
  "id": "ecfc6a15-4661-442f-a9a4-f160dd7afae8", "v1_id": 1043, "user_id": 9012,
  "created_at": "2022-04-24T11:25:44.774Z", "updated_at": "2022-04-24T14:25:44.774Z",
  "start": "2022-04-24T02:25:44.774Z", "end": "2022-04-24T10:25:44.774Z",
  "timezone_offset": "-05:00", "sport_name": "running", "sport_id": 1, "score_state": "SCORED",
  "score": {"strain": 8.2463, "average_heart_rate": 123, "max_heart_rate": 146,
    "kilojoule": 1569.34033203125, "percent_recorded": 100, "distance_meter": 1772.77035916,
    "altitude_gain_meter": 46.64384460449, "altitude_change_meter": -0.781372010707855,
    "zone_durations": {"zone_zero_milli": 300000, "zone_one_milli": 600000,
      "zone_two_milli": 900000, "zone_three_milli": 900000, "zone_four_milli": 600000,
      "zone_five_milli": 300000}}
}"#;

#[test]
fn workout_v2_and_v1_zone_names() {
    let w: Workout = serde_json::from_str(WORKOUT).unwrap();
    assert_eq!(w.sport_id, Some(1));
    let score = w.score.unwrap();
    assert_eq!(score.zone_durations.zone_two_milli, 900000);
    assert_eq!(score.distance_meter, Some(1772.77035916));

    // v1 spelling of the zone object, with some zones missing, no v1 ids, no distance.
    let v1ish = WORKOUT
        .replace("\"zone_durations\"", "\"zone_duration\"")
        .replace("\"zone_zero_milli\": 300000, ", "")
        .replace("\"v1_id\": 1043, ", "")
        .replace("\"sport_id\": 1, ", "")
        .replace("\"distance_meter\": 1772.77035916,", "");
    let w: Workout = serde_json::from_str(&v1ish).unwrap();
    assert_eq!(w.v1_id, None);
    assert_eq!(w.sport_id, None);
    let score = w.score.unwrap();
    assert_eq!(score.zone_durations.zone_zero_milli, 0);
    assert_eq!(score.zone_durations.zone_five_milli, 300000);
    assert_eq!(score.distance_meter, None);
}

#[test]
fn next_token_absent_null_and_empty_all_mean_done() {
    for tail in ["", r#", "next_token": null"#, r#", "next_token": """#] {
        let body = format!(r#"{{"records": []{tail}}}"#);
        let page = Page::<Cycle>::parse(body.as_bytes()).unwrap();
        assert_eq!(page.next_token, None, "tail {tail:?}");
    }
    let page = Page::<Cycle>::parse(br#"{"records": [], "next_token": "MTIzOjEyMzEyMw"}"#).unwrap();
    assert_eq!(page.next_token.as_deref(), Some("MTIzOjEyMzEyMw"));
    // No records field at all is an empty page, not an error.
    let page = Page::<Cycle>::parse(br#"{}"#).unwrap();
    assert!(page.records.is_empty());
}

#[test]
fn a_broken_record_mid_page_is_reported_with_its_id_and_the_rest_survive() {
    let good = |id: i64| FULL_CYCLE.replace("93845", &id.to_string());
    let missing_updated_at = good(2).replace("\"updated_at\": \"2022-04-24T14:25:44.774Z\",", "");
    let bad_state = good(3).replace("\"SCORED\"", "\"SOMETHING_NEW\"");
    let bad_time = good(4).replace("2022-04-24T02:25:44.774Z", "yesterday");
    let body = format!(
        r#"{{"records": [{}, {}, {}, {}, {}, 17], "next_token": "abc"}}"#,
        good(1),
        missing_updated_at,
        bad_state,
        bad_time,
        good(5)
    );
    let page = Page::<Cycle>::parse(body.as_bytes()).unwrap();
    let ids: Vec<i64> = page.records.iter().map(|r| r.record.id).collect();
    assert_eq!(ids, vec![1, 5]);
    let skipped: Vec<Option<String>> = page.skipped.iter().map(|s| s.id.clone()).collect();
    assert_eq!(
        skipped,
        vec![Some("2".into()), Some("3".into()), Some("4".into()), None]
    );
    assert!(page
        .skipped
        .iter()
        .all(|s| s.collection == Collection::Cycle));
    assert!(page.skipped[0].reason.contains("updated_at"));
    assert_eq!(page.next_token.as_deref(), Some("abc"));
    // The raw JSON kept for each good record is what WHOOP sent, unknown fields included.
    assert_eq!(page.records[0].raw["step_count"], 8123);
}

#[test]
fn a_recovery_that_cannot_be_parsed_is_named_by_its_cycle_id() {
    let body = br#"{"records": [{"cycle_id": 77, "sleep_id": "s", "score_state": "SCORED"}]}"#;
    let page = Page::<Recovery>::parse(body).unwrap();
    assert_eq!(page.skipped[0].id.as_deref(), Some("77"));
}

#[test]
fn a_body_that_is_not_json_is_an_error() {
    assert!(Page::<Sleep>::parse(br#"{"records": [{"id": "#).is_err());
}

#[test]
fn records_serialise_back_with_whoops_field_names() {
    let w: Workout =
        serde_json::from_str(&WORKOUT.replace("zone_durations", "zone_duration")).unwrap();
    let out = serde_json::to_value(&w).unwrap();
    assert!(out["score"].get("zone_durations").is_some());
    assert_eq!(out["start"], "2022-04-24T02:25:44.774Z");
    let c: Cycle = serde_json::from_str(FULL_CYCLE).unwrap();
    let back = serde_json::to_value(&c).unwrap();
    assert_eq!(back["score_state"], "SCORED");
    assert_eq!(back["end"], "2022-04-24T10:25:44.774Z");
}

/// WHOOP sends `null` for fields its spec calls required (whoop-api.md §2.3): each must read as
/// if it were absent, not sink the record.
#[test]
fn null_where_a_default_is_expected_reads_as_absent() {
    let workout = WORKOUT
        .replace("\"sport_name\": \"running\"", "\"sport_name\": null")
        .replace("\"v1_id\": 1043", "\"v1_id\": null")
        .replace("\"sport_id\": 1", "\"sport_id\": null")
        .replace("\"percent_recorded\": 100", "\"percent_recorded\": null")
        .replace(
            "\"distance_meter\": 1772.77035916",
            "\"distance_meter\": null",
        );
    let zones_null = workout.replace(
        &workout[workout.find("\"zone_durations\"").unwrap()..workout.rfind('}').unwrap()],
        "\"zone_durations\": null}",
    );
    for json in [&workout, &zones_null] {
        let w: Workout = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(w.sport_name, "");
        assert_eq!(w.v1_id, None);
        assert_eq!(w.sport_id, None);
        let score = w.score.unwrap();
        assert_eq!(score.percent_recorded, 0.0);
        assert_eq!(score.distance_meter, None);
    }
    let w: Workout = serde_json::from_str(&zones_null).unwrap();
    assert_eq!(w.score.unwrap().zone_durations, ZoneDurations::default());
    let one_zone_null = WORKOUT.replace("\"zone_zero_milli\": 300000", "\"zone_zero_milli\": null");
    let w: Workout = serde_json::from_str(&one_zone_null).unwrap();
    assert_eq!(w.score.unwrap().zone_durations.zone_zero_milli, 0);

    let sleep: Sleep = serde_json::from_str(
        r#"{"id": "s1", "cycle_id": 1, "v1_id": null, "user_id": 2,
        "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z",
        "start": "2024-01-01T00:00:00.000Z", "end": "2024-01-01T08:00:00.000Z",
        "timezone_offset": "+05:30", "nap": null, "score_state": "PENDING_SCORE", "score": null}"#,
    )
    .unwrap();
    assert!(!sleep.nap);
    assert!(sleep.score.is_none());

    let recovery: Recovery = serde_json::from_str(
        r#"{"cycle_id": 1, "sleep_id": "s1", "user_id": 2,
        "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z",
        "score_state": "SCORED", "score": {"user_calibrating": null, "recovery_score": 50.0,
        "resting_heart_rate": 55.0, "hrv_rmssd_milli": 60.0, "spo2_percentage": null,
        "skin_temp_celsius": null}}"#,
    )
    .unwrap();
    let score = recovery.score.unwrap();
    assert!(!score.user_calibrating);
    assert_eq!(score.spo2_percentage, None);

    let profile: Profile = serde_json::from_str(
        r#"{"user_id": 7, "email": null, "first_name": "Ana", "last_name": null}"#,
    )
    .unwrap();
    assert_eq!(
        (profile.email.as_str(), profile.last_name.as_str()),
        ("", "")
    );
    let body: BodyMeasurement = serde_json::from_str(
        r#"{"height_meter": 1.7, "weight_kilogram": null, "max_heart_rate": null}"#,
    )
    .unwrap();
    assert_eq!((body.weight_kilogram, body.max_heart_rate), (0.0, 0));

    // A page of such records loses none of them.
    let page =
        Page::<Workout>::parse(format!(r#"{{"records": [{zones_null}]}}"#).as_bytes()).unwrap();
    assert!(page.skipped.is_empty(), "{:?}", page.skipped);
    assert_eq!(page.records.len(), 1);
}

#[test]
fn sport_names_normalise_to_one_spelling() {
    use whoop::types::normalize_sport_name;
    for name in [
        "Functional Fitness",
        "functional_fitness",
        "FUNCTIONAL-FITNESS",
        " functional  fitness ",
    ] {
        assert_eq!(normalize_sport_name(name), "functional_fitness", "{name:?}");
    }
    assert_eq!(normalize_sport_name("running"), "running");
    assert_eq!(normalize_sport_name(""), "");
}
