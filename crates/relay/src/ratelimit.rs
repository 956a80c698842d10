//! Cheap flood protection in front of anything that costs work (an HMAC, a database write, a call
//! to WHOOP): fixed windows per client IP per minute and overall per second. A refused webhook gets
//! 429, which WHOOP treats like any failure and retries later. The same windows count failed
//! device authentications per IP (`exhausted` looks without counting, `admit` counts one), so
//! guessing credentials is throttled without slowing down devices that authenticate.
//!
//! Own code rather than `governor`: a fixed window per key is all these limits need, the sweep
//! bounds memory the same way, and `governor`'s keyed limiters cannot look at a key's budget
//! without spending from it, which counting only failures requires.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);
const SECOND: Duration = Duration::from_secs(1);
/// Above this many tracked addresses, stale windows are swept out before adding another.
const SWEEP_AT: usize = 10_000;

#[derive(Debug)]
struct Window {
    started: Instant,
    count: u32,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            started: now,
            count: 0,
        }
    }

    /// Whether one more request fits (starting a new window if this one is over).
    fn has_room(&mut self, now: Instant, length: Duration, limit: u32) -> bool {
        if now.duration_since(self.started) >= length {
            *self = Window::new(now);
        }
        self.count < limit
    }
}

#[derive(Debug)]
struct Windows {
    global: Window,
    per_ip: HashMap<IpAddr, Window>,
}

#[derive(Debug)]
pub struct RateLimiter {
    per_ip_per_minute: u32,
    global_per_second: u32,
    windows: Mutex<Windows>,
}

impl RateLimiter {
    pub fn new(per_ip_per_minute: u32, global_per_second: u32) -> RateLimiter {
        RateLimiter {
            per_ip_per_minute,
            global_per_second,
            windows: Mutex::new(Windows {
                global: Window::new(Instant::now()),
                per_ip: HashMap::new(),
            }),
        }
    }

    pub fn admit(&self, ip: IpAddr) -> bool {
        self.admit_at(ip, Instant::now())
    }

    /// Whether `ip` has used up its minute (without counting anything).
    pub fn exhausted(&self, ip: IpAddr) -> bool {
        self.exhausted_at(ip, Instant::now())
    }

    fn exhausted_at(&self, ip: IpAddr, now: Instant) -> bool {
        let mut w = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match w.per_ip.get_mut(&ip) {
            Some(mine) => !mine.has_room(now, MINUTE, self.per_ip_per_minute),
            None => false,
        }
    }

    fn admit_at(&self, ip: IpAddr, now: Instant) -> bool {
        // Every critical section leaves the counters consistent, so a poisoned lock is usable.
        let mut w = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if w.per_ip.len() >= SWEEP_AT && !w.per_ip.contains_key(&ip) {
            w.per_ip
                .retain(|_, win| now.duration_since(win.started) < MINUTE);
        }
        let Windows { global, per_ip } = &mut *w;
        let mine = per_ip.entry(ip).or_insert_with(|| Window::new(now));
        // A refused request counts against neither window: a client over its own limit does not
        // use up everyone else's budget, and a global squeeze does not use up a client's.
        if !mine.has_room(now, MINUTE, self.per_ip_per_minute)
            || !global.has_room(now, SECOND, self.global_per_second)
        {
            return false;
        }
        mine.count += 1;
        global.count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_global_windows() {
        let a: IpAddr = "192.0.2.1".parse().expect("literal");
        let b: IpAddr = "192.0.2.2".parse().expect("literal");
        let limiter = RateLimiter::new(2, 3);
        let t0 = Instant::now();
        assert!(limiter.admit_at(a, t0));
        assert!(limiter.admit_at(a, t0));
        assert!(!limiter.admit_at(a, t0), "a is over its minute");
        assert!(limiter.admit_at(b, t0));
        assert!(
            !limiter.admit_at(b, t0),
            "the second's global budget is spent"
        );
        let t1 = t0 + Duration::from_millis(1500);
        assert!(limiter.admit_at(b, t1), "a new second");
        assert!(!limiter.admit_at(a, t1), "still a's minute");
        assert!(limiter.admit_at(a, t0 + Duration::from_secs(61)));
    }

    #[test]
    fn exhausted_looks_without_counting() {
        let a: IpAddr = "192.0.2.1".parse().expect("literal");
        let limiter = RateLimiter::new(2, u32::MAX);
        let t0 = Instant::now();
        assert!(!limiter.exhausted_at(a, t0));
        assert!(!limiter.exhausted_at(a, t0));
        assert!(limiter.admit_at(a, t0));
        assert!(!limiter.exhausted_at(a, t0));
        assert!(limiter.admit_at(a, t0));
        assert!(limiter.exhausted_at(a, t0));
        assert!(!limiter.exhausted_at(a, t0 + Duration::from_secs(61)));
    }
}
