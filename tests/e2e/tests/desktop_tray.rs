//! The real app closed to the tray, without WebDriver (which the app serves by keeping WebKit's
//! helpers): closing the window leaves the app running with no WebKit process at all, and the
//! window opened again from the tray menu draws the same screen as before.

use std::path::Path;
use std::time::Duration;

use e2e::binary;
use e2e::desktop::{app_env, eventually, launch, process_tree, shots_dir, Consent, Desktop};

const LONG: Duration = Duration::from_secs(60);

/// How many pixels of two screenshots differ by more than a small fuzz (ImageMagick).
async fn differing_pixels(a: &Path, b: &Path) -> u64 {
    let out = tokio::process::Command::new("compare")
        .args(["-metric", "AE", "-fuzz", "3%"])
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_to_the_tray_no_webkit_process_is_left_and_the_window_comes_back_whole() {
    let work = tempfile::tempdir().unwrap();
    let app = binary("vitaltrends-desktop");
    let shots = shots_dir();
    let mut desktop = Desktop::start(work.path()).await;
    let env = app_env(
        work.path(),
        &desktop,
        &app,
        Consent::AutoApproved,
        &[("VITALTRENDS_MODE", "demo".to_string())],
    );
    launch(&app, &env, &mut desktop.processes);

    // The window is up and drawn (the demo's dashboard, or its empty state).
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

    desktop.close_window("VitalTrends").await;
    eventually("every WebKit process to end", LONG, || async {
        desktop.window_size("VitalTrends").await.is_none()
            && !names(&app).iter().any(|n| n.starts_with("WebKit"))
    })
    .await;
    // Still running in the tray, alone.
    let tray = process_tree(&app);
    assert_eq!(tray.len(), 1, "{tray:?}");
    println!(
        "memory (PSS) in the tray: {} MiB, one process",
        tray[0].pss_kib / 1024
    );

    // Opened again from the tray: WebKit starts its helpers anew and the same screen is drawn.
    desktop.click_tray_item("Open VitalTrends").await;
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
}
