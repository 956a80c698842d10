//! Counters behind `GET /_sim/stats`, so tests and benchmarks can see how many calls a client
//! really made (per endpoint, refreshes, 401s, 429s, webhook deliveries).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

/// Every request key `/_sim/stats` reports, always present so clients can read them blindly.
pub const REQUEST_KEYS: [&str; 14] = [
    "cycle.collection",
    "cycle.by_id",
    "cycle.recovery",
    "cycle.sleep",
    "recovery.collection",
    "sleep.collection",
    "sleep.by_id",
    "workout.collection",
    "workout.by_id",
    "profile",
    "body_measurement",
    "revoke",
    "token",
    "auth",
];

#[derive(Debug, Default)]
pub struct Stats {
    requests: Mutex<BTreeMap<&'static str, u64>>,
    pub tokens_issued: AtomicU64,
    pub refreshes: AtomicU64,
    /// Spent refresh tokens presented again (each one revoked its whole chain).
    pub refresh_replays: AtomicU64,
    pub rate_limited: AtomicU64,
    pub unauthorized: AtomicU64,
    pub webhooks_sent: AtomicU64,
    pub webhooks_failed: AtomicU64,
    /// Webhooks lost on purpose (`/_sim/webhook-faults`).
    pub webhooks_dropped: AtomicU64,
    /// Webhooks delivered twice on purpose.
    pub webhooks_duplicated: AtomicU64,
    /// A gauge, not a counter: deliveries queued or waiting for a retry.
    pub webhooks_pending: AtomicU64,
}

pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    pub fn request(&self, key: &'static str) {
        *crate::lock(&self.requests).entry(key).or_insert(0) += 1;
    }

    /// Requests to the data endpoints (the ones the rate limit counts), all members together.
    pub fn data_requests(&self) -> u64 {
        crate::lock(&self.requests)
            .iter()
            .filter(|(k, _)| !matches!(**k, "token" | "auth"))
            .map(|(_, n)| n)
            .sum()
    }

    /// Zeroes every counter; the pending-webhook gauge keeps describing reality.
    pub fn reset(&self) {
        crate::lock(&self.requests).clear();
        for c in [
            &self.tokens_issued,
            &self.refreshes,
            &self.refresh_replays,
            &self.rate_limited,
            &self.unauthorized,
            &self.webhooks_sent,
            &self.webhooks_failed,
            &self.webhooks_dropped,
            &self.webhooks_duplicated,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    pub fn to_json(&self, records: Value) -> Value {
        let requests = crate::lock(&self.requests);
        let per_key: serde_json::Map<String, Value> = REQUEST_KEYS
            .iter()
            .map(|k| (k.to_string(), json!(requests.get(k).copied().unwrap_or(0))))
            .collect();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "records": records,
            "requests": per_key,
            "tokens_issued": get(&self.tokens_issued),
            "refreshes": get(&self.refreshes),
            "refresh_replays": get(&self.refresh_replays),
            "rate_limited": get(&self.rate_limited),
            "unauthorized": get(&self.unauthorized),
            "webhooks_sent": get(&self.webhooks_sent),
            "webhooks_failed": get(&self.webhooks_failed),
            "webhooks_dropped": get(&self.webhooks_dropped),
            "webhooks_duplicated": get(&self.webhooks_duplicated),
            "webhooks_pending": get(&self.webhooks_pending),
        })
    }
}
