//! WHOOP v2 records as the API serves them (whoop-api.md §3).
//!
//! Parsing is tolerant where WHOOP has been inconsistent (unknown fields, absent optionals, the v1
//! name `zone_duration`, zone-less timestamps) and strict where a wrong value would corrupt the
//! store (ids, `updated_at`, score state). Serialisation writes WHOOP's own field names so an export
//! reads like the API.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Whether WHOOP has finished scoring a record. `score` is present only when `Scored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScoreState {
    Scored,
    PendingScore,
    Unscorable,
}

impl ScoreState {
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreState::Scored => "SCORED",
            ScoreState::PendingScore => "PENDING_SCORE",
            ScoreState::Unscorable => "UNSCORABLE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "SCORED" => Some(ScoreState::Scored),
            "PENDING_SCORE" => Some(ScoreState::PendingScore),
            "UNSCORABLE" => Some(ScoreState::Unscorable),
            _ => None,
        }
    }
}

/// A physiological day: from one sleep onset to the next. The current cycle has no `end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cycle {
    pub id: i64,
    pub user_id: i64,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub start: DateTime<Utc>,
    #[serde(
        default,
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub end: Option<DateTime<Utc>>,
    pub timezone_offset: String,
    pub score_state: ScoreState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<CycleScore>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CycleScore {
    pub strain: f64,
    pub kilojoule: f64,
    pub average_heart_rate: i64,
    pub max_heart_rate: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sleep {
    pub id: String,
    pub cycle_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1_id: Option<i64>,
    pub user_id: i64,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub start: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub end: DateTime<Utc>,
    pub timezone_offset: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub nap: bool,
    pub score_state: ScoreState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<SleepScore>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SleepScore {
    pub stage_summary: SleepStageSummary,
    pub sleep_needed: SleepNeeded,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respiratory_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_performance_percentage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_consistency_percentage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_efficiency_percentage: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SleepStageSummary {
    pub total_in_bed_time_milli: i64,
    pub total_awake_time_milli: i64,
    pub total_no_data_time_milli: i64,
    pub total_light_sleep_time_milli: i64,
    pub total_slow_wave_sleep_time_milli: i64,
    pub total_rem_sleep_time_milli: i64,
    pub sleep_cycle_count: i64,
    pub disturbance_count: i64,
}

impl SleepStageSummary {
    /// WHOOP has no "total sleep" field; it is light + deep (SWS) + REM.
    pub fn total_sleep_milli(&self) -> i64 {
        self.total_light_sleep_time_milli
            + self.total_slow_wave_sleep_time_milli
            + self.total_rem_sleep_time_milli
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SleepNeeded {
    pub baseline_milli: i64,
    pub need_from_sleep_debt_milli: i64,
    pub need_from_recent_strain_milli: i64,
    pub need_from_recent_nap_milli: i64,
}

impl SleepNeeded {
    pub fn total_milli(&self) -> i64 {
        self.baseline_milli
            + self.need_from_sleep_debt_milli
            + self.need_from_recent_strain_milli
            + self.need_from_recent_nap_milli
    }
}

/// One recovery per cycle, keyed by `cycle_id`; `sleep_id` names the sleep it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    pub cycle_id: i64,
    pub sleep_id: String,
    pub user_id: i64,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
    pub score_state: ScoreState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<RecoveryScore>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryScore {
    #[serde(default, deserialize_with = "null_as_default")]
    pub user_calibrating: bool,
    pub recovery_score: f64,
    pub resting_heart_rate: f64,
    pub hrv_rmssd_milli: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spo2_percentage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skin_temp_celsius: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workout {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1_id: Option<i64>,
    pub user_id: i64,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub start: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub end: DateTime<Utc>,
    pub timezone_offset: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sport_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sport_id: Option<i64>,
    pub score_state: ScoreState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<WorkoutScore>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkoutScore {
    pub strain: f64,
    pub average_heart_rate: i64,
    pub max_heart_rate: i64,
    pub kilojoule: f64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub percent_recorded: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance_meter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altitude_gain_meter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altitude_change_meter: Option<f64>,
    /// v2 calls it `zone_durations`; v1 (and at least one v2 client) `zone_duration`.
    #[serde(default, alias = "zone_duration", deserialize_with = "null_as_default")]
    pub zone_durations: ZoneDurations,
}

/// Time in each heart-rate zone. v1 made every zone optional, so absent means zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ZoneDurations {
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone_zero_milli: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone_one_milli: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone_two_milli: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone_three_milli: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone_four_milli: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub zone_five_milli: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub user_id: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub email: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub first_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub last_name: String,
}

/// The person's current measurements. A field WHOOP leaves out or sends as `null` reads as 0,
/// meaning "not set"; the raw JSON keeps what WHOOP actually sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BodyMeasurement {
    #[serde(default, deserialize_with = "null_as_default")]
    pub height_meter: f64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub weight_kilogram: f64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub max_heart_rate: i64,
}

/// For fields the client can do without: WHOOP sometimes sends `null` where its spec promises a
/// value (whoop-api.md §2.3), and `#[serde(default)]` alone only covers an absent field. With
/// this, `null` and absent both give the type's default instead of failing the whole record.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One spelling per sport, so records group together: WHOOP writes the same sport as
/// "Functional Fitness" in one record and `functional_fitness` in another (whoop-api.md §3.4).
/// Lower case, words joined by `_`, anything but letters and digits treated as a separator.
pub fn normalize_sport_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for word in name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push('_');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// WHOOP's four paged collections, and how each names its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Collection {
    Cycle,
    Sleep,
    Recovery,
    Workout,
}

impl Collection {
    pub const ALL: [Collection; 4] = [
        Collection::Cycle,
        Collection::Sleep,
        Collection::Recovery,
        Collection::Workout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Collection::Cycle => "cycle",
            Collection::Sleep => "sleep",
            Collection::Recovery => "recovery",
            Collection::Workout => "workout",
        }
    }

    /// Path of the collection endpoint below `/developer`.
    pub fn path(self) -> &'static str {
        match self {
            Collection::Cycle => "/v2/cycle",
            Collection::Sleep => "/v2/activity/sleep",
            Collection::Recovery => "/v2/recovery",
            Collection::Workout => "/v2/activity/workout",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Collection::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record type that lives in a paged collection.
pub trait CollectionRecord: serde::de::DeserializeOwned + Send + 'static {
    const COLLECTION: Collection;
    /// The record's key as text (cycle id, sleep/workout UUID, recovery's cycle id).
    fn key(&self) -> String;
    fn updated_at(&self) -> DateTime<Utc>;
    /// When the record began; recoveries have no time of their own.
    fn start(&self) -> Option<DateTime<Utc>> {
        None
    }
}

impl CollectionRecord for Cycle {
    const COLLECTION: Collection = Collection::Cycle;
    fn start(&self) -> Option<DateTime<Utc>> {
        Some(self.start)
    }
    fn key(&self) -> String {
        self.id.to_string()
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

impl CollectionRecord for Sleep {
    const COLLECTION: Collection = Collection::Sleep;
    fn start(&self) -> Option<DateTime<Utc>> {
        Some(self.start)
    }
    fn key(&self) -> String {
        self.id.clone()
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

impl CollectionRecord for Recovery {
    const COLLECTION: Collection = Collection::Recovery;
    fn key(&self) -> String {
        self.cycle_id.to_string()
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

impl CollectionRecord for Workout {
    const COLLECTION: Collection = Collection::Workout;
    fn start(&self) -> Option<DateTime<Utc>> {
        Some(self.start)
    }
    fn key(&self) -> String {
        self.id.clone()
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

/// A parsed record together with the JSON WHOOP sent, kept so a future schema can be replayed
/// from disk without asking WHOOP again.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched<T> {
    pub record: T,
    pub raw: serde_json::Value,
}

/// A record in a page that could not be parsed. It is reported, never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRecord {
    pub collection: Collection,
    /// The record's id if the JSON had a recognisable one.
    pub id: Option<String>,
    pub reason: String,
}

/// One page of a collection.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub records: Vec<Fetched<T>>,
    pub skipped: Vec<SkippedRecord>,
    /// `None` when WHOOP says there are no more pages (field absent, null or "").
    pub next_token: Option<String>,
}

impl<T: CollectionRecord> Page<T> {
    /// Parses a page body, isolating each record so one broken record cannot sink the page.
    pub fn parse(body: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct RawPage {
            #[serde(default)]
            records: Option<Vec<serde_json::Value>>,
            #[serde(default)]
            next_token: Option<serde_json::Value>,
        }
        let raw: RawPage = serde_json::from_slice(body)?;
        let mut records = Vec::new();
        let mut skipped = Vec::new();
        for value in raw.records.unwrap_or_default() {
            match serde_json::from_value::<T>(value.clone()) {
                Ok(record) => records.push(Fetched { record, raw: value }),
                Err(err) => skipped.push(SkippedRecord {
                    collection: T::COLLECTION,
                    id: record_id_of(T::COLLECTION, &value),
                    reason: err.to_string(),
                }),
            }
        }
        let next_token = match raw.next_token {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
            // A number here would be odd, but it is still a cursor to send back.
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        Ok(Page {
            records,
            skipped,
            next_token,
        })
    }
}

/// The id a broken record carries, for the report.
fn record_id_of(collection: Collection, value: &serde_json::Value) -> Option<String> {
    let field = match collection {
        Collection::Recovery => "cycle_id",
        _ => "id",
    };
    match value.get(field)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Formats a time the way WHOOP does: UTC, milliseconds, `Z`.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a WHOOP timestamp. A value without a zone is UTC (v2 migration guide).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

/// Serde adapters for WHOOP timestamps.
pub mod timestamp {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_timestamp(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse_timestamp(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp {s:?}")))
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&format_timestamp(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) if s.is_empty() => Ok(None),
                Some(s) => parse_timestamp(&s)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp {s:?}"))),
            }
        }
    }
}
