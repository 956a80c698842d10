//! The Tauri shell: windows, commands, tray, deep links, notifications. Each piece adapts the
//! engine (through `core`) and holds no logic of its own.

use std::sync::Arc;
use std::time::Duration;

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager, RunEvent, State, WebviewUrl, WebviewWindowBuilder, Wry};
use tauri_plugin_deep_link::DeepLinkExt;
use tauri_plugin_opener::OpenerExt;
use tauri_plugin_window_state::{AppHandleExt, StateFlags};

use crate::core::{
    self, AppStatus, Arrival, Core, Dashboard, ForceSyncAnswer, IpcError, IpcResult,
    NavigateTarget, Notice, RangeKey,
};
use crate::handover::Handover;
use crate::session::Sessions;
use crate::setup;

const MAIN_WINDOW: &str = "main";
const TRAY_ID: &str = "vitaltrends";
/// Starts the app in the tray, without a window (as at login, or after the window closed).
pub(crate) const TRAY_FLAG: &str = "--tray";

/// The tray's status line, kept to update its text.
struct TrayLine(MenuItem<Wry>);

/// How the browser hands a sign-in back to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Redirect {
    /// `vitaltrends://oauth/whoop/callback`, which the OS passes to the running app.
    DeepLink,
    /// A one-off listener on 127.0.0.1: the fallback where the scheme could not be registered.
    Loopback,
}

/// The sign-in redirect in use, and the loopback listener waiting for the browser, if any.
pub(crate) struct SignIn {
    redirect: Redirect,
    loopback: std::sync::Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
}

impl SignIn {
    fn new(redirect: Redirect) -> Self {
        SignIn {
            redirect,
            loopback: std::sync::Mutex::new(None),
        }
    }

    fn hold_loopback(&self, task: tauri::async_runtime::JoinHandle<()>) {
        let previous = self
            .loopback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(task);
        if let Some(previous) = previous {
            previous.abort();
        }
    }

    /// Stops listening for a sign-in the person cancelled or started again.
    pub(crate) fn abandon_loopback(&self) {
        if let Some(task) = self
            .loopback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

#[tauri::command]
async fn get_status(sessions: State<'_, Sessions>) -> IpcResult<AppStatus> {
    sessions.status().await
}

#[tauri::command]
async fn connect_whoop(
    app: AppHandle,
    sessions: State<'_, Sessions>,
    sign_in: State<'_, SignIn>,
) -> IpcResult<()> {
    let core = sessions.core()?;
    sign_in.abandon_loopback();
    if sign_in.redirect == Redirect::DeepLink {
        let url = core::begin_connect(&core.engine)?;
        return open_in_browser(&app, &url);
    }
    let (url, waiting) = core::begin_loopback_connect(&core.engine, core.loopback_port).await?;
    let engine = core.engine.clone();
    let handle = app.clone();
    // Cancel aborts this task, but only while it waits for the browser: completing the sign-in
    // (token exchange, saving tokens, queueing the import) runs on a task of its own.
    let task = tauri::async_runtime::spawn(async move {
        match waiting.redirect().await {
            Ok(callback) => {
                tauri::async_runtime::spawn(async move {
                    let handover = handle.state::<Handover>();
                    let _operation = handover.operation().await;
                    let result = core::complete_sign_in(&engine, &callback).await;
                    show_sign_in_result(&handle, result);
                });
            }
            Err(e) => {
                // Timed out (or the listener failed): the card leaves "waiting for your browser".
                engine.cancel_authorization();
                show_sign_in_result(&handle, Err(e.into()));
            }
        }
    });
    sign_in.hold_loopback(task);
    if let Err(e) = open_in_browser(&app, &url) {
        sign_in.abandon_loopback();
        core.engine.cancel_authorization();
        return Err(e);
    }
    Ok(())
}

/// The consent page opens in the system browser, never in the app's webview.
fn open_in_browser(app: &AppHandle, url: &url::Url) -> IpcResult<()> {
    app.opener()
        .open_url(url.as_str(), None::<&str>)
        .map_err(|e| IpcError {
            code: "browser".into(),
            message: format!("Could not open your browser ({e}). Try again."),
        })
}

#[tauri::command]
async fn cancel_connect(
    sessions: State<'_, Sessions>,
    sign_in: State<'_, SignIn>,
) -> IpcResult<()> {
    sign_in.abandon_loopback();
    sessions.core()?.engine.cancel_authorization();
    Ok(())
}

#[tauri::command]
async fn get_licence(sessions: State<'_, Sessions>) -> IpcResult<Option<core::LicenceView>> {
    core::licence(&sessions.core()?.engine).await
}

#[tauri::command]
async fn set_licence(
    sessions: State<'_, Sessions>,
    handover: State<'_, Handover>,
    key: String,
) -> IpcResult<core::LicenceView> {
    let _operation = handover.operation().await;
    core::set_licence(&sessions.core()?.engine, &key).await
}

/// Subscribe / Renew: the pricing page in the system browser.
#[tauri::command]
fn open_pricing(app: AppHandle) -> IpcResult<()> {
    open_in_browser(&app, &core::pricing_url())
}

#[tauri::command]
async fn force_sync(sessions: State<'_, Sessions>) -> IpcResult<ForceSyncAnswer> {
    Ok(core::force_sync(&sessions.core()?.engine))
}

#[tauri::command]
async fn retry_now(sessions: State<'_, Sessions>) -> IpcResult<()> {
    core::retry_now(&sessions.core()?.engine).await
}

#[tauri::command]
async fn disconnect(sessions: State<'_, Sessions>, handover: State<'_, Handover>) -> IpcResult<()> {
    let _operation = handover.operation().await;
    Ok(sessions.core()?.engine.disconnect().await?)
}

/// Switches to the WHOOP account a refused sign-in was for (see `Sessions::switch_member`).
#[tauri::command]
async fn switch_member(sessions: State<'_, Sessions>) -> IpcResult<()> {
    sessions.switch_member().await
}

/// Keeps the member in use and drops the offer to switch.
#[tauri::command]
fn keep_member(sessions: State<'_, Sessions>) -> IpcResult<()> {
    sessions.keep_member()
}

#[tauri::command]
async fn delete_local_data(
    sessions: State<'_, Sessions>,
    handover: State<'_, Handover>,
) -> IpcResult<()> {
    let _operation = handover.operation().await;
    Ok(sessions.core()?.engine.delete_local_data().await?)
}

#[tauri::command]
async fn get_dashboard(sessions: State<'_, Sessions>, range: RangeKey) -> IpcResult<Dashboard> {
    match sessions.core() {
        Ok(core) => core::dashboard(&core.engine, range).await,
        // Nothing chosen yet (or unusable settings): an empty dashboard, the card says why.
        Err(_) => Ok(core::Dashboard::empty(range)),
    }
}

/// Builds the Tokio runtime by hand and keeps Tauri's builder off it: the single-instance
/// plugin panics when set up inside a Tokio runtime on Linux.
pub fn run() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tauri::async_runtime::set(runtime.handle().clone());

    let app = tauri::Builder::default()
        // Before the plugins: a second launch may ask for the window as soon as they run.
        .manage(Handover::default())
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            // A second launch lands here. With a vitaltrends:// link (the OS opening one) the
            // deep-link plugin delivers it and `deliver_deep_link` shows the window with the
            // result; opening it here first would create a window that misses that result.
            tracing::info!(args = argv.len(), "second instance forwarded");
            let link = argv.iter().any(|a| a.starts_with("vitaltrends://"));
            // A login launch (`--tray`) while the app runs already changes nothing.
            if !link && !argv.iter().any(|a| a == TRAY_FLAG) {
                show_main_window(app);
            }
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_dialog::init())
        // The window comes back where the person left it, at the size they chose. Visibility is
        // not restored: the app decides when the window shows.
        .plugin(
            tauri_plugin_window_state::Builder::default()
                .with_state_flags(window_state_flags())
                .build(),
        )
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            // Started at login, the app waits in the tray instead of opening its window.
            Some(vec![TRAY_FLAG]),
        ))
        .invoke_handler(tauri::generate_handler![
            get_status,
            connect_whoop,
            cancel_connect,
            force_sync,
            retry_now,
            disconnect,
            switch_member,
            keep_member,
            delete_local_data,
            get_dashboard,
            crate::settings_ipc::get_settings,
            crate::settings_ipc::choose_mode,
            crate::settings_ipc::save_own_app,
            crate::settings_ipc::set_pref,
            crate::settings_ipc::open_folder,
            crate::data_ipc::get_data,
            crate::data_ipc::choose_export_path,
            crate::data_ipc::export_data,
            crate::data_ipc::choose_backup_path,
            crate::data_ipc::backup_data,
            crate::data_ipc::choose_restore_file,
            crate::data_ipc::restore_data,
            crate::backup_schedule::get_backup_schedule,
            crate::backup_schedule::set_backup_schedule,
            crate::backup_schedule::choose_backup_folder,
            crate::data_ipc::delete_days,
            crate::data_ipc::get_calendar,
            crate::data_ipc::refetch_days,
            get_licence,
            set_licence,
            open_pricing,
            crate::ai_api::get_ai_settings,
            crate::ai_api::set_api_enabled,
            crate::ai_api::set_api_port,
            crate::ai_api::new_api_token,
            crate::ai_api::revoke_api_token,
            crate::ai_api::add_to_claude_desktop,
            crate::ai_api::open_api_doc
        ])
        .setup(|app| {
            let handle = app.handle().clone();
            let log_dir = app.path().app_log_dir()?;
            let guard = setup::logging(&log_dir)?;
            app.manage(guard);
            // The tray first: the engine's first events update its status line.
            build_tray(&handle)?;
            let notifier = Arc::new(crate::notify::TauriNotifier::new(&handle));
            let starter = engine_tasks(handle.clone());
            app.manage(crate::backup_schedule::BackupSchedule::default());
            let sessions =
                tauri::async_runtime::block_on(setup::open_sessions(&handle, notifier, starter))?;
            app.manage(sessions);
            app.manage(crate::ai_api::ApiServer::default());
            crate::ai_api::start_if_enabled(&handle);
            start_background(&handle);
            crate::notify::open_screen_on_click(&handle);
            let redirect = register_deep_links(&handle);
            tracing::info!(?redirect, "sign-in redirect");
            app.manage(SignIn::new(redirect));
            if std::env::args().skip(1).any(|a| a == TRAY_FLAG) {
                tracing::info!("started in the tray");
            } else {
                show_main_window(&handle);
            }
            Ok(())
        })
        .build(tauri::generate_context!())?;

    app.run(|app, event| {
        if let RunEvent::ExitRequested { code, api, .. } = event {
            // Closing the last window keeps VitalTrends in the tray with sync running, unless
            // the person turned that off in Settings → General; Quit (an explicit exit code)
            // always ends it.
            let keep = app
                .try_state::<Sessions>()
                .is_none_or(|s| s.prefs().keep_in_tray);
            if code.is_none() && keep {
                api.prevent_exit();
                tracing::info!("window closed; staying in the tray");
            }
        }
    });
    drop(runtime);
    Ok(())
}

/// What runs beside each connection's engine; stopped when the person switches away from it.
fn engine_tasks(app: AppHandle) -> crate::session::Starter {
    Arc::new(move |core: &Core| {
        let engine = core.engine.clone();
        let start = engine.clone();
        vec![
            tokio::spawn(engine.clone().run_jobs()),
            tokio::spawn(engine.clone().run_scheduler()),
            tokio::spawn(engine.clone().run_stream()),
            tokio::spawn(async move {
                if let Err(e) = start.on_start().await {
                    tracing::warn!(error = %e, "start-up sync check failed");
                }
            }),
            tokio::spawn(forward_events(app.clone(), core.clone())),
            tokio::spawn(crate::backup_schedule::run(app.clone(), engine.clone())),
        ]
    })
}

fn start_background(app: &AppHandle) {
    // "Last synced 5 min ago" ages while nothing happens; events alone would leave it at
    // "just now" for hours when updates are live and quiet.
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut every_minute = tokio::time::interval(Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            if let Ok(status) = app.state::<Sessions>().status().await {
                update_tray(&app, &status);
            }
        }
    });
}

/// After a switch of connection: the window and the tray show the new one at once.
pub(crate) async fn announce_switch(app: &AppHandle) {
    if let Ok(status) = app.state::<Sessions>().status().await {
        update_tray(app, &status);
        let _ = app.emit("status-changed", &status);
    }
    let _ = app.emit("data-changed", ());
    // The REST API serves the connection in use: follow the switch.
    crate::ai_api::start_if_enabled(app);
}

/// Engine events → the webview (`status-changed`, `data-changed`) and the tray line. Bursts of
/// progress are coalesced so a fast import does not flood the webview.
async fn forward_events(app: AppHandle, core: Core) {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = core.engine.subscribe();
    loop {
        let mut data_changed = false;
        match events.recv().await {
            Ok(sync::EngineEvent::DataChanged) => data_changed = true,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => data_changed = true,
            Err(RecvError::Closed) => return,
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        loop {
            match events.try_recv() {
                Ok(sync::EngineEvent::DataChanged)
                | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                    data_changed = true
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        match core::status_of(&core).await {
            Ok(status) => {
                update_tray(&app, &status);
                let _ = app.emit("status-changed", &status);
            }
            Err(e) => tracing::warn!(code = %e.code, "status unavailable"),
        }
        if data_changed {
            let _ = app.emit("data-changed", ());
        }
    }
}

fn build_tray(app: &AppHandle) -> tauri::Result<()> {
    let open = MenuItem::with_id(app, "open", "Open VitalTrends", true, None::<&str>)?;
    let force = MenuItem::with_id(app, "force_sync", "Force Sync", true, None::<&str>)?;
    let line = MenuItem::with_id(app, "last_synced", "Not synced yet", false, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&open, &force, &line, &separator, &quit])?;
    app.manage(TrayLine(line));
    let mut tray = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("VitalTrends")
        .menu(&menu)
        .on_menu_event(|app, event| handle_tray_item(app, event.id().as_ref()));
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

/// What a tray menu item does. Force Sync calls the same engine function as the card's button.
pub(crate) fn handle_tray_item(app: &AppHandle, id: &str) {
    match id {
        "open" => show_main_window(app),
        "force_sync" => match app.state::<Sessions>().core() {
            Ok(core) => {
                let answer = core::force_sync(&core.engine);
                tracing::info!(message = %answer.message, "Force Sync from the tray");
            }
            Err(e) => {
                tracing::info!(code = %e.code, "Force Sync from the tray with nothing connected");
                show_main_window(app);
            }
        },
        "quit" => app.exit(0),
        _ => {}
    }
}

fn update_tray(app: &AppHandle, status: &AppStatus) {
    let Some(line) = app.try_state::<TrayLine>() else {
        return;
    };
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let tooltip = if status.demo {
            "VitalTrends · Demo data"
        } else {
            "VitalTrends"
        };
        let _ = tray.set_tooltip(Some(tooltip));
    }
    let text = match (&status.job, &status.last_synced_at) {
        (Some(job), _) => match job.percent {
            Some(p) => format!("Syncing… {}%", p.round()),
            None => "Importing history…".to_string(),
        },
        (None, Some(at)) => match chrono::DateTime::parse_from_rfc3339(at) {
            Ok(at) => format!(
                "Last synced {}",
                ago(chrono::Utc::now() - at.with_timezone(&chrono::Utc))
            ),
            Err(_) => "Last synced".to_string(),
        },
        (None, None) => "Not synced yet".to_string(),
    };
    // Linux trays show no tooltip (appindicator has none), so the menu's line says it too.
    let text = if status.demo {
        format!("Demo data · {text}")
    } else {
        text
    };
    let _ = line.0.set_text(text);
}

fn ago(elapsed: chrono::Duration) -> String {
    let minutes = elapsed.num_minutes();
    match minutes {
        m if m < 1 => "just now".into(),
        m if m < 60 => format!("{m} min ago"),
        m if m < 48 * 60 => format!("{} h ago", m / 60),
        m => format!("{} days ago", m / (24 * 60)),
    }
}

/// Registers the `vitaltrends://` scheme where that happens at run time and listens for links.
/// Returns how sign-ins come back: by deep link, or by loopback where registering failed (or
/// `VITALTRENDS_SIGN_IN_REDIRECT=loopback` asks for it, for desktops whose URL handling is
/// broken).
fn register_deep_links(app: &AppHandle) -> Redirect {
    let mut redirect = Redirect::DeepLink;
    // Linux (and Windows dev builds) register the scheme at runtime; macOS reads the bundle.
    #[cfg(any(target_os = "linux", all(debug_assertions, windows)))]
    if let Err(e) = app.deep_link().register_all() {
        tracing::warn!(error = %e, "could not register the vitaltrends:// scheme; signing in through loopback");
        redirect = Redirect::Loopback;
    }
    if std::env::var("VITALTRENDS_SIGN_IN_REDIRECT").as_deref() == Ok("loopback") {
        redirect = Redirect::Loopback;
    }
    let handle = app.clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            let app = handle.clone();
            tauri::async_runtime::spawn(
                async move { deliver_deep_link(app, url.to_string()).await },
            );
        }
    });
    redirect
}

async fn deliver_deep_link(app: AppHandle, url: String) {
    let handover = app.state::<Handover>();
    let _operation = handover.operation().await;
    let result = match app.state::<Sessions>().core() {
        Ok(core) => core::handle_deep_link(&core.engine, &url).await,
        Err(e) => Err(e),
    };
    show_sign_in_result(&app, result);
}

/// How a sign-in ended, by link or by loopback: the Connections screen with a notice.
fn show_sign_in_result(app: &AppHandle, result: IpcResult<String>) {
    let notice = match result {
        Ok(message) => Notice {
            kind: "info".into(),
            message,
        },
        Err(e) => {
            tracing::warn!(code = %e.code, "sign-in refused or failed");
            Notice {
                kind: "error".into(),
                message: e.message,
            }
        }
    };
    show_main_window_for(
        app,
        Arrival {
            screen: Some(NavigateTarget::Connections),
            notice: Some(notice),
        },
    );
}

/// Shows the main window, creating its webview again if it was closed to the tray.
pub(crate) fn show_main_window(app: &AppHandle) {
    show_main_window_for(app, Arrival::default());
}

/// Shows the main window on the screen (and with the notice) `arrival` names.
pub(crate) fn show_main_window_for(app: &AppHandle, arrival: Arrival) {
    let handover = app.state::<Handover>();
    let Some(_opening) = handover.opening() else {
        return;
    };
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        if let Some(screen) = arrival.screen {
            let _ = app.emit("navigate", screen);
        }
        if let Some(notice) = arrival.notice {
            let _ = app.emit("notice", notice);
        }
        return;
    }
    // JSON is a JavaScript expression; the webview reads it before the UI starts.
    let arrival = serde_json::to_string(&arrival).unwrap_or_else(|_| "{}".into());
    let built = WebviewWindowBuilder::new(app, MAIN_WINDOW, WebviewUrl::default())
        .title("VitalTrends")
        .inner_size(1100.0, 720.0)
        .min_inner_size(800.0, 560.0)
        // Hidden until the window-state plugin has put it back where it was, so it does not
        // flash at the default place first.
        .visible(false)
        .initialization_script(format!("window.__vtArrival={arrival};"))
        // Collects script errors where the end-to-end suite (and a developer) can read them.
        .initialization_script("window.__errs=[];addEventListener('error',e=>__errs.push(e.message+' @'+e.filename+':'+e.lineno));addEventListener('unhandledrejection',e=>__errs.push('rejected: '+(e.reason&&e.reason.stack||e.reason)));")
        .build();
    match built {
        Ok(window) => {
            let handle = app.clone();
            window.on_window_event(move |event| {
                if let tauri::WindowEvent::Destroyed = event {
                    // Written now, not only at Quit: a tray-resident app may never quit cleanly.
                    if let Err(e) = handle.save_window_state(window_state_flags()) {
                        tracing::warn!(error = %e, "could not save the window's size and place");
                    }
                    crate::footprint::release_when_windowless(&handle);
                }
            });
            let _ = window.show();
            let _ = window.set_focus();
        }
        Err(e) => tracing::error!(error = %e, "could not open the window"),
    }
}

fn window_state_flags() -> StateFlags {
    StateFlags::all() - StateFlags::VISIBLE
}
