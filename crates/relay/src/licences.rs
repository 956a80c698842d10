//! The subscription gate: who may use the VitalTrends service. A device presents a licence key
//! (see the `licence` crate) with the broker's code exchange; the relay checks the signature,
//! looks the licence up in its database (which says whether it is active now, and is what
//! renewals and revocations change), enforces the device limit, and remembers the licence on the
//! device it binds. Refreshes (which carry the key too) and the device's event stream keep working
//! for a grace period after the licence ends, then stop with `subscription_inactive`.
//!
//! Also here: the billing webhook a payment provider calls to renew, cancel or revoke (signed
//! like Stripe's: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`), the device's own licence
//! status, and the operator's licence commands (`admin`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use crate::client_ip::ClientIp;
use crate::device::authenticate;
use crate::error::{json_error, unavailable};
use crate::server::{now_ms, AppState};
use crate::storage::{Device, LicenceRow};

pub const SUBSCRIPTION_REQUIRED: &str = "subscription_required";
pub const SUBSCRIPTION_INACTIVE: &str = "subscription_inactive";
pub const DEVICE_LIMIT: &str = "device_limit";

/// The header carrying the billing webhook's signature.
pub const BILLING_SIGNATURE_HEADER: &str = "vitaltrends-signature";
/// How far a billing webhook's timestamp may be from now (Stripe's default tolerance). Replays
/// inside it are harmless: every event sets a state rather than adding to one.
const BILLING_TOLERANCE_SECS: i64 = 300;
const MAX_BILLING_BODY: usize = 16 * 1024;
/// At most how often an open stream re-reads its licence, so a revocation reaches it without
/// waiting for the deadline it computed when it opened. (Never longer than the grace period,
/// so the stream still ends about when the grace does.)
const STREAM_LICENCE_RECHECK: Duration = Duration::from_secs(60);

pub fn stream_recheck(app: &AppState) -> Duration {
    app.config
        .subscription_gate
        .as_ref()
        .map_or(STREAM_LICENCE_RECHECK, |g| {
            g.grace.min(STREAM_LICENCE_RECHECK)
        })
}

/// A refusal the app branches on: `code` names it (and `error` too, like every other relay
/// error body). Never echoes anything from the request.
pub fn refusal(status: StatusCode, code: &'static str) -> Response {
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"error\":\"{code}\",\"code\":\"{code}\"}}"),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn required() -> Response {
    refusal(StatusCode::PAYMENT_REQUIRED, SUBSCRIPTION_REQUIRED)
}

fn inactive() -> Response {
    refusal(StatusCode::PAYMENT_REQUIRED, SUBSCRIPTION_INACTIVE)
}

fn grace_ms(app: &AppState) -> i64 {
    app.config
        .subscription_gate
        .as_ref()
        .map_or(0, |g| g.grace.as_millis().min(i64::MAX as u128) as i64)
}

/// The licence a key stands for, recorded on first use (so a billing system holding the signing
/// key can mint keys without touching this database); `None` if the key is not one of ours.
async fn known_licence(app: &AppState, key: &str) -> Result<Option<LicenceRow>, Response> {
    let Some(gate) = &app.config.subscription_gate else {
        return Ok(None);
    };
    let claims = match gate.public_key.verify(key) {
        Ok(c) => c,
        Err(err) => {
            // The key itself is never logged.
            tracing::info!(error = %err, "licence key refused");
            return Ok(None);
        }
    };
    match app.storage.licence(&claims.id).await {
        Ok(Some(row)) => return Ok(Some(row)),
        Ok(None) => {}
        Err(err) => return Err(unavailable(&err)),
    }
    let now = now_ms();
    let row = LicenceRow {
        id: claims.id.clone(),
        plan: claims.plan,
        max_devices: i64::from(claims.max_devices),
        status: "active".into(),
        active_until_ms: claims.expires_at.saturating_mul(1000),
        issued_at_ms: claims.issued_at.saturating_mul(1000),
        updated_at_ms: now,
    };
    if let Err(err) = app.storage.insert_licence(&row).await {
        return Err(unavailable(&err));
    }
    tracing::info!(licence = %row.id, "licence recorded on first use");
    // Another node may have recorded it first; its row is the one that counts.
    match app.storage.licence(&claims.id).await {
        Ok(found) => Ok(found),
        Err(err) => Err(unavailable(&err)),
    }
}

/// The code exchange's check, before anything reaches WHOOP (a refused sign-in must not spend
/// the code). `Ok(Some(id))`: the licence to bind the device to; `Ok(None)`: the gate is off.
pub async fn gate_exchange(app: &AppState, key: Option<&str>) -> Result<Option<String>, Response> {
    if app.config.subscription_gate.is_none() {
        return Ok(None);
    }
    let Some(key) = key else {
        return Err(required());
    };
    let Some(row) = known_licence(app, key).await? else {
        return Err(required());
    };
    if now_ms() >= row.active_until_ms {
        tracing::info!(licence = %row.id, status = %row.status, "sign-in with an ended licence");
        return Err(required());
    }
    // Two sign-ins racing may both pass; the limit is about sharing a key, not exact counts.
    match app.storage.licence_devices(&row.id).await {
        Ok(n) if n >= row.max_devices => {
            tracing::info!(licence = %row.id, devices = n, "licence device limit reached");
            Err(refusal(StatusCode::FORBIDDEN, DEVICE_LIMIT))
        }
        Ok(_) => Ok(Some(row.id)),
        Err(err) => Err(unavailable(&err)),
    }
}

/// A refresh's check: the licence may have ended, but not longer ago than the grace period.
/// Checked before WHOOP is asked, so a refused refresh leaves the refresh token unspent and a
/// renewal resumes syncing without a new sign-in.
pub async fn gate_refresh(app: &AppState, key: Option<&str>) -> Result<(), Response> {
    if app.config.subscription_gate.is_none() {
        return Ok(());
    }
    let Some(key) = key else {
        return Err(required());
    };
    let Some(row) = known_licence(app, key).await? else {
        return Err(required());
    };
    if now_ms() >= row.active_until_ms.saturating_add(grace_ms(app)) {
        return Err(inactive());
    }
    Ok(())
}

/// The event stream's check for an authenticated device: `Ok(Some(deadline_ms))` when the
/// stream must end (the licence's end plus grace), `Ok(None)` when the gate is off.
pub async fn gate_device(app: &AppState, device: &Device) -> Result<Option<i64>, Response> {
    if app.config.subscription_gate.is_none() {
        return Ok(None);
    }
    let deadline = match device_deadline(app, device).await {
        Ok(d) => d,
        Err(err) => return Err(unavailable(&err)),
    };
    match deadline {
        Some(d) if now_ms() < d => Ok(Some(d)),
        // Bound while the gate was off, or a licence that is gone: no service.
        _ => Err(inactive()),
    }
}

/// When the device's service ends (its licence's end plus grace); `None` without a licence.
pub async fn device_deadline(app: &AppState, device: &Device) -> crate::Result<Option<i64>> {
    let Some(id) = device.licence_id.as_deref() else {
        return Ok(None);
    };
    Ok(app
        .storage
        .licence(id)
        .await?
        .map(|row| row.active_until_ms.saturating_add(grace_ms(app))))
}

fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `GET /v1/licence`: the calling device's licence as the relay knows it (plan, status, end,
/// devices), for the app's Settings → Subscription.
pub async fn status(
    State(app): State<Arc<AppState>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let device = match authenticate(&app, ip, &headers).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let Some(id) = device.licence_id.as_deref() else {
        return json_error(StatusCode::NOT_FOUND, "no_licence");
    };
    licence_status(&app, id).await
}

/// `POST /v1/licence` (form: `licence_key`): the device now uses this licence, as when the
/// person enters a new key after a lapse without signing in to WHOOP again (its refreshes carry
/// the new key already; its event stream follows the licence recorded here). Same refusals as a
/// sign-in: 402 `subscription_required`, 403 `device_limit`. Answers like `GET /v1/licence`.
pub async fn rebind(
    State(app): State<Arc<AppState>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !app.broker_limiter.admit(ip) {
        return json_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    }
    let device = match authenticate(&app, ip, &headers).await {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    if app.config.subscription_gate.is_none() {
        return json_error(StatusCode::NOT_FOUND, "no_subscription_gate");
    }
    let Ok(bytes) = to_bytes(body, 8 * 1024).await else {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    };
    let key = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == crate::broker::LICENCE_FIELD)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty());
    let Some(key) = key else {
        return required();
    };
    let row = match known_licence(&app, &key).await {
        Ok(Some(row)) => row,
        Ok(None) => return required(),
        Err(resp) => return resp,
    };
    if now_ms() >= row.active_until_ms {
        return required();
    }
    if device.licence_id.as_deref() != Some(row.id.as_str()) {
        match app.storage.licence_devices(&row.id).await {
            Ok(n) if n >= row.max_devices => {
                return refusal(StatusCode::FORBIDDEN, DEVICE_LIMIT);
            }
            Ok(_) => {}
            Err(err) => return unavailable(&err),
        }
        match app.storage.set_device_licence(&device.id, &row.id).await {
            Ok(true) => {
                tracing::info!(device = %device.id, licence = %row.id, "device moved to another licence")
            }
            Ok(false) => return crate::device::unauthorized(),
            Err(err) => return unavailable(&err),
        }
    }
    licence_status(&app, &row.id).await
}

async fn licence_status(app: &AppState, id: &str) -> Response {
    let row = match app.storage.licence(id).await {
        Ok(Some(row)) => row,
        Ok(None) => return json_error(StatusCode::NOT_FOUND, "no_licence"),
        Err(err) => return unavailable(&err),
    };
    let devices = match app.storage.licence_devices(id).await {
        Ok(n) => n,
        Err(err) => return unavailable(&err),
    };
    let now = now_ms();
    let service_until = row.active_until_ms.saturating_add(grace_ms(app));
    let body = json!({
        "licence_id": row.id,
        "plan": row.plan,
        "status": row.status,
        "active": now < row.active_until_ms,
        "active_until": iso(row.active_until_ms),
        "service_until": iso(service_until),
        "max_devices": row.max_devices,
        "devices": devices,
    });
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Checks a `t=<unix seconds>,v1=<hex>` signature (several `v1` allowed, as during a secret
/// rotation) over `"{t}.{body}"`, with the timestamp within the tolerance of `now_secs`.
pub fn billing_signature_ok(secret: &str, header: &str, body: &[u8], now_secs: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let Some(t) = timestamp else {
        return false;
    };
    if (now_secs - t).abs() > BILLING_TOLERANCE_SECS {
        return false;
    }
    signatures.into_iter().any(|sig| {
        let Some(expected) = hex_decode(sig) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        // Constant-time comparison.
        mac.verify_slice(&expected).is_ok()
    })
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The billing webhook's body.
#[derive(Debug, Deserialize)]
struct BillingEvent {
    /// `licence.renewed`, `licence.cancelled` or `licence.revoked`.
    #[serde(rename = "type")]
    kind: String,
    licence_id: String,
    /// RFC 3339. Required for `renewed` (the new paid-through time); for `cancelled`, when the
    /// paid period ends (default: the end already known).
    #[serde(default)]
    active_until: Option<DateTime<Utc>>,
}

/// `POST /billing/webhook`: a payment provider renews, cancels or revokes a licence.
/// 204 applied; 401 `bad_signature`; 400 `invalid_body`; 404 `unknown_licence`; 409
/// `licence_revoked` (a revocation is final).
pub async fn billing_webhook(
    State(app): State<Arc<AppState>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(secret) = app.config.billing_webhook_secret.as_deref() else {
        return json_error(StatusCode::NOT_FOUND, "not_found");
    };
    if !app.webhook_limiter.admit(ip) {
        return json_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    }
    let Ok(bytes) = to_bytes(body, MAX_BILLING_BODY).await else {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    };
    let signature = headers
        .get(BILLING_SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !billing_signature_ok(secret, signature, &bytes, now_ms() / 1000) {
        tracing::warn!("billing webhook with a bad signature refused");
        return json_error(StatusCode::UNAUTHORIZED, "bad_signature");
    }
    let Ok(event) = serde_json::from_slice::<BillingEvent>(&bytes) else {
        return json_error(StatusCode::BAD_REQUEST, "invalid_body");
    };
    let row = match app.storage.licence(&event.licence_id).await {
        Ok(Some(row)) => row,
        Ok(None) => return json_error(StatusCode::NOT_FOUND, "unknown_licence"),
        Err(err) => return unavailable(&err),
    };
    let now = now_ms();
    let until = event.active_until.map(|t| t.timestamp_millis());
    let (status, active_until) = match event.kind.as_str() {
        _ if row.status == "revoked" => return json_error(StatusCode::CONFLICT, "licence_revoked"),
        "licence.renewed" => match until {
            Some(u) => ("active", u),
            None => return json_error(StatusCode::BAD_REQUEST, "invalid_body"),
        },
        "licence.cancelled" => ("cancelled", until.unwrap_or(row.active_until_ms)),
        "licence.revoked" => ("revoked", row.active_until_ms.min(now)),
        _ => return json_error(StatusCode::BAD_REQUEST, "invalid_body"),
    };
    match app
        .storage
        .set_licence(&row.id, status, active_until, now)
        .await
    {
        Ok(_) => {
            tracing::info!(licence = %row.id, status, "licence updated by billing");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => unavailable(&err),
    }
}

/// The operator's licence commands (`vitaltrends-relay licence …`), straight on the database.
pub mod admin {
    use chrono::{DateTime, Utc};

    use crate::error::{Error, Result};
    use crate::server::now_ms;
    use crate::storage::{LicenceRow, Storage};

    const DAY_MS: i64 = 24 * 3600 * 1000;

    /// A licence as `licence list` shows it.
    #[derive(Debug, Clone)]
    pub struct Licence {
        pub id: String,
        pub plan: String,
        pub status: String,
        pub active_until: DateTime<Utc>,
        pub issued_at: DateTime<Utc>,
        pub max_devices: i64,
        /// Live (not revoked) devices bound to it.
        pub devices: i64,
    }

    fn time(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
    }

    fn shown(row: LicenceRow, devices: i64) -> Licence {
        Licence {
            active_until: time(row.active_until_ms),
            issued_at: time(row.issued_at_ms),
            id: row.id,
            plan: row.plan,
            status: row.status,
            max_devices: row.max_devices,
            devices,
        }
    }

    /// Issues a licence running `days` from now and records it; returns the key.
    pub async fn issue(
        database_url: &str,
        signing_key: &licence::SigningKey,
        plan: &str,
        days: u32,
        max_devices: u32,
    ) -> Result<String> {
        if days == 0 || max_devices == 0 || plan.trim().is_empty() {
            return Err(Error::Config(
                "days and devices must be positive and the plan named".into(),
            ));
        }
        let storage = Storage::connect(database_url).await?;
        let now = now_ms();
        let until = now.saturating_add(i64::from(days) * DAY_MS);
        let claims = licence::Claims::new(plan.trim(), now / 1000, until / 1000, max_devices);
        let row = LicenceRow {
            id: claims.id.clone(),
            plan: claims.plan.clone(),
            max_devices: i64::from(max_devices),
            status: "active".into(),
            active_until_ms: (until / 1000) * 1000,
            issued_at_ms: now,
            updated_at_ms: now,
        };
        storage.insert_licence(&row).await?;
        storage.close().await;
        Ok(signing_key.issue(&claims))
    }

    /// A licence id, or the id inside a key.
    fn licence_id(id_or_key: &str) -> Result<String> {
        let t = id_or_key.trim();
        if t.starts_with("lic_") {
            return Ok(t.to_string());
        }
        licence::decode(t)
            .map(|c| c.id)
            .map_err(|_| Error::Config("not a licence id (lic_…) or licence key".into()))
    }

    async fn load(storage: &Storage, id: &str) -> Result<LicenceRow> {
        storage
            .licence(id)
            .await?
            .ok_or_else(|| Error::Config(format!("no licence {id} in this database")))
    }

    async fn reload(storage: &Storage, id: &str) -> Result<Licence> {
        let row = load(storage, id).await?;
        let devices = storage.licence_devices(id).await?;
        Ok(shown(row, devices))
    }

    /// Adds `days` to the licence's end (or to now, if it has ended) and makes it active again;
    /// a revoked licence stays revoked.
    pub async fn extend(database_url: &str, id_or_key: &str, days: u32) -> Result<Licence> {
        let id = licence_id(id_or_key)?;
        let storage = Storage::connect(database_url).await?;
        let row = load(&storage, &id).await?;
        if row.status == "revoked" {
            return Err(Error::Config(format!(
                "licence {id} is revoked; issue a new one"
            )));
        }
        let now = now_ms();
        let until = row
            .active_until_ms
            .max(now)
            .saturating_add(i64::from(days) * DAY_MS);
        storage.set_licence(&id, "active", until, now).await?;
        let shown = reload(&storage, &id).await;
        storage.close().await;
        shown
    }

    /// Ends the licence now. Devices keep refreshing through the grace period, then stop.
    pub async fn revoke(database_url: &str, id_or_key: &str) -> Result<Licence> {
        let id = licence_id(id_or_key)?;
        let storage = Storage::connect(database_url).await?;
        let row = load(&storage, &id).await?;
        let now = now_ms();
        storage
            .set_licence(&id, "revoked", row.active_until_ms.min(now), now)
            .await?;
        let shown = reload(&storage, &id).await;
        storage.close().await;
        shown
    }

    pub async fn list(database_url: &str) -> Result<Vec<Licence>> {
        let storage = Storage::connect(database_url).await?;
        let rows = storage.licences().await?;
        storage.close().await;
        Ok(rows.into_iter().map(|(r, d)| shown(r, d)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        let sig: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("t={t},v1={sig}")
    }

    #[test]
    fn billing_signatures() {
        let body = br#"{"type":"licence.renewed"}"#;
        let now = 1_800_000_000;
        let good = sign("s3cret", now, body);
        assert!(billing_signature_ok("s3cret", &good, body, now));
        assert!(billing_signature_ok("s3cret", &good, body, now + 299));
        assert!(
            !billing_signature_ok("s3cret", &good, body, now + 301),
            "too old"
        );
        assert!(
            !billing_signature_ok("other", &good, body, now),
            "wrong secret"
        );
        assert!(
            !billing_signature_ok("s3cret", &good, b"{}", now),
            "other body"
        );
        let rotated = format!("{},v1=00ff", sign("s3cret", now, body));
        assert!(billing_signature_ok("s3cret", &rotated, body, now));
        let v1_only = good.split_once(',').unwrap().1;
        assert!(!billing_signature_ok("s3cret", v1_only, body, now), "no t");
        assert!(!billing_signature_ok("s3cret", "", body, now));
        assert!(!billing_signature_ok("s3cret", "t=x,v1=zz", body, now));
    }
}
