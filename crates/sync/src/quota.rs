//! The desktop's side of the relay's quota coordinator: before each WHOOP request in service
//! mode, spend one request of a lease from the relay (`POST /v1/quota/lease`), asking for a new
//! lease of a few requests when the last one is spent or expired.
//!
//! The relay decides the order (live events, last 30 days, six months, older history; fair among
//! people at the same level), so while many people import at once this desktop may wait: it says
//! so through `queued()` and keeps asking. If the relay is away, does not coordinate, or does not
//! know this device yet, requests go out paced by WHOOP's headers alone, as without a relay, and
//! the relay is asked again a little later.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::{broadcast, Mutex};
use url::Url;
use whoop::budget::BudgetFuture;
use whoop::{Budget, Priority, Secret};

use crate::events::EngineEvent;
use crate::secrets::SecretStore;
use crate::stream::DEVICE_SECRET;

/// Requests asked for per lease: one, spent the moment it arrives. The relay counts a grant as
/// spent when it makes it, so anything granted but not sent (a fetch that needed fewer requests,
/// a lease that expired while the import wrote its page) would be quota lost for everyone; a
/// lease round trip to the relay per WHOOP request costs far less than that.
const LEASE_SIZE: u32 = 1;
/// The relay holds a lease request up to 10 s; this bounds the whole exchange.
const LEASE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait before asking a busy relay (429, 503) again.
const BUSY_BACKOFF: Duration = Duration::from_secs(1);
/// How long to pace by headers alone after the relay could not be asked.
const AWAY_BACKOFF: Duration = Duration::from_secs(60);
/// A lease is given up this long before the relay's validity ends (the request must reach WHOOP
/// inside it).
const VALIDITY_MARGIN: Duration = Duration::from_millis(5);
/// A lease that takes longer than this to come is a wait for this device's turn.
const SAY_QUEUED_AFTER: Duration = Duration::from_secs(2);
/// After this long in the queue the request fails as rate limited, so the job is retried later
/// and the card says so, rather than waiting without end.
const MAX_QUEUE: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Default)]
struct Lease {
    left: u32,
    until: Option<Instant>,
}

#[derive(Debug, Deserialize)]
struct LeaseAnswer {
    granted: u32,
    valid_ms: u64,
    #[serde(default)]
    queued: bool,
}

pub(crate) struct RelayQuota {
    http: reqwest::Client,
    lease_url: Url,
    secrets: Arc<dyn SecretStore>,
    credential: std::sync::Mutex<Option<Secret>>,
    /// One lease per priority, so a live fetch never waits behind an import's long poll, and
    /// budget granted for the reserve is never spent on history.
    leases: [Mutex<Lease>; 4],
    away_until: std::sync::Mutex<Option<Instant>>,
    queued: AtomicBool,
    events: broadcast::Sender<EngineEvent>,
}

impl RelayQuota {
    pub(crate) fn new(
        relay_url: &Url,
        secrets: Arc<dyn SecretStore>,
        events: broadcast::Sender<EngineEvent>,
    ) -> crate::error::Result<RelayQuota> {
        let lease_url = Url::parse(&format!(
            "{}/v1/quota/lease",
            relay_url.as_str().trim_end_matches('/')
        ))
        .map_err(|e| crate::error::Error::Config(format!("relay URL: {e}")))?;
        Ok(RelayQuota {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(LEASE_TIMEOUT)
                .build()
                .map_err(|e| crate::error::Error::Config(format!("HTTP client: {e}")))?,
            lease_url,
            secrets,
            credential: std::sync::Mutex::new(None),
            leases: Default::default(),
            away_until: std::sync::Mutex::new(None),
            queued: AtomicBool::new(false),
            events,
        })
    }

    /// The device credential a sign-in just got: leases for the sign-in's own requests and
    /// everything after use it (the secret store may still hold the previous one).
    pub(crate) fn use_credential(&self, credential: Secret) {
        *self.credential.lock().unwrap_or_else(|e| e.into_inner()) = Some(credential);
        *self.away_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether the relay has this install waiting for its turn now.
    pub(crate) fn queued(&self) -> bool {
        self.queued.load(Ordering::Relaxed)
    }

    /// Whether this install waits for its turn; the card learns of a change at once.
    fn set_queued(&self, waiting: bool) {
        if self.queued.swap(waiting, Ordering::Relaxed) != waiting {
            let _ = self.events.send(EngineEvent::QuotaWait { waiting });
        }
    }

    fn relay_away(&self) -> bool {
        let away = self.away_until.lock().unwrap_or_else(|e| e.into_inner());
        away.is_some_and(|until| Instant::now() < until)
    }

    fn go_away(&self, why: &str) {
        tracing::info!(
            why,
            "pacing WHOOP requests by its headers alone for a while"
        );
        *self.away_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + AWAY_BACKOFF);
        self.set_queued(false);
    }

    /// The credential to ask with, and whether it came from memory rather than the store.
    async fn device_credential(&self) -> Option<(Secret, bool)> {
        if let Some(c) = self
            .credential
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Some((c, true));
        }
        let secrets = self.secrets.clone();
        let read = tokio::task::spawn_blocking(move || secrets.get(DEVICE_SECRET))
            .await
            .ok()?
            .ok()??;
        *self.credential.lock().unwrap_or_else(|e| e.into_inner()) = Some(read.clone());
        Some((read, false))
    }

    async fn spend_one(&self, priority: Priority) -> whoop::Result<()> {
        let mut lease = self.leases[priority as usize].lock().await;
        let queued_since = Instant::now();
        loop {
            if lease.left > 0 && lease.until.is_some_and(|u| Instant::now() < u) {
                lease.left -= 1;
                return Ok(());
            }
            if self.relay_away() {
                return Ok(());
            }
            let Some((credential, remembered)) = self.device_credential().await else {
                // Not registered with the relay (yet): nothing to coordinate with.
                return Ok(());
            };
            let ask = self
                .http
                .post(self.lease_url.clone())
                .bearer_auth(credential.expose())
                .json(&serde_json::json!({"priority": priority, "requests": LEASE_SIZE}))
                .send();
            tokio::pin!(ask);
            // The relay holds the request until it is this device's turn (up to its long poll):
            // a wait longer than a moment is a queue, and the card says so while it lasts.
            let answer = tokio::select! {
                answer = &mut ask => answer,
                _ = tokio::time::sleep(SAY_QUEUED_AFTER) => {
                    self.set_queued(true);
                    ask.await
                }
            };
            let response = match answer {
                Ok(r) => r,
                // A relay that accepted the request but is slow to answer is busy handing out
                // budget, not away: going it alone now is what would run WHOOP's quota dry.
                Err(e) if e.is_timeout() && !e.is_connect() => {
                    self.set_queued(true);
                    continue;
                }
                Err(_) => {
                    self.go_away("the relay did not answer a lease request");
                    return Ok(());
                }
            };
            match response.status().as_u16() {
                200 => {}
                // Busy (its database, its own limits): ask again shortly.
                429 | 503 => {
                    self.set_queued(true);
                    tokio::time::sleep(BUSY_BACKOFF).await;
                    if queued_since.elapsed() > MAX_QUEUE {
                        return Err(whoop::Error::RateLimited {
                            retry_after: Duration::from_secs(60),
                        });
                    }
                    continue;
                }
                401 => {
                    // The one in memory may be from before a sign-in that was refused or
                    // replaced; the store's is the truth. Asked once more with it.
                    self.credential
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take();
                    if remembered {
                        continue;
                    }
                    self.go_away("the relay does not know this device");
                    return Ok(());
                }
                status => {
                    self.go_away(if status == 404 {
                        "the relay does not coordinate WHOOP's quota"
                    } else {
                        "the relay refused a lease request"
                    });
                    return Ok(());
                }
            }
            let Ok(answer) = response.json::<LeaseAnswer>().await else {
                self.go_away("the relay's lease answer did not parse");
                return Ok(());
            };
            if answer.granted > 0 {
                self.set_queued(false);
                let valid = Duration::from_millis(answer.valid_ms).saturating_sub(VALIDITY_MARGIN);
                lease.left = answer.granted;
                // Granted just before it arrived; the margin covers the way here.
                lease.until = Some(Instant::now() + valid);
                continue;
            }
            if answer.queued {
                self.set_queued(true);
            }
            if queued_since.elapsed() > MAX_QUEUE {
                return Err(whoop::Error::RateLimited {
                    retry_after: Duration::from_secs(60),
                });
            }
        }
    }
}

impl Budget for RelayQuota {
    fn spend(&self, priority: Priority) -> BudgetFuture<'_> {
        Box::pin(self.spend_one(priority))
    }
}
