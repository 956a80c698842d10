//! OS notifications: shown through the notification plugin with the app's icon, and a click on
//! one opens the window on the screen it is about.

use std::path::PathBuf;

use tauri::{AppHandle, Manager};
use tauri_plugin_notification::NotificationExt;

use crate::core::{self, Arrival};

/// The app icon as a file the notification server can load: notification servers take an icon
/// name from the installed theme or a path, and a development build has no installed icon.
const ICON_PNG: &[u8] = include_bytes!("../../icons/128x128.png");

pub struct TauriNotifier {
    app: AppHandle,
    icon: Option<PathBuf>,
}

impl TauriNotifier {
    pub fn new(app: &AppHandle) -> TauriNotifier {
        TauriNotifier {
            app: app.clone(),
            icon: write_icon(app),
        }
    }
}

/// Writes the icon into the app's cache directory (once per start; it is tiny).
fn write_icon(app: &AppHandle) -> Option<PathBuf> {
    let dir = app.path().app_cache_dir().ok()?;
    let path = dir.join("notification-icon.png");
    let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, ICON_PNG));
    match written {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(error = %e, "notifications will show without the app's icon");
            None
        }
    }
}

impl sync::Notifier for TauriNotifier {
    fn notify(&self, notification: sync::Notification) {
        let mut builder = self
            .app
            .notification()
            .builder()
            .id(core::notification_id(notification.kind))
            .title(&notification.title)
            .body(&notification.body);
        if let Some(icon) = &self.icon {
            builder = builder.icon(icon.display().to_string());
        }
        match builder.show() {
            Ok(()) => {
                if let Some(handover) = self.app.try_state::<crate::handover::Handover>() {
                    handover.notified();
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not show a notification"),
        }
    }
}

/// A click on one of our OS notifications opens the app on the screen it is about.
pub fn open_screen_on_click(app: &AppHandle) {
    let handle = app.clone();
    let registered = app.notification().on_action(move |performed| {
        if performed.action_id() != "tap" {
            return;
        }
        let screen = performed
            .notification()
            .and_then(|n| core::notification_screen(n.id()));
        tracing::info!(?screen, "notification clicked");
        crate::app::show_main_window_for(
            &handle,
            Arrival {
                screen,
                notice: None,
            },
        );
    });
    if let Err(e) = registered {
        tracing::warn!(error = %e, "notification clicks will not open the app");
    }
}
