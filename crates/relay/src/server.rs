//! Wiring: the shared state of one relay, its routes, the background tasks (retention, LISTEN),
//! and the handle that keeps it all running until dropped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use subtle::ConstantTimeEq as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client_ip::{self, ClientIp};
use crate::config::{MetricsAccess, RelayConfig};
use crate::error::{json_error, Error, Result};
use crate::events::StreamSlots;
use crate::listen::{self, ConnLimits};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::storage::Storage;
use crate::wake::Waker;
use crate::{broker, events, intake, licences, quota, retention, wake};

/// How long open requests get to finish once the relay is told to stop.
const DRAIN: Duration = Duration::from_secs(5);

pub struct AppState {
    pub config: RelayConfig,
    pub storage: Storage,
    /// The log's identity, part of every cursor.
    pub epoch: String,
    pub waker: Waker,
    /// Webhook intake's group commit.
    pub committer: intake::Committer,
    pub metrics: Arc<Metrics>,
    pub webhook_limiter: RateLimiter,
    pub broker_limiter: RateLimiter,
    /// Failed device authentications per client IP.
    pub auth_failures: RateLimiter,
    pub stream_slots: StreamSlots,
    /// For the token broker's calls to WHOOP.
    pub http: reqwest::Client,
    /// Flips to `true` when the relay stops; open streams end on it.
    pub shutdown: watch::Receiver<bool>,
    /// The quota coordinator, when WHOOP's limits are shared out here.
    pub quota: Option<Arc<quota::Coordinator>>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A running relay. Dropping it (or calling `shutdown`) stops the server and its background tasks.
pub struct RelayHandle {
    /// e.g. `http://127.0.0.1:34567`.
    pub base_url: String,
    pub addr: SocketAddr,
    /// `"sqlite"` or `"postgres"`.
    pub database: &'static str,
    /// The metrics listener's URL (`http://addr`), when `metrics_listen` was set.
    pub metrics_url: Option<String>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    state: Arc<AppState>,
}

impl RelayHandle {
    /// Stops accepting requests, ends open streams, waits for requests in flight (a few seconds
    /// at most) and closes the database.
    pub async fn shutdown(mut self) {
        self.stop_background();
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// The log epoch every cursor of this relay carries.
    pub fn log_epoch(&self) -> &str {
        &self.state.epoch
    }

    /// The database connection pool is closed; from now on every request that needs the
    /// database gets a 503. For tests of the relay's behaviour when its database is gone.
    #[doc(hidden)]
    pub async fn close_database(&self) {
        self.state.storage.close().await;
    }

    fn stop_background(&mut self) {
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.stop_background();
        // The server task sees this, drains, closes the pool and exits on its own.
        let _ = self.stop.send(true);
    }
}

/// Binds `config.listen`, opens and migrates the database, and serves in spawned tasks.
pub async fn start(config: RelayConfig) -> Result<RelayHandle> {
    config.validate()?;
    let storage = connect_storage(&config.database_url).await?;
    let epoch = storage.log_epoch().await?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let local = reachable(listener.local_addr()?);
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await?),
        None => None,
    };
    let metrics_url = match &metrics_listener {
        Some(l) => Some(format!("http://{}", reachable(l.local_addr()?))),
        None => None,
    };
    let limits = ConnLimits {
        max_connections: config
            .max_connections
            .unwrap_or_else(listen::default_max_connections),
        header_read_timeout: config.header_read_timeout,
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("vitaltrends-relay/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Http(e.without_url().to_string()))?;
    let (stop, stopped) = watch::channel(false);
    let database = storage.kind();
    let waker = Waker::default();
    let metrics = Arc::new(Metrics::default());
    // Not aborted with the other background tasks: requests still draining at shutdown get their
    // commit. It ends with the last handle to the state.
    let (committer, _writer) =
        intake::Committer::spawn(storage.clone(), waker.clone(), Arc::clone(&metrics));
    let tail = tokio::spawn(wake::tail(
        storage.clone(),
        waker.clone(),
        config.poll_backstop,
    ));
    let quota = config
        .quota
        .clone()
        .map(|q| quota::Coordinator::new(q, storage.clone()));
    let state = Arc::new(AppState {
        quota,
        webhook_limiter: RateLimiter::new(config.per_ip_per_minute, config.global_per_second),
        broker_limiter: RateLimiter::new(config.per_ip_per_minute, config.global_per_second),
        auth_failures: RateLimiter::new(config.auth_failures_per_minute, u32::MAX),
        stream_slots: StreamSlots::default(),
        config,
        storage,
        epoch,
        waker,
        committer,
        metrics,
        http,
        shutdown: stopped.clone(),
    });

    let mut background = vec![tokio::spawn(retention::run(Arc::clone(&state))), tail];
    if let Some(coordinator) = &state.quota {
        background.push(tokio::spawn(Arc::clone(coordinator).run()));
    }
    if let Storage::Postgres(pool) = &state.storage {
        background.push(tokio::spawn(wake::listen(
            pool.clone(),
            state.waker.clone(),
        )));
    }

    let app = router(Arc::clone(&state));
    if let Some(l) = metrics_listener {
        // Few connections: only a scraper and health checks are expected there.
        let small = ConnLimits {
            max_connections: 64,
            ..limits
        };
        background.push(tokio::spawn(listen::serve(
            l,
            metrics_router(Arc::clone(&state)),
            small,
            stopped.clone(),
            DRAIN,
        )));
    }
    let server_state = Arc::clone(&state);
    let server = tokio::spawn(async move {
        // Returns once stopped and drained (open requests get `DRAIN` to finish; a client that
        // keeps one open past it does not keep the relay alive).
        listen::serve(listener, app, limits, stopped, DRAIN).await;
        server_state.storage.close().await;
        tracing::info!("relay stopped");
    });

    let base_url = format!("http://{local}");
    tracing::info!(
        %base_url,
        database,
        max_connections = limits.max_connections,
        trusted_proxies = state.config.trusted_proxies.len(),
        metrics_listener = metrics_url.as_deref().unwrap_or("none"),
        "relay listening"
    );
    Ok(RelayHandle {
        base_url,
        addr: local,
        database,
        metrics_url,
        stop,
        server: Some(server),
        background,
        state,
    })
}

/// Opens the database. A pool timeout while opening means the machine is too busy to finish
/// the first connection and migrations within the pool's 3 s (seen on a loaded CI host), not
/// that the database is gone, so it is tried twice more before the relay gives up.
async fn connect_storage(url: &str) -> Result<Storage> {
    let mut attempt = 1;
    loop {
        match Storage::connect(url).await {
            Err(Error::Database(sqlx::Error::PoolTimedOut)) if attempt < 3 => {
                tracing::warn!(attempt, "opening the database timed out; trying again");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

/// A wildcard bind address is reported as loopback, the address a local client can reach.
fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        });
    }
    addr
}

/// Reads a whole (small) request body within the body-read timeout: 413 `too_large` past `max`,
/// 408 `body_timeout` when it trickles in too slowly, so a slow sender cannot hold a connection
/// and a task for long.
pub async fn read_body(
    app: &AppState,
    body: axum::body::Body,
    max: usize,
) -> std::result::Result<axum::body::Bytes, Response> {
    match tokio::time::timeout(
        app.config.body_read_timeout,
        axum::body::to_bytes(body, max),
    )
    .await
    {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(json_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large")),
        Err(_) => Err(json_error(StatusCode::REQUEST_TIMEOUT, "body_timeout")),
    }
}

/// Logs method, path and status only: query strings carry OAuth codes and cursors, headers carry
/// credentials and signatures, bodies carry tokens.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    // The path alone: no route here has parameters in its path, and the query is never logged.
    let path = req.uri().path().to_string();
    let client = req
        .extensions()
        .get::<ClientIp>()
        .map(|ClientIp(ip)| ip.to_string())
        .unwrap_or_default();
    let started = Instant::now();
    let resp = next.run(req).await;
    tracing::debug!(
        %method,
        %path,
        %client,
        status = resp.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    resp
}

async fn healthz(State(app): State<Arc<AppState>>) -> Response {
    match tokio::time::timeout(Duration::from_secs(3), app.storage.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"ok":true}"#,
        )
            .into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"ok":false}"#,
        )
            .into_response(),
    }
}

fn render_metrics(app: &AppState) -> Response {
    let mut text = app.metrics.render();
    if let Some(quota) = &app.quota {
        text.push_str(&quota.render_metrics());
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `/metrics` on the main listener, as `config.metrics` allows: open, behind a bearer token
/// (compared in constant time), or not there at all.
async fn metrics(State(app): State<Arc<AppState>>, headers: axum::http::HeaderMap) -> Response {
    match &app.config.metrics {
        MetricsAccess::Open => render_metrics(&app),
        MetricsAccess::Off => not_found().await,
        MetricsAccess::Token(token) => {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if bool::from(presented.as_bytes().ct_eq(token.trim().as_bytes())) {
                render_metrics(&app)
            } else {
                let mut resp = json_error(StatusCode::UNAUTHORIZED, "unauthorized");
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
                resp
            }
        }
    }
}

/// `/metrics` on the metrics listener: reachable only where the operator bound it.
async fn metrics_unguarded(State(app): State<Arc<AppState>>) -> Response {
    render_metrics(&app)
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "not_found")
}

fn router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/webhooks/whoop", post(intake::receive))
        .route("/oauth/whoop/token", post(broker::exchange))
        .route("/oauth/whoop/refresh", post(broker::refresh))
        .route("/oauth/whoop/callback", get(broker::callback))
        .route("/v1/events", get(events::read))
        .route("/v1/events/ack", post(events::ack))
        .route("/v1/devices/self", delete(events::revoke_self))
        .route("/v1/quota/lease", post(quota::lease))
        .route("/v1/licence", get(licences::status).post(licences::rebind))
        .route("/billing/webhook", post(licences::billing_webhook))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            client_ip::resolve,
        ))
        .with_state(app)
}

/// The metrics listener's routes.
fn metrics_router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_unguarded))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(app)
}
