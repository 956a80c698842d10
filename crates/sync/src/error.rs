//! The sync engine's one error type. `code()` is what crosses to the UI and to `--json` output.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not connected to WHOOP; connect first")]
    NotConnected,
    #[error("WHOOP needs reconnecting: {reason}")]
    ReconnectNeeded { reason: String },
    #[error("authorization was denied in the browser")]
    AuthorizationDenied,
    #[error("the authorization callback did not match a pending request")]
    UnexpectedCallback,
    #[error("no authorization arrived within {0} minutes")]
    AuthorizationTimedOut(u64),
    #[error(transparent)]
    Whoop(#[from] whoop::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("secret storage: {0}")]
    Secrets(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Io(String),
    #[error("stopped because WHOOP was disconnected")]
    Cancelled,
    #[error(
        "you signed in to WHOOP as {other}, but this VitalTrends holds {current}'s history, so \
         nothing was changed{}. Sign in as {current} to reconnect, or switch accounts in the app: \
         {current}'s history is then set aside, kept apart, and {other} gets a history of their \
         own",
        if *revoked { " and the access just granted was withdrawn" } else { "" }
    )]
    OtherMember {
        current: String,
        other: String,
        /// Whether the stray grant was revoked at WHOOP.
        revoked: bool,
    },
    #[error(
        "WHOOP refused the sign-in: this VitalTrends app may not ask for all the data it needs \
         ({description}). Its registration at WHOOP must allow the read scopes for recovery, \
         cycles, workouts, sleep, profile and body measurements, and offline access"
    )]
    ScopeRefused { description: String },
    #[error("WHOOP refused the sign-in ({error}): {description}")]
    SignInRefused { error: String, description: String },
    #[error(
        "disconnected here, but WHOOP could not be reached to revoke access ({0}); VitalTrends \
         will retry the revoke, or run disconnect again"
    )]
    RevokePending(String),
    #[error(
        "the VitalTrends service could not register this device, so the access WHOOP just \
         granted could not be renewed later{}; nothing was changed. Try connecting again",
        if *revoked { " and was withdrawn" } else { "" }
    )]
    RelayDeviceNotBound {
        /// Whether the unusable grant was revoked at WHOOP.
        revoked: bool,
    },
    #[error("that is not a VitalTrends licence key (it starts with VT1.)")]
    InvalidLicence,
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotConnected => "not_connected",
            Error::ReconnectNeeded { .. } => "reconnect_needed",
            Error::AuthorizationDenied => "authorization_denied",
            Error::UnexpectedCallback => "unexpected_callback",
            Error::AuthorizationTimedOut(_) => "authorization_timed_out",
            Error::Whoop(e) => e.code(),
            Error::Store(e) => e.code(),
            Error::Secrets(_) => "secret_store",
            Error::Config(_) => "config",
            Error::Io(_) => "io",
            Error::Cancelled => "cancelled",
            Error::RevokePending(_) => "revoke_pending",
            Error::OtherMember { .. } => "other_member",
            Error::ScopeRefused { .. } => "invalid_scope",
            Error::SignInRefused { .. } => "sign_in_refused",
            Error::RelayDeviceNotBound { .. } => "relay_device_not_bound",
            Error::InvalidLicence => "invalid_licence",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
