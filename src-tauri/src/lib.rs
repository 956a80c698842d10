//! The VitalTrends desktop app. `core` is what the commands do, `session` which connection runs
//! and switching it, `data` Settings → Data and the completeness calendar, `restore` restoring a
//! backup into the running session, and `demo` the in-process simulator and relay of demo mode,
//! all testable without a window; `app` (windows, tray, deep links), `notify`, `settings_ipc`,
//! `data_ipc`, `dialogs` (the OS file dialogs), `backup_schedule` (daily backups), `ai_api`
//! (Settings → AI & API: Claude Desktop and the local REST API), `footprint` (what a window
//! closed to the tray gives back) and `handover` (a fresh process for the tray) are the Tauri
//! shell around them;
//! `setup` finds where things live.

mod ai_api;
mod app;
mod backup_schedule;
pub mod core;
pub mod data;
mod data_ipc;
#[cfg(feature = "demo")]
pub mod demo;
mod dialogs;
mod footprint;
mod handover;
mod notify;
pub mod restore;
pub mod session;
mod settings_ipc;
mod setup;

pub use app::run;
