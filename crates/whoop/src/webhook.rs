//! WHOOP webhook notices: signature verification and the payload.
//!
//! WHOOP signs `timestamp header + raw body` with HMAC-SHA256 keyed by the app's client secret and
//! sends the base64 result. Verification works on the raw bytes, before any JSON parsing, because a
//! re-serialised body no longer matches. This is a pure function so the relay (and its tests) call
//! exactly what the desktop trusts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const SIGNATURE_HEADER: &str = "X-WHOOP-Signature";
pub const TIMESTAMP_HEADER: &str = "X-WHOOP-Signature-Timestamp";

/// Why a notice was refused. Callers answer every variant the same way (a generic 401); the
/// variants exist for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header missing")]
    MissingSignature,
    #[error("timestamp header missing")]
    MissingTimestamp,
    #[error("timestamp is not epoch milliseconds")]
    BadTimestamp,
    #[error("timestamp outside the accepted window")]
    OutsideWindow,
    #[error("signature is not base64 of a SHA-256 MAC")]
    BadEncoding,
    #[error("signature does not match")]
    Mismatch,
}

impl SignatureError {
    /// Stable label for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureError::MissingSignature => "missing_signature",
            SignatureError::MissingTimestamp => "missing_timestamp",
            SignatureError::BadTimestamp => "bad_timestamp",
            SignatureError::OutsideWindow => "outside_window",
            SignatureError::BadEncoding => "bad_encoding",
            SignatureError::Mismatch => "mismatch",
        }
    }
}

/// The signature WHOOP would send for this timestamp and body.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    BASE64.encode(mac(secret, timestamp, body))
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Checks a notice against one or more secrets (two during a secret rotation).
///
/// `window` bounds how far the timestamp may be from `now` in either direction.
pub fn verify(
    secrets: &[&[u8]],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: SystemTime,
    window: Duration,
) -> Result<(), SignatureError> {
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::MissingSignature)?;
    let timestamp = timestamp
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::MissingTimestamp)?;
    let sent_ms: u64 = timestamp
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    if now_ms.abs_diff(sent_ms) > window.as_millis() as u64 {
        return Err(SignatureError::OutsideWindow);
    }
    let claimed = BASE64
        .decode(signature)
        .map_err(|_| SignatureError::BadEncoding)?;
    if claimed.len() != 32 {
        return Err(SignatureError::BadEncoding);
    }
    // Check every secret, without stopping early, so timing does not tell which one matched.
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        matched |= mac(secret, timestamp, body).ct_eq(&claimed[..]);
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// What WHOOP's v2 webhook body says: which object changed, never its values.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookEvent {
    pub user_id: i64,
    /// Sleep or workout UUID; for `recovery.*` the UUID of the sleep it belongs to.
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub trace_id: String,
}

impl WebhookEvent {
    pub fn parse(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    pub fn kind(&self) -> Option<EventKind> {
        EventKind::parse(&self.kind)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    SleepUpdated,
    SleepDeleted,
    RecoveryUpdated,
    RecoveryDeleted,
    WorkoutUpdated,
    WorkoutDeleted,
}

impl EventKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sleep.updated" => EventKind::SleepUpdated,
            "sleep.deleted" => EventKind::SleepDeleted,
            "recovery.updated" => EventKind::RecoveryUpdated,
            "recovery.deleted" => EventKind::RecoveryDeleted,
            "workout.updated" => EventKind::WorkoutUpdated,
            "workout.deleted" => EventKind::WorkoutDeleted,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SleepUpdated => "sleep.updated",
            EventKind::SleepDeleted => "sleep.deleted",
            EventKind::RecoveryUpdated => "recovery.updated",
            EventKind::RecoveryDeleted => "recovery.deleted",
            EventKind::WorkoutUpdated => "workout.updated",
            EventKind::WorkoutDeleted => "workout.deleted",
        }
    }
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or number id, got {other}"
        ))),
    }
}
