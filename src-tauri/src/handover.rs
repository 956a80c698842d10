//! Hands an app whose window closed to the tray over to a fresh process of itself, on Linux.
//!
//! WebKitGTK draws pages in helper processes, but its UI side loads libraries, a GL stack and
//! heap into the app's own process for the first window, and keeps them for the life of the
//! process: in the tray that is 129 MiB (PSS) where the same app started without a window takes
//! 77 (`vitaltrends-bench desktop`). So once the window has gone and nothing is in flight, the
//! app replaces itself (`execve`: the same process id, arguments and environment, plus
//! `--tray`) with a start that never loaded a webview. The window opens again from the tray as
//! after any start, with WebKit's first-webview cost.
//!
//! Nothing under way is cut: the handover waits until no sync job runs or waits and no sign-in
//! waits for the browser, until no long operation (export, backup, restore, disconnect, a
//! sign-in being completed) runs, and holds the tokens, so no refresh is between WHOOP's answer
//! and the secret store. It then stops the engine, closes the database and flushes the log. A
//! window asked for meanwhile (the tray, a second launch) is opened by the fresh process. After
//! a notification (an import finished) it waits ten minutes, or until the window was opened:
//! a click on a notification reaches only the process that showed it.
//!
//! Not in demo mode, whose data lives in the process; not under WebDriver
//! (`TAURI_WEBVIEW_AUTOMATION`: the driver's session belongs to this process image); and not
//! with `VITALTRENDS_TRAY_HANDOVER=0` (a debugger, for one, follows no exec).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tauri::{AppHandle, Manager};

use crate::session::Sessions;

/// How often a windowless app looks whether it can hand over.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// How long a notification this process showed can still be clicked, as far as the handover
/// is concerned: a click reaches the process that showed it, and a fresh one would not hear it.
const CLICKABLE_FOR: Duration = Duration::from_secs(10 * 60);

/// The handover's state, and the gate long operations hold so it waits for them.
#[derive(Default)]
pub(crate) struct Handover {
    windows: Mutex<Windows>,
    operations: tokio::sync::RwLock<()>,
    looking: AtomicBool,
}

#[derive(Default)]
struct Windows {
    /// Windows being opened or shown right now.
    opening: u32,
    /// Set once the handover has begun: no window opens in this process any more.
    underway: bool,
    /// A window was asked for after that: the fresh process opens it.
    requested: bool,
    /// When this process last showed a notification the person has not come back from.
    notified: Option<std::time::Instant>,
}

/// Held while a window is opened or shown (see `Handover::opening`).
pub(crate) struct Opening<'a>(&'a Handover);

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        lock(&self.0.windows).opening -= 1;
    }
}

impl Handover {
    /// Held by an operation the handover must not cut; it waits until none is held.
    pub(crate) async fn operation(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.operations.read().await
    }

    /// Before a window is opened or shown: `None` once the handover has begun, and the fresh
    /// process will open the window instead.
    pub(crate) fn opening(&self) -> Option<Opening<'_>> {
        let mut windows = lock(&self.windows);
        if windows.underway {
            windows.requested = true;
            tracing::info!(
                "a window was asked for during the handover; the fresh process opens it"
            );
            return None;
        }
        windows.opening += 1;
        // The person is back in the window: what a click on a notification would do is done.
        windows.notified = None;
        Some(Opening(self))
    }

    /// A notification was shown: the handover waits until it is no longer likely to be clicked
    /// (`CLICKABLE_FOR`), or the window was opened since.
    pub(crate) fn notified(&self) {
        lock(&self.windows).notified = Some(std::time::Instant::now());
    }

    fn notification_clickable(&self) -> bool {
        lock(&self.windows)
            .notified
            .is_some_and(|at| at.elapsed() < CLICKABLE_FOR)
    }

    /// Begins the handover if no window exists or is being opened. From then on `opening`
    /// refuses, so no window can appear between this check and the process's replacement.
    fn begin(&self, app: &AppHandle) -> bool {
        let mut windows = lock(&self.windows);
        if windows.opening > 0 || !app.webview_windows().is_empty() {
            return false;
        }
        windows.underway = true;
        true
    }

    /// The handover failed: windows open here again. Returns whether one was asked for.
    fn abandon(&self) -> bool {
        let mut windows = lock(&self.windows);
        windows.underway = false;
        std::mem::take(&mut windows.requested)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this platform and run hand over at all.
fn enabled() -> bool {
    cfg!(target_os = "linux")
        && std::env::var("TAURI_WEBVIEW_AUTOMATION").as_deref() != Ok("true")
        && std::env::var("VITALTRENDS_TRAY_HANDOVER").as_deref() != Ok("0")
}

/// Called once the window is gone: hands over as soon as nothing is under way, unless a window
/// opens first.
pub(crate) fn when_quiet(app: &AppHandle) {
    if !enabled() || app.state::<Handover>().looking.swap(true, Ordering::SeqCst) {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::time::sleep(LOOK_EVERY).await;
            match try_hand_over(&app).await {
                Attempt::NotNow => continue,
                Attempt::WindowOpen | Attempt::Stay | Attempt::Failed => break,
            }
        }
        app.state::<Handover>()
            .looking
            .store(false, Ordering::SeqCst);
    });
}

enum Attempt {
    NotNow,
    WindowOpen,
    /// This process stays as it is (demo mode).
    Stay,
    Failed,
}

async fn try_hand_over(app: &AppHandle) -> Attempt {
    if !app.webview_windows().is_empty() {
        return Attempt::WindowOpen;
    }
    let handover = app.state::<Handover>();
    let sessions = app.state::<Sessions>();
    // Demo data lives in this process (its simulator and relay start afresh with every
    // process, see `demo`): a fresh one would show a newcomer an empty, unconnected demo.
    if sessions.mode() == Some(config::Mode::Demo) {
        return Attempt::Stay;
    }
    let engine = sessions.core().ok().map(|core| core.engine);
    let busy = || engine.as_ref().is_some_and(|e| e.has_work());
    if busy() || handover.notification_clickable() {
        return Attempt::NotNow;
    }
    let Ok(_no_operation) = handover.operations.try_write() else {
        return Attempt::NotNow;
    };
    let _tokens = match &engine {
        Some(engine) => Some(engine.tokens().hold().await),
        None => None,
    };
    // A job the scheduler or the event stream queued while the tokens were awaited.
    if busy() {
        return Attempt::NotNow;
    }
    if !handover.begin(app) {
        return Attempt::WindowOpen;
    }
    tracing::info!(
        "the window is closed and nothing is under way: handing over to a fresh tray process"
    );
    sessions.stop().await;
    crate::ai_api::stop(&app.state::<crate::ai_api::ApiServer>());
    let mode = sessions.chosen_mode_env();
    app.state::<crate::setup::LogFile>().close();
    let error = {
        // Held through the exec: a window asked for from here on waits for it, so none is
        // missed between reading `requested` and the fresh start.
        let windows = lock(&handover.windows);
        replace_process(windows.requested, mode)
    };
    // Still here: the process could not be replaced. Carry on as before, logging to stderr
    // since the log file is closed.
    eprintln!("VitalTrends could not hand over to a fresh process ({error}); staying as it is");
    if let Err(e) = sessions.resume().await {
        eprintln!(
            "VitalTrends could not restart its connection: {}",
            e.message
        );
    }
    crate::ai_api::start_if_enabled(app);
    if handover.abandon() {
        crate::app::show_main_window(app);
    }
    Attempt::Failed
}

/// Replaces this process with a fresh start of the same binary; returns only on failure.
#[cfg(target_os = "linux")]
fn replace_process(open_window: bool, mode: Option<(&str, String)>) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "vitaltrends-desktop".into());
    // A link this process was started with has been handled; the fresh one must not see it.
    let mut args: Vec<_> = args
        .filter(|a| a != crate::app::TRAY_FLAG && !a.to_string_lossy().starts_with("vitaltrends:"))
        .collect();
    if !open_window {
        args.push(crate::app::TRAY_FLAG.into());
    }
    close_descriptors_on_exec();
    // The binary by its path, so the process keeps its name; the running one through /proc if
    // that path is gone (a package upgrade removed the file), so a half-done upgrade is not
    // started.
    let program = std::env::current_exe()
        .ok()
        .filter(|path| path.is_file())
        .unwrap_or_else(|| "/proc/self/exe".into());
    let mut command = std::process::Command::new(program);
    command.arg0(arg0).args(args);
    if let Some((key, value)) = mode {
        command.env(key, value);
    }
    command.exec()
}

#[cfg(not(target_os = "linux"))]
fn replace_process(_open_window: bool, _mode: Option<(&str, String)>) -> std::io::Error {
    std::io::Error::other("only Linux hands over")
}

/// Marks every descriptor above stderr close-on-exec. Rust, GLib and zbus open theirs that way;
/// one a library left inheritable would otherwise outlive this process in its successor (a
/// session bus connection kept open would keep the single-instance name taken).
#[cfg(target_os = "linux")]
fn close_descriptors_on_exec() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: fcntl on a descriptor number only reads or sets its flags; one that closed
        // since it was listed fails with EBADF, which is harmless.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_asked_for_during_the_handover_is_left_to_the_fresh_process() {
        let handover = Handover::default();
        let opening = handover
            .opening()
            .expect("no handover yet: the window opens here");
        assert_eq!(lock(&handover.windows).opening, 1);
        drop(opening);
        assert_eq!(lock(&handover.windows).opening, 0);

        lock(&handover.windows).underway = true;
        assert!(handover.opening().is_none());
        // The process could not be replaced: windows open here again, the one asked for too.
        assert!(handover.abandon());
        assert!(!handover.abandon(), "asked for once");
        assert!(handover.opening().is_some());
    }

    #[test]
    fn a_notification_holds_the_handover_back_until_the_window_was_opened() {
        let handover = Handover::default();
        assert!(!handover.notification_clickable());
        handover.notified();
        assert!(handover.notification_clickable());
        drop(handover.opening());
        assert!(!handover.notification_clickable());
        // One shown long ago no longer counts.
        lock(&handover.windows).notified =
            std::time::Instant::now().checked_sub(CLICKABLE_FOR + Duration::from_secs(1));
        assert!(!handover.notification_clickable());
    }
}
