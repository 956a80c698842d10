//! Device credentials: how a device proves which WHOOP user's events it may read. The credential
//! is 256 random bits handed out once by the token broker; the relay keeps only its SHA-256, so a
//! leaked database cannot be replayed against the stream.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{json_error, unavailable};
use crate::server::{now_ms, AppState};
use crate::storage::Device;

/// base64url of 32 bytes is 43 characters; anything much longer is not ours.
const MAX_CREDENTIAL_LEN: usize = 128;

pub fn new_credential() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn credential_hash(credential: &str) -> String {
    format!("{:x}", Sha256::digest(credential.as_bytes()))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.len() <= MAX_CREDENTIAL_LEN)
        .then_some(token)
}

/// The one answer for a missing, unknown or revoked credential, so none can be told apart.
pub fn unauthorized() -> Response {
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":"unauthorized"}"#,
    )
        .into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// How stale `last_seen_at` may get before a request refreshes it: often enough that an active
/// device is never pruned, rarely enough that requests do not each cost a write.
pub fn touch_interval(retention: Duration) -> Duration {
    (retention / 10).min(Duration::from_secs(60))
}

/// The calling device, or the response to send instead (401, or 503 if the database is down).
/// A client IP with too many failed attempts this minute gets 429 before anything is looked up,
/// so credentials cannot be guessed at the speed of the database.
pub async fn authenticate(
    app: &Arc<AppState>,
    ip: IpAddr,
    headers: &HeaderMap,
) -> Result<Device, Response> {
    if app.auth_failures.exhausted(ip) {
        crate::metrics::bump(&app.metrics.device_auth_throttled);
        return Err(json_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    }
    let refused = || {
        crate::metrics::bump(&app.metrics.device_unauthorized);
        app.auth_failures.admit(ip);
        unauthorized()
    };
    let Some(credential) = bearer(headers) else {
        return Err(refused());
    };
    let device = match app
        .storage
        .device_by_hash(&credential_hash(credential))
        .await
    {
        Ok(Some(d)) => d,
        Ok(None) => return Err(refused()),
        Err(err) => return Err(unavailable(&err)),
    };
    let now = now_ms();
    let stale_after = touch_interval(app.config.retention).as_millis() as i64;
    if device
        .last_seen_at_ms
        .is_none_or(|seen| now.saturating_sub(seen) >= stale_after)
    {
        match app.storage.touch_device(&device.id, now).await {
            Ok(true) => {}
            Ok(false) => return Err(refused()),
            Err(err) => return Err(unavailable(&err)),
        }
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_256_bit_base64url_and_hashed_hex() {
        let c = new_credential();
        assert_eq!(c.len(), 43);
        assert!(c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(c, new_credential());
        let h = credential_hash("abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }
}
