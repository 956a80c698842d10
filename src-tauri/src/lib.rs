//! The VitalTrends desktop app. `core` is what the commands do, testable without a window;
//! `app` is the Tauri shell around it; `setup` picks the mode (demo or a configured WHOOP).

mod app;
pub mod core;
mod setup;

pub use app::run;
