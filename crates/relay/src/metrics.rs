//! Counters for `/metrics`, written out by hand in Prometheus' text format (a handful of series
//! does not justify a metrics stack). Labels are fixed reason strings; never user ids.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Every reason a webhook can be turned away, in the order they are printed.
pub const REJECT_REASONS: [&str; 9] = [
    "missing_signature",
    "missing_timestamp",
    "bad_timestamp",
    "outside_window",
    "bad_encoding",
    "mismatch",
    "too_large",
    "rate_limited",
    "bad_json",
];

/// Upper bounds in seconds: milliseconds when live, hours or days when a device catches up.
const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 3600.0, 86400.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    pub webhooks_received: AtomicU64,
    pub webhooks_verified: AtomicU64,
    pub webhooks_duplicate: AtomicU64,
    pub webhooks_ignored: AtomicU64,
    rejected: [AtomicU64; REJECT_REASONS.len()],
    pub events_stored: AtomicU64,
    /// Intake transactions (each holds every webhook that was waiting when it began).
    pub intake_batches: AtomicU64,
    pub events_delivered: AtomicU64,
    /// Times a stream or long poll was woken to re-read the log (its own user's events only).
    pub stream_wakeups: AtomicU64,
    pub streams_open: AtomicI64,
    pub devices_bound: AtomicU64,
    pub device_binding_failed: AtomicU64,
    /// Device requests refused for an unknown, pruned or revoked credential.
    pub device_unauthorized: AtomicU64,
    /// Device requests refused unchecked because their IP failed too often this minute.
    pub device_auth_throttled: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn reject(&self, reason: &str) {
        if let Some(i) = REJECT_REASONS.iter().position(|r| *r == reason) {
            bump(&self.rejected[i]);
        }
    }

    /// One event handed to a device, `latency_ms` after intake received it.
    pub fn delivered(&self, latency_ms: i64) {
        bump(&self.events_delivered);
        let secs = latency_ms.max(0) as f64 / 1000.0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                bump(bucket);
            }
        }
        bump(&self.latency_count);
        self.latency_sum_micros
            .fetch_add(latency_ms.max(0) as u64 * 1000, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "relay_webhooks_received_total",
            "Webhook requests received.",
            load(&self.webhooks_received),
        );
        counter(
            "relay_webhooks_verified_total",
            "Webhooks whose signature and timestamp checked out.",
            load(&self.webhooks_verified),
        );
        counter(
            "relay_webhooks_duplicate_total",
            "Verified webhooks already in the log (WHOOP retries and replays).",
            load(&self.webhooks_duplicate),
        );
        counter(
            "relay_webhooks_ignored_total",
            "Verified webhooks of an event type the relay does not forward.",
            load(&self.webhooks_ignored),
        );
        counter(
            "relay_events_stored_total",
            "New events appended to the log.",
            load(&self.events_stored),
        );
        counter(
            "relay_intake_batches_total",
            "Intake transactions; webhooks stored per batch = verified webhooks / batches.",
            load(&self.intake_batches),
        );
        counter(
            "relay_stream_wakeups_total",
            "Times an open stream or long poll was woken to re-read the log.",
            load(&self.stream_wakeups),
        );
        counter(
            "relay_events_delivered_total",
            "Events sent to devices on a stream or long poll.",
            load(&self.events_delivered),
        );
        counter(
            "relay_devices_bound_total",
            "Devices bound to a WHOOP user by the token broker.",
            load(&self.devices_bound),
        );
        counter(
            "relay_device_binding_failed_total",
            "Code exchanges that returned tokens but could not bind a device.",
            load(&self.device_binding_failed),
        );
        counter(
            "relay_device_unauthorized_total",
            "Device requests refused: credential unknown, pruned or revoked.",
            load(&self.device_unauthorized),
        );
        counter(
            "relay_device_auth_throttled_total",
            "Device requests refused unchecked after too many failed authentications from their IP.",
            load(&self.device_auth_throttled),
        );
        let _ = writeln!(
            out,
            "# HELP relay_webhooks_rejected_total Webhooks turned away, by reason.\n\
             # TYPE relay_webhooks_rejected_total counter"
        );
        for (reason, count) in REJECT_REASONS.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "relay_webhooks_rejected_total{{reason=\"{reason}\"}} {}",
                load(count)
            );
        }
        let _ = writeln!(
            out,
            "# HELP relay_streams_open Event streams and long polls open now.\n\
             # TYPE relay_streams_open gauge\nrelay_streams_open {}",
            self.streams_open.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP relay_delivery_latency_seconds From intake receiving an event to sending it to a device.\n\
             # TYPE relay_delivery_latency_seconds histogram"
        );
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "relay_delivery_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                load(bucket)
            );
        }
        let count = load(&self.latency_count);
        let _ = writeln!(
            out,
            "relay_delivery_latency_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             relay_delivery_latency_seconds_sum {}\n\
             relay_delivery_latency_seconds_count {count}",
            load(&self.latency_sum_micros) as f64 / 1_000_000.0
        );
        out
    }
}

/// Counts a stream (or long poll) as open for as long as it lives.
pub struct OpenStream(Arc<Metrics>);

impl OpenStream {
    pub fn new(metrics: &Arc<Metrics>) -> Self {
        metrics.streams_open.fetch_add(1, Ordering::Relaxed);
        OpenStream(Arc::clone(metrics))
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.streams_open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series() {
        let m = Arc::new(Metrics::default());
        m.reject("mismatch");
        m.reject("mismatch");
        m.reject("not-a-reason");
        m.delivered(3);
        m.delivered(2_000);
        let text = m.render();
        assert!(text.contains("relay_webhooks_rejected_total{reason=\"mismatch\"} 2\n"));
        assert!(text.contains("relay_webhooks_rejected_total{reason=\"too_large\"} 0\n"));
        assert!(text.contains("relay_delivery_latency_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("relay_delivery_latency_seconds_bucket{le=\"2.5\"} 2\n"));
        assert!(text.contains("relay_delivery_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("relay_delivery_latency_seconds_count 2\n"));
        assert!(text.contains("relay_delivery_latency_seconds_sum 2.003\n"));
        assert!(text.contains("relay_events_delivered_total 2\n"));
        assert!(text.contains("relay_streams_open 0\n"));
        {
            let _open = OpenStream::new(&m);
            assert!(m.render().contains("relay_streams_open 1\n"));
        }
        assert!(m.render().contains("relay_streams_open 0\n"));
    }
}
