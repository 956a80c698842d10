//! The requests and answers shared by the MCP tools and the REST endpoints. Their JSON schemas
//! (MCP input/output schemas through schemars, the OpenAPI document through utoipa) come from
//! these types, so both transports describe exactly what they send.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A metric kept per local WHOOP day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricName {
    /// Recovery score, %.
    Recovery,
    /// Heart-rate variability (RMSSD) during sleep, ms.
    Hrv,
    /// Resting heart rate, bpm.
    RestingHeartRate,
    /// Sleep performance of the main sleep, %.
    SleepPerformance,
    /// Hours asleep in the main sleep.
    SleepHours,
    /// Hours of sleep WHOOP said were needed that night (compare with sleep_hours).
    SleepNeedHours,
    /// Day strain, 0-21.
    DayStrain,
    /// Highest workout strain of the day, 0-21.
    WorkoutStrain,
    /// Respiratory rate during the main sleep, breaths per minute.
    RespiratoryRate,
    /// Blood oxygen, % (WHOOP 4.0 and later).
    Spo2,
    /// Skin temperature, °C.
    SkinTemp,
}

impl MetricName {
    pub const ALL: [MetricName; 11] = [
        MetricName::Recovery,
        MetricName::Hrv,
        MetricName::RestingHeartRate,
        MetricName::SleepPerformance,
        MetricName::SleepHours,
        MetricName::SleepNeedHours,
        MetricName::DayStrain,
        MetricName::WorkoutStrain,
        MetricName::RespiratoryRate,
        MetricName::Spo2,
        MetricName::SkinTemp,
    ];

    pub fn store(self) -> store::Metric {
        match self {
            MetricName::Recovery => store::Metric::Recovery,
            MetricName::Hrv => store::Metric::Hrv,
            MetricName::RestingHeartRate => store::Metric::RestingHeartRate,
            MetricName::SleepPerformance => store::Metric::SleepPerformance,
            MetricName::SleepHours => store::Metric::SleepHours,
            MetricName::SleepNeedHours => store::Metric::SleepNeedHours,
            MetricName::DayStrain => store::Metric::DayStrain,
            MetricName::WorkoutStrain => store::Metric::WorkoutStrain,
            MetricName::RespiratoryRate => store::Metric::RespiratoryRate,
            MetricName::Spo2 => store::Metric::Spo2,
            MetricName::SkinTemp => store::Metric::SkinTemp,
        }
    }

    /// Which direction is better, for best and worst days.
    pub fn better(self) -> Better {
        match self {
            MetricName::Recovery
            | MetricName::Hrv
            | MetricName::SleepPerformance
            | MetricName::SleepHours
            | MetricName::Spo2 => Better::Higher,
            MetricName::RestingHeartRate => Better::Lower,
            _ => Better::Neither,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
    /// Strain, sleep need, respiratory rate, skin temperature: no day is "best".
    Neither,
}

/// A named range ending at the newest day in the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub enum RangeName {
    #[serde(rename = "7d")]
    Days7,
    #[serde(rename = "30d")]
    Days30,
    #[serde(rename = "90d")]
    Days90,
    #[serde(rename = "1y")]
    Year,
    #[serde(rename = "all")]
    All,
}

/// Days to read: `range`, or `from`/`to` (either may be left out), or by default the last 30
/// days. Ranges end at the newest day in the data (see data_status for how fresh that is).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeInput {
    /// 7d, 30d, 90d, 1y or all.
    #[serde(default)]
    pub range: Option<RangeName>,
    /// First day, YYYY-MM-DD (inclusive).
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Last day, YYYY-MM-DD (inclusive).
    #[serde(default)]
    pub to: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesInput {
    pub metric: MetricName,
    /// 7d, 30d, 90d, 1y or all.
    #[serde(default)]
    pub range: Option<RangeName>,
    /// First day, YYYY-MM-DD.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Last day, YYYY-MM-DD.
    #[serde(default)]
    pub to: Option<NaiveDate>,
    /// Add a trailing rolling average over this many calendar days (2-365).
    #[serde(default)]
    pub rolling_days: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryInput {
    /// One metric; every metric when left out.
    #[serde(default)]
    pub metric: Option<MetricName>,
    /// 7d, 30d, 90d, 1y or all.
    #[serde(default)]
    pub range: Option<RangeName>,
    /// First day, YYYY-MM-DD.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Last day, YYYY-MM-DD.
    #[serde(default)]
    pub to: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompareInput {
    /// One metric; every metric when left out.
    #[serde(default)]
    pub metric: Option<MetricName>,
    /// First period's first day.
    pub a_from: NaiveDate,
    /// First period's last day.
    pub a_to: NaiveDate,
    /// Second period's first day.
    pub b_from: NaiveDate,
    /// Second period's last day.
    pub b_to: NaiveDate,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CorrelateInput {
    pub x: MetricName,
    pub y: MetricName,
    /// Pair x on day D with y on day D + lag_days (1: workout strain vs next-day recovery).
    #[serde(default)]
    pub lag_days: Option<i32>,
    /// 7d, 30d, 90d, 1y or all (default 90d).
    #[serde(default)]
    pub range: Option<RangeName>,
    /// First day, YYYY-MM-DD.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Last day, YYYY-MM-DD.
    #[serde(default)]
    pub to: Option<NaiveDate>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkoutsInput {
    /// Sport name, compared without case or separators ("functional fitness").
    #[serde(default)]
    pub sport: Option<String>,
    /// First day, YYYY-MM-DD.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Last day, YYYY-MM-DD.
    #[serde(default)]
    pub to: Option<NaiveDate>,
    #[serde(default)]
    pub min_strain: Option<f64>,
    #[serde(default)]
    pub max_strain: Option<f64>,
    /// At most this many, newest first (default 50, at most 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SleepInput {
    /// The local WHOOP day (YYYY-MM-DD) the night counts for; the newest when left out.
    #[serde(default)]
    pub day: Option<NaiveDate>,
}

/// Green 67-100, yellow 34-66, red 0-33, as WHOOP colours recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Green,
    Yellow,
    Red,
}

impl Band {
    pub fn of(recovery: f64) -> Band {
        if recovery >= 67.0 {
            Band::Green
        } else if recovery >= 34.0 {
            Band::Yellow
        } else {
            Band::Red
        }
    }
}

/// A value now, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Reading {
    pub value: Option<f64>,
    pub unit: String,
    /// WHOOP has not scored it yet: ask again later, do not read it as zero.
    pub pending: bool,
    /// WHOOP has the record but could not score it (too little wear): no value will come.
    pub unscorable: bool,
    /// Average of the 30 days before.
    pub baseline_30d: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct TodaySleep {
    pub pending: bool,
    /// WHOOP has the night but could not score it.
    pub unscorable: bool,
    pub performance_pct: Option<f64>,
    pub hours_asleep: Option<f64>,
    pub hours_needed: Option<f64>,
    pub light_hours: Option<f64>,
    pub deep_hours: Option<f64>,
    pub rem_hours: Option<f64>,
    pub awake_hours: Option<f64>,
}

/// The newest WHOOP day: its recovery, the night that started it and the strain so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Today {
    /// None when nothing is imported yet.
    pub day: Option<NaiveDate>,
    pub recovery: Reading,
    pub recovery_band: Option<Band>,
    pub hrv: Reading,
    pub resting_heart_rate: Reading,
    pub sleep: TodaySleep,
    pub day_strain: Reading,
    /// When the newest record started; compare with now to judge freshness.
    pub newest_record: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Point {
    pub day: NaiveDate,
    pub value: f64,
    /// Trailing average over `rolling_days` calendar days (only days with data count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Series {
    pub metric: MetricName,
    pub unit: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub rolling_days: Option<u32>,
    /// Calendar days in the range; days without a scored value are absent from `points`.
    pub days_in_range: u32,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct DayValue {
    pub day: NaiveDate,
    pub value: f64,
}

/// Statistics of one metric over one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Stats {
    /// Days with a scored value.
    pub n: u32,
    pub mean: Option<f64>,
    pub min: Option<DayValue>,
    pub max: Option<DayValue>,
    /// Least-squares slope, units per week; None with fewer than 3 values.
    pub trend_per_week: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct MetricSummary {
    pub metric: MetricName,
    pub unit: String,
    pub better: Better,
    pub stats: Stats,
    /// The best and worst days where one direction is better (None otherwise).
    pub best: Option<DayValue>,
    pub worst: Option<DayValue>,
    /// The same statistics for the period of equal length just before.
    pub previous: Stats,
    /// mean − previous mean.
    pub change: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct PeriodSummary {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub previous_from: NaiveDate,
    pub previous_to: NaiveDate,
    pub metrics: Vec<MetricSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct MetricComparison {
    pub metric: MetricName,
    pub unit: String,
    pub a: Stats,
    pub b: Stats,
    /// b mean − a mean.
    pub difference: Option<f64>,
    /// difference as % of a mean.
    pub percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Comparison {
    pub a_from: NaiveDate,
    pub a_to: NaiveDate,
    pub b_from: NaiveDate,
    pub b_to: NaiveDate,
    pub metrics: Vec<MetricComparison>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Correlation {
    pub x: MetricName,
    pub y: MetricName,
    pub lag_days: i32,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Day pairs with both values.
    pub n: u32,
    /// Pearson's r; None with fewer than 3 pairs or no variation.
    pub r: Option<f64>,
    /// "weak" (|r| < 0.3), "moderate" (< 0.5), "strong"; correlation is not causation.
    pub strength: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Workout {
    pub id: String,
    /// Normalised: lower case, words separated by spaces.
    pub sport: String,
    pub start: DateTime<Utc>,
    pub timezone_offset: String,
    pub duration_min: f64,
    pub strain: Option<f64>,
    pub average_hr: Option<i64>,
    pub max_hr: Option<i64>,
    pub distance_m: Option<f64>,
    pub pending: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Workouts {
    pub count: u32,
    pub workouts: Vec<Workout>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Sleep {
    pub id: String,
    pub day: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub timezone_offset: String,
    pub nap: bool,
    /// SCORED, PENDING_SCORE or UNSCORABLE.
    pub score_state: String,
    pub performance_pct: Option<f64>,
    pub consistency_pct: Option<f64>,
    pub efficiency_pct: Option<f64>,
    pub respiratory_rate: Option<f64>,
    pub in_bed_hours: Option<f64>,
    pub awake_hours: Option<f64>,
    pub light_hours: Option<f64>,
    pub deep_hours: Option<f64>,
    pub rem_hours: Option<f64>,
    pub no_data_hours: Option<f64>,
    pub sleep_cycles: Option<i64>,
    pub disturbances: Option<i64>,
    pub need_hours: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Night {
    pub day: Option<NaiveDate>,
    /// The main sleep; None when there is none for that day.
    pub main: Option<Sleep>,
    pub naps: Vec<Sleep>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct StateCounts {
    pub scored: u64,
    pub pending: u64,
    pub unscorable: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Gap {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct LastSync {
    pub kind: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// running, ok or failed.
    pub status: String,
}

/// What is imported and how fresh it is, so an answer can say when the data is incomplete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct DataStatus {
    pub cycles: StateCounts,
    pub sleeps: StateCounts,
    pub recoveries: StateCounts,
    pub workouts: StateCounts,
    pub naps: u64,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    pub newest_record: Option<DateTime<Utc>>,
    /// Hours since the newest record started.
    pub hours_since_newest_record: Option<f64>,
    /// The last time WHOOP changed any record kept here.
    pub newest_update: Option<DateTime<Utc>>,
    /// Runs of days without a cycle between first_day and last_day (the strap was off, or
    /// the import is incomplete), longest first, at most 20.
    pub gaps: Vec<Gap>,
    pub days_without_cycle: u32,
    /// The first full import finished.
    pub import_complete: bool,
    /// connected, not_connected, disconnected, reconnect_needed, ... (as the app shows it).
    pub connection_state: String,
    /// Live updates come through the VitalTrends relay (webhooks) rather than only by polling.
    pub live_updates: bool,
    pub last_sync: Option<LastSync>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct ProfileAnswer {
    pub user_id: Option<i64>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// An error as both transports report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct ErrorBody {
    /// bad_request, unauthorized, forbidden_host, not_found, internal.
    pub code: String,
    pub message: String,
}
