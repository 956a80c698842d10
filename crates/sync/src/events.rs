//! How the engine talks to whoever hosts it: events on a broadcast channel (the desktop forwards
//! them to the webview and the tray), OS notifications through `Notifier`, and time through
//! `Clock` so tests can run a six-hour schedule in seconds.

use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use store::Counts;

/// What a background job is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Import,
    CatchUp,
    ForceSync,
    /// Re-fetching a range of days (the completeness calendar's repair).
    Refetch,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Import => "import",
            JobKind::CatchUp => "catch_up",
            JobKind::ForceSync => "force_sync",
            JobKind::Refetch => "refetch",
        }
    }
}

/// The two phases of the first import: the last six months first, then everything older.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Recent,
    History,
}

/// A step of a running job, enough for the sync banner and the tray line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    pub job: JobKind,
    pub phase: Phase,
    /// Records stored by this job so far.
    pub records: u64,
    /// Phase 1 in months (six): how many every collection has read back through.
    pub recent_windows_done: u32,
    pub recent_windows_total: u32,
    /// The oldest day reached so far ("going back to March 2023").
    pub oldest_day: Option<NaiveDate>,
    /// 0–100 when it can be known (phase 1, Force Sync); `None` while walking back through
    /// history of unknown length.
    pub percent: Option<u8>,
}

/// A background job that failed and will be tried again by itself (the card's "WHOOP is not
/// answering. Retrying in 5 minutes. [Retry now]"; the button calls `Engine::retry_now`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    pub job: JobKind,
    /// Failures in a row so far (1 after the first).
    pub attempt: u32,
    /// When it runs again by itself.
    pub next_at: DateTime<Utc>,
    /// The failure's error code, e.g. `whoop_unavailable`, `rate_limited`.
    pub reason: String,
    /// What to tell the person, e.g. "WHOOP is not answering. Retrying in 5 minutes."
    /// Worked out when read, so the minutes are current.
    pub message: String,
    /// Catch-up only: where the failed catch-up started, so the retry reaches as far back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

/// Published on every state change and every progress step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EngineEvent {
    /// The connection state (or whether the live stream is up) changed; re-read `status`.
    StateChanged {
        state: String,
    },
    JobQueued {
        job: JobKind,
    },
    Progress(Progress),
    JobFinished {
        job: JobKind,
        written: Counts,
        deleted: u64,
        /// Catch-up and Force Sync: the start of the window fetched.
        since: Option<DateTime<Utc>>,
        error: Option<String>,
    },
    /// Records were added, changed or removed (a webhook, a sync): the dashboard refreshes.
    DataChanged,
    /// A background job failed and will be tried again at `next_at` (`Status.retry` says the same).
    RetryScheduled(Retry),
    /// A job that was waiting for a retry succeeded or will not be retried (Disconnect, or it
    /// needs a Reconnect first).
    RetryCleared {
        job: JobKind,
    },
    /// The VitalTrends service's quota coordinator started or stopped holding this install's
    /// WHOOP requests back for others' (`Status.quota_wait` says why, while it lasts).
    QuotaWait {
        waiting: bool,
    },
}

/// An OS notification the host shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    ImportFinished,
    ForceSyncFinished,
    ReconnectNeeded,
}

pub trait Notifier: Send + Sync + 'static {
    fn notify(&self, notification: Notification);
}

/// Keeps notifications in memory: for tests and for hosts without a notification service.
#[derive(Default)]
pub struct RecordingNotifier {
    sent: Mutex<Vec<Notification>>,
}

impl RecordingNotifier {
    pub fn sent(&self) -> Vec<Notification> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Notifier for RecordingNotifier {
    fn notify(&self, notification: Notification) {
        tracing::info!(title = %notification.title, body = %notification.body, "notification");
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(notification);
    }
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests move by hand.
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(now),
        }
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// "1,834" for counts in notifications.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_separators() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1834), "1,834");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }
}
