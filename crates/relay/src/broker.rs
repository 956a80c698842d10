//! The token broker, so the desktop app never holds the WHOOP client secret: it forwards the code
//! exchange and every refresh to WHOOP with the app's credentials and passes WHOOP's answer back
//! untouched. Nothing about tokens is stored or logged. The code exchange is also the only way a
//! device binds to a WHOOP user: the relay asks WHOOP's profile endpoint, with the fresh token,
//! whose it is, instead of believing anything the device says.
//!
//! Also serves the OAuth landing page for deployments where WHOOP will not register the app's
//! custom URL scheme as a redirect URI.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

use crate::client_ip::ClientIp;
use crate::device::{credential_hash, new_credential};
use crate::error::json_error;
use crate::licences;
use crate::metrics::bump;
use crate::quota::Priority;
use crate::server::{now_ms, AppState};

/// Token forms are a few hundred bytes.
const MAX_FORM: usize = 8 * 1024;
const PROFILE_ATTEMPTS: u32 = 3;

/// The most one broker request spends talking to WHOOP: the token request, then (for a code
/// exchange) binding the device. Kept well below the desktop client's own timeout
/// (`whoop::oauth::TOKEN_REQUEST_TIMEOUT`, 30 s), so the client always gets the broker's answer:
/// a client that timed out could not know whether the refresh token was rotated.
pub const BROKER_DEADLINE: Duration = Duration::from_secs(25);
/// WHOOP's token endpoint gets this much of it.
const TOKEN_REQUEST_DEADLINE: Duration = Duration::from_secs(15);
/// Binding the device gets the rest, less this margin for the answer's way back (so at least
/// 9 s; more when WHOOP's token endpoint answered quickly, which a sign-in waiting its turn for
/// the profile request in a busy minute needs). The tokens go back without a device credential
/// if it runs out, and the app withdraws them.
const BIND_MARGIN: Duration = Duration::from_secs(1);
const _: () = assert!(
    TOKEN_REQUEST_DEADLINE.as_secs() + BIND_MARGIN.as_secs() + 5 < BROKER_DEADLINE.as_secs()
);

/// WHOOP could not be reached at all (no connection opened): nothing was sent, so the client may
/// send the same request again.
const WHOOP_UNREACHABLE: &str = "whoop_unreachable";
/// The request may have reached WHOOP but its answer was lost (timeout, cut connection, 5xx):
/// WHOOP may have rotated the refresh token or spent the code, so nobody may repeat it.
const WHOOP_OUTCOME_UNKNOWN: &str = "whoop_outcome_unknown";
const CUSTOM_SCHEME_CALLBACK: &str = "vitaltrends://oauth/whoop/callback";

fn form(body: &Bytes) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}

/// Reads a form body, or says why not (413 for too large, 408 for too slow).
async fn read_form(app: &AppState, body: Body) -> Result<HashMap<String, String>, Response> {
    crate::server::read_body(app, body, MAX_FORM)
        .await
        .map(|bytes| form(&bytes))
}

fn required<'a>(form: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    form.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

/// WHOOP's answer as it came: status, content type and body.
struct Upstream {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

impl Upstream {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.body).into_response();
        if let Some(ct) = self.content_type {
            resp.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        no_store(resp)
    }
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

#[derive(Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: String,
}

/// POSTs a token request with the client credentials. During a secret rotation WHOOP may already
/// refuse the current secret as `invalid_client`; that refusal happens before the grant is looked
/// at, so asking again with the previous secret cannot spend a code or refresh token twice.
/// Nothing else is ever sent twice: once a request may have reached WHOOP, a failure is answered
/// as 502 `whoop_outcome_unknown`; only a connection that never opened is 503
/// `whoop_unreachable`, which the client may retry.
async fn token_request(app: &AppState, fields: &[(&str, &str)]) -> Result<Upstream, Response> {
    let url = app.config.whoop_url("/oauth/oauth2/token");
    let mut last = None;
    for secret in &app.config.client_secrets {
        let mut body: Vec<(&str, &str)> = fields.to_vec();
        body.push(("client_id", &app.config.client_id));
        body.push(("client_secret", secret));
        let sent = app
            .http
            .post(&url)
            .form(&body)
            .timeout(TOKEN_REQUEST_DEADLINE)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(err) if err.is_connect() => {
                tracing::warn!(error = %err.without_url(), "WHOOP token endpoint unreachable");
                return Err(no_store(json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    WHOOP_UNREACHABLE,
                )));
            }
            Err(err) => {
                tracing::warn!(error = %err.without_url(), "WHOOP's token answer was lost");
                return Err(no_store(json_error(
                    StatusCode::BAD_GATEWAY,
                    WHOOP_OUTCOME_UNKNOWN,
                )));
            }
        };
        let status = resp.status();
        let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(err) => {
                tracing::warn!(error = %err.without_url(), "WHOOP token response cut short");
                return Err(no_store(json_error(
                    StatusCode::BAD_GATEWAY,
                    WHOOP_OUTCOME_UNKNOWN,
                )));
            }
        };
        if status.is_server_error() {
            // WHOOP may have rotated before failing; passing its 5xx on could read as "retry".
            tracing::warn!(status = status.as_u16(), "WHOOP's token endpoint failed");
            return Err(no_store(json_error(
                StatusCode::BAD_GATEWAY,
                WHOOP_OUTCOME_UNKNOWN,
            )));
        }
        let upstream = Upstream {
            status,
            content_type,
            body,
        };
        let client_refused = status == StatusCode::UNAUTHORIZED
            && serde_json::from_slice::<OAuthError>(&upstream.body)
                .is_ok_and(|e| e.error == "invalid_client");
        if !client_refused {
            return Ok(upstream);
        }
        last = Some(upstream);
    }
    match last {
        Some(upstream) => Ok(upstream),
        None => Err(json_error(StatusCode::INTERNAL_SERVER_ERROR, "no_secret")),
    }
}

/// The form field a device sends its licence key in, with the code exchange and every refresh
/// (a form field rather than a header: the body is never logged, headers may be by proxies).
pub const LICENCE_FIELD: &str = "licence_key";

/// `POST /oauth/whoop/token` (form: `code`, `redirect_uri`, `code_verifier`, and `licence_key`
/// when the subscription gate is on).
pub async fn exchange(
    State(app): State<Arc<AppState>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    if !app.broker_limiter.admit(ip) {
        return json_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    }
    let form = match read_form(&app, body).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let (Some(code), Some(redirect_uri)) =
        (required(&form, "code"), required(&form, "redirect_uri"))
    else {
        return json_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    // PKCE is what ties a code to the app that started the sign-in: without it, anyone who saw
    // a code (the callback page, a browser history) could trade it here for tokens.
    let Some(verifier) = required(&form, "code_verifier") else {
        return json_error(StatusCode::BAD_REQUEST, "code_verifier_required");
    };
    // Before WHOOP is asked: a refused sign-in must not spend the code.
    let licence_id = match licences::gate_exchange(&app, required(&form, LICENCE_FIELD)).await {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    let fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    let upstream = match token_request(&app, &fields).await {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    if !upstream.status.is_success() {
        tracing::info!(
            status = upstream.status.as_u16(),
            "code exchange refused by WHOOP"
        );
        return upstream.into_response();
    }
    let Ok(serde_json::Value::Object(mut tokens)) =
        serde_json::from_slice::<serde_json::Value>(&upstream.body)
    else {
        // Not something a device could use either; hand it over as it is.
        tracing::warn!("WHOOP's token response is not a JSON object");
        return upstream.into_response();
    };
    let access_token = tokens
        .get("access_token")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    // WHOOP has spent the code: from here on the tokens go back to the device whatever happens,
    // because a retried exchange would be refused (and may revoke the grant). Without a device
    // credential the app still syncs; it just has no event stream until it reconnects.
    let bound = tokio::time::timeout(
        BROKER_DEADLINE
            .saturating_sub(started.elapsed())
            .saturating_sub(BIND_MARGIN),
        bind_device(&app, &access_token, licence_id.as_deref()),
    )
    .await
    .unwrap_or_else(|_| {
        tracing::warn!("binding the device took too long; no device bound");
        None
    });
    match bound {
        Some(credential) => {
            tokens.insert(
                "device_credential".to_string(),
                serde_json::Value::String(credential),
            );
        }
        None => bump(&app.metrics.device_binding_failed),
    }
    match serde_json::to_vec(&tokens) {
        Ok(body) => no_store(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
        ),
        Err(_) => upstream.into_response(),
    }
}

#[derive(Deserialize)]
struct Profile {
    user_id: i64,
}

/// Learns whose token this is and issues a device credential bound to that user.
async fn bind_device(
    app: &AppState,
    access_token: &str,
    licence_id: Option<&str>,
) -> Option<String> {
    if access_token.is_empty() {
        tracing::warn!("WHOOP's token response has no access token; no device bound");
        return None;
    }
    let user_id = profile_user_id(app, access_token).await?;
    let credential = new_credential();
    let id = uuid::Uuid::new_v4().to_string();
    match app
        .storage
        .create_device(
            &id,
            user_id,
            &credential_hash(&credential),
            now_ms(),
            licence_id,
        )
        .await
    {
        Ok(()) => {
            bump(&app.metrics.devices_bound);
            tracing::info!(device = %id, "device bound");
            Some(credential)
        }
        Err(err) => {
            tracing::warn!(error = %err, "could not store the device; no device bound");
            None
        }
    }
}

async fn profile_user_id(app: &AppState, access_token: &str) -> Option<i64> {
    let url = app.config.whoop_url("/developer/v2/user/profile/basic");
    // Who signs in is not known yet: a number of its own (WHOOP's user ids are positive) puts
    // this sign-in in the coordinator's queue beside, not behind, other people's.
    let signing_in = i64::MIN + (uuid::Uuid::new_v4().as_u64_pair().0 >> 1) as i64;
    for attempt in 1..=PROFILE_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
        }
        // A burst of sign-ins must not push WHOOP's minute past its limit (the 429s would hit
        // everyone's imports and live updates); a person is waiting, so it ranks with live
        // events. The bind's deadline bounds the wait.
        if let Some(quota) = &app.quota {
            quota.one_request(signing_in, Priority::Live).await;
        }
        let resp = match app.http.get(&url).bearer_auth(access_token).send().await {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(error = %err.without_url(), attempt, "WHOOP profile unreachable");
                continue;
            }
        };
        let status = resp.status();
        if status.is_success() {
            match resp.json::<Profile>().await {
                Ok(p) => return Some(p.user_id),
                Err(_) => {
                    tracing::warn!(attempt, "WHOOP profile response unreadable");
                    continue;
                }
            }
        }
        tracing::warn!(status = status.as_u16(), attempt, "WHOOP profile refused");
        // Only a server-side hiccup or rate limit is worth another try.
        if !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) {
            return None;
        }
    }
    None
}

/// `POST /oauth/whoop/refresh` (form: `refresh_token`, and `licence_key` when the subscription
/// gate is on), with the device credential the code exchange handed out as
/// `Authorization: Bearer`. Without that the broker would refresh any WHOOP refresh token for
/// anyone with the relay's client secret: an open proxy for WHOOP's token endpoint. A refused
/// credential gets the same 401 as on the event stream.
pub async fn refresh(
    State(app): State<Arc<AppState>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !app.broker_limiter.admit(ip) {
        return json_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    }
    if let Err(resp) = crate::device::authenticate(&app, ip, &headers).await {
        return no_store(resp);
    }
    let form = match read_form(&app, body).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let Some(refresh_token) = required(&form, "refresh_token") else {
        return json_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    // Before WHOOP is asked, so a refused refresh leaves the refresh token unspent.
    if let Err(resp) = licences::gate_refresh(&app, required(&form, LICENCE_FIELD)).await {
        return resp;
    }
    let fields = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("scope", "offline"),
    ];
    match token_request(&app, &fields).await {
        Ok(upstream) => {
            if !upstream.status.is_success() {
                tracing::info!(
                    status = upstream.status.as_u16(),
                    "refresh refused by WHOOP"
                );
            }
            upstream.into_response()
        }
        Err(resp) => resp,
    }
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The app's deep link carrying the callback's `code`, `state` and `error`, and nothing else.
pub fn deep_link(raw_query: Option<&str>) -> String {
    let mut pairs = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    let parsed: Vec<(String, String)> =
        url::form_urlencoded::parse(raw_query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    for key in ["code", "state", "error"] {
        if let Some((_, value)) = parsed.iter().find(|(k, _)| k == key) {
            pairs.append_pair(key, value);
            any = true;
        }
    }
    if any {
        format!("{CUSTOM_SCHEME_CALLBACK}?{}", pairs.finish())
    } else {
        CUSTOM_SCHEME_CALLBACK.to_string()
    }
}

/// `GET /oauth/whoop/callback`: hands WHOOP's redirect on to the desktop app.
pub async fn callback(RawQuery(raw): RawQuery) -> Response {
    let link = escape_html(&deep_link(raw.as_deref()));
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <meta http-equiv=\"refresh\" content=\"0;url={link}\">\
         <title>VitalTrends</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:3rem auto;max-width:28rem;text-align:center}}\
         a{{display:inline-block;margin-top:1rem;padding:.7rem 1.2rem;border-radius:.5rem;background:#1fd17a;color:#08140e;text-decoration:none;font-weight:600}}</style>\
         </head><body><h1>Back to VitalTrends</h1>\
         <p>If the app did not open by itself, use this button.</p>\
         <p><a href=\"{link}\">Open VitalTrends</a></p></body></html>\n"
    );
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response();
    let h = resp.headers_mut();
    // The page holds a one-time code: not cached, not sent on as a referrer, no scripts.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_link_keeps_only_known_params_and_escapes_them() {
        assert_eq!(
            deep_link(Some("code=a%20b&state=x%26y&scope=offline&extra=1")),
            "vitaltrends://oauth/whoop/callback?code=a+b&state=x%26y"
        );
        assert_eq!(
            deep_link(Some("error=access_denied&state=12345678")),
            "vitaltrends://oauth/whoop/callback?state=12345678&error=access_denied"
        );
        assert_eq!(deep_link(None), "vitaltrends://oauth/whoop/callback");
        let nasty = deep_link(Some("code=%22%3E%3Cscript%3E"));
        assert!(!escape_html(&nasty).contains('<'));
        assert!(!escape_html(&nasty).contains('"'));
    }
}
