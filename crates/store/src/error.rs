//! The store's one error type.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A read that steps SQLite's rows itself (the day read) failed.
    #[error("database error: {0}")]
    Read(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("could not write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("CSV export failed: {0}")]
    Csv(#[from] csv::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("Parquet export failed: {0}")]
    Parquet(String),
    /// The database is open in another process (the app, `vitaltrends run`).
    #[error("{0}")]
    InUse(String),
    /// A day range that cannot be (it starts after it ends).
    #[error("{0}")]
    Range(String),
    /// A file offered for restore that is not a usable VitalTrends backup; nothing was replaced.
    #[error("{0}")]
    NotABackup(String),
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::Db(_) | Error::Read(_) | Error::Migrate(_) => "database",
            Error::Io { .. } | Error::Csv(_) => "io",
            Error::Corrupt(_) => "corrupt",
            Error::Parquet(_) => "io",
            Error::NotABackup(_) => "not_a_backup",
            Error::Range(_) => "invalid_range",
            Error::InUse(_) => "in_use",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
