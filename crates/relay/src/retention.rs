//! Retention: the relay keeps WHOOP's notices only long enough for devices to pick them up (7 days
//! by default) and forgets devices nobody has used for as long. What it prunes is remembered as a
//! high-water mark per user, so a device returning with an older cursor gets a gap, not silence.

use std::sync::Arc;
use std::time::Duration;

use crate::server::{now_ms, AppState};

/// How often to prune: often enough that nothing outlives retention by much, never in a busy loop.
pub fn period(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_millis(50), Duration::from_secs(300))
}

pub async fn run(app: Arc<AppState>) {
    let mut tick = tokio::time::interval(period(app.config.retention));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let cutoff = now_ms().saturating_sub(app.config.retention.as_millis() as i64);
        match app.storage.prune(cutoff).await {
            Ok(p) if p.events > 0 || p.devices > 0 => {
                tracing::info!(events = p.events, devices = p.devices, "retention pruned");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "retention pass failed; retrying later"),
        }
    }
}
