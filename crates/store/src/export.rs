//! Exports: everything as WHOOP-shaped JSON, or one CSV file per collection.
//!
//! The JSON export writes each record exactly as WHOOP sent it (WHOOP's field names, unknown
//! fields kept), grouped by collection in the same shape as the simulator's `/_sim/dump`. The CSV
//! export writes the typed columns the dashboard reads, so a spreadsheet sees the same numbers.

use std::path::{Path, PathBuf};

use sqlx::Row;
use whoop::Collection;

use crate::error::{Error, Result};
use crate::records::table_of;
use crate::Store;

impl Store {
    /// `{"cycle": [...], "sleep": [...], "recovery": [...], "workout": [...], "profile": {...},
    /// "body_measurement": {...}}`, newest first.
    pub async fn export_json(&self) -> Result<serde_json::Value> {
        let mut out = serde_json::Map::new();
        for collection in Collection::ALL {
            let (table, key) = table_of(collection);
            let order = match collection {
                Collection::Recovery => "cycle_id DESC",
                _ => "start DESC, id DESC",
            };
            let sql = format!("SELECT raw, {key} FROM {table} ORDER BY {order}");
            let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
            let mut records = Vec::with_capacity(rows.len());
            for row in rows {
                records.push(parse_raw(row.try_get("raw")?)?);
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
        Ok(serde_json::Value::Object(out))
    }

    /// Writes `cycle.csv`, `sleep.csv`, `recovery.csv` and `workout.csv` into `dir`.
    pub async fn export_csv(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let mut written = Vec::new();
        for collection in Collection::ALL {
            let (table, _) = table_of(collection);
            let columns: Vec<String> =
                sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .filter(|name: &String| name != "raw")
                    .collect();
            let select = columns
                .iter()
                .map(|c| format!("CAST(\"{c}\" AS TEXT)"))
                .collect::<Vec<_>>()
                .join(", ");
            let order = match collection {
                Collection::Recovery => "cycle_id",
                _ => "start",
            };
            let sql = format!("SELECT {select} FROM {table} ORDER BY {order}");
            let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;

            let path = dir.join(format!("{table}.csv"));
            let mut writer = csv::Writer::from_path(&path)?;
            writer.write_record(&columns)?;
            for row in rows {
                let mut fields = Vec::with_capacity(columns.len());
                for i in 0..columns.len() {
                    fields.push(row.try_get::<Option<String>, _>(i)?.unwrap_or_default());
                }
                writer.write_record(&fields)?;
            }
            writer.flush().map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
            written.push(path);
        }
        Ok(written)
    }
}

fn parse_raw(raw: String) -> Result<serde_json::Value> {
    serde_json::from_str(&raw).map_err(|e| Error::Corrupt(format!("stored record JSON: {e}")))
}
