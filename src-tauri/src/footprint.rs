//! What the app gives back when its window closes to the tray, on Linux.
//!
//! Closing the window ends WebKit's web process, but two costs stay with a tray-resident app:
//! the heap pages the webview's teardown freed, which glibc keeps for reuse until told
//! otherwise, and WebKit's network process, which WebKitGTK keeps for as long as its web
//! context lives. Tauri keeps that context for the whole life of the app (tauri#14626: WebKit
//! would not end the process if the context were dropped either), so the helper outlives every
//! window although nothing needs it until one opens again. When the window has been gone a
//! moment, the app ends the helper itself (WebKit starts a new one for the next webview, as it
//! does after a helper crashes) and returns the freed pages to the system.
//!
//! That is as far as this process can go; `handover` then replaces it with a fresh one.
//!
//! Not under WebDriver (tauri-driver sets `TAURI_WEBVIEW_AUTOMATION`): WebKit ends the
//! automation session with its network process, and the driver then loses every window opened
//! after it. The heap is trimmed either way.

use std::time::Duration;

use tauri::{AppHandle, Manager};

/// How long after the window closed to look, and how often, for its web process to be gone.
const SETTLE: Duration = Duration::from_millis(500);
const TRIES: u32 = 20;

/// Called when a window was destroyed: once no window is left and WebKit's web process has
/// ended, ends the network process and trims the heap. Does nothing if a window opens first.
pub fn release_when_windowless(app: &AppHandle) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let app = app.clone();
    std::thread::spawn(move || {
        for _ in 0..TRIES {
            std::thread::sleep(SETTLE);
            if !app.webview_windows().is_empty() {
                return;
            }
            if helpers().iter().any(|h| h.kind == Helper::Web) {
                continue;
            }
            // Checked again on the main thread, where windows are made: a window cannot start
            // opening between the check and the end of the helper.
            let on_main = app.clone();
            let _ = app.run_on_main_thread(move || {
                if on_main.webview_windows().is_empty() {
                    release();
                    crate::handover::when_quiet(&on_main);
                }
            });
            return;
        }
        tracing::debug!("the web process did not end after the window closed; helpers left alone");
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Helper {
    Web,
    Network,
}

#[derive(Debug)]
struct Child {
    pid: i32,
    kind: Helper,
}

#[cfg(target_os = "linux")]
fn release() {
    let automated = std::env::var("TAURI_WEBVIEW_AUTOMATION").as_deref() == Ok("true");
    for child in helpers() {
        if child.kind == Helper::Network && !automated {
            // SIGTERM: the helper's own handler closes its sessions and exits.
            // SAFETY: kill(2) on a pid read from /proc a moment ago, of our own process tree.
            let ended = unsafe { libc::kill(child.pid, libc::SIGTERM) } == 0;
            tracing::info!(
                pid = child.pid,
                ended,
                "ended WebKit's network process: no window needs it"
            );
        }
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(target_os = "linux"))]
fn release() {}

/// This process's WebKit helpers (children, or further down when WebKit runs one through its
/// sandbox launcher), from /proc.
#[cfg(target_os = "linux")]
fn helpers() -> Vec<Child> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let processes: Vec<(i32, i32, String)> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (ppid, name) = parent_and_name(&stat)?;
            Some((pid, ppid, name.to_string()))
        })
        .collect();
    let mut tree = vec![std::process::id() as i32];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(processes.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    processes
        .iter()
        .filter(|(pid, _, _)| tree[1..].contains(pid))
        .filter_map(|(pid, _, name)| {
            Some(Child {
                pid: *pid,
                kind: helper_kind(name)?,
            })
        })
        .collect()
}

#[cfg(not(target_os = "linux"))]
fn helpers() -> Vec<Child> {
    Vec::new()
}

/// The parent pid and the name from a /proc/<pid>/stat line: `pid (name) state ppid …`, where
/// the name may hold spaces and parentheses, so it ends at the last ')'.
fn parent_and_name(stat: &str) -> Option<(i32, &str)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    Some((rest.next()?.parse().ok()?, name))
}

/// WebKit's helpers by the (15-character) names the kernel keeps.
fn helper_kind(name: &str) -> Option<Helper> {
    if name.starts_with("WebKitWebProces") {
        Some(Helper::Web)
    } else if name.starts_with("WebKitNetworkPr") {
        Some(Helper::Network)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parent_and_name_from_a_stat_line() {
        let line = "4242 (WebKitNetworkPr) S 4100 4100 4100 0 -1 4194560 1234";
        assert_eq!(parent_and_name(line), Some((4100, "WebKitNetworkPr")));
        // A name with spaces and a parenthesis still ends at the last ')'.
        let odd = "77 (a (b) c) R 1 77 77 0";
        assert_eq!(parent_and_name(odd), Some((1, "a (b) c")));
        assert_eq!(parent_and_name("garbage"), None);
    }

    #[test]
    fn knows_webkit_helpers_by_name() {
        assert_eq!(helper_kind("WebKitWebProces"), Some(Helper::Web));
        assert_eq!(helper_kind("WebKitNetworkPr"), Some(Helper::Network));
        assert_eq!(helper_kind("vitaltrends-des"), None);
    }
}
