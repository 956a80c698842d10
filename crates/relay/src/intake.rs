//! `POST /webhooks/whoop`: WHOOP's notices come in here from the open internet. Cheap checks run
//! first (rate limits, then size, before the body is read), then the signature on the raw bytes,
//! then the JSON. Every signature failure gets the same 401 so a prober learns nothing; the reason
//! only goes to metrics. A notice is committed to the log before the 2xx, so an acknowledged
//! event is never lost, and a database failure is a 503 so WHOOP retries.
//!
//! Commits are grouped: handlers hand their notice to one writer task ([`Committer`]), which
//! takes every notice waiting at that moment into one transaction and answers each handler only
//! once that transaction has committed (or failed: then every member gets a 503). While one batch
//! commits the next one queues, so the batch grows with the load and the fsync per commit is
//! shared instead of paid per webhook.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use tokio::sync::{mpsc, oneshot};
use whoop::webhook::{verify, WebhookEvent, SIGNATURE_HEADER, TIMESTAMP_HEADER};

use crate::client_ip::ClientIp;
use crate::error::json_error;
use crate::metrics::{bump, Metrics};
use crate::server::{now_ms, AppState};
use crate::storage::{NewEvent, Storage};
use crate::wake::Waker;

/// Most notices per transaction (5 parameters each, well inside both databases' limits).
pub const MAX_BATCH: usize = 512;
/// Notices that may wait for the writer; past this, handlers wait for room (the connection cap
/// and rate limits bound them anyway).
const QUEUE: usize = 4 * MAX_BATCH;

/// What a handler hears back: the notice's seq, `None` for a duplicate, or that its batch failed.
type Outcome = std::result::Result<Option<i64>, BatchFailed>;

/// The batch holding the notice did not commit; the error itself was logged once by the writer.
#[derive(Debug, Clone, Copy)]
pub struct BatchFailed;

struct Pending {
    event: NewEvent,
    reply: oneshot::Sender<Outcome>,
}

/// The handlers' side of the group commit.
#[derive(Debug, Clone)]
pub struct Committer {
    tx: mpsc::Sender<Pending>,
}

impl Committer {
    /// Starts the writer task; it ends when every `Committer` is gone.
    pub fn spawn(
        storage: Storage,
        waker: Waker,
        metrics: Arc<Metrics>,
    ) -> (Committer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_batches(rx, storage, waker, metrics));
        (Committer { tx }, task)
    }

    /// Stores one notice with whatever else is waiting; returns once its batch has committed.
    pub async fn commit(&self, event: NewEvent) -> Outcome {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Pending { event, reply }).await.is_err() {
            // The writer is gone (the relay is stopping): not stored, so not acknowledged.
            return Err(BatchFailed);
        }
        // A dropped reply means the writer stopped before answering: not known to be stored.
        answer.await.unwrap_or(Err(BatchFailed))
    }
}

/// The one writer: takes every waiting notice (up to `MAX_BATCH`), commits them together, wakes
/// the streams of the users whose log grew, then answers each handler.
async fn write_batches(
    mut rx: mpsc::Receiver<Pending>,
    storage: Storage,
    waker: Waker,
    metrics: Arc<Metrics>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (events, replies): (Vec<NewEvent>, Vec<_>) =
            batch.drain(..).map(|p| (p.event, p.reply)).unzip();
        bump(&metrics.intake_batches);
        match storage.insert_events(&events).await {
            Ok(seqs) => {
                // Wake before answering, once per user whose log grew.
                let mut woken: Vec<i64> = Vec::new();
                for (ev, seq) in events.iter().zip(&seqs) {
                    if seq.is_some() && !woken.contains(&ev.user_id) {
                        woken.push(ev.user_id);
                        waker.wake_user(ev.user_id);
                    }
                }
                for (reply, seq) in replies.into_iter().zip(seqs) {
                    // A handler that gave up (client gone) changes nothing: the event is stored.
                    let _ = reply.send(Ok(seq));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, notices = events.len(), "intake batch failed; answering 503");
                for reply in replies {
                    let _ = reply.send(Err(BatchFailed));
                }
            }
        }
    }
}

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
    let user_id = event.user_id;
    let new = NewEvent {
        user_id,
        kind: kind.as_str().to_string(),
        object_id: event.id,
        trace_id: event.trace_id,
        received_at_ms: now_ms(),
    };
    match app.committer.commit(new).await {
        Ok(Some(_seq)) => {
            bump(&metrics.events_stored);
            tracing::debug!(kind = kind.as_str(), "event stored");
        }
        Ok(None) => {
            bump(&metrics.webhooks_duplicate);
            tracing::debug!(kind = kind.as_str(), "duplicate event");
        }
        Err(BatchFailed) => return json_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    }
    StatusCode::NO_CONTENT.into_response()
}
