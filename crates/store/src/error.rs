//! The store's one error type.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
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
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::Db(_) | Error::Migrate(_) => "database",
            Error::Io { .. } | Error::Csv(_) => "io",
            Error::Corrupt(_) => "corrupt",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
