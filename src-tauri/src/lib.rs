//! The VitalTrends desktop app. `core` is what the commands do, `session` which connection runs
//! and switching it, and `demo` the in-process simulator and relay of demo mode, all testable
//! without a window; `app` (windows, tray, deep links), `notify` and `settings_ipc` are the Tauri
//! shell around them, with `ai_api` (Settings → AI & API: Claude Desktop and the local REST API); `setup` finds where things live.

mod ai_api;
mod app;
pub mod core;
pub mod demo;
mod notify;
pub mod session;
mod settings_ipc;
mod setup;

pub use app::run;
