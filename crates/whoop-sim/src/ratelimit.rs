//! WHOOP's per-app rate limits: a 60-second and an 86,400-second fixed window counted across
//! every token of the client, reported in the draft-polli `X-RateLimit-*` headers.
//!
//! A window opens with the first request after the previous one expired (rather than on
//! wall-clock boundaries), so a test that starts a fresh simulator gets a full window.
//!
//! For time-scaled benchmarks the windows can be shortened (`--rate-window-scale F`: a
//! "minute" of 60/F s and a "day" of 86,400/F s of real time); the headers then give the scaled
//! lengths, so a client pacing itself from them paces at the scaled speed.

use std::time::{Duration, Instant};

#[derive(Debug)]
struct Window {
    limit: u32,
    length: Duration,
    opened: Option<Instant>,
    used: u32,
    /// Which window this is (1 for the first); members' shares of the app's usage are
    /// counted per window number.
    number: u64,
}

impl Window {
    fn new(limit: u32, length: Duration) -> Window {
        Window {
            limit,
            length,
            opened: None,
            used: 0,
            number: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        if self.opened.is_none_or(|o| now >= o + self.length) {
            self.opened = Some(now);
            self.used = 0;
            self.number += 1;
        }
    }

    /// Whether the window still runs at `now` (a window nobody opened is not running).
    fn running(&self, now: Instant) -> bool {
        self.opened.is_some_and(|o| now < o + self.length)
    }

    fn view(&self, now: Instant) -> WindowView {
        let running = self.running(now);
        let used = if running { self.used } else { 0 };
        WindowView {
            limit: self.limit,
            used,
            remaining: self.limit.saturating_sub(used),
            reset_secs: if running {
                self.reset_secs(now)
            } else {
                self.length_secs()
            },
            length_secs: self.length_secs(),
            number: if running { self.number } else { 0 },
        }
    }

    /// The window's length in whole seconds (at least 1), as the headers give it.
    fn length_secs(&self) -> u64 {
        (self.length.as_secs_f64().round() as u64).max(1)
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
    /// The numbers of the minute and day windows the request fell in.
    pub minute_window: u64,
    pub day_window: u64,
}

/// One window as `/_sim/stats` reports it; `number` is 0 while no window runs.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct WindowView {
    pub limit: u32,
    pub used: u32,
    pub remaining: u32,
    pub reset_secs: u64,
    /// How long the window is (60 and 86,400 unless `--rate-window-scale` shortens them).
    pub length_secs: u64,
    #[serde(skip)]
    pub number: u64,
}

#[derive(Debug)]
pub struct RateLimiter {
    minute: Window,
    day: Window,
}

impl RateLimiter {
    #[cfg(test)]
    pub fn new(per_minute: u32, per_day: u32) -> RateLimiter {
        RateLimiter::scaled(per_minute, per_day, 1.0)
    }

    /// Windows `scale` times shorter than WHOOP's (`scale` must be finite and positive).
    pub fn scaled(per_minute: u32, per_day: u32, scale: f64) -> RateLimiter {
        RateLimiter {
            minute: Window::new(per_minute, Duration::from_secs_f64(60.0 / scale)),
            day: Window::new(per_day, Duration::from_secs_f64(86_400.0 / scale)),
        }
    }

    /// The minute and day windows as they stand, without counting anything.
    pub fn view(&self, now: Instant) -> (WindowView, WindowView) {
        (self.minute.view(now), self.day.view(now))
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
                "{}, {};window={}, {};window={}",
                closest.limit,
                self.minute.limit,
                self.minute.length_secs(),
                self.day.limit,
                self.day.length_secs()
            ),
            remaining: closest.remaining(),
            reset_secs: closest.reset_secs(now),
            minute_window: self.minute.number,
            day_window: self.day.number,
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
        let v = rl.check(t0 + Duration::from_secs(61));
        assert!(v.allowed);
        assert_eq!((v.minute_window, v.day_window), (2, 1));
        let (minute, day) = rl.view(t0 + Duration::from_secs(62));
        assert_eq!(minute.length_secs, 60);
        assert_eq!(day.length_secs, 86_400);
        assert_eq!((minute.used, minute.remaining, minute.number), (1, 1, 2));
        assert_eq!((day.used, day.number), (3, 1));
        let (minute, _) = rl.view(t0 + Duration::from_secs(200));
        assert_eq!((minute.used, minute.number, minute.reset_secs), (0, 0, 60));
    }

    #[test]
    fn scaled_windows_are_shorter_and_say_so() {
        let mut rl = RateLimiter::scaled(2, 5, 60.0);
        let t0 = Instant::now();
        let v = rl.check(t0);
        assert_eq!(v.limit_header, "2, 2;window=1, 5;window=1440");
        assert!(rl.check(t0).allowed);
        assert!(!rl.check(t0 + Duration::from_millis(500)).allowed);
        assert!(rl.check(t0 + Duration::from_millis(1_001)).allowed);
        let v = rl.check(t0 + Duration::from_millis(1_002));
        assert!(v.allowed);
        assert_eq!((v.remaining, v.reset_secs), (0, 1));
        // The scaled day (24 min) runs out after its five requests, whatever the minute says.
        assert!(rl.check(t0 + Duration::from_millis(2_100)).allowed);
        let v = rl.check(t0 + Duration::from_millis(3_200));
        assert!(!v.allowed);
        assert_eq!(v.reset_secs, 1_437);
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
