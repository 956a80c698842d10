//! The VitalTrends sync engine, free of any UI: connection state, the token manager, the OAuth
//! callback, and importing WHOOP data into the local store.
//!
//! It reaches the outside world through traits (`SecretStore` for tokens), so the desktop shell,
//! the CLI and tests each plug in their own.

pub mod applier;
mod engine;
mod error;
pub mod events;
mod import;
pub mod loopback;
pub mod members;
mod quota;
pub mod refetch;
pub mod scheduled_backup;
pub mod secrets;
mod settings;
mod state;
mod stream;
mod tokens;

pub use engine::{
    Engine, EngineOptions, Enqueued, LicenceInfo, LoopbackSignIn, Member, RelayLicence, Schedule,
    Status, SyncReport, AUTHORIZATION_TIMEOUT,
};
pub use error::{Error, Result};
pub use events::{
    EngineEvent, JobKind, Notification, NotificationKind, Notifier, Phase, Progress, Retry,
};
pub use secrets::{InsecureFileStore, KeychainStore, MemoryStore, SecretStore};
pub use settings::{Settings, DATABASE_FILE};
pub use state::ConnectionState;
pub use stream::{LiveUpdates, DEVICE_SECRET};
pub use tokens::{TokenHold, TokenManager, LICENCE_SECRET, TOKENS_SECRET};
