//! WHOOP's per-app rate limits: a 60-second and an 86,400-second fixed window counted across
//! every token of the client, reported in the draft-polli `X-RateLimit-*` headers.
//!
//! A window opens with the first request after the previous one expired (rather than on
//! wall-clock boundaries), so a test that starts a fresh simulator gets a full window.

use std::time::{Duration, Instant};

#[derive(Debug)]
struct Window {
    limit: u32,
    length: Duration,
    opened: Option<Instant>,
    used: u32,
}

impl Window {
    fn roll(&mut self, now: Instant) {
        if self.opened.is_none_or(|o| now >= o + self.length) {
            self.opened = Some(now);
            self.used = 0;
        }
    }

    fn remaining(&self) -> u32 {
        self.limit.saturating_sub(self.used)
    }

    fn reset_secs(&self, now: Instant) -> u64 {
        let ends = self.opened.unwrap_or(now) + self.length;
        let left = ends.saturating_duration_since(now);
        // Rounded up: "0" would invite a client to retry while the window is still closed.
        left.as_millis().div_ceil(1000).max(1) as u64
    }
}

/// The verdict on one request plus the header values to send with its response.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub allowed: bool,
    pub limit_header: String,
    pub remaining: u32,
    pub reset_secs: u64,
}

#[derive(Debug)]
pub struct RateLimiter {
    minute: Window,
    day: Window,
}

impl RateLimiter {
    pub fn new(per_minute: u32, per_day: u32) -> RateLimiter {
        RateLimiter {
            minute: Window {
                limit: per_minute,
                length: Duration::from_secs(60),
                opened: None,
                used: 0,
            },
            day: Window {
                limit: per_day,
                length: Duration::from_secs(86_400),
                opened: None,
                used: 0,
            },
        }
    }

    /// Counts a request if both windows have room; rejected requests do not use up quota.
    pub fn check(&mut self, now: Instant) -> Verdict {
        self.minute.roll(now);
        self.day.roll(now);
        let allowed = self.minute.remaining() > 0 && self.day.remaining() > 0;
        if allowed {
            self.minute.used += 1;
            self.day.used += 1;
        }
        // The headers describe the window closest to running out (ties: the shorter one).
        let closest = if self.day.remaining() < self.minute.remaining() {
            &self.day
        } else {
            &self.minute
        };
        Verdict {
            allowed,
            limit_header: format!(
                "{}, {};window=60, {};window=86400",
                closest.limit, self.minute.limit, self.day.limit
            ),
            remaining: closest.remaining(),
            reset_secs: closest.reset_secs(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_window_limits_then_resets() {
        let mut rl = RateLimiter::new(2, 100);
        let t0 = Instant::now();
        let v = rl.check(t0);
        assert!(v.allowed);
        assert_eq!(v.limit_header, "2, 2;window=60, 100;window=86400");
        assert_eq!(v.remaining, 1);
        assert_eq!(v.reset_secs, 60);
        assert!(rl.check(t0).allowed);
        let v = rl.check(t0 + Duration::from_millis(1500));
        assert!(!v.allowed);
        assert_eq!(v.remaining, 0);
        assert_eq!(v.reset_secs, 59);
        assert!(rl.check(t0 + Duration::from_secs(61)).allowed);
    }

    #[test]
    fn day_window_reported_when_closer() {
        let mut rl = RateLimiter::new(100, 3);
        let t0 = Instant::now();
        let v = rl.check(t0);
        assert_eq!(v.limit_header, "3, 100;window=60, 3;window=86400");
        assert_eq!(v.remaining, 2);
        assert_eq!(v.reset_secs, 86_400);
    }
}
