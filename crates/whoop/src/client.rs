//! The HTTP client for WHOOP's v2 data endpoints.
//!
//! It owns what every call needs and nothing about who the caller is: bearer auth with a token the
//! caller passes in (the sync engine owns refreshing), a timeout on every request, retries with
//! jittered exponential backoff for 5xx, timeouts and garbled bodies, and pacing from WHOOP's
//! `X-RateLimit-*` headers so a long import waits for the window instead of running into 429.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::budget::{Budget, Priority};
use crate::error::{Error, Result};
use crate::types::{
    format_timestamp, BodyMeasurement, CollectionRecord, Cycle, Fetched, Page, Profile, Recovery,
    Sleep, Workout,
};

/// WHOOP's production host. The API lives under `/developer`, OAuth under `/oauth/oauth2`.
pub const PRODUCTION_BASE_URL: &str = "https://api.prod.whoop.com";

/// WHOOP serves at most 25 records a page; asking for fewer only costs requests.
pub const PAGE_LIMIT: u32 = 25;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// WHOOP's host, e.g. [`PRODUCTION_BASE_URL`] or a simulator's base URL.
    pub base_url: Url,
    /// Upper bound on one HTTP exchange, connect to last byte.
    pub request_timeout: Duration,
    /// Attempts for one call when WHOOP fails transiently (5xx, timeout, garbled body).
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Longest the client will wait for a rate-limit window by itself; past that it returns
    /// [`Error::RateLimited`] so the caller can schedule the work later.
    pub max_rate_limit_wait: Duration,
}

impl ClientConfig {
    pub fn new(base_url: Url) -> Self {
        ClientConfig {
            base_url,
            request_timeout: Duration::from_secs(30),
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(120),
        }
    }
}

/// Counters of what the client did, for progress reports and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// HTTP requests sent (every attempt counts).
    pub requests: u64,
    /// Attempts that were retried after a 5xx, timeout or garbled body.
    pub retries: u64,
    /// 429 answers received.
    pub rate_limited: u64,
}

/// Query of one collection page. The same `start`/`end` must be sent with every `next_token`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub next_token: Option<String>,
}

#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// What this handle's requests are for, when a shared budget decides the order.
    priority: Priority,
}

struct Inner {
    http: reqwest::Client,
    api_base: String,
    config: ClientConfig,
    pacer: Pacer,
    budget: Option<Arc<dyn Budget>>,
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api_base", &self.inner.api_base)
            .finish_non_exhaustive()
    }
}

enum Body {
    Bytes(Vec<u8>),
    NotFound,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self> {
        Client::build(config, None)
    }

    /// A client that asks `budget` before every request.
    pub fn with_budget(config: ClientConfig, budget: Arc<dyn Budget>) -> Result<Self> {
        Client::build(config, Some(budget))
    }

    fn build(config: ClientConfig, budget: Option<Arc<dyn Budget>>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("VitalTrends/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let api_base = format!(
            "{}/developer",
            config.base_url.as_str().trim_end_matches('/')
        );
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                api_base,
                config,
                pacer: Pacer::default(),
                budget,
                requests: AtomicU64::new(0),
                retries: AtomicU64::new(0),
                rate_limited: AtomicU64::new(0),
            }),
            priority: Priority::Recent,
        })
    }

    /// A handle on the same client (connection pool, pacing, counters) whose requests have
    /// `priority` in the shared budget. Without a budget the priority changes nothing.
    pub fn with_priority(&self, priority: Priority) -> Client {
        Client {
            inner: self.inner.clone(),
            priority,
        }
    }

    pub fn stats(&self) -> RequestStats {
        RequestStats {
            requests: self.inner.requests.load(Ordering::Relaxed),
            retries: self.inner.retries.load(Ordering::Relaxed),
            rate_limited: self.inner.rate_limited.load(Ordering::Relaxed),
        }
    }

    /// One page of a collection, newest first. Broken records are in `skipped`, not errors.
    pub async fn page<T: CollectionRecord>(
        &self,
        access_token: &str,
        query: &PageQuery,
    ) -> Result<Page<T>> {
        let mut params = vec![("limit", PAGE_LIMIT.to_string())];
        if let Some(start) = &query.start {
            params.push(("start", format_timestamp(start)));
        }
        if let Some(end) = &query.end {
            params.push(("end", format_timestamp(end)));
        }
        if let Some(token) = &query.next_token {
            params.push(("nextToken", token.clone()));
        }
        let what = format!("{} page", T::COLLECTION);
        let page = self
            .get(access_token, T::COLLECTION.path(), &params, &what, |b| {
                Page::<T>::parse(b)
            })
            .await?;
        page.ok_or(Error::Status { status: 404, what })
    }

    /// Every page of a collection between `start` and `end`. For callers that do not checkpoint.
    pub async fn collect_all<T: CollectionRecord>(
        &self,
        access_token: &str,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> Result<Page<T>> {
        let mut all = Page {
            records: Vec::new(),
            skipped: Vec::new(),
            next_token: None,
        };
        let mut query = PageQuery {
            start,
            end,
            next_token: None,
        };
        loop {
            let page = self.page::<T>(access_token, &query).await?;
            all.records.extend(page.records);
            all.skipped.extend(page.skipped);
            match page.next_token {
                Some(token) => query.next_token = Some(token),
                None => return Ok(all),
            }
        }
    }

    pub async fn cycle(&self, access_token: &str, id: i64) -> Result<Option<Fetched<Cycle>>> {
        self.by_id(access_token, &format!("/v2/cycle/{id}"), "cycle")
            .await
    }

    pub async fn sleep(&self, access_token: &str, id: &str) -> Result<Option<Fetched<Sleep>>> {
        let path = format!("/v2/activity/sleep/{}", path_segment(id));
        self.by_id(access_token, &path, "sleep").await
    }

    pub async fn workout(&self, access_token: &str, id: &str) -> Result<Option<Fetched<Workout>>> {
        let path = format!("/v2/activity/workout/{}", path_segment(id));
        self.by_id(access_token, &path, "workout").await
    }

    /// A cycle's recovery. There is no `/v2/recovery/{id}`: this is the only by-id route.
    pub async fn recovery_for_cycle(
        &self,
        access_token: &str,
        cycle_id: i64,
    ) -> Result<Option<Fetched<Recovery>>> {
        let path = format!("/v2/cycle/{cycle_id}/recovery");
        self.by_id(access_token, &path, "recovery").await
    }

    pub async fn sleep_for_cycle(
        &self,
        access_token: &str,
        cycle_id: i64,
    ) -> Result<Option<Fetched<Sleep>>> {
        let path = format!("/v2/cycle/{cycle_id}/sleep");
        self.by_id(access_token, &path, "sleep").await
    }

    pub async fn profile(&self, access_token: &str) -> Result<Fetched<Profile>> {
        self.by_id(access_token, "/v2/user/profile/basic", "profile")
            .await?
            .ok_or(Error::Status {
                status: 404,
                what: "profile".into(),
            })
    }

    /// Body measurements; `None` when the person never entered them (WHOOP answers 404).
    pub async fn body_measurement(
        &self,
        access_token: &str,
    ) -> Result<Option<Fetched<BodyMeasurement>>> {
        self.by_id(
            access_token,
            "/v2/user/measurement/body",
            "body measurement",
        )
        .await
    }

    /// Revokes this app's access for the person (`DELETE /v2/user/access`).
    pub async fn revoke(&self, access_token: &str) -> Result<()> {
        self.request(
            Method::DELETE,
            access_token,
            "/v2/user/access",
            &[],
            "revoke",
        )
        .await
        .map(|_| ())
    }

    async fn by_id<T: serde::de::DeserializeOwned>(
        &self,
        access_token: &str,
        path: &str,
        what: &str,
    ) -> Result<Option<Fetched<T>>> {
        let value = self
            .get(access_token, path, &[], what, |b| {
                serde_json::from_slice::<serde_json::Value>(b)
            })
            .await?;
        let Some(raw) = value else { return Ok(None) };
        let record = serde_json::from_value::<T>(raw.clone()).map_err(|e| Error::Decode {
            what: format!("{what} {path}"),
            detail: e.to_string(),
        })?;
        Ok(Some(Fetched { record, raw }))
    }

    /// GET with retries that also cover a body that does not parse at all (a truncated answer
    /// is far more often a network hiccup than a change in WHOOP's format).
    async fn get<R>(
        &self,
        access_token: &str,
        path: &str,
        params: &[(&str, String)],
        what: &str,
        parse: impl Fn(&[u8]) -> serde_json::Result<R>,
    ) -> Result<Option<R>> {
        let mut attempt = 1;
        loop {
            let body = self
                .request(Method::GET, access_token, path, params, what)
                .await?;
            let Body::Bytes(bytes) = body else {
                return Ok(None);
            };
            match parse(&bytes) {
                Ok(parsed) => return Ok(Some(parsed)),
                Err(err) if attempt < self.inner.config.max_attempts => {
                    tracing::warn!(what, attempt, error = %err, "unreadable WHOOP body, retrying");
                    self.inner.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(err) => {
                    return Err(Error::Decode {
                        what: what.to_string(),
                        detail: err.to_string(),
                    })
                }
            }
        }
    }

    async fn request(
        &self,
        method: Method,
        access_token: &str,
        path: &str,
        params: &[(&str, String)],
        what: &str,
    ) -> Result<Body> {
        let url = format!("{}{}", self.inner.api_base, path);
        let config = &self.inner.config;
        let mut attempt: u32 = 1;
        let mut rate_limited_attempts: u32 = 0;
        loop {
            if let Some(budget) = &self.inner.budget {
                budget.spend(self.priority).await?;
            }
            self.inner.pacer.acquire(config.max_rate_limit_wait).await?;
            self.inner.requests.fetch_add(1, Ordering::Relaxed);
            let sent = self
                .inner
                .http
                .request(method.clone(), &url)
                .bearer_auth(access_token)
                .query(params)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(err) => {
                    self.inner.pacer.release();
                    let detail = describe_transport_error(&err);
                    if attempt >= config.max_attempts {
                        return Err(Error::Unavailable {
                            attempts: attempt,
                            detail,
                        });
                    }
                    tracing::warn!(what, attempt, %detail, "WHOOP request failed, retrying");
                    self.inner.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                    continue;
                }
            };
            let status = response.status();
            let limits = RateLimitHeaders::from_headers(response.headers());
            self.inner.pacer.observe(&limits);

            if status == StatusCode::TOO_MANY_REQUESTS {
                self.inner.rate_limited.fetch_add(1, Ordering::Relaxed);
                rate_limited_attempts += 1;
                let wait = limits
                    .retry_after
                    .or(limits.reset)
                    .unwrap_or(Duration::from_secs(60));
                self.inner.pacer.block_for(wait);
                if rate_limited_attempts > 5 || wait > config.max_rate_limit_wait {
                    return Err(Error::RateLimited { retry_after: wait });
                }
                tracing::info!(
                    what,
                    wait_s = wait.as_secs(),
                    "rate limited by WHOOP, waiting"
                );
                continue;
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(Error::Unauthorized);
            }
            if status == StatusCode::NOT_FOUND {
                return Ok(Body::NotFound);
            }
            if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
                if attempt >= config.max_attempts {
                    return Err(Error::Unavailable {
                        attempts: attempt,
                        detail: format!("HTTP {}", status.as_u16()),
                    });
                }
                tracing::warn!(
                    what,
                    attempt,
                    status = status.as_u16(),
                    "WHOOP error, retrying"
                );
                self.inner.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(self.backoff(attempt)).await;
                attempt += 1;
                continue;
            }
            if !status.is_success() {
                return Err(Error::Status {
                    status: status.as_u16(),
                    what: what.to_string(),
                });
            }
            match response.bytes().await {
                Ok(bytes) => return Ok(Body::Bytes(bytes.to_vec())),
                Err(err) if attempt < config.max_attempts => {
                    tracing::warn!(what, attempt, error = %describe_transport_error(&err), "WHOOP body cut off, retrying");
                    self.inner.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(err) => {
                    return Err(Error::Unavailable {
                        attempts: attempt,
                        detail: describe_transport_error(&err),
                    })
                }
            }
        }
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, so parallel retries spread.
    fn backoff(&self, attempt: u32) -> Duration {
        backoff_delay(
            self.inner.config.backoff_base,
            self.inner.config.backoff_cap,
            attempt,
        )
    }
}

pub(crate) fn backoff_delay(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let ceiling = exp.min(cap);
    let half = ceiling / 2;
    let jitter = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter)
}

/// Ids are UUIDs, but they come from outside: never let one change the path.
fn path_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// The cause of a transport failure without the URL (which could carry a token in a query).
fn describe_transport_error(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "could not connect".into()
    } else if err.is_body() || err.is_decode() {
        "answer cut off".into()
    } else {
        "connection failed".into()
    }
}

/// What WHOOP's `X-RateLimit-*` (and an occasional `Retry-After`) headers say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    pub remaining: Option<u64>,
    pub reset: Option<Duration>,
    pub retry_after: Option<Duration>,
}

impl RateLimitHeaders {
    pub fn from_headers(headers: &reqwest::header::HeaderMap) -> Self {
        let number = |name: &str| -> Option<u64> {
            let text = headers.get(name)?.to_str().ok()?;
            // WHOOP follows draft-polli: the first number is the one that matters.
            let first = text.split(',').next()?.split(';').next()?.trim();
            first.parse::<u64>().ok()
        };
        RateLimitHeaders {
            remaining: number("x-ratelimit-remaining"),
            reset: number("x-ratelimit-reset").map(Duration::from_secs),
            retry_after: number("retry-after").map(Duration::from_secs),
        }
    }
}

/// Shares WHOOP's rate-limit budget between concurrent requests of one client.
///
/// The server's `Remaining` is the truth, but requests already in flight were not counted when it
/// was written, so the budget is that number minus what is still in flight. At zero, callers wait
/// for the window's reset instead of spending a request on a 429.
#[derive(Default)]
struct Pacer {
    state: Mutex<PacerState>,
}

#[derive(Default)]
struct PacerState {
    remaining: Option<u64>,
    reset_at: Option<Instant>,
    in_flight: u64,
}

impl Pacer {
    async fn acquire(&self, max_wait: Duration) -> Result<()> {
        loop {
            let wait = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                match (state.remaining, state.reset_at) {
                    (Some(0), Some(reset_at)) if reset_at > now => Some(reset_at - now),
                    _ => {
                        if state.remaining == Some(0) {
                            // The window has reset; the next answer tells us the new budget.
                            state.remaining = None;
                        }
                        if let Some(remaining) = state.remaining.as_mut() {
                            *remaining -= 1;
                        }
                        state.in_flight += 1;
                        None
                    }
                }
            };
            let Some(wait) = wait else { return Ok(()) };
            if wait > max_wait {
                return Err(Error::RateLimited { retry_after: wait });
            }
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "pacing for WHOOP rate limit"
            );
            let jitter = Duration::from_millis(rand::thread_rng().gen_range(0..200));
            tokio::time::sleep(wait + jitter).await;
        }
    }

    fn observe(&self, limits: &RateLimitHeaders) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.in_flight = state.in_flight.saturating_sub(1);
        if let (Some(remaining), Some(reset)) = (limits.remaining, limits.reset) {
            state.remaining = Some(remaining.saturating_sub(state.in_flight));
            state.reset_at = Some(Instant::now() + reset);
        }
    }

    fn release(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.in_flight = state.in_flight.saturating_sub(1);
    }

    fn block_for(&self, wait: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.remaining = Some(0);
        state.reset_at = Some(Instant::now() + wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        for attempt in 1..20 {
            let d = backoff_delay(base, cap, attempt);
            let ceiling = (base * 2u32.pow((attempt - 1).min(16))).min(cap);
            assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn rate_limit_headers_take_the_first_number() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "X-RateLimit-Limit",
            "100, 100;window=60, 10000;window=86400".parse().unwrap(),
        );
        h.insert("X-RateLimit-Remaining", "7".parse().unwrap());
        h.insert("X-RateLimit-Reset", "42".parse().unwrap());
        let parsed = RateLimitHeaders::from_headers(&h);
        assert_eq!(parsed.remaining, Some(7));
        assert_eq!(parsed.reset, Some(Duration::from_secs(42)));
        assert_eq!(parsed.retry_after, None);
    }

    #[tokio::test]
    async fn pacer_waits_for_the_reset_when_the_budget_is_spent() {
        let pacer = Pacer::default();
        pacer.acquire(Duration::from_secs(1)).await.unwrap();
        pacer.observe(&RateLimitHeaders {
            remaining: Some(0),
            reset: Some(Duration::from_millis(300)),
            retry_after: None,
        });
        let started = Instant::now();
        pacer.acquire(Duration::from_secs(5)).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
        // A wait longer than allowed is handed back to the caller instead.
        pacer.block_for(Duration::from_secs(3600));
        let err = pacer.acquire(Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, Error::RateLimited { .. }));
    }
}
