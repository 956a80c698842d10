//! The connection state a person sees on the Connections card, persisted across restarts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;

const STATE_KEY: &str = "connection_state";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// Never connected, or history deleted after disconnecting.
    NotConnected,
    Connected {
        user_id: i64,
        name: String,
        connected_at: DateTime<Utc>,
    },
    /// WHOOP refused the refresh token; nothing syncs until the person reconnects.
    ReconnectNeeded {
        user_id: i64,
        name: String,
        reason: String,
        since: DateTime<Utc>,
    },
    /// The VitalTrends relay refused the sign-in: no active subscription (licence). The person
    /// subscribes or enters a licence key, then connects again. Whoever this data directory
    /// already holds history for is remembered.
    SubscriptionRequired {
        #[serde(default)]
        user_id: Option<i64>,
        #[serde(default)]
        name: Option<String>,
        since: DateTime<Utc>,
    },
    /// The subscription ended and its grace period is over: the relay refuses refreshes and the
    /// event stream, so nothing syncs. The history stays; the WHOOP grant is intact (a refused
    /// refresh never reached WHOOP), so a renewal resumes without signing in again.
    SubscriptionEnded {
        user_id: i64,
        name: String,
        since: DateTime<Utc>,
    },
    /// Disconnected on purpose; the history stays on disk.
    Disconnected {
        user_id: i64,
        name: String,
        disconnected_at: DateTime<Utc>,
        /// WHOOP could not be reached to revoke access; the engine retries.
        #[serde(default)]
        revoke_pending: bool,
    },
}

impl ConnectionState {
    pub fn name(&self) -> &'static str {
        match self {
            ConnectionState::NotConnected => "not_connected",
            ConnectionState::Connected { .. } => "connected",
            ConnectionState::ReconnectNeeded { .. } => "reconnect_needed",
            ConnectionState::Disconnected { .. } => "disconnected",
            ConnectionState::SubscriptionRequired { .. } => "subscription_required",
            ConnectionState::SubscriptionEnded { .. } => "subscription_ended",
        }
    }

    pub fn user(&self) -> Option<(i64, &str)> {
        match self {
            ConnectionState::NotConnected => None,
            ConnectionState::Connected { user_id, name, .. }
            | ConnectionState::ReconnectNeeded { user_id, name, .. }
            | ConnectionState::SubscriptionEnded { user_id, name, .. }
            | ConnectionState::Disconnected { user_id, name, .. } => Some((*user_id, name)),
            ConnectionState::SubscriptionRequired { user_id, name, .. } => {
                Some(((*user_id)?, name.as_deref()?))
            }
        }
    }

    pub(crate) async fn load(store: &store::Store) -> Result<Self> {
        Ok(match store.get_meta(STATE_KEY).await? {
            Some(json) => serde_json::from_str(&json).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "unreadable connection state; treating as not connected");
                ConnectionState::NotConnected
            }),
            None => ConnectionState::NotConnected,
        })
    }

    pub(crate) async fn save(&self, store: &store::Store) -> Result<()> {
        let json = serde_json::to_string(self).map_err(|e| crate::Error::Io(e.to_string()))?;
        store.set_meta(STATE_KEY, &json).await?;
        Ok(())
    }
}
