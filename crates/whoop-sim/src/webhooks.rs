//! Signed webhook delivery the way WHOOP does it: a small JSON notice POSTed to the app's URL,
//! `X-WHOOP-Signature` = base64(HMAC-SHA256(client secret, timestamp + raw body)), any 2xx within
//! 10 s counts, otherwise five retries after 60, 300, 600, 1200 and 1440 s (scaled for tests).
//! Every delivery runs in its own task so no caller ever waits on the receiver.
//!
//! WHOOP is not perfectly reliable, and the simulator can say so (off by default): a webhook can
//! be delivered twice with the same `trace_id` (WHOOP asks receivers to de-duplicate), or never
//! (lost after WHOOP's retries; WHOOP recommends a reconciliation job for that). Rates draw
//! from a seeded stream; "next N" counters are exact, for tests.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::rngs::StdRng;
use rand::Rng;
use serde::Serialize;
use sha2::Sha256;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::stats::{bump, Stats};
use crate::world::Notice;

const RETRY_DELAYS_SECS: [f64; 5] = [60.0, 300.0, 600.0, 1200.0, 1440.0];
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// base64(HMAC-SHA256(key = secret, message = timestamp + body)).
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

#[derive(Serialize)]
struct Payload<'a> {
    user_id: i64,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    trace_id: String,
}

/// Unreliable delivery, set through `POST /_sim/webhook-faults` or flags.
#[derive(Debug)]
pub struct DeliveryFaults {
    pub drop_rate: f64,
    pub drop_next: u64,
    pub duplicate_rate: f64,
    pub duplicate_next: u64,
    rng: StdRng,
}

/// What `/_sim/webhook-faults` reports.
#[derive(Debug, Serialize)]
pub struct DeliveryFaultSettings {
    pub drop_rate: f64,
    pub drop_next: u64,
    pub duplicate_rate: f64,
    pub duplicate_next: u64,
}

impl DeliveryFaults {
    pub fn new(rng: StdRng) -> DeliveryFaults {
        DeliveryFaults {
            drop_rate: 0.0,
            drop_next: 0,
            duplicate_rate: 0.0,
            duplicate_next: 0,
            rng,
        }
    }

    pub fn settings(&self) -> DeliveryFaultSettings {
        DeliveryFaultSettings {
            drop_rate: self.drop_rate,
            drop_next: self.drop_next,
            duplicate_rate: self.duplicate_rate,
            duplicate_next: self.duplicate_next,
        }
    }

    fn take(next: &mut u64, rate: f64, rng: &mut StdRng) -> bool {
        if *next > 0 {
            *next -= 1;
            return true;
        }
        rate > 0.0 && rng.gen_bool(rate.clamp(0.0, 1.0))
    }

    /// Whether this webhook is lost for good.
    fn take_drop(&mut self) -> bool {
        Self::take(&mut self.drop_next, self.drop_rate, &mut self.rng)
    }

    /// Whether this webhook is delivered a second time.
    fn take_duplicate(&mut self) -> bool {
        Self::take(&mut self.duplicate_next, self.duplicate_rate, &mut self.rng)
    }
}

pub struct Webhooks {
    client: reqwest::Client,
    url: Mutex<Option<String>>,
    secret: String,
    retry_scale: f64,
    tasks: Mutex<JoinSet<()>>,
    stats: Arc<Stats>,
    pub faults: Mutex<DeliveryFaults>,
}

impl Webhooks {
    pub fn new(
        url: Option<String>,
        secret: String,
        retry_scale: f64,
        stats: Arc<Stats>,
        faults: DeliveryFaults,
    ) -> std::io::Result<Webhooks> {
        let client = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Webhooks {
            client,
            url: Mutex::new(url),
            secret,
            retry_scale: if retry_scale.is_finite() && retry_scale >= 0.0 {
                retry_scale
            } else {
                1.0
            },
            tasks: Mutex::new(JoinSet::new()),
            stats,
            faults: Mutex::new(faults),
        })
    }

    pub fn url(&self) -> Option<String> {
        crate::lock(&self.url).clone()
    }

    pub fn set_url(&self, url: Option<String>) {
        *crate::lock(&self.url) = url;
    }

    /// Queues the webhooks for changes the timeline made to one member's data. The caller
    /// leaves out members who have not authorized the app.
    pub fn announce(self: &Arc<Self>, user_id: i64, notices: &[Notice]) {
        if notices.is_empty() || self.url().is_none() {
            return;
        }
        for n in notices {
            self.send(user_id, &n.kind, &n.id);
        }
    }

    /// Queues one webhook about member `user_id` and returns its trace id, or `None` when no
    /// URL is set. A dropped webhook still gets a trace id (WHOOP generated the event; it just
    /// never arrives).
    pub fn send(self: &Arc<Self>, user_id: i64, kind: &str, id: &str) -> Option<String> {
        self.url()?;
        let (dropped, duplicated) = {
            let mut faults = crate::lock(&self.faults);
            let dropped = faults.take_drop();
            (dropped, !dropped && faults.take_duplicate())
        };
        let trace_id = Uuid::new_v4().to_string();
        let payload = Payload {
            user_id,
            id,
            kind,
            trace_id: trace_id.clone(),
        };
        let body = serde_json::to_vec(&payload).ok()?;
        if dropped {
            bump(&self.stats.webhooks_dropped);
            tracing::debug!(kind, "webhook dropped on purpose");
            return Some(trace_id);
        }
        if duplicated {
            bump(&self.stats.webhooks_duplicated);
        }
        let mut tasks = crate::lock(&self.tasks);
        // Reap finished deliveries so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
        for _ in 0..if duplicated { 2 } else { 1 } {
            let me = Arc::clone(self);
            let body = body.clone();
            bump(&self.stats.webhooks_pending);
            tasks.spawn(async move {
                me.deliver(body).await;
                me.stats.webhooks_pending.fetch_sub(1, Ordering::Relaxed);
            });
        }
        Some(trace_id)
    }

    async fn deliver(&self, body: Vec<u8>) {
        for attempt in 0..=RETRY_DELAYS_SECS.len() {
            if attempt > 0 {
                let delay = RETRY_DELAYS_SECS[attempt - 1] * self.retry_scale;
                tokio::time::sleep(Duration::from_secs_f64(delay)).await;
            }
            // The URL is read per attempt so a receiver that moved still gets the retries.
            let Some(url) = self.url() else {
                return;
            };
            // A fresh timestamp and signature per attempt; body and trace id stay the same.
            let timestamp = chrono::Utc::now().timestamp_millis().to_string();
            let signature = sign(&self.secret, &timestamp, &body);
            let result = self
                .client
                .post(&url)
                .header("Content-Type", "application/json")
                .header("X-WHOOP-Signature", signature)
                .header("X-WHOOP-Signature-Timestamp", timestamp)
                .body(body.clone())
                .send()
                .await;
            match result {
                Ok(resp) if resp.status().is_success() => {
                    bump(&self.stats.webhooks_sent);
                    return;
                }
                Ok(resp) => {
                    tracing::debug!(status = %resp.status(), attempt, "webhook delivery refused");
                    bump(&self.stats.webhooks_failed);
                }
                Err(err) => {
                    tracing::debug!(error = %err.without_url(), attempt, "webhook delivery failed");
                    bump(&self.stats.webhooks_failed);
                }
            }
        }
        tracing::info!("webhook dropped after 5 retries");
    }

    /// Stops every delivery in flight (the simulator is shutting down).
    pub fn abort_all(&self) {
        crate::lock(&self.tasks).abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_reference_hmac() {
        // Reference value from `printf '1700000000000{"a":1}' | openssl dgst -sha256 -hmac secret -binary | base64`.
        let sig = sign("secret", "1700000000000", br#"{"a":1}"#);
        assert_eq!(sig, "0pM2GdttJSewPFhxsH1nVKvgeUeQD/mx7t0F5acVYpI=");
        assert_ne!(sig, sign("secret", "1700000000001", br#"{"a":1}"#));
    }
}
