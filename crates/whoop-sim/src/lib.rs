//! `whoop-sim`: a faithful simulator of WHOOP's Developer API v2 for tests, the desktop's demo
//! mode and benchmarks. It serves WHOOP's OAuth endpoints, every v2 data endpoint with WHOOP's
//! paging, rate limits and error behaviour, sends signed webhooks, and exposes a `/_sim`
//! control API. Its data is generated deterministically from a seed, for one WHOOP member or
//! for many members of the one app (`SimConfig::users`), who then share the app's rate limits.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = whoop_sim::start(whoop_sim::SimConfig::default(), "127.0.0.1:0".parse().unwrap()).await?;
//! println!("WHOOP at {}", sim.base_url);
//! # Ok(()) }
//! ```

mod api;
mod config;
mod control;
mod faults;
mod generate;
mod members;
mod model;
mod oauth;
mod pagination;
mod ratelimit;
mod server;
mod shape;
mod stats;
mod store;
mod time;
mod webhooks;
mod world;

pub use config::SimConfig;
pub use server::{start, SimHandle};
pub use shape::Shapes;

/// Locks a mutex even if a panicking thread poisoned it: every critical section here leaves
/// the data consistent, and one failed request must not take the simulator down.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
