//! The settings file from the command line, as a person without the desktop app uses it:
//! `vitaltrends config set …` for an own WHOOP developer app, the client secret from standard
//! input into the secret store (never the file), and `connect --port` against a simulator that
//! matches redirect URIs exactly, as WHOOP does.

use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::{binary, free_port, SimProcess};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const SECRET: &str = "demo-secret";

struct Person {
    home: tempfile::TempDir,
}

impl Person {
    /// Only what a person's shell has: no WHOOP variables, so everything comes from the file.
    fn command(&self) -> Command {
        let mut command = Command::new(binary("vitaltrends"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("XDG_DATA_HOME", self.home.path().join(".local/share"))
            // No keychain on a test machine's bare session: the person chose the file store.
            .env("VITALTRENDS_SECRET_STORE", "insecure-file")
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("vitaltrends");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("vitaltrends finishes")
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn settings_file(&self) -> std::path::PathBuf {
        self.home.path().join(".config/vitaltrends/settings.toml")
    }
}

/// Runs `connect --no-browser` with `extra` flags and plays the browser: follows the printed
/// URL. Returns whether connect succeeded, everything it printed, and how long it took.
async fn connect(person: &Person, extra: &[&str]) -> (bool, String, Duration) {
    let started = Instant::now();
    let mut child = person
        .command()
        .args(["connect", "--no-browser"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("connect prints the URL")
            .unwrap()
            .unwrap_or_else(|| panic!("no URL printed: {printed}"));
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("http") {
            break line;
        }
    };
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap();
    // What the browser shows does not matter here: either the app's page or WHOOP's error.
    let _ = browser.get(&url).send().await;
    while let Ok(Some(line)) = lines.next_line().await {
        printed.push_str(&line);
        printed.push('\n');
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("connect ends by itself")
        .unwrap();
    printed.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), printed, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_own_app_configured_from_the_cli_connects_only_on_its_registered_port() {
    let port = free_port();
    let registered = format!("http://127.0.0.1:{port}/oauth/whoop/callback");
    let sim = SimProcess::start(&[
        "--days",
        "20",
        "--auto-approve",
        "--redirect-uri",
        &registered,
    ])
    .await;
    let client_id = sim.ready["client_id"].as_str().unwrap().to_string();
    let person = Person {
        home: tempfile::tempdir().unwrap(),
    };

    // Nothing chosen yet: connect says what to do instead of guessing.
    let (ok, _, err) = person.run(&["connect", "--no-browser"], None).await;
    assert!(!ok);
    assert!(err.contains("config set mode own-app"), "{err}");

    for (key, value) in [
        ("mode", "own-app"),
        ("whoop.client_id", client_id.as_str()),
        ("whoop.base_url", sim.base_url.as_str()),
        ("loopback.port", &port.to_string()),
    ] {
        let (ok, out, err) = person.run(&["config", "set", key, value], None).await;
        assert!(ok, "config set {key}: {err}");
        assert!(out.starts_with(key), "{out}");
    }
    let (ok, _, err) = person.run(&["config", "set", "mode", "cloud"], None).await;
    assert!(!ok && err.contains("not a mode"), "{err}");
    let (ok, _, err) = person
        .run(&["config", "set", "whoop.client_secret", SECRET], None)
        .await;
    assert!(!ok, "a secret is never a plain setting: {err}");

    let (ok, out, err) = person
        .run(
            &["config", "set-secret", "whoop.client_secret"],
            Some(&format!("{SECRET}\n")),
        )
        .await;
    assert!(ok, "set-secret: {err}");
    assert!(!out.contains(SECRET) && !err.contains(SECRET));

    let file = std::fs::read_to_string(person.settings_file()).expect("the settings file");
    assert!(file.contains("mode = \"own-app\""), "{file}");
    assert!(file.contains(&client_id), "{file}");
    assert!(
        !file.contains(SECRET),
        "the secret stays out of the file:\n{file}"
    );
    let (ok, shown, _) = person.run(&["config", "show"], None).await;
    assert!(ok);
    assert!(
        shown.contains(&format!("loopback.port = {port}")),
        "{shown}"
    );
    assert!(shown.contains("whoop.client_secret = (set"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");

    // A port WHOOP does not know: the simulator refuses the redirect as WHOOP does, and the
    // CLI gives up after the bounded wait, naming the exact URI to register.
    let other = free_port();
    let (ok, printed, took) =
        connect(&person, &["--port", &other.to_string(), "--timeout", "4"]).await;
    assert!(!ok, "{printed}");
    assert!(
        printed.contains(&format!("http://127.0.0.1:{other}/oauth/whoop/callback")),
        "the message names the redirect URI to register: {printed}"
    );
    assert!(took < Duration::from_secs(30), "stopped waiting: {took:?}");
    let grants = sim.get_json("/_sim/grants").await;
    assert_eq!(
        grants.as_array().map_or(0, |g| g.len()),
        0,
        "no grant for a refused redirect: {grants}"
    );

    // The registered port, from the settings file.
    let (ok, printed, _) = connect(&person, &[]).await;
    assert!(ok, "{printed}");
    assert!(printed.contains("Connected as"), "{printed}");
    let (ok, out, err) = person.run(&["status"], None).await;
    assert!(ok, "{err}");
    assert!(out.contains("Connected as"), "{out}");
}
