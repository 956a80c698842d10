//! From the file, the environment and the build to the one way this run connects.

use std::collections::HashMap;

use url::Url;

use crate::file::check_url;
use crate::{Config, Error, Mode, Release, DEFAULT_LOOPBACK_PORT, WHOOP_PRODUCTION};

/// Environment variables, looked up by name: the process's own, or a fixed set in tests.
pub struct Env(EnvSource);

enum EnvSource {
    Process,
    Fixed(HashMap<String, String>),
    /// Command-line flags first, then the process environment.
    Overlay(HashMap<String, String>),
}

impl Env {
    pub fn process() -> Env {
        Env(EnvSource::Process)
    }

    pub fn fixed(pairs: &[(&str, &str)]) -> Env {
        Env(EnvSource::Fixed(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
    }

    /// The process environment with some variables replaced, e.g. by command-line flags that
    /// stand for them.
    pub fn process_with(overrides: &[(&str, String)]) -> Env {
        Env(EnvSource::Overlay(
            overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ))
    }

    /// A non-empty value, trimmed.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match &self.0 {
            EnvSource::Process => std::env::var(name).ok(),
            EnvSource::Fixed(map) => map.get(name).cloned(),
            EnvSource::Overlay(map) => map.get(name).cloned().or_else(|| std::env::var(name).ok()),
        };
        value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }
}

/// How this run connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Nothing chosen yet: Connect WHOOP asks.
    Unchosen {
        service_available: bool,
    },
    Demo,
    Whoop(Box<Connection>),
}

impl Choice {
    pub fn mode(&self) -> Option<Mode> {
        match self {
            Choice::Unchosen { .. } => None,
            Choice::Demo => Some(Mode::Demo),
            Choice::Whoop(c) => Some(c.mode),
        }
    }
}

/// A real WHOOP connection, service or own app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub mode: Mode,
    pub client_id: String,
    pub whoop_base_url: Url,
    /// The relay: it brokers tokens (holding the client secret) and delivers webhooks. Without
    /// one (own app only) the app holds the secret and catches up every 6 hours.
    pub relay_url: Option<Url>,
    /// Own-app loopback sign-ins redirect to this port.
    pub loopback_port: u16,
    /// `VITALTRENDS_WHOOP_CLIENT_SECRET`, where a power user or a test sets it; otherwise the
    /// front end reads the keychain.
    pub client_secret_from_env: Option<String>,
}

/// Decides how this run connects. Strongest first: `VITALTRENDS_MODE`, the file's `mode`, a
/// client id in the environment (the round-1 way of configuring: with a relay and no secret it
/// is the service, otherwise an own app), the build's service, else nothing chosen.
pub fn resolve(config: &Config, env: &Env, release: &Release) -> Result<Choice, Error> {
    let mode = match env.get("VITALTRENDS_MODE") {
        Some(mode) => Some(mode.parse::<Mode>().map_err(|_| Error::BadValue {
            key: "VITALTRENDS_MODE".into(),
            message: format!("{mode:?} is not a mode; use service, own-app or demo"),
        })?),
        None => config.mode,
    };
    let mode = mode.or_else(|| {
        env.get("VITALTRENDS_WHOOP_CLIENT_ID")?;
        let brokered = env.get("VITALTRENDS_RELAY_URL").is_some()
            && env.get("VITALTRENDS_WHOOP_CLIENT_SECRET").is_none();
        Some(if brokered {
            Mode::Service
        } else {
            Mode::OwnApp
        })
    });
    let mode = match mode {
        Some(mode) => mode,
        None if release.has_service() => Mode::Service,
        None => {
            return Ok(Choice::Unchosen {
                service_available: false,
            })
        }
    };
    let url = |key: &str, value: &str| check_url(key, value);
    let port = match env.get("VITALTRENDS_LOOPBACK_PORT") {
        Some(p) => p
            .parse::<u16>()
            .ok()
            // 0 (any free port) only from the environment: tests against a simulator that
            // accepts any redirect, never a WHOOP app, which registers one exact port.
            .filter(|p| *p >= 1024 || *p == 0)
            .ok_or_else(|| Error::BadValue {
                key: "VITALTRENDS_LOOPBACK_PORT".into(),
                message: format!("{p:?} is not a port from 1024 to 65535"),
            })?,
        None => config.loopback.port.unwrap_or(DEFAULT_LOOPBACK_PORT),
    };
    let client_secret_from_env = env.get("VITALTRENDS_WHOOP_CLIENT_SECRET");
    match mode {
        Mode::Demo => Ok(Choice::Demo),
        Mode::Service => {
            let client_id = env
                .get("VITALTRENDS_WHOOP_CLIENT_ID")
                .or_else(|| release.client_id.clone());
            let relay = env
                .get("VITALTRENDS_RELAY_URL")
                .or_else(|| release.relay_url.clone());
            let (Some(client_id), Some(relay)) = (client_id, relay) else {
                return Err(Error::Incomplete(
                    "this build of VitalTrends has no VitalTrends service configured; choose \
                     your own WHOOP developer app or demo data instead"
                        .into(),
                ));
            };
            let base = env
                .get("VITALTRENDS_WHOOP_BASE_URL")
                .or_else(|| release.whoop_base_url.clone())
                .unwrap_or_else(|| WHOOP_PRODUCTION.to_string());
            Ok(Choice::Whoop(Box::new(Connection {
                mode,
                client_id,
                whoop_base_url: url("whoop.base_url", &base)?,
                relay_url: Some(url("relay.url", &relay)?),
                loopback_port: port,
                client_secret_from_env: None,
            })))
        }
        Mode::OwnApp => {
            let client_id = env
                .get("VITALTRENDS_WHOOP_CLIENT_ID")
                .or_else(|| config.whoop.client_id.clone())
                .ok_or_else(|| {
                    Error::Incomplete(
                        "your own WHOOP developer app needs its client id: enter it in \
                         Connections, or run `vitaltrends config set whoop.client_id ID`"
                            .into(),
                    )
                })?;
            let base = env
                .get("VITALTRENDS_WHOOP_BASE_URL")
                .or_else(|| config.whoop.base_url.clone())
                .unwrap_or_else(|| WHOOP_PRODUCTION.to_string());
            let relay = env
                .get("VITALTRENDS_RELAY_URL")
                .or_else(|| config.relay.url.clone());
            Ok(Choice::Whoop(Box::new(Connection {
                mode,
                client_id,
                whoop_base_url: url("whoop.base_url", &base)?,
                relay_url: relay.map(|r| url("relay.url", &r)).transpose()?,
                loopback_port: port,
                client_secret_from_env,
            })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Release {
        Release {
            client_id: Some("vt-service".into()),
            relay_url: Some("https://relay.vitaltrends.example".into()),
            whoop_base_url: None,
        }
    }

    #[test]
    fn nothing_configured_asks_unless_the_build_has_a_service() {
        let choice = resolve(&Config::default(), &Env::fixed(&[]), &Release::default()).unwrap();
        assert_eq!(
            choice,
            Choice::Unchosen {
                service_available: false
            }
        );
        let choice = resolve(&Config::default(), &Env::fixed(&[]), &service()).unwrap();
        let Choice::Whoop(c) = choice else {
            panic!("{choice:?}")
        };
        assert_eq!(c.mode, Mode::Service);
        assert_eq!(c.client_id, "vt-service");
        assert_eq!(
            c.relay_url.unwrap().as_str(),
            "https://relay.vitaltrends.example/"
        );
        assert_eq!(c.whoop_base_url.as_str(), "https://api.prod.whoop.com/");
    }

    #[test]
    fn own_app_comes_from_the_file_and_the_environment_overrides_it() {
        let mut config = Config::default();
        config.set("mode", "own-app").unwrap();
        config.set("whoop.client_id", "mine").unwrap();
        config.set("loopback.port", "50123").unwrap();
        let Choice::Whoop(c) = resolve(&config, &Env::fixed(&[]), &service()).unwrap() else {
            panic!()
        };
        assert_eq!((c.mode, c.client_id.as_str()), (Mode::OwnApp, "mine"));
        assert_eq!(c.loopback_port, 50123);
        assert_eq!(c.relay_url, None);
        let env = Env::fixed(&[
            ("VITALTRENDS_WHOOP_CLIENT_ID", "from-env"),
            ("VITALTRENDS_LOOPBACK_PORT", "50999"),
            ("VITALTRENDS_WHOOP_CLIENT_SECRET", "s3cret"),
        ]);
        let Choice::Whoop(c) = resolve(&config, &env, &service()).unwrap() else {
            panic!()
        };
        assert_eq!(c.client_id, "from-env");
        assert_eq!(c.loopback_port, 50999);
        assert_eq!(c.client_secret_from_env.as_deref(), Some("s3cret"));
        let demo = resolve(
            &config,
            &Env::fixed(&[("VITALTRENDS_MODE", "demo")]),
            &service(),
        );
        assert_eq!(demo.unwrap(), Choice::Demo);
    }

    #[test]
    fn an_unusable_choice_is_an_error_never_demo() {
        let mut config = Config::default();
        config.set("mode", "own-app").unwrap();
        let err = resolve(&config, &Env::fixed(&[]), &Release::default()).unwrap_err();
        assert_eq!(err.code(), "settings_incomplete");
        assert!(err.to_string().contains("client id"), "{err}");
        config.set("mode", "service").unwrap();
        let err = resolve(&config, &Env::fixed(&[]), &Release::default()).unwrap_err();
        assert!(err.to_string().contains("no VitalTrends service"), "{err}");
        let err = resolve(
            &Config::default(),
            &Env::fixed(&[("VITALTRENDS_MODE", "cloud")]),
            &Release::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("VITALTRENDS_MODE"), "{err}");
        let err = resolve(
            &config,
            &Env::fixed(&[("VITALTRENDS_RELAY_URL", "relay.example")]),
            &service(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("relay.url"), "{err}");
    }

    #[test]
    fn the_round_one_environment_still_works() {
        let brokered = Env::fixed(&[
            ("VITALTRENDS_WHOOP_CLIENT_ID", "id"),
            ("VITALTRENDS_RELAY_URL", "http://127.0.0.1:9/"),
        ]);
        let choice = resolve(&Config::default(), &brokered, &Release::default()).unwrap();
        assert_eq!(choice.mode(), Some(Mode::Service));
        let direct = Env::fixed(&[
            ("VITALTRENDS_WHOOP_CLIENT_ID", "id"),
            ("VITALTRENDS_WHOOP_CLIENT_SECRET", "s"),
        ]);
        let choice = resolve(&Config::default(), &direct, &Release::default()).unwrap();
        assert_eq!(choice.mode(), Some(Mode::OwnApp));
    }
}
