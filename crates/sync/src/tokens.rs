//! The token manager: the one place that holds, refreshes and persists WHOOP tokens.
//!
//! WHOOP rotates the refresh token on every refresh and kills the old access token at that moment;
//! replaying a spent refresh token revokes the whole chain. Two refreshes racing, a crash between
//! a refresh and saving its result, or a refresh sent twice would strand the person. So:
//! - one refresh at a time, within this process (an async mutex held across the request) and
//!   across processes on the same data directory (an OS file lock, `TOKEN_LOCK_FILE`), because
//!   `vitaltrends sync` from cron may run beside the desktop;
//! - under that lock the stored pair is read again: if another process already rotated, its pair
//!   is used instead of refreshing ours (which is spent);
//! - the new pair is written to the `SecretStore` before anyone may use it;
//! - a refresh whose outcome is unknown (timeout, cut connection, 5xx) is never repeated blindly.
//!   WHOOP kills the old access token at the moment it rotates, so if ours was still valid before
//!   the refresh, one cheap call with it tells: still accepted, nothing was rotated and the
//!   refresh may be tried again later; refused (or no clear answer), the pair is stored as
//!   unusable so no process on this data directory sends it again, and the person is told to
//!   reconnect. (If WHOOP acted on a timed-out request only after the probe, the next refresh is
//!   refused and the outcome is the same reconnect, never worse.)
//! - a caller whose token was refused only refreshes if nobody has done so since that token was
//!   handed out.

use std::fs::File;
use std::path::{Path, PathBuf};
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

/// Name of the VitalTrends licence key in the `SecretStore` (a credential: never in SQLite).
pub const LICENCE_SECRET: &str = "vitaltrends-licence";

/// The file in the data directory whose OS lock serialises token writes across processes.
pub const TOKEN_LOCK_FILE: &str = "tokens.lock";

/// Refresh this long before WHOOP's stated expiry, so a request never starts on a dying token;
/// at most half the token's lifetime, so a short-lived token is not refreshed for every call
/// (each refresh kills the token other calls are still using).
const REFRESH_MARGIN_SECS: i64 = 120;

/// The probe after an unknown refresh outcome waits no longer than this.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The grant is dead at WHOOP: further refreshes would only be more refused requests.
pub const DEAD_GRANT: &str = "WHOOP access was revoked or expired";

/// The relay refused to refresh for this device (pruned after a long absence, revoked, or never
/// bound): only a new sign-in gets a credential it knows.
pub const RELAY_DEVICE_UNKNOWN: &str = "the VitalTrends service no longer knows this device";

/// A refresh was sent but WHOOP's answer never arrived intact: it may have rotated the refresh
/// token. Sending it again could be a replay, which makes WHOOP revoke the whole grant.
pub const OUTCOME_UNKNOWN: &str = "WHOOP did not confirm renewing access, and to keep your \
                                   account safe VitalTrends will not ask again";

#[derive(Clone)]
struct TokenSet {
    access_token: Secret,
    refresh_token: Option<Secret>,
    expires_at: DateTime<Utc>,
    /// When to refresh ahead of the expiry.
    refresh_after: DateTime<Utc>,
    /// Why this pair must not be refreshed (WHOOP refused it, or a refresh of it has an unknown
    /// outcome); cleared only by a new authorization.
    unusable: Option<String>,
}

impl TokenSet {
    fn fresh_enough(&self) -> bool {
        self.refresh_after > Utc::now()
    }

    fn same_pair(&self, other: &TokenSet) -> bool {
        self.access_token == other.access_token && self.refresh_token == other.refresh_token
    }
}

/// The persisted form. Only ever written to a `SecretStore`.
#[derive(Serialize, Deserialize)]
struct StoredTokens {
    access_token: String,
    refresh_token: Option<String>,
    expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_after: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unusable: Option<String>,
}

/// Why a fresh access token is wanted.
enum Need {
    /// Ours is about to expire.
    Expiring,
    /// WHOOP refused this one (401).
    Refused(Secret),
}

/// While it lives, no token of this manager is refreshed (or read: callers wait).
pub struct TokenHold<'a> {
    _held: tokio::sync::MutexGuard<'a, Option<TokenSet>>,
}

pub struct TokenManager {
    /// `Err` holds why token requests cannot be made (missing relay or client secret); reading
    /// stored tokens and showing status still work.
    client: std::result::Result<TokenClient, String>,
    /// WHOOP's profile endpoint, for the probe after a refresh with an unknown outcome.
    probe_url: url::Url,
    probe_http: reqwest::Client,
    secrets: Arc<dyn SecretStore>,
    lock_path: PathBuf,
    current: Mutex<Option<TokenSet>>,
    refreshes: std::sync::atomic::AtomicU64,
}

impl TokenManager {
    /// `data_dir` is where the cross-process lock file lives: every process using the same
    /// tokens must use the same data directory.
    pub fn new(
        client: std::result::Result<TokenClient, String>,
        whoop_base_url: &url::Url,
        secrets: Arc<dyn SecretStore>,
        data_dir: &Path,
    ) -> Self {
        let probe_url = url::Url::parse(&format!(
            "{}/developer/v2/user/profile/basic",
            whoop_base_url.as_str().trim_end_matches('/')
        ))
        .unwrap_or_else(|_| whoop_base_url.clone());
        TokenManager {
            client,
            probe_url,
            probe_http: reqwest::Client::builder()
                .timeout(PROBE_TIMEOUT)
                .build()
                .unwrap_or_default(),
            secrets,
            lock_path: data_dir.join(TOKEN_LOCK_FILE),
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
        // Under the lock, so a refresh of the old grant in another process cannot land on top.
        let _across = self.lock_across_processes().await?;
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
        if set.fresh_enough() {
            return Ok(set.access_token);
        }
        self.renew(&mut current, Need::Expiring).await
    }

    /// WHOOP refused `rejected` (401). Refreshes unless another caller (or process) already has,
    /// and returns the token to retry with.
    pub async fn after_unauthorized(&self, rejected: &Secret) -> Result<Secret> {
        let mut current = self.current.lock().await;
        let set = self
            .loaded(&mut current)
            .await?
            .ok_or(Error::NotConnected)?;
        if set.access_token != *rejected && set.unusable.is_none() {
            return Ok(set.access_token);
        }
        self.renew(&mut current, Need::Refused(rejected.clone()))
            .await
    }

    /// Called before the connection is marked "reconnect needed": true if the stored pair is
    /// still the unusable one. False when another process stored a newer pair since (a refresh
    /// or a new authorization), which this manager then uses: a stale verdict must not undo
    /// someone's fresh reconnect.
    pub async fn still_unusable(&self) -> Result<bool> {
        let mut current = self.current.lock().await;
        let stored = self.read_stored().await?;
        match (stored, current.as_ref()) {
            (Some(stored), Some(ours)) if stored.unusable.is_none() && !stored.same_pair(ours) => {
                tracing::info!("using the WHOOP tokens another process stored");
                *current = Some(stored);
                Ok(false)
            }
            _ => Ok(true),
        }
    }

    /// The stored licence key, if any.
    pub async fn licence_key(&self) -> Result<Option<Secret>> {
        let secrets = self.secrets.clone();
        blocking(move || secrets.get(LICENCE_SECRET)).await
    }

    /// Stores the licence key and sends it from now on.
    pub async fn save_licence_key(&self, key: &Secret) -> Result<()> {
        let secrets = self.secrets.clone();
        let stored = key.clone();
        blocking(move || secrets.set(LICENCE_SECRET, &stored)).await?;
        if let Ok(client) = &self.client {
            client.set_licence_key(Some(key.clone()));
        }
        Ok(())
    }

    /// Hands the stored licence key (read again: another process may have set it) to the token
    /// client, which sends it to the relay with the code exchange and refreshes.
    pub async fn load_licence_key(&self) -> Result<()> {
        let key = self.licence_key().await?;
        if let Ok(client) = &self.client {
            client.set_licence_key(key);
        }
        Ok(())
    }

    /// Waits for a refresh in flight to be saved, then keeps this manager from starting another
    /// while the returned hold lives. For a process about to end or be replaced: WHOOP rotates
    /// the refresh token with every refresh, so one cut between WHOOP's answer and the secret
    /// store would end the person's grant.
    pub async fn hold(&self) -> TokenHold<'_> {
        TokenHold {
            _held: self.current.lock().await,
        }
    }

    /// Forgets the tokens here and in the `SecretStore`.
    pub async fn forget(&self) -> Result<()> {
        let mut current = self.current.lock().await;
        let _across = self.lock_across_processes().await?;
        *current = None;
        let secrets = self.secrets.clone();
        blocking(move || secrets.delete(TOKENS_SECRET)).await
    }

    async fn loaded(&self, current: &mut Option<TokenSet>) -> Result<Option<TokenSet>> {
        if current.is_none() {
            *current = self.read_stored().await?;
        }
        Ok(current.clone())
    }

    async fn read_stored(&self) -> Result<Option<TokenSet>> {
        let secrets = self.secrets.clone();
        let Some(stored) = blocking(move || secrets.get(TOKENS_SECRET)).await? else {
            return Ok(None);
        };
        let parsed: StoredTokens = serde_json::from_str(stored.expose())
            .map_err(|_| Error::Secrets("stored WHOOP tokens are unreadable".into()))?;
        Ok(Some(TokenSet {
            access_token: Secret::new(parsed.access_token),
            refresh_token: parsed.refresh_token.map(Secret::new),
            expires_at: parsed.expires_at,
            refresh_after: parsed
                .refresh_after
                .unwrap_or(parsed.expires_at - Duration::seconds(REFRESH_MARGIN_SECS)),
            unusable: parsed.unusable,
        }))
    }

    /// Gets a usable token when ours will not do: under the cross-process lock, the stored pair
    /// is the truth. If another process rotated (or reconnected) meanwhile, its pair is used;
    /// only if the stored pair is still ours is it refreshed.
    async fn renew(&self, current: &mut Option<TokenSet>, need: Need) -> Result<Secret> {
        let _across = self.lock_across_processes().await?;
        let Some(stored) = self.read_stored().await? else {
            *current = None;
            return Err(Error::NotConnected);
        };
        if current
            .as_ref()
            .is_some_and(|ours| !ours.same_pair(&stored))
        {
            tracing::info!("using the WHOOP tokens another process stored");
        }
        *current = Some(stored.clone());
        let usable_as_is = match &need {
            Need::Expiring => stored.fresh_enough(),
            Need::Refused(rejected) => {
                stored.access_token != *rejected && stored.unusable.is_none()
            }
        };
        if usable_as_is {
            return Ok(stored.access_token);
        }
        if let Some(reason) = &stored.unusable {
            return Err(Error::ReconnectNeeded {
                reason: reason.clone(),
            });
        }
        // Checked before sending: the refresh kills it if it reaches WHOOP.
        let access_was_valid = stored.expires_at > Utc::now();
        let refreshed = match self.refresh_locked(&stored).await {
            Err(Error::Whoop(whoop::Error::TokenOutcomeUnknown { detail })) => {
                tracing::warn!(%detail, "WHOOP's answer to a refresh was lost; not repeating it");
                if access_was_valid
                    && self
                        .still_accepted(&stored.access_token, stored.expires_at)
                        .await
                {
                    return Err(Error::Whoop(whoop::Error::Unavailable {
                        attempts: 1,
                        detail: format!(
                            "token endpoint failed ({detail}) before renewing access; \
                             VitalTrends will try again"
                        ),
                    }));
                }
                Err(Error::ReconnectNeeded {
                    reason: OUTCOME_UNKNOWN.into(),
                })
            }
            other => other,
        };
        match refreshed {
            Ok(fresh) => {
                let token = fresh.access_token.clone();
                *current = Some(fresh);
                Ok(token)
            }
            Err(Error::ReconnectNeeded { reason }) => {
                // Stored, so no process on this data directory sends this refresh token again.
                let mut dead = stored;
                dead.unusable = Some(reason.clone());
                if let Err(e) = self.persist(&dead).await {
                    tracing::warn!(error = %e, "could not record that the WHOOP tokens are unusable");
                }
                *current = Some(dead);
                Err(Error::ReconnectNeeded { reason })
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
        self.load_licence_key().await?;
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Through the relay, the refresh carries the device credential its broker handed out at
        // sign-in (it refreshes only for devices it bound); WHOOP directly ignores it.
        let credential = self.device_credential().await?;
        let response = match self
            .token_client()?
            .refresh(refresh_token, credential.as_ref())
            .await
        {
            Ok(response) => response,
            Err(whoop::Error::InvalidGrant { .. }) => {
                return Err(Error::ReconnectNeeded {
                    reason: DEAD_GRANT.into(),
                })
            }
            Err(whoop::Error::DeviceUnknown) => {
                // Nothing reached WHOOP, but only a new sign-in gets a credential the relay knows.
                return Err(Error::ReconnectNeeded {
                    reason: RELAY_DEVICE_UNKNOWN.into(),
                });
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

    /// Whether WHOOP still accepts `access_token` (valid until `expires_at`): if so, no refresh
    /// of its pair took place. Sent at once, outside the client's rate-limit pacing: after the
    /// token expires the answer means nothing. A 429 is waited out only if the wait ends before
    /// the token does. Anything but a 2xx (a 401, a 429, a 5xx, no answer) counts as "cannot
    /// tell", which is treated as rotated.
    async fn still_accepted(&self, access_token: &Secret, expires_at: DateTime<Utc>) -> bool {
        for attempt in 1..=2 {
            let answer = self
                .probe_http
                .get(self.probe_url.clone())
                .bearer_auth(access_token.expose())
                .send()
                .await;
            let response = match answer {
                Ok(r) => r,
                Err(e) => {
                    tracing::info!(error = %e.without_url(), "could not ask WHOOP about the previous access token");
                    return false;
                }
            };
            let status = response.status();
            if status.is_success() {
                tracing::info!("WHOOP did not renew access; the refresh may be tried again");
                return true;
            }
            if status.as_u16() == 429 && attempt == 1 {
                let limits = whoop::client::RateLimitHeaders::from_headers(response.headers());
                let wait = limits
                    .retry_after
                    .or(limits.reset)
                    .unwrap_or(std::time::Duration::from_secs(60));
                let ends = Utc::now()
                    + Duration::from_std(wait).unwrap_or(Duration::seconds(60))
                    + Duration::seconds(2);
                if ends < expires_at {
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            tracing::info!(
                status = status.as_u16(),
                "WHOOP did not confirm the previous access token"
            );
            return false;
        }
        false
    }

    /// The relay's device credential, stored beside the tokens (`stream::DEVICE_SECRET`).
    async fn device_credential(&self) -> Result<Option<Secret>> {
        let secrets = self.secrets.clone();
        blocking(move || secrets.get(crate::stream::DEVICE_SECRET)).await
    }

    async fn persist(&self, set: &TokenSet) -> Result<()> {
        let stored = StoredTokens {
            access_token: set.access_token.expose().to_string(),
            refresh_token: set.refresh_token.as_ref().map(|t| t.expose().to_string()),
            expires_at: set.expires_at,
            refresh_after: Some(set.refresh_after),
            unusable: set.unusable.clone(),
        };
        let json = serde_json::to_string(&stored).map_err(|e| Error::Secrets(e.to_string()))?;
        let secrets = self.secrets.clone();
        blocking(move || secrets.set(TOKENS_SECRET, &Secret::new(json))).await
    }

    /// Waits for the exclusive OS lock on the data directory's token lock file (held until the
    /// returned file is dropped; the OS releases it if the process dies).
    async fn lock_across_processes(&self) -> Result<File> {
        let path = self.lock_path.clone();
        blocking(move || crate::secrets::lock_file(&path)).await
    }
}

fn token_set(response: &TokenResponse, previous_refresh: Option<Secret>) -> TokenSet {
    let now = Utc::now();
    // WHOOP says 3600; anything beyond a year is not believed (and would overflow the maths).
    let lifetime = response.expires_in.min(365 * 24 * 3600) as i64;
    let margin = REFRESH_MARGIN_SECS.min(lifetime / 2);
    TokenSet {
        access_token: response.access_token.clone(),
        // WHOOP always rotates; if an answer ever lacks a refresh token, keep the one we had.
        refresh_token: response.refresh_token.clone().or(previous_refresh),
        expires_at: now + Duration::seconds(lifetime),
        refresh_after: now + Duration::seconds(lifetime - margin),
        unusable: None,
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Secrets(format!("secret store task failed: {e}")))?
}
