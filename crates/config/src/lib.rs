//! The settings file both front ends read (`settings.toml` in the OS config directory): which way
//! VitalTrends connects to WHOOP (the VitalTrends service, the person's own WHOOP developer app,
//! or demo data), where, and the desktop's preferences.
//!
//! Three sources, strongest first: environment variables (tests, power users), the file, and for
//! the service mode the values a release build bakes in (`release`). A value that cannot be
//! used is an error that names it; nothing falls back to demo data silently.
//!
//! No secret is ever written here. The own app's client secret lives in the OS keychain under
//! `CLIENT_SECRET_NAME`; the front ends store and read it.

mod file;
mod release;
mod resolve;

pub use file::{
    ApiSection, BackupSection, Config, DesktopPrefs, DEFAULT_API_PORT, DEFAULT_BACKUPS_KEPT, KEYS,
};
pub use release::Release;
pub use resolve::{resolve, Choice, Connection, Env};

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The keychain entry (in the profile `SECRETS_PROFILE`) that holds the own app's client secret.
pub const CLIENT_SECRET_NAME: &str = "whoop.client_secret";
/// The keychain profile of settings-level secrets, shared by the desktop and the CLI.
pub const SECRETS_PROFILE: &str = "settings";
/// The loopback port own-app sign-ins redirect to unless the person picks another. WHOOP matches
/// redirect URIs exactly, so the port must be the same at every sign-in.
pub const DEFAULT_LOOPBACK_PORT: u16 = 47_813;
/// The redirect of sign-ins that come back as a link the OS hands to the app.
pub const DEEP_LINK_REDIRECT_URI: &str = "vitaltrends://oauth/whoop/callback";
/// WHOOP's API host.
pub const WHOOP_PRODUCTION: &str = "https://api.prod.whoop.com";

/// The redirect URI of a loopback sign-in on `port`, exactly as WHOOP must have it registered.
pub fn loopback_redirect_uri(port: u16) -> String {
    format!("http://127.0.0.1:{port}/oauth/whoop/callback")
}

/// How VitalTrends connects to WHOOP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// WHOOP app and relay run by VitalTrends (baked into release builds).
    Service,
    /// The person's own WHOOP developer app (client id here, secret in the keychain).
    OwnApp,
    /// Simulated data in-process (desktop only).
    Demo,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Service, Mode::OwnApp, Mode::Demo];

    /// As written in the file and on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Mode::Service => "service",
            Mode::OwnApp => "own-app",
            Mode::Demo => "demo",
        }
    }

    /// As the window and the CLI name it to a person.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Service => "VitalTrends service",
            Mode::OwnApp => "My own WHOOP developer app",
            Mode::Demo => "Demo data",
        }
    }

    /// Each mode keeps its records in a directory of its own, so they never mix.
    pub fn data_dir_name(self) -> &'static str {
        self.key()
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Mode::ALL
            .into_iter()
            .find(|m| m.key() == s.trim())
            .ok_or_else(|| Error::BadValue {
                key: "mode".into(),
                message: format!("{s:?} is not a mode; use service, own-app or demo"),
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the settings file {path} could not be read: {message}")]
    Unreadable { path: String, message: String },
    #[error("the settings file {path} is not valid: {message}")]
    Invalid { path: String, message: String },
    #[error("the settings file {path} could not be saved: {message}")]
    Unwritable { path: String, message: String },
    #[error("{key}: {message}")]
    BadValue { key: String, message: String },
    #[error("{0} is not a setting; the settings are: {keys}", keys = KEYS.join(", "))]
    UnknownKey(String),
    #[error("{0}")]
    Incomplete(String),
}

impl Error {
    /// A stable code for the window to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unreadable { .. } | Error::Unwritable { .. } => "settings_io",
            Error::Invalid { .. } | Error::BadValue { .. } | Error::UnknownKey(_) => {
                "settings_invalid"
            }
            Error::Incomplete(_) => "settings_incomplete",
        }
    }
}

/// Where the settings file lives: `$VITALTRENDS_CONFIG_DIR/settings.toml`, else
/// `<OS config dir>/vitaltrends/settings.toml` (`~/.config/vitaltrends` on Linux,
/// `~/Library/Application Support/vitaltrends` on macOS, `%APPDATA%\vitaltrends` on Windows).
pub fn default_path() -> Result<PathBuf, Error> {
    let dir = match std::env::var_os("VITALTRENDS_CONFIG_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => dirs::config_dir()
            .ok_or_else(|| Error::Unreadable {
                path: "settings.toml".into(),
                message: "this system has no config directory; set VITALTRENDS_CONFIG_DIR".into(),
            })?
            .join("vitaltrends"),
    };
    Ok(dir.join("settings.toml"))
}
