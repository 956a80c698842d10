//! The VitalTrends desktop app. `core` is what the commands do and `demo` the in-process
//! simulator and relay of demo mode, both testable without a window; `app` is the Tauri shell
//! around them; `setup` picks the mode (demo or a configured WHOOP).

mod app;
pub mod core;
pub mod demo;
mod setup;

pub use app::run;
