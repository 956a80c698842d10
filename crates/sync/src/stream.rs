//! The relay stream client: real-time updates from WHOOP's webhooks, as the relay forwards them.
//!
//! It holds one Server-Sent Events connection to the relay, authenticated with the device
//! credential the token broker issued at sign-in. Each event is applied to the store first and
//! only then is its cursor persisted and acknowledged, so a crash replays an event (harmless: the
//! applier is idempotent) but never loses one. Silence longer than 45 seconds (the relay sends a
//! heartbeat every 15) counts as a dead connection. A "gap" event means the relay lost events we
//! may not have seen: the engine runs a catch-up and streaming carries on.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use url::Url;
use whoop::webhook::WebhookEvent;
use whoop::Secret;

use crate::engine::Engine;
use crate::error::{Error, Result};

/// Name of the relay device credential in the `SecretStore`.
pub const DEVICE_SECRET: &str = "relay-device";
const CURSOR_KEY: &str = "relay_cursor";
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

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
            .map_err(|e| Error::Secrets(e.to_string()))?
    }

    /// Unregisters this device at the relay and forgets its credential (Disconnect).
    pub(crate) async fn unregister_device(&self) -> Result<()> {
        let Some(credential) = self.device_credential().await? else {
            return Ok(());
        };
        if self.settings.relay_url.is_some() {
            let url = self.relay_url("/v1/devices/self")?;
            let answer = self
                .http
                .delete(url)
                .bearer_auth(credential.expose())
                .timeout(self.schedule.relay_request_timeout)
                .send()
                .await;
            if let Err(e) = answer {
                // The relay drops idle devices after its retention; nothing is lost by moving on.
                tracing::info!(error = %e, "could not unregister from the relay");
            }
        }
        let secrets = self.tokens.secrets();
        tokio::task::spawn_blocking(move || secrets.delete(DEVICE_SECRET))
            .await
            .map_err(|e| Error::Secrets(e.to_string()))??;
        self.store.delete_meta(CURSOR_KEY).await?;
        Ok(())
    }

    /// Keeps the relay stream up for as long as the engine lives: connects while the person is
    /// connected and a relay and device credential exist, reconnects with jittered backoff.
    pub async fn run_stream(self: Arc<Self>) {
        let mut failures: u32 = 0;
        loop {
            let ready = self.ensure_syncable().await.is_ok()
                && self.settings.relay_url.is_some()
                && matches!(self.device_credential().await, Ok(Some(_)));
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
        if !response.status().is_success() {
            return Err(Error::Io(format!("relay answered {}", response.status())));
        }
        self.set_live(true);
        let generation = self.generation();
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
                self.handle_message(&message, &credential).await?;
            }
        }
    }

    async fn handle_message(&self, message: &SseMessage, credential: &Secret) -> Result<()> {
        match message.event.as_deref() {
            Some("gap") => {
                tracing::info!("the relay reported a gap; catching up");
                self.on_gap().await?;
            }
            Some("whoop") | None => {
                let event = WebhookEvent::parse(message.data.as_bytes())
                    .map_err(|e| Error::Io(format!("unreadable relay event: {e}")))?;
                self.apply_event(&event).await?;
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
            if let Err(e) = ack {
                tracing::debug!(error = %e, "ack failed; the cursor is saved locally");
            }
        }
        Ok(())
    }
}

fn rand_jitter(max: u64) -> u64 {
    use rand::Rng;
    rand::thread_rng().gen_range(0..=max)
}

#[cfg(test)]
mod tests {
    use super::*;

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
