//! `POST /webhooks/whoop`: WHOOP's notices come in here from the open internet. Cheap checks run
//! first (rate limits, then size, before the body is read), then the signature on the raw bytes,
//! then the JSON. Every signature failure gets the same 401 so a prober learns nothing; the reason
//! only goes to metrics. A notice is committed to the log before the 2xx, so an acknowledged
//! event is never lost, and a database failure is a 503 so WHOOP retries.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use whoop::webhook::{verify, WebhookEvent, SIGNATURE_HEADER, TIMESTAMP_HEADER};

use crate::client_ip::ClientIp;
use crate::error::{json_error, unavailable};
use crate::metrics::bump;
use crate::server::{now_ms, AppState};
use crate::storage::NewEvent;
use crate::wake::Wake;

fn rejected_signature() -> Response {
    // Identical for every reason: status, headers and body.
    json_error(StatusCode::UNAUTHORIZED, "invalid_signature")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn receive(
    State(app): State<Arc<AppState>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let metrics = &app.metrics;
    bump(&metrics.webhooks_received);
    if !app.webhook_limiter.admit(ip) {
        metrics.reject("rate_limited");
        return json_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    }
    let max = app.config.max_body;
    let declared = header_str(&headers, header::CONTENT_LENGTH.as_str())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        metrics.reject("too_large");
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    }
    // The cap also holds for chunked bodies and for a Content-Length that lies.
    let raw = match tokio::time::timeout(app.config.body_read_timeout, to_bytes(body, max)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            metrics.reject("too_large");
            return json_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
        }
        // A client that trickles its body does not get to hold a connection and a task for long.
        Err(_) => return json_error(StatusCode::REQUEST_TIMEOUT, "timeout"),
    };

    let secrets: Vec<&[u8]> = app
        .config
        .client_secrets
        .iter()
        .map(|s| s.as_bytes())
        .collect();
    if let Err(reason) = verify(
        &secrets,
        header_str(&headers, TIMESTAMP_HEADER),
        header_str(&headers, SIGNATURE_HEADER),
        &raw,
        SystemTime::now(),
        app.config.webhook_window,
    ) {
        metrics.reject(reason.reason());
        tracing::debug!(reason = reason.reason(), "webhook rejected");
        return rejected_signature();
    }
    bump(&metrics.webhooks_verified);

    let event = match WebhookEvent::parse(&raw) {
        Ok(e) => e,
        Err(_) => {
            // Signed by WHOOP but not the shape we know: answering 400 makes WHOOP retry, and
            // the count shows someone should look.
            metrics.reject("bad_json");
            return json_error(StatusCode::BAD_REQUEST, "bad_json");
        }
    };
    let Some(kind) = event.kind() else {
        // WHOOP asks for a 2xx on event types an app does not use.
        bump(&metrics.webhooks_ignored);
        return StatusCode::NO_CONTENT.into_response();
    };
    let new = NewEvent {
        user_id: event.user_id,
        kind: kind.as_str(),
        object_id: &event.id,
        trace_id: &event.trace_id,
        received_at_ms: now_ms(),
    };
    match app.storage.insert_event(&new).await {
        Ok(Some(_seq)) => {
            bump(&metrics.events_stored);
            app.waker.wake(Wake::User(event.user_id));
            tracing::debug!(kind = kind.as_str(), "event stored");
        }
        Ok(None) => {
            bump(&metrics.webhooks_duplicate);
            tracing::debug!(kind = kind.as_str(), "duplicate event");
        }
        Err(err) => return unavailable(&err),
    }
    StatusCode::NO_CONTENT.into_response()
}
