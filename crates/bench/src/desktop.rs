//! `desktop`: what the desktop app costs its user. Cold start to an interactive Connections
//! screen (several fresh starts), then, connected to a year of data, the memory of the whole
//! process tree (the app, WebKit's web and network processes) with the dashboard open and again
//! after the window was closed to the tray; and the sizes of the binary and of the `.deb`.
//! The tray is measured twice: under WebDriver, for which the app keeps WebKit's network
//! process, and started again on the same data without it, as a person runs it.
//!
//! It drives the real app the way the end-to-end suite does: Xvfb with a window manager, a
//! private session bus, tauri-driver, the simulator and relay on loopback.
//!
//! Beside it, the same measurement of an empty Tauri 2 app built from the same Tauri (the
//! `empty-app` crate: one window, a hello-world page), so the app's memory reads as a ratio to
//! what any Tauri app costs on this machine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use e2e::desktop::{
    app_env, app_log, configured, end_app, eventually, launch, process_tree, Consent, Desktop,
    ProcessMemory, WebDriver,
};

#[derive(clap::Args)]
pub struct Args {
    /// The app binary; by default the release build next to this benchmark.
    #[arg(long)]
    app: Option<PathBuf>,
    /// Fresh starts timed for the cold-start figure.
    #[arg(long, default_value_t = 5)]
    starts: u32,
    /// The empty Tauri app to compare with; by default the one built next to this benchmark
    /// (`cargo build --release -p empty-app`).
    #[arg(long)]
    empty_app: Option<PathBuf>,
}

const WAIT: Duration = Duration::from_secs(60);

pub async fn run(args: Args) -> anyhow::Result<()> {
    let app = match args.app {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark's directory")?
            .join("vitaltrends-desktop"),
    };
    anyhow::ensure!(
        app.exists(),
        "{} is missing: build it with `cargo build --release -p vitaltrends-desktop`",
        app.display()
    );
    let empty_app = match args.empty_app {
        Some(path) => path,
        None => app.with_file_name("vitaltrends-empty-app"),
    };
    let work = tempfile::tempdir()?;
    let empty = if empty_app.exists() {
        Some(measure_empty_app(&empty_app, &work.path().join("empty")).await)
    } else {
        eprintln!(
            "{} is missing (cargo build --release -p empty-app): no baseline",
            empty_app.display()
        );
        None
    };
    let sim = whoop_sim::start(
        whoop_sim::SimConfig {
            days: 365,
            seed: 3,
            auto_approve: true,
            ..whoop_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let relay = relay::start(relay::RelayConfig {
        listen: "127.0.0.1:0".parse()?,
        database_url: format!("sqlite://{}", work.path().join("relay.db").display()),
        whoop_base_url: url::Url::parse(&sim.base_url)?,
        client_id: sim.client_id.clone(),
        client_secrets: vec![whoop_sim::SimConfig::default().client_secret],
        ..relay::RelayConfig::default()
    })
    .await?;

    let mut starts = Vec::new();
    for i in 0..args.starts.max(1) {
        let dir = work.path().join(format!("start-{i}"));
        let mut session = Session::open(&app, &dir, &sim.base_url, &relay.base_url).await;
        starts.push(session.connections_screen().await);
        let last = i + 1 == args.starts.max(1);
        if !last {
            session.ui.close().await;
            continue;
        }
        let (open, tray) = session.memory_open_and_in_tray().await;
        session.ui.close().await;
        let (open_plain, tray_plain, reopen) = session.open_and_tray_without_webdriver().await;
        print_table(
            &app,
            &starts,
            &Memory {
                open,
                tray,
                open_plain,
                tray_plain,
                reopen,
            },
            empty.as_deref(),
        );
    }
    relay.shutdown().await;
    Ok(())
}

/// One fresh app on its own display and data directory.
struct Session {
    desktop: Desktop,
    ui: WebDriver,
    app: PathBuf,
    env: Vec<(String, String)>,
}

/// The process trees measured, under WebDriver and without it.
struct Memory {
    open: Vec<ProcessMemory>,
    tray: Vec<ProcessMemory>,
    open_plain: Vec<ProcessMemory>,
    tray_plain: Vec<ProcessMemory>,
    /// From the tray's "Open VitalTrends" to the window on screen, after the hand-over.
    reopen: Duration,
}

impl Session {
    async fn open(app: &Path, dir: &Path, whoop: &str, relay: &str) -> Session {
        std::fs::create_dir_all(dir).expect("a work directory");
        let mut desktop = Desktop::start(dir).await;
        let env = app_env(
            dir,
            &desktop,
            app,
            Consent::AutoApproved,
            &configured(whoop, relay),
        );
        let ui = WebDriver::start(app, &env, &mut desktop.processes).await;
        Session {
            desktop,
            ui,
            app: app.to_path_buf(),
            env,
        }
    }

    /// From the launch to the Connections screen showing the connection's state.
    async fn connections_screen(&mut self) -> Duration {
        self.ui.click("[data-testid=nav-settings]").await;
        self.ui.text("[data-testid=whoop-status]", WAIT).await;
        self.ui.launched_at.elapsed()
    }

    /// Connects, imports a year, opens the dashboard and measures; then closes the window to
    /// the tray and measures again.
    async fn memory_open_and_in_tray(&mut self) -> (Vec<ProcessMemory>, Vec<ProcessMemory>) {
        self.ui.click("[data-testid=connect-button]").await;
        self.ui
            .wait_text("[data-testid=whoop-status]", WAIT * 3, |t| {
                t.contains("Connected")
            })
            .await;
        self.ui.click("[data-testid=nav-dashboard]").await;
        self.ui.wait_for("[data-testid=chart-strain]", WAIT).await;
        self.ui.click("[data-testid=range-all]").await;
        // Let the charts draw and the processes settle.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let open = process_tree(&self.app);

        self.desktop.close_window("VitalTrends").await;
        // Measured only once the webview is really gone; otherwise this is not tray-only.
        eventually(
            "the webview to go after closing the window",
            WAIT,
            || async {
                !process_tree(&self.app)
                    .iter()
                    .any(|p| p.name.starts_with("WebKitWebProc"))
            },
        )
        .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        (open, process_tree(&self.app))
    }

    /// After the WebDriver session ended the app: starts it again on the same data, as a
    /// person does, waits for its window (the dashboard at its default range), measures, closes
    /// the window to the tray and measures once the app has handed over to a fresh process;
    /// then times opening the window again from the tray.
    async fn open_and_tray_without_webdriver(
        &mut self,
    ) -> (Vec<ProcessMemory>, Vec<ProcessMemory>, Duration) {
        end_app(&self.app).await;
        launch(&self.app, &self.env, &mut self.desktop.processes);
        eventually("the window and its web process", WAIT, || async {
            self.desktop.window_size("VitalTrends").await.is_some()
                && process_tree(&self.app)
                    .iter()
                    .any(|p| p.name.starts_with("WebKitWebProc"))
        })
        .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let open = process_tree(&self.app);
        self.desktop.close_window("VitalTrends").await;
        eventually("every WebKit process to end in the tray", WAIT, || async {
            !process_tree(&self.app)
                .iter()
                .any(|p| p.name.starts_with("WebKit"))
        })
        .await;
        // The app then hands over to a fresh process of itself, which never loaded a webview.
        eventually("the hand-over to a fresh tray process", WAIT, || async {
            app_log(&self.env).contains("started in the tray")
        })
        .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let tray = process_tree(&self.app);
        // What that costs: opening the window from the tray makes the process's first webview.
        let open_item = self.desktop.tray_item("Open VitalTrends").await;
        let asked = std::time::Instant::now();
        self.desktop.click_tray(&open_item).await;
        while self.desktop.window_size("VitalTrends").await.is_none() && asked.elapsed() < WAIT {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (open, tray, asked.elapsed())
    }
}

/// The empty app's process tree once its window shows the page and WebKit has settled.
async fn measure_empty_app(app: &Path, dir: &Path) -> Vec<ProcessMemory> {
    std::fs::create_dir_all(dir).expect("a work directory");
    let mut desktop = Desktop::start(dir).await;
    let env: Vec<(String, String)> = [
        ("DISPLAY", desktop.display.clone()),
        ("DBUS_SESSION_BUS_ADDRESS", desktop.bus.clone()),
        ("XDG_DATA_HOME", dir.join("xdg").display().to_string()),
        (
            "XDG_CONFIG_HOME",
            dir.join("xdg-config").display().to_string(),
        ),
        (
            "XDG_CACHE_HOME",
            dir.join("xdg-cache").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    launch(app, &env, &mut desktop.processes);
    eventually("the empty app's web process", WAIT, || async {
        process_tree(app)
            .iter()
            .any(|p| p.name.starts_with("WebKitWebProc"))
    })
    .await;
    // As long as the app is given to settle after drawing its dashboard.
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The desktop session ends the app as it goes.
    process_tree(app)
}

fn pss_kib(tree: &[ProcessMemory]) -> u64 {
    tree.iter().map(|p| p.pss_kib).sum()
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// A difference in MiB with its sign ("−1 MiB" when under).
fn signed_mib(kib: i64) -> String {
    let rounded = (kib as f64 / 1024.0).round() as i64;
    format!("{rounded} MiB").replace('-', "−")
}

fn memory_cell(tree: &[ProcessMemory]) -> String {
    let pss: u64 = tree.iter().map(|p| p.pss_kib).sum();
    let rss: u64 = tree.iter().map(|p| p.rss_kib).sum();
    let parts: Vec<String> = tree
        .iter()
        .map(|p| format!("{} {}", p.name, mib(p.pss_kib)))
        .collect();
    format!("PSS {} (RSS {}): {}", mib(pss), mib(rss), parts.join(", "))
}

fn size_cell(path: &Path) -> String {
    match path.metadata() {
        Ok(m) => format!("{:.1} MB ({})", m.len() as f64 / 1e6, path.display()),
        Err(_) => format!("not built ({})", path.display()),
    }
}

fn print_table(app: &Path, starts: &[Duration], memory: &Memory, empty: Option<&[ProcessMemory]>) {
    let (open, tray) = (&memory.open, &memory.tray);
    let mut sorted = starts.to_vec();
    sorted.sort();
    let ms = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let deb = app
        .parent()
        .map(|dir| dir.join("bundle/deb"))
        .and_then(|dir| {
            std::fs::read_dir(dir)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "deb"))
        });
    println!("| desktop ({}) | measured |", app.display());
    println!("|---|---|");
    println!(
        "| cold start to an interactive Connections screen, {} fresh starts | min {}, median {}, max {} |",
        sorted.len(),
        ms(sorted[0]),
        ms(sorted[sorted.len() / 2]),
        ms(sorted[sorted.len() - 1])
    );
    println!(
        "| memory, window open (dashboard, a year of data, all-time charts) | {} |",
        memory_cell(open)
    );
    println!(
        "| memory, window closed to the tray, under WebDriver (network process kept for it) | {} |",
        memory_cell(tray)
    );
    println!(
        "| memory, started again without WebDriver: window open (dashboard, default range) | {} |",
        memory_cell(&memory.open_plain)
    );
    println!(
        "| memory, started again without WebDriver: window closed to the tray (handed over to a fresh process) | {} |",
        memory_cell(&memory.tray_plain)
    );
    println!(
        "| window opened again from the tray, after the hand-over (click to window on screen) | {} |",
        ms(memory.reopen)
    );
    if let Some(empty) = empty {
        let base = pss_kib(empty).max(1) as f64;
        let own = empty
            .iter()
            .find(|p| !p.name.starts_with("WebKit"))
            .map_or(0, |p| p.pss_kib);
        println!(
            "| memory, empty Tauri 2 app (one window, hello world) | {} |",
            memory_cell(empty)
        );
        println!(
            "| window open ÷ empty app (goal ≤ 1.3 + 30 MB) | {:.2} ({} over 1.3× the empty app) |",
            pss_kib(open) as f64 / base,
            mib(pss_kib(open).saturating_sub((base * 1.3) as u64)),
        );
        println!(
            "| in the tray (without WebDriver) − the empty app's own process (goal ≤ 25 MB) | {} |",
            signed_mib(pss_kib(&memory.tray_plain) as i64 - own as i64),
        );
    }
    println!("| app binary | {} |", size_cell(app));
    match deb {
        Some(deb) => println!("| .deb bundle | {} |", size_cell(&deb)),
        None => println!(
            "| .deb bundle | not built (`ui/node_modules/.bin/tauri build --bundles deb`) |"
        ),
    }
    println!(
        "\nPSS splits shared pages between the processes that share them, so it sums fairly; RSS counts every shared library in full in each process."
    );
}
