//! Day-by-day reads for the dashboard.
//!
//! Each metric is one value per local WHOOP day (see `day`), only from scored records: a pending
//! score is absent from a series, never a zero.

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::Row;

use crate::error::{Error, Result};
use crate::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Recovery score, 0–100 %.
    Recovery,
    /// HRV (RMSSD), ms.
    Hrv,
    /// Resting heart rate, bpm.
    RestingHeartRate,
    /// Sleep performance of the main sleep, 0–100 %.
    SleepPerformance,
    /// Hours asleep (light + deep + REM) in the main sleep.
    SleepHours,
    /// Day strain of the cycle, 0–21.
    DayStrain,
    /// Highest workout strain of the day, 0–21.
    WorkoutStrain,
    /// Sleep need of the main sleep (baseline plus debt, strain and nap adjustments), hours.
    SleepNeedHours,
    /// Respiratory rate during the main sleep, breaths per minute.
    RespiratoryRate,
    /// Blood oxygen (SpO2) from the recovery, %. Only WHOOP 4.0 and later measure it.
    Spo2,
    /// Skin temperature from the recovery, °C.
    SkinTemp,
}

impl Metric {
    pub const ALL: [Metric; 11] = [
        Metric::Recovery,
        Metric::Hrv,
        Metric::RestingHeartRate,
        Metric::SleepPerformance,
        Metric::SleepHours,
        Metric::DayStrain,
        Metric::WorkoutStrain,
        Metric::SleepNeedHours,
        Metric::RespiratoryRate,
        Metric::Spo2,
        Metric::SkinTemp,
    ];

    /// The snake_case name used by the MCP tools and the REST API.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Recovery => "recovery",
            Metric::Hrv => "hrv",
            Metric::RestingHeartRate => "resting_heart_rate",
            Metric::SleepPerformance => "sleep_performance",
            Metric::SleepHours => "sleep_hours",
            Metric::DayStrain => "day_strain",
            Metric::WorkoutStrain => "workout_strain",
            Metric::SleepNeedHours => "sleep_need_hours",
            Metric::RespiratoryRate => "respiratory_rate",
            Metric::Spo2 => "spo2",
            Metric::SkinTemp => "skin_temp",
        }
    }

    /// The unit a value of this metric is in.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Recovery | Metric::SleepPerformance | Metric::Spo2 => "%",
            Metric::Hrv => "ms",
            Metric::RestingHeartRate => "bpm",
            Metric::SleepHours | Metric::SleepNeedHours => "h",
            Metric::DayStrain | Metric::WorkoutStrain => "strain (0-21)",
            Metric::RespiratoryRate => "breaths/min",
            Metric::SkinTemp => "°C",
        }
    }

    /// A query returning (day, value, tiebreak) for scored records, oldest first. When two
    /// records share a day the one with the larger tiebreak (the later one) wins.
    fn sql(self) -> &'static str {
        match self {
            Metric::Spo2 => {
                "SELECT COALESCE(c.day, s.day) AS d, r.spo2_percentage AS v, r.cycle_id AS k
                 FROM recovery r LEFT JOIN cycle c ON c.id = r.cycle_id
                 LEFT JOIN sleep s ON s.id = r.sleep_id
                 WHERE r.score_state = 'SCORED' AND r.spo2_percentage IS NOT NULL
                   AND d IS NOT NULL AND d BETWEEN ? AND ? ORDER BY d, k"
            }
            Metric::SkinTemp => {
                "SELECT COALESCE(c.day, s.day) AS d, r.skin_temp_celsius AS v, r.cycle_id AS k
                 FROM recovery r LEFT JOIN cycle c ON c.id = r.cycle_id
                 LEFT JOIN sleep s ON s.id = r.sleep_id
                 WHERE r.score_state = 'SCORED' AND r.skin_temp_celsius IS NOT NULL
                   AND d IS NOT NULL AND d BETWEEN ? AND ? ORDER BY d, k"
            }
            Metric::SleepNeedHours => {
                "SELECT COALESCE(c.day, s.day) AS d,
                   (s.baseline_milli + s.need_from_sleep_debt_milli
                    + s.need_from_recent_strain_milli + s.need_from_recent_nap_milli) / 3600000.0
                   AS v, s.start AS k
                 FROM sleep s LEFT JOIN cycle c ON c.id = s.cycle_id
                 WHERE s.nap = 0 AND s.score_state = 'SCORED' AND s.baseline_milli IS NOT NULL
                   AND d BETWEEN ? AND ? ORDER BY d, k"
            }
            Metric::RespiratoryRate => {
                "SELECT COALESCE(c.day, s.day) AS d, s.respiratory_rate AS v, s.start AS k
                 FROM sleep s LEFT JOIN cycle c ON c.id = s.cycle_id
                 WHERE s.nap = 0 AND s.score_state = 'SCORED' AND s.respiratory_rate IS NOT NULL
                   AND d BETWEEN ? AND ? ORDER BY d, k"
            }
            Metric::Recovery | Metric::Hrv | Metric::RestingHeartRate => {
                // The recovery's day is its cycle's; the sleep's day stands in until the cycle
                // arrives (they agree: the main sleep starts the cycle).
                match self {
                    Metric::Recovery => {
                        "SELECT COALESCE(c.day, s.day) AS d, r.recovery_score AS v, r.cycle_id AS k
                         FROM recovery r LEFT JOIN cycle c ON c.id = r.cycle_id
                         LEFT JOIN sleep s ON s.id = r.sleep_id
                         WHERE r.score_state = 'SCORED' AND r.recovery_score IS NOT NULL
                           AND d IS NOT NULL AND d BETWEEN ? AND ? ORDER BY d, k"
                    }
                    Metric::Hrv => {
                        "SELECT COALESCE(c.day, s.day) AS d, r.hrv_rmssd_milli AS v, r.cycle_id AS k
                         FROM recovery r LEFT JOIN cycle c ON c.id = r.cycle_id
                         LEFT JOIN sleep s ON s.id = r.sleep_id
                         WHERE r.score_state = 'SCORED' AND r.hrv_rmssd_milli IS NOT NULL
                           AND d IS NOT NULL AND d BETWEEN ? AND ? ORDER BY d, k"
                    }
                    _ => {
                        "SELECT COALESCE(c.day, s.day) AS d, r.resting_heart_rate AS v, r.cycle_id AS k
                         FROM recovery r LEFT JOIN cycle c ON c.id = r.cycle_id
                         LEFT JOIN sleep s ON s.id = r.sleep_id
                         WHERE r.score_state = 'SCORED' AND r.resting_heart_rate IS NOT NULL
                           AND d IS NOT NULL AND d BETWEEN ? AND ? ORDER BY d, k"
                    }
                }
            }
            Metric::SleepPerformance => {
                "SELECT COALESCE(c.day, s.day) AS d, s.sleep_performance_percentage AS v, s.start AS k
                 FROM sleep s LEFT JOIN cycle c ON c.id = s.cycle_id
                 WHERE s.nap = 0 AND s.score_state = 'SCORED'
                   AND s.sleep_performance_percentage IS NOT NULL
                   AND d BETWEEN ? AND ? ORDER BY d, k"
            }
            Metric::SleepHours => {
                "SELECT COALESCE(c.day, s.day) AS d,
                   (s.total_light_sleep_time_milli + s.total_slow_wave_sleep_time_milli
                    + s.total_rem_sleep_time_milli) / 3600000.0 AS v, s.start AS k
                 FROM sleep s LEFT JOIN cycle c ON c.id = s.cycle_id
                 WHERE s.nap = 0 AND s.score_state = 'SCORED'
                   AND s.total_light_sleep_time_milli IS NOT NULL
                   AND d BETWEEN ? AND ? ORDER BY d, k"
            }
            Metric::DayStrain => {
                "SELECT day AS d, strain AS v, start AS k FROM cycle
                 WHERE score_state = 'SCORED' AND strain IS NOT NULL AND d BETWEEN ? AND ?
                 ORDER BY d, k"
            }
            Metric::WorkoutStrain => {
                "SELECT day AS d, MAX(strain) AS v, day AS k FROM workout
                 WHERE score_state = 'SCORED' AND strain IS NOT NULL AND d BETWEEN ? AND ?
                 GROUP BY day ORDER BY d"
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DayValue {
    pub day: NaiveDate,
    pub value: f64,
}

impl Store {
    /// One value per local day between `from` and `to` (inclusive) that has a scored record.
    pub async fn daily_series(
        &self,
        metric: Metric,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayValue>> {
        let rows = sqlx::query(metric.sql())
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut series: Vec<DayValue> = Vec::with_capacity(rows.len());
        for row in rows {
            let day: String = row.try_get("d")?;
            let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .map_err(|e| Error::Corrupt(format!("stored day {day:?}: {e}")))?;
            let value: f64 = row.try_get("v")?;
            // Rows come ordered by day then tiebreak, so the last one of a day wins.
            match series.last_mut() {
                Some(last) if last.day == day => last.value = value,
                _ => series.push(DayValue { day, value }),
            }
        }
        Ok(series)
    }

    /// The most recent scored value of a metric.
    pub async fn latest(&self, metric: Metric) -> Result<Option<DayValue>> {
        // Days are stored as ISO text; chrono's MIN/MAX print with signs that do not sort.
        let (first, last) = (
            NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default(),
            NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default(),
        );
        let all = self.daily_series(metric, first, last).await?;
        Ok(all.last().copied())
    }
}
