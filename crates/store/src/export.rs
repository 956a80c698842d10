//! Exports: WHOOP-shaped JSON, one CSV file per collection, or one Parquet file per collection,
//! for all time or a range of local WHOOP days, reporting progress as they go.
//!
//! The JSON export writes each record exactly as WHOOP sent it (WHOOP's field names, unknown
//! fields kept), grouped by collection in the same shape as the simulator's `/_sim/dump`. The CSV
//! and Parquet exports write the typed columns the dashboard reads, so a spreadsheet or a data
//! frame sees the same numbers; they share one column list (`tabular_columns`), so the two never
//! disagree about what a collection's columns are. The columns are documented in docs/EXPORT.md.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use whoop::Collection;

use crate::error::{Error, Result};
use crate::records::table_of;
use crate::Store;

/// An inclusive range of local WHOOP days (a cycle's or sleep's `day`, a workout's date); an
/// open end reaches to the first or last record. A recovery belongs to its cycle's day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRange {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl DayRange {
    /// Every day.
    pub const ALL: DayRange = DayRange {
        from: None,
        to: None,
    };

    pub fn new(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<DayRange> {
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                return Err(Error::Range(format!(
                    "the range starts ({from}) after it ends ({to})"
                )));
            }
        }
        Ok(DayRange { from, to })
    }

    pub fn is_all(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

    /// The bounds as the text `day` columns hold (ISO dates compare as text).
    pub(crate) fn bounds(&self) -> (String, String) {
        (
            self.from
                .map_or_else(|| "0000-01-01".to_string(), |d| d.to_string()),
            self.to
                .map_or_else(|| "9999-12-31".to_string(), |d| d.to_string()),
        )
    }

    /// A condition on `collection`'s table selecting its records in the range, with the bounds
    /// bound as `?1` and `?2`. Unbounded, it is "every row", so a recovery whose cycle and sleep
    /// are not stored is still exported.
    pub(crate) fn condition(&self, collection: Collection) -> &'static str {
        if self.is_all() {
            return "(1 OR ?1 OR ?2)";
        }
        match collection {
            Collection::Recovery => {
                "(cycle_id IN (SELECT id FROM cycle WHERE day BETWEEN ?1 AND ?2)
                  OR (cycle_id NOT IN (SELECT id FROM cycle)
                      AND sleep_id IN (SELECT id FROM sleep WHERE day BETWEEN ?1 AND ?2)))"
            }
            _ => "(day BETWEEN ?1 AND ?2)",
        }
    }
}

/// How far an export is: records written so far out of all it will write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExportProgress {
    pub done: u64,
    pub total: u64,
}

/// Called as an export advances (every few hundred records and at the end).
pub type Progress<'a> = &'a (dyn Fn(ExportProgress) + Send + Sync);

/// The formats an export can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Json,
    Parquet,
}

/// What a column holds, so CSV and Parquet agree and Parquet gets real types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Real,
    Text,
    /// A UTC instant, stored as WHOOP's text (`2024-03-05T04:10:00.000Z`).
    Timestamp,
    /// A local date (`2024-03-05`).
    Date,
    Bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub name: String,
    pub kind: Kind,
    pub nullable: bool,
    /// The SQL that reads it.
    pub select: String,
}

const TIMESTAMPS: [&str; 4] = ["created_at", "updated_at", "start", "end"];
const BOOLS: [&str; 2] = ["nap", "user_calibrating"];
/// Rows between two progress reports.
const PROGRESS_EVERY: u64 = 500;

pub(crate) fn order_of(collection: Collection) -> &'static str {
    match collection {
        Collection::Recovery => "cycle_id",
        _ => "start, id",
    }
}

/// Counts what an export of `range` will write, for the progress total.
async fn total_in(store: &Store, range: &DayRange) -> Result<u64> {
    let (from, to) = range.bounds();
    let mut total = 0;
    for collection in Collection::ALL {
        let (table, _) = table_of(collection);
        let sql = format!(
            "SELECT COUNT(*) FROM {table} WHERE {}",
            range.condition(collection)
        );
        let n: i64 = sqlx::query_scalar(&sql)
            .bind(&from)
            .bind(&to)
            .fetch_one(&store.pool)
            .await?;
        total += n as u64;
    }
    Ok(total)
}

/// Counts records as they are written and reports every few hundred.
pub(crate) struct Tally<'a> {
    done: u64,
    total: u64,
    progress: Progress<'a>,
}

impl<'a> Tally<'a> {
    pub(crate) async fn start(
        store: &Store,
        range: &DayRange,
        progress: Progress<'a>,
    ) -> Result<Tally<'a>> {
        let total = total_in(store, range).await?;
        progress(ExportProgress { done: 0, total });
        Ok(Tally {
            done: 0,
            total,
            progress,
        })
    }

    pub(crate) fn one(&mut self) {
        self.done += 1;
        if self.done.is_multiple_of(PROGRESS_EVERY) {
            self.report();
        }
    }

    pub(crate) fn report(&self) {
        (self.progress)(ExportProgress {
            done: self.done.min(self.total),
            total: self.total,
        });
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })
}

impl Store {
    /// Every record as JSON, in WHOOP's shape; see `export_json_range`.
    pub async fn export_json(&self) -> Result<serde_json::Value> {
        self.export_json_range(&DayRange::ALL, &|_| {}).await
    }

    /// `{"cycle": [...], "sleep": [...], "recovery": [...], "workout": [...], "profile": {...},
    /// "body_measurement": {...}}`, newest first, the records of `range` only.
    pub async fn export_json_range(
        &self,
        range: &DayRange,
        progress: Progress<'_>,
    ) -> Result<serde_json::Value> {
        let mut tally = Tally::start(self, range, progress).await?;
        let (from, to) = range.bounds();
        let mut out = serde_json::Map::new();
        for collection in Collection::ALL {
            let (table, key) = table_of(collection);
            let order = match collection {
                Collection::Recovery => "cycle_id DESC",
                _ => "start DESC, id DESC",
            };
            let sql = format!(
                "SELECT raw, {key} FROM {table} WHERE {} ORDER BY {order}",
                range.condition(collection)
            );
            let rows = sqlx::query(&sql)
                .bind(&from)
                .bind(&to)
                .fetch_all(&self.pool)
                .await?;
            let mut records = Vec::with_capacity(rows.len());
            for row in rows {
                records.push(parse_raw(row.try_get("raw")?)?);
                tally.one();
            }
            out.insert(
                collection.as_str().into(),
                serde_json::Value::Array(records),
            );
        }
        for table in ["profile", "body_measurement"] {
            let raw: Option<String> =
                sqlx::query_scalar(&format!("SELECT raw FROM {table} LIMIT 1"))
                    .fetch_optional(&self.pool)
                    .await?;
            let value = raw.map(parse_raw).transpose()?;
            out.insert(table.into(), value.unwrap_or(serde_json::Value::Null));
        }
        tally.report();
        Ok(serde_json::Value::Object(out))
    }

    /// Writes the JSON export of `range` to `path`.
    pub async fn export_json_file(
        &self,
        path: &Path,
        range: &DayRange,
        progress: Progress<'_>,
    ) -> Result<PathBuf> {
        let json = self.export_json_range(range, progress).await?;
        let text = serde_json::to_string_pretty(&json)
            .map_err(|e| Error::Corrupt(format!("JSON export: {e}")))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dir(dir)?;
        }
        std::fs::write(path, text).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(path.to_path_buf())
    }

    /// Writes `cycle.csv`, `sleep.csv`, `recovery.csv` and `workout.csv` into `dir`.
    pub async fn export_csv(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        self.export_csv_range(dir, &DayRange::ALL, &|_| {}).await
    }

    /// Writes one CSV file per collection into `dir`, the records of `range` only, oldest
    /// first. Empty cells are missing values; booleans are 0/1.
    pub async fn export_csv_range(
        &self,
        dir: &Path,
        range: &DayRange,
        progress: Progress<'_>,
    ) -> Result<Vec<PathBuf>> {
        create_dir(dir)?;
        let mut tally = Tally::start(self, range, progress).await?;
        let mut written = Vec::new();
        for collection in Collection::ALL {
            let (table, _) = table_of(collection);
            let columns = self.tabular_columns(collection).await?;
            let rows = self.tabular_rows(collection, &columns, range).await?;
            let path = dir.join(format!("{table}.csv"));
            let mut writer = csv::Writer::from_path(&path)?;
            writer.write_record(columns.iter().map(|c| c.name.as_str()))?;
            for row in rows {
                let mut fields = Vec::with_capacity(columns.len());
                for (i, column) in columns.iter().enumerate() {
                    fields.push(csv_field(&row, i, column.kind)?);
                }
                writer.write_record(&fields)?;
                tally.one();
            }
            writer.flush().map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
            written.push(path);
        }
        tally.report();
        Ok(written)
    }

    /// Exports `range` in `format` to `out`: a file for JSON, a directory for CSV and Parquet
    /// (one file per collection). Returns the files written.
    pub async fn export_to(
        &self,
        format: ExportFormat,
        out: &Path,
        range: &DayRange,
        progress: Progress<'_>,
    ) -> Result<Vec<PathBuf>> {
        match format {
            ExportFormat::Json => Ok(vec![self.export_json_file(out, range, progress).await?]),
            ExportFormat::Csv => self.export_csv_range(out, range, progress).await,
            ExportFormat::Parquet => self.export_parquet(out, range, progress).await,
        }
    }

    /// The exported columns of a collection: its table's typed columns (not `raw`), and for
    /// recoveries the `day` of their cycle, which the table does not keep.
    pub(crate) async fn tabular_columns(&self, collection: Collection) -> Result<Vec<Column>> {
        let (table, _) = table_of(collection);
        let info: Vec<(String, String, i64)> = sqlx::query_as(&format!(
            r#"SELECT name, type, "notnull" FROM pragma_table_info('{table}') ORDER BY cid"#
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut columns: Vec<Column> = info
            .into_iter()
            .filter(|(name, _, _)| name != "raw")
            .map(|(name, declared, not_null)| {
                let kind = if TIMESTAMPS.contains(&name.as_str()) {
                    Kind::Timestamp
                } else if name == "day" {
                    Kind::Date
                } else if BOOLS.contains(&name.as_str()) {
                    Kind::Bool
                } else {
                    match declared.to_ascii_uppercase().as_str() {
                        "INTEGER" => Kind::Int,
                        "REAL" => Kind::Real,
                        _ => Kind::Text,
                    }
                };
                Column {
                    select: format!("\"{name}\""),
                    name,
                    kind,
                    nullable: not_null == 0,
                }
            })
            .collect();
        if collection == Collection::Recovery {
            columns.push(Column {
                name: "day".into(),
                kind: Kind::Date,
                nullable: true,
                select: "COALESCE((SELECT day FROM cycle WHERE cycle.id = recovery.cycle_id),
                   (SELECT day FROM sleep WHERE sleep.id = recovery.sleep_id))"
                    .into(),
            });
        }
        Ok(columns)
    }

    /// The rows of `columns` in `range`, oldest first.
    pub(crate) async fn tabular_rows(
        &self,
        collection: Collection,
        columns: &[Column],
        range: &DayRange,
    ) -> Result<Vec<SqliteRow>> {
        let (table, _) = table_of(collection);
        let select = columns
            .iter()
            .map(|c| c.select.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {select} FROM {table} WHERE {} ORDER BY {}",
            range.condition(collection),
            order_of(collection)
        );
        let (from, to) = range.bounds();
        Ok(sqlx::query(&sql)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?)
    }
}

/// One CSV cell: empty for a missing value, numbers in their shortest exact form (SQLite's own
/// text conversion keeps only 15 digits, which would change some values), booleans as
/// `true`/`false`, times and days as stored (UTC `...Z` instants, local `YYYY-MM-DD` days).
fn csv_field(row: &SqliteRow, index: usize, kind: Kind) -> Result<String> {
    Ok(match kind {
        Kind::Int => row.try_get::<Option<i64>, _>(index)?.map(|v| v.to_string()),
        Kind::Real => row
            .try_get::<Option<f64>, _>(index)?
            .map(|v| format!("{v:?}")),
        Kind::Bool => row
            .try_get::<Option<i64>, _>(index)?
            .map(|v| (v != 0).to_string()),
        Kind::Text | Kind::Timestamp | Kind::Date => row.try_get::<Option<String>, _>(index)?,
    }
    .unwrap_or_default())
}

fn parse_raw(raw: String) -> Result<serde_json::Value> {
    serde_json::from_str(&raw).map_err(|e| Error::Corrupt(format!("stored record JSON: {e}")))
}
