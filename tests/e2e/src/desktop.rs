//! What the desktop suite needs around the real app: a virtual display with a window manager
//! (so windows are closed and resized the way a person does it), a session bus with a
//! notification daemon (recorded by `dbus-monitor`), a stand-in for the system browser, a
//! WebDriver client for tauri-driver, the tray menu clicked over D-Bus the way a desktop's tray
//! host does, and the memory of the app's process tree.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The session's processes (each killed when dropped), stopped in reverse order of start by
/// `Desktop`'s drop.
#[derive(Default)]
pub struct Processes(Vec<Child>);

impl Processes {
    pub fn add(&mut self, child: Child) {
        self.0.push(child);
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for child in self.processes.0.iter_mut().rev() {
            let _ = child.start_kill();
        }
        // A killed X server leaves its lock file and socket behind.
        let number = self.display.trim_start_matches(':');
        let _ = std::fs::remove_file(format!("/tmp/.X{number}-lock"));
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{number}"));
    }
}

use crate::free_port;

/// A desktop session: Xvfb with a window manager, a D-Bus session bus, a notification daemon and
/// a recorder of the notifications it receives.
pub struct Desktop {
    pub display: String,
    pub bus: String,
    pub notifications_log: PathBuf,
    pub processes: Processes,
}

impl Desktop {
    pub async fn start(dir: &Path) -> Desktop {
        let mut processes = Processes::default();
        // Xvfb picks a free display itself and says which (-displayfd): a fixed number can
        // collide with another run or with the lock file a killed server left behind.
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("Xvfb (apt install xvfb)");
        let mut lines = BufReader::new(xvfb.stdout.take().unwrap()).lines();
        let number = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("Xvfb says which display it took")
            .unwrap()
            .expect("a display number");
        let display = format!(":{}", number.trim());
        processes.add(xvfb);
        tokio::time::sleep(Duration::from_millis(300)).await;
        processes.add(
            // A window manager, as every desktop has: it is what turns "close this window" into
            // the polite WM_DELETE_WINDOW request the app can answer by going to the tray.
            Command::new("openbox")
                .arg("--sm-disable")
                .env("DISPLAY", &display)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("openbox (apt install openbox)"),
        );
        // A session bus that starts nothing by itself: with the system's service files, the
        // first call for the keychain or a portal made before the suite's own daemon owns its
        // name would start a second daemon (a locked keychain in the real home directory, whose
        // first write waits forever for a password prompt). Every service the app talks to here
        // is one the suite starts; a call to anything else fails at once.
        let bus_config = dir.join("session-bus.conf");
        std::fs::write(&bus_config, SESSION_BUS_CONFIG).unwrap();
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", bus_config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("dbus-daemon");
        let mut lines = BufReader::new(bus.stdout.take().unwrap()).lines();
        let address = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("session bus address")
            .unwrap()
            .unwrap();
        processes.add(bus);
        let notifications_log = dir.join("notifications.log");
        let log = std::fs::File::create(&notifications_log).unwrap();
        processes.add(
            Command::new("dbus-monitor")
                .args([
                    "--session",
                    "interface='org.freedesktop.Notifications',member='Notify'",
                ])
                .env("DBUS_SESSION_BUS_ADDRESS", &address)
                .stdout(log)
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("dbus-monitor"),
        );
        processes.add(
            Command::new("/usr/lib/notification-daemon/notification-daemon")
                .env("DBUS_SESSION_BUS_ADDRESS", &address)
                .env("DISPLAY", &display)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("notification-daemon"),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        Desktop {
            display,
            bus: address,
            notifications_log,
            processes,
        }
    }

    /// A Secret Service (the OS keychain on Linux) on this session's bus: gnome-keyring with a
    /// fresh, unlocked keyring under `dir`.
    pub async fn start_keyring(&mut self, dir: &Path) {
        use tokio::io::AsyncWriteExt;
        let data = dir.join("keyring-data");
        std::fs::create_dir_all(&data).unwrap();
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("XDG_DATA_HOME", &data)
            .env("XDG_RUNTIME_DIR", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("gnome-keyring-daemon (apt install gnome-keyring)");
        let mut stdin = daemon.stdin.take().unwrap();
        stdin.write_all(b"test-keyring-password").await.unwrap();
        drop(stdin);
        self.processes.add(daemon);
        // Ready means what the app needs: an item stored in the default collection and read
        // back, each step bounded (a keychain that wants a password prompt would wait forever).
        eventually(
            "the keychain stores and returns a secret",
            Duration::from_secs(30),
            || async {
                let store = Command::new("timeout")
                    .args(["5", "sh", "-c"])
                    .arg("printf ready | secret-tool store --label=probe probe suite")
                    .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
                    .output()
                    .await
                    .is_ok_and(|o| o.status.success());
                let read = Command::new("timeout")
                    .args(["5", "secret-tool", "lookup", "probe", "suite"])
                    .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
                    .output()
                    .await;
                store && read.is_ok_and(|o| o.status.success() && o.stdout == b"ready")
            },
        )
        .await;
    }

    /// A secret from the keychain, by the attributes the `keyring` crate stores.
    pub async fn keyring_lookup(&self, service: &str, user: &str) -> Option<String> {
        let out = Command::new("secret-tool")
            .args(["lookup", "service", service, "username", user])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .output()
            .await
            .expect("secret-tool (apt install libsecret-tools)");
        let value = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !value.is_empty()).then_some(value)
    }

    /// The notifications the daemon received so far, as `dbus-monitor` printed them.
    pub fn notifications(&self) -> String {
        std::fs::read_to_string(&self.notifications_log).unwrap_or_default()
    }

    /// The `app_icon` argument of every notification so far (the second string of each
    /// `Notify` call, after the app name), as the notification server received it.
    pub fn notification_icons(&self) -> Vec<String> {
        self.notifications()
            .split("member=Notify")
            .skip(1)
            .filter_map(|call| {
                call.lines()
                    .filter_map(|l| l.trim().strip_prefix("string \""))
                    .nth(1)
                    .map(|s| s.trim_end_matches('"').to_string())
            })
            .collect()
    }

    /// Waits until the daemon has received at least `count` notifications containing `text`.
    pub async fn wait_notifications(&self, text: &str, count: usize, limit: Duration) {
        let what = format!("{count} notification(s) saying {text:?}");
        eventually(&what, limit, || async {
            self.notifications().matches(text).count() >= count
        })
        .await;
    }

    /// Closes a top-level window by its exact title the way its title bar's close button does:
    /// through the window manager, which asks the app (WM_DELETE_WINDOW).
    pub async fn close_window(&self, title: &str) {
        self.wmctrl(&["-F", "-c", title]).await;
    }

    /// Moves and resizes a top-level window by its exact title, as dragging its edges does.
    pub async fn place_window(&self, title: &str, x: i32, y: i32, width: u32, height: u32) {
        self.wmctrl(&[
            "-F",
            "-r",
            title,
            "-e",
            &format!("0,{x},{y},{width},{height}"),
        ])
        .await;
    }

    /// The size of the visible top-level window with exactly this title, if there is one.
    pub async fn window_size(&self, title: &str) -> Option<(u32, u32)> {
        let out = Command::new("xdotool")
            .args([
                "search",
                "--onlyvisible",
                "--name",
                &format!("^{title}$"),
                "getwindowgeometry",
                "--shell",
            ])
            .env("DISPLAY", &self.display)
            .output()
            .await
            .expect("xdotool");
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        Some((field("WIDTH")?, field("HEIGHT")?))
    }

    /// Clicks the newest notification bubble on screen, as a person clicks a notification to
    /// open what it is about (the notification server reports it as the `default` action).
    pub async fn click_newest_notification(&self, limit: Duration) {
        let started = Instant::now();
        let bubble = loop {
            let out = Command::new("xdotool")
                .args(["search", "--onlyvisible", "--class", "notification-daemon"])
                .env("DISPLAY", &self.display)
                .output()
                .await
                .expect("xdotool");
            let newest = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.trim().parse::<u64>().ok())
                .max();
            if let Some(window) = newest {
                break window;
            }
            assert!(started.elapsed() < limit, "no notification on screen");
            tokio::time::sleep(Duration::from_millis(150)).await;
        };
        let status = Command::new("xdotool")
            .args(["mousemove", "--window", &bubble.to_string(), "120", "40"])
            .args(["click", "1"])
            .env("DISPLAY", &self.display)
            .status()
            .await
            .expect("xdotool");
        assert!(status.success(), "clicking notification {bubble}");
    }

    /// Saves a PNG of the whole screen (window manager, decorations, notification popups).
    pub async fn screenshot(&self, path: &Path) {
        capture(&self.display, None, path).await;
    }

    async fn wmctrl(&self, args: &[&str]) {
        let status = Command::new("wmctrl")
            .args(args)
            .env("DISPLAY", &self.display)
            .status()
            .await
            .expect("wmctrl (apt install wmctrl)");
        assert!(status.success(), "wmctrl {args:?}");
    }

    /// Clicks a tray menu item by its label, over D-Bus, as a tray host would.
    /// The tray menu's layout as the tray host reads it (labels included).
    pub async fn tray_menu(&self) -> String {
        let (name, path) = self.find_tray_menu().await;
        self.gdbus(&[
            "call",
            "--session",
            "--dest",
            &name,
            "--object-path",
            &path,
            "--method",
            "com.canonical.dbusmenu.GetLayout",
            "--",
            "0",
            "-1",
            "[]",
        ])
        .await
    }

    pub async fn click_tray_item(&self, label: &str) {
        let item = self.tray_item(label).await;
        self.click_tray(&item).await;
    }

    /// Finds a tray menu item by its label, to click later with `click_tray` (finding the menu
    /// asks every peer on the bus, which takes seconds where some do not answer).
    pub async fn tray_item(&self, label: &str) -> TrayItem {
        let (name, path) = self.find_tray_menu().await;
        let layout = self.tray_menu().await;
        let needle = format!("'label': <'{label}'>");
        let at = layout
            .find(&needle)
            .unwrap_or_else(|| panic!("no tray item {label:?} in {layout}"));
        // The item's id is the number that opens its "(id, {" tuple just before the label.
        let before = &layout[..at];
        let open = before.rfind('(').expect("item tuple");
        let id: String = before[open + 1..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        TrayItem { name, path, id }
    }

    /// Clicks a tray menu item found with `tray_item`, as a tray host does.
    pub async fn click_tray(&self, item: &TrayItem) {
        self.gdbus(&[
            "call",
            "--session",
            "--dest",
            &item.name,
            "--object-path",
            &item.path,
            "--method",
            "com.canonical.dbusmenu.Event",
            "--",
            &item.id,
            "clicked",
            "<\"\">",
            "0",
        ])
        .await;
    }

    /// Whether an app has its tray menu on the session bus.
    pub async fn has_tray_menu(&self) -> bool {
        self.try_find_tray_menu().await.is_some()
    }

    async fn find_tray_menu(&self) -> (String, String) {
        self.try_find_tray_menu()
            .await
            .expect("no tray menu on the session bus")
    }

    async fn try_find_tray_menu(&self) -> Option<(String, String)> {
        let names = self
            .gdbus(&[
                "call",
                "--session",
                "--dest",
                "org.freedesktop.DBus",
                "--object-path",
                "/org/freedesktop/DBus",
                "--method",
                "org.freedesktop.DBus.ListNames",
            ])
            .await;
        // All at once: a peer that does not answer (dbus-monitor, for one) costs its timeout.
        let mut introspections = tokio::task::JoinSet::new();
        for (i, name) in names
            .split('\'')
            .filter(|n| n.starts_with(":1."))
            .enumerate()
        {
            let (bus, name) = (self.bus.clone(), name.to_string());
            introspections.spawn(async move {
                let args = ["introspect", "--session", "--dest", &name];
                let tree = gdbus_on(
                    &bus,
                    &[&args[..], &["--object-path", "/", "--recurse"]].concat(),
                )
                .await;
                (i, name, tree)
            });
        }
        let mut trees = introspections.join_all().await;
        trees.sort_by_key(|(i, _, _)| *i);
        for (_, name, tree) in trees {
            if let Some(at) = tree.find("/org/ayatana/NotificationItem/") {
                let rest = &tree[at..];
                let end = rest.find([' ', '\n', '{']).unwrap_or(rest.len());
                let path = &rest[..end];
                if path.ends_with("/Menu") {
                    return Some((name.to_string(), path.to_string()));
                }
                let menu = format!("{}/Menu", path.trim_end_matches('/'));
                if tree.contains(&menu) {
                    return Some((name.to_string(), menu));
                }
            }
        }
        None
    }

    async fn gdbus(&self, args: &[&str]) -> String {
        gdbus_on(&self.bus, args).await
    }
}

/// `gdbus` on the session bus at `bus`: what it printed.
async fn gdbus_on(bus: &str, args: &[&str]) -> String {
    let out = Command::new("gdbus")
        .args(args)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .output()
        .await
        .expect("gdbus");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tray menu item as the tray host addresses it: the app's bus name, the menu's object path
/// and the item's id.
pub struct TrayItem {
    name: String,
    path: String,
    id: String,
}

/// What the stand-in browser does on WHOOP's consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// The simulator runs with `--auto-approve`: the consent URL redirects at once.
    AutoApproved,
    /// The page is shown (demo mode): the person presses Authorize.
    PressAuthorize,
}

/// A stand-in for the system browser, installed as `xdg-open` in a directory of its own: it
/// follows the consent URL and delivers WHOOP's redirect the way the OS does, by launching the
/// app again with the `vitaltrends://` URL. Every URL it was asked to open is appended to
/// `opened.log`.
fn fake_browser(dir: &Path, app: &Path, consent: Consent) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let follow = match consent {
        Consent::AutoApproved => "location=$(curl -s -o /dev/null -w '%{redirect_url}' \"$1\")\n",
        // The consent form posts its hidden id and the pressed button to the decision URL.
        Consent::PressAuthorize => concat!(
            "page=$(curl -s \"$1\")\n",
            "consent=$(printf '%s' \"$page\" | sed -n 's/.*name=\"consent\" value=\"\\([^\"]*\\)\".*/\\1/p' | head -n 1)\n",
            "origin=$(printf '%s' \"$1\" | sed -E 's#^(https?://[^/]+).*#\\1#')\n",
            "location=$(curl -s -o /dev/null -w '%{redirect_url}' --data \"consent=$consent&decision=allow\" \"$origin/oauth/oauth2/auth/decision\")\n",
        ),
    };
    let script = format!(
        // WHOOP's redirect: a vitaltrends:// link the OS hands to the app by starting it again,
        // or the app's loopback listener, which the browser simply loads.
        "#!/bin/sh\necho \"$1\" >> '{log}'\n{follow}echo \"redirect $location\" >> '{log}'\ncase \"$location\" in\n  vitaltrends://*) exec '{app}' \"$location\" ;;\n  *) exec curl -s -o /dev/null \"$location\" ;;\nesac\n",
        log = dir.join("opened.log").display(),
        app = app.display()
    );
    let path = bin.join("xdg-open");
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// What the app wrote to its own log files (`vitaltrends*.log`) under its data home in `env`.
pub fn app_log(env: &[(String, String)]) -> String {
    let mut files = Vec::new();
    for (_, dir) in env.iter().filter(|(k, _)| k == "XDG_DATA_HOME") {
        collect_logs(Path::new(dir), &mut files);
    }
    files.sort();
    files
        .iter()
        .filter(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vitaltrends"))
        })
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect()
}

/// Every `*.log` file under `dir`.
fn collect_logs(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_logs(&path, files);
        } else if path.extension().is_some_and(|e| e == "log") {
            files.push(path);
        }
    }
}

/// The suite's session bus: the usual session policy without `<standard_session_servicedirs/>`,
/// so nothing is started on demand.
const SESSION_BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#;

/// A minimal W3C WebDriver client for tauri-driver.
pub struct WebDriver {
    http: reqwest::Client,
    base: String,
    session: String,
    /// When the app was asked to start (the new-session request).
    pub launched_at: Instant,
    /// Where the app and the stand-in browser write logs, printed when a wait fails so a
    /// failure on CI explains itself.
    log_dirs: Vec<PathBuf>,
    /// The X display the app draws on, for screenshots.
    display: Option<String>,
}

impl WebDriver {
    /// Starts tauri-driver with `env` and opens a session on the app binary.
    pub async fn start(
        app: &Path,
        env: &[(String, String)],
        processes: &mut Processes,
    ) -> WebDriver {
        let port = free_port();
        let native = free_port();
        let mut driver = Command::new("tauri-driver");
        driver
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (k, v) in env {
            driver.env(k, v);
        }
        processes.add(
            driver
                .spawn()
                .expect("tauri-driver (cargo install tauri-driver)"),
        );
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "tauri-driver did not answer on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Creating the session launches the app and returns once its webview is up.
        let caps =
            json!({"capabilities": {"alwaysMatch": {"tauri:options": {"application": app}}}});
        let launching = Instant::now();
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .timeout(Duration::from_secs(90))
            .send()
            .await
            .expect("tauri-driver answers a new session")
            .json()
            .await
            .expect("a JSON answer");
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        let log_dirs = env
            .iter()
            .filter(|(k, _)| k == "XDG_DATA_HOME" || k == "VITALTRENDS_DATA_DIR")
            .map(|(_, v)| PathBuf::from(v))
            .collect();
        let display = env
            .iter()
            .find(|(k, _)| k == "DISPLAY")
            .map(|(_, v)| v.clone());
        WebDriver {
            http,
            base,
            session,
            launched_at: launching,
            log_dirs,
            display,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        // Bounded, so a command WebKit never answers fails the test instead of hanging the suite.
        let answer: Value = request
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
            .json()
            .await
            .unwrap();
        answer["value"].clone()
    }

    async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        // A found element is {"element-6066-…": id}; a miss is {"error": …}.
        v.as_object()?
            .iter()
            .find(|(k, _)| k.starts_with("element-") || k.as_str() == "ELEMENT")?
            .1
            .as_str()
            .map(str::to_string)
    }

    /// The text of the element, once it exists (waiting up to `limit`).
    pub async fn text(&self, css: &str, limit: Duration) -> String {
        let element = self.wait_for(css, limit).await;
        self.call(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub async fn exists(&self, css: &str) -> bool {
        self.find(css).await.is_some()
    }

    pub async fn wait_for(&self, css: &str, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            if let Some(element) = self.find(css).await {
                return element;
            }
            if started.elapsed() >= limit {
                panic!("{css} did not appear within {limit:?}{}", self.logs_tail());
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Waits until `css`'s text satisfies `pred`; returns the text.
    pub async fn wait_text(
        &self,
        css: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            if let Some(element) = self.find(css).await {
                last = self
                    .call(
                        reqwest::Method::GET,
                        &format!("/element/{element}/text"),
                        None,
                    )
                    .await
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if pred(&last) {
                    return last;
                }
            }
            if started.elapsed() >= limit {
                panic!(
                    "{css} never matched within {limit:?}; last text {last:?}{}",
                    self.logs_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last lines of every log the app and the stand-in browser wrote (the browser's
    /// `opened.log` sits beside the app's data directories).
    fn logs_tail(&self) -> String {
        let mut files = Vec::new();
        for dir in &self.log_dirs {
            collect_logs(dir, &mut files);
            if let Some(work) = dir.parent() {
                files.push(work.join("opened.log"));
            }
        }
        files.sort();
        files.dedup();
        let mut out = String::new();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            out.push_str(&format!(
                "\n--- {} ---\n{}",
                file.display(),
                tail.join("\n")
            ));
        }
        out
    }

    pub async fn wait_gone(&self, css: &str, limit: Duration) {
        let started = Instant::now();
        while self.find(css).await.is_some() {
            assert!(
                started.elapsed() < limit,
                "{css} still there after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks `css` as a person would. A click the page refuses (the element covered by a
    /// notice, say) is retried with the element scrolled to the middle of the window, and fails
    /// the test if it still cannot land, rather than passing silently.
    pub async fn click(&self, css: &str) {
        let mut refusal = Value::Null;
        for _ in 0..3 {
            let element = self.wait_for(css, Duration::from_secs(15)).await;
            let answer = self
                .call(
                    reqwest::Method::POST,
                    &format!("/element/{element}/click"),
                    Some(json!({})),
                )
                .await;
            if answer.get("error").is_none() {
                return;
            }
            refusal = answer;
            self.call(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({
                    "script": "arguments[0].scrollIntoView({block: 'center'});",
                    "args": [{"element-6066-11e4-a52e-4f735466cecf": element}],
                })),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        panic!("could not click {css}: {refusal}{}", self.logs_tail());
    }

    /// Replaces the text of an input, as a person selecting it and typing does.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.wait_for(css, Duration::from_secs(15)).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Follows the app's window after it was closed to the tray and opened again: the new
    /// webview is a new top-level browsing context for WebDriver.
    pub async fn switch_to_newest_window(&self) -> bool {
        let handles = self
            .call(reqwest::Method::GET, "/window/handles", None)
            .await;
        let Some(newest) = handles.as_array().and_then(|h| h.last()).cloned() else {
            return false;
        };
        let answer = self
            .call(
                reqwest::Method::POST,
                "/window",
                Some(json!({ "handle": newest })),
            )
            .await;
        answer.is_null()
    }

    pub async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Saves a PNG of the window to `path` after one paint, so a change the test just waited
    /// for is in the picture and not the frame before it.
    pub async fn screenshot_settled(&self, path: &Path) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.screenshot(path).await;
    }

    /// Saves a PNG of the app's window, as drawn on the X display, to `path`. Not WebDriver's
    /// screenshot: that asks WebKit for a snapshot of the page, which WebKit never answers when
    /// it draws without accelerated compositing (as the app has it drawn).
    pub async fn screenshot(&self, path: &Path) {
        if let Some(display) = &self.display {
            capture(display, Some("VitalTrends"), path).await;
        }
    }

    /// Quits the app (ending the session) and starts it again with the same environment, as a
    /// person quitting and reopening it does.
    pub async fn restart(
        self,
        app: &Path,
        env: &[(String, String)],
        processes: &mut Processes,
    ) -> WebDriver {
        self.close().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        WebDriver::start(app, env, processes).await
    }

    pub async fn close(&self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
    }
}

/// One process of the app's tree and what it holds in memory.
#[derive(Debug, Clone)]
pub struct ProcessMemory {
    pub pid: u32,
    pub name: String,
    /// Resident set, in KiB: counts shared libraries in full, so sums overstate.
    pub rss_kib: u64,
    /// Proportional set, in KiB: shared pages split between the processes sharing them.
    pub pss_kib: u64,
}

/// Every running process started from `binary`, with all its descendants (WebKit's web and
/// network processes are children of the app).
pub fn process_tree(binary: &Path) -> Vec<ProcessMemory> {
    let binary = binary
        .canonicalize()
        .unwrap_or_else(|_| binary.to_path_buf());
    let mut parents = Vec::new();
    let mut roots = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so parse after its last ')'.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let ppid: u32 = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        parents.push((pid, ppid));
        if std::fs::read_link(entry.path().join("exe")).is_ok_and(|exe| exe == binary) {
            roots.push(pid);
        }
    }
    let mut tree = roots.clone();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    tree.into_iter().filter_map(process_memory).collect()
}

fn process_memory(pid: u32) -> Option<ProcessMemory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let name = status
        .lines()
        .find_map(|l| l.strip_prefix("Name:"))
        .unwrap_or_default()
        .trim()
        .to_string();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Some(ProcessMemory {
        pid,
        name,
        rss_kib: kib(&status, "VmRSS:"),
        pss_kib: kib(&rollup, "Pss:"),
    })
}

/// The newest cycle's recovery as the Today card shows it ("62%", "Pending", or "Not scored" for
/// a night WHOOP could not score), from the simulator's `/_sim/dump`.
pub fn expected_recovery(dump: &Value) -> String {
    let newest = dump["cycle"][0]["id"].clone();
    let recovery = dump["recovery"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cycle_id"] == newest);
    let Some(recovery) = recovery else {
        // No recovery yet for the newest cycle: WHOOP is still working on it.
        return "Pending".into();
    };
    match (
        recovery["score_state"].as_str(),
        recovery["score"]["recovery_score"].as_f64(),
    ) {
        (Some("SCORED"), Some(score)) => format!("{}%", score.round() as i64),
        (Some("UNSCORABLE"), _) => "Not scored".into(),
        _ => "Pending".into(),
    }
}

/// Whether an element's text shows `word` as whole words of their own (so "6%" does not match
/// "65%"; "Not scored" matches those two words in a row).
pub fn shows_word(text: &str, word: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    let wanted: Vec<&str> = word.split_whitespace().collect();
    !wanted.is_empty() && words.windows(wanted.len()).any(|w| w == wanted.as_slice())
}

/// Where the suites save their screenshots: `target/shots/`.
pub fn shots_dir() -> PathBuf {
    let dir = crate::binary("vitaltrends-desktop")
        .parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join("shots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a PNG of what the X `display` shows: the visible top-level window with exactly this
/// title, or the whole screen.
async fn capture(display: &str, title: Option<&str>, path: &Path) {
    let mut window = "root".to_string();
    if let Some(title) = title {
        let found = Command::new("xdotool")
            .args(["search", "--onlyvisible", "--name", &format!("^{title}$")])
            .env("DISPLAY", display)
            .output()
            .await;
        if let Some(id) = found.ok().and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .map(str::to_string)
        }) {
            window = id;
        }
    }
    let _ = Command::new("import")
        .args(["-window", &window])
        .arg(path)
        .env("DISPLAY", display)
        .status()
        .await;
}

/// Waits for every process started from `binary` to end (tauri-driver ends the app with its
/// session), ending what is left after ten seconds.
pub async fn end_app(binary: &Path) {
    let started = Instant::now();
    while !process_tree(binary).is_empty() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for p in process_tree(binary) {
        let _ = std::process::Command::new("kill")
            .arg(p.pid.to_string())
            .status();
    }
    eventually("the app to end", Duration::from_secs(60), || async {
        process_tree(binary).is_empty()
    })
    .await;
}

/// Starts the app as a person does, without WebDriver (so it manages WebKit's helpers itself),
/// with `env` and its output discarded; it ends with the desktop session.
pub fn launch(app: &Path, env: &[(String, String)], processes: &mut Processes) {
    let child = Command::new(app)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", app.display()));
    processes.add(child);
}

/// The desktop app's environment in a test: this session's display and bus, the stand-in
/// browser first on the PATH, every place the app writes to inside `work` (its settings file in
/// `work/xdg-config/vitaltrends`), then `settings` (none: nothing chosen yet, as on a fresh
/// install of a build without the VitalTrends service).
pub fn app_env(
    work: &Path,
    desktop: &Desktop,
    app: &Path,
    consent: Consent,
    settings: &[(&str, String)],
) -> Vec<(String, String)> {
    let browser = fake_browser(work, app, consent);
    let path = format!(
        "{}:{}",
        browser.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut env: Vec<(String, String)> = [
        ("DISPLAY", desktop.display.clone()),
        ("DBUS_SESSION_BUS_ADDRESS", desktop.bus.clone()),
        ("PATH", path),
        ("XDG_DATA_HOME", work.join("xdg").display().to_string()),
        (
            "XDG_CONFIG_HOME",
            work.join("xdg-config").display().to_string(),
        ),
        (
            "VITALTRENDS_DATA_DIR",
            work.join("data").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(settings.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

/// The environment of an app configured for `sim` and `relay` (service mode), whose sign-ins
/// the fake browser approves: what most window suites start with.
pub fn service_env(
    work: &Path,
    desktop: &Desktop,
    app: &Path,
    sim: &crate::SimProcess,
    relay: &crate::RelayProcess,
) -> Vec<(String, String)> {
    app_env(
        work,
        desktop,
        app,
        Consent::AutoApproved,
        &configured(&sim.base_url, &relay.base_url),
    )
}

/// The settings that point the app at a WHOOP (the simulator) and a relay, as a configured
/// install has them.
pub fn configured(whoop: &str, relay: &str) -> Vec<(&'static str, String)> {
    vec![
        ("VITALTRENDS_MODE", "service".to_string()),
        ("VITALTRENDS_WHOOP_BASE_URL", whoop.to_string()),
        (
            "VITALTRENDS_WHOOP_CLIENT_ID",
            "vitaltrends-demo".to_string(),
        ),
        ("VITALTRENDS_RELAY_URL", relay.to_string()),
        ("VITALTRENDS_SECRET_STORE", "insecure-file".to_string()),
    ]
}

/// Polls `done` until it holds, failing the test with `what` after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
