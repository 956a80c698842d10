//! The dashboard's read: the "today" cards, the charted metrics per day (from `reads`) and the
//! workout list, for one range.
//!
//! "Today" is the newest cycle: its recovery (from the night that started it), that night's
//! sleep, and the cycle's strain so far. A record WHOOP has not scored yet is reported as pending,
//! never as zero; one WHOOP could not score (too little wear) as unscorable, which is not the
//! same as nothing recorded. Baselines are 30-day averages of the days before.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use whoop::types::{parse_timestamp, ScoreState};

use crate::error::{Error, Result};
use crate::reads::{values_of, DayMetrics, Metric};
use crate::Store;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MetricNow {
    pub value: Option<f64>,
    pub pending: bool,
    /// WHOOP has the record but could not score it: no value will come.
    pub unscorable: bool,
    /// Average of the 30 days before today.
    pub baseline: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SleepNow {
    pub pending: bool,
    /// WHOOP has the night but could not score it.
    pub unscorable: bool,
    pub performance: Option<f64>,
    pub hours_asleep: Option<f64>,
    pub hours_needed: Option<f64>,
    pub light_hours: Option<f64>,
    pub deep_hours: Option<f64>,
    pub rem_hours: Option<f64>,
    pub awake_hours: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TodaySummary {
    pub day: Option<NaiveDate>,
    pub recovery: MetricNow,
    pub hrv: MetricNow,
    pub resting_hr: MetricNow,
    pub sleep: SleepNow,
    pub day_strain: MetricNow,
}

/// One night's stages, in hours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SleepStages {
    pub day: NaiveDate,
    pub light: f64,
    pub deep: f64,
    pub rem: f64,
    pub awake: f64,
    pub need: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkoutSummary {
    pub id: String,
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

/// What the dashboard shows for one range.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    pub today: TodaySummary,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The charted metrics (`CHARTED`) and the sleep stages, per day, oldest first.
    pub days: Vec<DayMetrics>,
    /// Newest first.
    pub workouts: Vec<WorkoutSummary>,
}

/// The metrics the dashboard charts.
pub const CHARTED: [Metric; 6] = [
    Metric::Recovery,
    Metric::Hrv,
    Metric::RestingHeartRate,
    Metric::SleepHours,
    Metric::DayStrain,
    Metric::WorkoutStrain,
];

/// The metrics whose 30-day average the "today" cards compare against.
const BASELINES: [Metric; 4] = [
    Metric::Recovery,
    Metric::Hrv,
    Metric::RestingHeartRate,
    Metric::DayStrain,
];

const HOUR_MS: f64 = 3_600_000.0;

/// A row's `score_state`; one this build does not know reads as pending (WHOOP may still score
/// it).
fn score_state(row: &SqliteRow) -> Result<ScoreState> {
    let state: String = row.try_get("score_state")?;
    Ok(ScoreState::parse(&state).unwrap_or(ScoreState::PendingScore))
}

/// A card's reading: the value only when scored.
fn reading(state: ScoreState, value: Option<f64>, baseline: Option<f64>) -> MetricNow {
    MetricNow {
        value: value.filter(|_| state == ScoreState::Scored),
        pending: state == ScoreState::PendingScore,
        unscorable: state == ScoreState::Unscorable,
        baseline,
    }
}

/// See `Store::newest_cycle`.
pub(crate) struct NewestCycle {
    pub day: NaiveDate,
    pub open: bool,
}

impl Store {
    pub async fn today(&self) -> Result<TodaySummary> {
        let cycle = sqlx::query(
            "SELECT id, day, score_state, strain FROM cycle ORDER BY start DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(cycle) = cycle else {
            return Ok(TodaySummary::default());
        };
        let cycle_id: i64 = cycle.try_get("id")?;
        let day_text: String = cycle.try_get("day")?;
        let day = parse_day(&day_text)?;
        let strain_state = score_state(&cycle)?;

        let recovery = sqlx::query(
            "SELECT score_state, recovery_score, hrv_rmssd_milli, resting_heart_rate
             FROM recovery WHERE cycle_id = ?",
        )
        .bind(cycle_id)
        .fetch_optional(&self.pool)
        .await?;
        // No recovery yet for the newest cycle means WHOOP is still working on it.
        let (rec_state, rec, hrv, rhr) = match &recovery {
            Some(row) => (
                score_state(row)?,
                row.try_get::<Option<f64>, _>("recovery_score")?,
                row.try_get::<Option<f64>, _>("hrv_rmssd_milli")?,
                row.try_get::<Option<f64>, _>("resting_heart_rate")?,
            ),
            None => (ScoreState::PendingScore, None, None, None),
        };
        let before = day.pred_opt().unwrap_or(day);
        let month = self
            .days(day - chrono::Duration::days(30), before, &BASELINES)
            .await?;
        let baseline = |metric| {
            let values = values_of(&month, metric);
            (!values.is_empty())
                .then(|| values.iter().map(|v| v.value).sum::<f64>() / values.len() as f64)
        };

        let sleep = sqlx::query(
            "SELECT score_state, sleep_performance_percentage, total_light_sleep_time_milli AS light,
               total_slow_wave_sleep_time_milli AS deep, total_rem_sleep_time_milli AS rem,
               total_awake_time_milli AS awake, baseline_milli + need_from_sleep_debt_milli
               + need_from_recent_strain_milli + need_from_recent_nap_milli AS need
             FROM sleep WHERE cycle_id = ? AND nap = 0 ORDER BY start DESC LIMIT 1",
        )
        .bind(cycle_id)
        .fetch_optional(&self.pool)
        .await?;
        let sleep = match sleep {
            Some(row) => {
                let hours = |column: &str| -> Result<Option<f64>> {
                    Ok(row
                        .try_get::<Option<i64>, _>(column)?
                        .map(|ms| ms as f64 / HOUR_MS))
                };
                let (light, deep, rem) = (hours("light")?, hours("deep")?, hours("rem")?);
                let state = score_state(&row)?;
                SleepNow {
                    pending: state == ScoreState::PendingScore,
                    unscorable: state == ScoreState::Unscorable,
                    performance: row.try_get("sleep_performance_percentage")?,
                    hours_asleep: match (light, deep, rem) {
                        (Some(l), Some(d), Some(r)) => Some(l + d + r),
                        _ => None,
                    },
                    hours_needed: hours("need")?,
                    light_hours: light,
                    deep_hours: deep,
                    rem_hours: rem,
                    awake_hours: hours("awake")?,
                }
            }
            None => SleepNow {
                pending: true,
                ..SleepNow::default()
            },
        };

        Ok(TodaySummary {
            day: Some(day),
            recovery: reading(rec_state, rec, baseline(Metric::Recovery)),
            hrv: reading(rec_state, hrv, baseline(Metric::Hrv)),
            resting_hr: reading(rec_state, rhr, baseline(Metric::RestingHeartRate)),
            sleep,
            day_strain: reading(
                strain_state,
                cycle.try_get("strain")?,
                baseline(Metric::DayStrain),
            ),
        })
    }

    /// Today's cards, every charted metric per day from `range_days` before today (or the first
    /// day on record) through today, and the newest workouts of that range.
    pub async fn dashboard(
        &self,
        range_days: Option<i64>,
        workout_limit: u32,
    ) -> Result<Dashboard> {
        // The range ends on the newest cycle's day, as "today" does.
        let to = match self.newest_cycle().await? {
            Some(newest) => newest.day,
            None => Utc::now().date_naive(),
        };
        let from = match range_days {
            Some(days) => to - chrono::Duration::days(days - 1),
            None => self.first_day().await?.unwrap_or(to),
        };
        // Side by side, as the day read's own queries are: each connection of the pool works
        // on its own thread.
        let (today, days, workouts) = tokio::try_join!(
            self.today(),
            self.days_and_stages(from, to, &CHARTED),
            self.workouts(from, to, workout_limit)
        )?;
        Ok(Dashboard {
            days,
            workouts,
            today,
            from,
            to,
        })
    }

    /// Workouts between two local days, newest first (by day, then start), at most `limit`.
    /// Ordered by day first so SQLite walks the day index from the newest day and stops at the
    /// limit, rather than sorting every workout of the range by start (five years: 1.2 → 0.1 ms).
    pub async fn workouts(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Vec<WorkoutSummary>> {
        let rows = sqlx::query(
            r#"SELECT id, sport_name, start, "end", timezone_offset, score_state, strain,
                 average_heart_rate, max_heart_rate, distance_meter
               FROM workout WHERE day BETWEEN ? AND ? ORDER BY day DESC, start DESC LIMIT ?"#,
        )
        .bind(from.to_string())
        .bind(to.to_string())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let time = |column: &str| -> Result<DateTime<Utc>> {
                let text: String = row.try_get(column)?;
                parse_timestamp(&text)
                    .ok_or_else(|| Error::Corrupt(format!("stored time {text:?}")))
            };
            let (start, end) = (time("start")?, time("end")?);
            out.push(WorkoutSummary {
                id: row.try_get("id")?,
                sport: row.try_get("sport_name")?,
                start,
                timezone_offset: row.try_get("timezone_offset")?,
                duration_min: (end - start).num_seconds().max(0) as f64 / 60.0,
                strain: row.try_get("strain")?,
                average_hr: row.try_get("average_heart_rate")?,
                max_hr: row.try_get("max_heart_rate")?,
                distance_m: row.try_get("distance_meter")?,
                pending: row.try_get::<String, _>("score_state")? == "PENDING_SCORE",
            });
        }
        Ok(out)
    }

    /// The newest cycle's day, and whether it is still open (WHOOP has not ended it yet).
    pub(crate) async fn newest_cycle(&self) -> Result<Option<NewestCycle>> {
        let newest: Option<(String, bool)> =
            sqlx::query_as(r#"SELECT day, "end" IS NULL FROM cycle ORDER BY start DESC LIMIT 1"#)
                .fetch_optional(&self.pool)
                .await?;
        newest
            .map(|(day, open)| {
                Ok(NewestCycle {
                    day: parse_day(&day)?,
                    open,
                })
            })
            .transpose()
    }

    /// The first local day with any record, for the "All" range.
    pub async fn first_day(&self) -> Result<Option<NaiveDate>> {
        let day: Option<String> = sqlx::query_scalar(
            "SELECT MIN(d) FROM (SELECT MIN(day) AS d FROM cycle UNION ALL
               SELECT MIN(day) FROM sleep UNION ALL SELECT MIN(day) FROM workout)",
        )
        .fetch_one(&self.pool)
        .await?;
        day.map(|d| parse_day(&d)).transpose()
    }
}

fn parse_day(text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| Error::Corrupt(format!("stored day {text:?}: {e}")))
}
