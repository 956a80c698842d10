//! The one error type of the WHOOP crate. Each variant is a distinct thing the caller does
//! differently: refresh on `Unauthorized`, ask the person to reconnect on `InvalidGrant`, back off
//! on `RateLimited`, report and carry on for `Decode`.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The access token was refused (expired or revoked; WHOOP does not say which).
    #[error("WHOOP refused the access token (401)")]
    Unauthorized,

    /// The refresh token or authorization code is spent, expired or revoked: the person has to
    /// authorize again.
    #[error("WHOOP refused the authorization grant ({error}): {description}")]
    InvalidGrant { error: String, description: String },

    /// Any other OAuth error from the token endpoint (bad client, bad request).
    #[error("WHOOP's token endpoint answered {status} {error}: {description}")]
    OAuth {
        status: u16,
        error: String,
        description: String,
    },

    /// Still rate limited after waiting as long as the client is allowed to wait.
    #[error("WHOOP rate limit reached; try again in {}s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },

    /// WHOOP kept failing (5xx) or was unreachable after every retry.
    #[error("WHOOP is not answering ({detail}) after {attempts} attempts")]
    Unavailable { attempts: u32, detail: String },

    /// A code exchange or refresh was sent, but its answer never arrived intact (timeout, cut
    /// connection, 5xx). WHOOP may have acted on it: a refresh token may already be rotated, a
    /// code already spent. The request is never repeated, because a replayed refresh token makes
    /// WHOOP revoke the whole grant.
    #[error("WHOOP did not confirm the token request ({detail}); it was not repeated")]
    TokenOutcomeUnknown { detail: String },

    /// A request WHOOP called malformed (400) or another status we have no plan for.
    #[error("WHOOP answered {status} to {what}")]
    Status { status: u16, what: String },

    /// A body we could not understand at all (not a record-level problem: those are skipped).
    #[error("could not read WHOOP's answer to {what}: {detail}")]
    Decode { what: String, detail: String },

    #[error("invalid configuration: {0}")]
    Config(String),

    /// The token broker refused this device's credential (unknown, pruned or revoked), or there
    /// is none to send: the broker only refreshes for devices it bound at a code exchange, so
    /// the person has to sign in again. Nothing reached WHOOP, so no token was spent.
    #[error("the VitalTrends service does not know this device; sign in again")]
    DeviceUnknown,
    /// The VitalTrends relay's subscription gate refused a token request: `code` is
    /// `subscription_required` (no active licence to sign in with), `subscription_inactive` (the
    /// licence ended and its grace period is over) or `device_limit`. Nothing reached WHOOP, so a
    /// refused refresh leaves the refresh token unspent.
    #[error("{}", subscription_message(code))]
    Subscription { code: String },
}

fn subscription_message(code: &str) -> &'static str {
    match code {
        SUBSCRIPTION_INACTIVE => {
            "your VitalTrends subscription has ended; renew it to sync again (your history stays \
             on this computer)"
        }
        DEVICE_LIMIT => {
            "this licence is already in use on as many devices as it allows; disconnect WHOOP on \
             one of them first"
        }
        _ => {
            "an active VitalTrends subscription is required to connect WHOOP: subscribe, or \
              enter your licence key"
        }
    }
}

/// The relay's refusal codes (see `Error::Subscription`).
pub const SUBSCRIPTION_REQUIRED: &str = "subscription_required";
pub const SUBSCRIPTION_INACTIVE: &str = "subscription_inactive";
pub const DEVICE_LIMIT: &str = "device_limit";

impl Error {
    /// A stable code for logs and for the UI to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthorized => "unauthorized",
            Error::InvalidGrant { .. } => "invalid_grant",
            Error::DeviceUnknown => "relay_device_unknown",
            Error::OAuth { .. } => "oauth_error",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable { .. } => "whoop_unavailable",
            Error::TokenOutcomeUnknown { .. } => "token_outcome_unknown",
            Error::Status { .. } => "whoop_status",
            Error::Decode { .. } => "whoop_decode",
            Error::Config(_) => "config",
            Error::Subscription { code } => match code.as_str() {
                SUBSCRIPTION_INACTIVE => SUBSCRIPTION_INACTIVE,
                DEVICE_LIMIT => DEVICE_LIMIT,
                _ => SUBSCRIPTION_REQUIRED,
            },
        }
    }

    /// True for failures that may pass by themselves (network, 5xx, rate limit).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::RateLimited { .. } | Error::Unavailable { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
