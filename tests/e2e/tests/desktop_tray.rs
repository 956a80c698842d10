//! The real app closed to the tray, without WebDriver (which the app serves by keeping WebKit's
//! helpers and its own process): closing the window leaves the app running with no WebKit
//! process at all, handed over to a fresh process of itself (the same process id) that syncs
//! from the tray, and the window opened again from the tray menu draws the same screen as
//! before. Closed again, it hands over again, and a second launch opens the window.

use std::path::Path;
use std::time::Duration;

use e2e::desktop::{
    app_log, end_app, eventually, launch, process_tree, service_env, shots_dir, Desktop, WebDriver,
};
use e2e::{binary, RelayProcess, SimProcess};

const LONG: Duration = Duration::from_secs(60);

/// How many pixels of two screenshots differ by more than a small fuzz (ImageMagick), below
/// the top 110 rows, where notification popups come and go over the window.
async fn differing_pixels(a: &Path, b: &Path) -> u64 {
    let out = tokio::process::Command::new("compare")
        .args(["-metric", "AE", "-fuzz", "3%", "-extract", "1280x690+0+110"])
        .arg(a)
        .arg(b)
        .arg("null:")
        .output()
        .await
        .expect("ImageMagick's compare");
    // compare prints the count on stderr and exits 1 when the images differ.
    let said = String::from_utf8_lossy(&out.stderr);
    said.split_whitespace()
        .next()
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("compare said {said:?}")) as u64
}

/// How many colours a screenshot holds: a drawn dashboard has hundreds, a blank window a few.
async fn colours(shot: &Path) -> u64 {
    let out = tokio::process::Command::new("identify")
        .args(["-format", "%k"])
        .arg(shot)
        .output()
        .await
        .expect("ImageMagick's identify");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn names(app: &Path) -> Vec<String> {
    process_tree(app).into_iter().map(|p| p.name).collect()
}

/// How many fresh processes the app has handed over to, by the line each writes as it starts.
fn handovers(env: &[(String, String)]) -> usize {
    app_log(env).matches("started in the tray").count()
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_to_the_tray_the_app_hands_over_to_a_fresh_process_and_the_window_comes_back_whole()
{
    let work = tempfile::tempdir().unwrap();
    let app = binary("vitaltrends-desktop");
    let shots = shots_dir();
    // Not demo data, which lives in the app's process and so keeps it (see `handover.rs`).
    let sim = SimProcess::start(&["--days", "60", "--seed", "31", "--auto-approve"]).await;
    let relay = RelayProcess::start(&sim, &work.path().join("relay.db")).await;
    let mut desktop = Desktop::start(work.path()).await;
    let env = service_env(work.path(), &desktop, &app, &sim, &relay);
    // Connected in the window under WebDriver (the one way to press its buttons), then started
    // again on the same data without it, as a person runs it.
    let ui = WebDriver::start(&app, &env, &mut desktop.processes).await;
    ui.click("[data-testid=nav-settings]").await;
    ui.click("[data-testid=connect-button]").await;
    ui.wait_text("[data-testid=whoop-card]", LONG, |t| {
        t.contains("Last synced")
    })
    .await;
    ui.close().await;
    end_app(&app).await;
    launch(&app, &env, &mut desktop.processes);

    // The window is up and drawn (the dashboard).
    let before = shots.join("tray-1-before-closing.png");
    eventually("the window to open and draw", LONG, || async {
        if desktop.window_size("VitalTrends").await.is_none() {
            return false;
        }
        desktop.screenshot(&before).await;
        colours(&before).await > 100
    })
    .await;
    // Settled: two screenshots a second apart agree.
    let settled = shots.join("tray-1-settled.png");
    eventually("the window to stop changing", LONG, || async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        desktop.screenshot(&settled).await;
        let same = differing_pixels(&before, &settled).await < 100;
        std::fs::copy(&settled, &before).unwrap();
        same
    })
    .await;
    let open = names(&app);
    assert!(
        open.iter().any(|n| n.starts_with("WebKitNetworkPr")),
        "{open:?}"
    );

    let pid = process_tree(&app)[0].pid;

    desktop.close_window("VitalTrends").await;
    eventually("every WebKit process to end", LONG, || async {
        desktop.window_size("VitalTrends").await.is_none()
            && !names(&app).iter().any(|n| n.starts_with("WebKit"))
    })
    .await;
    // Nothing was under way (the import finished before): the app hands over to a fresh process that never loaded a webview.
    eventually("the hand-over to a fresh tray process", LONG, || async {
        handovers(&env) == 1
    })
    .await;
    // Still running in the tray, alone, as the same process.
    let tray = process_tree(&app);
    assert_eq!(tray.len(), 1, "{tray:?}");
    assert_eq!(
        tray[0].pid, pid,
        "the process was replaced, not a new one started"
    );
    // Sync runs in the fresh process: Force Sync from its tray menu finishes and says so.
    let finished = desktop
        .notifications()
        .matches("Force Sync finished")
        .count();
    eventually("the fresh process's tray menu", LONG, || async {
        desktop.has_tray_menu().await
    })
    .await;
    desktop.click_tray_item("Force Sync").await;
    desktop
        .wait_notifications("Force Sync finished", finished + 1, LONG)
        .await;
    // A click on that notification reaches only this process: it is not replaced while the
    // notification may still be clicked (until the window is opened).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        handovers(&env),
        1,
        "handed over under a clickable notification"
    );
    let tray = process_tree(&app);
    let descriptors = open_descriptors(pid);
    println!(
        "memory (PSS) in the tray: {} MiB, one process, {descriptors} open descriptors",
        tray[0].pss_kib / 1024
    );

    // Opened again from the tray: WebKit starts its helpers anew and the same screen is drawn.
    let open_item = desktop.tray_item("Open VitalTrends").await;
    let asked = std::time::Instant::now();
    desktop.click_tray(&open_item).await;
    eventually("the window to come back", LONG, || async {
        desktop.window_size("VitalTrends").await.is_some()
    })
    .await;
    println!(
        "window back {:.1} s after the tray's Open",
        asked.elapsed().as_secs_f64()
    );
    let after = shots.join("tray-2-opened-again.png");
    eventually(
        "the window to come back with the same screen",
        LONG,
        || async {
            if desktop.window_size("VitalTrends").await.is_none() {
                return false;
            }
            desktop.screenshot(&after).await;
            differing_pixels(&before, &after).await < 2_000
        },
    )
    .await;
    let again = names(&app);
    assert!(
        again.iter().any(|n| n.starts_with("WebKitWebProces"))
            && again.iter().any(|n| n.starts_with("WebKitNetworkPr")),
        "{again:?}"
    );

    // Closed again: a second hand-over, which leaves nothing of the first behind.
    desktop.close_window("VitalTrends").await;
    eventually("the second hand-over", LONG, || async {
        handovers(&env) == 2 && !names(&app).iter().any(|n| n.starts_with("WebKit"))
    })
    .await;
    eventually("the fresh process's tray menu", LONG, || async {
        desktop.has_tray_menu().await
    })
    .await;
    let after_two = open_descriptors(pid);
    assert!(
        after_two <= descriptors + 2,
        "descriptors pile up across hand-overs: {descriptors} after one, {after_two} after two"
    );
    // A second launch (the app menu, a login item) finds the fresh process and its window
    // opens; the second process ends.
    let second = tokio::process::Command::new(&app)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .status()
        .await
        .unwrap();
    assert!(second.success());
    eventually("the window to open for the second launch", LONG, || async {
        desktop.window_size("VitalTrends").await.is_some()
    })
    .await;
    let roots: Vec<u32> = process_tree(&app)
        .iter()
        .filter(|p| p.name.starts_with("vitaltrends"))
        .map(|p| p.pid)
        .collect();
    assert_eq!(roots, vec![pid], "one app process");
}
