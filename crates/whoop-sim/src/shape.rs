//! The shapes of WHOOP's JSON that a client must survive, switchable one by one (flags and
//! `POST /_sim/shapes`, all off by default): `null` where a field is usually left out (and for
//! fields clients tend to default: `nap`, `user_calibrating`, `sport_name`, `percent_recorded`,
//! `zone_durations`, profile and body fields), `"next_token": ""` on the last page, timestamps
//! with a `+05:30` offset beside `Z` ones, one sport spelled two ways, no body measurement
//! (404), and paging tokens that expire.
//!
//! Records are reshaped as JSON after serialising, so the stored model stays WHOOP's canonical
//! form. Which records get which shape depends only on the record's id, so a record looks the
//! same in every page, by-id answer and `/_sim/dump`, and a client that stores what it was served
//! can be compared with the dump as before.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which shapes are switched on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shapes {
    /// Optional fields that would be left out are sent as `null`; so are `nap` and
    /// `user_calibrating` when false, and on some records `sport_name`, `percent_recorded`,
    /// `zone_durations`, the profile's `email` and the body's `max_heart_rate`.
    pub null_fields: bool,
    /// The last page says `"next_token": ""` instead of leaving it out or `null`.
    pub empty_last_token: bool,
    /// About half the records write their times with a `+05:30` offset instead of `Z`.
    pub offset_timestamps: bool,
    /// About half the workouts spell their sport "Functional Fitness" instead of
    /// `functional_fitness`.
    pub mixed_sport_casing: bool,
    /// `GET /v2/user/measurement/body` answers 404, as for a person who never entered it.
    pub no_body_measurement: bool,
    /// A `nextToken` older than this (in simulated time) is refused with 400.
    pub paging_token_max_age_secs: Option<u64>,
}

/// The shapes plus what expiring every outstanding paging token needs.
#[derive(Debug, Default)]
pub struct ShapeState {
    pub shapes: Shapes,
    /// Paging tokens carry the generation they were issued in; older ones are expired.
    pub paging_generation: u64,
}

impl ShapeState {
    pub fn new(shapes: Shapes) -> ShapeState {
        ShapeState {
            shapes,
            paging_generation: 0,
        }
    }

    /// Whether a paging token issued at `issued_ms` in `generation` is no longer accepted.
    pub fn token_expired(&self, issued_ms: i64, generation: u64, now_ms: i64) -> bool {
        if generation < self.paging_generation {
            return true;
        }
        self.shapes
            .paging_token_max_age_secs
            .is_some_and(|max| now_ms.saturating_sub(issued_ms) > (max as i64).saturating_mul(1000))
    }
}

/// What a JSON value is, for the fields it may reshape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cycle,
    Sleep,
    Recovery,
    Workout,
    Profile,
    Body,
}

impl Kind {
    pub fn of_collection(collection: &str) -> Option<Kind> {
        match collection {
            "cycle" => Some(Kind::Cycle),
            "sleep" => Some(Kind::Sleep),
            "recovery" => Some(Kind::Recovery),
            "workout" => Some(Kind::Workout),
            _ => None,
        }
    }
}

/// The offset the `offset_timestamps` shape writes times in.
const INDIA: i32 = 5 * 3600 + 30 * 60;

impl Shapes {
    pub fn reshapes_records(&self) -> bool {
        self.null_fields || self.offset_timestamps || self.mixed_sport_casing
    }

    /// Serialises `record` and applies the switched-on shapes.
    pub fn to_json<T: Serialize>(&self, kind: Kind, record: &T) -> Value {
        let mut value = serde_json::to_value(record).unwrap_or(Value::Null);
        self.apply(kind, &mut value);
        value
    }

    pub fn apply(&self, kind: Kind, value: &mut Value) {
        let Value::Object(map) = value else { return };
        let pick = choice_of(kind, map);
        if self.mixed_sport_casing && kind == Kind::Workout && pick & 0b10 != 0 {
            if let Some(Value::String(name)) = map.get_mut("sport_name") {
                *name = title_case(name);
            }
        }
        if self.offset_timestamps && pick & 0b1 != 0 {
            for field in ["created_at", "updated_at", "start", "end"] {
                if let Some(Value::String(text)) = map.get_mut(field) {
                    if let Some(shifted) = with_offset(text) {
                        *text = shifted;
                    }
                }
            }
        }
        if self.null_fields {
            nulls(kind, map, pick);
        }
    }
}

fn nulls(kind: Kind, map: &mut Map<String, Value>, pick: u64) {
    let absent_as_null = |map: &mut Map<String, Value>, fields: &[&str]| {
        for field in fields {
            map.entry(field.to_string()).or_insert(Value::Null);
        }
    };
    let false_as_null = |map: &mut Map<String, Value>, field: &str| {
        if map.get(field) == Some(&Value::Bool(false)) {
            map.insert(field.into(), Value::Null);
        }
    };
    // Every fourth record also loses fields clients like to default.
    let sparse = pick & 0b1100 == 0;
    match kind {
        Kind::Cycle => absent_as_null(map, &["end", "score"]),
        Kind::Sleep => {
            absent_as_null(map, &["v1_id", "score"]);
            false_as_null(map, "nap");
            if let Some(Value::Object(score)) = map.get_mut("score") {
                absent_as_null(
                    score,
                    &[
                        "sleep_performance_percentage",
                        "sleep_consistency_percentage",
                    ],
                );
            }
        }
        Kind::Recovery => {
            absent_as_null(map, &["score"]);
            if let Some(Value::Object(score)) = map.get_mut("score") {
                false_as_null(score, "user_calibrating");
                absent_as_null(score, &["spo2_percentage", "skin_temp_celsius"]);
            }
        }
        Kind::Workout => {
            absent_as_null(map, &["v1_id", "sport_id", "score"]);
            if sparse {
                map.insert("sport_name".into(), Value::Null);
            }
            if let Some(Value::Object(score)) = map.get_mut("score") {
                absent_as_null(
                    score,
                    &[
                        "distance_meter",
                        "altitude_gain_meter",
                        "altitude_change_meter",
                    ],
                );
                if sparse {
                    score.insert("percent_recorded".into(), Value::Null);
                    score.insert("zone_durations".into(), Value::Null);
                }
            }
        }
        Kind::Profile => {
            map.insert("email".into(), Value::Null);
        }
        Kind::Body => {
            map.insert("max_heart_rate".into(), Value::Null);
        }
    }
}

/// A stable number per record (FNV-1a of its id), whose bits choose its shapes.
fn choice_of(kind: Kind, map: &Map<String, Value>) -> u64 {
    let key = match kind {
        Kind::Recovery => map.get("cycle_id"),
        Kind::Profile | Kind::Body => None,
        _ => map.get("id"),
    };
    let text = match key {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // Mixes the high bits down so nearby ids do not share their low bits.
    hash ^ (hash >> 29)
}

/// The same instant written with a `+05:30` offset.
fn with_offset(text: &str) -> Option<String> {
    let instant = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
    let india = FixedOffset::east_opt(INDIA)?;
    Some(
        instant
            .with_timezone(&india)
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string(),
    )
}

/// `functional_fitness` → `Functional Fitness`.
fn title_case(name: &str) -> String {
    name.split(['_', ' '])
        .filter(|w| !w.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn offsets_keep_the_instant() {
        let shifted = with_offset("2025-01-02T20:00:00.123Z").expect("parses");
        assert_eq!(shifted, "2025-01-03T01:30:00.123+05:30");
        assert_eq!(
            DateTime::parse_from_rfc3339(&shifted).map(|t| t.with_timezone(&Utc)),
            DateTime::parse_from_rfc3339("2025-01-02T20:00:00.123Z").map(|t| t.with_timezone(&Utc))
        );
    }

    #[test]
    fn sports_are_title_cased() {
        assert_eq!(title_case("functional_fitness"), "Functional Fitness");
        assert_eq!(title_case("running"), "Running");
    }

    #[test]
    fn nulls_fill_absent_optionals_and_false_flags() {
        let shapes = Shapes {
            null_fields: true,
            ..Shapes::default()
        };
        let mut sleep = json!({"id": "a", "nap": false, "score_state": "PENDING_SCORE"});
        shapes.apply(Kind::Sleep, &mut sleep);
        assert_eq!(sleep["nap"], Value::Null);
        assert!(sleep.as_object().is_some_and(|m| m.contains_key("score")));
        let mut nap = json!({"id": "b", "nap": true});
        shapes.apply(Kind::Sleep, &mut nap);
        assert_eq!(nap["nap"], true);
    }

    #[test]
    fn expiry_by_generation_and_by_age() {
        let mut state = ShapeState::default();
        assert!(!state.token_expired(0, 0, 10_000_000));
        state.paging_generation = 1;
        assert!(state.token_expired(0, 0, 0));
        assert!(!state.token_expired(0, 1, 0));
        state.shapes.paging_token_max_age_secs = Some(60);
        assert!(!state.token_expired(0, 1, 60_000));
        assert!(state.token_expired(0, 1, 60_001));
    }
}
