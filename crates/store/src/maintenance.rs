//! Looking after the data itself: where it lives and how much there is, which WHOOP days are
//! complete, deleting a range of days, and rebuilding the typed tables from the raw JSON every
//! record keeps (what a schema change needs, without asking WHOOP again).

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::{Sqlite, Transaction};
use whoop::{BodyMeasurement, Collection, Cycle, Fetched, Profile, Recovery, Sleep, Workout};

use crate::changes::{forget_old_changes, log_change};
use crate::error::{Error, Result};
use crate::export::{order_of, DayRange};
use crate::records::{table_of, upsert_all, StoreRecord};
use crate::{Counts, Store};

/// Where the data lives and how much of it there is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataSummary {
    /// The database file (None for an in-memory store).
    pub path: Option<PathBuf>,
    /// The database with its write-ahead log, in bytes.
    pub size_bytes: u64,
    pub counts: Counts,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
}

/// How complete one part of a WHOOP day (its cycle, main sleep or recovery) is, or the whole
/// day: missing beats pending beats unscorable beats scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Completeness {
    Scored,
    Unscorable,
    Pending,
    Missing,
}

impl Completeness {
    fn of_state(score_state: &str) -> Completeness {
        match score_state {
            "SCORED" => Completeness::Scored,
            "UNSCORABLE" => Completeness::Unscorable,
            _ => Completeness::Pending,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Completeness::Scored => "scored",
            Completeness::Unscorable => "unscorable",
            Completeness::Pending => "pending",
            Completeness::Missing => "missing",
        }
    }
}

/// One WHOOP day of the completeness calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DayCompleteness {
    pub day: NaiveDate,
    pub state: Completeness,
    pub cycle: Completeness,
    pub sleep: Completeness,
    pub recovery: Completeness,
}

/// Per day, the best state any of its records of one kind has (two cycles can share a day).
fn best_by_day(rows: Vec<(String, String)>) -> BTreeMap<NaiveDate, Completeness> {
    let mut out: BTreeMap<NaiveDate, Completeness> = BTreeMap::new();
    for (day, state) in rows {
        let Ok(day) = day.parse::<NaiveDate>() else {
            continue;
        };
        let state = Completeness::of_state(&state);
        out.entry(day)
            .and_modify(|s| *s = (*s).min(state))
            .or_insert(state);
    }
    out
}

impl Store {
    /// Where the data lives, its size, records per collection and first and last day.
    pub async fn data_summary(&self) -> Result<DataSummary> {
        let size_bytes = self.path().map_or(0, |path| {
            ["", "-wal"]
                .iter()
                .map(|suffix| {
                    let mut name = path.as_os_str().to_os_string();
                    name.push(suffix);
                    std::fs::metadata(PathBuf::from(name)).map_or(0, |m| m.len())
                })
                .sum()
        });
        let (first, last): (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT MIN(day), MAX(day) FROM (SELECT day FROM cycle UNION ALL
               SELECT day FROM sleep UNION ALL SELECT day FROM workout)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(DataSummary {
            path: self.path().map(|p| p.to_path_buf()),
            size_bytes,
            counts: self.counts().await?,
            first_day: first.and_then(|d| d.parse().ok()),
            last_day: last.and_then(|d| d.parse().ok()),
        })
    }

    /// Every day from `from` to `to` (inclusive) with the state of its cycle, main sleep and
    /// recovery. A day without one of them is missing, except a recovery after an unscorable
    /// sleep (WHOOP may have none to give) and the sleep and recovery of the open newest cycle
    /// (pending: the night is not over or not uploaded yet).
    pub async fn completeness(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayCompleteness>> {
        let range = DayRange::new(Some(from), Some(to))?;
        let (lo, hi) = range.bounds();
        let cycles: Vec<(String, String)> =
            sqlx::query_as("SELECT day, score_state FROM cycle WHERE day BETWEEN ? AND ?")
                .bind(&lo)
                .bind(&hi)
                .fetch_all(&self.pool)
                .await?;
        let sleeps: Vec<(String, String)> = sqlx::query_as(
            "SELECT day, score_state FROM sleep WHERE NOT nap AND day BETWEEN ? AND ?",
        )
        .bind(&lo)
        .bind(&hi)
        .fetch_all(&self.pool)
        .await?;
        let recoveries: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.day, r.score_state FROM recovery r JOIN cycle c ON c.id = r.cycle_id
             WHERE c.day BETWEEN ? AND ?",
        )
        .bind(&lo)
        .bind(&hi)
        .fetch_all(&self.pool)
        .await?;
        // The newest cycle, while still open: its night may not be over or uploaded yet, so
        // WHOOP having no sleep or recovery for its day is not a gap but work in progress.
        let open_day = self
            .newest_cycle()
            .await?
            .filter(|newest| newest.open)
            .map(|newest| newest.day);
        let (cycles, sleeps, recoveries) = (
            best_by_day(cycles),
            best_by_day(sleeps),
            best_by_day(recoveries),
        );
        let mut out = Vec::new();
        for day in from.iter_days().take_while(|d| *d <= to) {
            let not_yet = if open_day == Some(day) {
                Completeness::Pending
            } else {
                Completeness::Missing
            };
            let cycle = cycles.get(&day).copied().unwrap_or(Completeness::Missing);
            let sleep = sleeps.get(&day).copied().unwrap_or(not_yet);
            let recovery = match recoveries.get(&day) {
                Some(state) => *state,
                None if sleep == Completeness::Unscorable => Completeness::Unscorable,
                None => not_yet,
            };
            out.push(DayCompleteness {
                day,
                state: cycle.max(sleep).max(recovery),
                cycle,
                sleep,
                recovery,
            });
        }
        Ok(out)
    }

    /// Deletes every record of the days `range` covers (both ends required): cycles, sleeps
    /// (naps too) and workouts of those days and their recoveries. Noted in the change log, so
    /// a Force Sync already under way does not bring them back; a re-fetch of the days does.
    pub async fn delete_range(&self, range: &DayRange) -> Result<Counts> {
        if range.from.is_none() || range.to.is_none() {
            return Err(Error::Range(
                "deleting a range needs both its first and last day".into(),
            ));
        }
        let (from, to) = range.bounds();
        let mut tx = self.pool.begin().await?;
        forget_old_changes(&mut tx).await?;
        let mut deleted = Counts::default();
        // Recoveries first: which are in range is read through their cycles and sleeps.
        for collection in [
            Collection::Recovery,
            Collection::Cycle,
            Collection::Sleep,
            Collection::Workout,
        ] {
            let (table, key) = table_of(collection);
            let condition = range.condition(collection);
            let keys: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT CAST({key} AS TEXT) FROM {table} WHERE {condition}"
            ))
            .bind(&from)
            .bind(&to)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query(&format!("DELETE FROM {table} WHERE {condition}"))
                .bind(&from)
                .bind(&to)
                .execute(&mut *tx)
                .await?;
            for key in &keys {
                log_change(&mut tx, collection.as_str(), key, true).await?;
            }
            let n = keys.len() as u64;
            match collection {
                Collection::Cycle => deleted.cycle = n,
                Collection::Sleep => deleted.sleep = n,
                Collection::Recovery => deleted.recovery = n,
                Collection::Workout => deleted.workout = n,
            }
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Rebuilds every typed table from the raw JSON its rows keep, in one transaction: each
    /// table is emptied and every record written again as if WHOOP had just sent it. A raw
    /// record that no longer parses stops the rebuild with nothing changed. Returns the counts
    /// rebuilt.
    pub async fn rebuild(&self) -> Result<Counts> {
        let mut tx = self.pool.begin().await?;
        let counts = Counts {
            cycle: rebuild_table::<Cycle>(&mut tx).await?,
            sleep: rebuild_table::<Sleep>(&mut tx).await?,
            recovery: rebuild_table::<Recovery>(&mut tx).await?,
            workout: rebuild_table::<Workout>(&mut tx).await?,
        };
        let profiles: Vec<(i64, String)> = sqlx::query_as("SELECT user_id, raw FROM profile")
            .fetch_all(&mut *tx)
            .await?;
        for (user_id, raw) in profiles {
            let p: Profile = parse_record("profile", &raw)?;
            sqlx::query(
                "UPDATE profile SET email = ?, first_name = ?, last_name = ? WHERE user_id = ?",
            )
            .bind(&p.email)
            .bind(&p.first_name)
            .bind(&p.last_name)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        let bodies: Vec<(i64, String)> =
            sqlx::query_as("SELECT user_id, raw FROM body_measurement")
                .fetch_all(&mut *tx)
                .await?;
        for (user_id, raw) in bodies {
            let b: BodyMeasurement = parse_record("body measurement", &raw)?;
            sqlx::query(
                "UPDATE body_measurement SET height_meter = ?, weight_kilogram = ?,
                   max_heart_rate = ? WHERE user_id = ?",
            )
            .bind(b.height_meter)
            .bind(b.weight_kilogram)
            .bind(b.max_heart_rate)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(counts)
    }
}

fn parse_record<T: DeserializeOwned>(what: &str, raw: &str) -> Result<T> {
    serde_json::from_str(raw)
        .map_err(|e| Error::Corrupt(format!("a stored {what} no longer parses: {e}")))
}

async fn rebuild_table<T: StoreRecord + DeserializeOwned>(
    tx: &mut Transaction<'static, Sqlite>,
) -> Result<u64> {
    let (table, _) = table_of(T::COLLECTION);
    let raws: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT raw FROM {table} ORDER BY {}",
        order_of(T::COLLECTION)
    ))
    .fetch_all(&mut **tx)
    .await?;
    let mut items = Vec::with_capacity(raws.len());
    for raw in raws {
        let value: serde_json::Value = parse_record(T::COLLECTION.as_str(), &raw)?;
        items.push(Fetched {
            record: parse_record::<T>(T::COLLECTION.as_str(), &raw)?,
            raw: value,
        });
    }
    sqlx::query(&format!("DELETE FROM {table}"))
        .execute(&mut **tx)
        .await?;
    let counts = upsert_all(tx, &items).await?;
    if counts.written != items.len() as u64 {
        return Err(Error::Corrupt(format!(
            "rebuilding {table}: {} of {} records could not be written back",
            items.len() as u64 - counts.written,
            items.len()
        )));
    }
    Ok(items.len() as u64)
}
