//! The VitalTrends desktop app. `core` is what the commands do, `session` which connection runs
//! and switching it, `data` Settings → Data and the completeness calendar, and `demo` the
//! in-process simulator and relay of demo mode, all testable without a window; `app` (windows,
//! tray, deep links), `notify`, `settings_ipc` and `data_ipc` are the Tauri shell around them;
//! `setup` finds where things live.

mod app;
pub mod core;
pub mod data;
mod data_ipc;
#[cfg(feature = "demo")]
pub mod demo;
mod notify;
pub mod session;
mod settings_ipc;
mod setup;

pub use app::run;
