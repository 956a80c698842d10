//! The file itself: its sections, reading and writing it whole, and changing one key.

use std::path::Path;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::{Error, Mode};

/// Every key `config set` accepts, in the order `config show` prints them.
pub const KEYS: &[&str] = &[
    "mode",
    "whoop.client_id",
    "whoop.base_url",
    "relay.url",
    "loopback.port",
    "desktop.keep_in_tray",
    "desktop.start_at_login",
    "desktop.notify_import",
    "desktop.notify_force_sync",
    "desktop.notify_reconnect",
    "api.enabled",
    "api.port",
    "backup.scheduled",
    "backup.folder",
    "backup.keep",
];

/// The settings file as written. Absent keys take their defaults; unknown keys are kept out
/// (a newer version's keys would otherwise make an older one refuse to start).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub mode: Option<Mode>,
    pub whoop: WhoopSection,
    pub relay: RelaySection,
    pub loopback: LoopbackSection,
    pub desktop: DesktopPrefs,
    pub api: ApiSection,
    pub backup: BackupSection,
}

/// Scheduled backups (Settings → Data): off until the person turns them on and picks a folder.
/// The desktop app backs up once a day while it runs and keeps the newest `keep` scheduled copies
/// in `folder` (`sync::scheduled_backup`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupSection {
    pub scheduled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// How many scheduled backups are kept (older ones are removed).
    pub keep: u32,
}

/// Scheduled backups kept unless the person says otherwise: a week of daily copies.
pub const DEFAULT_BACKUPS_KEPT: u32 = 7;

impl Default for BackupSection {
    fn default() -> Self {
        BackupSection {
            scheduled: false,
            folder: None,
            keep: DEFAULT_BACKUPS_KEPT,
        }
    }
}

/// The local REST API (Settings → AI & API; `vitaltrends serve-api`). Off until the person
/// turns it on. Only the token's SHA-256 is kept here: the token itself is shown once and never
/// stored, so this file (and whoever reads it) cannot call the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiSection {
    /// The desktop app serves the API while this is on.
    pub enabled: bool,
    /// The 127.0.0.1 port it listens on.
    pub port: u16,
    /// Hex SHA-256 of the current bearer token; none means no token (nothing is accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
}

/// The REST API's port unless the person picks another.
pub const DEFAULT_API_PORT: u16 = 47_621;

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            enabled: false,
            port: DEFAULT_API_PORT,
            token_sha256: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WhoopSection {
    /// The own WHOOP developer app's client id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// WHOOP's host; a simulator's in tests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelaySection {
    /// A self-hosted relay for an own app (it then holds the client secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoopbackSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// What the desktop remembers about how the person wants it to behave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DesktopPrefs {
    /// Closing the window keeps VitalTrends running in the tray (else closing quits).
    pub keep_in_tray: bool,
    /// Start VitalTrends when the person logs in.
    pub start_at_login: bool,
    /// Whether the app has asked about starting at login (once, after the first import).
    pub start_at_login_asked: bool,
    pub notify_import: bool,
    pub notify_force_sync: bool,
    pub notify_reconnect: bool,
}

impl Default for DesktopPrefs {
    fn default() -> Self {
        DesktopPrefs {
            keep_in_tray: true,
            start_at_login: false,
            start_at_login_asked: false,
            notify_import: true,
            notify_force_sync: true,
            notify_reconnect: true,
        }
    }
}

impl Config {
    /// Reads the file; a missing file is the defaults (nothing chosen yet).
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => {
                return Err(Error::Unreadable {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
            }
        };
        toml::from_str(&text).map_err(|e| Error::Invalid {
            path: path.display().to_string(),
            message: e.message().to_string(),
        })
    }

    /// Writes the whole file through a temporary file and a rename, so a crash mid-write leaves
    /// the old file or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let unwritable = |e: &dyn std::fmt::Display| Error::Unwritable {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let body = toml::to_string_pretty(self).map_err(|e| unwritable(&e))?;
        let text = format!(
            "# VitalTrends settings. Edit with `vitaltrends config set KEY VALUE` or in the app.\n\
             # Secrets are never kept here: the client secret is in the OS keychain.\n\n{body}"
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| unwritable(&e))?;
        }
        let tmp = path.with_extension(format!("toml.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text).map_err(|e| unwritable(&e))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            unwritable(&e)
        })
    }

    /// Sets one key from its text form, checking the value first.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let value = value.trim();
        let bad = |message: String| Error::BadValue {
            key: key.to_string(),
            message,
        };
        let flag = || match value {
            "true" | "on" | "yes" => Ok(true),
            "false" | "off" | "no" => Ok(false),
            _ => Err(bad(format!("{value:?} is not true or false"))),
        };
        match key {
            "mode" => self.mode = Some(value.parse()?),
            "whoop.client_id" => {
                if value.is_empty() || value.chars().any(char::is_whitespace) {
                    return Err(bad("a client id is one word, as WHOOP shows it".into()));
                }
                self.whoop.client_id = Some(value.to_string());
            }
            "whoop.base_url" => self.whoop.base_url = Some(check_url(key, value)?.to_string()),
            "relay.url" => {
                let url = check_url(key, value)?;
                // Tokens cross to the relay: anything but the same machine needs TLS (the
                // engine refuses it too; saying so here names the setting at once).
                let loopback = matches!(
                    url.host(),
                    Some(url::Host::Ipv4(ip)) if ip.is_loopback()
                ) || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                    || url.host_str() == Some("localhost");
                if url.scheme() != "https" && !loopback {
                    return Err(bad(format!(
                        "{value:?} must be an https address (plain http only on this computer)"
                    )));
                }
                self.relay.url = Some(url.to_string());
            }
            "loopback.port" => {
                let port = value
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p >= 1024)
                    .ok_or_else(|| bad(format!("{value:?} is not a port from 1024 to 65535")))?;
                self.loopback.port = Some(port);
            }
            "desktop.keep_in_tray" => self.desktop.keep_in_tray = flag()?,
            "desktop.start_at_login" => self.desktop.start_at_login = flag()?,
            "desktop.notify_import" => self.desktop.notify_import = flag()?,
            "desktop.notify_force_sync" => self.desktop.notify_force_sync = flag()?,
            "desktop.notify_reconnect" => self.desktop.notify_reconnect = flag()?,
            "api.enabled" => self.api.enabled = flag()?,
            "api.port" => {
                self.api.port = value
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p >= 1024)
                    .ok_or_else(|| bad(format!("{value:?} is not a port from 1024 to 65535")))?;
            }
            "backup.scheduled" => self.backup.scheduled = flag()?,
            "backup.folder" => {
                if value.is_empty() || !Path::new(value).is_absolute() {
                    return Err(bad(format!("{value:?} is not a full folder path")));
                }
                self.backup.folder = Some(value.to_string());
            }
            "backup.keep" => {
                self.backup.keep = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=365).contains(n))
                    .ok_or_else(|| bad(format!("{value:?} is not a number from 1 to 365")))?;
            }
            other => return Err(Error::UnknownKey(other.to_string())),
        }
        Ok(())
    }

    /// Clears one key back to its default.
    pub fn unset(&mut self, key: &str) -> Result<(), Error> {
        let defaults = DesktopPrefs::default();
        match key {
            "mode" => self.mode = None,
            "whoop.client_id" => self.whoop.client_id = None,
            "whoop.base_url" => self.whoop.base_url = None,
            "relay.url" => self.relay.url = None,
            "loopback.port" => self.loopback.port = None,
            "desktop.keep_in_tray" => self.desktop.keep_in_tray = defaults.keep_in_tray,
            "desktop.start_at_login" => self.desktop.start_at_login = defaults.start_at_login,
            "desktop.notify_import" => self.desktop.notify_import = defaults.notify_import,
            "desktop.notify_force_sync" => {
                self.desktop.notify_force_sync = defaults.notify_force_sync
            }
            "desktop.notify_reconnect" => self.desktop.notify_reconnect = defaults.notify_reconnect,
            "api.enabled" => self.api.enabled = ApiSection::default().enabled,
            "api.port" => self.api.port = ApiSection::default().port,
            "backup.scheduled" => self.backup.scheduled = false,
            "backup.folder" => self.backup.folder = None,
            "backup.keep" => self.backup.keep = DEFAULT_BACKUPS_KEPT,
            other => return Err(Error::UnknownKey(other.to_string())),
        }
        Ok(())
    }

    /// One key's value as text, `None` where it is unset.
    pub fn get(&self, key: &str) -> Result<Option<String>, Error> {
        let flag = |b: bool| Some(b.to_string());
        Ok(match key {
            "mode" => self.mode.map(|m| m.key().to_string()),
            "whoop.client_id" => self.whoop.client_id.clone(),
            "whoop.base_url" => self.whoop.base_url.clone(),
            "relay.url" => self.relay.url.clone(),
            "loopback.port" => self.loopback.port.map(|p| p.to_string()),
            "desktop.keep_in_tray" => flag(self.desktop.keep_in_tray),
            "desktop.start_at_login" => flag(self.desktop.start_at_login),
            "desktop.notify_import" => flag(self.desktop.notify_import),
            "desktop.notify_force_sync" => flag(self.desktop.notify_force_sync),
            "desktop.notify_reconnect" => flag(self.desktop.notify_reconnect),
            "api.enabled" => flag(self.api.enabled),
            "api.port" => Some(self.api.port.to_string()),
            "backup.scheduled" => flag(self.backup.scheduled),
            "backup.folder" => self.backup.folder.clone(),
            "backup.keep" => Some(self.backup.keep.to_string()),
            other => return Err(Error::UnknownKey(other.to_string())),
        })
    }
}

/// An http(s) URL, or an error naming the key.
pub(crate) fn check_url(key: &str, value: &str) -> Result<Url, Error> {
    let url = Url::parse(value).map_err(|e| Error::BadValue {
        key: key.to_string(),
        message: format!("{value:?} is not a URL ({e})"),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::BadValue {
            key: key.to_string(),
            message: format!("{value:?} is not an http(s) address"),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_nothing_chosen_yet() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(&dir.path().join("settings.toml")).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.mode, None);
        assert!(config.desktop.keep_in_tray);
        assert!(!config.desktop.start_at_login);
    }

    #[test]
    fn every_key_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("settings.toml");
        let mut config = Config::default();
        let values = [
            ("mode", "own-app"),
            ("whoop.client_id", "abc-123"),
            ("whoop.base_url", "http://127.0.0.1:9000/"),
            ("relay.url", "https://relay.example/"),
            ("loopback.port", "51234"),
            ("desktop.keep_in_tray", "false"),
            ("desktop.start_at_login", "true"),
            ("desktop.notify_import", "false"),
            ("desktop.notify_force_sync", "false"),
            ("desktop.notify_reconnect", "false"),
            ("api.enabled", "true"),
            ("api.port", "48000"),
            ("backup.scheduled", "true"),
            ("backup.folder", "/home/a/Backups/VitalTrends"),
            ("backup.keep", "14"),
        ];
        assert_eq!(values.len(), KEYS.len());
        for (key, value) in values {
            config.set(key, value).unwrap();
        }
        config.save(&path).unwrap();
        let back = Config::load(&path).unwrap();
        assert_eq!(back, config);
        for (key, value) in values {
            assert_eq!(back.get(key).unwrap().as_deref(), Some(value), "{key}");
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("mode = \"own-app\""), "{text}");
        // No temporary file is left behind.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_key_named() {
        let mut config = Config::default();
        for (key, value) in [
            ("mode", "cloud"),
            ("whoop.client_id", "two words"),
            ("whoop.base_url", "not a url"),
            ("relay.url", "ftp://relay.example"),
            ("relay.url", "http://relay.example"),
            ("loopback.port", "80"),
            ("loopback.port", "70000"),
            ("desktop.keep_in_tray", "maybe"),
            ("api.port", "22"),
            ("backup.folder", "relative/folder"),
            ("backup.keep", "0"),
            ("backup.keep", "many"),
        ] {
            let err = config.set(key, value).unwrap_err();
            assert!(err.to_string().starts_with(key), "{key}: {err}");
        }
        assert_eq!(config, Config::default(), "nothing changed");
        let err = config.set("whoop.client_secret", "x").unwrap_err();
        assert!(matches!(err, Error::UnknownKey(_)));
    }

    #[test]
    fn a_broken_file_is_an_error_that_names_it_not_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, "mode = \"cloud\"\n").unwrap();
        let err = Config::load(&path).unwrap_err();
        assert_eq!(err.code(), "settings_invalid");
        assert!(err.to_string().contains("settings.toml"), "{err}");
        std::fs::write(&path, "mode = [").unwrap();
        assert!(Config::load(&path).is_err());
    }

    #[test]
    fn unset_returns_a_key_to_its_default() {
        let mut config = Config::default();
        config.set("loopback.port", "50000").unwrap();
        config.set("desktop.keep_in_tray", "false").unwrap();
        config.unset("loopback.port").unwrap();
        config.unset("desktop.keep_in_tray").unwrap();
        assert_eq!(config, Config::default());
    }
}
