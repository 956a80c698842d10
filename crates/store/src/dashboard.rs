//! Reads for the dashboard's "today" cards, sleep stages per day and the workout list.
//!
//! "Today" is the newest cycle: its recovery (from the night that started it), that night's
//! sleep, and the cycle's strain so far. A record WHOOP has not scored yet is reported as pending,
//! never as zero. Baselines are 30-day averages of the days before.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;
use whoop::types::parse_timestamp;

use crate::error::{Error, Result};
use crate::reads::Metric;
use crate::Store;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MetricNow {
    pub value: Option<f64>,
    pub pending: bool,
    /// Average of the 30 days before today.
    pub baseline: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SleepNow {
    pub pending: bool,
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

const HOUR_MS: f64 = 3_600_000.0;

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
        let strain_scored = cycle.try_get::<String, _>("score_state")? == "SCORED";

        let recovery = sqlx::query(
            "SELECT score_state, recovery_score, hrv_rmssd_milli, resting_heart_rate
             FROM recovery WHERE cycle_id = ?",
        )
        .bind(cycle_id)
        .fetch_optional(&self.pool)
        .await?;
        // No recovery yet for the newest cycle means WHOOP is still working on it.
        let (rec_pending, rec, hrv, rhr) = match &recovery {
            Some(row) if row.try_get::<String, _>("score_state")? == "SCORED" => (
                false,
                row.try_get::<Option<f64>, _>("recovery_score")?,
                row.try_get::<Option<f64>, _>("hrv_rmssd_milli")?,
                row.try_get::<Option<f64>, _>("resting_heart_rate")?,
            ),
            Some(row) => (
                row.try_get::<String, _>("score_state")? == "PENDING_SCORE",
                None,
                None,
                None,
            ),
            None => (true, None, None, None),
        };
        let before = day.pred_opt().unwrap_or(day);
        let month_ago = day - chrono::Duration::days(30);
        let baseline = |metric| self.average(metric, month_ago, before);

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
                SleepNow {
                    pending: row.try_get::<String, _>("score_state")? == "PENDING_SCORE",
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
            recovery: MetricNow {
                value: rec,
                pending: rec_pending,
                baseline: baseline(Metric::Recovery).await?,
            },
            hrv: MetricNow {
                value: hrv,
                pending: rec_pending,
                baseline: baseline(Metric::Hrv).await?,
            },
            resting_hr: MetricNow {
                value: rhr,
                pending: rec_pending,
                baseline: baseline(Metric::RestingHeartRate).await?,
            },
            sleep,
            day_strain: MetricNow {
                value: if strain_scored {
                    cycle.try_get("strain")?
                } else {
                    None
                },
                pending: !strain_scored,
                baseline: baseline(Metric::DayStrain).await?,
            },
        })
    }

    async fn average(&self, metric: Metric, from: NaiveDate, to: NaiveDate) -> Result<Option<f64>> {
        let series = self.daily_series(metric, from, to).await?;
        if series.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            series.iter().map(|v| v.value).sum::<f64>() / series.len() as f64,
        ))
    }

    /// The main sleep of each day, in hours per stage, with the sleep need.
    pub async fn sleep_stages(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<SleepStages>> {
        let rows = sqlx::query(
            "SELECT COALESCE(c.day, s.day) AS d, s.total_light_sleep_time_milli AS light,
               s.total_slow_wave_sleep_time_milli AS deep, s.total_rem_sleep_time_milli AS rem,
               s.total_awake_time_milli AS awake, s.baseline_milli + s.need_from_sleep_debt_milli
               + s.need_from_recent_strain_milli + s.need_from_recent_nap_milli AS need
             FROM sleep s LEFT JOIN cycle c ON c.id = s.cycle_id
             WHERE s.nap = 0 AND s.score_state = 'SCORED' AND s.total_light_sleep_time_milli IS NOT NULL
               AND d BETWEEN ? AND ? ORDER BY d, s.start",
        )
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<SleepStages> = Vec::with_capacity(rows.len());
        for row in rows {
            let hours = |column: &str| -> Result<f64> {
                Ok(row.try_get::<Option<i64>, _>(column)?.unwrap_or(0) as f64 / HOUR_MS)
            };
            let stages = SleepStages {
                day: parse_day(&row.try_get::<String, _>("d")?)?,
                light: hours("light")?,
                deep: hours("deep")?,
                rem: hours("rem")?,
                awake: hours("awake")?,
                need: row
                    .try_get::<Option<i64>, _>("need")?
                    .map(|ms| ms as f64 / HOUR_MS),
            };
            match out.last_mut() {
                Some(last) if last.day == stages.day => *last = stages,
                _ => out.push(stages),
            }
        }
        Ok(out)
    }

    /// Workouts between two local days, newest first, at most `limit`.
    pub async fn workouts(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Vec<WorkoutSummary>> {
        let rows = sqlx::query(
            r#"SELECT id, sport_name, start, "end", timezone_offset, score_state, strain,
                 average_heart_rate, max_heart_rate, distance_meter
               FROM workout WHERE day BETWEEN ? AND ? ORDER BY start DESC LIMIT ?"#,
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
