//! Settings → AI & API in the real app (demo data, connected): the REST API is off until the
//! person turns it on; a token is shown once and works against the app's own server while only
//! its hash reaches the settings file; "Add to Claude Desktop" merges the entry (the CLI's
//! absolute path and the app's data directory) into Claude Desktop's config after confirming,
//! keeping the other servers and a backup.

use std::time::Duration;

use e2e::desktop::{app_env, shots_dir, Consent, Desktop, WebDriver};
use e2e::{binary, free_port};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(90);
const SHORT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_person_turns_on_the_api_and_adds_claude_desktop() {
    let work = tempfile::tempdir().unwrap();
    let app = binary("vitaltrends-desktop");
    let shots = shots_dir();
    let mut desktop = Desktop::start(work.path()).await;
    let port = free_port();
    let settings_dir = work.path().join("xdg-config/vitaltrends");
    std::fs::create_dir_all(&settings_dir).unwrap();
    std::fs::write(
        settings_dir.join("settings.toml"),
        format!("[api]\nport = {port}\n"),
    )
    .unwrap();
    // Claude Desktop "installed", with a server of its own that must survive.
    let claude = work.path().join("xdg-config/Claude");
    std::fs::create_dir_all(&claude).unwrap();
    let claude_file = claude.join("claude_desktop_config.json");
    let old = r#"{"mcpServers": {"files": {"command": "npx", "args": ["fs"]}}, "theme": "dark"}"#;
    std::fs::write(&claude_file, old).unwrap();

    let env = app_env(
        work.path(),
        &desktop,
        &app,
        Consent::PressAuthorize,
        &[("VITALTRENDS_MODE", "demo".to_string())],
    );
    let ui = WebDriver::start(&app, &env, &mut desktop.processes).await;
    ui.click("[data-testid=nav-settings]").await;
    ui.click("[data-testid=connect-button]").await;
    ui.wait_text("[data-testid=whoop-status]", LONG, |t| {
        t.starts_with("Connected")
    })
    .await;

    ui.click("[data-testid=settings-nav-ai]").await;
    let snippet = ui.text("[data-testid=claude-snippet]", SHORT).await;
    let cli = binary("vitaltrends");
    let entry: Value = serde_json::from_str(&snippet).expect("the snippet is JSON");
    assert_eq!(
        entry["mcpServers"]["vitaltrends"]["command"],
        cli.display().to_string()
    );
    assert_eq!(entry["mcpServers"]["vitaltrends"]["args"][2], "mcp");

    // Off until enabled: nothing listens on the port.
    let http = reqwest::Client::new();
    let status_url = format!("http://127.0.0.1:{port}/api/v1/status");
    assert!(
        http.get(&status_url).send().await.is_err(),
        "the API answered before it was on"
    );

    ui.click("[data-testid=api-token-new]").await;
    let token = ui.text("[data-testid=api-token-value]", SHORT).await;
    assert!(token.starts_with("vt_"), "{token}");
    ui.click("[data-testid=api-enabled]").await;
    ui.wait_text("[data-testid=api-status]", SHORT, |t| {
        t.starts_with("Serving")
    })
    .await;
    ui.script("document.querySelector('[data-testid=api-status]').scrollIntoView({block: 'end'})")
        .await;
    ui.screenshot_settled(&shots.join("ai-api-1-enabled.png"))
        .await;

    let answer = http
        .get(&status_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let status: Value = answer.json().await.unwrap();
    assert!(status["cycles"]["scored"].as_u64().unwrap() > 0, "{status}");
    assert_eq!(status["connection_state"], "connected");
    let refused = http.get(&status_url).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let settings = std::fs::read_to_string(settings_dir.join("settings.toml")).unwrap();
    assert!(
        !settings.contains(&token[3..]),
        "the token reached the settings file"
    );
    assert!(settings.contains("enabled = true"), "{settings}");

    // Add to Claude Desktop: asks first, then merges and keeps a backup.
    ui.click("[data-testid=add-to-claude]").await;
    ui.click("[data-testid=confirm-button]").await;
    let notice = ui.text("[data-testid=ai-notice]", SHORT).await;
    assert!(notice.contains("kept as"), "{notice}");
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(&claude_file).unwrap()).unwrap();
    assert_eq!(merged["theme"], "dark");
    assert_eq!(merged["mcpServers"]["files"]["command"], "npx");
    assert_eq!(
        merged["mcpServers"]["vitaltrends"],
        entry["mcpServers"]["vitaltrends"]
    );
    let backups: Vec<_> = std::fs::read_dir(&claude)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".bak"))
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(std::fs::read_to_string(backups[0].path()).unwrap(), old);
    ui.script("document.querySelector('[data-testid=ai-notice]').scrollIntoView({block: 'end'})")
        .await;
    ui.screenshot_settled(&shots.join("ai-api-2-claude-added.png"))
        .await;

    // Turning it off stops the server. (The switch to the middle, clear of the corner toast.)
    ui.script(
        "document.querySelector('[data-testid=api-enabled]').scrollIntoView({block: 'center'})",
    )
    .await;
    ui.click("[data-testid=api-enabled]").await;
    ui.wait_text("[data-testid=api-status]", SHORT, |t| t == "Off.")
        .await;
    assert!(http.get(&status_url).send().await.is_err());
    ui.close().await;
}
