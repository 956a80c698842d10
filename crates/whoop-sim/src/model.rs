//! WHOOP's v2 records as the simulator stores and serves them. These are the simulator's own
//! definitions of the JSON in whoop-api.md §3, written independently of the client crate so that a
//! field-name mistake in one cannot hide in the other. Field order follows WHOOP's samples.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use uuid::Uuid;

use crate::time::Ts;

/// `score_state` and `score` together, so a score can only exist when the state is SCORED.
#[derive(Debug, Clone, PartialEq)]
pub enum Scoring<T> {
    Pending,
    Unscorable,
    Scored(T),
}

impl<T> Scoring<T> {
    pub fn is_scored(&self) -> bool {
        matches!(self, Scoring::Scored(_))
    }

    pub fn state_name(&self) -> &'static str {
        match self {
            Scoring::Pending => "PENDING_SCORE",
            Scoring::Unscorable => "UNSCORABLE",
            Scoring::Scored(_) => "SCORED",
        }
    }
}

// Written by hand (and flattened into the record) because serde's derive cannot express
// "emit `score` only for one variant".
impl<T: Serialize> Serialize for Scoring<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("score_state", self.state_name())?;
        if let Scoring::Scored(score) = self {
            map.serialize_entry("score", score)?;
        }
        map.end()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cycle {
    pub id: i64,
    pub user_id: i64,
    pub created_at: Ts,
    pub updated_at: Ts,
    pub start: Ts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<Ts>,
    pub timezone_offset: &'static str,
    #[serde(flatten)]
    pub scoring: Scoring<CycleScore>,
    /// The day's values its score is computed from (kept here so the day's plan can go once
    /// everything in it happened).
    #[serde(skip)]
    pub base: crate::generate::DayBase,
    /// Drift added by re-scores triggered through a sleep edit, so such an edit visibly moves
    /// the cycle's numbers.
    #[serde(skip)]
    pub adjust: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CycleScore {
    pub strain: f64,
    pub kilojoule: f64,
    pub average_heart_rate: i32,
    pub max_heart_rate: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sleep {
    pub id: Uuid,
    pub cycle_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v1_id: Option<i64>,
    pub user_id: i64,
    pub created_at: Ts,
    pub updated_at: Ts,
    pub start: Ts,
    pub end: Ts,
    pub timezone_offset: &'static str,
    pub nap: bool,
    #[serde(flatten)]
    pub scoring: Scoring<SleepScore>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SleepScore {
    pub stage_summary: StageSummary,
    pub sleep_needed: SleepNeeded,
    pub respiratory_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sleep_performance_percentage: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sleep_consistency_percentage: Option<f64>,
    pub sleep_efficiency_percentage: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageSummary {
    pub total_in_bed_time_milli: i64,
    pub total_awake_time_milli: i64,
    pub total_no_data_time_milli: i64,
    pub total_light_sleep_time_milli: i64,
    pub total_slow_wave_sleep_time_milli: i64,
    pub total_rem_sleep_time_milli: i64,
    pub sleep_cycle_count: i32,
    pub disturbance_count: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SleepNeeded {
    pub baseline_milli: i64,
    pub need_from_sleep_debt_milli: i64,
    pub need_from_recent_strain_milli: i64,
    pub need_from_recent_nap_milli: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Recovery {
    pub cycle_id: i64,
    pub sleep_id: Uuid,
    pub user_id: i64,
    pub created_at: Ts,
    pub updated_at: Ts,
    #[serde(flatten)]
    pub scoring: Scoring<RecoveryScore>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryScore {
    pub user_calibrating: bool,
    pub recovery_score: f64,
    pub resting_heart_rate: f64,
    pub hrv_rmssd_milli: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spo2_percentage: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skin_temp_celsius: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Workout {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v1_id: Option<i64>,
    pub user_id: i64,
    pub created_at: Ts,
    pub updated_at: Ts,
    pub start: Ts,
    pub end: Ts,
    pub timezone_offset: &'static str,
    pub sport_name: &'static str,
    #[serde(flatten)]
    pub scoring: Scoring<WorkoutScore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sport_id: Option<i32>,
    /// The cycle the workout falls in; WHOOP's v2 workout JSON does not carry it, but the
    /// cycle's strain depends on it.
    #[serde(skip)]
    pub cycle_id: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkoutScore {
    pub strain: f64,
    pub average_heart_rate: i32,
    pub max_heart_rate: i32,
    pub kilojoule: f64,
    pub percent_recorded: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_meter: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub altitude_gain_meter: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub altitude_change_meter: Option<f64>,
    pub zone_durations: ZoneDurations,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneDurations {
    pub zone_zero_milli: i64,
    pub zone_one_milli: i64,
    pub zone_two_milli: i64,
    pub zone_three_milli: i64,
    pub zone_four_milli: i64,
    pub zone_five_milli: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub user_id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BodyMeasurement {
    pub height_meter: f64,
    pub weight_kilogram: f64,
    pub max_heart_rate: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_only_when_scored_and_open_cycle_has_no_end() {
        let t = Ts::from_millis(1_700_000_000_123);
        let mut cycle = Cycle {
            id: 7,
            user_id: 1,
            created_at: t,
            updated_at: t,
            start: t,
            end: None,
            timezone_offset: "-05:00",
            scoring: Scoring::Pending,
            base: crate::generate::DayBase {
                strain: 8.0,
                kj_per_hour: 300.0,
                avg_hr: 60.0,
                max_hr: 120,
                unscorable: false,
            },
            adjust: 0.0,
        };
        let json = serde_json::to_value(&cycle).expect("serializes");
        assert_eq!(json["score_state"], "PENDING_SCORE");
        assert!(json.get("score").is_none());
        assert!(json.get("end").is_none());
        assert!(json.get("day").is_none());
        assert_eq!(json["start"], "2023-11-14T22:13:20.123Z");

        cycle.end = Some(t);
        cycle.scoring = Scoring::Scored(CycleScore {
            strain: 8.5,
            kilojoule: 9000.0,
            average_heart_rate: 70,
            max_heart_rate: 150,
        });
        let json = serde_json::to_value(&cycle).expect("serializes");
        assert_eq!(json["score_state"], "SCORED");
        assert_eq!(json["score"]["average_heart_rate"], 70);
        assert_eq!(json["end"], "2023-11-14T22:13:20.123Z");
    }
}
