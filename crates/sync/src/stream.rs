//! The relay stream client: real-time updates from WHOOP's webhooks, as the relay forwards them.
//!
//! It holds one Server-Sent Events connection to the relay, authenticated with the device
//! credential the token broker issued at sign-in. Each event is applied to the store first and
//! only then is its cursor persisted and acknowledged, so a crash replays an event (harmless: the
//! applier is idempotent) but never loses one. Silence longer than 45 seconds (the relay sends a
//! heartbeat every 15) counts as a dead connection. A "gap" event means the relay lost events we
//! may not have seen: the need for a catch-up is persisted before the gap is acknowledged, the
//! engine runs it (after a restart if need be) and streaming carries on.
//!
//! One event never holds back the ones after it. What applying it can end in:
//! - applied (a 404 for the record it names counts: the record is gone, and is deleted here);
//! - skipped: WHOOP sends a record we cannot read, or the event itself makes no sense. It is
//!   recorded with its id (status shows it) and the cursor moves on; the next catch-up or Force
//!   Sync brings the record once it reads;
//! - pending: WHOOP failed transiently (5xx, timeouts, rate limits, after the client's own
//!   retries). It is persisted and the cursor moves on; pending events are retried with backoff
//!   (when the stream connects and between its messages and heartbeats) until they apply, and are
//!   given up as skipped after a week, when the relay would have forgotten them too;
//! - stop: nothing can be fetched at all (WHOOP needs reconnecting, disconnected, local storage
//!   failing). The stream ends without moving the cursor, so the relay replays the event once
//!   streaming resumes; it keeps events for a week and sends a gap (and so a catch-up) after.
//!
//! A 401 on the stream means the relay no longer knows this device (it prunes devices unused for
//! its retention). Retrying cannot fix that, so streaming stops, status says so in words, and
//! catch-up keeps syncing until a reconnect brings a new device credential.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use url::Url;
use whoop::types::format_timestamp;
use whoop::webhook::WebhookEvent;
use whoop::Secret;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events::EngineEvent;

/// Name of the relay device credential in the `SecretStore`.
pub const DEVICE_SECRET: &str = "relay-device";
const CURSOR_KEY: &str = "relay_cursor";
/// Set when the relay answered 401 to this device's credential; a new credential clears it.
const DEVICE_UNKNOWN_KEY: &str = "relay_device_unknown";
const SILENCE_LIMIT: Duration = Duration::from_secs(45);
/// Longest wait between attempts at a pending event.
const RETRY_CAP: Duration = Duration::from_secs(3600);
/// A pending event is given up after this: the relay keeps events as long, and the catch-ups
/// have re-read the record many times by then.
const GIVE_UP_AFTER_DAYS: i64 = 7;
/// Pending events tried between two stream messages at most.
const RETRIES_PER_PASS: usize = 5;

const DEVICE_UNKNOWN_MESSAGE: &str = "Live updates stopped: the VitalTrends service no longer \
     knows this device. Reconnect WHOOP to turn them back on. Catch-up sync continues every 6 \
     hours.";

/// Whether live updates run, for the Connections card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveUpdates {
    /// The relay stream is connected.
    Live,
    /// Set up, between connections (starting, or the relay is unreachable for now).
    Connecting,
    /// No relay configured, or WHOOP not connected.
    Off,
    /// The relay refused this device (pruned after a long absence, or revoked): stopped until
    /// the person reconnects WHOOP.
    DeviceUnknown,
}

impl LiveUpdates {
    /// What the person reads when live updates stopped and it needs them to act.
    pub fn message(self) -> Option<&'static str> {
        match self {
            LiveUpdates::DeviceUnknown => Some(DEVICE_UNKNOWN_MESSAGE),
            _ => None,
        }
    }
}

/// What to do with an event that failed to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// It can never apply: record it and move on.
    Skip,
    /// WHOOP failed transiently: keep it for later and move on.
    Retry,
    /// Nothing can apply now: end the stream, keep the cursor.
    Stop,
}

fn disposition(error: &Error) -> Disposition {
    match error {
        Error::Whoop(whoop::Error::Decode { .. }) => Disposition::Skip,
        // WHOOP calls the request itself wrong (an id that is not one, say): asking again
        // cannot help. 401 (after a refresh) and 429 are not of this kind.
        Error::Whoop(whoop::Error::Status { status, .. })
            if (400..500).contains(status) && *status != 401 && *status != 429 =>
        {
            Disposition::Skip
        }
        Error::Whoop(
            whoop::Error::Unavailable { .. }
            | whoop::Error::RateLimited { .. }
            | whoop::Error::Unauthorized
            | whoop::Error::Status { .. },
        )
        | Error::Io(_) => Disposition::Retry,
        _ => Disposition::Stop,
    }
}

/// One parsed SSE message.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct SseMessage {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// Splits an SSE byte stream into messages (the subset the relay uses: `id`, `event`, `data`,
/// comment heartbeats).
#[derive(Default)]
struct SseParser {
    buffer: String,
    current: SseMessage,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8]) -> Vec<SseMessage> {
        self.buffer.push_str(&String::from_utf8_lossy(chunk));
        let mut out = Vec::new();
        while let Some(newline) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=newline).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let message = std::mem::take(&mut self.current);
                if message.event.is_some() || !message.data.is_empty() || message.id.is_some() {
                    out.push(message);
                }
                continue;
            }
            if line.starts_with(':') {
                continue; // heartbeat
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => self.current.id = Some(value.to_string()),
                "event" => self.current.event = Some(value.to_string()),
                "data" => {
                    if !self.current.data.is_empty() {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                }
                _ => {}
            }
        }
        out
    }
}

impl Engine {
    pub(crate) fn relay_url_for(&self, path: &str) -> Result<Url> {
        self.relay_url(path)
    }

    fn relay_url(&self, path: &str) -> Result<Url> {
        let relay = self
            .settings
            .relay_url
            .as_ref()
            .ok_or_else(|| Error::Config("no relay configured".into()))?;
        Url::parse(&format!("{}{path}", relay.as_str().trim_end_matches('/')))
            .map_err(|e| Error::Config(format!("relay URL: {e}")))
    }

    pub(crate) async fn device_credential(&self) -> Result<Option<Secret>> {
        let secrets = self.tokens.secrets();
        tokio::task::spawn_blocking(move || secrets.get(DEVICE_SECRET))
            .await
            .map_err(|e| Error::Secrets(e.to_string()))?
    }

    pub(crate) async fn save_device_credential(&self, credential: &Secret) -> Result<()> {
        let secrets = self.tokens.secrets();
        let credential = credential.clone();
        tokio::task::spawn_blocking(move || secrets.set(DEVICE_SECRET, &credential))
            .await
            .map_err(|e| Error::Secrets(e.to_string()))??;
        // A new credential is a device the relay knows: live updates may run again.
        self.store.delete_meta(DEVICE_UNKNOWN_KEY).await?;
        self.emit(EngineEvent::StateChanged {
            state: "live_updates_changed".into(),
        });
        Ok(())
    }

    /// Whether the relay refused this device's credential (cleared by a new one).
    pub(crate) async fn device_unknown(&self) -> Result<bool> {
        Ok(self.store.get_meta(DEVICE_UNKNOWN_KEY).await?.is_some())
    }

    async fn mark_device_unknown(&self) -> Result<()> {
        tracing::warn!("the relay no longer knows this device; live updates stop until reconnect");
        self.store
            .set_meta(DEVICE_UNKNOWN_KEY, &format_timestamp(&self.clock.now()))
            .await?;
        self.set_live(false);
        self.emit(EngineEvent::StateChanged {
            state: "device_unknown".into(),
        });
        Ok(())
    }

    /// Whether live updates run, and if not, why (for status).
    pub(crate) async fn live_updates(&self) -> Result<LiveUpdates> {
        if self.device_unknown().await? {
            return Ok(LiveUpdates::DeviceUnknown);
        }
        if self.is_live() {
            return Ok(LiveUpdates::Live);
        }
        // The credential is not read here: status is asked for often, and a keychain read can
        // be slow or prompt. Connected with a relay configured means the stream is on its way.
        let ready = self.ensure_syncable().await.is_ok() && self.settings.relay_url.is_some();
        Ok(if ready {
            LiveUpdates::Connecting
        } else {
            LiveUpdates::Off
        })
    }

    /// Asks the relay to forget the device `credential` stands for (no relay: nothing to do).
    pub(crate) async fn forget_device_at_relay(&self, credential: &Secret) -> Result<()> {
        if self.settings.relay_url.is_none() {
            return Ok(());
        }
        self.http
            .delete(self.relay_url("/v1/devices/self")?)
            .bearer_auth(credential.expose())
            .timeout(self.schedule.relay_request_timeout)
            .send()
            .await
            .map_err(|e| Error::Io(format!("relay: {e}")))?;
        Ok(())
    }

    /// Unregisters this device at the relay and forgets its credential (Disconnect).
    pub(crate) async fn unregister_device(&self) -> Result<()> {
        let Some(credential) = self.device_credential().await? else {
            return Ok(());
        };
        if let Err(e) = self.forget_device_at_relay(&credential).await {
            // The relay drops idle devices after its retention; nothing is lost by moving on.
            tracing::info!(error = %e, "could not unregister from the relay");
        }
        let secrets = self.tokens.secrets();
        tokio::task::spawn_blocking(move || secrets.delete(DEVICE_SECRET))
            .await
            .map_err(|e| Error::Secrets(e.to_string()))??;
        self.store.delete_meta(CURSOR_KEY).await?;
        self.store.delete_meta(DEVICE_UNKNOWN_KEY).await?;
        Ok(())
    }

    /// Keeps the relay stream up for as long as the engine lives: connects while the person is
    /// connected and a relay and device credential exist, reconnects with jittered backoff.
    pub async fn run_stream(self: Arc<Self>) {
        let mut failures: u32 = 0;
        loop {
            // A device the relay refused stays refused: asking again only hammers the relay.
            let ready = self.ensure_syncable().await.is_ok()
                && self.settings.relay_url.is_some()
                && matches!(self.device_credential().await, Ok(Some(_)))
                && matches!(self.device_unknown().await, Ok(false));
            if !ready {
                self.set_live(false);
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            match self.stream_once().await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::info!(error = %e, "relay stream ended");
                }
            }
            self.set_live(false);
            let base = Duration::from_millis(500 * 2u64.pow(failures.min(7)));
            let jitter = Duration::from_millis(rand_jitter(base.as_millis() as u64 / 2));
            tokio::time::sleep(base.min(Duration::from_secs(60)) + jitter).await;
        }
    }

    /// One stream connection, until it ends or goes silent.
    async fn stream_once(&self) -> Result<()> {
        let credential = self.device_credential().await?.ok_or(Error::NotConnected)?;
        let mut request = self
            .http
            .get(self.relay_url("/v1/events")?)
            .bearer_auth(credential.expose())
            .header("Accept", "text/event-stream");
        if let Some(cursor) = self.store.get_meta(CURSOR_KEY).await? {
            request = request.header("Last-Event-ID", cursor);
        }
        // Bounded until the response headers: the body is a stream with its own silence limit.
        let response = tokio::time::timeout(self.schedule.relay_request_timeout, request.send())
            .await
            .map_err(|_| Error::Io("relay: no answer to the event stream request".into()))?
            .map_err(|e| Error::Io(format!("relay: {e}")))?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            self.mark_device_unknown().await?;
            return Ok(());
        }
        if response.status() == reqwest::StatusCode::PAYMENT_REQUIRED {
            // The subscription ended (past its grace): the relay serves this device no longer.
            self.mark_subscription_ended().await?;
            return Ok(());
        }
        if !response.status().is_success() {
            return Err(Error::Io(format!("relay answered {}", response.status())));
        }
        self.set_live(true);
        let generation = self.generation();
        self.retry_pending_events(generation).await?;
        let mut body = response.bytes_stream();
        let mut parser = SseParser::default();
        loop {
            let chunk = match tokio::time::timeout(SILENCE_LIMIT, body.next()).await {
                Err(_) => return Err(Error::Io("relay stream went silent".into())),
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => return Err(Error::Io(format!("relay stream: {e}"))),
                Ok(Some(Ok(chunk))) => chunk,
            };
            for message in parser.push(&chunk) {
                self.check_not_cancelled(generation)?;
                if !self.handle_message(&message, &credential).await? {
                    return Ok(());
                }
            }
            // Every chunk (heartbeats included, every 15 s) is a chance for due retries.
            self.retry_pending_events(generation).await?;
        }
    }

    /// Applies (or sets aside) one message, then saves and acknowledges its cursor. Returns
    /// false when the relay refused the device and the stream should end.
    async fn handle_message(&self, message: &SseMessage, credential: &Secret) -> Result<bool> {
        match message.event.as_deref() {
            Some("gap") => {
                tracing::info!("the relay reported a gap; catching up");
                // Persisted before the ack below: the catch-up survives a restart.
                self.on_gap().await?;
            }
            Some("whoop") | None => match WebhookEvent::parse(message.data.as_bytes()) {
                Ok(event) => self.apply_or_set_aside(&event, &message.data).await?,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an unreadable relay event");
                    self.store
                        .add_skipped_event(
                            "unreadable",
                            message.id.as_deref().unwrap_or("unknown"),
                            &message.data,
                            &format!("unreadable relay event: {e}"),
                        )
                        .await?;
                }
            },
            Some("subscription_inactive") => {
                self.mark_subscription_ended().await?;
                return Ok(false);
            }
            Some(other) => tracing::debug!(event = other, "ignoring an unknown relay event"),
        }
        if let Some(cursor) = &message.id {
            // Applied first, then remembered and acknowledged.
            self.store.set_meta(CURSOR_KEY, cursor).await?;
            let ack = self
                .http
                .post(self.relay_url("/v1/events/ack")?)
                .bearer_auth(credential.expose())
                .json(&serde_json::json!({ "cursor": cursor }))
                .timeout(self.schedule.relay_request_timeout)
                .send()
                .await;
            match ack {
                Ok(answer) if answer.status() == reqwest::StatusCode::UNAUTHORIZED => {
                    self.mark_device_unknown().await?;
                    return Ok(false);
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "ack failed; the cursor is saved locally"),
            }
        }
        Ok(true)
    }

    /// Applies one event; if it cannot apply now, records it as pending or skipped so the
    /// stream can move on. Errs only when nothing can apply (see `Disposition::Stop`).
    async fn apply_or_set_aside(&self, event: &WebhookEvent, raw: &str) -> Result<()> {
        let Err(error) = self.apply_event(event).await else {
            return Ok(());
        };
        match disposition(&error) {
            Disposition::Stop => Err(error),
            Disposition::Skip => {
                tracing::warn!(kind = %event.kind, id = %event.id, error = %error,
                    "skipping an event whose record cannot be read");
                self.store
                    .add_skipped_event(&event.kind, &event.id, raw, &error.to_string())
                    .await?;
                Ok(())
            }
            Disposition::Retry => {
                tracing::info!(kind = %event.kind, id = %event.id, error = %error,
                    "WHOOP failed on an event; retrying it later");
                let next = self.clock.now() + retry_delay(self.schedule.event_retry_after, 1);
                self.store
                    .add_pending_event(&event.kind, &event.id, raw, &error.to_string(), next)
                    .await?;
                Ok(())
            }
        }
    }

    /// Tries the pending events that are due. Each one that applies is done with; one that
    /// fails transiently again waits twice as long, up to an hour, and is given up after a week.
    pub(crate) async fn retry_pending_events(&self, generation: u64) -> Result<()> {
        let now = self.clock.now();
        match self.store.next_pending_event_at().await? {
            Some(next) if next <= now => {}
            _ => return Ok(()),
        }
        // A few per pass: while WHOOP is down each attempt takes the client's own retries, and
        // the stream's new events should not wait behind a long list.
        let due = self.store.due_pending_events(now).await?;
        for issue in due.into_iter().take(RETRIES_PER_PASS) {
            self.check_not_cancelled(generation)?;
            let event = match WebhookEvent::parse(issue.event.as_bytes()) {
                Ok(event) => event,
                Err(e) => {
                    let reason = format!("unreadable relay event: {e}");
                    self.store.skip_pending_event(issue.id, &reason).await?;
                    continue;
                }
            };
            let error = match self.apply_event(&event).await {
                Ok(_) => {
                    tracing::info!(kind = %issue.kind, id = %issue.object_id,
                        attempts = issue.attempts + 1, "a pending event applied");
                    self.store.resolve_pending_event(issue.id).await?;
                    continue;
                }
                Err(error) => error,
            };
            match disposition(&error) {
                Disposition::Stop => return Err(error),
                Disposition::Skip => {
                    self.store
                        .skip_pending_event(issue.id, &error.to_string())
                        .await?;
                }
                Disposition::Retry
                    if now - issue.first_seen_at > chrono::Duration::days(GIVE_UP_AFTER_DAYS) =>
                {
                    let reason = format!("gave up after {} attempts: {error}", issue.attempts);
                    self.store.skip_pending_event(issue.id, &reason).await?;
                }
                Disposition::Retry => {
                    let next =
                        now + retry_delay(self.schedule.event_retry_after, issue.attempts + 1);
                    self.store
                        .retry_pending_event_later(issue.id, &error.to_string(), next)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// `base` doubled per earlier attempt, at most `RETRY_CAP`.
fn retry_delay(base: Duration, attempt: u32) -> chrono::Duration {
    let delay = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(RETRY_CAP);
    chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1))
}

fn rand_jitter(max: u64) -> u64 {
    use rand::Rng;
    rand::thread_rng().gen_range(0..=max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_skipped_retried_or_stop_the_stream() {
        let decode = Error::Whoop(whoop::Error::Decode {
            what: "workout".into(),
            detail: "EOF".into(),
        });
        assert_eq!(disposition(&decode), Disposition::Skip);
        let bad_id = Error::Whoop(whoop::Error::Status {
            status: 400,
            what: "workout".into(),
        });
        assert_eq!(disposition(&bad_id), Disposition::Skip);
        let down = Error::Whoop(whoop::Error::Unavailable {
            attempts: 5,
            detail: "HTTP 503".into(),
        });
        assert_eq!(disposition(&down), Disposition::Retry);
        let limited = Error::Whoop(whoop::Error::RateLimited {
            retry_after: Duration::from_secs(60),
        });
        assert_eq!(disposition(&limited), Disposition::Retry);
        let reconnect = Error::ReconnectNeeded {
            reason: "invalid_grant".into(),
        };
        assert_eq!(disposition(&reconnect), Disposition::Stop);
        assert_eq!(disposition(&Error::NotConnected), Disposition::Stop);
        assert_eq!(disposition(&Error::Cancelled), Disposition::Stop);
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        let base = Duration::from_secs(30);
        assert_eq!(retry_delay(base, 1), chrono::Duration::seconds(30));
        assert_eq!(retry_delay(base, 3), chrono::Duration::seconds(120));
        assert_eq!(retry_delay(base, 40), chrono::Duration::hours(1));
    }

    #[test]
    fn parses_events_gaps_and_heartbeats_across_chunks() {
        let mut parser = SseParser::default();
        let mut got = parser.push(b": ping\n\nid: e1:5\nevent: whoop\ndata: {\"a\":");
        assert!(got.is_empty());
        got.extend(parser.push(b"1}\n\nid: e1:9\r\nevent: gap\r\ndata: {}\r\n\r\n"));
        assert_eq!(
            got,
            vec![
                SseMessage {
                    id: Some("e1:5".into()),
                    event: Some("whoop".into()),
                    data: "{\"a\":1}".into()
                },
                SseMessage {
                    id: Some("e1:9".into()),
                    event: Some("gap".into()),
                    data: "{}".into()
                },
            ]
        );
    }
}
