//! Settings → Data and the completeness calendar, without a desktop around them: where the data
//! lives, exports with progress, backups, deleting a range of days, each WHOOP day's
//! completeness, and re-fetching days. Each function takes the engine and returns the IPC type
//! the webview receives; `data_ipc` adapts them to Tauri commands, tests call them directly.

use std::path::Path;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use store::{DayRange, ExportFormat};
use sync::{Engine, Enqueued};
use ts_rs::TS;

use crate::core::{IpcError, IpcResult};

/// Where the data lives and how much of it there is.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct DataView {
    pub path: String,
    pub size_bytes: f64,
    pub cycles: f64,
    pub sleeps: f64,
    pub recoveries: f64,
    pub workouts: f64,
    /// `YYYY-MM-DD`, local WHOOP days.
    pub first_day: Option<String>,
    pub last_day: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
#[serde(rename_all = "snake_case")]
pub enum ExportFormatKey {
    Csv,
    Json,
    Parquet,
}

/// How far an export is, sent as `export-progress` events.
#[derive(Debug, Clone, Copy, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct ExportProgressView {
    pub done: f64,
    pub total: f64,
}

#[derive(Debug, Clone, Copy, Serialize, TS, PartialEq, Eq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
#[serde(rename_all = "snake_case")]
pub enum DayStateKey {
    Scored,
    Pending,
    Unscorable,
    Missing,
}

impl From<store::Completeness> for DayStateKey {
    fn from(c: store::Completeness) -> Self {
        match c {
            store::Completeness::Scored => DayStateKey::Scored,
            store::Completeness::Pending => DayStateKey::Pending,
            store::Completeness::Unscorable => DayStateKey::Unscorable,
            store::Completeness::Missing => DayStateKey::Missing,
        }
    }
}

/// One cell of the completeness calendar.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct CalendarDay {
    pub day: String,
    pub state: DayStateKey,
    pub cycle: DayStateKey,
    pub sleep: DayStateKey,
    pub recovery: DayStateKey,
}

fn day(text: Option<&str>, what: &str) -> IpcResult<Option<NaiveDate>> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<NaiveDate>().map_err(|_| IpcError {
                code: "invalid_range".into(),
                message: format!("The {what} day ({t}) is not a date."),
            })
        })
        .transpose()
}

fn range(from: Option<&str>, to: Option<&str>) -> IpcResult<DayRange> {
    Ok(DayRange::new(day(from, "first")?, day(to, "last")?)?)
}

pub async fn summary(engine: &Engine) -> IpcResult<DataView> {
    let s = engine.store().data_summary().await?;
    Ok(DataView {
        path: s.path.map(|p| p.display().to_string()).unwrap_or_default(),
        size_bytes: s.size_bytes as f64,
        cycles: s.counts.cycle as f64,
        sleeps: s.counts.sleep as f64,
        recoveries: s.counts.recovery as f64,
        workouts: s.counts.workout as f64,
        first_day: s.first_day.map(|d| d.to_string()),
        last_day: s.last_day.map(|d| d.to_string()),
    })
}

/// The name the save dialog suggests for an export: `vitaltrends-all-<today>` for all time, or
/// `vitaltrends-<from>-to-<to>` for a range; `.json` for JSON, a folder ending in `-csv` or
/// `-parquet` for the formats written one file per collection.
pub fn export_name(
    format: ExportFormatKey,
    from: Option<&str>,
    to: Option<&str>,
    today: NaiveDate,
) -> IpcResult<String> {
    let range = range(from, to)?;
    let span = match (range.from, range.to) {
        (None, None) => format!("all-{today}"),
        (from, to) => format!(
            "{}-to-{}",
            from.map_or_else(|| "start".to_string(), |d| d.to_string()),
            to.map_or_else(|| today.to_string(), |d| d.to_string())
        ),
    };
    Ok(match format {
        ExportFormatKey::Json => format!("vitaltrends-{span}.json"),
        ExportFormatKey::Csv => format!("vitaltrends-{span}-csv"),
        ExportFormatKey::Parquet => format!("vitaltrends-{span}-parquet"),
    })
}

/// The name the save dialog suggests for a backup.
pub fn backup_name(today: NaiveDate) -> String {
    format!("vitaltrends-backup-{today}.db")
}

/// Exports `from..=to` (either may be empty: all time) to `out`: a file for JSON, a folder for
/// CSV and Parquet. Returns the files written.
pub async fn export(
    engine: &Engine,
    format: ExportFormatKey,
    from: Option<&str>,
    to: Option<&str>,
    out: &Path,
    progress: &(dyn Fn(ExportProgressView) + Send + Sync),
) -> IpcResult<Vec<String>> {
    let range = range(from, to)?;
    let format = match format {
        ExportFormatKey::Csv => ExportFormat::Csv,
        ExportFormatKey::Json => ExportFormat::Json,
        ExportFormatKey::Parquet => ExportFormat::Parquet,
    };
    let report = |p: store::ExportProgress| {
        progress(ExportProgressView {
            done: p.done as f64,
            total: p.total as f64,
        })
    };
    let files = engine
        .store()
        .export_to(format, out, &range, &report)
        .await?;
    Ok(files.iter().map(|f| f.display().to_string()).collect())
}

/// A consistent copy of the database at `out`, safe while sync runs.
pub async fn backup(engine: &Engine, out: &Path) -> IpcResult<String> {
    let info = engine.store().backup_to(out).await?;
    Ok(format!(
        "Backed up {} records to {}.",
        info.counts.total(),
        out.display()
    ))
}

/// Deletes the records of `from..=to` (both required).
pub async fn delete_days(engine: &Engine, from: &str, to: &str) -> IpcResult<String> {
    let range = range(Some(from), Some(to))?;
    if range.from.is_none() || range.to.is_none() {
        return Err(IpcError {
            code: "invalid_range".into(),
            message: "Choose the first and last day to delete.".into(),
        });
    }
    let n = engine.store().delete_range(&range).await?;
    Ok(format!(
        "Deleted {} records from {from} to {to}.",
        n.total()
    ))
}

/// Every day of `year` from the first day of history on (a day before it is not missing, it
/// was never there), up to `today` when the year is this one.
pub async fn calendar(engine: &Engine, year: i32, today: NaiveDate) -> IpcResult<Vec<CalendarDay>> {
    let january = NaiveDate::from_ymd_opt(year, 1, 1).ok_or_else(|| IpcError {
        code: "invalid_range".into(),
        message: format!("{year} is not a year VitalTrends can show."),
    })?;
    let Some(first_day) = engine.store().data_summary().await?.first_day else {
        return Ok(Vec::new());
    };
    let first = january.max(first_day);
    let last = NaiveDate::from_ymd_opt(year, 12, 31)
        .expect("a year has a 31 December")
        .min(today);
    if last < first || today.year() < year {
        return Ok(Vec::new());
    }
    let days = engine.store().completeness(first, last).await?;
    Ok(days
        .into_iter()
        .map(|d| CalendarDay {
            day: d.day.to_string(),
            state: d.state.into(),
            cycle: d.cycle.into(),
            sleep: d.sleep.into(),
            recovery: d.recovery.into(),
        })
        .collect())
}

/// Queues "Re-fetch these days". Returns whether it was queued (false: merged into one already
/// waiting).
pub async fn refetch(engine: &Engine, from: &str, to: &str) -> IpcResult<bool> {
    let (Some(from), Some(to)) = (day(Some(from), "first")?, day(Some(to), "last")?) else {
        return Err(IpcError {
            code: "invalid_range".into(),
            message: "Choose the days to re-fetch.".into(),
        });
    };
    engine.ensure_syncable().await?;
    Ok(engine.request_refetch(from, to)? == Enqueued::Queued)
}
