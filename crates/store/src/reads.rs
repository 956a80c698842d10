//! Day-by-day reads: the one place the dashboard, the MCP tools and the REST API get metrics per
//! day from.
//!
//! Each metric is one value per local WHOOP day (see `day`), only from scored records: a pending
//! score is absent from a series, never a zero. A read asks for several metrics at once and costs
//! one query per table they come from (recovery, sleep, cycle, workout), so a dashboard or a
//! five-year summary of every metric is four queries, not one per metric.
//!
//! The four queries run side by side, each on a connection of the store's pool, and step
//! SQLite's rows directly (rusqlite over the pooled connection's handle) on a blocking thread.
//! A five-year dashboard is 25,000 values: through sqlx each value cost about as much as SQLite
//! took to find it (0.35 µs), and packing the rows into JSON inside SQLite instead spent half the
//! query formatting reals as text. Stepped directly, a value is a read of eight bytes, exactly
//! as stored, and hours are whole milliseconds divided here.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::Sqlite;

use crate::dashboard::SleepStages;
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
}

/// The table a metric is read from. A day read runs one query per table its metrics need,
/// returning every metric of that table at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Recovery,
    Sleep,
    Cycle,
    Workout,
}

impl Metric {
    fn source(self) -> Source {
        match self {
            Metric::Recovery
            | Metric::Hrv
            | Metric::RestingHeartRate
            | Metric::Spo2
            | Metric::SkinTemp => Source::Recovery,
            Metric::SleepPerformance
            | Metric::SleepHours
            | Metric::SleepNeedHours
            | Metric::RespiratoryRate => Source::Sleep,
            Metric::DayStrain => Source::Cycle,
            Metric::WorkoutStrain => Source::Workout,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl Metric {
    /// This metric in its table's query (`r` recovery, `s` sleep, `c` cycle, `w` workout), in
    /// the unit it is stored in (see `in_unit`).
    fn expression(self) -> &'static str {
        match self {
            Metric::Recovery => "r.recovery_score",
            Metric::Hrv => "r.hrv_rmssd_milli",
            Metric::RestingHeartRate => "r.resting_heart_rate",
            Metric::Spo2 => "r.spo2_percentage",
            Metric::SkinTemp => "r.skin_temp_celsius",
            Metric::SleepPerformance => "s.sleep_performance_percentage",
            Metric::SleepHours => {
                "s.total_light_sleep_time_milli + s.total_slow_wave_sleep_time_milli
                  + s.total_rem_sleep_time_milli"
            }
            Metric::SleepNeedHours => NEED_MS,
            Metric::RespiratoryRate => "s.respiratory_rate",
            Metric::DayStrain => "c.strain",
            Metric::WorkoutStrain => "MAX(w.strain)",
        }
    }

    /// A value as `expression` reads it, in this metric's unit.
    fn in_unit(self, value: f64) -> f64 {
        match self {
            Metric::SleepHours | Metric::SleepNeedHours => value / HOUR_MS,
            _ => value,
        }
    }
}

const NEED_MS: &str = "s.baseline_milli + s.need_from_sleep_debt_milli
    + s.need_from_recent_strain_milli + s.need_from_recent_nap_milli";

/// The main sleep's stages and need (ms), after a sleep read's metrics.
const STAGE_EXPRESSIONS: [&str; 5] = [
    "s.total_light_sleep_time_milli",
    "s.total_slow_wave_sleep_time_milli",
    "s.total_rem_sleep_time_milli",
    "s.total_awake_time_milli",
    NEED_MS,
];

impl Source {
    /// A row `(day, each expression)` per scored record, oldest first; when two records share a
    /// day they come in the order that lets the later one win, value by value. Only the columns
    /// asked for are read.
    fn sql(self, expressions: &[&str]) -> String {
        let named = expressions
            .iter()
            .enumerate()
            .map(|(i, e)| format!("{e} AS v{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let names = (0..expressions.len())
            .map(|i| format!("v{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        // Every branch yields (d: the day, k: the order within a day, v0, v1, …).
        let rows = match self {
            // A record's day is its cycle's; the sleep's own stands in until the cycle arrives
            // (they agree: the main sleep starts the cycle). Two branches rather than
            // `COALESCE(c.day, s.day) BETWEEN` so each reads an index on day, not every row.
            Source::Recovery => format!(
                "SELECT c.day AS d, r.cycle_id AS k, {named}
                 FROM cycle c JOIN recovery r ON r.cycle_id = c.id
                 WHERE r.score_state = 'SCORED' AND c.day BETWEEN ?1 AND ?2
                 UNION ALL
                 SELECT s.day, r.cycle_id, {all}
                 FROM sleep s JOIN recovery r ON r.sleep_id = s.id
                 WHERE r.score_state = 'SCORED' AND s.day BETWEEN ?1 AND ?2
                   AND NOT EXISTS (SELECT 1 FROM cycle c WHERE c.id = r.cycle_id)",
                all = expressions.join(", "),
            ),
            Source::Sleep => format!(
                "SELECT c.day AS d, s.start AS k, {named}
                 FROM cycle c JOIN sleep s ON s.cycle_id = c.id
                 WHERE s.nap = 0 AND s.score_state = 'SCORED' AND c.day BETWEEN ?1 AND ?2
                 UNION ALL
                 SELECT s.day, s.start, {all}
                 FROM sleep s
                 WHERE s.nap = 0 AND s.score_state = 'SCORED' AND s.day BETWEEN ?1 AND ?2
                   AND NOT EXISTS (SELECT 1 FROM cycle c WHERE c.id = s.cycle_id)",
                all = expressions.join(", "),
            ),
            Source::Cycle => format!(
                "SELECT c.day AS d, c.start AS k, {named} FROM cycle c
                 WHERE c.score_state = 'SCORED' AND c.day BETWEEN ?1 AND ?2"
            ),
            Source::Workout => format!(
                "SELECT w.day AS d, 0 AS k, {named} FROM workout w
                 WHERE w.score_state = 'SCORED' AND w.strain IS NOT NULL
                   AND w.day BETWEEN ?1 AND ?2
                 GROUP BY w.day"
            ),
        };
        format!("SELECT d, {names} FROM ({rows}) ORDER BY d, k")
    }
}

/// What one table answered: the metrics asked of it, whether the stages follow them, and its
/// rows: a day each, with `columns` values each in `values` (row after row).
struct SourceAnswer {
    wanted: Vec<Metric>,
    stages: bool,
    rows: StepRows,
}

#[derive(Default)]
struct StepRows {
    days: Vec<NaiveDate>,
    values: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DayValue {
    pub day: NaiveDate,
    pub value: f64,
}

/// Every requested metric of one local day (None where that day has no scored value), and the
/// main sleep's stages when they were asked for (`Store::days_and_stages`).
#[derive(Debug, Clone, PartialEq)]
pub struct DayMetrics {
    pub day: NaiveDate,
    values: [Option<f64>; Metric::ALL.len()],
    pub stages: Option<SleepStages>,
}

impl DayMetrics {
    pub fn get(&self, metric: Metric) -> Option<f64> {
        self.values[metric.index()]
    }
}

/// The days of a read that carry a value of `metric`, oldest first.
pub fn values_of(days: &[DayMetrics], metric: Metric) -> Vec<DayValue> {
    days.iter()
        .filter_map(|d| d.get(metric).map(|value| DayValue { day: d.day, value }))
        .collect()
}

const HOUR_MS: f64 = 3_600_000.0;

/// `YYYY-MM-DD` as the store writes days, without chrono's format parser: a five-year read
/// parses thousands of them.
fn parse_iso_day(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)
}

/// Runs a day read's query on `connection` (on a blocking thread: it waits for SQLite) and
/// collects each row's day and its `columns` values.
fn step_rows(
    mut connection: PoolConnection<Sqlite>,
    sql: &str,
    range: [&str; 2],
    columns: usize,
) -> Result<StepRows> {
    tokio::runtime::Handle::current().block_on(async {
        let mut handle = connection.lock_handle().await?;
        // SAFETY: `lock_handle` takes the database away from sqlx's worker thread until `handle`
        // drops, and `db` is dropped before it (declared after it). A connection made with
        // `from_handle` does not close the database when it drops.
        let db = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }?;
        let mut statement = db.prepare(sql)?;
        let mut rows = statement.query(range)?;
        let mut answer = StepRows::default();
        while let Some(row) = rows.next()? {
            let text = row.get_ref(0)?.as_str().unwrap_or_default();
            let day = parse_iso_day(text)
                .ok_or_else(|| Error::Corrupt(format!("stored day {text:?}")))?;
            answer.days.push(day);
            for column in 1..=columns {
                answer.values.push(row.get::<_, Option<f64>>(column)?);
            }
        }
        Ok(answer)
    })
}

impl Store {
    /// The given metrics for every local day between `from` and `to` (inclusive) with at least
    /// one of them scored, oldest first: one query per table the metrics come from, however
    /// many metrics and days. The dashboard, the summaries and the comparisons all read here.
    pub async fn days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        metrics: &[Metric],
    ) -> Result<Vec<DayMetrics>> {
        self.read_days(from, to, metrics, false).await
    }

    /// The same with each day's main sleep stages (`DayMetrics::stages`), as the dashboard
    /// charts them.
    pub async fn days_and_stages(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        metrics: &[Metric],
    ) -> Result<Vec<DayMetrics>> {
        self.read_days(from, to, metrics, true).await
    }

    async fn read_days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        metrics: &[Metric],
        stages: bool,
    ) -> Result<Vec<DayMetrics>> {
        // The tables are read side by side: each connection of the pool works on its own
        // thread, so four queries take about as long as the longest one.
        let (from, to) = (from.to_string(), to.to_string());
        let read = |source| self.read_source(source, &from, &to, metrics, stages);
        let answers = tokio::try_join!(
            read(Source::Recovery),
            read(Source::Sleep),
            read(Source::Cycle),
            read(Source::Workout),
        )?;
        let mut days: BTreeMap<NaiveDate, DayMetrics> = BTreeMap::new();
        for answer in [answers.0, answers.1, answers.2, answers.3]
            .into_iter()
            .flatten()
        {
            let SourceAnswer {
                wanted,
                stages,
                rows,
            } = answer;
            let columns = wanted.len() + if stages { STAGE_EXPRESSIONS.len() } else { 0 };
            for (&day, values) in rows.days.iter().zip(rows.values.chunks_exact(columns)) {
                let entry = days.entry(day).or_insert_with(|| DayMetrics {
                    day,
                    values: [None; Metric::ALL.len()],
                    stages: None,
                });
                // Rows come ordered by day then tiebreak, so the last value of a day wins.
                for (metric, value) in wanted.iter().zip(values) {
                    if let Some(value) = value {
                        entry.values[metric.index()] = Some(metric.in_unit(*value));
                    }
                }
                if stages {
                    let stage = &values[wanted.len()..];
                    if let Some(light) = stage[0] {
                        let hours = |v: Option<f64>| v.unwrap_or(0.0) / HOUR_MS;
                        entry.stages = Some(SleepStages {
                            day,
                            light: light / HOUR_MS,
                            deep: hours(stage[1]),
                            rem: hours(stage[2]),
                            awake: hours(stage[3]),
                            need: stage[4].map(|ms| ms / HOUR_MS),
                        });
                    }
                }
            }
        }
        Ok(days
            .into_values()
            .filter(|d| d.values.iter().any(Option::is_some) || d.stages.is_some())
            .collect())
    }

    /// One table's part of a day read, or None when it has nothing to add.
    async fn read_source(
        &self,
        source: Source,
        from: &str,
        to: &str,
        metrics: &[Metric],
        stages: bool,
    ) -> Result<Option<SourceAnswer>> {
        let wanted: Vec<Metric> = Metric::ALL
            .into_iter()
            .filter(|m| m.source() == source && metrics.contains(m))
            .collect();
        let stages = stages && source == Source::Sleep;
        if wanted.is_empty() && !stages {
            return Ok(None);
        }
        let mut expressions: Vec<&str> = wanted.iter().map(|m| m.expression()).collect();
        if stages {
            expressions.extend(STAGE_EXPRESSIONS);
        }
        let sql = source.sql(&expressions);
        let (from, to, columns) = (from.to_owned(), to.to_owned(), expressions.len());
        let connection = self.pool.acquire().await?;
        let rows = tokio::task::spawn_blocking(move || {
            step_rows(connection, &sql, [from.as_str(), to.as_str()], columns)
        })
        .await
        .map_err(|e| Error::Corrupt(format!("a day read's thread ended: {e}")))??;
        Ok(Some(SourceAnswer {
            wanted,
            stages,
            rows,
        }))
    }

    /// One value per local day between `from` and `to` (inclusive) that has a scored record.
    pub async fn daily_series(
        &self,
        metric: Metric,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayValue>> {
        Ok(values_of(&self.days(from, to, &[metric]).await?, metric))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_as_stored_and_nothing_else() {
        assert_eq!(
            parse_iso_day("2024-03-05"),
            NaiveDate::from_ymd_opt(2024, 3, 5)
        );
        for bad in [
            "2024-3-05",
            "2024-02-30",
            "2024/03/05",
            "20a4-03-05",
            "",
            "2024-03-051",
        ] {
            assert_eq!(parse_iso_day(bad), None, "{bad}");
        }
    }
}
