//! The relay's one error type. Handlers turn it into a status code (a database failure is a 503 so
//! WHOOP retries); its messages never carry secrets, tokens or bodies because they may be logged.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP client: {0}")]
    Http(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn is_unavailable(&self) -> bool {
        matches!(self, Error::Database(_) | Error::Migrate(_) | Error::Io(_))
    }
}

/// The JSON error bodies the relay answers with; fixed strings so no request data is echoed.
pub(crate) fn json_error(status: StatusCode, code: &'static str) -> Response {
    let body = format!("{{\"error\":\"{code}\"}}");
    let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// What a failed store call means to a client: the relay cannot serve it right now.
pub(crate) fn unavailable(err: &Error) -> Response {
    tracing::warn!(error = %err, "database unavailable");
    json_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if self.is_unavailable() {
            unavailable(&self)
        } else {
            tracing::error!(error = %self, "internal error");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    }
}
