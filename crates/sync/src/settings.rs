//! Where the engine's data lives and which WHOOP (and relay) it talks to.

use std::path::PathBuf;

use url::Url;
use whoop::oauth::TokenEndpoint;
use whoop::Secret;

use crate::error::{Error, Result};

/// The database's file name inside the data directory.
pub const DATABASE_FILE: &str = "vitaltrends.db";

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// WHOOP's host (production by default; a simulator in tests and demo mode).
    pub whoop_base_url: Url,
    pub client_id: String,
    /// Only for "bring your own WHOOP app": the secret of the person's own developer app.
    pub client_secret: Option<Secret>,
    /// The relay that brokers tokens (and later streams webhook events).
    pub relay_url: Option<Url>,
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
}

impl Settings {
    /// Refuses settings that would be unsafe to run with; `Engine::open` calls it, so the
    /// desktop and the CLI share the rule.
    ///
    /// The relay URL must be `https`: the broker's answers carry WHOOP tokens and the device
    /// credential, and the event stream carries the credential on every request. Plain `http`
    /// is allowed only to a relay on this machine (127.0.0.0/8, ::1, `localhost`), which is
    /// what tests and demo mode use and where nothing crosses a network.
    pub fn validate(&self) -> Result<()> {
        if let Some(relay) = &self.relay_url {
            match relay.scheme() {
                "https" => {}
                "http" if is_loopback(relay) => {}
                _ => {
                    return Err(Error::Config(format!(
                        "the relay URL {relay} must use https (plain http only for a relay on \
                         this machine: 127.0.0.1, ::1 or localhost)"
                    )))
                }
            }
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }

    /// Token requests go through the relay when there is one; otherwise straight to WHOOP, which
    /// needs the person's own client secret.
    pub fn token_endpoint(&self) -> Result<TokenEndpoint> {
        if let Some(relay) = &self.relay_url {
            return Ok(TokenEndpoint::Broker {
                base_url: relay.clone(),
            });
        }
        let client_secret = self.client_secret.clone().ok_or_else(|| {
            Error::Config(
                "your own WHOOP developer app needs its client secret (or a relay that holds \
                 it): enter it in Connections, or run `vitaltrends config set-secret \
                 whoop.client_secret`"
                    .into(),
            )
        })?;
        Ok(TokenEndpoint::Direct {
            token_url: whoop::oauth::token_url(&self.whoop_base_url)?,
            client_id: self.client_id.clone(),
            client_secret,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_relay(url: &str) -> Settings {
        Settings {
            data_dir: PathBuf::from("/tmp/x"),
            whoop_base_url: Url::parse("https://api.prod.whoop.com").expect("literal"),
            client_id: "id".into(),
            client_secret: None,
            relay_url: Some(Url::parse(url).expect("URL")),
        }
    }

    #[test]
    fn relay_must_be_https_unless_on_this_machine() {
        for ok in [
            "https://relay.example.com",
            "https://127.0.0.1:8443",
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://[::1]:8080",
            "http://localhost:8080",
            "http://relay.localhost:8080",
        ] {
            assert!(with_relay(ok).validate().is_ok(), "{ok}");
        }
        for bad in [
            "http://relay.example.com",
            "http://192.168.1.10:8080",
            "http://[2001:db8::1]",
            "http://localhost.example.com",
            "ftp://relay.example.com",
        ] {
            let err = with_relay(bad).validate().unwrap_err();
            assert_eq!(err.code(), "config", "{bad}");
            assert!(err.to_string().contains("must use https"), "{bad}: {err}");
        }
        let none = Settings {
            relay_url: None,
            ..with_relay("https://x")
        };
        assert!(none.validate().is_ok());
    }
}
