// Prevents an extra console window on Windows in release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    ensure_usable_locale();
    draw_without_compositing();
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

/// WebKitGTK draws a page in accelerated compositing mode by default: layers kept as textures,
/// rasterized in software where there is no GPU. For this window (text and a few canvas charts,
/// nothing animated that needs a GPU) that cost 170 MiB more in WebKit's web process than
/// drawing straight into the window (`vitaltrends-bench desktop`, a year of data open: 268
/// against 97 MiB), and it is the mode behind the blank windows some Linux graphics drivers
/// give WebKit apps. WebKit reads the switch once, from the environment, when it starts (its
/// per-webview setting, changed after the webview exists, ended the web process here). A value
/// already in the environment is left as it is.
///
/// Drawn that way, nothing in the app needs GTK's OpenGL, yet GDK probes GLX when it opens the
/// display, which loads Mesa (with llvmpipe, 26 MiB) into a process that may never open a
/// window: the app started in the tray took 110 MiB with the probe and 77 without. So GDK's GL
/// is turned off too, unless the person chose compositing (WebKit's compositing draws through
/// GDK's GL on GTK 3) or set `GDK_GL` themselves. Runs before any thread starts.
fn draw_without_compositing() {
    if cfg!(target_os = "linux") && std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
        if std::env::var_os("GDK_GL").is_none() {
            std::env::set_var("GDK_GL", "disable");
        }
    }
}
