//! Where the engine's data lives and which WHOOP (and relay) it talks to.

use std::path::PathBuf;

use url::Url;
use whoop::oauth::TokenEndpoint;
use whoop::Secret;

use crate::error::{Error, Result};

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

impl Settings {
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("vitaltrends.db")
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
