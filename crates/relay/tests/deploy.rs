//! The deployment artifacts in `deploy/` pass their tools' own checks: `systemd-analyze verify`
//! on the unit and `caddy validate` on the Caddyfile. CI installs both (scripts/setup.sh), so a
//! missing tool fails the test rather than skipping it.

use std::path::{Path, PathBuf};
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_vitaltrends-relay");

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn run(cmd: &mut Command, what: &str) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what} could not run ({e}); scripts/setup.sh installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn systemd_unit_verifies() {
    let unit = std::fs::read_to_string(deploy_dir().join("vitaltrends-relay.service"))
        .expect("deploy/vitaltrends-relay.service");
    // `verify` insists that ExecStart's program exists; the package installs it at
    // /usr/bin/vitaltrends-relay, here the one this build produced stands in. Nothing else in
    // the unit changes.
    const SHIPPED: &str = "ExecStart=/usr/bin/vitaltrends-relay\n";
    assert_eq!(
        unit.matches(SHIPPED).count(),
        1,
        "one ExecStart, at /usr/bin"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vitaltrends-relay.service");
    std::fs::write(
        &path,
        unit.replace(SHIPPED, &format!("ExecStart={BINARY}\n")),
    )
    .expect("write");
    let (ok, text) = run(
        Command::new("systemd-analyze").arg("verify").arg(&path),
        "systemd-analyze",
    );
    assert!(ok, "systemd-analyze verify failed:\n{text}");
    assert!(
        !text.contains("vitaltrends-relay.service"),
        "systemd-analyze has remarks about the unit:\n{text}"
    );
    for hardening in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "StateDirectory=vitaltrends-relay",
        "Restart=on-failure",
        "LoadCredential=whoop-client-secret:",
        "VITALTRENDS_WHOOP_CLIENT_SECRET_FILE=%d/whoop-client-secret",
    ] {
        assert!(unit.contains(hardening), "the unit lacks {hardening}");
    }
    assert!(
        !unit.contains("VITALTRENDS_WHOOP_CLIENT_SECRET="),
        "no secret in the unit"
    );
}

#[test]
fn caddyfile_validates() {
    let caddyfile = deploy_dir().join("Caddyfile");
    let home = tempfile::tempdir().expect("tempdir");
    let (ok, text) = run(
        Command::new("caddy")
            .args(["validate", "--adapter", "caddyfile", "--config"])
            .arg(&caddyfile)
            // Caddy's storage goes to a scratch directory, never the user's.
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("RELAY_DOMAIN", "relay.example.com"),
        "caddy",
    );
    assert!(ok, "caddy validate failed:\n{text}");
    let text = std::fs::read_to_string(&caddyfile).expect("Caddyfile");
    assert!(
        text.contains("flush_interval -1"),
        "SSE must not be buffered"
    );
    assert!(text.contains("reverse_proxy {$RELAY_UPSTREAM:127.0.0.1:8080}"));
}

#[test]
fn debian_package_holds_the_binary_unit_and_settings() {
    let out = tempfile::tempdir().expect("tempdir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/package-relay.sh");
    let (ok, text) = run(
        Command::new("bash")
            .arg(&script)
            .args(["--fast", "--binary", BINARY, "--out"])
            .arg(out.path()),
        "scripts/package-relay.sh",
    );
    assert!(ok, "packaging failed:\n{text}");
    let deb = PathBuf::from(text.trim().lines().last().expect("the package path"));
    assert!(deb.exists(), "{}", deb.display());
    let (ok, contents) = run(
        Command::new("dpkg-deb").arg("--contents").arg(&deb),
        "dpkg-deb",
    );
    assert!(ok, "{contents}");
    for path in [
        "./usr/bin/vitaltrends-relay",
        "./lib/systemd/system/vitaltrends-relay.service",
        "./etc/vitaltrends/relay.env",
        "./usr/share/doc/vitaltrends-relay/DEPLOY.md",
        "./usr/share/doc/vitaltrends-relay/Caddyfile",
    ] {
        assert!(contents.contains(path), "{path} missing:\n{contents}");
    }
    assert!(
        contents.contains("root/root"),
        "files owned by root:\n{contents}"
    );
    let (ok, conffiles) = run(
        Command::new("dpkg-deb").args(["--ctrl-tarfile"]).arg(&deb),
        "dpkg-deb",
    );
    assert!(ok);
    assert!(
        conffiles.contains("conffiles"),
        "no conffiles in the control archive"
    );
    let (ok, package) = run(
        Command::new("dpkg-deb")
            .args(["--field"])
            .arg(&deb)
            .arg("Package"),
        "dpkg-deb",
    );
    assert!(ok);
    assert_eq!(package.trim(), "vitaltrends-relay");
}
