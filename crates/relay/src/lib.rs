//! The VitalTrends relay: the one server in the product, thin and safe to run on the public
//! internet. It verifies WHOOP's signed webhooks and keeps them (ids only, never health values) in
//! a per-user event log; it brokers WHOOP token requests so the desktop app never holds the client
//! secret, binding each device to the WHOOP user its tokens belong to; and it streams each device
//! its own user's events (SSE or long poll) with resumable cursors and explicit gaps; and it
//! shares the WHOOP app's rate limits out among desktops by priority (`quota`).
//!
//! ```no_run
//! # async fn demo() -> relay::Result<()> {
//! let relay = relay::start(relay::RelayConfig {
//!     listen: "127.0.0.1:0".parse().expect("literal"),
//!     database_url: "sqlite://relay.db".into(),
//!     client_id: "my-client".into(),
//!     client_secrets: vec!["my-secret".into()],
//!     ..Default::default()
//! })
//! .await?;
//! println!("relay at {}", relay.base_url);
//! # Ok(()) }
//! ```

mod broker;
mod client_ip;
mod config;
mod cursor;
mod device;
mod error;
mod events;
mod intake;
mod licences;
mod listen;
mod metrics;
mod quota;
mod ratelimit;
mod retention;
mod server;
mod storage;
mod wake;

pub use client_ip::{client_ip, parse_cidr};
pub use config::{
    MetricsAccess, RelayConfig, SubscriptionGate, DEFAULT_LICENCE_GRACE, WHOOP_PRODUCTION,
};
pub use cursor::Cursor;
pub use error::{Error, Result};
pub use licences::{admin as licence_admin, BILLING_SIGNATURE_HEADER};
pub use listen::{default_max_connections, open_files_limit};
pub use quota::{QuotaConfig, MAX_LEASE};
pub use server::{start, RelayHandle};
