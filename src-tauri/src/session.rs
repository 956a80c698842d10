//! Which way the app is connected right now (the VitalTrends service, the person's own WHOOP
//! developer app, demo data, or nothing chosen yet), and switching between them without a
//! restart. Testable without a desktop: the Tauri shell hands in how to notify and what to run
//! beside each engine, tests hand in their own.
//!
//! Each mode keeps its records in a directory of its own under the data root (`service/`,
//! `own-app/`, `demo/`), so switching never mixes them. Inside one mode, a sign-in as a different
//! WHOOP member is refused by the engine (`other_member`) rather than merged; the person may then
//! switch accounts (`switch_member`), which sets the current member's store aside
//! (`sync::members`): one store per (mode, member).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use config::{Choice, Config, DesktopPrefs, Mode, Release, CLIENT_SECRET_NAME, SECRETS_PROFILE};
use serde::{Deserialize, Serialize};
use sync::{Engine, EngineOptions, InsecureFileStore, KeychainStore, SecretStore, Settings};
use tokio::task::JoinHandle;
use ts_rs::TS;
use whoop::Secret;

use crate::core::{self, AppStatus, Core, IpcError, IpcResult};

/// Where the app keeps things.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Each mode's data directory goes under it.
    pub data_root: PathBuf,
    pub settings_file: PathBuf,
    pub log_dir: PathBuf,
}

/// Where tokens and the own app's client secret are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretsKind {
    /// The OS keychain (the default).
    Keychain,
    /// A plaintext file, for machines without a keychain (`VITALTRENDS_SECRET_STORE=insecure-file`).
    InsecureFile,
}

/// What runs beside each engine (its job runner, scheduler, event stream, and the shell's event
/// forwarding); stopped when the app switches away from it.
pub type Starter = Arc<dyn Fn(&Core) -> Vec<JoinHandle<()>> + Send + Sync>;

/// The running connection, and what the shell needs to switch it.
pub struct Sessions {
    paths: Paths,
    secrets_kind: SecretsKind,
    notifier: Arc<dyn sync::Notifier>,
    starter: Starter,
    release: Release,
    active: RwLock<Active>,
    /// A mode chosen in the window this run outranks `VITALTRENDS_MODE` (which only says how
    /// the app starts): `Some(None)` is "nothing chosen" after leaving demo data.
    window_choice: Mutex<Option<Option<Mode>>>,
    switching: tokio::sync::Mutex<()>,
    prefs: Arc<RwLock<DesktopPrefs>>,
}

enum Active {
    Running(Box<Running>),
    Unchosen,
    /// The settings cannot be used (a broken file, a bad value, no keychain): the card says why.
    Problem(IpcError),
}

struct Running {
    core: Core,
    tasks: Vec<JoinHandle<()>>,
    /// Demo mode's in-process simulator and relay, stopped when dropped.
    _demo: Option<DemoServices>,
}

#[cfg(feature = "demo")]
type DemoServices = crate::demo::Demo;
/// A build without demo data has nothing to keep running beside a demo engine.
#[cfg(not(feature = "demo"))]
type DemoServices = std::convert::Infallible;

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The own-app form as the window sends it. The secret crosses once, on its way to the keychain.
#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct OwnAppForm {
    pub client_id: String,
    /// Empty or absent keeps the secret already stored.
    #[ts(optional)]
    pub client_secret: Option<String>,
    /// A self-hosted relay for live updates; it then holds the secret.
    #[ts(optional)]
    pub relay_url: Option<String>,
    #[ts(type = "number")]
    pub loopback_port: u16,
    /// WHOOP's API address (advanced; a simulator's in tests).
    #[ts(optional)]
    pub whoop_base_url: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
#[serde(rename_all = "kebab-case")]
pub enum ModeKey {
    Service,
    OwnApp,
    Demo,
}

impl From<Mode> for ModeKey {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Service => ModeKey::Service,
            Mode::OwnApp => ModeKey::OwnApp,
            Mode::Demo => ModeKey::Demo,
        }
    }
}

impl From<ModeKey> for Mode {
    fn from(mode: ModeKey) -> Self {
        match mode {
            ModeKey::Service => Mode::Service,
            ModeKey::OwnApp => Mode::OwnApp,
            ModeKey::Demo => Mode::Demo,
        }
    }
}

/// The own app's settings as the form shows them; never the secret, only whether one is kept.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct OwnAppView {
    pub client_id: Option<String>,
    pub has_secret: bool,
    pub relay_url: Option<String>,
    pub loopback_port: f64,
    pub whoop_base_url: Option<String>,
    /// The redirect URIs to register at WHOOP, exactly.
    pub deep_link_redirect_uri: String,
    pub loopback_redirect_uri: String,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct PrefsView {
    pub keep_in_tray: bool,
    pub start_at_login: bool,
    pub start_at_login_asked: bool,
    pub notify_import: bool,
    pub notify_force_sync: bool,
    pub notify_reconnect: bool,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct AboutView {
    pub version: String,
    pub mode_label: String,
    pub data_dir: String,
    pub log_dir: String,
    pub settings_file: String,
}

/// Everything the chooser, the own-app form and Settings → General and About show.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export, export_to = "../../ui/src/bindings/")]
pub struct SettingsView {
    pub mode: Option<ModeKey>,
    pub service_available: bool,
    /// Whether this build carries demo data (a release may leave it out).
    pub demo_available: bool,
    pub problem: Option<IpcError>,
    pub own_app: OwnAppView,
    pub prefs: PrefsView,
    pub about: AboutView,
}

impl Sessions {
    /// Reads the settings and starts whatever they choose (or nothing, if nothing is chosen).
    pub async fn open(
        paths: Paths,
        secrets_kind: SecretsKind,
        notifier: Arc<dyn sync::Notifier>,
        starter: Starter,
        release: Release,
    ) -> Sessions {
        let sessions = Sessions {
            paths,
            secrets_kind,
            notifier,
            starter,
            release,
            active: RwLock::new(Active::Unchosen),
            window_choice: Mutex::new(None),
            switching: tokio::sync::Mutex::new(()),
            prefs: Arc::new(RwLock::new(DesktopPrefs::default())),
        };
        let active = sessions.start_chosen().await;
        *write(&sessions.active) = active;
        sessions
    }

    /// The running engine, or why there is none.
    pub fn core(&self) -> IpcResult<Core> {
        match &*read(&self.active) {
            Active::Running(running) => Ok(running.core.clone()),
            Active::Unchosen => Err(IpcError {
                code: "not_configured".into(),
                message: "Choose how to connect to WHOOP first.".into(),
            }),
            Active::Problem(problem) => Err(problem.clone()),
        }
    }

    pub fn mode(&self) -> Option<Mode> {
        match &*read(&self.active) {
            Active::Running(running) => Some(running.core.mode),
            _ => None,
        }
    }

    /// The card and status line; without an engine, "not connected" and why.
    pub async fn status(&self) -> IpcResult<AppStatus> {
        let problem = match self.core() {
            Ok(core) => return core::status_of(&core).await,
            Err(e) if e.code == "not_configured" => None,
            Err(e) => Some(e.message),
        };
        Ok(AppStatus::unconfigured(problem))
    }

    /// Switches to the WHOOP member a refused sign-in was for, within the same mode: the member
    /// in use is disconnected (access withdrawn, history kept) and their store set aside under
    /// `members/<user id>/`; the other member's store comes back if they had one here before, or
    /// a new one starts. The person then signs in again as that member (their refused grant was
    /// withdrawn), and records of the two never share a file.
    pub async fn switch_member(&self) -> IpcResult<()> {
        let _one_at_a_time = self.switching.lock().await;
        let core = self.core()?;
        let Some(target) = core.engine.refused_member() else {
            return Err(IpcError {
                code: "no_member_to_switch_to".into(),
                message: "There is no other WHOOP account to switch to. Sign in to WHOOP as that \
                          account first."
                    .into(),
            });
        };
        let current = match core.engine.connection_state().await?.user() {
            Some((id, _)) => Some(id),
            None => core
                .engine
                .store()
                .profile()
                .await
                .map_err(sync::Error::from)?
                .map(|p| p.user_id),
        };
        match core.engine.disconnect().await {
            Ok(()) | Err(sync::Error::NotConnected) => {}
            // Their access could not be withdrawn (WHOOP unreachable): switching now would lose
            // the tokens needed to withdraw it later, so nothing moves.
            Err(e) => return Err(e.into()),
        }
        let data_dir = self.data_dir(core.mode);
        let previous = std::mem::replace(&mut *write(&self.active), Active::Unchosen);
        drop(previous);
        core.engine.store().close().await;
        drop(core);
        let moved = (|| -> std::io::Result<()> {
            if let Some(current) = current {
                sync::members::set_aside(&data_dir, current)?;
            }
            sync::members::bring_back(&data_dir, target.user_id)?;
            Ok(())
        })();
        if let Err(e) = &moved {
            tracing::warn!(error = %e, "could not set the member's store aside");
        }
        // Whatever happened to the files, something runs again: the store in place.
        let next = self.start_chosen().await;
        let problem = match &next {
            Active::Problem(p) => Some(p.clone()),
            _ => None,
        };
        *write(&self.active) = next;
        if let Err(e) = moved {
            return Err(IpcError {
                code: "switch_failed".into(),
                message: format!("The records could not be set aside ({e}); nothing was switched."),
            });
        }
        problem.map_or(Ok(()), Err)
    }

    /// Stops the engine in use and closes its store, runs `replace` on that mode's data
    /// directory (nothing holds the database meanwhile), then starts the engine again on whatever
    /// is there, whether `replace` succeeded or not. Used by restore.
    pub async fn with_store_closed<T>(
        &self,
        replace: impl AsyncFnOnce(&std::path::Path) -> IpcResult<T>,
    ) -> IpcResult<T> {
        let _one_at_a_time = self.switching.lock().await;
        let data_dir = self.data_dir(self.core()?.mode);
        self.stop_running().await;
        let result = replace(&data_dir).await;
        let restarted = self.restart().await;
        let value = result?;
        restarted.map(|()| value)
    }

    /// Stops the engine in use (its tasks, demo mode's services) and closes its store, for a
    /// process about to be replaced by a fresh one (`handover`).
    pub async fn stop(&self) {
        let _one_at_a_time = self.switching.lock().await;
        self.stop_running().await;
    }

    /// Takes the engine in use down and closes its store (the caller holds `switching`).
    async fn stop_running(&self) {
        let core = self.core().ok();
        let previous = std::mem::replace(&mut *write(&self.active), Active::Unchosen);
        // The old engine's tasks (sync, stream, scheduler) stop before the store closes.
        drop(previous);
        if let Some(core) = core {
            core.engine.store().close().await;
        }
    }

    /// Starts again what `stop` stopped, when the process could not be replaced after all.
    pub async fn resume(&self) -> IpcResult<()> {
        let _one_at_a_time = self.switching.lock().await;
        self.restart().await
    }

    /// The mode chosen in this window, for a process that replaces this one: the settings file
    /// holds the choice too, but a `VITALTRENDS_MODE` in the environment would win over it
    /// there as it did here before the choice. `None`: nothing was chosen in the window.
    pub fn chosen_mode_env(&self) -> Option<(&'static str, String)> {
        lock(&self.window_choice).map(|mode| {
            (
                "VITALTRENDS_MODE",
                mode.map(|m| m.key().to_string()).unwrap_or_default(),
            )
        })
    }

    /// Dismisses the offer to switch to the member of a refused sign-in.
    pub fn keep_member(&self) -> IpcResult<()> {
        self.core()?.engine.forget_refused_member();
        Ok(())
    }

    /// The desktop preferences as last read or saved.
    pub fn prefs(&self) -> DesktopPrefs {
        read(&self.prefs).clone()
    }

    /// Switches to `mode` (`None`: nothing chosen, e.g. leaving demo data), saving the choice.
    pub async fn choose(&self, mode: Option<Mode>) -> IpcResult<()> {
        let _one_at_a_time = self.switching.lock().await;
        if mode == Some(Mode::Service) && !self.release.has_service() {
            return Err(IpcError {
                code: "no_service".into(),
                message: "This build of VitalTrends has no VitalTrends service. Use your own \
                          WHOOP developer app or demo data."
                    .into(),
            });
        }
        #[cfg(not(feature = "demo"))]
        if mode == Some(Mode::Demo) {
            return Err(no_demo());
        }
        let mut config = self.load_config()?;
        config.mode = mode;
        self.save_config(&config)?;
        *lock(&self.window_choice) = Some(mode);
        self.restart().await
    }

    /// Saves the own-app form (the secret to the keychain, the rest to the file) and switches
    /// to the own app. Nothing is saved unless all of it is valid.
    pub async fn save_own_app(&self, form: OwnAppForm) -> IpcResult<()> {
        let _one_at_a_time = self.switching.lock().await;
        let mut config = self.load_config()?;
        let field = |e: config::Error| IpcError {
            code: "invalid_field".into(),
            message: match e {
                config::Error::BadValue { key, message } => {
                    format!("{}: {message}.", field_label(&key))
                }
                other => other.to_string(),
            },
        };
        config
            .set("whoop.client_id", &form.client_id)
            .map_err(field)?;
        match form.relay_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => config.set("relay.url", url).map_err(field)?,
            _ => config.unset("relay.url").map_err(field)?,
        }
        match form.whoop_base_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => config.set("whoop.base_url", url).map_err(field)?,
            _ => config.unset("whoop.base_url").map_err(field)?,
        }
        config
            .set("loopback.port", &form.loopback_port.to_string())
            .map_err(field)?;
        let secrets = self.settings_secrets();
        let new_secret = form
            .client_secret
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let has_secret = new_secret.is_some() || secrets.get(CLIENT_SECRET_NAME)?.is_some();
        if !has_secret && config.relay.url.is_none() {
            return Err(IpcError {
                code: "secret_required".into(),
                message: "Enter your WHOOP app's client secret (or a relay that holds it).".into(),
            });
        }
        if let Some(secret) = new_secret {
            secrets.set(CLIENT_SECRET_NAME, &Secret::new(secret.to_string()))?;
        }
        config.mode = Some(Mode::OwnApp);
        self.save_config(&config)?;
        *lock(&self.window_choice) = Some(Some(Mode::OwnApp));
        self.restart().await
    }

    /// Changes one desktop preference (`keep_in_tray`, `start_at_login`, `notify_import`,
    /// `notify_force_sync`, `notify_reconnect`, or `start_at_login_asked`).
    pub fn set_pref(&self, key: &str, value: bool) -> IpcResult<PrefsView> {
        let mut config = self.load_config()?;
        if key == "start_at_login_asked" {
            config.desktop.start_at_login_asked = value;
        } else {
            config
                .set(&format!("desktop.{key}"), &value.to_string())
                .map_err(|e| IpcError {
                    code: "settings_invalid".into(),
                    message: e.to_string(),
                })?;
            if key == "start_at_login" {
                config.desktop.start_at_login_asked = true;
            }
        }
        self.save_config(&config)?;
        *write(&self.prefs) = config.desktop.clone();
        Ok(prefs_view(&config.desktop))
    }

    pub fn settings_view(&self) -> SettingsView {
        let (config, file_problem) = match Config::load(&self.paths.settings_file) {
            Ok(config) => (config, None),
            Err(e) => (Config::default(), Some(settings_error(e))),
        };
        let problem = file_problem.or_else(|| match &*read(&self.active) {
            Active::Problem(p) => Some(p.clone()),
            _ => None,
        });
        let port = config
            .loopback
            .port
            .unwrap_or(config::DEFAULT_LOOPBACK_PORT);
        let has_secret = matches!(self.settings_secrets().get(CLIENT_SECRET_NAME), Ok(Some(_)));
        let mode = self.mode();
        SettingsView {
            mode: mode.map(ModeKey::from),
            service_available: self.release.has_service(),
            demo_available: cfg!(feature = "demo"),
            problem,
            own_app: OwnAppView {
                client_id: config.whoop.client_id.clone(),
                has_secret,
                relay_url: config.relay.url.clone(),
                loopback_port: f64::from(port),
                whoop_base_url: config.whoop.base_url.clone(),
                deep_link_redirect_uri: config::DEEP_LINK_REDIRECT_URI.to_string(),
                loopback_redirect_uri: config::loopback_redirect_uri(port),
            },
            prefs: prefs_view(&config.desktop),
            about: AboutView {
                version: env!("CARGO_PKG_VERSION").to_string(),
                mode_label: mode.map_or("Not chosen yet", Mode::label).to_string(),
                data_dir: self
                    .folder("data")
                    .unwrap_or_default()
                    .display()
                    .to_string(),
                log_dir: self.paths.log_dir.display().to_string(),
                settings_file: self.paths.settings_file.display().to_string(),
            },
        }
    }

    /// The settings file shared with the CLI.
    pub fn settings_file(&self) -> &std::path::Path {
        &self.paths.settings_file
    }

    /// The directory of a mode's records.
    pub fn data_dir(&self, mode: Mode) -> PathBuf {
        self.paths.data_root.join(mode.data_dir_name())
    }

    /// The folder Settings → About's Open folder buttons open: the data of the mode in use (the
    /// data root with nothing chosen), the logs, or the settings file's folder.
    pub fn folder(&self, which: &str) -> Option<PathBuf> {
        match which {
            "data" => Some(match self.mode() {
                Some(mode) => self.data_dir(mode),
                None => self.paths.data_root.clone(),
            }),
            "logs" => Some(self.paths.log_dir.clone()),
            "settings" => self.paths.settings_file.parent().map(PathBuf::from),
            _ => None,
        }
    }

    /// Stops what runs now and starts what the settings choose.
    async fn restart(&self) -> IpcResult<()> {
        let previous = std::mem::replace(&mut *write(&self.active), Active::Unchosen);
        // The old engine's tasks and demo services stop before the next one opens.
        drop(previous);
        let next = self.start_chosen().await;
        let problem = match &next {
            Active::Problem(p) => Some(p.clone()),
            _ => None,
        };
        *write(&self.active) = next;
        problem.map_or(Ok(()), Err)
    }

    async fn start_chosen(&self) -> Active {
        let config = match Config::load(&self.paths.settings_file) {
            Ok(config) => config,
            Err(e) => return Active::Problem(settings_error(e)),
        };
        *write(&self.prefs) = config.desktop.clone();
        let env = match *lock(&self.window_choice) {
            Some(mode) => config::Env::process_with(&[(
                "VITALTRENDS_MODE",
                mode.map(|m| m.key().to_string()).unwrap_or_default(),
            )]),
            None => config::Env::process(),
        };
        let choice = match config::resolve(&config, &env, &self.release) {
            Ok(choice) => choice,
            Err(e) => return Active::Problem(settings_error(e)),
        };
        let started = match choice {
            Choice::Unchosen { .. } => return Active::Unchosen,
            Choice::Demo => self.start_demo().await,
            Choice::Whoop(connection) => self.start_whoop(*connection).await,
        };
        match started {
            Ok(running) => Active::Running(Box::new(running)),
            Err(e) => {
                tracing::warn!(code = %e.code, "could not start the chosen connection");
                Active::Problem(e)
            }
        }
    }

    #[cfg(not(feature = "demo"))]
    async fn start_demo(&self) -> IpcResult<Running> {
        Err(no_demo())
    }

    #[cfg(feature = "demo")]
    async fn start_demo(&self) -> IpcResult<Running> {
        let dir = self.data_dir(Mode::Demo);
        let demo = crate::demo::start(&dir, self.options(Mode::Demo), crate::demo::sim_config())
            .await
            .map_err(|e| IpcError {
                code: "demo_unavailable".into(),
                message: format!("Demo data could not start: {e}."),
            })?;
        let core = Core {
            engine: demo.engine.clone(),
            mode: Mode::Demo,
            loopback_port: 0,
        };
        let mut tasks = (self.starter)(&core);
        tasks.push(tokio::spawn(crate::demo::grow(
            core.engine.clone(),
            demo.sim.base_url.clone(),
            std::time::Duration::from_secs(120),
        )));
        Ok(Running {
            core,
            tasks,
            _demo: Some(demo),
        })
    }

    async fn start_whoop(&self, connection: config::Connection) -> IpcResult<Running> {
        let data_dir = self.data_dir(connection.mode);
        // Only an own app without a relay holds its secret; with a relay, the relay does.
        let client_secret = if connection.relay_url.is_none() {
            match &connection.client_secret_from_env {
                Some(secret) => Some(Secret::new(secret.clone())),
                None => self.settings_secrets().get(CLIENT_SECRET_NAME)?,
            }
        } else {
            None
        };
        let settings = Settings {
            data_dir: data_dir.clone(),
            whoop_base_url: connection.whoop_base_url.clone(),
            client_id: connection.client_id.clone(),
            client_secret,
            relay_url: connection.relay_url.clone(),
        };
        // A missing secret is a clear message now rather than at the first sign-in.
        settings.token_endpoint()?;
        let tokens: Arc<dyn SecretStore> = match self.secrets_kind {
            SecretsKind::InsecureFile => Arc::new(InsecureFileStore::in_dir(&data_dir)),
            SecretsKind::Keychain => Arc::new(KeychainStore::new(&data_dir.display().to_string())),
        };
        let engine = Engine::open(settings, tokens, self.options(connection.mode)).await?;
        let core = Core {
            engine,
            mode: connection.mode,
            loopback_port: connection.loopback_port,
        };
        let tasks = (self.starter)(&core);
        Ok(Running {
            core,
            tasks,
            _demo: None,
        })
    }

    fn options(&self, mode: Mode) -> EngineOptions {
        EngineOptions {
            notifier: Arc::new(ShellNotifier {
                inner: self.notifier.clone(),
                prefs: self.prefs.clone(),
                demo: mode == Mode::Demo,
            }),
            ..EngineOptions::default()
        }
    }

    /// Settings-level secrets (the own app's client secret), shared with the CLI.
    fn settings_secrets(&self) -> Arc<dyn SecretStore> {
        match self.secrets_kind {
            SecretsKind::Keychain => Arc::new(KeychainStore::new(SECRETS_PROFILE)),
            SecretsKind::InsecureFile => Arc::new(InsecureFileStore::in_dir(
                self.paths
                    .settings_file
                    .parent()
                    .unwrap_or(&self.paths.data_root),
            )),
        }
    }

    pub(crate) fn load_config(&self) -> IpcResult<Config> {
        Config::load(&self.paths.settings_file).map_err(settings_error)
    }

    pub(crate) fn save_config(&self, config: &Config) -> IpcResult<()> {
        config
            .save(&self.paths.settings_file)
            .map_err(settings_error)
    }
}

/// The engine's notifications as the person set them up: kinds they turned off are not shown,
/// and demo data says so in every notification.
struct ShellNotifier {
    inner: Arc<dyn sync::Notifier>,
    prefs: Arc<RwLock<DesktopPrefs>>,
    demo: bool,
}

impl sync::Notifier for ShellNotifier {
    fn notify(&self, mut notification: sync::Notification) {
        let prefs = read(&self.prefs).clone();
        let wanted = match notification.kind {
            sync::NotificationKind::ImportFinished => prefs.notify_import,
            sync::NotificationKind::ForceSyncFinished => prefs.notify_force_sync,
            sync::NotificationKind::ReconnectNeeded => prefs.notify_reconnect,
        };
        if !wanted {
            tracing::info!(kind = ?notification.kind, "notification turned off in Settings");
            return;
        }
        if self.demo {
            notification.title = format!("Demo data · {}", notification.title);
        }
        self.inner.notify(notification);
    }
}

fn prefs_view(prefs: &DesktopPrefs) -> PrefsView {
    PrefsView {
        keep_in_tray: prefs.keep_in_tray,
        start_at_login: prefs.start_at_login,
        start_at_login_asked: prefs.start_at_login_asked,
        notify_import: prefs.notify_import,
        notify_force_sync: prefs.notify_force_sync,
        notify_reconnect: prefs.notify_reconnect,
    }
}

fn field_label(key: &str) -> &str {
    match key {
        "whoop.client_id" => "Client ID",
        "relay.url" => "Relay address",
        "whoop.base_url" => "WHOOP API address",
        "loopback.port" => "Loopback port",
        other => other,
    }
}

#[cfg(not(feature = "demo"))]
fn no_demo() -> IpcError {
    IpcError {
        code: "demo_unavailable".into(),
        message: "This build of VitalTrends has no demo data. Connect your WHOOP account \
                  instead."
            .into(),
    }
}

pub(crate) fn settings_error(e: config::Error) -> IpcError {
    IpcError {
        code: e.code().to_string(),
        message: core::sentence(&e.to_string()),
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
