//! The Linux bundle as a person installs it: the `.deb` that `tauri build` makes (the README's
//! test command builds it). When someone clicks a `vitaltrends://` link, the OS starts the app
//! named by the `.desktop` file that claims the scheme and puts the URL where `%u` stands. Without
//! `%u` the app starts but never sees the link, which is what Tauri's default template produces;
//! the bundle uses its own.
#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::binary;

/// The newest `.deb` under `target/<profile>/bundle/deb/`.
fn deb() -> PathBuf {
    let profile_dir = binary("vitaltrends-desktop")
        .parent()
        .expect("target/<profile>")
        .to_path_buf();
    let dir = profile_dir.join("bundle").join("deb");
    let newest = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok());
    newest.unwrap_or_else(|| {
        panic!(
            "no .deb in {}: build it with `ui/node_modules/.bin/tauri build --debug --bundles deb` \
             (scripts/test.sh does)",
            dir.display()
        )
    })
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn desktop_entry(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.starts_with("[Desktop Entry]"), "{text}");
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn the_deb_hands_vitaltrends_links_to_the_app() {
    let deb = deb();
    let root = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root.path()));

    let applications = root.path().join("usr/share/applications");
    let entries: Vec<PathBuf> = std::fs::read_dir(&applications)
        .expect("the package installs a .desktop file")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "desktop"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = desktop_entry(&entries[0]);

    // The scheme is claimed, and the link reaches the program as its argument.
    let mime: Vec<&str> = entry["MimeType"].split(';').collect();
    assert!(mime.contains(&"x-scheme-handler/vitaltrends"), "{mime:?}");
    let exec: Vec<&str> = entry["Exec"].split_whitespace().collect();
    assert_eq!(
        exec,
        ["vitaltrends-desktop", "%u"],
        "Exec={}",
        entry["Exec"]
    );

    // The program it names is in the package, executable, on the PATH of an installed system.
    let program = root.path().join("usr/bin").join(exec[0]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&program)
        .unwrap_or_else(|_| panic!("{} is not in the package", program.display()))
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "{} is not executable", program.display());
    assert!(root
        .path()
        .join("usr/share/icons/hicolor/128x128/apps")
        .join(format!("{}.png", entry["Icon"]))
        .exists());

    // A file the desktop's menus and MIME database accept as it is.
    run(Command::new("desktop-file-validate").arg(&entries[0]));

    // WebKitGTK and the tray library come with the package's dependencies.
    let depends = run(Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&deb)
        .arg("Depends"));
    for library in ["libwebkit2gtk-4.1-0", "libayatana-appindicator3-1"] {
        assert!(depends.contains(library), "Depends: {depends}");
    }
    let size = deb.metadata().unwrap().len();
    println!("{}: {:.1} MB", deb.display(), size as f64 / 1e6);
}
