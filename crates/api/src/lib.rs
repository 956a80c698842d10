//! The person's WHOOP history for AI assistants and their own scripts, answered from the local
//! SQLite file opened read-only: an MCP server over stdio (`mcp`, for Claude Desktop and other
//! MCP clients) and a loopback REST API (`rest`). Both call the same reads (`reads`) and speak the
//! same types (`model`), so a tool and its endpoint can never disagree.

pub mod claude;
pub mod mcp;
pub mod model;
pub mod reads;
pub mod rest;

pub use reads::Reader;

/// Why a read failed: the caller's input (told back as it is) or the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("reading the local database: {0}")]
    Store(#[from] store::Error),
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::Store(_) => "internal",
        }
    }
}

/// Opens the database for `mcp` and `serve-api`: read-only, never creating it.
pub async fn open_reader(database: &std::path::Path) -> Result<Reader, Error> {
    Ok(Reader::new(store::Store::open_read_only(database).await?))
}
