//! The token manager: the one place that holds, refreshes and persists WHOOP tokens.
//!
//! WHOOP rotates the refresh token on every refresh and kills the old access token at that moment;
//! two refreshes racing, or a crash between a refresh and saving its result, would strand the
//! person. So: one refresh at a time (an async mutex held across the request), the new pair is
//! written to the `SecretStore` before anyone may use it, and a caller whose token was refused
//! only refreshes if nobody has done so since that token was handed out.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use whoop::oauth::{TokenClient, TokenResponse};
use whoop::Secret;

use crate::error::{Error, Result};
use crate::secrets::SecretStore;

/// Name of the token pair in the `SecretStore`.
pub const TOKENS_SECRET: &str = "whoop-tokens";

/// Refresh this long before WHOOP's stated expiry, so a request never starts on a dying token.
const REFRESH_MARGIN_SECS: i64 = 120;

/// The grant is dead at WHOOP: further refreshes would only be more refused requests.
const DEAD_GRANT: &str = "WHOOP access was revoked or expired";

#[derive(Clone)]
struct TokenSet {
    access_token: Secret,
    refresh_token: Option<Secret>,
    expires_at: DateTime<Utc>,
    /// Set when WHOOP refused the refresh token; cleared by a new authorization.
    dead: bool,
}

/// The persisted form. Only ever written to a `SecretStore`.
#[derive(Serialize, Deserialize)]
struct StoredTokens {
    access_token: String,
    refresh_token: Option<String>,
    expires_at: DateTime<Utc>,
}

pub struct TokenManager {
    /// `Err` holds why token requests cannot be made (missing relay or client secret); reading
    /// stored tokens and showing status still work.
    client: std::result::Result<TokenClient, String>,
    secrets: Arc<dyn SecretStore>,
    current: Mutex<Option<TokenSet>>,
    refreshes: std::sync::atomic::AtomicU64,
}

impl TokenManager {
    pub fn new(
        client: std::result::Result<TokenClient, String>,
        secrets: Arc<dyn SecretStore>,
    ) -> Self {
        TokenManager {
            client,
            secrets,
            current: Mutex::new(None),
            refreshes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn token_client(&self) -> Result<&TokenClient> {
        self.client.as_ref().map_err(|e| Error::Config(e.clone()))
    }

    pub(crate) fn secrets(&self) -> Arc<dyn SecretStore> {
        self.secrets.clone()
    }

    pub fn describe_store(&self) -> String {
        self.secrets.describe()
    }

    /// How many refreshes this manager performed (for tests and status).
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether tokens are stored at all.
    pub async fn has_tokens(&self) -> Result<bool> {
        let mut current = self.current.lock().await;
        Ok(self.loaded(&mut current).await?.is_some())
    }

    /// Saves the tokens of a fresh authorization.
    pub async fn store_authorized(&self, response: &TokenResponse) -> Result<()> {
        let mut current = self.current.lock().await;
        let set = token_set(response, None);
        self.persist(&set).await?;
        *current = Some(set);
        Ok(())
    }

    /// A usable access token, refreshed first if it is about to expire.
    pub async fn access_token(&self) -> Result<Secret> {
        let mut current = self.current.lock().await;
        let set = self
            .loaded(&mut current)
            .await?
            .ok_or(Error::NotConnected)?;
        if set.expires_at - Duration::seconds(REFRESH_MARGIN_SECS) > Utc::now() {
            return Ok(set.access_token);
        }
        self.refresh_into(&mut current, &set).await
    }

    /// WHOOP refused `rejected` (401). Refreshes unless another caller already has, and returns
    /// the token to retry with.
    pub async fn after_unauthorized(&self, rejected: &Secret) -> Result<Secret> {
        let mut current = self.current.lock().await;
        let set = self
            .loaded(&mut current)
            .await?
            .ok_or(Error::NotConnected)?;
        if set.access_token != *rejected && !set.dead {
            return Ok(set.access_token);
        }
        self.refresh_into(&mut current, &set).await
    }

    /// Forgets the tokens here and in the `SecretStore`.
    pub async fn forget(&self) -> Result<()> {
        let mut current = self.current.lock().await;
        *current = None;
        let secrets = self.secrets.clone();
        blocking(move || secrets.delete(TOKENS_SECRET)).await
    }

    async fn loaded(&self, current: &mut Option<TokenSet>) -> Result<Option<TokenSet>> {
        if current.is_none() {
            let secrets = self.secrets.clone();
            let stored = blocking(move || secrets.get(TOKENS_SECRET)).await?;
            if let Some(stored) = stored {
                let parsed: StoredTokens = serde_json::from_str(stored.expose())
                    .map_err(|_| Error::Secrets("stored WHOOP tokens are unreadable".into()))?;
                *current = Some(TokenSet {
                    access_token: Secret::new(parsed.access_token),
                    refresh_token: parsed.refresh_token.map(Secret::new),
                    expires_at: parsed.expires_at,
                    dead: false,
                });
            }
        }
        Ok(current.clone())
    }

    /// Refreshes `set` (under the caller's lock) and installs the result.
    async fn refresh_into(&self, current: &mut Option<TokenSet>, set: &TokenSet) -> Result<Secret> {
        if set.dead {
            return Err(Error::ReconnectNeeded {
                reason: DEAD_GRANT.into(),
            });
        }
        match self.refresh_locked(set).await {
            Ok(fresh) => {
                let token = fresh.access_token.clone();
                *current = Some(fresh);
                Ok(token)
            }
            Err(e @ Error::ReconnectNeeded { .. }) => {
                if let Some(current) = current.as_mut() {
                    current.dead = true;
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    async fn refresh_locked(&self, set: &TokenSet) -> Result<TokenSet> {
        let Some(refresh_token) = set.refresh_token.as_ref() else {
            return Err(Error::ReconnectNeeded {
                reason: "WHOOP did not issue a refresh token".into(),
            });
        };
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = match self.token_client()?.refresh(refresh_token).await {
            Ok(response) => response,
            Err(whoop::Error::InvalidGrant { .. }) => {
                return Err(Error::ReconnectNeeded {
                    reason: DEAD_GRANT.into(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let fresh = token_set(&response, set.refresh_token.clone());
        // Durable before usable: if this write fails the old refresh token is already spent, so
        // the person will have to reconnect; using the new pair unsaved would hide that until the
        // next start.
        self.persist(&fresh).await?;
        tracing::info!("WHOOP tokens refreshed");
        Ok(fresh)
    }

    async fn persist(&self, set: &TokenSet) -> Result<()> {
        let stored = StoredTokens {
            access_token: set.access_token.expose().to_string(),
            refresh_token: set.refresh_token.as_ref().map(|t| t.expose().to_string()),
            expires_at: set.expires_at,
        };
        let json = serde_json::to_string(&stored).map_err(|e| Error::Secrets(e.to_string()))?;
        let secrets = self.secrets.clone();
        blocking(move || secrets.set(TOKENS_SECRET, &Secret::new(json))).await
    }
}

fn token_set(response: &TokenResponse, previous_refresh: Option<Secret>) -> TokenSet {
    TokenSet {
        access_token: response.access_token.clone(),
        // WHOOP always rotates; if an answer ever lacks a refresh token, keep the one we had.
        refresh_token: response.refresh_token.clone().or(previous_refresh),
        expires_at: Utc::now() + Duration::seconds(response.expires_in.min(i64::MAX as u64) as i64),
        dead: false,
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Secrets(format!("secret store task failed: {e}")))?
}
