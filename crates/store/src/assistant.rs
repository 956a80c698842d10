//! Reads for the assistant-facing surfaces (the MCP server and the local REST API): one night's
//! sleep in full, workouts with filters, and what the file holds (counts, first and last day,
//! pending and unscorable records, days without a cycle), so an assistant can say when the data
//! is incomplete instead of guessing. The day-by-day series and "today" come from `reads` and
//! `dashboard`, the same ones the dashboard shows.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::Row;
use whoop::types::parse_timestamp;

use crate::dashboard::WorkoutSummary;
use crate::error::{Error, Result};
use crate::{Counts, Store};

const HOUR_MS: f64 = 3_600_000.0;

/// One sleep (the main one or a nap) with everything WHOOP scored about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SleepRecord {
    pub id: String,
    /// The local WHOOP day it counts for (the cycle's day for a main sleep).
    pub day: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub timezone_offset: String,
    pub nap: bool,
    /// SCORED, PENDING_SCORE or UNSCORABLE.
    pub score_state: String,
    pub performance: Option<f64>,
    pub consistency: Option<f64>,
    pub efficiency: Option<f64>,
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

/// Which workouts `workouts_matching` returns.
#[derive(Debug, Clone, Default)]
pub struct WorkoutFilter {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Compared after `normalise_sport` on both sides ("Functional-Fitness" = "functional fitness").
    pub sport: Option<String>,
    pub min_strain: Option<f64>,
    pub max_strain: Option<f64>,
    pub limit: u32,
}

/// Records per score state of one collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScoreStates {
    pub scored: u64,
    pub pending: u64,
    pub unscorable: u64,
}

/// What the file holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Holdings {
    pub counts: Counts,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    pub newest_record: Option<DateTime<Utc>>,
    /// The newest `updated_at` WHOOP gave any record: when WHOOP last changed something we have.
    pub newest_update: Option<DateTime<Utc>>,
    pub cycles: ScoreStates,
    pub sleeps: ScoreStates,
    pub recoveries: ScoreStates,
    pub workouts: ScoreStates,
    pub naps: u64,
    /// Distinct days that have a cycle, between `first_day` and `last_day`.
    pub cycle_days: Vec<NaiveDate>,
}

/// Lower case, `-` and `_` as spaces, single spaces: how sports are compared and shown.
pub fn normalise_sport(name: &str) -> String {
    name.to_lowercase()
        .replace(['-', '_'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Store {
    /// Opens an existing database for reading only: never creates, migrates or writes, so it
    /// never blocks the app's writer (WAL lets readers and the one writer run together). For
    /// `vitaltrends mcp` and the REST API, which may run while the app or a sync writes.
    pub async fn open_read_only(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::Io {
                path: path.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no VitalTrends database here yet: connect and import first",
                ),
            });
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .pragma("mmap_size", crate::MMAP_SIZE)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Store {
            pool,
            path: Some(path.to_path_buf()),
        })
    }

    /// The newest local day with any record: where "the last 7 days" end.
    pub async fn latest_day(&self) -> Result<Option<NaiveDate>> {
        let day: Option<String> = sqlx::query_scalar(
            "SELECT MAX(d) FROM (SELECT MAX(day) AS d FROM cycle UNION ALL
               SELECT MAX(day) FROM sleep UNION ALL SELECT MAX(day) FROM workout)",
        )
        .fetch_one(&self.pool)
        .await?;
        day.as_deref().map(parse_day).transpose()
    }

    /// The day the newest main sleep counts for.
    pub async fn latest_sleep_day(&self) -> Result<Option<NaiveDate>> {
        let day: Option<String> = sqlx::query_scalar(
            "SELECT COALESCE(c.day, s.day) FROM sleep s LEFT JOIN cycle c ON c.id = s.cycle_id
             WHERE s.nap = 0 ORDER BY s.start DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?
        .flatten();
        day.as_deref().map(parse_day).transpose()
    }

    /// The sleeps that count for a local day: its main sleep first, then naps by start.
    pub async fn sleeps_of_day(&self, day: NaiveDate) -> Result<Vec<SleepRecord>> {
        let rows = sqlx::query(
            r#"SELECT s.id, COALESCE(c.day, s.day) AS d, s.start, s."end", s.timezone_offset,
                 s.nap, s.score_state, s.sleep_performance_percentage AS perf,
                 s.sleep_consistency_percentage AS cons, s.sleep_efficiency_percentage AS eff,
                 s.respiratory_rate, s.total_in_bed_time_milli AS in_bed,
                 s.total_awake_time_milli AS awake, s.total_light_sleep_time_milli AS light,
                 s.total_slow_wave_sleep_time_milli AS deep, s.total_rem_sleep_time_milli AS rem,
                 s.total_no_data_time_milli AS no_data, s.sleep_cycle_count, s.disturbance_count,
                 s.baseline_milli + s.need_from_sleep_debt_milli + s.need_from_recent_strain_milli
                 + s.need_from_recent_nap_milli AS need
               FROM sleep s LEFT JOIN cycle c ON c.id = s.cycle_id AND s.nap = 0
               WHERE (s.nap = 0 AND COALESCE(c.day, s.day) = ?1) OR (s.nap = 1 AND s.day = ?1)
               ORDER BY s.nap, s.start DESC"#,
        )
        .bind(day.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let hours = |column: &str| -> Result<Option<f64>> {
                Ok(row
                    .try_get::<Option<i64>, _>(column)?
                    .map(|ms| ms as f64 / HOUR_MS))
            };
            out.push(SleepRecord {
                id: row.try_get("id")?,
                day: parse_day(&row.try_get::<String, _>("d")?)?,
                start: parse_time(&row.try_get::<String, _>("start")?)?,
                end: parse_time(&row.try_get::<String, _>("end")?)?,
                timezone_offset: row.try_get("timezone_offset")?,
                nap: row.try_get::<i64, _>("nap")? != 0,
                score_state: row.try_get("score_state")?,
                performance: row.try_get("perf")?,
                consistency: row.try_get("cons")?,
                efficiency: row.try_get("eff")?,
                respiratory_rate: row.try_get("respiratory_rate")?,
                in_bed_hours: hours("in_bed")?,
                awake_hours: hours("awake")?,
                light_hours: hours("light")?,
                deep_hours: hours("deep")?,
                rem_hours: hours("rem")?,
                no_data_hours: hours("no_data")?,
                sleep_cycles: row.try_get("sleep_cycle_count")?,
                disturbances: row.try_get("disturbance_count")?,
                need_hours: hours("need")?,
            });
        }
        // Two main sleeps for one day (a re-scored night): the later one counts, as on the
        // dashboard; it sorts first.
        let mut seen_main = false;
        out.retain(|s| s.nap || !std::mem::replace(&mut seen_main, true));
        Ok(out)
    }

    /// Workouts matching `filter`, newest first.
    pub async fn workouts_matching(&self, filter: &WorkoutFilter) -> Result<Vec<WorkoutSummary>> {
        let rows = sqlx::query(
            r#"SELECT id, sport_name, start, "end", timezone_offset, score_state, strain,
                 average_heart_rate, max_heart_rate, distance_meter
               FROM workout WHERE day BETWEEN ? AND ?
                 AND (? IS NULL OR (strain IS NOT NULL AND strain >= ?))
                 AND (? IS NULL OR (strain IS NOT NULL AND strain <= ?))
               ORDER BY start DESC"#,
        )
        .bind(
            filter
                .from
                .map_or("0000-01-01".to_string(), |d| d.to_string()),
        )
        .bind(
            filter
                .to
                .map_or("9999-12-31".to_string(), |d| d.to_string()),
        )
        .bind(filter.min_strain)
        .bind(filter.min_strain)
        .bind(filter.max_strain)
        .bind(filter.max_strain)
        .fetch_all(&self.pool)
        .await?;
        let sport = filter.sport.as_deref().map(normalise_sport);
        let mut out = Vec::new();
        for row in rows {
            if out.len() >= filter.limit as usize {
                break;
            }
            let name: String = row.try_get("sport_name")?;
            // Sports are few and names are short: comparing normalised names here keeps one
            // definition of "the same sport" (normalise_sport) instead of a second one in SQL.
            if sport.as_ref().is_some_and(|s| *s != normalise_sport(&name)) {
                continue;
            }
            let (start, end) = (
                parse_time(&row.try_get::<String, _>("start")?)?,
                parse_time(&row.try_get::<String, _>("end")?)?,
            );
            out.push(WorkoutSummary {
                id: row.try_get("id")?,
                sport: name,
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

    /// What the file holds: counts, day span, freshness, score states, the days with a cycle.
    pub async fn holdings(&self) -> Result<Holdings> {
        let counts = self.counts().await?;
        let first_day = self.first_day().await?;
        let last_day = self.latest_day().await?;
        let newest_update: Option<String> = sqlx::query_scalar(
            "SELECT MAX(t) FROM (SELECT MAX(updated_at) AS t FROM cycle UNION ALL
               SELECT MAX(updated_at) FROM sleep UNION ALL SELECT MAX(updated_at) FROM recovery
               UNION ALL SELECT MAX(updated_at) FROM workout)",
        )
        .fetch_one(&self.pool)
        .await?;
        let mut states = [ScoreStates::default(); 4];
        for (i, table) in ["cycle", "sleep", "recovery", "workout"].iter().enumerate() {
            let rows = sqlx::query(&format!(
                "SELECT score_state, COUNT(*) AS n FROM {table} GROUP BY score_state"
            ))
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                let n = row.try_get::<i64, _>("n")? as u64;
                match row.try_get::<String, _>("score_state")?.as_str() {
                    "SCORED" => states[i].scored += n,
                    "PENDING_SCORE" => states[i].pending += n,
                    _ => states[i].unscorable += n,
                }
            }
        }
        let naps: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sleep WHERE nap = 1")
            .fetch_one(&self.pool)
            .await?;
        let days: Vec<String> = sqlx::query_scalar("SELECT DISTINCT day FROM cycle ORDER BY day")
            .fetch_all(&self.pool)
            .await?;
        Ok(Holdings {
            counts,
            first_day,
            last_day,
            newest_record: self.newest_record_time().await?,
            newest_update: newest_update.as_deref().and_then(parse_timestamp),
            cycles: states[0],
            sleeps: states[1],
            recoveries: states[2],
            workouts: states[3],
            naps: naps as u64,
            cycle_days: days
                .iter()
                .map(|d| parse_day(d))
                .collect::<Result<Vec<_>>>()?,
        })
    }
}

fn parse_day(text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| Error::Corrupt(format!("stored day {text:?}: {e}")))
}

fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    parse_timestamp(text).ok_or_else(|| Error::Corrupt(format!("stored time {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::normalise_sport;

    #[test]
    fn sports_compare_without_case_or_separators() {
        assert_eq!(normalise_sport("Functional-Fitness"), "functional fitness");
        assert_eq!(normalise_sport(" weight_lifting "), "weight lifting");
    }
}
