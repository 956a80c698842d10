//! Settings → AI & API: the Claude Desktop entry for `vitaltrends mcp` (shown, copied, or merged
//! into Claude Desktop's config after the person confirms), and the local REST API the app
//! serves while the person has it on. The API reads the database of the connection in use,
//! read-only; the token is shown once when made and only its hash is kept.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use tauri::{AppHandle, Manager, State};
use ts_rs::TS;

use crate::core::{IpcError, IpcResult};
use crate::session::Sessions;

/// What the section shows. Never the token.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct AiSettingsView {
    /// The `vitaltrends` command-line tool's absolute path; None when it is not installed
    /// beside the app or on the PATH.
    pub cli_path: Option<String>,
    /// The `claude_desktop_config.json` snippet (with the path above, or where it should be).
    pub claude_snippet: String,
    /// Claude Desktop's config file, when Claude Desktop is installed (its folder exists).
    pub claude_config: Option<String>,
    pub api_enabled: bool,
    pub api_port: u16,
    /// The server is listening now.
    pub api_running: bool,
    pub has_token: bool,
    pub openapi_url: String,
    /// Why the API is on but not serving (no data yet, port taken, no token).
    pub api_problem: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct NewToken {
    /// Shown once; the app keeps only its SHA-256.
    pub token: String,
    pub view: AiSettingsView,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct ClaudeAdded {
    pub file: String,
    pub backup: Option<String>,
}

struct Running {
    port: u16,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// The REST server the app runs while enabled.
#[derive(Default)]
pub struct ApiServer {
    running: Mutex<Option<Running>>,
    problem: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ipc(code: &str, message: impl Into<String>) -> IpcError {
    IpcError {
        code: code.into(),
        message: message.into(),
    }
}

/// The CLI next to the app's own executable (how the packages install it), else on the PATH.
fn find_cli() -> Option<PathBuf> {
    let name = format!("vitaltrends{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(&name)))
        .filter(|p| p.is_file());
    beside.or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join(&name))
            .find(|p| p.is_file())
    })
}

/// The data directory of the connection in use, the one the window shows.
fn data_dir(sessions: &Sessions) -> IpcResult<PathBuf> {
    let mode = sessions.mode().ok_or_else(|| {
        ipc(
            "no_connection",
            "Choose how to connect WHOOP first: there is no data to share yet.",
        )
    })?;
    Ok(sessions.data_dir(mode))
}

fn load(sessions: &Sessions) -> IpcResult<config::Config> {
    config::Config::load(sessions.settings_file()).map_err(|e| ipc(e.code(), e.to_string()))
}

fn save(sessions: &Sessions, config: &config::Config) -> IpcResult<()> {
    config
        .save(sessions.settings_file())
        .map_err(|e| ipc(e.code(), e.to_string()))
}

fn view(sessions: &Sessions, server: &ApiServer) -> IpcResult<AiSettingsView> {
    let config = load(sessions)?;
    let cli = find_cli();
    let shown_cli = cli
        .clone()
        .unwrap_or_else(|| PathBuf::from("/path/to/vitaltrends"));
    let data = data_dir(sessions).unwrap_or_else(|_| PathBuf::from("/path/to/data"));
    let entry = api::claude::entry(&shown_cli, &data);
    let running = lock(&server.running).as_ref().map(|r| r.port);
    let port = running.unwrap_or(config.api.port);
    Ok(AiSettingsView {
        cli_path: cli.map(|p| p.display().to_string()),
        claude_snippet: api::claude::snippet(&entry),
        claude_config: api::claude::config_dir()
            .filter(|d| d.is_dir())
            .map(|d| api::claude::config_file(&d).display().to_string()),
        api_enabled: config.api.enabled,
        api_port: config.api.port,
        api_running: running.is_some(),
        has_token: config.api.token_sha256.is_some(),
        openapi_url: format!("http://127.0.0.1:{port}{}/openapi.json", api::rest::PREFIX),
        api_problem: lock(&server.problem).clone(),
    })
}

/// Stops serving (a restore swaps the database file the server reads); `apply` or
/// `start_if_enabled` serves again.
pub fn stop(server: &ApiServer) {
    if let Some(old) = lock(&server.running).take() {
        let _ = old.stop.send(());
    }
}

/// Starts or stops the server to match the settings (and the connection in use).
pub async fn apply(sessions: &Sessions, server: &ApiServer) {
    if let Some(old) = lock(&server.running).take() {
        let _ = old.stop.send(());
    }
    *lock(&server.problem) = None;
    let config = match load(sessions) {
        Ok(c) => c,
        Err(e) => {
            *lock(&server.problem) = Some(e.message);
            return;
        }
    };
    if !config.api.enabled {
        return;
    }
    let problem = match start(sessions, &config).await {
        Ok((port, stop)) => {
            tracing::info!(port, "local REST API serving");
            *lock(&server.running) = Some(Running { port, stop });
            None
        }
        Err(message) => Some(message),
    };
    if let Some(p) = &problem {
        tracing::warn!(problem = %p, "local REST API not serving");
    }
    *lock(&server.problem) = problem;
}

async fn start(
    sessions: &Sessions,
    config: &config::Config,
) -> Result<(u16, tokio::sync::oneshot::Sender<()>), String> {
    let Some(hash) = config.api.token_sha256.clone() else {
        return Err("Generate a token to use the API.".into());
    };
    let data = data_dir(sessions).map_err(|e| e.message)?;
    let reader = api::open_reader(&data.join(sync::DATABASE_FILE))
        .await
        .map_err(|_| {
            "There is no data to serve yet: connect WHOOP and import first.".to_string()
        })?;
    let listener = api::rest::bind(config.api.port)
        .await
        .map_err(|e| format!("Port {} cannot be used ({e}).", config.api.port))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = api::rest::router(reader, Some(&hash));
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = api::rest::serve(listener, router, shutdown).await {
            tracing::error!(error = %e, "local REST API stopped");
        }
    });
    Ok((port, stop))
}

/// At start-up: serve if the person left the API on.
pub fn start_if_enabled(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        apply(&app.state::<Sessions>(), &app.state::<ApiServer>()).await;
    });
}

#[tauri::command]
pub async fn get_ai_settings(
    sessions: State<'_, Sessions>,
    server: State<'_, ApiServer>,
) -> IpcResult<AiSettingsView> {
    view(&sessions, &server)
}

#[tauri::command]
pub async fn set_api_enabled(
    sessions: State<'_, Sessions>,
    server: State<'_, ApiServer>,
    enabled: bool,
) -> IpcResult<AiSettingsView> {
    let mut config = load(&sessions)?;
    config.api.enabled = enabled;
    save(&sessions, &config)?;
    apply(&sessions, &server).await;
    view(&sessions, &server)
}

#[tauri::command]
pub async fn set_api_port(
    sessions: State<'_, Sessions>,
    server: State<'_, ApiServer>,
    port: u16,
) -> IpcResult<AiSettingsView> {
    let mut config = load(&sessions)?;
    config
        .set("api.port", &port.to_string())
        .map_err(|e| ipc(e.code(), e.to_string()))?;
    save(&sessions, &config)?;
    apply(&sessions, &server).await;
    view(&sessions, &server)
}

/// A new token, replacing the old one; the webview shows it once.
#[tauri::command]
pub async fn new_api_token(
    sessions: State<'_, Sessions>,
    server: State<'_, ApiServer>,
) -> IpcResult<NewToken> {
    let (token, hash) = api::rest::new_token();
    let mut config = load(&sessions)?;
    config.api.token_sha256 = Some(hash);
    save(&sessions, &config)?;
    apply(&sessions, &server).await;
    Ok(NewToken {
        token,
        view: view(&sessions, &server)?,
    })
}

#[tauri::command]
pub async fn revoke_api_token(
    sessions: State<'_, Sessions>,
    server: State<'_, ApiServer>,
) -> IpcResult<AiSettingsView> {
    let mut config = load(&sessions)?;
    config.api.token_sha256 = None;
    save(&sessions, &config)?;
    apply(&sessions, &server).await;
    view(&sessions, &server)
}

/// Merges the entry into Claude Desktop's config (the window asked first).
#[tauri::command]
pub async fn add_to_claude_desktop(sessions: State<'_, Sessions>) -> IpcResult<ClaudeAdded> {
    let cli = find_cli().ok_or_else(|| {
        ipc(
            "cli_missing",
            "The vitaltrends command-line tool is not installed beside the app or on your PATH.",
        )
    })?;
    let data = data_dir(&sessions)?;
    let dir = api::claude::config_dir()
        .ok_or_else(|| ipc("claude_missing", "Claude Desktop is not installed."))?;
    let added = api::claude::add(&dir, &api::claude::entry(&cli, &data))
        .map_err(|m| ipc("claude_config", crate::core::sentence(&m)))?;
    Ok(ClaudeAdded {
        file: added.file.display().to_string(),
        backup: added
            .backup
            .as_deref()
            .map(Path::display)
            .map(|d| d.to_string()),
    })
}

/// Opens the OpenAPI document in the system browser (it needs no token).
#[tauri::command]
pub async fn open_api_doc(
    app: AppHandle,
    sessions: State<'_, Sessions>,
    server: State<'_, ApiServer>,
) -> IpcResult<()> {
    use tauri_plugin_opener::OpenerExt;
    let url = view(&sessions, &server)?.openapi_url;
    app.opener()
        .open_url(url, None::<&str>)
        .map_err(|e| ipc("open_url", format!("Could not open the browser ({e}).")))
}
