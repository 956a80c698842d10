//! The Parquet export: one file per collection with typed columns (UTC timestamps as
//! `timestamp[ms, UTC]`, local days as `date32`, numbers as `int64`/`float64`, flags as `bool`),
//! zstd-compressed, so pandas, polars and DuckDB read the right types without being told.
//!
//! The columns are the CSV export's (`Store::tabular_columns`); only their encoding differs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use whoop::types::parse_timestamp;
use whoop::Collection;

use crate::error::{Error, Result};
use crate::export::{Column, DayRange, Kind, Progress, Tally};
use crate::records::table_of;
use crate::Store;

/// Rows per record batch (and so at most per row group).
const BATCH: usize = 8192;

fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Int => DataType::Int64,
        Kind::Real => DataType::Float64,
        Kind::Text => DataType::Utf8,
        Kind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        Kind::Date => DataType::Date32,
        Kind::Bool => DataType::Boolean,
    }
}

fn parquet_error(e: impl std::fmt::Display) -> Error {
    Error::Parquet(e.to_string())
}

/// Days since 1970-01-01, Arrow's `date32`.
fn date32(text: &str) -> Result<i32> {
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| Error::Corrupt(format!("stored day {text:?}: {e}")))?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch is a date");
    Ok((day - epoch).num_days() as i32)
}

fn millis(text: &str) -> Result<i64> {
    parse_timestamp(text)
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| Error::Corrupt(format!("stored time {text:?} is not a timestamp")))
}

/// One column of a batch, filled from the rows' values at `index`.
fn column_array(rows: &[SqliteRow], index: usize, kind: Kind) -> Result<ArrayRef> {
    Ok(match kind {
        Kind::Int => {
            let mut b = Int64Builder::with_capacity(rows.len());
            for row in rows {
                b.append_option(row.try_get::<Option<i64>, _>(index)?);
            }
            Arc::new(b.finish())
        }
        Kind::Real => {
            let mut b = Float64Builder::with_capacity(rows.len());
            for row in rows {
                b.append_option(row.try_get::<Option<f64>, _>(index)?);
            }
            Arc::new(b.finish())
        }
        Kind::Bool => {
            let mut b = BooleanBuilder::with_capacity(rows.len());
            for row in rows {
                b.append_option(row.try_get::<Option<i64>, _>(index)?.map(|v| v != 0));
            }
            Arc::new(b.finish())
        }
        Kind::Text => {
            let mut b = StringBuilder::new();
            for row in rows {
                b.append_option(row.try_get::<Option<String>, _>(index)?);
            }
            Arc::new(b.finish())
        }
        Kind::Timestamp => {
            let mut b = TimestampMillisecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
            for row in rows {
                let value = row.try_get::<Option<String>, _>(index)?;
                b.append_option(value.as_deref().map(millis).transpose()?);
            }
            Arc::new(b.finish())
        }
        Kind::Date => {
            let mut b = Date32Builder::with_capacity(rows.len());
            for row in rows {
                let value = row.try_get::<Option<String>, _>(index)?;
                b.append_option(value.as_deref().map(date32).transpose()?);
            }
            Arc::new(b.finish())
        }
    })
}

impl Store {
    /// Writes `cycle.parquet`, `sleep.parquet`, `recovery.parquet` and `workout.parquet` into
    /// `dir`, the records of `range` only, oldest first.
    pub async fn export_parquet(
        &self,
        dir: &Path,
        range: &DayRange,
        progress: Progress<'_>,
    ) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let mut tally = Tally::start(self, range, progress).await?;
        let mut written = Vec::new();
        for collection in Collection::ALL {
            let (table, _) = table_of(collection);
            let columns = self.tabular_columns(collection).await?;
            let rows = self.tabular_rows(collection, &columns, range).await?;
            let path = dir.join(format!("{table}.parquet"));
            write_file(&path, &columns, &rows, &mut tally)?;
            written.push(path);
        }
        tally.report();
        Ok(written)
    }
}

fn write_file(
    path: &Path,
    columns: &[Column],
    rows: &[SqliteRow],
    tally: &mut Tally,
) -> Result<()> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, data_type(c.kind), c.nullable))
            .collect::<Vec<_>>(),
    ));
    let file = std::fs::File::create(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(format!("VitalTrends {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer =
        ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(parquet_error)?;
    for chunk in rows.chunks(BATCH) {
        let arrays = columns
            .iter()
            .enumerate()
            .map(|(i, c)| column_array(chunk, i, c.kind))
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(parquet_error)?;
        writer.write(&batch).map_err(parquet_error)?;
        for _ in chunk {
            tally.one();
        }
    }
    writer.close().map_err(parquet_error)?;
    Ok(())
}
