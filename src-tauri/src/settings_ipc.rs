//! The commands behind the connection chooser, the own-app form and Settings → General and
//! About. Each adapts `Sessions`; switching connections also stops a sign-in in progress and
//! tells the window and tray.

use tauri::{AppHandle, State};
use tauri_plugin_autostart::ManagerExt;
use tauri_plugin_opener::OpenerExt;

use crate::app::SignIn;
use crate::core::{IpcError, IpcResult};
use crate::session::{ModeKey, OwnAppForm, PrefsView, Sessions, SettingsView};

#[tauri::command]
pub async fn get_settings(sessions: State<'_, Sessions>) -> IpcResult<SettingsView> {
    Ok(sessions.settings_view())
}

/// Switches to the VitalTrends service or demo data, or (`null`) back to nothing chosen.
#[tauri::command]
pub async fn choose_mode(
    app: AppHandle,
    sessions: State<'_, Sessions>,
    sign_in: State<'_, SignIn>,
    mode: Option<ModeKey>,
) -> IpcResult<SettingsView> {
    if mode == Some(ModeKey::OwnApp) {
        return Err(IpcError {
            code: "use_form".into(),
            message: "Enter your WHOOP app's details to use it.".into(),
        });
    }
    sign_in.abandon_loopback();
    let result = sessions.choose(mode.map(Into::into)).await;
    crate::app::announce_switch(&app).await;
    result.map(|()| sessions.settings_view())
}

#[tauri::command]
pub async fn save_own_app(
    app: AppHandle,
    sessions: State<'_, Sessions>,
    sign_in: State<'_, SignIn>,
    form: OwnAppForm,
) -> IpcResult<SettingsView> {
    sign_in.abandon_loopback();
    let result = sessions.save_own_app(form).await;
    crate::app::announce_switch(&app).await;
    result.map(|()| sessions.settings_view())
}

/// One switch of Settings → General. Starting at login is registered with the OS first, so the
/// setting never claims what the OS does not do.
#[tauri::command]
pub async fn set_pref(
    app: AppHandle,
    sessions: State<'_, Sessions>,
    key: String,
    value: bool,
) -> IpcResult<PrefsView> {
    if key == "start_at_login" {
        let autostart = app.autolaunch();
        let registered = if value {
            autostart.enable()
        } else {
            autostart.disable()
        };
        registered.map_err(|e| IpcError {
            code: "autostart".into(),
            message: format!("Your system did not accept the change ({e})."),
        })?;
    }
    sessions.set_pref(&key, value)
}

/// Opens the data, log or settings folder in the file manager.
#[tauri::command]
pub async fn open_folder(
    app: AppHandle,
    sessions: State<'_, Sessions>,
    which: String,
) -> IpcResult<()> {
    let path = sessions.folder(&which).ok_or_else(|| IpcError {
        code: "unknown_folder".into(),
        message: format!("There is no folder called {which}."),
    })?;
    // A folder not written yet (logs before the first line, a mode never used) opens anyway.
    let _ = std::fs::create_dir_all(&path);
    app.opener()
        .open_path(path.display().to_string(), None::<&str>)
        .map_err(|e| IpcError {
            code: "open_folder".into(),
            message: format!("Could not open {} ({e}).", path.display()),
        })
}
