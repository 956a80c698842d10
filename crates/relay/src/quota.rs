//! The quota coordinator: WHOOP's rate limits belong to the developer app, so every desktop in
//! service mode asks here before it calls WHOOP, and this hands the app's budget out in small
//! leases by priority: fetches for live webhook events first, then each person's last 30 days,
//! then the rest of six months, then older history. Among people at the same level, whoever was
//! served longest ago goes next, but an import that has started goes before one that has not
//! (`Turns`): when more people import than the day's budget can carry, turns among everyone
//! brought nobody's last 30 days in (a launch-day run of 1,000 people did exactly that), while
//! admitting newcomers only as the budget frees up brought in as many as it allows. A reserve
//! of each window stays for live events, so an import wave never starves the webhooks that keep
//! everyone else's dashboard current.
//!
//! The budget is a sliding log of grants in the database (`Storage::claim_quota`), so relay
//! nodes on one PostgreSQL share it. A grant is counted when it is made and is only valid for a
//! moment (`LEASE_VALIDITY` of a minute), and the log is checked over a window that long plus
//! the validity: however WHOOP aligns its own windows, the requests sent in any of them stay
//! within its limit. The ordering by priority and fairness is per node.
//!
//! The relay still holds no health data and no WHOOP tokens: a lease is a count of requests.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, Notify};

use crate::client_ip::ClientIp;
use crate::error::json_error;
use crate::server::{now_ms, AppState};
use crate::storage::{QuotaClaim, Storage};

/// What a lease is for: the desktop's own ranking of its requests, in the same words.
pub use whoop::Priority;

/// WHOOP's limits for this developer app and how they are shared out.
#[derive(Debug, Clone)]
pub struct QuotaConfig {
    /// Requests per minute for the whole app (WHOOP's default: 100).
    pub per_minute: u32,
    /// Requests per day for the whole app (WHOOP's default: 10,000).
    pub per_day: u32,
    /// WHOOP's minute and day last this many times shorter: for benchmarks and tests against a
    /// simulator started with `--rate-window-scale` set to the same factor. 1 in production.
    pub time_scale: f64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            per_minute: 100,
            per_day: 10_000,
            time_scale: 1.0,
        }
    }
}

/// The share of each window only live-event fetches may use.
const LIVE_RESERVE: f64 = 0.2;
/// The share of the day older history leaves for the last six months and live events.
const HISTORY_RESERVE: f64 = 0.3;
/// Most requests in one lease: small, so many people interleave at the same level.
pub const MAX_LEASE: u32 = 5;
/// How long a lease may wait before it is spent, as a share of the minute.
const LEASE_VALIDITY: f64 = 1.0 / 30.0;
/// How long one lease request waits for budget before the answer is "queued, ask again".
const LONG_POLL: Duration = Duration::from_secs(10);

impl QuotaConfig {
    fn minute(&self) -> Duration {
        Duration::from_secs_f64(60.0 / self.time_scale)
    }

    fn day(&self) -> Duration {
        Duration::from_secs_f64(86_400.0 / self.time_scale)
    }

    /// How long a granted lease stays spendable.
    pub fn validity(&self) -> Duration {
        self.minute().mul_f64(LEASE_VALIDITY)
    }

    /// (minute cap, day cap) a request of `priority` may fill the windows up to.
    fn caps(&self, priority: Priority) -> (i64, i64) {
        let (minute, day) = (self.per_minute as f64, self.per_day as f64);
        let (minute_share, day_share) = match priority {
            Priority::Live => (1.0, 1.0),
            Priority::Recent | Priority::Months => (1.0 - LIVE_RESERVE, 1.0 - LIVE_RESERVE),
            Priority::History => (1.0 - LIVE_RESERVE, 1.0 - LIVE_RESERVE - HISTORY_RESERVE),
        };
        (
            (minute * minute_share).floor() as i64,
            (day * day_share).floor() as i64,
        )
    }
}

#[derive(Debug, Deserialize)]
pub struct LeaseRequest {
    pub priority: Priority,
    /// How many requests the device would like (at most `MAX_LEASE` are granted).
    #[serde(default = "one")]
    pub requests: u32,
}

fn one() -> u32 {
    1
}

/// The answer: a number of requests to spend within `valid_ms`, or none yet.
#[derive(Debug, Serialize)]
pub struct LeaseAnswer {
    pub granted: u32,
    pub valid_ms: u64,
    /// Nothing granted in this poll: others with a higher priority (or served less recently)
    /// are ahead. Ask again right away.
    pub queued: bool,
    /// Devices waiting ahead of this one on this node when the poll ended.
    pub ahead: u32,
}

struct Waiter {
    user_id: i64,
    priority: Priority,
    requests: u32,
    arrived: Instant,
    answer: oneshot::Sender<u32>,
}

/// One node's queue of lease requests and the task that grants them.
pub struct Coordinator {
    config: QuotaConfig,
    storage: Storage,
    waiting: Mutex<Vec<Waiter>>,
    /// Who goes next among people at the same priority.
    turns: Mutex<Turns>,
    wake: Notify,
    granted: [std::sync::atomic::AtomicU64; 4],
}

impl Coordinator {
    pub fn new(config: QuotaConfig, storage: Storage) -> Arc<Coordinator> {
        Arc::new(Coordinator {
            config,
            storage,
            waiting: Mutex::new(Vec::new()),
            turns: Mutex::new(Turns::default()),
            wake: Notify::new(),
            granted: Default::default(),
        })
    }

    /// The coordinator's series for `/metrics`: requests granted per priority since start and
    /// devices waiting on this node.
    pub fn render_metrics(&self) -> String {
        let mut text = String::from("# TYPE relay_quota_granted_total counter\n");
        for priority in Priority::ALL {
            let granted =
                self.granted[priority as usize].load(std::sync::atomic::Ordering::Relaxed);
            text.push_str(&format!(
                "relay_quota_granted_total{{priority=\"{}\"}} {granted}\n",
                priority.as_str()
            ));
        }
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).len();
        text.push_str(&format!(
            "# TYPE relay_quota_waiting gauge\nrelay_quota_waiting {waiting}\n"
        ));
        text
    }

    /// Waits (at most `LONG_POLL`) for a lease of up to `requests` for `user_id`.
    pub async fn lease(&self, user_id: i64, priority: Priority, requests: u32) -> LeaseAnswer {
        let (answer, granted) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Waiter {
                user_id,
                priority,
                requests: requests.clamp(1, MAX_LEASE),
                arrived: Instant::now(),
                answer,
            });
        self.wake.notify_one();
        let validity = self.config.validity().as_millis() as u64;
        match tokio::time::timeout(LONG_POLL, granted).await {
            Ok(Ok(n)) => LeaseAnswer {
                granted: n,
                valid_ms: validity,
                queued: false,
                ahead: 0,
            },
            _ => {
                // Gone from the queue before answering, so a grant cannot land on nobody.
                let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
                let ahead = waiting
                    .iter()
                    .filter(|w| !w.answer.is_closed())
                    .filter(|w| {
                        w.priority < priority || (w.priority == priority && w.user_id != user_id)
                    })
                    .count() as u32;
                waiting.retain(|w| !w.answer.is_closed());
                LeaseAnswer {
                    granted: 0,
                    valid_ms: validity,
                    queued: true,
                    ahead,
                }
            }
        }
    }

    /// Waits until one request at `priority` is granted to `asker`: for the relay's own WHOOP
    /// requests, which count against the app's limits like everyone else's. Callers bound the
    /// wait.
    pub async fn one_request(&self, asker: i64, priority: Priority) {
        while self.lease(asker, priority, 1).await.granted == 0 {}
    }

    /// Grants leases in order while the budget allows, then waits for budget or new requests.
    pub async fn run(self: Arc<Self>) {
        // Budget frees up as grants age out of the window; a short tick notices it.
        let tick = (self.config.minute() / 120).max(Duration::from_millis(5));
        let mut last_prune = Instant::now();
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(tick) => {}
            }
            while let Some(waiter) = self.next_waiter() {
                match self.claim(&waiter).await {
                    Ok(true) => {
                        self.turns
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .served(&waiter);
                        self.granted[waiter.priority as usize].fetch_add(
                            waiter.requests as u64,
                            std::sync::atomic::Ordering::Relaxed,
                        );
                        // A device that stopped waiting loses the grant; the budget it held
                        // ages out of the window like any other.
                        let _ = waiter.answer.send(waiter.requests);
                    }
                    Ok(false) => {
                        self.put_back(waiter);
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "quota claim failed; retrying");
                        self.put_back(waiter);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                }
            }
            if last_prune.elapsed() >= self.config.minute() {
                last_prune = Instant::now();
                let before = now_ms() - 2 * self.config.day().as_millis() as i64;
                if let Err(err) = self.storage.prune_quota(before).await {
                    tracing::warn!(error = %err, "pruning the quota log failed");
                }
                let cutoff = Instant::now() - self.config.day();
                self.turns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .forget_before(cutoff);
            }
        }
    }

    /// Takes the waiter who goes next: the most urgent priority, then (`Turns::rank`) started
    /// imports before new ones and whoever was served longest ago, then the earliest request.
    fn next_waiter(&self) -> Option<Waiter> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.retain(|w| !w.answer.is_closed());
        let turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        let best = waiting
            .iter()
            .enumerate()
            .min_by_key(|(_, w)| (w.priority, turns.rank(w), w.arrived))
            .map(|(i, _)| i)?;
        Some(waiting.swap_remove(best))
    }

    fn put_back(&self, waiter: Waiter) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(waiter);
    }

    async fn claim(&self, waiter: &Waiter) -> crate::error::Result<bool> {
        let now = now_ms();
        // Spends happen up to one validity after their grant, so the window checked is that
        // much longer than WHOOP's.
        let validity = self.config.validity().as_millis() as i64;
        let (minute_cap, day_cap) = self.config.caps(waiter.priority);
        self.storage
            .claim_quota(&QuotaClaim {
                now_ms: now,
                requests: waiter.requests as i64,
                priority: waiter.priority.as_str(),
                minute_from_ms: now - self.config.minute().as_millis() as i64 - validity,
                minute_cap,
                day_from_ms: now - self.config.day().as_millis() as i64 - validity,
                day_cap,
            })
            .await
    }
}

/// The order among people at the same priority.
#[derive(Default)]
struct Turns {
    /// When each user was last granted a lease.
    served: HashMap<i64, Instant>,
    /// Users whose WHOOP requests other than live fetches (sign-in, import) have been granted.
    started: HashSet<i64>,
}

impl Turns {
    /// Lower goes first: live events take turns among everyone (never served: first); other
    /// requests of people already started go before those of people not started yet, and take
    /// turns among them.
    fn rank(&self, waiter: &Waiter) -> (bool, Option<Instant>) {
        let served = self.served.get(&waiter.user_id).copied();
        let new = waiter.priority != Priority::Live && !self.started.contains(&waiter.user_id);
        (new, served)
    }

    fn served(&mut self, waiter: &Waiter) {
        self.served.insert(waiter.user_id, Instant::now());
        if waiter.priority != Priority::Live {
            self.started.insert(waiter.user_id);
        }
    }

    /// Users not served since `cutoff` start over.
    fn forget_before(&mut self, cutoff: Instant) {
        self.served.retain(|_, at| *at > cutoff);
        let served = &self.served;
        self.started.retain(|user| served.contains_key(user));
    }
}

/// `POST /v1/quota/lease` (device credential): `{"priority": "live", "requests": 5}`.
pub async fn lease(
    State(app): State<Arc<AppState>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Option<Json<LeaseRequest>>,
) -> Response {
    let device = match crate::device::authenticate(&app, ip, &headers).await {
        Ok(device) => device,
        Err(response) => return response,
    };
    let Some(coordinator) = &app.quota else {
        return json_error(StatusCode::NOT_FOUND, "quota_off");
    };
    let Some(Json(request)) = body else {
        return json_error(StatusCode::BAD_REQUEST, "bad_request");
    };
    let answer = coordinator
        .lease(device.user_id, request.priority, request.requests)
        .await;
    Json(answer).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_events_keep_a_reserve_and_history_leaves_the_day_to_recent_data() {
        let config = QuotaConfig::default();
        assert_eq!(config.caps(Priority::Live), (100, 10_000));
        assert_eq!(config.caps(Priority::Recent), (80, 8_000));
        assert_eq!(config.caps(Priority::Months), (80, 8_000));
        assert_eq!(config.caps(Priority::History), (80, 5_000));
        let fast = QuotaConfig {
            time_scale: 60.0,
            ..QuotaConfig::default()
        };
        assert_eq!(fast.minute(), Duration::from_secs(1));
        assert_eq!(fast.day(), Duration::from_secs(1440));
        assert_eq!(fast.validity(), Duration::from_secs_f64(1.0 / 30.0));
    }

    fn waiter(user_id: i64, priority: Priority) -> Waiter {
        Waiter {
            user_id,
            priority,
            requests: 1,
            arrived: Instant::now(),
            answer: oneshot::channel().0,
        }
    }

    #[test]
    fn started_imports_take_turns_before_new_ones_and_live_events_take_turns() {
        let mut turns = Turns::default();
        for user in 1..=3 {
            turns.served(&waiter(user, Priority::Recent));
        }
        let rank = |turns: &Turns, user, priority| turns.rank(&waiter(user, priority));
        // Started imports: whoever was served longest ago…
        assert!(rank(&turns, 1, Priority::Recent) < rank(&turns, 2, Priority::Recent));
        turns.served(&waiter(1, Priority::Months));
        assert!(rank(&turns, 2, Priority::Recent) < rank(&turns, 1, Priority::Recent));
        // …and someone who has not started waits for every started one.
        assert!(rank(&turns, 1, Priority::Recent) < rank(&turns, 99, Priority::Recent));
        // Live events: whoever was served longest ago (never: first), started or not.
        assert!(rank(&turns, 99, Priority::Live) < rank(&turns, 2, Priority::Live));
        assert!(rank(&turns, 2, Priority::Live) < rank(&turns, 1, Priority::Live));
        // A fetch for a live event does not start an import.
        turns.served(&waiter(50, Priority::Live));
        assert!(rank(&turns, 3, Priority::Recent) < rank(&turns, 50, Priority::Recent));
        // Someone not served for a day starts over.
        turns.forget_before(Instant::now() + Duration::from_secs(1));
        assert_eq!(rank(&turns, 1, Priority::Recent), (true, None));
    }
}
