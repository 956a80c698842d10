// Prevents an extra console window on Windows in release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    ensure_usable_locale();
    if let Err(e) = vitaltrends_desktop::run() {
        eprintln!("VitalTrends could not start: {e:#}");
        std::process::exit(1);
    }
}

/// WebKitGTK hands the process locale to the webview as its language; under `LANG=C` (services,
/// CI, minimal desktops) that is the tag "C", which JavaScript's `Intl` rejects, and the charting
/// library throws while loading. Such a process gets English instead. Runs before any thread
/// starts, so changing the environment is safe.
fn ensure_usable_locale() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let unusable = |value: Option<String>| match value.as_deref() {
        None | Some("") => true,
        Some(v) => v == "C" || v == "POSIX" || v.starts_with("C."),
    };
    let all = std::env::var("LC_ALL").ok();
    if all.is_some() && unusable(all) {
        // LC_ALL overrides LANG; without it the LANG below applies.
        std::env::remove_var("LC_ALL");
    }
    if unusable(std::env::var("LANG").ok()) {
        std::env::set_var("LANG", "en_US.UTF-8");
        std::env::set_var("LANGUAGE", "en_US");
    }
}
